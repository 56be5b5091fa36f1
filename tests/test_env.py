"""import jseg prepares Jittor: CPU-only without a CUDA driver, oneDNN hooked in, no user exports."""
import os
import subprocess
import sys

import jittor as jt

import jseg
from jseg import _env
from tests.helpers import ROOT


def test_env_decisions_match_this_machine():
    state = _env.STATE
    assert state["prepared"]
    if not state["cuda_driver"]:
        assert os.environ.get("nvcc_path") == ""
        assert not jt.has_cuda
    before = jt.flags.use_cuda
    try:
        assert jseg.select_device("auto") == ("cuda" if jt.has_cuda else "cpu")
        assert jseg.select_device("cpu") == "cpu" and not jt.flags.use_cuda
    finally:
        jt.flags.use_cuda = before


def test_import_leaves_the_device_alone():
    """``import jseg`` only prepares what Jittor reads at its import; the device is chosen explicitly."""
    code = "import jittor as jt; jt.flags.use_cuda = 0; import jseg; print('USE_CUDA', jt.flags.use_cuda)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "USE_CUDA 0" in r.stdout, r.stdout + r.stderr


def test_onednn_is_used_when_debian_libdnnl_is_installed():
    import jittor.compile_extern as ce
    if os.path.exists("/usr/include/oneapi/dnnl/dnnl.hpp") and os.environ.get("use_mkl") != "0":
        assert ce.mkl_ops is not None, _env.STATE
        assert state_is_linked(_env.STATE["onednn"])


def state_is_linked(msg):
    return msg is not None and ("libdnnl" in msg or "oneDNN at" in msg)


def test_plain_import_in_a_clean_environment():
    """No exported variables: importing jseg and running a conv works and says nothing alarming."""
    env = {k: v for k, v in os.environ.items() if k not in ("nvcc_path", "use_mkl", "log_silent")}
    # all-ones 3x3 kernels on an all-ones 8x8 map, padding 1: taps per axis 2+3*6+2 = 22, so each of the
    # 4 outputs sums 22*22 per input channel, 3 of them
    code = ("import jseg, jittor as jt; x = jt.ones((1, 3, 8, 8)); w = jt.nn.Conv2d(3, 4, 3, padding=1); "
            "w.weight.assign(jt.ones(w.weight.shape)); w.bias.assign(jt.zeros(w.bias.shape)); "
            "print('OUT', float(w(x).sum().item()))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"OUT {4 * 3 * 22 * 22:.1f}" in r.stdout, r.stdout + r.stderr
    if os.path.exists("/usr/include/oneapi/dnnl/dnnl.hpp"):
        assert "oneDNN not found" not in r.stderr
    assert jseg.__version__


def test_one_kernel_cache_whatever_the_interpreter_is_called():
    """Jittor keys every compiled kernel on the interpreter path: ``python`` and ``python3`` processes used to
    recompile each other's kernels (~1 min each time scripts/test.sh ran after pytest)."""
    bindir = os.path.dirname(sys.executable)
    names = [n for n in ("python", "python3", f"python3.{sys.version_info.minor}")
             if os.path.isfile(os.path.join(bindir, n))]
    seen = set()
    for name in names:
        r = subprocess.run([os.path.join(bindir, name), "-c", "import jseg, jittor; print(jittor.flags.python_path)"],
                           capture_output=True, text=True, timeout=600, cwd="/")
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.strip().splitlines()[-1])
    assert len(names) >= 2 and len(seen) == 1, (names, seen)
