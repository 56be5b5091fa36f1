"""Which device Jittor computes on, chosen explicitly before a model is built.

Jittor computes on the CPU unless ``jt.flags.use_cuda`` is set, and picks its CUDA depthwise-conv
kernel when an ``nn.Conv2d`` is constructed, so the choice comes first.  Every jseg command calls
``select_device('auto')`` at start (the GPU whenever Jittor found one), ``init_model`` and
``benchmark`` take a ``device`` argument; a script of yours calls it itself.  ``import jseg``
does not touch it, except that under Open MPI each rank sees only its own GPU (``jseg/_env.py``):
``select_device`` refuses a node with more ranks than GPUs (unless ``JSEG_GPU_SHARE=1``).
"""
import jittor as jt

from . import _env
from .errors import UserError


def select_device(device="auto"):
    """``'auto'`` (CUDA when Jittor has it), ``'cpu'`` or ``'cuda'``/``'gpu'``; returns ``'cuda'`` or ``'cpu'``."""
    problem = _env.STATE.get("rank_gpu_problem")
    if problem and device != "cpu":
        raise UserError(problem)
    if device == "auto":
        jt.flags.use_cuda = int(bool(jt.has_cuda))
    elif device == "cpu":
        jt.flags.use_cuda = 0
    elif device in ("cuda", "gpu"):
        if not jt.has_cuda:
            raise UserError(f"device={device!r} asked for, but Jittor found no CUDA (no driver or nvcc); "
                            "use device='cpu' or 'auto'")
        jt.flags.use_cuda = 1
    else:
        raise UserError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return "cuda" if jt.flags.use_cuda else "cpu"
