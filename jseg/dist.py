"""Rank, world size and the few MPI collectives jseg needs (Open MPI through Jittor; no-ops in a single process).

The one place that reads ``jt.rank`` / ``jt.world_size``: datasets shard by it, the runner averages and
broadcasts through it.
"""
import numpy as np
import jittor as jt


def rank():
    return jt.rank if jt.in_mpi else 0


def world_size():
    return jt.world_size if jt.in_mpi else 1


def is_main():
    return rank() == 0


def all_reduce_sum(array):
    """Sum a NumPy array over ranks (float64: exact for counts below 2**53)."""
    a = np.asarray(array, dtype=np.float64)
    if not jt.in_mpi:
        return a
    return jt.array(a).mpi_all_reduce("add").numpy()


def broadcast_model(model):
    """Materialise the model's weights and copy rank 0's to every rank (before the first step).

    Jittor evaluates initialisers lazily: without this sync a single process would draw its
    initial weights at the first forward, after later re-seeding, unlike an MPI run.
    """
    if jt.in_mpi:
        for v in model.state_dict().values():
            # Integer state (index tables, BN counters) is equal on every rank by construction and is not sent:
            # Jittor 1.3.11's mpi_broadcast sends int64 as MPI_DOUBLE_INT (16 bytes per 8-byte element) and
            # overwrote the tensors next to it (CGRSeg's bias index tables: 27 tensors wrong on rank 1).
            if v.dtype in ("float16", "float32", "float64"):
                v.assign(v.mpi_broadcast(0))
    jt.sync(list(model.state_dict().values()))
    jt.sync_all(True)

