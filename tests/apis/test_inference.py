"""Inference without a dataset: odd sizes, seeds, the folder CLI with a corrupted file, overlays."""
import os

import cv2
import numpy as np
import pytest

from jseg.apis import inference_model, init_model
from jseg.checkpoint import save_checkpoint
from jseg.tools import infer
from tests.helpers import ROOT

CONFIG = f"{ROOT}/configs/quickstart/segnext_toy.py"


@pytest.fixture(scope="module")
def model_and_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("inf")
    model = init_model(CONFIG)                       # random weights are enough here
    ckpt = save_checkpoint(str(d / "toy.pkl"), model)
    return init_model(CONFIG, ckpt), ckpt


def test_odd_size_image_comes_back_at_its_size(model_and_ckpt):
    model, _ = model_and_ckpt
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    label = inference_model(model, img)
    assert label.shape == (37, 53) and label.dtype == np.int64 and label.max() < 6
    labels, probs = inference_model(model, [img, img[:20, :31]], return_probs=True)
    assert [l.shape for l in labels] == [(37, 53), (20, 31)] and probs[1].shape == (6, 20, 31)
    np.testing.assert_allclose(probs[0].sum(0), 1.0, atol=1e-5)
    assert model.load_report.ok and model.CLASSES[1] == "disc" and len(model.PALETTE) == 6


def test_seed_makes_the_output_reproducible(model_and_ckpt):
    model, _ = model_and_ckpt
    img = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    a = inference_model(model, img, seed=7, return_probs=True)[1]
    b = inference_model(model, img, seed=7, return_probs=True)[1]
    c = inference_model(model, img, seed=8, return_probs=True)[1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)                  # other bases (the labels themselves may agree)


def test_folder_cli_with_a_corrupted_file(model_and_ckpt, tmp_path, capsys):
    _, ckpt = model_and_ckpt
    src = tmp_path / "imgs"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    cv2.imwrite(str(src / "a.jpg"), rng.integers(0, 256, (41, 67, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "sub" / "b.png"), rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not an image")
    out = tmp_path / "out"
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(out), "--opacity", "0.4"]) == 2   # one input unusable
    text = capsys.readouterr().out
    assert "wrote 2 label map(s) and 2 overlay(s)" in text and "skipped 1 unreadable image(s)" in text
    assert "broken.jpg" in text
    assert sorted(os.listdir(out)) == ["a.jpg.overlay.png", "a.jpg.png", "sub"]
    assert cv2.imread(str(out / "a.jpg.overlay.png")).shape == (41, 67, 3)           # the image's size
    from PIL import Image
    with Image.open(out / "sub" / "b.png.png") as im:
        assert im.mode == "P" and im.size == (30, 30) and np.array(im).max() < 6  # class ids + palette


def test_infer_never_writes_two_inputs_to_one_output(model_and_ckpt, tmp_path, capsys):
    """``dup.jpg`` and ``dup.png`` used to both become ``dup.png`` (the summary counted 2, 1 existed)."""
    _, ckpt = model_and_ckpt
    src = tmp_path / "imgs"
    src.mkdir()
    rng = np.random.default_rng(4)
    cv2.imwrite(str(src / "dup.jpg"), rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "dup.png"), rng.integers(0, 256, (32, 20, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(out)]) == 0
    assert "wrote 2 label map(s) and 2 overlay(s)" in capsys.readouterr().out
    files = sorted(os.listdir(out))
    assert files == ["dup.jpg.overlay.png", "dup.jpg.png", "dup.png.overlay.png", "dup.png.png"]
    assert cv2.imread(str(out / "dup.jpg.png")).shape[:2] == (24, 40)
    assert cv2.imread(str(out / "dup.png.png")).shape[:2] == (32, 20)
    # a second run does not overwrite what the first wrote, unless asked to
    before = (out / "dup.jpg.png").stat().st_mtime_ns
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(out)]) == 2
    assert "4 output file(s) already exist" in capsys.readouterr().err
    assert (out / "dup.jpg.png").stat().st_mtime_ns == before
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(out), "--force"]) == 0
    # an output folder inside the input folder is not read as input
    nested = src / "labels"
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(nested)]) == 0
    assert infer.main([CONFIG, ckpt, str(src), "--out", str(nested), "--force"]) == 0
    assert "not reading the 4 image(s) under the output folder" in capsys.readouterr().out
    assert sorted(os.listdir(nested)) == files


def test_infer_user_errors_are_one_line_with_status_2(model_and_ckpt, tmp_path, capsys):
    _, ckpt = model_and_ckpt
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = ["--out", str(tmp_path / "o")]
    cases = [([CONFIG, ckpt, str(tmp_path / "nothing*.jpg")] + out, "no images"),
             ([str(tmp_path / "missing.py"), ckpt, str(img)] + out, "config file not found"),
             ([CONFIG, str(tmp_path / "missing.pkl"), str(img)] + out, "checkpoint not found"),
             ([CONFIG, ckpt, str(img), "--out", str(blocker / "sub")], "cannot write to --out")]
    for argv, message in cases:
        assert infer.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("infer: ") and message in err[0], err


def test_an_image_gets_the_same_labels_wherever_it_is_in_the_list(model_and_ckpt):
    """With a seed the Ham bases come from the image, not its position (7,388 of 65,536 pixels differed)."""
    model, _ = model_and_ckpt
    rng = np.random.default_rng(5)
    p, q = (rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(2))
    _, probs = inference_model(model, [p, p, q, p], seed=0, return_probs=True)
    alone = inference_model(model, p, seed=0, return_probs=True)[1]
    for i in (0, 1, 3):
        assert np.array_equal(probs[i], alone)
    assert np.array_equal(inference_model(model, [q, p], seed=0, return_probs=True)[1][1], alone)
    assert not np.array_equal(inference_model(model, p, seed=1, return_probs=True)[1], alone)


def test_padding_pipeline_is_cropped_off_before_rescaling():
    """CGRSeg's test pipeline pads to a multiple of 32; the probabilities come from the unpadded area only."""
    import jittor as jt
    from jittor import nn
    from jseg.config import Config
    from tests.helpers import CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH
    cfg = Config.fromfile(CGRSEG_TINY_CONFIG)
    pad32 = Config.fromfile(f"{ROOT}/configs/_base_/datasets/ade20k_pad32.py").data.test.pipeline
    pad32[1]["img_scale"] = (132, 100)   # keep the 100x132 image at its size: padded to 128x160
    cfg.data = dict(test=dict(pipeline=pad32))
    model = init_model(cfg, CGRSEG_TINY_PTH)
    img = np.random.default_rng(3).integers(0, 256, (100, 132, 3), dtype=np.uint8)
    _, prob = inference_model(model, img, return_probs=True)
    assert prob.shape == (16, 100, 132)
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    x = np.zeros((1, 3, 128, 160), np.float32)
    x[0, :, :100, :132] = ((img[:, :, ::-1] - mean) / std).transpose(2, 0, 1)
    with jt.no_grad():
        logits = model.encode_decode(jt.array(x))
        cropped = nn.softmax(logits[:, :, :100, :132], dim=1).numpy()[0]
        squeezed = nn.softmax(nn.interpolate(logits, size=(100, 132), mode="bilinear"), dim=1).numpy()[0]
    np.testing.assert_allclose(prob, cropped, atol=1e-5)
    assert np.abs(prob - squeezed).max() > 1e-2   # resizing the padded map instead would be visibly different
