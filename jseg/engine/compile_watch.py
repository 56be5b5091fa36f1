"""Progress while Jittor compiles kernels, instead of silence.

Jittor compiles every new kernel (a new op, shape or dtype) the first time it runs, one at a time
here (``use_parallel_op_compiler=0``, ``jseg/_env.py``): the first iterations of a model on a fresh
machine take minutes.  Jittor holds the GIL while it compiles, so no Python thread of this process
can speak meanwhile: ``CompileWatch`` starts a small watcher process (plain Python, its own session,
so a terminal Ctrl-C does not reach it) that counts the kernels appearing in Jittor's cache and
prints a line every ``interval`` seconds in which some were compiled.  A warm run prints nothing.
The watcher stops when told to, or when this process is gone.
"""
import os
import subprocess
import sys
import time

_WATCHER = r"""
import datetime, os, select, sys, time
directory, interval, log_path, parent = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def count():
    try:
        with os.scandir(directory) as it:
            return sum(1 for e in it if e.name.endswith(".so"))
    except OSError:
        return 0
start, before, reported = time.time(), count(), 0
while True:
    ready, _, _ = select.select([sys.stdin], [], [], interval)
    if ready or os.getppid() != parent:   # told to stop (or the pipe closed), or the trainer is gone
        break
    n = count() - before
    if n > reported:
        line = (f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} compiling kernels (first run only): "
                f"{n} so far, {time.time() - start:.0f} s")
        print(line, flush=True)
        if log_path:
            with open(log_path, "a") as f:
                f.write(line + "\n")
        reported = n
"""


def kernel_dir():
    """Where Jittor writes its compiled kernels (``<cache_path>/jit``)."""
    import jittor_utils
    return os.path.join(jittor_utils.cache_path, "jit")


def count_kernels(directory, since=None):
    """Kernels (``.so``) in ``directory``; with ``since``: ``(count, modification time of the newest one
    written at or after ``since``, or None)``."""
    n, newest = 0, None
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name.endswith(".so"):
                    n += 1
                    if since is not None:
                        try:
                            t = e.stat().st_mtime
                        except OSError:
                            continue
                        if t >= since and (newest is None or t > newest):
                            newest = t
    except OSError:
        pass
    return n if since is None else (n, newest)


class CompileWatch:
    """``with CompileWatch(log, log_path): ...``: progress lines while kernels compile inside the block (on
    stdout and appended to ``log_path``), and ``log`` gets a summary at its end if any were compiled.
    ``enabled=False`` (MPI ranks other than 0) does nothing."""

    def __init__(self, log, log_path=None, interval=15.0, directory=None, enabled=True):
        self.log = log
        self.log_path = log_path
        self.interval = float(interval)
        self.directory = directory or kernel_dir()
        self.enabled = enabled
        self.compiled = 0
        self._proc = None

    def __enter__(self):
        self._start, self._before = time.time(), count_kernels(self.directory)
        if self.enabled:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WATCHER, self.directory, str(self.interval), self.log_path or "",
                 str(os.getpid())], stdin=subprocess.PIPE, start_new_session=True)
        return self

    def __exit__(self, *exc):
        if self._proc is not None:
            try:
                self._proc.stdin.write(b"stop\n")   # a message, not EOF: forked data workers share the pipe
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=self.interval + 5)
            except subprocess.TimeoutExpired:
                pass   # not killed: Jittor ends this process when a child dies of a signal; it exits with us
        total, newest = count_kernels(self.directory, since=self._start - 1)
        self.compiled = max(total - self._before, 0)
        if self.enabled and self.compiled and exc[0] is None:
            # the block's whole time would count the training too: say when the last kernel was written
            last = max(0.0, (newest or self._start) - self._start)
            self.log(f"compiled {self.compiled} new kernels, the last {last:.0f} s after the start "
                     "(cached: later runs of this model and shape skip this)")
        return False
