"""python -m jseg.tools.parity: passes on the official micro references, fails on a perturbed weight."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from jseg.checkpoint import read_checkpoint
from jseg.tools import parity
from tests.helpers import MICRO_CONFIG, MICRO_PTH, ROOT, segnext_path

REFS = ["segnext_micro_ade5_random_eval_2x3x128x160.npz", "segnext_micro_ade5_random_eval_2x3x100x132.npz",
        "segnext_micro_ade5_random_slide_1x3x100x132.npz"]


def run_capture(checkpoint, ref, **kw):
    lines = []
    code = parity.run(MICRO_CONFIG, checkpoint, ref, out=lines.append, **kw)
    return code, "\n".join(lines)


@pytest.mark.parametrize("ref", REFS)
def test_parity_passes_on_micro_references(ref):
    code, text = run_capture(MICRO_PTH, segnext_path(ref))
    assert code == 0, text
    expected = ["logits"] if "slide" in ref else ["stage1", "stage2", "stage3", "stage4", "head_logits", "logits"]
    for name in expected:
        assert any(line.startswith(name) and line.endswith("PASS") for line in text.splitlines()), (name, text)


def test_parity_fails_and_names_the_array_when_one_weight_is_perturbed(tmp_path):
    sd, meta = read_checkpoint(MICRO_PTH)
    sd["decode_head.conv_seg.bias"] = sd["decode_head.conv_seg.bias"].copy()
    sd["decode_head.conv_seg.bias"][2] += 0.01
    bad = str(tmp_path / "perturbed.pkl")
    with open(bad, "wb") as fh:
        pickle.dump({"meta": meta, "state_dict": sd}, fh)
    code, text = run_capture(bad, segnext_path(REFS[0]))
    assert code == 1
    lines = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in
             ("stage1", "stage4", "head_logits", "logits")}
    assert lines["stage4"].endswith("PASS")              # backbone untouched
    assert lines["head_logits"].endswith("FAIL") and lines["logits"].endswith("FAIL")
    assert "FAILED: 2" in text


def test_parity_backbone_weight_perturbation_fails_stage(tmp_path):
    sd, meta = read_checkpoint(MICRO_PTH)
    key = "backbone.block2.0.attn.spatial_gating_unit.conv2_1.weight"
    sd[key] = sd[key].copy()
    sd[key].flat[0] += 0.05
    bad = str(tmp_path / "perturbed_backbone.pkl")
    with open(bad, "wb") as fh:
        pickle.dump({"meta": meta, "state_dict": sd}, fh)
    code, text = run_capture(bad, segnext_path(REFS[1]))
    assert code == 1
    assert any(line.startswith("stage2") and line.endswith("FAIL") for line in text.splitlines()), text
    assert any(line.startswith("stage1") and line.endswith("PASS") for line in text.splitlines()), text


def test_parity_unusable_reference(tmp_path):
    ref = str(tmp_path / "noinput.npz")
    np.savez(ref, logits=np.zeros((1, 5, 4, 4), np.float32))
    code, text = run_capture(MICRO_PTH, ref)
    assert code == 2 and "no 'input'" in text


def test_parity_cli_exit_codes():
    """The real command line, as a user runs it (a separate process)."""
    cmd = [sys.executable, "-m", "jseg.tools.parity", "--config", MICRO_CONFIG, "--checkpoint", MICRO_PTH,
           "--reference", segnext_path(REFS[1])]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "parity: 6/6 arrays pass" in r.stdout
    r = subprocess.run(cmd + ["--atol", "1e-9", "--rtol", "1e-9"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "FAIL" in r.stdout


def test_parity_cli_unusable_input_exits_with_2(tmp_path):
    """The documented status for an unusable REF is 2 (it used to be 1: a SystemExit with a message)."""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    for ref, message in [(tmp_path / "missing.npz", "cannot read reference"), (broken, "cannot read reference")]:
        cmd = [sys.executable, "-m", "jseg.tools.parity", "--config", MICRO_CONFIG, "--checkpoint", MICRO_PTH,
               "--reference", str(ref)]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and message in r.stdout and str(ref) in r.stdout, r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
    cmd = [sys.executable, "-m", "jseg.tools.parity", "--config", str(tmp_path / "nothere.py"), "--checkpoint",
           MICRO_PTH, "--reference", segnext_path(REFS[1])]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "config file not found" in r.stdout + r.stderr


@pytest.mark.parametrize("model,ref", [(m, f"{m}_tiny_eval_{size}.npz") for m in ("segformer", "cgrseg")
                                       for size in ("b2_128x160", "b1_100x132")])
def test_parity_on_segformer_and_cgrseg_references(model, ref):
    folder = os.path.join(ROOT, "tests", "fixtures", model)
    lines = []
    code = parity.run(os.path.join(folder, f"{model}_tiny_config.py"), os.path.join(folder, f"{model}_tiny.pth"),
                      os.path.join(folder, ref), out=lines.append)
    text = "\n".join(lines)
    assert code == 0, text
    for name in ["stage1", "stage2", "stage3", "stage4", "head_logits", "final_logits"]:
        assert any(line.startswith(name) and line.endswith("PASS") for line in text.splitlines()), (name, text)
    assert "nmf_bases" not in text   # no Ham head: no warning about its bases
