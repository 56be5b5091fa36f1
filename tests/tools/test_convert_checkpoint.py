"""python -m jseg.tools.convert_checkpoint: official .pth -> .pkl that loads to identical outputs."""
import subprocess
import sys

import numpy as np
import jittor as jt

from jseg.models.random_streams import random_streams
from jseg.checkpoint import load_checkpoint, read_checkpoint
from jseg.models import build_segmentor
from jseg.tools import convert_checkpoint
from tests.helpers import MICRO_CONFIG, MICRO_PTH, MICRO_STATE_NPZ, ROOT, load_npz, micro_config, micro_model


def _logits(model):
    f = load_npz("segnext_micro_ade5_random_eval_2x3x100x132.npz")
    model.eval()
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
        return model.encode_decode(jt.array(f["input"])).numpy()


def test_cli_converts_official_checkpoint_to_identical_outputs(tmp_path):
    dst = tmp_path / "micro.pkl"
    r = subprocess.run([sys.executable, "-m", "jseg.tools.convert_checkpoint", MICRO_PTH, str(dst)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked against the model of meta['config']" in r.stdout and "loaded 246 tensors" in r.stdout
    sd, meta = read_checkpoint(str(dst))
    assert meta["converted_from"].endswith("segnext_micro_ade5_random.pth") and "model = " in meta["config"]
    model = build_segmentor(micro_config().model)
    assert load_checkpoint(model, str(dst))[0].ok
    assert np.array_equal(_logits(model), _logits(micro_model()))


def test_mmseg1x_state_dict_converted_to_official_names(tmp_path):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    src = tmp_path / "mm1.npz"
    np.savez(src, **{k.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv."): v for k, v in sd.items()})
    dst = tmp_path / "out.pkl"
    assert convert_checkpoint.main([str(src), str(dst), "--config", MICRO_CONFIG]) == 0
    out, _ = read_checkpoint(str(dst))
    assert list(out) == list(sd)
    assert all(np.array_equal(out[k], sd[k]) for k in sd)


def test_no_config_converts_keys_unchecked_with_warning(tmp_path, capsys):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    src = tmp_path / "mm1.npz"
    np.savez(src, **{k.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv."): v for k, v in sd.items()})
    assert convert_checkpoint.main([str(src), str(tmp_path / "o.pkl")]) == 0
    assert "without checking" in capsys.readouterr().out
    assert list(read_checkpoint(str(tmp_path / "o.pkl"))[0]) == list(sd)


def test_broken_checkpoint_is_refused_and_nothing_written(tmp_path, capsys):
    sd, _ = read_checkpoint(MICRO_STATE_NPZ)
    del sd["backbone.norm4.weight"]
    sd["decode_head.conv_seg.weight"] = np.zeros((3, 64, 1, 1), np.float32)
    src = tmp_path / "broken.npz"
    np.savez(src, **sd)
    dst = tmp_path / "out.pkl"
    assert convert_checkpoint.main([str(src), str(dst), "--config", MICRO_CONFIG]) == 2
    err = capsys.readouterr().err
    assert "backbone.norm4.weight" in err and "decode_head.conv_seg.weight" in err
    assert len(err.strip().splitlines()) == 1 and "pass --no-strict to convert the matching keys anyway" in err
    assert not dst.exists()


def test_an_existing_destination_is_not_replaced_unless_forced(tmp_path, capsys):
    dst = tmp_path / "out.pkl"
    dst.write_bytes(b"precious")
    assert convert_checkpoint.main([MICRO_STATE_NPZ, str(dst), "--config", MICRO_CONFIG]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err and dst.read_bytes() == b"precious"
    assert convert_checkpoint.main([MICRO_STATE_NPZ, str(dst), "--config", MICRO_CONFIG, "--force"]) == 0
    assert read_checkpoint(str(dst))[0]


def test_segformer_checkpoint_converts_to_identical_outputs(tmp_path):
    from jseg.config import Config
    from tests.helpers import SEGFORMER, SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH
    dst = tmp_path / "segformer_tiny.pkl"
    assert convert_checkpoint.main([SEGFORMER_TINY_PTH, str(dst), "--config", SEGFORMER_TINY_CONFIG]) == 0
    src_sd, _ = read_checkpoint(SEGFORMER_TINY_PTH)
    out, meta = read_checkpoint(str(dst))
    assert list(out) == list(src_sd)   # (num_batches_tracked: 0-d in the output, (1,) as read from the .pth)
    assert all(np.array_equal(out[k].reshape(-1), np.asarray(src_sd[k]).reshape(-1)) for k in src_sd)
    model = build_segmentor(Config.fromfile(SEGFORMER_TINY_CONFIG).model).eval()
    load_checkpoint(model, str(dst))
    f = load_npz("segformer_tiny_eval_b2_128x160.npz", SEGFORMER)
    np.testing.assert_allclose(model.encode_decode(jt.array(f["input"])).numpy(), f["final_logits"], atol=1e-4)
