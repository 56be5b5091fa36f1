"""The few MPI helpers the runner needs (Open MPI through Jittor; no-ops in a single process)."""
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
            v.assign(v.mpi_broadcast(0))
    jt.sync(list(model.state_dict().values()))
    jt.sync_all(True)

