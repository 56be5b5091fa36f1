"""import jseg prepares Jittor: CPU-only without a CUDA driver, oneDNN hooked in, no user exports."""
import os
import subprocess
import sys

import jittor as jt
import pytest

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


def test_jittor_still_exits_after_rebuilding_jit_utils():
    """The case restart_after_jit_utils_rebuild handles: Jittor 1.3.11's import calls sys.exit(0) after it
    rebuilt a stale jit_utils (seen with a copied cache folder: a silent exit, status 0, under log_silent)."""
    import jittor.compiler as jc
    src = open(jc.__file__, encoding="utf8").read()
    at = src.index("jit_utils updated, please rerun your command.")
    assert "sys.exit(0)" in src[at:at + 80]


RESTART_PROBE = """
import os, sys
marker = sys.argv[1]
import jseg
from jseg import _env
if os.path.exists(marker):
    print("SECOND RUN", sys.argv[1:], os.environ.get(_env.RESTART_ENV))
    sys.exit(0)
open(marker, "w").close()
_env.restart_after_jit_utils_rebuild(SystemExit(int(sys.argv[2])))
print("NOT RESTARTED")
"""


def test_a_program_restarts_once_after_jittor_rebuilt_jit_utils(tmp_path):
    marker = str(tmp_path / "first_run_done")
    r = subprocess.run([sys.executable, "-c", RESTART_PROBE, marker, "0"], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    # same arguments; the restart flag is cleared once jittor imported, so a child may restart too
    assert f"SECOND RUN ['{marker}', '0'] None" in r.stdout, r.stdout
    assert "NOT RESTARTED" not in r.stdout
    assert r.stderr.count("restarting the command") == 1, r.stderr


def test_no_restart_loop_and_other_exit_codes_pass(tmp_path, monkeypatch):
    monkeypatch.setenv(_env.RESTART_ENV, "1")  # this process already is the restart
    with pytest.raises(ImportError, match="restart the Python process"):
        _env.restart_after_jit_utils_rebuild(SystemExit(0))
    monkeypatch.delenv(_env.RESTART_ENV)
    with pytest.raises(SystemExit) as e:
        _env.restart_after_jit_utils_rebuild(SystemExit(3))
    assert e.value.code == 3


def test_exported_jittor_home_leaves_the_machine_default_alone(tmp_path, monkeypatch):
    """Jittor rewrites ~/.cache/jittor/config.json when JITTOR_HOME is exported; jseg restores the file."""
    cfg = tmp_path / "config.json"
    monkeypatch.setattr(_env, "_jittor_config_file", lambda: str(cfg))
    cfg.write_bytes(b'{"JITTOR_HOME": "/data/jittor"}')
    monkeypatch.setitem(_env.STATE, "jittor_config", cfg.read_bytes())
    for _ in range(2):  # after the import, and at exit again (Jittor's kernel compiles rewrite it meanwhile)
        cfg.write_text('{"JITTOR_HOME": "/tmp/elsewhere"}')
        _env.keep_jittor_config()
        assert cfg.read_bytes() == b'{"JITTOR_HOME": "/data/jittor"}'
    monkeypatch.setitem(_env.STATE, "jittor_config", None)  # there was no file: Jittor's is removed
    cfg.write_text('{"JITTOR_HOME": "/tmp/elsewhere"}')
    _env.keep_jittor_config()
    assert not cfg.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp file left


def test_exported_jittor_home_restores_config_at_exit(tmp_path):
    """The real path, cheaply: JITTOR_HOME exported as the current folder (so nothing compiles), and the
    process itself changes config.json after the import, as Jittor's compile subprocesses do."""
    path = _env._jittor_config_file()
    before = open(path, "rb").read() if os.path.exists(path) else None
    env = dict(os.environ, JITTOR_HOME=_env.jittor_home())
    code = ("import jseg, json; from jseg import _env; p = _env._jittor_config_file(); "
            "open(p, 'w').write(json.dumps({'JITTOR_HOME': '/tmp/not/this'})); print('WROTE')")
    try:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                           cwd=ROOT)
        after = open(path, "rb").read() if os.path.exists(path) else None
    finally:
        now = open(path, "rb").read() if os.path.exists(path) else None
        if now != before:  # never leave the machine changed, whatever happened
            if before is None:
                os.unlink(path)
            else:
                open(path, "wb").write(before)
    assert r.returncode == 0 and "WROTE" in r.stdout, r.stdout + r.stderr
    assert after == before


