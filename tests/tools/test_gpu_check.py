"""jseg.tools.gpu_check: the report, the speed table's bookkeeping, and the environment check on this machine.
(The whole --cpu sequence is `bash scripts/gpu_check.sh --cpu --out DIR`: minutes, run by hand.)"""
import json
import os
import subprocess
import sys

from jseg.tools import gpu_check, torch_bench
from tests.helpers import ROOT


def test_speed_rows_pair_jseg_with_torch_and_fail_on_any_failure(monkeypatch):
    monkeypatch.setattr(gpu_check, "torch_available", lambda py: ("2.13.0 1.2.2 True", ""))
    monkeypatch.setattr(gpu_check, "_jseg_bench",
                        lambda config, mode, device, size, fp16, timeout: {"ok": True, "s_per_iter": 0.5,
                                                                           "peak_mib": 100})
    monkeypatch.setattr(gpu_check, "_torch_bench",
                        lambda py, name, mode, device, size, timeout: {"ok": True, "s_per_iter": 0.25})
    r = gpu_check.check_speed("cuda", gpu_check.SIZES["cuda"], "python", 10)
    assert r["ok"] and len(r["rows"]) == 3 * 2 * 2                  # 3 models x eval/train x fp32/float16
    fp32 = [row for row in r["rows"] if row["precision"] == "float32"]
    assert all(row["ratio"] == 2.0 for row in fp32)
    assert all("torch" not in row for row in r["rows"] if row["precision"] == "float16")
    monkeypatch.setattr(gpu_check, "_torch_bench", lambda *a: {"ok": False, "why": "boom"})
    assert not gpu_check.check_speed("cuda", gpu_check.SIZES["cuda"], "python", 10)["ok"]


def test_speed_without_torch_says_why_and_cpu_has_no_mixed_precision(monkeypatch):
    monkeypatch.setattr(gpu_check, "_jseg_bench", lambda *a: {"ok": True, "s_per_iter": 0.1, "peak_mib": 1})
    r = gpu_check.check_speed("cpu", gpu_check.SIZES["cpu"], None, 10)
    assert r["ok"] and r["torch"] == "skipped: --skip-torch" and len(r["rows"]) == 6
    assert {row["precision"] for row in r["rows"]} == {"float32"} and "needs CUDA" in r["note"]


def test_report_files(tmp_path):
    report = {"device": "cpu", "date": "2026-12-03 10:00:00", "ok": False, "checks": {
        "parity": {"ok": True, "seconds": 3.0, "summary": "40 passed"},
        "speed": {"ok": False, "torch": "skipped: x", "rows": [
            {"model": "SegNeXt-T", "mode": "eval", "precision": "float32",
             "jseg": {"ok": False, "why": "CUDA error"}}], "why": "CUDA error"},
        "training": {"ok": True, "skipped": "mpirun not found"}}}
    gpu_check.write_report(report, str(tmp_path))
    assert json.load(open(tmp_path / "report.json")) == report
    md = open(tmp_path / "report.md").read()
    assert "Result: **FAIL**" in md and "## parity: pass" in md and "40 passed" in md
    assert "## speed: FAIL" in md and "| SegNeXt-T | eval | float32 | failed |" in md and "CUDA error" in md
    assert "## training: skipped" in md
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]   # no temp files left


def test_environment_check_on_this_machine(tmp_path):
    r = subprocess.run([sys.executable, "-m", "jseg.tools.gpu_check", "--cpu", "--only", "environment",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env = json.load(open(tmp_path / "report.json"))["checks"]["environment"]
    assert env["ok"] and env["info"]["jittor"] == "1.3.11.0" and "use_tensorcore" in env["info"]["flags"]
    assert env["info"]["flags"]["use_tensorcore"] == 0                   # TF32 off unless asked


def test_cuda_check_without_cuda_is_one_line_and_status_2(tmp_path):
    import jittor as jt
    import pytest
    if jt.has_cuda:
        pytest.skip("this machine has CUDA")
    r = subprocess.run([sys.executable, "-m", "jseg.tools.gpu_check", "--only", "environment", "--out",
                        str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Jittor found no CUDA" in r.stderr and "Traceback" not in r.stderr
    assert json.load(open(tmp_path / "report.json"))["checks"]["environment"]["ok"] is False


def test_torch_side_runs_one_process_without_syncbn():
    cfg = {"type": "EncoderDecoder", "backbone": {"norm_cfg": {"type": "SyncBN", "requires_grad": True}},
           "decode_head": {"norm_cfg": {"type": "GN", "num_groups": 32}}, "list": [{"type": "SyncBN"}]}
    out = torch_bench._plain_bn(cfg)
    assert out["backbone"]["norm_cfg"] == {"type": "BN", "requires_grad": True}
    assert out["decode_head"]["norm_cfg"]["type"] == "GN" and out["list"] == [{"type": "BN"}]
    assert out["type"] == "EncoderDecoder"


def test_training_check_without_opencv_is_skipped_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)          # import cv2 -> ImportError
    monkeypatch.setattr(gpu_check.shutil, "which", lambda name: "/usr/bin/" + name)
    r = gpu_check.check_training("cpu", gpu_check.SIZES["cpu"], str(tmp_path), 10)
    assert r["ok"] and "OpenCV (cv2) is not installed" in r["skipped"]
