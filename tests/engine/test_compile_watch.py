"""CompileWatch reports kernels appearing in Jittor's cache while a block runs, and nothing when none do."""
import threading
import time

from jseg.engine.compile_watch import CompileWatch, kernel_dir


def test_reports_new_kernels_and_stays_quiet_without_them(tmp_path):
    lines = []
    (tmp_path / "old.so").write_bytes(b"")
    with CompileWatch(lines.append, interval=0.05, directory=str(tmp_path)) as watch:
        for i in range(3):
            (tmp_path / f"k{i}.so").write_bytes(b"")
            (tmp_path / f"k{i}.cc").write_text("")   # sources are not kernels
            time.sleep(0.15)
    assert watch.compiled == 3
    assert lines and lines[0].startswith("compiling kernels (first run only): ")
    assert lines[-1].startswith("compiled 3 new kernels in ")
    quiet = []
    with CompileWatch(quiet.append, interval=0.05, directory=str(tmp_path)):
        time.sleep(0.2)
    assert quiet == []
    assert not any(t.name == "jseg-compile-watch" for t in threading.enumerate())


def test_the_kernel_dir_is_jittors():
    import jittor_utils
    assert kernel_dir().startswith(jittor_utils.cache_path)