def test_one_gpu_per_rank():
    eight = [str(i) for i in range(8)]
    assert [_env.gpu_for_rank(r, 8, eight) for r in range(8)] == [(str(r), None) for r in range(8)]
    assert _env.gpu_for_rank(1, 2, ["3", "5"]) == ("5", None)             # CUDA_VISIBLE_DEVICES=3,5
    assert _env.gpu_for_rank(0, 1, ["GPU-1a2b"]) == ("GPU-1a2b", None)    # UUIDs pass through
    assert _env.gpu_for_rank(0, 4, []) == (None, None)                    # no GPU: nothing to choose
    device, problem = _env.gpu_for_rank(2, 3, ["0", "1"])
    assert device is None and "3 MPI processes on this node but 2 GPU(s)" in problem and "JSEG_GPU_SHARE=1" in problem
    assert _env.gpu_for_rank(2, 3, ["0", "1"], share=True) == ("0", None)


def test_rank_gpu_is_set_before_jittor_and_never_shared_unasked(monkeypatch):
    monkeypatch.setattr(_env, "cuda_device_count", lambda: 4)
    env = {"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
    _env._choose_rank_gpu(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    env = {"OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "CUDA_VISIBLE_DEVICES": "6,7"}
    _env._choose_rank_gpu(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "7"
    env = {"OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "CUDA_VISIBLE_DEVICES": "0"}
    _env._choose_rank_gpu(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and "JSEG_GPU_SHARE" in _env.STATE["rank_gpu_problem"]
    try:
        with pytest.raises(jseg.errors.UserError, match="2 MPI processes on this node but 1 GPU"):
            jseg.select_device("auto")
        assert jseg.select_device("cpu") == "cpu"                        # the CPU needs no GPU of its own
    finally:
        _env.STATE["rank_gpu"] = _env.STATE["rank_gpu_problem"] = None
    env = {"OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "JSEG_RANK_GPU": "0"}
    _env._choose_rank_gpu(env)
    assert "CUDA_VISIBLE_DEVICES" not in env                               # a launcher that pins GPUs itself
    _env._choose_rank_gpu({})                                              # not under MPI: nothing
    assert _env.STATE["rank_gpu"] is None


def test_gpu_count_without_a_driver_is_zero():
    if not _env.has_cuda_driver():
        assert _env.cuda_device_count() == 0
    else:
        assert _env.cuda_device_count() >= 1


def test_cudnn_algorithm_cache_and_workspace_are_sized(monkeypatch):
    from jseg import device

    class FakeCudnn:
        def set_algorithm_cache_size(self, n):
            self.cache = n

        def set_max_workspace_ratio(self, r):
            self.ratio = r

    fake = FakeCudnn()
    assert device.configure_cudnn(fake) == (10000, 0.25) and (fake.cache, fake.ratio) == (10000, 0.25)
    monkeypatch.setenv("JSEG_CUDNN_ALGO_CACHE", "500")
    monkeypatch.setenv("JSEG_CUDNN_WORKSPACE_RATIO", "0.5")
    assert device.configure_cudnn(fake) == (500, 0.5) and (fake.cache, fake.ratio) == (500, 0.5)
    assert device.configure_cudnn(None) is None            # no cuDNN (CPU, or cuDNN 9 with conv_opt=1)


def test_a_virtualenv_uses_the_base_pythons_config(tmp_path):
    """Jittor needs python3.X-config (Python's include flags) and looks beside sys.executable: not in a venv."""
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    (base / "bin" / "python3.12-config").write_text("#!/bin/sh\n")
    assert _env.python_config(str(tmp_path / "venv"), str(base), (3, 12)) == str(base / "bin" / "python3.12-config")
    assert _env.python_config(str(base), str(base), (3, 12)) is None          # not a venv: Jittor finds it
    assert _env.python_config(str(tmp_path / "venv"), str(base), (3, 11)) is None   # none there: Jittor says so


def test_jittors_own_cuda_download_is_left_to_jittor(tmp_path, monkeypatch):
    """A machine where Jittor once downloaded its CUDA (bundling cuDNN 8) keeps using it: no search, no conv_opt."""
    assert _env.jittor_cuda_download(str(tmp_path)) is None
    nvcc = tmp_path / ".cache" / "jittor" / "jtcuda" / "cuda12.2_cudnn8_linux" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("")
    assert _env.jittor_cuda_download(str(tmp_path)) == str(nvcc)
    monkeypatch.setattr(_env, "jittor_home", lambda: str(tmp_path))
    monkeypatch.setitem(_env.STATE, "cuda_plan", None)
    before = dict(os.environ)
    _env._setup_cuda_stack()
    assert dict(os.environ) == before and "left to Jittor" in _env.STATE["cuda_plan"]["notes"][0]
