"""BatchNorm/SyncBN, LayerNorm and GroupNorm with PyTorch semantics, and mmcv's ``build_norm_layer``.

Jittor's own norms compute the variance as E[x^2]-E[x]^2 (cancellation at large means),
update BN's running_var with the biased variance and have no ``num_batches_tracked``; the
official checkpoints and the train-step fixture need PyTorch's behaviour, so the norms are
written here around one variance rule (``centered_variance``).
"""
import jittor as jt
from jittor import nn

from ..kernels import batch_norm_train_cpu
from .counting import numel


def centered_variance(x, dims, reduce_mean=None):
    """``(mean, x - mean, biased variance)`` over ``dims`` (kept), as PyTorch computes them: the variance is the
    mean of the squared centred values.  ``reduce_mean``: applied to the local mean and variance (SyncBN's
    average over processes)."""
    mean = x.mean(dims=dims, keepdims=True)
    if reduce_mean is not None:
        mean = reduce_mean(mean)
    centered = x - mean
    var = (centered * centered).mean(dims=dims, keepdims=True)
    if reduce_mean is not None:
        var = reduce_mean(var)
    return mean, centered, var


def channel_view(v, ndim, axis=1):
    """Reshape a per-channel vector to broadcast against an ``ndim`` tensor along ``axis``."""
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def affine_onnx(g, x, weight, bias, shape=None):
    """``x * weight + bias`` in an ONNX graph, the parameters reshaped to ``shape`` to broadcast."""
    w, b = g.param(weight), g.param(bias)
    if shape is not None:
        w, b = g.reshape(w, shape), g.reshape(b, shape)
    return g.op("Add", g.op("Mul", x, w), b)


def norm_macs(self, convention, inputs, out):
    """torchprofile: one per output when affine; mmcv: ``numel(in)``, doubled when affine, and nothing for
    SyncBN (``nn.SyncBatchNorm`` is not in mmcv's counter mapping) unless the official model was still a
    plain BN when its paper counted (``plain_when_counted``)."""
    affine = getattr(self, "weight", None) is not None
    if convention == "torchprofile":
        return numel(out) if affine else 0
    if getattr(self, "sync", False) and not getattr(self, "plain_when_counted", False):
        return 0
    return numel(inputs[0]) * (2 if affine else 1)


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
        w = channel_view(self.weight, x.ndim)
        b = channel_view(self.bias, x.ndim)
        if not self.is_training():
            mean = channel_view(self.running_mean, x.ndim)
            var = channel_view(self.running_var, x.ndim)
            return (x - mean) / jt.sqrt(var + self.eps) * w + b
        dims = [0] + list(range(2, x.ndim))
        n = x.numel() // x.shape[1]
        synced = self.sync and jt.in_mpi
        if not synced and not jt.flags.use_cuda and x.ndim == 4 and x.dtype == "float32":
            # one threaded kernel each way instead of Jittor's single-core channel-strided reductions
            out, mean, var = batch_norm_train_cpu(x, self.weight, self.bias, self.eps)
        else:
            mean, centered, var = centered_variance(x, dims,
                                                    (lambda v: v.mpi_all_reduce("mean")) if synced else None)
            if synced:
                n *= jt.world_size
            out = centered / jt.sqrt(var + self.eps) * w + b
        m = self.momentum
        unbiased = var.reshape((-1,)) * (n / max(n - 1, 1))
        self.running_mean.update((1 - m) * self.running_mean + m * mean.reshape((-1,)).detach())
        self.running_var.update((1 - m) * self.running_var + m * unbiased.detach())
        self.num_batches_tracked.update(self.num_batches_tracked + 1)
        return out

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, sync={self.sync}"

    def onnx(self, g, x):
        """Inference (running statistics): ONNX ``BatchNormalization``."""
        return g.op("BatchNormalization", x, g.param(self.weight), g.param(self.bias), g.param(self.running_mean),
                    g.param(self.running_var), epsilon=float(self.eps))

    count_macs = norm_macs
    BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


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
        _, centered, var = centered_variance(x, [axis])
        w = channel_view(self.weight, x.ndim, axis)
        b = channel_view(self.bias, x.ndim, axis)
        return centered / jt.sqrt(var + self.eps) * w + b

    def onnx(self, g, x):
        """Over the last axis (tokens) or axis 1 of an NCHW map."""
        if self.axis == -1:
            return affine_onnx(g, g.normalize(x, [-1], self.eps), self.weight, self.bias)
        if self.axis != 1:
            raise NotImplementedError("LayerNorm.onnx: axis -1 or 1 (NCHW)")
        return affine_onnx(g, g.normalize(x, [1], self.eps), self.weight, self.bias, [1, -1, 1, 1])

    count_macs = norm_macs


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
        _, centered, var = centered_variance(x.reshape((shape[0], self.num_groups, -1)), [2])
        out = (centered / jt.sqrt(var + self.eps)).reshape(shape)
        return out * channel_view(self.weight, x.ndim) + channel_view(self.bias, x.ndim)

    def onnx(self, g, x):
        """NCHW: statistics over (C/G, H, W) of each group, then the per-channel affine."""
        grouped = g.reshape(x, [0, self.num_groups, -1])
        out = g.reshape(g.normalize(grouped, [2], self.eps), g.shape(x))
        return affine_onnx(g, out, self.weight, self.bias, [1, -1, 1, 1])

    count_macs = norm_macs


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
