"""Building blocks shared by the models, with PyTorch/mmcv numerics.

Jittor's own BatchNorm/LayerNorm/GroupNorm compute the variance as
E[x^2]-E[x]^2 (cancellation at large means), update BN's running_var with the
biased variance and have no ``num_batches_tracked``; the official checkpoints
and the train-step fixture need PyTorch's behaviour, so the norms are
written here.
"""
import functools
import math

import numpy as np

import jittor as jt
from jittor import nn

from .kernels import bilinear_resize_cpu

# ----------------------------------------------------------------------------- helpers


def resize(x, size, mode="bilinear", align_corners=False):
    """``F.interpolate(x, size=size)`` of PyTorch (mmseg ``resize``).

    Jittor's bilinear resize uses PyTorch's source-index rule
    (``src = (dst + 0.5) * in/out - 0.5``) and autograd through it gives the
    exact gradient, so no custom backward is needed.  Same size: identity.
    Without gradient on the CPU, bilinear runs a threaded kernel that follows
    PyTorch's float arithmetic more closely (``kernels.bilinear_resize_cpu``).
    """
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    if (mode == "bilinear" and not jt.flags.use_cuda and x.dtype == "float32" and x.ndim == 4
            and (jt.flags.no_grad or x.is_stop_grad())):
        return bilinear_resize_cpu(x, size, align_corners)
    return nn.interpolate(x, size=size, mode=mode, align_corners=align_corners)


def bmm(a, b):
    """Batched matmul ``(B, n, m) @ (B, m, k)``.

    On CPU Jittor hands only 2-D matmuls to oneDNN (its 3-D ``nn.bmm`` is a
    plain broadcast-multiply-sum, 25-40x slower), so the batch is looped over.
    Keep big operands un-transposed: a transposed view also defeats oneDNN.
    """
    if jt.flags.use_cuda:
        return nn.bmm(a, b)
    if a.shape[0] == 1:
        return jt.matmul(a[0], b[0]).unsqueeze(0)
    return jt.stack([jt.matmul(a[i], b[i]) for i in range(a.shape[0])])


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


def _channel_view(v, ndim, axis=1):
    """Reshape a per-channel vector to broadcast against an ``ndim`` tensor along ``axis``."""
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


# ----------------------------------------------------------------------------- norms


