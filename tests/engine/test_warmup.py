"""The kernel warm-up (jseg/engine/warmup.py): a scratch process with Jittor's parallel compiler before the
first iteration, whose crash costs only its time.

Runs that start processes go through bash (tests/tools/test_train.py says why): a child of this process
dying of a signal would trip Jittor's SIGCHLD handler here."""
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from jseg.datasets import make_toy_dataset
from jseg.engine import warmup
from tests.engine.train_helpers import tiny_cfg
from tests.helpers import ROOT


def test_enabled_follows_the_switch_and_the_runs_own_compiler():
    assert warmup.enabled({})
    assert not warmup.enabled({"JSEG_WARMUP": "0"})
    assert not warmup.enabled({"use_parallel_op_compiler": "16"})   # the run compiles in parallel itself
    assert warmup.enabled({"use_parallel_op_compiler": "0"})


def test_the_scratch_process_is_one_process_with_the_parallel_compiler():
    env = warmup.child_environment({"OMPI_COMM_WORLD_RANK": "1", "PMIX_RANK": "1", "PATH": "/bin",
                                    "CUDA_VISIBLE_DEVICES": "3", "use_parallel_op_compiler": "0"}, 16)
    assert env == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "3", "use_parallel_op_compiler": "16",
                   "JSEG_WARMUP": "0"}


def test_marker_is_warm_only_while_the_kernel_cache_holds_its_kernels(tmp_path):
    m = str(tmp_path / "w" / "m.json")
    assert not warmup.is_warm(m, 100)
    warmup._write_marker(m, {"kernels": 50})
    assert warmup.is_warm(m, 50) and warmup.is_warm(m, 60)
    assert not warmup.is_warm(m, 49)            # the cache was emptied since
    assert os.listdir(tmp_path / "w") == ["m.json"]
    with open(m, "w") as f:
        f.write("{broken")
    assert not warmup.is_warm(m, 100)
    # the key follows the config and the per-process batch
    a, b, c = warmup.marker_path("x", 4), warmup.marker_path("y", 4), warmup.marker_path("x", 2)
    assert len({a, b, c}) == 3 and a == warmup.marker_path("x", 4)


_CRASH = r"""
import sys, types
import jseg, jittor as jt
from jseg.engine import warmup
warmup._child_command = lambda cfg_path, seed, local: [sys.executable, "-c",
    "import os, signal, sys; sys.stderr.write('compiler thread C3 crashed\\n'); sys.stderr.flush(); "
    "os.kill(os.getpid(), signal.SIGSEGV)"]
class Cfg:
    def dump(self, path):
        open(path, "w").write("x = 1\n")
lines = []
runner = types.SimpleNamespace(cfg=Cfg(), seed=0)
print("result", warmup._run_child(runner, 2, sys.argv[1], lines.append))
print("\n".join(lines))
print("survived")
"""


def test_a_crashing_scratch_process_costs_only_its_time(tmp_path):
    marker = str(tmp_path / "marker.json")
    script = tmp_path / "crash.py"
    script.write_text(_CRASH)
    r = subprocess.run(["bash", "-c", f'"{sys.executable}" "{script}" "{marker}"; echo rc=$?'], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=600)
    out = r.stdout
    assert "rc=0" in out and "survived" in out, (out, r.stderr)   # no "Caught SIGCHLD ... quick exit"
    assert "result False" in out
    assert "killed by signal 11: compiler thread C3 crashed" in out
    assert "compiles the remaining kernels one at a time" in out
    assert not os.path.exists(marker)


_SLOW = r"""
import sys, types
import jseg, jittor as jt
from jseg.engine import warmup
from jseg.tools._cli import install_signal_handlers
install_signal_handlers()   # as every jseg command (else Jittor's own handler quits at once)
pid_file = sys.argv[2]
warmup._child_command = lambda cfg_path, seed, local: [sys.executable, "-c",
    f"import os, time; open({pid_file!r}, 'w').write(str(os.getpid())); time.sleep(120)"]
class Cfg:
    def dump(self, path):
        open(path, "w").write("x = 1\n")
runner = types.SimpleNamespace(cfg=Cfg(), seed=0)
try:
    warmup._run_child(runner, 2, sys.argv[1], print)
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_during_the_warm_up_stops_the_scratch_process(tmp_path):
    script, pid_file = tmp_path / "slow.py", tmp_path / "child.pid"
    script.write_text(_SLOW)
    cmd = (f'setsid "{sys.executable}" "{script}" "{tmp_path / "m.json"}" "{pid_file}" > "{tmp_path / "out"}" 2>&1 & '
           f'pid=$!; for i in $(seq 600); do [ -s "{pid_file}" ] && break; sleep 0.05; done; '
           f'kill -INT -$pid; wait $pid; echo rc=$?')
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                       text=True, timeout=600)
    out = (tmp_path / "out").read_text()
    assert "rc=0" in r.stdout and "interrupted" in out, (r.stdout, out)
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)                     # the scratch process was stopped, not left behind
    assert not (tmp_path / "m.json").exists()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    d = tmp_path_factory.mktemp("warm")
    toy = make_toy_dataset(str(d / "toy"), n_train=8, n_val=2, size=32)
    cfg = tiny_cfg(toy, max_iters=3, norm="BN", eval_interval=3)
    # a config text of its own: the warm-up runs here whatever this machine warmed up before
    cfg["warmup_test_nonce"] = uuid.uuid4().hex
    path = str(d / "tiny.py")
    cfg.dump(path)
    return path, cfg


def _train(config, work_dir, switch):
    env = dict(os.environ, PYTHONPATH=ROOT, JSEG_WARMUP=switch)
    r = subprocess.run(["bash", "-c", f'"{sys.executable}" -m jseg.tools.train "{config}" --work-dir "{work_dir}"'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _numbers(log):
    """The loss lines and the evaluation table: what the warm-up must not change."""
    return [re.split(r"\s+[\d.]+ s/it", ln.split(" ", 2)[2])[0] for ln in log.splitlines()
            if " iter " in ln or "mIoU" in ln]


def test_training_warms_up_once_and_computes_the_same(config, tmp_path):
    path, cfg = config
    marker = warmup.marker_path(cfg.pretty_text(), 4)
    try:
        first = _train(path, str(tmp_path / "a"), "1")
        assert "compiling kernels ahead of the first iteration in a scratch process" in first
        assert "kernels compiled ahead in" in first
        with open(marker) as f:
            assert json.load(f)["kernels"] > 0
        again = _train(path, str(tmp_path / "b"), "1")
        assert "scratch process" not in again          # the marker says this config is warm
        off = _train(path, str(tmp_path / "c"), "0")
        assert "scratch process" not in off
        assert _numbers(first) == _numbers(again) == _numbers(off) and _numbers(first)
        assert sorted(os.listdir(tmp_path / "a")) == sorted(os.listdir(tmp_path / "c"))   # nothing of its own left
    finally:
        if os.path.exists(marker):
            os.remove(marker)
