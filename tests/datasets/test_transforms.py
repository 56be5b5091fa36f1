"""Transforms: exact values where deterministic (mmseg 0.x rules), statistics where random."""
import cv2
import numpy as np
import pytest
from PIL import Image

from jseg.config import ConfigError
from jseg.datasets.transforms import Compose, DataError, TRANSFORMS
from jseg.datasets.transforms.geometric import (AlignedResize, Pad, RandomCrop, RandomFlip, Resize, ResizeToMultiple,
                                               rescale_size)
from jseg.datasets.transforms.photometric import Normalize, PhotoMetricDistortion
from jseg.datasets.transforms.test_time_aug import MultiScaleFlipAug

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def sample(h=375, w=500, seed=0, classes=5):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    seg = rng.integers(0, classes, (h, w)).astype(np.uint8)
    return {"img": img, "gt_semantic_seg": seg, "seg_fields": ["gt_semantic_seg"], "rng": np.random.default_rng(seed)}


def test_keep_ratio_resize_follows_mmcv_rescale_rule():
    r = Resize(img_scale=(2048, 512), ratio_range=(1.0, 1.0))(sample())
    # factor = min(2048/500, 512/375) = 1.36533; (int(500f+.5), int(375f+.5)) = (683, 512)
    assert r["img"].shape == (512, 683, 3) and r["gt_semantic_seg"].shape == (512, 683)
    assert r["scale"] == (2048, 512)
    np.testing.assert_allclose(r["scale_factor"], [683 / 500, 512 / 375] * 2, rtol=1e-6)
    assert set(np.unique(r["gt_semantic_seg"])) <= set(range(5))          # nearest: no new label values
    assert rescale_size(2048, 1024, (2048, 1024)) == ((2048, 1024), 1.0)
    assert rescale_size(500, 375, (1024, 256))[0] == (341, 256)


def test_ratio_range_scales_and_fixed_size_resize():
    ratios = []
    for seed in range(200):
        r = Resize(img_scale=(2048, 512), ratio_range=(0.5, 2.0))(sample(60, 80, seed))
        ratio = r["scale"][0] / 2048
        ratios.append(ratio)
        assert r["scale"] == (int(2048 * ratio), int(512 * ratio)) or abs(r["scale"][1] - 512 * ratio) <= 1
        assert 0.5 <= ratio < 2.0
        f = min(max(r["scale"]) / 80, min(r["scale"]) / 60)
        assert r["img"].shape[:2] == (int(60 * f + 0.5), int(80 * f + 0.5))
    assert 1.1 < np.mean(ratios) < 1.4                                      # U(0.5, 2) has mean 1.25
    r = Resize(img_scale=(64, 32), keep_ratio=False)(sample(60, 80))
    assert r["img"].shape == (32, 64, 3) and r["gt_semantic_seg"].shape == (32, 64)


def test_random_crop_size_and_alignment():
    s = sample(100, 120)
    s["img"][..., 0] = np.arange(120)[None, :]
    s["gt_semantic_seg"] = np.tile(np.arange(120, dtype=np.uint8)[None, :], (100, 1))
    r = RandomCrop((50, 60))(s)
    assert r["img"].shape == (50, 60, 3) and r["img_shape"] == (50, 60, 3)
    assert np.array_equal(r["img"][..., 0], r["gt_semantic_seg"])          # image and label cropped together
    small = RandomCrop((512, 512))(sample(40, 30))                          # smaller image: whole image kept
    assert small["img"].shape == (40, 30, 3)