class BatchNorm2d(nn.Module):
    """BatchNorm over (N, H, W) with PyTorch semantics.

    Train mode normalises with the biased batch variance and updates
    ``running_var`` with the unbiased one (momentum 0.1 by default);
    ``num_batches_tracked`` is kept for checkpoint compatibility.
    ``sync=True`` (mmcv ``SyncBN``) averages the statistics over MPI ranks.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, sync=False, requires_grad=True):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.sync = sync
        self.weight = jt.ones((num_features,), "float32")
        self.bias = jt.zeros((num_features,), "float32")
        self.running_mean = jt.zeros((num_features,), "float32").stop_grad()
        self.running_var = jt.ones((num_features,), "float32").stop_grad()
        self.num_batches_tracked = jt.zeros((1,), "int64").stop_grad()
        if not requires_grad:
            self.weight.stop_grad()
            self.bias.stop_grad()

    def execute(self, x):
        w = _channel_view(self.weight, x.ndim)
        b = _channel_view(self.bias, x.ndim)
        if not self.is_training():
            mean = _channel_view(self.running_mean, x.ndim)
            var = _channel_view(self.running_var, x.ndim)
            return (x - mean) / jt.sqrt(var + self.eps) * w + b
        dims = [0] + list(range(2, x.ndim))
        n = x.numel() // x.shape[1]
        mean = x.mean(dims=dims, keepdims=True)
        if self.sync and jt.in_mpi:
            mean = mean.mpi_all_reduce("mean")
            n *= jt.world_size
        centered = x - mean
        var = (centered * centered).mean(dims=dims, keepdims=True)
        if self.sync and jt.in_mpi:
            var = var.mpi_all_reduce("mean")
        out = centered / jt.sqrt(var + self.eps) * w + b
        m = self.momentum
        unbiased = var.reshape((-1,)) * (n / max(n - 1, 1))
        self.running_mean.update((1 - m) * self.running_mean + m * mean.reshape((-1,)).detach())
        self.running_var.update((1 - m) * self.running_var + m * unbiased.detach())
        self.num_batches_tracked.update(self.num_batches_tracked + 1)
        return out

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, sync={self.sync}"


class LayerNorm(nn.Module):
    """LayerNorm over one axis (``axis=-1`` for tokens, ``axis=1`` for NCHW maps)."""

    def __init__(self, num_features, eps=1e-5, axis=-1):
        self.num_features = num_features
        self.eps = eps
        self.axis = axis
        self.weight = jt.ones((num_features,), "float32")
        self.bias = jt.zeros((num_features,), "float32")

    def execute(self, x):
        axis = self.axis % x.ndim
        mean = x.mean(dims=[axis], keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(dims=[axis], keepdims=True)
        w = _channel_view(self.weight, x.ndim, axis)
        b = _channel_view(self.bias, x.ndim, axis)
        return centered / jt.sqrt(var + self.eps) * w + b


class GroupNorm(nn.Module):
    """GroupNorm (``nn.GroupNorm`` semantics, biased variance, per-channel affine)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, requires_grad=True):
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} is not divisible by num_groups={num_groups}")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.weight = jt.ones((num_channels,), "float32")
        self.bias = jt.zeros((num_channels,), "float32")
        if not requires_grad:
            self.weight.stop_grad()
            self.bias.stop_grad()

    def execute(self, x):
        shape = x.shape
        g = x.reshape((shape[0], self.num_groups, -1))
        mean = g.mean(dims=[2], keepdims=True)
        centered = g - mean
        var = (centered * centered).mean(dims=[2], keepdims=True)
        out = (centered / jt.sqrt(var + self.eps)).reshape(shape)
        return out * _channel_view(self.weight, x.ndim) + _channel_view(self.bias, x.ndim)


_NORM_ABBR = {"BN": "bn", "SyncBN": "bn", "GN": "gn", "LN": "ln"}


def build_norm_layer(cfg, num_features):
    """mmcv ``build_norm_layer``: returns ``(name, module)``; ``name`` is the state-dict attribute (bn/gn/ln)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    requires_grad = cfg.pop("requires_grad", True)
    eps = cfg.pop("eps", 1e-5)
    if kind in ("BN", "SyncBN", "BN2d"):
        momentum = cfg.pop("momentum", 0.1)
        layer = BatchNorm2d(num_features, eps=eps, momentum=momentum, sync=(kind == "SyncBN"),
                            requires_grad=requires_grad)
    elif kind == "GN":
        if "num_groups" not in cfg:
            raise KeyError("norm_cfg of type 'GN' needs 'num_groups'")
        layer = GroupNorm(cfg.pop("num_groups"), num_features, eps=eps, requires_grad=requires_grad)
    elif kind == "LN":
        layer = LayerNorm(num_features, eps=eps, axis=1)
    else:
        raise KeyError(f"unknown norm type {kind!r} in norm_cfg; expected one of BN, SyncBN, GN, LN")
    if cfg:
        raise TypeError(f"norm_cfg {kind}: unexpected keys {sorted(cfg)}")
    return _NORM_ABBR.get(kind, "bn"), layer


# ----------------------------------------------------------------------------- activations / dropout


class GELU(nn.Module):
    """Exact (erf) GELU, PyTorch's ``nn.GELU()`` default."""

    def execute(self, x):
        return 0.5 * x * (1.0 + jt.erf(x * (1.0 / math.sqrt(2.0))))


class ReLU(nn.Module):
    def execute(self, x):
        return jt.nn.relu(x)


