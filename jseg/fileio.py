"""Atomic file writes: a file a jseg command writes is either its old self or complete, never partial."""
import contextlib
import os


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """``with atomic_path(path) as tmp: write tmp``: a temporary name beside ``path`` (``suffix`` keeps an
    extension a writer needs, e.g. ``.png``); on a normal exit it replaces ``path``, on any exit it is
    gone."""
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, data):
    """Write ``data`` (bytes or str) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