def test_cat_max_ratio():
    seg = np.zeros((100, 100), np.uint8)
    seg[:40, :40] = 1                                                       # class-1 patch in a corner

    def qualifies(out):
        counts = np.bincount(out.ravel(), minlength=2)
        return counts[1] > 0 and counts.max() / counts.sum() < 0.75

    # probability that one uniformly drawn 50x50 crop qualifies (offsets 0..50 on each axis)
    p = np.mean([qualifies(seg[y:y + 50, x:x + 50]) for y in range(51) for x in range(51)])
    assert 0.05 < p < 0.3

    def run(seed, ratio):
        s = sample(100, 100, seed)
        s["gt_semantic_seg"] = seg.copy()
        return qualifies(RandomCrop((50, 50), cat_max_ratio=ratio)(s)["gt_semantic_seg"])
    n = 300
    ok_plain = sum(run(s, 1.0) for s in range(n))
    ok_cat = sum(run(s, 0.75) for s in range(n))
    for count, prob in ((ok_plain, p), (ok_cat, 1 - (1 - p) ** 11)):      # first draw + up to 10 retries
        assert abs(count - n * prob) < 4 * np.sqrt(n * prob * (1 - prob)) + 1, (count, n * prob)
    # ignore_index is not a class: a crop of class 0 + ignore never qualifies, but a crop is still returned
    s = sample(100, 100)
    s["gt_semantic_seg"] = np.full((100, 100), 255, np.uint8)
    s["gt_semantic_seg"][:, :50] = 0
    assert RandomCrop((50, 50), cat_max_ratio=0.75)(s)["gt_semantic_seg"].shape == (50, 50)


def test_flip_image_and_label_together():
    s = sample(4, 6)
    s["img"][..., 0] = np.arange(6)[None, :]
    s["gt_semantic_seg"] = np.tile(np.arange(6, dtype=np.uint8), (4, 1))
    s["flip"] = True
    r = RandomFlip(prob=0.5)(s)
    assert r["img"][0, :, 0].tolist() == [5, 4, 3, 2, 1, 0] and np.array_equal(r["img"][..., 0],
                                                                               r["gt_semantic_seg"])
    flips = [RandomFlip(prob=0.5)(sample(4, 6, seed))["flip"] for seed in range(400)]
    assert 160 < sum(flips) < 240
    s = sample(4, 6)
    s.update(flip=True, flip_direction="vertical")
    s["gt_semantic_seg"] = np.arange(4, dtype=np.uint8)[:, None].repeat(6, 1)
    assert RandomFlip()(s)["gt_semantic_seg"][:, 0].tolist() == [3, 2, 1, 0]


def test_pad_values_and_shapes():
    s = sample(3, 5)
    r = Pad(size=(4, 8), pad_val=0, seg_pad_val=255)(s)
    assert r["img"].shape == (4, 8, 3) and r["pad_shape"] == (4, 8, 3)
    assert (r["img"][3] == 0).all() and (r["img"][:, 5:] == 0).all()
    assert (r["gt_semantic_seg"][3] == 255).all() and (r["gt_semantic_seg"][:, 5:] == 255).all()
    assert np.array_equal(r["img"][:3, :5], sample(3, 5)["img"])
    r = Pad(size_divisor=32)(sample(33, 64))
    assert r["img"].shape[:2] == (64, 64)
    with pytest.raises(DataError, match="larger than the pad size"):
        Pad(size=(2, 2))(sample(3, 5))


def test_normalize_bgr_to_rgb():
    s = {"img": np.array([[[10, 20, 30]]], np.uint8)}                       # B, G, R
    out = Normalize(MEAN, STD, to_rgb=True)(s)["img"]
    expected = (np.array([30, 20, 10]) - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-6)
    assert out.dtype == np.float32
    out = Normalize(MEAN, STD, to_rgb=False)({"img": np.array([[[10, 20, 30]]], np.uint8)})["img"]
    np.testing.assert_allclose(out[0, 0], (np.array([10, 20, 30]) - MEAN) / np.array(STD), rtol=1e-6)


def test_resize_to_multiple():
    r = ResizeToMultiple(32)(sample(375, 500))
    assert r["img"].shape == (384, 512, 3) and r["gt_semantic_seg"].shape == (384, 512)
    assert set(np.unique(r["gt_semantic_seg"])) <= set(range(5))


def test_aligned_resize_is_resize_then_resize_to_multiple():
    """NVlabs AlignedResize: 375x500 at (2048, 512) keep-ratio -> 512x683, then resized (not padded) to 512x704."""
    a = AlignedResize(img_scale=(2048, 512), keep_ratio=True, size_divisor=32)(sample())
    b = ResizeToMultiple(32)(Resize(img_scale=(2048, 512), keep_ratio=True)(sample()))
    assert a["img"].shape == (512, 704, 3) and a["gt_semantic_seg"].shape == (512, 704)
    assert np.array_equal(a["img"], b["img"]) and np.array_equal(a["gt_semantic_seg"], b["gt_semantic_seg"])


