"""The loader every jseg dataset iterates with: seeded order, MPI shards, a fork worker pool.

Batch semantics (as mmseg): ``samples_per_gpu`` images per process, so the
global batch is ``samples_per_gpu x number of MPI processes``; each global batch
is split across ranks: every rank reads a disjoint shard and together they
cover the epoch.

Order and augmentation are functions of ``(seed, epoch)`` and
``(seed, epoch, index)``: the same seed gives the same run, another seed
another order (Jittor's own shuffle is the same in every run), whichever
worker loads a sample.  ``set_epoch(epoch, start_batch)`` resumes inside an
interrupted epoch at its next batch.

An error in a worker comes back to the main process as a record and is raised
there.  Worker batches travel through ``/dev/shm`` (see ``shm.py``): an
abandoned iteration stops its workers and frees their segments, and a new pool
first frees what killed runs left.
"""
import atexit
import collections
import ctypes
import itertools
import multiprocessing
import signal
import sys
import traceback
import weakref

import numpy as np
import jittor as jt
from jittor.dataset import Dataset

from .. import dist
from . import shm
from .transforms import DataError

_INT32_MAX = 2 ** 31 - 1


def _error_record(kind, message):
    """An error travelling from a worker to the main process, raised there by ``_raise_error_record``."""
    return {"__error__": np.frombuffer(f"{kind}\n{message}".encode(), dtype=np.uint8).copy()}


def _raise_error_record(batch):
    kind, msg = bytes(np.asarray(batch["__error__"], dtype=np.uint8)).decode().split("\n", 1)
    raise (DataError if kind == "DataError" else RuntimeError)(msg)


_WORKER_DATASET = None  # the dataset a worker pool was forked with


def _worker_init():
    # Ctrl-C reaches the whole process group: the main process stops the workers and frees their memory.
    # SIGTERM (how the main process stops them) must end a worker at once, not run the handler it inherited.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    shm.forget_inherited_owner()
    try:  # Linux: end with the main process, even after a kill -9 of it
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_load(keys, token):
    """Load and collate one batch in a worker; arrays travel through shared memory, not the pipe.

    The worker transport is internal: an error comes back as a record that the main process raises.
    """
    ds = _WORKER_DATASET
    try:
        batch = ds.collate_batch([ds[int(k)] for k in keys])
    except DataError as e:
        return _error_record("DataError", str(e))
    except Exception:  # carried to the main process with its traceback
        return _error_record("RuntimeError", traceback.format_exc())
    if token is None:
        return batch
    out = {}
    try:
        for k, v in batch.items():
            out[k] = shm.put(v, token) if isinstance(v, np.ndarray) and v.nbytes > 0 else v
    except BaseException:
        for v in out.values():
            if shm.is_handle(v):
                shm.discard(v)
        raise
    return out


def _from_shared(batch):
    """Read a worker's batch into owned arrays (its shared-memory segments are unlinked)."""
    if "__error__" in batch:
        for v in batch.values():
            if shm.is_handle(v):
                shm.discard(v)
        _raise_error_record(batch)
    out = {}
    try:
        for k, v in batch.items():
            out[k] = shm.take(v) if shm.is_handle(v) else v
    finally:
        for k, v in batch.items():
            if shm.is_handle(v) and k not in out:
                shm.discard(v)
    return out


_OPEN_DATASETS = weakref.WeakSet()
_POOL_SERIAL = itertools.count()


@atexit.register
def _close_pools():
    # before multiprocessing's own exit handler, which would SIGTERM the workers (Jittor's SIGCHLD
    # handler then ends the process with an error)
    for ds in list(_OPEN_DATASETS):
        ds.close()
    shm.release_own()


