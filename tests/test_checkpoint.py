"""Checkpoint reading, key maps, strict refusal and atomic saving."""
import os
import pickle
import sys

import numpy as np
import jittor as jt
import pytest

from jseg.models.random_streams import random_streams
from jseg.checkpoint import CheckpointError, load_checkpoint, load_state_dict, read_checkpoint, save_checkpoint
from jseg.models import build_segmentor
from tests.helpers import MICRO_PTH, MICRO_STATE_NPZ, load_npz, micro_config, micro_model

EVAL = "segnext_micro_ade5_random_eval_2x3x128x160.npz"


def _logits(model):
    f = load_npz(EVAL)
    model.eval()
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
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


# ----------------------------------------------------------------------------- SegFormer layouts

def _nv_to_mmseg1_mit(sd, prefix="backbone."):
    """mmseg's mit2mmseg.py mapping, written out here independently: NVlabs MiT -> mmseg-1.x layout."""
    out = {}
    for k, v in sd.items():
        if not k.startswith(prefix):
            continue
        k = k[len(prefix):]
        if k.startswith("patch_embed"):
            s, rest = int(k[len("patch_embed")]), k.split(".", 1)[1]
            out[f"layers.{s - 1}.0.{rest.replace('proj.', 'projection.')}"] = v
        elif k.startswith("block"):
            s, rest = int(k[len("block")]), k.split(".", 1)[1]
            j, sub = rest.split(".", 1)
            base = f"layers.{s - 1}.1.{j}."
            if sub.startswith("attn.q."):
                kind = sub.rsplit(".", 1)[1]
                out[base + f"attn.attn.in_proj_{kind}"] = np.concatenate(
                    [v, sd[f"{prefix}block{s}.{j}.attn.kv.{kind}"]], 0)
            elif sub.startswith("attn.kv."):
                continue
            elif sub.startswith("attn.proj."):
                out[base + "attn.attn.out_proj." + sub.rsplit(".", 1)[1]] = v
            elif sub.startswith("mlp."):
                name, kind = sub.rsplit(".", 1)
                idx = {"mlp.fc1": 0, "mlp.dwconv.dwconv": 1, "mlp.fc2": 4}[name]
                out[base + f"ffn.layers.{idx}.{kind}"] = v.reshape(*v.shape, 1, 1) if idx != 1 and kind == "weight" \
                    else v
            else:
                out[base + sub] = v
        elif k.startswith("norm"):
            s, rest = int(k[len("norm")]), k.split(".", 1)[1]
            out[f"layers.{s - 1}.2.{rest}"] = v
    return out


def _segformer_fresh():
    from jseg.config import Config
    from tests.helpers import SEGFORMER_TINY_CONFIG
    return build_segmentor(Config.fromfile(SEGFORMER_TINY_CONFIG).model).eval()


def test_segformer_imagenet_mit_and_mmseg1_backbone_layouts(tmp_path):
    from tests.helpers import SEGFORMER, SEGFORMER_TINY_PTH
    sd, _ = read_checkpoint(SEGFORMER_TINY_PTH)
    f = load_npz("segformer_tiny_eval_b1_100x132.npz", SEGFORMER)
    head = {k: v for k, v in sd.items() if k.startswith("decode_head.")}

    # NVlabs ImageNet mit_b*.pth: flat backbone keys plus the classifier head.*
    imagenet = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    imagenet.update({"head.weight": np.zeros((1000, 32), np.float32), "head.bias": np.zeros(1000, np.float32)})
    np.savez(tmp_path / "mit_tiny.npz", **imagenet)
    model = _segformer_fresh()
    report, _ = load_checkpoint(model.backbone, str(tmp_path / "mit_tiny.npz"))
    assert report.ok and sorted(k for k, _ in report.dropped) == ["head.bias", "head.weight"]
    load_state_dict(model.decode_head, {k[len("decode_head."):]: v for k, v in head.items()}, target="module")
    np.testing.assert_allclose(model.encode_decode(jt.array(f["input"])).numpy(), f["final_logits"], atol=1e-4)

    # mmseg-1.x MiT layout (fused in_proj, 1x1-conv FFN), as a whole segmentor and as a bare backbone
    mm1 = _nv_to_mmseg1_mit(sd)
    assert any(k.endswith("attn.attn.in_proj_weight") for k in mm1) and not any(".kv." in k for k in mm1)
    np.savez(tmp_path / "mm1_seg.npz", **{"backbone." + k: v for k, v in mm1.items()}, **head)
    model = _segformer_fresh()
    report, _ = load_checkpoint(model, str(tmp_path / "mm1_seg.npz"))
    assert report.ok and len(report.renamed) == len([k for k in sd if k.startswith("backbone.")])
    np.testing.assert_allclose(model.encode_decode(jt.array(f["input"])).numpy(), f["final_logits"], atol=1e-4)
    np.savez(tmp_path / "mm1_backbone.npz", **mm1)
    report, _ = load_checkpoint(model.backbone, str(tmp_path / "mm1_backbone.npz"))
    assert report.ok