def test_photometric_distortion_statistics():
    gray = np.full((8, 8, 3), 128, np.uint8)
    only_brightness = PhotoMetricDistortion(contrast_range=(1, 1), saturation_range=(1, 1), hue_delta=0)
    shifts = []
    for seed in range(300):
        out = only_brightness({"img": gray.copy(), "rng": np.random.default_rng(seed)})["img"]
        assert out.dtype == np.uint8 and (out == out[0, 0, 0]).all()
        shifts.append(int(out[0, 0, 0]) - 128)
    shifts = np.array(shifts)
    assert np.abs(shifts).max() <= 32 and 100 < (shifts == 0).sum() < 200   # applied with probability 1/2
    assert shifts.min() < -20 and shifts.max() > 20
    # gray has no saturation/hue; a colour image changes and stays uint8 in range
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    changed = sum(not np.array_equal(PhotoMetricDistortion()({"img": img.copy(), "rng": np.random.default_rng(s)})
                                     ["img"], img) for s in range(50))
    assert changed > 40


def test_multiscale_flip_aug_views():
    tta = MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=[0.5, 1.0], flip=True, transforms=[
        dict(type="Resize", keep_ratio=True), dict(type="RandomFlip"), dict(type="Normalize", mean=MEAN, std=STD),
        dict(type="ImageToTensor", keys=["img"]), dict(type="Collect", keys=["img"])])
    out = tta({"img": np.zeros((375, 500, 3), np.uint8), "filename": "x.jpg", "ori_shape": (375, 500, 3)})
    metas = out["img_metas"]
    assert [m["flip"] for m in metas] == [False, True, False, True]
    assert [m["img_shape"][:2] for m in metas] == [(256, 341), (256, 341), (512, 683), (512, 683)]
    assert out["img"][0].shape == (3, 256, 341) and out["img"][0].dtype == np.float32


def test_loading_and_reduce_zero_label(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    cv2.imwrite(str(tmp_path / "a_png.png"), img)
    seg = np.array([[0, 1, 150, 255, 2, 3, 4]] * 6, np.uint8)
    lab = Image.fromarray(seg, mode="P")
    lab.putpalette([0, 0, 0, 255, 0, 0] * 128)
    lab.save(tmp_path / "a.png")
    pipe = Compose([dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", reduce_zero_label=True)])
    r = pipe({"img_info": {"filename": "a_png.png"}, "ann_info": {"seg_map": "a.png"},
              "img_prefix": str(tmp_path), "seg_prefix": str(tmp_path)})
    assert np.array_equal(r["img"], img) and r["ori_shape"] == (6, 7, 3)
    assert r["gt_semantic_seg"][0].tolist() == [255, 0, 149, 255, 1, 2, 3]     # palette indices, 0 -> 255, k -> k-1


def test_bad_files_are_named(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    load = TRANSFORMS.build(dict(type="LoadImageFromFile"))
    with pytest.raises(DataError, match="cannot decode image .*broken.jpg"):
        load({"img_info": {"filename": "broken.jpg"}, "img_prefix": str(tmp_path)})
    with pytest.raises(DataError, match="image file not found: .*missing.jpg"):
        load({"img_info": {"filename": "missing.jpg"}, "img_prefix": str(tmp_path)})
    cv2.imwrite(str(tmp_path / "ok.png"), np.zeros((6, 7, 3), np.uint8))
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "small.png")
    pipe = Compose([dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])
    with pytest.raises(DataError, match=r"small.png is 5x7 but its image .*ok.png is 6x7"):
        pipe({"img_info": {"filename": "ok.png"}, "ann_info": {"seg_map": "small.png"},
              "img_prefix": str(tmp_path), "seg_prefix": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown transform type 'RandomCropX' \\(did you mean 'RandomCrop'\\?\\)"):
        Compose([dict(type="RandomCropX")])
    with pytest.raises(ConfigError, match=r"RandomCrop \(transform\) got unexpected config keys \['size'\]"):
        Compose([dict(type="RandomCrop", size=(4, 4))])
