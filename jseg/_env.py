"""Jittor environment defaults, applied before the first ``import jittor``.

Jittor reads its configuration from environment variables at import time, so
everything here must run before jittor is imported (``jseg/__init__.py`` calls
:func:`prepare` first thing); what can wait (the device: ``jseg/device.py``) is
not done here.  Every default yields to a value the user already exported.
README "What ``import jseg`` does" lists each rule and why.

* No CUDA driver → ``nvcc_path=""``; otherwise Jittor finds an ``nvcc`` on PATH
  and dies dlopen-ing ``libcudart.so`` at import.
* CUDA stack (machines with an NVIDIA driver): ``jseg/_cuda.py`` finds nvcc, the CUDA runtime and
  cuDNN where they are (system, conda, pip wheels) and points Jittor at them; a cuDNN Jittor cannot
  use (cuDNN 9+) gives ``conv_opt=1`` and one line: convolutions then run on Jittor's own kernels.
* One GPU per MPI rank: under Open MPI on a machine with a CUDA driver, each rank sees only the GPU
  of its local rank (``CUDA_VISIBLE_DEVICES``, set before Jittor starts CUDA); more ranks on a node
  than GPUs is refused unless ``JSEG_GPU_SHARE=1`` (then ranks share GPUs round-robin);
  ``JSEG_RANK_GPU=0`` leaves ``CUDA_VISIBLE_DEVICES`` alone (a launcher that pins GPUs itself).
* ``python_config_path``: Jittor compiles against Python's headers, found with
  ``python3.X-config``, which it looks for beside ``sys.executable`` and in ``/usr/bin``; a virtualenv
  has none, so ``import jittor`` failed in every venv of a Python not installed in /usr.  jseg points
  it at the base interpreter's (``sys.base_prefix``).
* ``use_parallel_op_compiler=0``: Jittor's parallel kernel compiler segfaulted
  intermittently here (threads C1..C5, also in fresh processes); kernels are
  compiled one by one instead.  Training compiles them ahead with the parallel compiler in a
  scratch process, where a crash costs only time (``jseg/engine/warmup.py``).
* oneDNN: Jittor downloads its own oneDNN at import (fails offline).  If Debian's
  ``libdnnl-dev`` is installed we expose it where Jittor would have unpacked the
  download; if no oneDNN can be found we set ``use_mkl=0`` and say once that CPU
  convolutions will use Jittor's slow single-threaded fallback.
* Jittor's first import after its utility library went stale (another compiler or flags, a copied
  or moved cache folder) rebuilds it and calls ``sys.exit(0)`` asking for a rerun; with
  ``log_silent=1`` that was a silent exit with status 0.  :func:`restart_after_jit_utils_rebuild`
  restarts the command once instead.
* An exported ``JITTOR_HOME`` is written by Jittor into ``~/.cache/jittor/config.json`` as the new
  default for every later Jittor process on the machine (by the import, and again by the
  ``asm_tuner.py`` subprocess Jittor starts for every kernel it compiles); :func:`keep_jittor_config`
  puts the file back as it was after the import and at exit, so pointing one run at another cache
  leaves the machine's default alone (while the run lasts, other new Jittor processes see its folder).
"""
import atexit
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


_COUNT_GPUS = """
import ctypes
n = ctypes.c_int(0)
try:
    lib = ctypes.CDLL("libcuda.so.1")
    ok = lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0
except OSError:
    ok = False
print(n.value if ok else 0)
"""


def cuda_device_count():
    """GPUs the CUDA driver shows (after ``CUDA_VISIBLE_DEVICES``); 0 without a driver.

    Counted in a child process: the driver reads ``CUDA_VISIBLE_DEVICES`` once, at ``cuInit``, so
    initialising it here would make the per-rank choice below come too late.
    """
    import subprocess
    try:
        out = subprocess.run([sys.executable, "-c", _COUNT_GPUS], capture_output=True, text=True, timeout=120)
        return int(out.stdout.strip() or 0)
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def gpu_for_rank(local_rank, local_size, visible, share=False):
    """``(device, problem)``: the entry of ``visible`` (the node's GPU ids) for this local rank.

    One GPU per rank: rank i of a node gets ``visible[i]``.  More ranks than GPUs is a problem (a
    sentence for the user) unless ``share`` (then round-robin); no GPU at all gives ``(None, None)``.
    """
    if not visible:
        return None, None
    if local_size > len(visible) and not share:
        return None, (f"{local_size} MPI processes on this node but {len(visible)} GPU(s) visible "
                      f"({','.join(visible)}): start at most {len(visible)} per node, or export "
                      f"JSEG_GPU_SHARE=1 to let ranks share GPUs")
    return visible[local_rank % len(visible)], None


def _choose_rank_gpu(env):
    if "OMPI_COMM_WORLD_LOCAL_RANK" not in env or env.get("JSEG_RANK_GPU") == "0":  # 0: your launcher pins GPUs
        return
    local_rank = int(env["OMPI_COMM_WORLD_LOCAL_RANK"])
    local_size = int(env.get("OMPI_COMM_WORLD_LOCAL_SIZE", local_rank + 1))
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        visible = [d.strip() for d in listed.split(",") if d.strip()]
    else:
        visible = [str(i) for i in range(cuda_device_count())]
    device, problem = gpu_for_rank(local_rank, local_size, visible, env.get("JSEG_GPU_SHARE") == "1")
    STATE["rank_gpu"], STATE["rank_gpu_problem"] = device, problem
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device


