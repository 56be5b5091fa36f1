"""Checkpoint reading, key maps, strict refusal and atomic saving."""
import os
import pickle
import sys

import numpy as np
import jittor as jt
import pytest

from jseg.checkpoint import CheckpointError, load_checkpoint, load_state_dict, read_checkpoint, save_checkpoint
from jseg.models import build_segmentor
from tests.helpers import MICRO_PTH, MICRO_STATE_NPZ, load_npz, micro_config, micro_model

EVAL = "segnext_micro_ade5_random_eval_2x3x128x160.npz"


def _logits(model):
    f = load_npz(EVAL)
    model.eval()
    model.inject_nmf_bases([f["nmf_bases"]])
    return model.encode_decode(jt.array(f["input"])).numpy()


@pytest.fixture(scope="module")
def reference_logits():
    return _logits(micro_model())


def _fresh():
    return build_segmentor(micro_config().model)


def test_official_pth_without_torch():
    sd, meta = read_checkpoint(MICRO_PTH)
    assert "torch" not in sys.modules
    assert len(sd) == 246 and "random init" in meta["mmseg_version"]
    report, _ = load_checkpoint(_fresh(), MICRO_PTH)
    assert report.ok and report.loaded == 246 and report.layout == "segmentor"


def test_pth_values_equal_torch_free_npz():
    sd, _ = read_checkpoint(MICRO_PTH)
    npz, _ = read_checkpoint(MICRO_STATE_NPZ)
    assert list(sd) == list(npz)
    for k in sd:
        assert np.array_equal(sd[k].reshape(npz[k].shape), npz[k]), k


def test_mmseg1x_layout_gives_identical_outputs(tmp_path, reference_logits):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    mm1 = {k.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv."): v for k, v in sd.items()}
    assert sum(".mlp.dwconv.weight" in k for k in mm1) == 5
    path = tmp_path / "mm1.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"meta": {}, "state_dict": mm1}, fh)
    model = _fresh()
    report, _ = load_checkpoint(model, str(path))
    assert report.ok and len(report.renamed) == 10
    assert np.array_equal(_logits(model), reference_logits)


def test_imagenet_backbone_checkpoint(tmp_path):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    backbone = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    backbone["head.weight"] = np.zeros((1000, 64), np.float32)
    backbone["head.bias"] = np.zeros((1000,), np.float32)
    path = str(tmp_path / "mscan_micro.npz")
    np.savez(path, **backbone)
    model = _fresh()
    report, _ = load_checkpoint(model.backbone, path)
    assert report.ok and report.layout == "backbone"
    assert sorted(k for k, _ in report.dropped) == ["head.bias", "head.weight"]
    w = model.backbone.block4[0].mlp.fc2.weight.numpy()
    assert np.array_equal(w, sd["backbone.block4.0.mlp.fc2.weight"])
    # the same file into the whole segmentor: strict refusal names the decode-head keys it lacks
    with pytest.raises(CheckpointError, match=r"missing keys \(13\): decode_head\.align"):
        load_checkpoint(_fresh(), path)
    # and through the config's init_cfg, as training will load it
    cfg = micro_config()
    cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=path)
    m2 = build_segmentor(cfg.model)
    report, _ = m2.init_weights()
    assert report.ok and np.array_equal(m2.backbone.block4[0].mlp.fc2.weight.numpy(), w)


def test_plain_state_dict_and_module_prefix(tmp_path, reference_logits):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    path = tmp_path / "plain.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"module." + k: v for k, v in sd.items()}, fh)
    model = _fresh()
    assert load_checkpoint(model, str(path))[0].ok
    assert np.array_equal(_logits(model), reference_logits)


def test_missing_unexpected_and_misshaped_keys_are_refused():
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    model = _fresh()
    before = model.decode_head.conv_seg.weight.numpy().copy()

    missing = dict(sd)
    del missing["decode_head.align.gn.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): decode_head\.align\.gn\.bias"):
        load_state_dict(model, missing)

    wrong = dict(sd)
    wrong["decode_head.conv_seg.weight"] = np.zeros((7, 64, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"decode_head\.conv_seg\.weight checkpoint \(7, 64, 1, 1\) vs "
                                              r"model \(5, 64, 1, 1\)"):
        load_state_dict(model, wrong)

    extra = dict(sd)
    extra["decode_head.aux.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): decode_head\.aux\.weight"):
        load_state_dict(model, extra)
    assert np.array_equal(model.decode_head.conv_seg.weight.numpy(), before), "a refused load changed the model"

    report = load_state_dict(model, wrong, strict=False)
    assert not report.ok and report.loaded == 245
    assert np.array_equal(model.decode_head.conv_seg.weight.numpy(), before)
    assert np.array_equal(model.decode_head.conv_seg.bias.numpy(), sd["decode_head.conv_seg.bias"])


def test_unreadable_files_give_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pth"):
        read_checkpoint(str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.pth"):
        read_checkpoint(str(bad))
    lst = tmp_path / "list.pkl"
    lst.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_checkpoint(str(lst))


def test_save_checkpoint_round_trip_is_atomic(tmp_path, reference_logits):
    model = micro_model()
    path = str(tmp_path / "sub" / "ckpt.pkl")
    save_checkpoint(path, model, meta={"iter": 3})
    assert os.listdir(tmp_path / "sub") == ["ckpt.pkl"]  # no temp file left behind
    sd, meta = read_checkpoint(path)
    assert meta == {"iter": 3}
    nbt = sd["backbone.patch_embed1.proj.1.num_batches_tracked"]
    assert nbt.shape == () and nbt.dtype == np.int64
    official, _ = read_checkpoint(MICRO_STATE_NPZ)
    for k, v in official.items():
        assert sd[k].shape == v.shape and sd[k].dtype == v.dtype and np.array_equal(sd[k], v), k
    m2 = _fresh()
    load_checkpoint(m2, path)
    assert np.array_equal(_logits(m2), reference_logits)
    # a failing write leaves the previous file intact
    with pytest.raises((TypeError, AttributeError, pickle.PicklingError)):
        save_checkpoint(path, state_dict={"a": np.zeros(1)}, meta={"bad": lambda: 0})
    assert read_checkpoint(path)[1] == {"iter": 3}
    assert sorted(os.listdir(tmp_path / "sub")) == ["ckpt.pkl"]
