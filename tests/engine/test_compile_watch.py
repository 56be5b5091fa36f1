"""CompileWatch: a watcher process reports kernels appearing in Jittor's cache while a block runs (also while
this process holds the GIL, as Jittor does when it compiles), and nothing when none appear."""
import time

from jseg.engine.compile_watch import CompileWatch, kernel_dir


def _busy(seconds):
    """Hold the GIL (pure Python, like a thread blocked behind Jittor's compiler)."""
    end = time.time() + seconds
    while time.time() < end:
        pass


def test_reports_new_kernels_even_while_the_gil_is_held(tmp_path, capfd):
    log_path = tmp_path / "train.log"
    lines = []
    (tmp_path / "old.so").write_bytes(b"")
    with CompileWatch(lines.append, str(log_path), interval=0.2, directory=str(tmp_path)) as watch:
        time.sleep(0.3)   # the watcher is up
        for i in range(3):
            (tmp_path / f"k{i}.so").write_bytes(b"")
            (tmp_path / f"k{i}.cc").write_text("")   # sources are not kernels
            _busy(0.5)
    out = capfd.readouterr().out
    assert watch.compiled == 3
    assert "compiling kernels (first run only): " in out and "compiling kernels" in log_path.read_text()
    assert lines == [lines[0]] and lines[0].startswith("compiled 3 new kernels, the last ")
    last = float(lines[0].split("the last ")[1].split(" s ")[0])
    assert 0.5 <= last <= 2.5   # when the last kernel appeared (~1.3 s), not the block's end
    quiet = []
    with CompileWatch(quiet.append, interval=0.1, directory=str(tmp_path)):
        time.sleep(0.4)
    assert quiet == [] and "compiling" not in capfd.readouterr().out


def test_disabled_on_other_ranks(tmp_path):
    lines = []
    with CompileWatch(lines.append, interval=0.1, directory=str(tmp_path), enabled=False) as watch:
        (tmp_path / "k.so").write_bytes(b"")
    assert watch._proc is None and lines == []


def test_the_kernel_dir_is_jittors():
    import jittor_utils
    assert kernel_dir().startswith(jittor_utils.cache_path)