def python_config(prefix, base_prefix, version=sys.version_info):
    """The ``python3.X-config`` of the base interpreter when running in a virtualenv (else None)."""
    if os.path.realpath(prefix) == os.path.realpath(base_prefix):
        return None
    for name in (f"python{version[0]}.{version[1]}-config", f"python{version[0]}-config"):
        path = os.path.join(base_prefix, "bin", name)
        if os.path.isfile(path):
            return path
    return None


RESTART_ENV = "JSEG_JIT_UTILS_RESTARTED"


def restart_after_jit_utils_rebuild(exc):
    """Handle Jittor's ``sys.exit`` during ``import jittor`` (it rebuilt jit_utils and needs a new process).

    A program (a script, ``-m``, ``-c``) is started again with the same command line, once; an
    interactive session gets an ImportError that says to restart it.  Any other exit status is
    passed on unchanged.
    """
    keep_jittor_config()  # before execv: the new process must see the file as it was
    if exc.code not in (0, None):
        raise exc
    msg = ("Jittor rebuilt its utility library (jit_utils: first import after a change of compiler, "
           "flags or cache folder) and needs a new process")
    argv = getattr(sys, "orig_argv", None)  # Python >= 3.10: the command line as typed
    interactive = hasattr(sys, "ps1") or sys.flags.interactive or not argv or "ipykernel" in sys.modules
    if interactive or os.environ.get(RESTART_ENV) == "1":
        raise ImportError(f"jseg: {msg}; restart the Python process (or run the command again)") from None
    rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")
    if rank == "0":
        sys.stderr.write(f"jseg: {msg}; restarting the command\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[RESTART_ENV] = "1"
    os.execv(sys.executable, [sys.executable] + list(argv[1:]))


def _jittor_config_file():
    return os.path.join(str(Path.home()), ".cache", "jittor", "config.json")


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def keep_jittor_config():
    """Undo Jittor's rewrite of ``config.json`` caused by an exported ``JITTOR_HOME`` (see module doc)."""
    if "jittor_config" not in STATE:
        return
    path, before = _jittor_config_file(), STATE["jittor_config"]
    if _read_bytes(path) == before:
        return
    try:
        if before is None:
            os.unlink(path)
        else:
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(before)
            os.replace(tmp, path)
    except OSError as e:  # read-only home: nothing we can do, say why later runs may use that cache
        STATE["jittor_config_error"] = str(e)


def _site_dirs():
    import site
    dirs = [p for p in sys.path if p.endswith("site-packages") or p.endswith("dist-packages")]
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # some virtualenvs lack getsitepackages
        pass
    return [d for i, d in enumerate(dirs) if d not in dirs[:i] and os.path.isdir(d)]


def jittor_cuda_download(home):
    """The nvcc of Jittor's own CUDA download (``<home>/.cache/jittor/jtcuda/cuda*_cudnn*/bin/nvcc``), if any.

    Jittor prefers it to any other toolkit (it bundles a cuDNN Jittor works with), so jseg leaves such
    a machine's CUDA setup to Jittor."""
    import glob
    found = sorted(glob.glob(os.path.join(home, ".cache", "jittor", "jtcuda", "*", "bin", "nvcc")))
    return found[-1] if found else None


def _setup_cuda_stack():
    """Point Jittor at the CUDA toolkit, runtime and cuDNN that are really there (``jseg/_cuda.py``)."""
    from . import _cuda
    jtcuda = jittor_cuda_download(jittor_home())
    if jtcuda:
        STATE["cuda_plan"] = {"env": {}, "shim": None, "notes": [f"Jittor's own CUDA download at {jtcuda}: left "
                                                                 "to Jittor"]}
        return
    stack = _cuda.find_stack(os.environ, "/", _site_dirs())
    plan = _cuda.plan(stack, jittor_home())
    if plan["shim"] is not None:
        try:
            _cuda.build_shim(plan["shim"])
        except OSError as e:
            plan["notes"].append(f"jseg: could not build the CUDA shim folder {plan['shim']['dir']} ({e}); "
                                 "Jittor may not find the CUDA runtime")
    for name, value in plan["env"].items():
        os.environ.setdefault(name, value)
    STATE["cuda_stack"] = {k: v for k, v in stack.items() if k != "homes"}
    STATE["cuda_plan"] = plan
    if os.environ.get("OMPI_COMM_WORLD_RANK", "0") == "0":
        for note in plan["notes"]:
            sys.stderr.write(note + "\n")


def prepare():
    """Set Jittor's environment defaults.  Idempotent; call before importing jittor."""
    if STATE.get("prepared"):
        return STATE
    if "JITTOR_HOME" in os.environ:
        STATE["jittor_config"] = _read_bytes(_jittor_config_file())
        atexit.register(keep_jittor_config)
    cuda = has_cuda_driver()
    STATE["cuda_driver"] = cuda
    if not cuda and "nvcc_path" not in os.environ:
        os.environ["nvcc_path"] = ""
    if cuda:
        _choose_rank_gpu(os.environ)
        if "nvcc_path" not in os.environ:  # a user's nvcc_path wins over the search
            _setup_cuda_stack()
    os.environ.setdefault("log_silent", "1")
    os.environ.setdefault("use_parallel_op_compiler", "0")
    if "python_config_path" not in os.environ:
        config = python_config(sys.prefix, sys.base_prefix)
        if config:
            os.environ["python_config_path"] = config
    onednn = _setup_onednn()
    STATE["onednn"] = onednn
    rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")
    if onednn is None and not cuda and rank == "0":  # once, not once per MPI rank
        sys.stderr.write(
            "jseg: oneDNN not found; Jittor's CPU convolutions will use the slow single-threaded "
            "fallback (~100x slower). Install it with: apt-get install libdnnl-dev\n")
    STATE["prepared"] = True
    return STATE