class SegDataset(Dataset):
    """Loader behaviour shared by all datasets; subclasses implement ``num_samples`` and ``get_sample``.

    The sample order is one stream: the permutations of epochs 0, 1, 2, ... (each from
    ``(seed, epoch)``; with ``drop_last`` cut to whole batches) one after another.  Every
    iteration yields the next window of one epoch's length; ``set_epoch(epoch, start_batch)``
    moves the window start, so a resumed run continues at its next batch.  Each global batch
    is split into equal consecutive parts, one per MPI rank.

    Workers: a fork pool loads whole batches, given their sample keys, with a bounded
    in-order prefetch (``2 x workers_per_gpu`` batches); so order and content never depend
    on timing.  (Jittor's own worker machinery was replaced: its next-epoch prefetch,
    shared index list and SIGINT/SIGCHLD handling made windows occasionally wrong and
    stops fatal.)
    """

    def __init__(self):
        super().__init__(batch_size=1, shuffle=False, num_workers=0)
        self.seed = 0
        self._pos = 0     # stream position where the next iteration starts
        self._pool = None
        self._pool_token = None  # names this pool's shared-memory segments

    # -- to implement ------------------------------------------------------------------
    def num_samples(self):
        raise NotImplementedError

    def get_sample(self, idx, rng):
        raise NotImplementedError

    # -- order ---------------------------------------------------------------------------
    def __len__(self):
        return self.num_samples()

    def epoch_length(self):
        n = self.num_samples()
        return n - n % self.batch_size if self.drop_last else n

    def _stream(self, start, length):
        """Encoded sample keys ``epoch * N + index`` at stream positions ``[start, start + length)``."""
        n, ep_len = self.num_samples(), self.epoch_length()
        wrap = max(_INT32_MAX // n, 1)
        out, pos = [], start
        while pos < start + length:
            epoch, offset = divmod(pos, ep_len)
            order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                     else np.arange(n))[:ep_len]
            take = order[offset: offset + (start + length - pos)]
            out.append(take + (epoch % wrap) * n)
            pos += len(take)
        return np.concatenate(out).astype(np.int64)

    def batch_keys(self):
        """This rank's sample keys, batch by batch, for the next window."""
        keys = self._stream(self._pos, self.epoch_length())
        world, rank = dist.world_size(), dist.rank()
        out = []
        for start in range(0, len(keys), self.batch_size):
            part = np.array_split(keys[start:start + self.batch_size], world)[rank]
            if len(part):
                out.append(part)
        return out

    # -- loader ------------------------------------------------------------------------
    def set_loader(self, samples_per_gpu=1, workers_per_gpu=0, shuffle=False, seed=0, drop_last=False):
        """Batching for iteration: global batch = samples_per_gpu x MPI world size."""
        world = dist.world_size()
        self.close()
        self.seed = int(seed)
        self.set_attrs(batch_size=samples_per_gpu * world, num_workers=workers_per_gpu, shuffle=shuffle,
                       drop_last=drop_last)
        self._pos = 0
        return self

    def set_epoch(self, epoch, start_batch=0):
        """The next iteration starts at global batch ``start_batch`` of epoch ``epoch`` (resume)."""
        self._pos = int(epoch) * self.epoch_length() + int(start_batch) * self.batch_size

    def close(self, now=False):
        """Shut the worker pool down (it is started again when needed) and free what its workers wrote.

        ``now``: stop the workers at once (an abandoned iteration: an error, SIGINT/SIGTERM) instead of
        letting them finish."""
        if self._pool is not None:
            pool, token = self._pool, self._pool_token
            self._pool = self._pool_token = None
            if now:
                pool.terminate()
            else:
                pool.close()
            pool.join()
            _OPEN_DATASETS.discard(self)
            if token:
                shm.free(token)

    def _get_pool(self):
        global _WORKER_DATASET
        if self._pool is None:
            token = None
            if shm.available():
                freed, size = shm.reclaim_dead()
                if freed:
                    print(f"jseg: freed {freed} shared-memory segment(s) ({size / 2 ** 20:.1f} MB) in {shm.SHM_DIR} "
                          "left by a run that was killed", file=sys.stderr, flush=True)
                token = f"{shm.owner_token()}-{next(_POOL_SERIAL)}"
            _WORKER_DATASET = self
            try:
                self._pool = multiprocessing.get_context("fork").Pool(self.num_workers, initializer=_worker_init)
            finally:
                _WORKER_DATASET = None
            self._pool_token = token
            _OPEN_DATASETS.add(self)
        return self._pool

    def __iter__(self):
        batches = self.batch_keys()
        if self.num_workers <= 0:
            for keys in batches:
                yield self.to_jittor(self.collate_batch([self[int(k)] for k in keys]))
        else:
            pool = self._get_pool()
            token = self._pool_token
            todo = iter(batches)
            pending = collections.deque(pool.apply_async(_worker_load, (keys, token))
                                        for keys in itertools.islice(todo, 2 * self.num_workers))
            try:
                while pending:
                    result = _from_shared(pending.popleft().get())
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append(pool.apply_async(_worker_load, (nxt, token)))
                    yield self.to_jittor(result)
            finally:  # abandoned with batches loaded ahead (stopped early, an error, a signal): stop the
                if pending:  # workers and free the shared memory they wrote
                    self.close(now=True)
        self._pos += self.epoch_length()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __getitem__(self, k):
        """Sample ``k`` (``epoch * N + index``) with its augmentation drawn from ``(seed, epoch, index)``.

        Bad data raises ``DataError`` naming the file."""
        n = self.num_samples()
        idx, epoch = int(k) % n, int(k) // n
        return self.get_sample(idx, np.random.default_rng([self.seed, epoch, idx]))

    def collate_batch(self, batch):
        out = {"img_metas": [b.get("img_metas", {}) for b in batch]}
        for key in batch[0]:
            if key == "img_metas":
                continue
            values = [b[key] for b in batch]
            if isinstance(values[0], np.ndarray) and values[0].dtype != object:
                out[key] = np.stack(values)
            elif isinstance(values[0], list) and values[0] and isinstance(values[0][0], np.ndarray):
                out[key] = [np.stack(v) for v in zip(*values)]   # test-time views: one array per view
            else:
                out[key] = values                                 # anything else: one entry per sample
        return out

    def to_jittor(self, batch):
        if self.keep_numpy_array:
            return batch
        def var(a):  # an owned copy: arrays unpickled from a worker view the pickle buffer (jt.array on
            return jt.array(np.array(a, copy=True, order="C")).stop_grad()  # such views segfaulted later)

        conv = {}
        for k, v in batch.items():
            if isinstance(v, np.ndarray):
                conv[k] = var(v)
            elif k != "img_metas" and isinstance(v, list) and v and isinstance(v[0], np.ndarray) \
                    and len(v) != len(batch["img_metas"]):
                conv[k] = [var(a) for a in v]
            else:
                conv[k] = v
        return conv
