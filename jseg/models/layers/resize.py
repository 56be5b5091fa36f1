"""Resizing and pooling with PyTorch's index rules: ``F.interpolate`` (bilinear, bicubic) and
``F.adaptive_avg_pool2d``.  Bicubic and adaptive pooling are written as separable (out, in)
matrices applied with two 2-D matmuls, which oneDNN runs on the CPU and autograd differentiates."""
import functools

import numpy as np
import jittor as jt
from jittor import nn

from ..kernels import bilinear_resize_cpu


def resize(x, size, mode="bilinear", align_corners=False):
    """``F.interpolate(x, size=size)`` of PyTorch (mmseg ``resize``).

    Jittor's bilinear resize uses PyTorch's source-index rule
    (``src = (dst + 0.5) * in/out - 0.5``) and autograd through it gives the
    exact gradient; on the CPU, float32 bilinear runs jseg's threaded kernel
    and its transposed kernel for the gradient instead (``kernels.bilinear_resize_cpu``:
    ~10x faster, and it follows PyTorch's float arithmetic more closely).
    Same size: identity.
    """
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if mode == "bilinear" and not jt.flags.use_cuda and x.dtype == "float32" and x.ndim == 4:
        return bilinear_resize_cpu(x, size, align_corners)
    return nn.interpolate(x, size=size, mode=mode, align_corners=align_corners)


def _readonly(a):
    a.setflags(write=False)
    return a


def _separable(x, rows, cols):
    """``rows @ x @ cols^T`` on the last two axes of an NCHW Var, as two 2-D matmuls (oneDNN on the CPU)."""
    N, C, H, W = x.shape
    Ho, Wo = rows.shape[0], cols.shape[0]
    y = jt.matmul(x.reshape((N * C * H, W)), jt.array(np.ascontiguousarray(cols.T)))        # (NCH, Wo)
    y = y.reshape((N * C, H, Wo)).transpose(1, 0, 2).reshape((H, N * C * Wo))
    y = jt.matmul(jt.array(rows), y)                                                          # (Ho, NC*Wo)
    return y.reshape((Ho, N * C, Wo)).transpose(1, 0, 2).reshape((N, C, Ho, Wo))


@functools.lru_cache(maxsize=256)
def _bicubic_matrix(n_in, n_out, A=-0.75):
    """PyTorch's ``upsample_bicubic2d`` weights (align_corners=False) as an (out, in) float32 matrix:
    src = scale*(dst+0.5)-0.5 (not clamped), taps floor(src)-1..+2 clamped to the border, Keys' cubic
    with A=-0.75; the same size is an exact copy."""
    if n_in == n_out:
        return _readonly(np.eye(n_out, dtype=np.float32))
    f = np.float32
    scale = f(n_in) / f(n_out)
    m = np.zeros((n_out, n_in), np.float32)
    for d in range(n_out):
        real = scale * (f(d) + f(0.5)) - f(0.5)
        i0 = int(np.floor(real))
        t = f(real - f(i0))
        x1, x2 = t + f(1), f(1) - t
        w = [((f(A) * x1 - f(5 * A)) * x1 + f(8 * A)) * x1 - f(4 * A),
             ((f(A + 2) * t - f(A + 3)) * t) * t + f(1),
             ((f(A + 2) * x2 - f(A + 3)) * x2) * x2 + f(1),
             ((f(A) * (x2 + f(1)) - f(5 * A)) * (x2 + f(1)) + f(8 * A)) * (x2 + f(1)) - f(4 * A)]
        for k in range(4):
            m[d, min(max(i0 - 1 + k, 0), n_in - 1)] += w[k]
    return _readonly(m)


def bicubic_resize(x, size):
    """``F.interpolate(x, size, mode='bicubic', align_corners=False)`` of PyTorch, differentiable."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    return _separable(x, _bicubic_matrix(x.shape[2], size[0]), _bicubic_matrix(x.shape[3], size[1]))


@functools.lru_cache(maxsize=256)
def _adaptive_avg_matrix(n_in, n_out):
    """PyTorch adaptive average pooling bins: ``[floor(i*in/out), ceil((i+1)*in/out))``, as an (out, in) matrix."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return _readonly(m)


def adaptive_avg_pool2d(x, size):
    """``F.adaptive_avg_pool2d(x, size)`` (``None`` in ``size`` keeps that axis), differentiable."""
    H, W = x.shape[2:]
    Ho = H if size[0] is None else int(size[0])
    Wo = W if size[1] is None else int(size[1])
    if Wo == 1 and Ho == H:
        return x.mean(dim=3, keepdims=True)
    if Ho == 1 and Wo == W:
        return x.mean(dim=2, keepdims=True)
    return _separable(x, _adaptive_avg_matrix(H, Ho), _adaptive_avg_matrix(W, Wo))


def adaptive_avg_pool2d_onnx(g, x, in_size, size):
    """ONNX of ``adaptive_avg_pool2d`` for an input of spatial size ``in_size`` (a fixed-shape export):
    the same (out, in) matrices, ``rows @ x @ cols^T``."""
    (H, W), (Ho, Wo) = in_size, size
    y = g.op("MatMul", x, g.const(np.ascontiguousarray(_adaptive_avg_matrix(W, Wo).T), "pool_cols"))
    return g.op("MatMul", g.const(_adaptive_avg_matrix(H, Ho), "pool_rows"), y)
