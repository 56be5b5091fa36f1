"""Progress while Jittor compiles kernels, instead of silence.

Jittor compiles every new kernel (a new op, shape or dtype) the first time it runs, one at a time
here (``use_parallel_op_compiler=0``, ``jseg/_env.py``): the first iterations of a model on a fresh
machine can take minutes without a line of output.  ``CompileWatch`` counts the kernels that appear
in Jittor's cache while it is active and reports them every ``interval`` seconds in which some were
compiled; a warm run says nothing.
"""
import os
import threading
import time


def kernel_dir():
    """Where Jittor writes its compiled kernels (``<cache_path>/jit``)."""
    import jittor_utils
    return os.path.join(jittor_utils.cache_path, "jit")


def _count(directory):
    try:
        with os.scandir(directory) as it:
            return sum(1 for e in it if e.name.endswith(".so"))
    except OSError:
        return 0


class CompileWatch:
    """``with CompileWatch(log): ...`` logs ``compiling kernels (first run only): N so far`` while kernels
    are being compiled inside the block, and a summary at its end if any were."""

    def __init__(self, log, interval=15.0, directory=None):
        self.log = log
        self.interval = float(interval)
        self.directory = directory or kernel_dir()
        self.compiled = 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._start, self._before = time.time(), _count(self.directory)
        self._thread = threading.Thread(target=self._watch, name="jseg-compile-watch", daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        reported = 0
        while not self._stop.wait(self.interval):
            self.compiled = max(_count(self.directory) - self._before, 0)
            if self.compiled > reported:
                self.log(f"compiling kernels (first run only): {self.compiled} so far, "
                         f"{time.time() - self._start:.0f} s")
                reported = self.compiled

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.compiled = max(_count(self.directory) - self._before, 0)
        if self.compiled and exc[0] is None:
            self.log(f"compiled {self.compiled} new kernels in {time.time() - self._start:.0f} s "
                     "(cached: later runs of this model and shape skip this)")
        return False