def build_activation(cfg):
    if cfg is None:
        return None
    kind = cfg.get("type")
    if kind == "ReLU":
        return ReLU()
    if kind == "GELU":
        return GELU()
    raise KeyError(f"unknown activation type {kind!r} in act_cfg; expected ReLU or GELU")


class DropPath(nn.Module):
    """Stochastic depth per sample (timm/mmcv: ``x / keep * floor(keep + U[0,1))``)."""

    def __init__(self, drop_prob=0.0):
        self.drop_prob = float(drop_prob)

    def execute(self, x):
        if self.drop_prob == 0.0 or not self.is_training():
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = jt.floor(keep + jt.rand(shape, dtype=x.dtype))
        return x / keep * mask


class Dropout(nn.Module):
    """Inverted dropout in train mode; ``channelwise=True`` is ``nn.Dropout2d`` (whole feature maps)."""

    def __init__(self, p=0.5, channelwise=False):
        self.p = float(p)
        self.channelwise = channelwise

    def execute(self, x):
        if self.p == 0.0 or not self.is_training():
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2) if self.channelwise else x.shape
        return x * (jt.rand(shape, dtype=x.dtype) < keep).cast(x.dtype) / keep


def Dropout2d(p=0.5):
    return Dropout(p, channelwise=True)


# ----------------------------------------------------------------------------- linear / conv


class Linear(nn.Module):
    """``nn.Linear`` (weight ``(out, in)``) on tokens of any leading shape.

    The leading dims are flattened so the product is one 2-D matmul, which
    Jittor hands to oneDNN on the CPU (a 3-D operand would not be).
    Init: ``trunc_normal(std)`` clipped at +-2 (timm's absolute bounds), bias 0.
    """

    def __init__(self, in_features, out_features, bias=True, std=0.02):
        self.in_features = in_features
        self.out_features = out_features
        self.weight = jt.clamp(jt.init.gauss((out_features, in_features), "float32", std=std), -2.0, 2.0)
        self.bias = jt.zeros((out_features,), "float32") if bias else None

    def execute(self, x):
        lead = x.shape[:-1]
        y = nn.matmul_transpose(x.reshape((-1, self.in_features)), self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape((*lead, self.out_features))

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"




def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
    """``nn.Conv2d`` with tuple arguments normalised (Jittor accepts ints or tuples)."""
    def pair(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (v, v)
    return nn.Conv2d(in_channels, out_channels, pair(kernel_size), stride=pair(stride),
                     padding=pair(padding), groups=groups, bias=bias)


def normal_init_(var, std, mean=0.0):
    var.assign(jt.init.gauss(var.shape, "float32", mean=mean, std=std))


def constant_init_(var, value):
    var.assign(jt.full(var.shape, value, "float32"))


def fan_out_normal_init_(conv):
    """``normal(0, sqrt(2 / fan_out))`` with ``fan_out = kh*kw*out/groups``, bias 0 (MSCAN/kaiming fan_out)."""
    kh, kw = conv.kernel_size
    fan_out = kh * kw * conv.out_channels // conv.groups
    normal_init_(conv.weight, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        constant_init_(conv.bias, 0.0)


class ConvModule(nn.Module):
    """mmcv ``ConvModule``: conv -> norm -> activation.

    ``bias='auto'`` means a bias only when there is no norm.  The norm is
    stored under mmcv's attribute name (``bn``/``gn``/``ln``) so that state-dict
    keys match the official checkpoints (``squeeze.conv.weight``, ``squeeze.gn.bias``).
    Init as in mmcv: kaiming normal (fan_out, relu) for the conv, bias 0, norm (1, 0).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 bias="auto", norm_cfg=None, act_cfg=dict(type="ReLU")):
        if bias == "auto":
            bias = norm_cfg is None
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride, padding, groups, bias)
        fan_out_normal_init_(self.conv)
        self.norm_name = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            setattr(self, self.norm_name, norm)
        self.activate = build_activation(act_cfg)

    def execute(self, x):
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
