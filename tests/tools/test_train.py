"""python -m jseg.tools.train as a user runs it: signals, kill -9, shared memory, one-line errors, a full disk.

Every run here is a real subprocess started through bash: a child of this process dying of a signal would
trip Jittor's SIGCHLD handler in this process.
"""
import os
import shutil
import subprocess
import sys

import pytest

from jseg.checkpoint import read_checkpoint
from jseg.datasets import make_toy_dataset, shm
from tests.engine.train_helpers import tiny_cfg
from tests.helpers import ROOT

ENV = dict(os.environ, PYTHONPATH=ROOT)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """A tiny config file on a tiny toy folder: 2 workers, a checkpoint every 10 iterations, 400 iterations."""
    d = tmp_path_factory.mktemp("cli")
    toy = make_toy_dataset(str(d / "toy"), n_train=32, n_val=2, size=32)   # 8 batches an epoch: 4 loaded ahead
    cfg = tiny_cfg(toy, max_iters=400, norm="BN", workers=2)
    cfg.checkpoint_config["interval"] = 10
    path = str(d / "tiny.py")
    cfg.dump(path)
    return path


def _shm_entries():
    return sorted(os.listdir(shm.SHM_DIR)) if shm.available() else []


def _bash(script, timeout=600):
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def _train(config, work_dir, *args, timeout=600):
    cmd = " ".join(f'"{a}"' for a in (sys.executable, "-m", "jseg.tools.train", config, "--work-dir", work_dir)
                   + args)
    r = _bash(f"{cmd}; echo rc=$?", timeout)
    return int(r.stdout.strip().rsplit("rc=", 1)[1]), r.stdout, r.stderr


def _signal_at(config, work_dir, sig, iteration):
    """Start training in its own process group, send ``sig`` once it logged ``iteration``: SIGINT to the whole
    group, as a terminal's Ctrl-C does, other signals to the process; -> (exit status, log, stderr, number of
    batch segments in /dev/shm just before the signal, the owner's lock file not counted)."""
    log = os.path.join(os.path.dirname(work_dir), os.path.basename(work_dir) + ".out")
    err = log + ".err"
    target = "-$pid" if sig == "INT" else "$pid"
    script = (f'setsid "{sys.executable}" -m jseg.tools.train "{config}" --work-dir "{work_dir}" > "{log}" '
              f'2> "{err}" & pid=$!; for i in $(seq 6000); do grep -q "iter {iteration}/" "{log}" 2>/dev/null && '
              f'break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done; '
              # the count is a snapshot: right after the main process took the batches it can be 0, so look
              # again for up to 0.5 s (a couple of iterations) before signalling
              f'for j in $(seq 50); do n=$(ls {shm.SHM_DIR} | grep "^jseg-" | grep -vc "\\.lock$"); '
              f'[ "$n" -ge 1 ] && break; sleep 0.01; done; echo $n; '
              f'kill -{sig} {target}; wait $pid; echo rc=$?')
    r = _bash(script)
    assert "rc=" in r.stdout, r.stderr
    seen = int(r.stdout.split()[0])
    return int(r.stdout.rsplit("rc=", 1)[1]), open(log).read(), open(err).read(), seen


@pytest.mark.parametrize("sig, status", [("INT", 130), ("TERM", 143)])
def test_ctrl_c_and_sigterm_stop_cleanly(config, tmp_path, sig, status):
    """Jittor's own SIGINT handler quick-exited, and SIGTERM killed: 8-16 /dev/shm segments were left each time.
    (Ctrl-C also reached Jittor's idle compiler processes, whose re-forked replacements could hang the exit.)"""
    before = _shm_entries()
    work_dir = str(tmp_path / "w")
    rc, log, err, seen = _signal_at(config, work_dir, sig, 12)
    assert seen >= 1                           # the loader really had batch arrays in /dev/shm (lock not counted)
    assert rc == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"train: stopped by SIG{sig}; training stopped at iteration 1")
    assert f"the last checkpoint is {work_dir}/iter_10.pkl (iteration 10); continue with --resume" in lines[0]
    assert _shm_entries() == before                        # nothing left in /dev/shm
    assert not [f for f in os.listdir(work_dir) if ".tmp" in f]
    read_checkpoint(os.path.join(work_dir, "iter_10.pkl"))


