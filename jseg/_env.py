"""Jittor environment defaults, applied before the first ``import jittor``.

Jittor reads its configuration from environment variables at import time, so
everything here must run before jittor is imported (``jseg/__init__.py`` calls
:func:`prepare` first thing); what can wait (the device: ``jseg/device.py``) is
not done here.  Every default yields to a value the user already exported.
README "What ``import jseg`` does" lists each rule and why.

* No CUDA driver → ``nvcc_path=""``; otherwise Jittor finds an ``nvcc`` on PATH
  and dies dlopen-ing ``libcudart.so`` at import.
* ``use_parallel_op_compiler=0``: Jittor's parallel kernel compiler segfaulted
  intermittently here (threads C1..C5, also in fresh processes); kernels are
  compiled one by one instead (only the first run of a new shape is slower).
* oneDNN: Jittor downloads its own oneDNN at import (fails offline).  If Debian's
  ``libdnnl-dev`` is installed we expose it where Jittor would have unpacked the
  download; if no oneDNN can be found we set ``use_mkl=0`` and say once that CPU
  convolutions will use Jittor's slow single-threaded fallback.
"""
import ctypes
import json
import os
import sys
from pathlib import Path

_DNNL_DIR = "dnnl_lnx_2.2.0_cpu_gomp"  # the folder name Jittor 1.3.11 looks for
_DEBIAN_INCLUDE = "/usr/include/oneapi/dnnl"
_DEBIAN_LIBS = ("/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/aarch64-linux-gnu/libdnnl.so.2")

# What prepare() decided (tests/test_env.py checks it against the machine).
STATE = {}


def has_cuda_driver():
    """True if the NVIDIA driver library can be loaded (a usable GPU machine)."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def jittor_home():
    """The folder Jittor uses as JITTOR_HOME (same rule as jittor_utils.home)."""
    home = str(Path.home())
    cfg = os.path.join(home, ".cache", "jittor", "config.json")
    default = home
    if os.path.exists(cfg):
        try:
            with open(cfg) as f:
                default = json.load(f).get("JITTOR_HOME", home)
        except (OSError, ValueError):
            pass
    return os.path.abspath(os.environ.get("JITTOR_HOME", default))


def _link_debian_dnnl(dnnl_root):
    """Expose Debian's libdnnl (oneDNN 2.x, v2 API) as Jittor's downloaded oneDNN."""
    lib = next((p for p in _DEBIAN_LIBS if os.path.exists(p)), None)
    if lib is None or not os.path.isdir(_DEBIAN_INCLUDE):
        return False
    os.makedirs(os.path.join(dnnl_root, "lib"), exist_ok=True)
    links = {os.path.join(dnnl_root, "include"): _DEBIAN_INCLUDE,
             os.path.join(dnnl_root, "lib", "libmkldnn.so"): lib}
    for link, target in links.items():
        if os.path.islink(link) and os.readlink(link) != target:
            os.unlink(link)
        if not os.path.lexists(link):
            tmp = f"{link}.tmp{os.getpid()}"
            os.symlink(target, tmp)
            os.replace(tmp, link)  # atomic: concurrent MPI ranks may race here
    return True


def _setup_onednn():
    if os.environ.get("use_mkl") is not None:
        return "user setting use_mkl=" + os.environ["use_mkl"]
    dnnl_root = os.path.join(jittor_home(), ".cache", "jittor", "mkl", _DNNL_DIR)
    if os.path.isfile(os.path.join(dnnl_root, "lib", "libmkldnn.so")):
        return "oneDNN at " + dnnl_root
    try:
        if _link_debian_dnnl(dnnl_root):
            return "Debian libdnnl linked into " + dnnl_root
    except OSError as e:  # read-only home etc.: fall through to the slow path
        STATE["onednn_error"] = str(e)
    os.environ["use_mkl"] = "0"
    return None


def canonical_python():
    """One interpreter path whatever name started Python (``python``, ``python3``, ``python3.11``).

    Jittor writes the interpreter path it was started with into the key of every compiled kernel
    (``flags.python_path``, the asm tuner's command), so ``python`` and ``python3`` processes
    invalidated each other's kernel caches and recompiled every kernel they used (~1 min for a
    small model).  Returns the ``python3.X`` next to ``sys.executable`` (in a virtualenv too) when
    it exists.
    """
    exe = sys.executable or ""
    versioned = os.path.join(os.path.dirname(exe), f"python{sys.version_info.major}.{sys.version_info.minor}")
    return versioned if os.path.isfile(versioned) else exe


def prepare():
    """Set Jittor's environment defaults.  Idempotent; call before importing jittor."""
    if STATE.get("prepared"):
        return STATE
    cuda = has_cuda_driver()
    STATE["cuda_driver"] = cuda
    if not cuda and "nvcc_path" not in os.environ:
        os.environ["nvcc_path"] = ""
    os.environ.setdefault("log_silent", "1")
    os.environ.setdefault("use_parallel_op_compiler", "0")
    onednn = _setup_onednn()
    STATE["onednn"] = onednn
    rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")
    if onednn is None and not cuda and rank == "0":  # once, not once per MPI rank
        sys.stderr.write(
            "jseg: oneDNN not found; Jittor's CPU convolutions will use the slow single-threaded "
            "fallback (~100x slower). Install it with: apt-get install libdnnl-dev\n")
    STATE["prepared"] = True
    return STATE
