"""Test setup: jseg first (it sets Jittor's environment before Jittor is imported)."""
import jseg  # noqa: F401
import jittor as jt
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: tests that take more than ~20 s on a 2-core CPU")


@pytest.fixture(autouse=True)
def _seed():
    jt.set_global_seed(0)
    yield