def test_after_kill_9_the_next_start_frees_the_shared_memory_and_resumes(config, tmp_path):
    before = _shm_entries()
    work_dir = str(tmp_path / "w")
    rc, log, err, seen = _signal_at(config, work_dir, "KILL", 12)
    assert rc == 137 and seen >= 1
    _bash("sleep 1")                                       # the workers follow their parent (PR_SET_PDEATHSIG)
    left = set(_shm_entries()) - set(before)
    assert left                                            # a kill -9 cleans nothing up: the lock at least is left
    rc, out, err = _train(config, work_dir, "--resume", os.path.join(work_dir, "iter_10.pkl"),
                          "--cfg-options", "runner.max_iters=12")
    assert rc == 0, err
    assert "left by a run that was killed" in err
    assert _shm_entries() == before
    assert "resumed from" in out and "iter 12/12" in out


def _one_line(rc, err, status=2):
    lines = err.strip().splitlines()
    assert rc == status and len(lines) == 1 and "Traceback" not in err, (rc, err)
    assert lines[0].startswith("train: "), lines
    return lines[0]


def test_user_errors_are_one_line_with_status_2(config, tmp_path):
    wd = str(tmp_path / "w")
    assert "config file not found: " in _one_line(*_train(str(tmp_path / "nothere.py"), wd)[::2])
    line = _one_line(*_train(config, wd, "--cfg-options", "runer.max_iters=1")[::2])
    assert "did you mean 'runner.max_iters'?" in line
    line = _one_line(*_train(config, wd, "--cfg-options", "runner.max_iters=abc")[::2])
    assert "runner.max_iters: expected an integer" in line
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    line = _one_line(*_train(config, wd, "--resume", str(bad))[::2])
    assert f"--resume {bad}: cannot read it" in line
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = _one_line(*_train(config, str(blocker / "w"))[::2])
    assert str(blocker) in line
    rc, out, err = _train(config, wd, "--cfg-options", "checkpoint_config.interval=0", "--debug")
    assert rc == 2 and "Traceback" in err and "checkpoint_config.interval = 0" in err     # --debug: the traceback


def _tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(config, tmp_path):
    """A 256 KiB file system holds the log and the config, not the first checkpoint (~1.5 MB)."""
    before = _shm_entries()
    disk = tmp_path / "disk"
    mounted = _tmpfs(disk, "256k")
    try:
        if mounted:
            rc, _, err = _train(config, str(disk / "w"), "--cfg-options", "runner.max_iters=5")
        else:  # no permission to mount: the same failure, raised where the write would have failed
            hook = tmp_path / "sitecustomize.py"
            hook.write_text("import errno, pickle\n"
                            "def dump(*a, **k):\n"
                            "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
                            "pickle.dump = dump\n")
            env = f'PYTHONPATH="{tmp_path}:{ROOT}"'
            r = _bash(f'{env} "{sys.executable}" -m jseg.tools.train "{config}" --work-dir "{disk}/w" '
                      f'--cfg-options runner.max_iters=5; echo rc=$?')
            rc, err = int(r.stdout.rsplit("rc=", 1)[1]), r.stderr
        line = _one_line(rc, err, status=1)
        assert "cannot write checkpoint (No space left on device): " in line and "iter_5.pkl" in line
        assert sorted(os.listdir(disk / "w")) == ["tiny.py", "train.log", "train.log.json"]   # no partial file
        assert _shm_entries() == before
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None and not os.environ.get("CI"),
                    reason="Open MPI (mpirun) is not installed; scripts/run_tests.sh installs it")
def test_a_killed_mpi_rank_ends_the_job_and_the_next_start_frees_its_memory(config, tmp_path):
    assert shutil.which("mpirun"), "mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
    before = [e for e in _shm_entries() if e.startswith("jseg-")]
    work_dir, log = str(tmp_path / "w"), str(tmp_path / "mpi.out")
    script = (f'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; '
              f'mpirun --oversubscribe -np 2 -x PYTHONPATH "{sys.executable}" -m jseg.tools.train "{config}" '
              f'--work-dir "{work_dir}" > "{log}" 2>&1 & mpi=$!; '
              f'for i in $(seq 6000); do grep -q "iter 12/" "{log}" 2>/dev/null && break; sleep 0.05; done; '
              f'for p in $(pgrep -P $mpi); do grep -qz "^OMPI_COMM_WORLD_RANK=1$" /proc/$p/environ && kill -9 $p; '
              f'done; t0=$(date +%s%N); wait $mpi; rc=$?; t1=$(date +%s%N); '
              f'echo "rc=$rc ms=$(( (t1 - t0) / 1000000 ))"')
    r = _bash(script)
    fields = dict(kv.split("=") for kv in r.stdout.split())
    assert int(fields["rc"]) != 0, open(log).read()[-3000:]
    assert int(fields["ms"]) < 15000, fields              # the surviving rank does not hang
    rc, _, err = _train(config, str(tmp_path / "next"), "--cfg-options", "runner.max_iters=2")
    assert rc == 0, err
    assert [e for e in _shm_entries() if e.startswith("jseg-")] == before
