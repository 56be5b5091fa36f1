"""Batches from loader workers to the main process through ``/dev/shm``, and reclaiming what dead runs left.

A loader's worker writes each array of a batch to ``/dev/shm/jseg-<owner>-<pool>-<worker pid>-<n>``;
the main process reads it into an owned array and unlinks it at once.  ``<owner>`` names the main
process, which holds an exclusive ``flock`` on ``/dev/shm/jseg-<owner>.lock`` for as long as it
lives.  The kernel releases that lock on any death (``kill -9`` included), so a later start can tell
a dead run's segments from a live one's, whatever the process ids and PID namespaces involved:
:func:`reclaim_dead` frees the segments whose owner lock it can take, and never touches those of a
live run.  On a clean stop (end of training, an error, SIGINT/SIGTERM) the owner frees its own
segments (:func:`release_own`) after stopping its workers.

Without ``/dev/shm`` (not Linux) arrays travel through the worker pipe instead.
"""
import errno
import fcntl
import itertools
import os
import secrets
import threading

import numpy as np

SHM_DIR = "/dev/shm"
PREFIX = "jseg-"
LOCK_SUFFIX = ".lock"

_lock = threading.Lock()
_owner = None  # (pid, token, fd): one per process, the lock it holds identifies it


def available():
    return os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


def _lock_path(token):
    return os.path.join(SHM_DIR, f"{PREFIX}{token}{LOCK_SUFFIX}")


def owner_token():
    """This process's owner token, creating and locking its lock file on first use (main process only)."""
    global _owner
    with _lock:
        if _owner is not None and _owner[0] == os.getpid():
            return _owner[1]
        token = f"{os.getpid()}x{secrets.token_hex(4)}"
        # created under a temporary name and renamed once locked, so a sweeper never sees an unlocked lock file
        tmp = os.path.join(SHM_DIR, f".{PREFIX}{token}{LOCK_SUFFIX}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp, _lock_path(token))
        _owner = (os.getpid(), token, fd)
        return token


def forget_inherited_owner():
    """In a forked worker: drop the parent's lock descriptor so the lock dies with the parent alone."""
    if _owner is not None and _owner[0] != os.getpid():
        try:
            os.close(_owner[2])
        except OSError:
            pass


def _segment_paths(token):
    start = f"{PREFIX}{token}-"
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return []
    return [os.path.join(SHM_DIR, n) for n in names if n.startswith(start)]


def _unlink_all(paths):
    n = size = 0
    for p in paths:
        try:
            s = os.stat(p).st_size
            os.unlink(p)
        except FileNotFoundError:
            continue
        n += 1
        size += s
    return n, size


def free(token):
    """Unlink the unread segments named with ``token`` (a pool's, after its workers stopped)."""
    return _unlink_all(_segment_paths(token))


def release_own():
    """Free every segment this process's workers wrote and not yet read (call after the workers stopped)."""
    global _owner
    with _lock:
        if _owner is None or _owner[0] != os.getpid():
            return 0, 0
        pid, token, fd = _owner
        freed = _unlink_all(_segment_paths(token))
        _owner = None
        try:
            os.unlink(_lock_path(token))
        except FileNotFoundError:
            pass
        os.close(fd)
        return freed


def reclaim_dead():
    """Free the segments of runs that died without cleaning up; returns ``(segments, bytes)`` freed."""
    if not available():
        return 0, 0
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return 0, 0
    own = _owner[1] if _owner is not None and _owner[0] == os.getpid() else None
    locks, seg_tokens = {}, set()
    for n in names:
        if n.startswith(PREFIX) and n.endswith(LOCK_SUFFIX):
            locks[n[len(PREFIX):-len(LOCK_SUFFIX)]] = n
        elif n.startswith(f".{PREFIX}") and n.endswith(f"{LOCK_SUFFIX}.tmp"):
            locks.setdefault(n[len(PREFIX) + 1:-len(LOCK_SUFFIX) - 4], n)
        elif n.startswith(PREFIX) and "-" in n[len(PREFIX):]:
            seg_tokens.add(n[len(PREFIX):].split("-", 1)[0])
    freed, size = 0, 0
    for token in set(locks) | seg_tokens:
        if token == own:
            continue
        lock_name = locks.get(token)
        if lock_name is not None:
            path = os.path.join(SHM_DIR, lock_name)
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # its owner is just cleaning up
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    continue  # a live run
                raise
            try:
                n, s = _unlink_all(_segment_paths(token))
                freed, size = freed + n, size + s
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            finally:
                os.close(fd)
        else:
            # segments without any lock file: the owner is gone (it creates its lock before its workers
            # exist and removes it after they stopped)
            n, s = _unlink_all(_segment_paths(token))
            freed, size = freed + n, size + s
    return freed, size


_counter = itertools.count(1)  # segment numbers within a worker


def put(array, token):
    """In a worker: write ``array`` to a new segment; returns the handle the main process passes to ``take``."""
    name = f"{PREFIX}{token}-{os.getpid()}-{next(_counter)}"
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=True) as f:
            f.write(memoryview(np.ascontiguousarray(array)).cast("B"))
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return ("__shm__", name, tuple(array.shape), array.dtype.str)


def is_handle(v):
    return isinstance(v, tuple) and len(v) == 4 and v[0] == "__shm__"


def take(handle):
    """In the main process: the array of a segment (an owned copy); the segment is unlinked."""
    _, name, shape, dtype = handle
    path = os.path.join(SHM_DIR, name)
    try:
        return np.fromfile(path, dtype=np.dtype(dtype)).reshape(shape)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def discard(handle):
    try:
        os.unlink(os.path.join(SHM_DIR, handle[1]))
    except FileNotFoundError:
        pass
