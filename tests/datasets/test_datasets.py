"""Every dataset class on small folders in the real layouts; pipelines end to end; the loader; bad input."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from jseg.config import ConfigError
from jseg.datasets import DataError, build_dataset
from jseg.datasets.classes import ADE20K_PALETTE, VOC_PALETTE

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]


def write_pair(img_path, ann_path, values, h=40, w=60, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(img_path), exist_ok=True)
    cv2.imwrite(img_path, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if ann_path:
        os.makedirs(os.path.dirname(ann_path), exist_ok=True)
        label = rng.choice(np.array(values, np.uint8), size=(h, w))
        Image.fromarray(label).save(ann_path)


def first_label(ds, i=0):
    return ds.get_sample(i, np.random.default_rng(0))["gt_semantic_seg"]


def test_ade20k_layout_and_reduce_zero_label(tmp_path):
    root = str(tmp_path)
    for n in ("ADE_train_00000001", "ADE_train_00000002"):
        write_pair(f"{root}/images/training/{n}.jpg", f"{root}/annotations/training/{n}.png", [0, 1, 150])
    ds = build_dataset(dict(type="ADE20KDataset", data_root=root, img_dir="images/training",
                            ann_dir="annotations/training", pipeline=LOAD))
    assert len(ds) == 2 and ds.num_classes == 150 and ds.CLASSES[:3] == ("wall", "building", "sky")
    assert ds.PALETTE[0] == (120, 120, 120) and len(ds.PALETTE) == 150 and ds.PALETTE == ADE20K_PALETTE
    assert ds.img_infos[0] == {"filename": "ADE_train_00000001.jpg", "ann": {"seg_map": "ADE_train_00000001.png"}}
    assert set(np.unique(first_label(ds))) == {0, 149, 255}               # 1 -> 0, 150 -> 149, 0 -> 255
    assert set(np.unique(ds.get_gt_seg_map(1))) == {0, 149, 255}


def test_cityscapes_nested_layout(tmp_path):
    root = str(tmp_path)
    for city, n in (("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")):
        write_pair(f"{root}/leftImg8bit/train/{city}/{n}_leftImg8bit.png",
                   f"{root}/gtFine/train/{city}/{n}_gtFine_labelTrainIds.png", [0, 18, 255])
    ds = build_dataset(dict(type="CityscapesDataset", data_root=root, img_dir="leftImg8bit/train",
                            ann_dir="gtFine/train", pipeline=LOAD))
    assert len(ds) == 2 and ds.num_classes == 19 and ds.CLASSES[0] == "road"
    assert ds.img_infos[1]["ann"]["seg_map"] == "bochum/bochum_000000_000313_gtFine_labelTrainIds.png"
    assert set(np.unique(first_label(ds))) == {0, 18, 255}


def test_voc_and_pascal_context_with_split_files(tmp_path):
    root = str(tmp_path)
    for n in ("2007_000032", "2007_000039"):
        write_pair(f"{root}/JPEGImages/{n}.jpg", f"{root}/SegmentationClass/{n}.png", [0, 20, 255])
        write_pair(f"{root}/JPEGImages/{n}.jpg", f"{root}/SegmentationClassContext/{n}.png", [0, 1, 59])
    os.makedirs(f"{root}/ImageSets/Segmentation")
    with open(f"{root}/ImageSets/Segmentation/train.txt", "w") as f:
        f.write("2007_000039\n")
    voc = build_dataset(dict(type="PascalVOCDataset", data_root=root, img_dir="JPEGImages",
                             ann_dir="SegmentationClass", split="ImageSets/Segmentation/train.txt", pipeline=LOAD))
    assert len(voc) == 1 and voc.img_infos[0]["filename"] == "2007_000039.jpg" and voc.num_classes == 21
    assert voc.PALETTE == VOC_PALETTE and set(np.unique(first_label(voc))) == {0, 20, 255}
    ctx = dict(data_root=root, img_dir="JPEGImages", ann_dir="SegmentationClassContext",
               split="ImageSets/Segmentation/train.txt", pipeline=LOAD)
    c60 = build_dataset(dict(type="PascalContextDataset", **ctx))
    c59 = build_dataset(dict(type="PascalContextDataset59", **ctx))
    assert (c60.num_classes, c59.num_classes) == (60, 59) and c60.CLASSES[0] == "background"
    assert set(np.unique(first_label(c60))) == {0, 1, 59}
    assert set(np.unique(first_label(c59))) == {255, 0, 58}


def test_coco_stuff_isaid_and_custom(tmp_path):
    root = str(tmp_path)
    write_pair(f"{root}/coco/images/train2017/000000000009.jpg",
               f"{root}/coco/annotations/train2017/000000000009_labelTrainIds.png", [0, 170, 255])
    coco = build_dataset(dict(type="COCOStuffDataset", data_root=f"{root}/coco", img_dir="images/train2017",
                              ann_dir="annotations/train2017", pipeline=LOAD))
    assert coco.num_classes == 171 and coco.CLASSES[11] == "stop sign"
    assert set(np.unique(first_label(coco))) == {0, 170, 255}
    write_pair(f"{root}/isaid/img_dir/train/P0002_0_896_0_896.png",
               f"{root}/isaid/ann_dir/train/P0002_0_896_0_896_instance_color_RGB.png", [0, 15, 255])
    isaid = build_dataset(dict(type="iSAIDDataset", data_root=f"{root}/isaid", img_dir="img_dir/train",
                               ann_dir="ann_dir/train", pipeline=LOAD))
    assert isaid.num_classes == 16 and isaid.CLASSES[:2] == ("background", "ship")
    assert set(np.unique(first_label(isaid))) == {0, 15, 255}
    write_pair(f"{root}/mine/img/a.tif", f"{root}/mine/lbl/a_mask.png", [0, 2])
    custom = build_dataset(dict(type="CustomDataset", data_root=f"{root}/mine", img_dir="img", img_suffix=".tif",
                                ann_dir="lbl", seg_map_suffix="_mask.png", classes=["a", "b", "c"],
                                palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]], pipeline=LOAD))
    assert custom.CLASSES == ("a", "b", "c") and custom.PALETTE[2] == (7, 8, 9)
    assert set(np.unique(first_label(custom))) == {0, 2}


ADE_TRAIN = [
    dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="Resize", img_scale=(2048, 512), ratio_range=(0.5, 2.0)),
    dict(type="RandomCrop", crop_size=(64, 64), cat_max_ratio=0.75), dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"), dict(type="Normalize", mean=MEAN, std=STD, to_rgb=True),
    dict(type="Pad", size=(64, 64), pad_val=0, seg_pad_val=255), dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_semantic_seg"]),
]
ADE_TEST = [
    dict(type="LoadImageFromFile"),
    dict(type="MultiScaleFlipAug", img_scale=(2048, 512), flip=False, transforms=[
        dict(type="Resize", keep_ratio=True), dict(type="ResizeToMultiple", size_divisor=32),
        dict(type="RandomFlip"), dict(type="Normalize", mean=MEAN, std=STD, to_rgb=True),
        dict(type="ImageToTensor", keys=["img"]), dict(type="Collect", keys=["img"])]),
]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from jseg.datasets import make_toy_dataset
    return make_toy_dataset(str(tmp_path_factory.mktemp("toy") / "toy"), n_train=12, n_val=4, size=48)


def toy(root, pipeline=ADE_TRAIN, **kw):
    return build_dataset(dict(type="ToyDataset", data_root=root, pipeline=pipeline, **kw))


def test_train_and_test_pipelines_end_to_end(toy_root):
    ds = toy(toy_root)
    assert len(ds) == 12 and ds.num_classes == 6
    s = ds.get_sample(0, np.random.default_rng(0))
    assert s["img"].shape == (3, 64, 64) and s["img"].dtype == np.float32
    assert s["gt_semantic_seg"].shape == (1, 64, 64) and s["gt_semantic_seg"].dtype == np.int64
    assert set(np.unique(s["gt_semantic_seg"])) <= set(range(6)) | {255}
    assert s["img_metas"]["ori_shape"] == (48, 48, 3)
    test = toy(toy_root, ADE_TEST, img_dir="images/validation", ann_dir="annotations/validation", test_mode=True)
    v = test.get_sample(0, np.random.default_rng(0))
    assert len(v["img"]) == 1 and v["img"][0].shape == (3, 512, 512)     # 48x48 -> 512x512 (already /32)


def _epoch(ds):
    return [(tuple(m["ori_filename"] for m in b["img_metas"]), float(b["img"].numpy().sum())) for b in ds]


def test_loader_batches_seeded_order_resume_and_workers(toy_root):
    ds = toy(toy_root).set_loader(samples_per_gpu=4, workers_per_gpu=0, shuffle=True, seed=1)
    batch = next(iter(ds))
    assert tuple(batch["img"].shape) == (4, 3, 64, 64) and tuple(batch["gt_semantic_seg"].shape) == (4, 1, 64, 64)
    ds.set_epoch(0)
    e0 = _epoch(ds)
    e1 = _epoch(ds)                                                        # the next epoch: a new order
    assert len(e0) == 3 and sorted(sum((list(n) for n, _ in e0), [])) == sorted(
        i["filename"] for i in ds.img_infos)
    assert [n for n, _ in e0] != [n for n, _ in e1]
    again = toy(toy_root).set_loader(4, 0, shuffle=True, seed=1)
    assert _epoch(again) == e0                                             # same seed: same run
    other = toy(toy_root).set_loader(4, 0, shuffle=True, seed=2)
    assert [n for n, _ in _epoch(other)] != [n for n, _ in e0]
    resumed = toy(toy_root).set_loader(4, 0, shuffle=True, seed=1)
    resumed.set_epoch(0, start_batch=1)
    window = _epoch(resumed)                                               # resume at the next batch ...
    assert window[:2] == e0[1:] and window[2] == e1[0]                     # ... and run on into epoch 1
    workers = toy(toy_root).set_loader(4, 2, shuffle=True, seed=1)
    assert _epoch(workers) == e0 and _epoch(workers) == e1                 # workers change nothing


def test_repeat_dataset(toy_root):
    rep = build_dataset(dict(type="RepeatDataset", times=3, dataset=dict(
        type="ToyDataset", data_root=toy_root, pipeline=ADE_TRAIN)))
    assert len(rep) == 36 and rep.num_samples() == 36 and rep.CLASSES[0] == "background"
    a, b = rep.get_sample(0, np.random.default_rng(5)), rep.get_sample(12, np.random.default_rng(5))
    assert a["img_metas"]["filename"] == b["img_metas"]["filename"]


def test_bad_input_errors_name_the_file(tmp_path):
    root = str(tmp_path)
    with pytest.raises(DataError, match="data_root not found: .*nowhere"):
        build_dataset(dict(type="ADE20KDataset", data_root=f"{root}/nowhere", img_dir="images/training",
                           ann_dir="annotations/training", pipeline=LOAD))
    os.makedirs(f"{root}/images/training")
    with pytest.raises(DataError, match="ann_dir not found: .*annotations/training"):
        build_dataset(dict(type="ADE20KDataset", data_root=root, img_dir="images/training",
                           ann_dir="annotations/training", pipeline=LOAD))
    os.makedirs(f"{root}/annotations/training")
    with pytest.raises(DataError, match=r"no images ending with '\.jpg' in .*images/training"):
        build_dataset(dict(type="ADE20KDataset", data_root=root, img_dir="images/training",
                           ann_dir="annotations/training", pipeline=LOAD))
    write_pair(f"{root}/images/training/a.jpg", f"{root}/annotations/training/a.png", [1, 2])
    write_pair(f"{root}/images/training/b.jpg", None, [1])
    with pytest.raises(DataError, match=r"1 of 2 annotations missing in .*: b\.png"):
        build_dataset(dict(type="ADE20KDataset", data_root=root, img_dir="images/training",
                           ann_dir="annotations/training", pipeline=LOAD))
    # label values outside [0, num_classes) and 255, and a corrupted image: raised in the main process
    Image.fromarray(np.full((40, 60), 7, np.uint8)).save(f"{root}/annotations/training/b.png")
    ds = build_dataset(dict(type="CustomDataset", data_root=root, img_dir="images/training",
                            ann_dir="annotations/training", classes=["x", "y", "z"], pipeline=LOAD))
    ds.set_loader(samples_per_gpu=1, workers_per_gpu=2)
    with pytest.raises(DataError, match=r"annotation .*b\.png has label values \[7\] outside \[0, 3\)"):
        list(ds)
    Image.fromarray(np.full((40, 60), 1, np.uint8)).save(f"{root}/annotations/training/b.png")
    with open(f"{root}/images/training/a.jpg", "wb") as f:
        f.write(b"broken")
    ds = build_dataset(dict(type="CustomDataset", data_root=root, img_dir="images/training",
                            ann_dir="annotations/training", classes=["x", "y", "z"], pipeline=LOAD))
    ds.set_loader(samples_per_gpu=1, workers_per_gpu=2)
    with pytest.raises(DataError, match=r"cannot decode image .*a\.jpg"):
        list(ds)
    with pytest.raises(ConfigError, match="unknown dataset type 'ADE20K' \\(did you mean 'ADE20KDataset'\\?\\)"):
        build_dataset(dict(type="ADE20K", pipeline=LOAD))


def _custom(root, classes=("a", "b", "c", "d")):
    return build_dataset(dict(type="CustomDataset", data_root=root, img_dir="img", ann_dir="ann",
                              classes=list(classes), pipeline=LOAD))


def test_every_label_value_survives_loading_or_is_refused(tmp_path):
    root = str(tmp_path)
    write_pair(f"{root}/img/a.jpg", None, [])
    os.makedirs(f"{root}/ann")
    label = np.full((40, 60), 1, np.uint16)
    label[5:9, 7:11] = 258                      # was read as 258 % 256 = 2 and trained as class 2
    Image.fromarray(label).save(f"{root}/ann/a.png")
    with Image.open(f"{root}/ann/a.png") as im:
        assert im.mode.startswith("I")          # really a 16-bit PNG
    ds = _custom(root)
    with pytest.raises(DataError, match=r"annotation .*ann/a\.png is a (16|32)-bit label map with values 1\.\.258"):
        ds[0]
    with pytest.raises(DataError, match=r"ann/a\.png"):
        ds.get_gt_seg_map(0)
    ds.set_loader(samples_per_gpu=1, workers_per_gpu=2)
    with pytest.raises(DataError, match=r"ann/a\.png is a (16|32)-bit label map"):
        list(ds)
    label[5:9, 7:11] = 255                      # 16 bits but every value fits: read exactly
    Image.fromarray(label).save(f"{root}/ann/a.png")
    gt = _custom(root)[0]["gt_semantic_seg"]
    assert gt.dtype == np.uint8 and np.array_equal(gt, label.astype(np.uint8))
    Image.fromarray(np.full((40, 60, 3), 1, np.uint8)).save(f"{root}/ann/a.png")     # a colour rendering
    with pytest.raises(DataError, match=r"ann/a\.png is a RGB image of shape \(40, 60, 3\); expected a single-ch"):
        _custom(root)[0]
    Image.fromarray(np.full((40, 60), 1.5, np.float32)).save(f"{root}/ann/a.tif")
    os.replace(f"{root}/ann/a.tif", f"{root}/ann/a.png")
    with pytest.raises(DataError, match=r"ann/a\.png holds float32 values"):
        _custom(root)[0]
    Image.fromarray(np.full((1, 1), 1, np.uint8)).save(f"{root}/ann/a.png")          # was "has shape ()"
    with pytest.raises(DataError, match=r"annotation .*ann/a\.png is 1x1 but its image .*a\.jpg is 40x60"):
        _custom(root)[0]


def test_dataset_indexing_raises_like_iteration(tmp_path):
    """``dataset[i]`` is public: it raises; the worker error record is the loader's internal transport."""
    root = str(tmp_path)
    write_pair(f"{root}/img/a.jpg", f"{root}/ann/a.png", [0, 1])
    write_pair(f"{root}/img/b.jpg", f"{root}/ann/b.png", [0, 1])
    with open(f"{root}/img/b.jpg", "wb") as f:
        f.write(b"broken")
    ds = _custom(root)
    assert ds[0]["gt_semantic_seg"].shape == (40, 60)
    with pytest.raises(DataError, match=r"cannot decode image .*img/b\.jpg"):
        ds[1]
    with pytest.raises(DataError, match=r"cannot decode image .*img/b\.jpg"):
        ds.get_sample(1, np.random.default_rng(0))


def test_files_that_are_not_used_are_reported(tmp_path, capsys):
    root = str(tmp_path)
    write_pair(f"{root}/img/a.jpg", f"{root}/ann/a.png", [0, 1])
    write_pair(f"{root}/img/b.png", f"{root}/ann/b.png", [0, 1])       # an image with another suffix
    write_pair(f"{root}/img2/c.jpg", f"{root}/ann/c.png", [0, 1])      # a label without its image
    ds = _custom(root)
    assert len(ds) == 1
    err = capsys.readouterr().err
    assert "1 file(s) in " in err and "do not end with img_suffix '.jpg' and are not used, e.g. b.png" in err
    assert "2 label map(s) in " in err and "have no image in" in err and "b.png, c.png" in err