def test_mmseg1_segformer_head_is_refused_with_an_explanation(tmp_path):
    from tests.helpers import SEGFORMER_TINY_PTH
    sd, _ = read_checkpoint(SEGFORMER_TINY_PTH)
    mm1 = {"backbone." + k: v for k, v in _nv_to_mmseg1_mit(sd).items()}
    mm1.update({"decode_head.conv_seg.weight": sd["decode_head.conv_seg.weight"],
                "decode_head.conv_seg.bias": sd["decode_head.conv_seg.bias"],
                "decode_head.convs.0.conv.weight": np.zeros((16, 8, 1, 1), np.float32),
                "decode_head.fusion_conv.conv.weight": np.zeros((16, 64, 1, 1), np.float32)})
    np.savez(tmp_path / "mm1_full.npz", **mm1)
    with pytest.raises(CheckpointError, match="mmseg-1.x's SegformerHead"):
        load_checkpoint(_segformer_fresh(), str(tmp_path / "mm1_full.npz"))


# ----------------------------------------------------------------------------- CGRSeg layouts

def _cgrseg_fresh(**head):
    from jseg.config import Config
    from tests.helpers import CGRSEG_TINY_CONFIG
    cfg = Config.fromfile(CGRSEG_TINY_CONFIG)
    cfg.model.decode_head.update(head)
    return build_segmentor(cfg.model).eval()


def test_cgrseg_imagenet_efficientformer_checkpoint(tmp_path):
    """DeiT-style {'model': ...}: head/dist_head/final norm dropped, the seg-only bias tables keep their init."""
    from tests.helpers import CGRSEG_TINY_PTH
    sd, _ = read_checkpoint(CGRSEG_TINY_PTH)
    model_sd = {k[len("backbone."):]: v for k, v in sd.items()
                if k.startswith("backbone.") and not k.endswith(("attention_biases_seg", "attention_bias_idxs_seg"))}
    model_sd.update({"norm.weight": np.ones(32, np.float32), "norm.bias": np.zeros(32, np.float32),
                     "head.weight": np.zeros((1000, 32), np.float32), "head.bias": np.zeros(1000, np.float32),
                     "dist_head.weight": np.zeros((1000, 32), np.float32),
                     "dist_head.bias": np.zeros(1000, np.float32)})
    path = tmp_path / "eformer_tiny.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": model_sd, "epoch": 449, "args": None}, f)
    model = _cgrseg_fresh()
    report, _ = load_checkpoint(model.backbone, str(path))
    assert report.ok and len(report.dropped) == 6 and len(report.initialised) == 6
    assert "kept at initialisation (6" in str(report)
    w = model.backbone.network[6][1].token_mixer.q[0].weight.numpy()
    assert np.array_equal(w, sd["backbone.network.6.1.token_mixer.q.0.weight"])
    assert np.abs(model.backbone.network[6][1].token_mixer.attention_biases_seg.numpy()).max() == 0


def test_cgrseg_legacy_linear_fuse_spelling(tmp_path):
    from tests.helpers import CGRSEG_TINY_PTH
    sd, _ = read_checkpoint(CGRSEG_TINY_PTH)
    legacy = {k: v for k, v in sd.items() if not k.startswith("decode_head.linear_fuse.")}
    legacy["decode_head.linear_fuse.weight"] = sd["decode_head.linear_fuse.conv.weight"]
    legacy["decode_head.linear_fuse.bias"] = np.full(16, 0.25, np.float32)
    np.savez(tmp_path / "legacy.npz", **legacy)
    with pytest.raises(CheckpointError, match="legacy_linear_fuse=True"):
        load_checkpoint(_cgrseg_fresh(), str(tmp_path / "legacy.npz"))
    model = _cgrseg_fresh(legacy_linear_fuse=True)
    report, _ = load_checkpoint(model, str(tmp_path / "legacy.npz"))
    assert report.ok
    x = jt.array(np.random.default_rng(0).standard_normal((1, 16, 4, 5)).astype(np.float32))
    w = sd["decode_head.linear_fuse.conv.weight"].reshape(16)
    np.testing.assert_allclose(model.decode_head.linear_fuse(x).numpy(),
                               x.numpy() * w[None, :, None, None] + 0.25, rtol=1e-6, atol=1e-6)
    with pytest.raises(CheckpointError, match="without legacy_linear_fuse"):
        load_checkpoint(_cgrseg_fresh(legacy_linear_fuse=True), CGRSEG_TINY_PTH)


