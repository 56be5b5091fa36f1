"""Which device Jittor computes on, chosen explicitly before a model is built.

Jittor computes on the CPU unless ``jt.flags.use_cuda`` is set, and picks its CUDA depthwise-conv
kernel when an ``nn.Conv2d`` is constructed, so the choice comes first.  Every jseg command calls
``select_device('auto')`` at start (the GPU whenever Jittor found one), ``init_model`` and
``benchmark`` take a ``device`` argument; a script of yours calls it itself.  ``import jseg``
does not touch it, except that under Open MPI each rank sees only its own GPU (``jseg/_env.py``):
``select_device`` refuses a node with more ranks than GPUs (unless ``JSEG_GPU_SHARE=1``).
"""
import os

import jittor as jt

from . import _env
from .errors import UserError


# cuDNN convolution algorithms: Jittor benchmarks them per shape and caches the choice, but only for the
# first 100 shapes (then it stops benchmarking); slide inference, multi-scale/flip testing and varied
# training crops see more.  Workspace: at most this share of GPU memory per convolution (Jittor's 0.25).
CUDNN_ALGO_CACHE = 10000
CUDNN_WORKSPACE_RATIO = 0.25


def configure_cudnn(cudnn):
    """Size Jittor's cuDNN algorithm cache and workspace (``jt.cudnn``; None without cuDNN).

    ``JSEG_CUDNN_ALGO_CACHE`` and ``JSEG_CUDNN_WORKSPACE_RATIO`` override the defaults above.
    """
    if cudnn is None:
        return None
    size = int(os.environ.get("JSEG_CUDNN_ALGO_CACHE", CUDNN_ALGO_CACHE))
    ratio = float(os.environ.get("JSEG_CUDNN_WORKSPACE_RATIO", CUDNN_WORKSPACE_RATIO))
    cudnn.set_algorithm_cache_size(size)
    cudnn.set_max_workspace_ratio(ratio)
    return size, ratio


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
    if jt.flags.use_cuda:
        configure_cudnn(getattr(jt, "cudnn", None))
    return "cuda" if jt.flags.use_cuda else "cpu"
