"""Shared memory between loader workers and the main process: round trip, and what a dead run left behind."""
import os
import subprocess
import sys

import numpy as np
import pytest

from jseg.datasets import shm
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(not shm.available(), reason="no writable /dev/shm (not Linux)")

# A stand-in for another run: it owns a lock and one unread segment, and lives until killed.
OWNER = r"""
import sys, time, numpy as np
from jseg.datasets import shm
token = shm.owner_token()
handle = shm.put(np.arange(10, dtype=np.float32), token + "-0")
print(token, handle[1], flush=True)
time.sleep(600)
"""


def _entries():
    return sorted(os.listdir(shm.SHM_DIR))


def test_put_and_take_round_trip_and_unlink():
    token = shm.owner_token() + "-t"
    a = np.random.default_rng(0).standard_normal((3, 5, 7)).astype(np.float32)
    handle = shm.put(a, token)
    assert os.path.exists(os.path.join(shm.SHM_DIR, handle[1]))
    b = shm.take(handle)
    assert b.dtype == a.dtype and np.array_equal(a, b)
    assert not os.path.exists(os.path.join(shm.SHM_DIR, handle[1]))
    assert shm.free(token) == (0, 0)


def test_a_dead_runs_segments_are_freed_and_a_live_runs_are_not(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    before = set(_entries())
    # started through a shell: a child of this process dying of SIGKILL would trip Jittor's SIGCHLD handler
    shell = f'"{sys.executable}" "{script}" & echo $!; wait'
    proc = subprocess.Popen(["bash", "-c", shell], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        pid = int(proc.stdout.readline())
        token, segment = proc.stdout.readline().split()
        assert os.path.exists(os.path.join(shm.SHM_DIR, segment))
        freed, _ = shm.reclaim_dead()                      # the owner is alive: its segment stays
        assert os.path.exists(os.path.join(shm.SHM_DIR, segment))
        assert os.path.exists(os.path.join(shm.SHM_DIR, f"jseg-{token}.lock"))
        os.kill(pid, 9)
        proc.wait(timeout=60)
        assert os.path.exists(os.path.join(shm.SHM_DIR, segment))          # kill -9: nothing cleaned up
        freed, size = shm.reclaim_dead()
        assert freed >= 1 and size >= 40
        assert not os.path.exists(os.path.join(shm.SHM_DIR, segment))
        assert not os.path.exists(os.path.join(shm.SHM_DIR, f"jseg-{token}.lock"))
    finally:
        if proc.poll() is None:
            if pid:
                os.kill(pid, 9)
            proc.wait(timeout=60)
    assert set(_entries()) <= before | {f"jseg-{shm.owner_token()}.lock"}


def test_a_segment_without_an_owner_lock_is_freed():
    path = os.path.join(shm.SHM_DIR, "jseg-999999xdeadbeef-0-1-1")
    with open(path, "wb") as f:
        f.write(b"\0" * 16)
    freed, _ = shm.reclaim_dead()
    assert freed >= 1 and not os.path.exists(path)