def test_cgrseg_index_buffers_are_written_as_int64(tmp_path):
    from tests.helpers import CGRSEG_TINY_PTH
    model = _cgrseg_fresh()
    load_checkpoint(model, CGRSEG_TINY_PTH)
    save_checkpoint(str(tmp_path / "c.pkl"), model=model)
    out, _ = read_checkpoint(str(tmp_path / "c.pkl"))
    assert out["backbone.network.5.attn.attention_bias_idxs_seg"].dtype == np.int64
    assert out["backbone.network.5.attn.attention_bias_idxs_seg"].shape == (16, 64)


def _jseg_jittor_checkpoint(path, config, official_pth):
    """A checkpoint in the layout of JSeg's runner (github.com/Jittor/JSeg, python/jseg/runner/runner.py:
    jt.save of {'meta': {jseg_version, epoch, iter, max_iter, max_epoch, save_time, config}, 'model':
    model.state_dict() (Vars; Jittor's BN has no num_batches_tracked), 'scheduler', 'optimizer'}), written by
    jt.save itself (pickle protocol 4 + SHA-1 + trailer), from the official fixture's weights."""
    sd, _ = read_checkpoint(official_pth)
    model_sd = {k: jt.array(v) for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    jt.save({"meta": {"jseg_version": "0.1.0", "epoch": None, "iter": 160000, "max_iter": 160000,
                      "max_epoch": None, "save_time": "2023-01-01 00:00:00", "config": "model = dict(...)"},
             "model": model_sd, "scheduler": {"lr": 0.0}, "optimizer": {"defaults": {}}}, str(path))
    return sd


@pytest.mark.parametrize("family", ["segnext", "segformer"])
def test_jseg_jittor_checkpoints_load_like_any_other(tmp_path, family):
    from jseg.apis import init_model
    from jseg.checkpoint import model_state_dict
    from tests.helpers import MICRO_CONFIG, SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH
    config, official = {"segnext": (MICRO_CONFIG, MICRO_PTH),
                        "segformer": (SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH)}[family]
    path = tmp_path / "ckpt_160000.pkl"
    sd = _jseg_jittor_checkpoint(path, config, official)
    assert open(path, "rb").read()[-8:] == b"HCAJSLHD"                   # Jittor's own file trailer
    model = init_model(config, device="cpu")
    report, meta = load_checkpoint(model, str(path))
    counters = [k for k in sd if k.endswith("num_batches_tracked")]
    assert report.ok and report.loaded == len(sd) - len(counters) and sorted(report.initialised) == sorted(counters)
    assert "JSeg (Jittor)" in str(report) and "no counter" in str(report) and meta["iter"] == 160000
    got = model_state_dict(model)
    for k, v in sd.items():
        if not k.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(got[k], v.reshape(got[k].shape), err_msg=k)
    # a missing real weight is still refused
    bad = jt.load(str(path))
    bad["model"].pop(next(k for k in bad["model"] if k.endswith("weight")))
    jt.save(bad, str(tmp_path / "bad.pkl"))
    with pytest.raises(CheckpointError, match="missing keys \\(1\\)"):
        load_checkpoint(init_model(config, device="cpu"), str(tmp_path / "bad.pkl"))


def test_convert_checkpoint_takes_a_jseg_jittor_checkpoint(tmp_path):
    from jseg.tools import convert_checkpoint
    from tests.helpers import MICRO_CONFIG
    path = tmp_path / "ckpt.pkl"
    sd = _jseg_jittor_checkpoint(path, MICRO_CONFIG, MICRO_PTH)
    out = tmp_path / "converted.pkl"
    assert convert_checkpoint.main([str(path), str(out), "--config", MICRO_CONFIG]) == 0
    conv, meta = read_checkpoint(str(out))
    assert list(conv) == list(sd)
    assert all(np.array_equal(conv[k].reshape(sd[k].shape), sd[k]) for k in sd if "num_batches" not in k)
