"""Mixed precision (jseg/engine/amp.py): the loss scaler, the fp16 config switch, and the scaled step.

The half-precision forward itself needs a GPU (scripts/gpu_check.sh runs it); everything here is the
logic around it, run on the CPU in float32."""
import math
import os
import subprocess
import sys

import numpy as np
import jittor as jt
import pytest

from jseg.config import ConfigError
from jseg.engine.amp import LossScaler, all_finite, parse_fp16, require_cuda, scaled_step
from jseg.engine.optim import AdamW
from jseg.engine.settings import check_training_config
from jseg.errors import UserError
from tests.engine.train_helpers import tiny_cfg
from tests.helpers import ROOT


def test_dynamic_scale_backs_off_on_overflow_and_grows_after_a_run_of_good_steps():
    s = LossScaler(init_scale=1024.0, growth_interval=3)
    s.update(False)
    assert (s.scale, s.skipped, s.good_steps) == (512.0, 1, 0)
    for _ in range(2):
        s.update(True)
    assert s.scale == 512.0 and s.good_steps == 2
    s.update(True)                                   # the 3rd finite step in a row
    assert s.scale == 1024.0 and s.good_steps == 0
    s.update(True)
    s.update(False)                                  # an overflow restarts the run
    assert s.scale == 512.0 and s.good_steps == 0
    tiny = LossScaler(init_scale=1.0)
    tiny.update(False)
    assert tiny.scale == 1.0                         # never below min_scale


def test_fixed_scale_never_changes_but_still_skips():
    s = LossScaler(init_scale=512.0, dynamic=False, growth_interval=1)
    for finite in (False, True, True, False):
        s.update(finite)
    assert s.scale == 512.0 and s.skipped == 2


def test_scaler_state_round_trip():
    s = LossScaler(init_scale=64.0, growth_interval=5)
    for finite in (True, True, False, True):
        s.update(finite)
    t = LossScaler()
    t.load_state_dict(s.state_dict())
    assert (t.scale, t.good_steps, t.skipped) == (32.0, 1, 1)


def test_fp16_config_spellings():
    dtype, s = parse_fp16(dict(loss_scale="dynamic"))
    assert dtype == "float16" and s.dynamic and s.scale == 2.0 ** 16
    dtype, s = parse_fp16(dict(loss_scale=512.0))
    assert dtype == "float16" and not s.dynamic and s.scale == 512.0
    assert parse_fp16(dict(dtype="bfloat16")) == ("bfloat16", None)
    assert parse_fp16(None) == (None, None)
    s = parse_fp16(dict(loss_scale=dict(init_scale=8.0, growth_interval=10)))[1]
    assert s.dynamic and s.scale == 8.0 and s.growth_interval == 10
    for bad, says in ((dict(loss_scale="auto"), "expected 'dynamic'"), (dict(loss_scale=-1), "positive"),
                      (dict(dtype="float8"), "expected 'float16' or 'bfloat16'"), ("dynamic", "expected a dict"),
                      (dict(dtype="bfloat16", loss_scale=512.0), "needs no loss scale"),
                      (dict(loss_scale=dict(grow=2)), "init_scale"), (dict(scale=1), "unknown key")):
        with pytest.raises(UserError, match=says):
            parse_fp16(bad)


def test_a_bad_fp16_setting_is_named_before_training(tmp_path):
    cfg = tiny_cfg(str(tmp_path))
    cfg.fp16 = dict(loss_scale="auto")
    with pytest.raises(ConfigError, match=r"fp16 = \{'loss_scale': 'auto'\}: .*expected 'dynamic'"):
        check_training_config(cfg)
    cfg.fp16 = dict(loss_scale="dynamic")
    check_training_config(cfg)   # a valid setting passes the check (the device is checked by the runner)


def test_mixed_precision_on_the_cpu_is_one_clear_line(tmp_path):
    if jt.flags.use_cuda:
        pytest.skip("this process computes on CUDA")
    with pytest.raises(UserError, match="needs a CUDA GPU and this run is on the CPU"):
        require_cuda("float16")
    cfg = os.path.join(ROOT, "configs", "quickstart", "segnext_toy.py")
    r = subprocess.run([sys.executable, "-m", "jseg.tools.train", cfg, "--work-dir", str(tmp_path / "w"),
                        "--cfg-options", "+fp16={'loss_scale': 'dynamic'}", "runner.max_iters=1"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "fp16 (mixed precision, float16) needs a CUDA GPU" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


class Tiny(jt.nn.Module):
    def __init__(self):
        self.a = jt.nn.Linear(4, 3)
        self.b = jt.nn.Linear(3, 2)

    def execute(self, x):
        return self.b(jt.nn.relu(self.a(x)))


def _setup(seed=0):
    jt.set_global_seed(seed)
    model = Tiny()
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    x = jt.array(np.random.RandomState(1).randn(5, 4).astype(np.float32))
    return model, opt, x


def _params(model):
    return [p.numpy().copy() for p in model.parameters()]


def test_a_scaled_step_equals_the_plain_step():
    """Scaling by a power of two and dividing back is exact in float32: the same parameters."""
    model, opt, x = _setup()
    for _ in range(3):
        opt.step((model(x) ** 2).mean())
    plain = _params(model)
    model, opt, x = _setup()
    scaler = LossScaler(init_scale=2.0 ** 12)
    for _ in range(3):
        assert scaled_step(opt, (model(x) ** 2).mean(), scaler)
    for p, q in zip(plain, _params(model)):
        np.testing.assert_array_equal(p, q)
    assert opt.n_step == 3 and scaler.good_steps == 3


def test_an_overflowing_step_is_skipped_and_changes_nothing_but_the_scale():
    model, opt, x = _setup()
    scaler = LossScaler(init_scale=2.0 ** 12)
    assert scaled_step(opt, (model(x) ** 2).mean(), scaler)
    before, moments, n = _params(model), [m.numpy().copy() for m in opt.param_groups[0]["m"]], opt.n_step
    scaler.scale = 2.0 ** 127                         # loss * scale overflows float32: inf gradients
    assert not scaled_step(opt, (model(x) ** 2).mean() * 1e3, scaler)
    assert scaler.scale == 2.0 ** 126 and scaler.skipped == 1 and opt.n_step == n
    for p, q in zip(before, _params(model)):
        np.testing.assert_array_equal(p, q)
    for m, q in zip(moments, opt.param_groups[0]["m"]):
        np.testing.assert_array_equal(m, q.numpy())
    # the next finite step is the 2nd AdamW step, from clean gradients (nothing left over from the skipped one)
    scaler.scale = 2.0 ** 12
    assert scaled_step(opt, (model(x) ** 2).mean(), scaler)
    model2, opt2, x2 = _setup()
    for _ in range(2):
        opt2.step((model2(x2) ** 2).mean())
    for p, q in zip(_params(model2), _params(model)):
        np.testing.assert_array_equal(p, q)


def test_all_finite_sees_inf_and_nan():
    ok = jt.array(np.ones((3, 3), np.float32))
    assert all_finite([ok, ok * 2])
    assert not all_finite([ok, jt.array(np.array([1.0, math.inf], np.float32))])
    assert not all_finite([jt.array(np.array([math.nan], np.float32)), ok])
