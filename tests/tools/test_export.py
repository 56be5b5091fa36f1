"""python -m jseg.tools.export --format pth: the official fixture checkpoints go through jseg and come back as
PyTorch files with exactly the official tensors, dtypes and key order (read without torch by
jseg/export/torch_zip.py's reader, and by torch when an interpreter with it is at hand)."""
import importlib.util
import os
import shutil
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from jseg.export import torch_zip
from jseg.tools import export
from tests.helpers import (CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH, MICRO_CONFIG, MICRO_PTH, ROOT,
                           SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH)

CASES = {"segnext": (MICRO_CONFIG, MICRO_PTH), "segformer": (SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH),
         "cgrseg": (CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH)}


@pytest.mark.parametrize("family", sorted(CASES))
def test_official_checkpoint_round_trip(family, tmp_path, capsys):
    config, official = CASES[family]
    out = tmp_path / f"{family}.pth"
    assert export.main([config, official, "--format", "pth", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    ref = torch_zip.load(official)["state_dict"]
    got = torch_zip.load(str(out))
    assert list(got["state_dict"]) == list(ref)                       # the same keys, in the same order
    for k, v in ref.items():
        w = got["state_dict"][k]
        assert w.dtype == v.dtype and w.shape == v.shape, (k, w.dtype, v.dtype, w.shape, v.shape)
        np.testing.assert_array_equal(w, v, err_msg=k)
    assert got["meta"]["jseg_version"] and "model" in got["meta"]["config"]
    assert isinstance(got["state_dict"], OrderedDict)


def test_writer_layout_dtypes_and_alignment(tmp_path):
    import zipfile
    obj = OrderedDict([("f", np.arange(6, dtype=np.float32).reshape(2, 3)), ("n", np.array(7, np.int64)),
                       ("t", np.arange(6, dtype=np.float64).reshape(2, 3).T), ("b", np.array([True, False])),
                       ("h", np.ones(3, np.float16)), ("i", np.arange(3, dtype=np.int32))])
    path = torch_zip.save({"meta": {"k": [1, "x"]}, "state_dict": obj}, str(tmp_path / "x.pth"))
    back = torch_zip.load(path)
    assert back["meta"] == {"k": [1, "x"]}
    for k, v in obj.items():
        assert back["state_dict"][k].dtype == v.dtype and back["state_dict"][k].shape == v.shape
        np.testing.assert_array_equal(back["state_dict"][k], v)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl" and "archive/version" in names and "archive/byteorder" in names
        for info in zf.infolist():                                    # data 64-byte aligned, as torch writes
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            assert start % 64 == 0, info.filename
            assert info.compress_type == zipfile.ZIP_STORED
    with pytest.raises(TypeError, match="complex64"):
        torch_zip.save({"x": np.zeros(2, np.complex64)}, str(tmp_path / "c.pth"))
    assert os.listdir(tmp_path) == ["x.pth"]                          # the failed write left nothing


def _torch_python():
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    return os.environ.get("JSEG_TORCH_PYTHON")    # an interpreter with torch (e.g. the perf harness's venv)


@pytest.mark.skipif(_torch_python() is None, reason="no PyTorch here (set JSEG_TORCH_PYTHON to an interpreter "
                                                    "that has it)")
def test_torch_loads_the_export_safely(tmp_path):
    out = tmp_path / "segformer.pth"
    assert export.main([SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH, "--format", "pth", "--out", str(out)]) == 0
    code = ("import sys, torch; a = torch.load(sys.argv[1], weights_only=True); "
            "b = torch.load(sys.argv[2], map_location='cpu', weights_only=False); "
            "sa, sb = a['state_dict'], b['state_dict']; assert list(sa) == list(sb); "
            "assert all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sb); "
            "torch.load(sys.argv[1], mmap=True, weights_only=True); print('TORCH_OK', len(sa))")
    r = subprocess.run([_torch_python(), "-c", code, str(out), SEGFORMER_TINY_PTH], capture_output=True, text=True,
                       timeout=300, cwd=str(tmp_path))
    assert r.returncode == 0 and "TORCH_OK 138" in r.stdout, r.stdout + r.stderr


def test_bad_input_is_one_line(tmp_path, capsys):
    assert export.main([MICRO_CONFIG, str(tmp_path / "none.pth"), "--format", "pth"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    out = tmp_path / "o.pth"
    out.write_bytes(b"someone's file")
    assert export.main([MICRO_CONFIG, MICRO_PTH, "--format", "pth", "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_bytes() == b"someone's file"
    assert export.main([SEGFORMER_TINY_CONFIG, MICRO_PTH, "--format", "pth", "--out", str(tmp_path / "w.pth")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--no-strict" in err and not (tmp_path / "w.pth").exists()


def test_mmseg1_layout_round_trips_to_the_official_one(tmp_path):
    from jseg.checkpoint import to_official_keys
    from jseg.models.backbones import mit
    for config, official in (CASES["segnext"],):
        out = tmp_path / "mm1.pth"
        assert export.main([config, official, "--format", "pth", "--layout", "mmseg1", "--out", str(out)]) == 0
        mm1 = torch_zip.load(str(out))["state_dict"]
        assert any(k.endswith("mlp.dwconv.weight") for k in mm1) and not any("dwconv.dwconv" in k for k in mm1)
        back, _ = to_official_keys(mm1)
        ref = torch_zip.load(official)["state_dict"]
        assert set(back) == set(ref) and all(np.array_equal(back[k], ref[k]) for k in ref)
    # MiT: q/kv joined into in_proj, Linear -> 1x1 conv; its inverse gives the official tensors back
    ref = torch_zip.load(SEGFORMER_TINY_PTH)["state_dict"]
    mm1, _ = mit.official_to_mmseg1(OrderedDict(ref))
    assert "backbone.layers.0.1.0.attn.attn.in_proj_weight" in mm1 and "backbone.layers.3.2.weight" in mm1
    assert mm1["backbone.layers.0.1.0.ffn.layers.0.weight"].ndim == 4
    back, _ = mit.mmseg1_to_official(mm1)
    assert set(back) == set(ref) and all(np.array_equal(back[k], ref[k]) for k in ref)


def test_mmseg1_layout_is_refused_where_mmseg1_differs(tmp_path, capsys):
    out = tmp_path / "s.pth"
    assert export.main([SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH, "--format", "pth", "--layout", "mmseg1",
                        "--out", str(out)]) == 2
    assert "decode_head SegFormerHead has no mmseg-1.x layout" in capsys.readouterr().err and not out.exists()


MMSEG1_STRICT_LOAD = """
import sys
sys.path.insert(0, sys.argv[2])    # jseg/tools: torch_bench's stand-in for mmcv-lite's missing compiled ops
import torch_bench
torch_bench._without_compiled_mmcv_ops()
import torch
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
register_all_modules()
bn = dict(type="BN", requires_grad=True)
model = MODELS.build(dict(type="EncoderDecoder",
    backbone=dict(type="MSCAN", embed_dims=[8, 16, 32, 64], mlp_ratios=[8, 8, 4, 4], depths=[1, 1, 2, 1], norm_cfg=bn),
    decode_head=dict(type="LightHamHead", in_channels=[16, 32, 64], in_index=[1, 2, 3], channels=64, ham_channels=64,
                     ham_kwargs=dict(MD_R=4), num_classes=5, norm_cfg=dict(type="GN", num_groups=32, requires_grad=True))))
sd = torch.load(sys.argv[1], weights_only=True)["state_dict"]
model.load_state_dict(sd, strict=True)
print("MMSEG1_STRICT_OK", len(sd))
"""


@pytest.mark.skipif(_torch_python() is None, reason="no PyTorch here (set JSEG_TORCH_PYTHON to an interpreter "
                                                    "that has torch and mmseg 1.x)")
def test_mmseg1_builds_and_loads_the_mmseg1_export_strictly(tmp_path):
    out = tmp_path / "mm1.pth"
    config, official = CASES["segnext"]
    assert export.main([config, official, "--format", "pth", "--layout", "mmseg1", "--out", str(out)]) == 0
    tools = os.path.dirname(os.path.abspath(export.__file__))
    r = subprocess.run([_torch_python(), "-c", MMSEG1_STRICT_LOAD, str(out), tools], capture_output=True, text=True,
                       timeout=300, cwd=str(tmp_path))
    if "No module named 'mmseg'" in r.stderr:
        pytest.skip("that interpreter has no mmseg")
    assert r.returncode == 0 and "MMSEG1_STRICT_OK 246" in r.stdout, r.stdout + r.stderr[-3000:]


def test_onnx_cli_writes_a_checked_graph_and_says_when_the_shape_stays_fixed(tmp_path, capsys):
    onnx = pytest.importorskip("onnx", reason="test dependency: scripts/run_tests.sh installs onnx")
    ckpt = tmp_path / "cgrseg.pth"
    shutil.copy(CGRSEG_TINY_PTH, ckpt)
    assert export.main([CGRSEG_TINY_CONFIG, str(ckpt), "--format", "onnx", "--shape", "128", "160",
                        "--dynamic"]) == 0
    out = capsys.readouterr().out
    assert "note: --dynamic: exported at the fixed shape 1x3x128x160" in out
    model = onnx.load(str(tmp_path / "cgrseg.onnx"))   # the default name: the checkpoint's, with .onnx
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == "input" and dims == [1, 3, 128, 160]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert sorted(os.listdir(tmp_path)) == ["cgrseg.onnx", "cgrseg.pth"]   # no temporary file left
    assert export.main([CGRSEG_TINY_CONFIG, str(ckpt), "--format", "onnx"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert export.main([MICRO_CONFIG, MICRO_PTH, "--format", "onnx", "--layout", "mmseg1",
                        "--out", str(tmp_path / "x.onnx")]) == 2
    assert "--layout is for --format pth" in capsys.readouterr().err


def test_onnx_without_the_onnx_package_is_one_line(tmp_path):
    fake = tmp_path / "site" / "onnx"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named onnx')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), ROOT]))
    r = subprocess.run([sys.executable, "-m", "jseg.tools.export", MICRO_CONFIG, MICRO_PTH, "--format", "onnx",
                        "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "pip install 'onnx<1.18'" in r.stderr
    assert not (tmp_path / "m.onnx").exists()
