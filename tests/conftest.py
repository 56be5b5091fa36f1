"""Test setup: jseg first (it sets Jittor's environment before Jittor is imported)."""
import os

# Training runs of the suite skip the kernel warm-up's scratch process (seconds per new config);
# tests/engine/test_warmup.py turns it on where it is the subject.
os.environ.setdefault("JSEG_WARMUP", "0")

import jseg  # noqa: F401
import jittor as jt
import pytest

# The device the tests compute on: the CPU unless JSEG_TEST_DEVICE=cuda (scripts/gpu_check.sh runs the
# model parity tests so, with TF32 off: Jittor's use_tensorcore=0 default).
jseg.select_device(os.environ.get("JSEG_TEST_DEVICE", "cpu"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: tests that take more than ~20 s on a 2-core CPU")


@pytest.fixture(autouse=True)
def _seed():
    jt.set_global_seed(0)
    yield
