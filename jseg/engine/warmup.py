"""Compile a run's kernels ahead of time with Jittor's parallel compiler, in a scratch process.

jseg runs Jittor with ``use_parallel_op_compiler=0`` (``jseg/_env.py``): its parallel compiler
segfaulted once in an early session and was never reproduced since (docs/performance.md).  Compiling
one kernel at a time is safe but slow on a fresh machine, so before its first iteration a training run
starts a scratch process with the parallel compiler that runs what the training will run (two steps
on the first batches, one validation image; ``Runner.compile_kernels``) and keeps nothing but the
compiled kernels in Jittor's cache.  If that process crashes, only its time is lost: the run goes on
and compiles what is left one kernel at a time, as before.

The scratch process is started through a small plain-Python keeper process: Jittor ends a process
whose child dies of a signal ("Caught SIGCHLD ... quick exit"), so a crash must not reach the trainer
as one.  A marker in Jittor's cache (``jseg_warmup/<hash of the config, batch, versions>.json``)
skips the warm-up when this config was warmed up before and the kernel cache has not shrunk since.

``JSEG_WARMUP=0`` turns it off; ``JSEG_WARMUP_THREADS`` sets the compiler threads (default 16).
It is skipped when the run itself already uses the parallel compiler.  Under MPI the first process
of each node warms up while the others wait.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import __version__, dist
from ..fileio import write_atomic
from .compile_watch import count_kernels, kernel_dir

# plain Python, no Jittor: runs the scratch process and turns its death by a signal into an exit status
_KEEPER = r"""
import signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
def forward(signum, frame):
    try:
        child.send_signal(signum)
    except OSError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
rc = child.wait()
sys.exit(128 - rc if rc < 0 else rc)
"""


def enabled(environ=os.environ):
    return environ.get("JSEG_WARMUP", "1") != "0" and environ.get("use_parallel_op_compiler", "0") in ("", "0")


def marker_path(cfg_text, local_batch):
    import jittor as jt
    import jittor_utils
    h = hashlib.sha256(f"{__version__}\n{jt.__version__}\n{local_batch}\n{cfg_text}".encode()).hexdigest()[:20]
    return os.path.join(jittor_utils.cache_path, "jseg_warmup", f"{h}.json")


def is_warm(marker, kernels):
    """True if ``marker`` exists and the kernel cache holds at least as many kernels as it recorded."""
    try:
        with open(marker) as f:
            return kernels >= int(json.load(f)["kernels"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_marker(marker, record):
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    write_atomic(marker, json.dumps(record))


def child_environment(environ, threads):
    """The scratch process's environment: a single process (no MPI variables), the parallel compiler on."""
    env = {k: v for k, v in environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env["use_parallel_op_compiler"] = str(threads)
    env["JSEG_WARMUP"] = "0"
    return env


def warm_up(runner, log):
    """Before ``runner``'s first iteration: compile its kernels in a scratch process (see the module doc)."""
    if not enabled():
        return None
    cfg_text = runner.cfg.pretty_text()
    local = runner.batch // dist.world_size()
    marker = marker_path(cfg_text, local)
    result = None
    if os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0") == "0" and not is_warm(marker, count_kernels(kernel_dir())):
        result = _run_child(runner, local, marker, log)
    if dist.world_size() > 1:
        dist.all_reduce_sum(np.zeros(1))   # the others wait for the warm-up
    return result


def _child_command(cfg_path, seed, local):
    return [sys.executable, "-m", "jseg.engine.warmup", cfg_path, str(seed), str(local)]


def _run_child(runner, local, marker, log):
    threads = int(os.environ.get("JSEG_WARMUP_THREADS", "16"))
    with tempfile.TemporaryDirectory(prefix="jseg_warmup_") as tmp:
        cfg_path = os.path.join(tmp, "config.py")
        runner.cfg.dump(cfg_path)
        err_path = os.path.join(tmp, "stderr.txt")
        cmd = [sys.executable, "-c", _KEEPER] + _child_command(cfg_path, runner.seed, local)
        t0 = time.time()
        log(f"compiling kernels ahead of the first iteration in a scratch process ({threads} compiler threads)")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                    env=child_environment(os.environ, threads))
            try:
                rc = proc.wait()
            finally:
                if proc.poll() is None:   # stopped by Ctrl-C / SIGTERM: the keeper stops the scratch process
                    proc.terminate()
                    proc.wait()
        took = time.time() - t0
        if rc == 0:
            _write_marker(marker, {"kernels": count_kernels(kernel_dir()), "time": took,
                                   "written": time.strftime("%Y-%m-%d %H:%M:%S")})
            log(f"kernels compiled ahead in {took:.0f} s")
            return True
        with open(err_path, "rb") as f:
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
        why = f"killed by signal {rc - 128}" if rc > 128 else f"exit status {rc}"
        last = f": {lines[-1].strip()[:300]}" if lines else ""
        log(f"warning: the kernel warm-up stopped after {took:.0f} s ({why}{last}); training goes on and "
            "compiles the remaining kernels one at a time")
        return False


def _child(argv):
    """The scratch process: ``python -m jseg.engine.warmup CONFIG SEED LOCAL_BATCH``."""
    from ..config import Config
    from .runner import Logger, Runner
    cfg_path, seed, local = argv[0], int(argv[1]), int(argv[2])
    cfg = Config.fromfile(cfg_path)
    cfg.data["batch_size"] = local   # one process with this rank's share of the batch
    cfg.data.pop("samples_per_gpu", None)
    cfg.load_from = None
    if cfg.get("log_config"):
        cfg.log_config.pop("hooks", None)
    with tempfile.TemporaryDirectory(prefix="jseg_warmup_run_") as work_dir:
        log = Logger(None)
        log.enabled = False
        runner = Runner(cfg, work_dir, seed=seed, log=log)
        runner.compile_kernels()
    return 0


if __name__ == "__main__":
    from ..tools._cli import run   # signals and errors as in every jseg command; the same device choice
    sys.exit(run("warm-up", _child))
