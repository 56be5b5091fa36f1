"""Convolutions: ``conv2d`` (``nn.Conv2d`` with normalised arguments; depth-wise ones run jseg's CPU
kernel) and mmcv's ``ConvModule``."""
import jittor as jt
from jittor import nn

from ..kernels import depthwise_conv2d_cpu
from .activation import build_activation
from .counting import no_own_macs, numel
from .init import fan_out_normal_init_
from .norm import build_norm_layer


def conv_macs(self, convention, inputs, out):
    """``numel(out) * in/groups * kh * kw``, plus ``numel(out)`` for a bias except under torchprofile."""
    kh, kw = self.weight.shape[2:]
    macs = numel(out) * (self.in_channels // self.groups) * kh * kw
    if convention != "torchprofile" and self.bias is not None:
        macs += numel(out)
    return macs


def conv_onnx(self, g, x):
    """``nn.Conv2d`` (and the depth-wise one) as ONNX ``Conv``: the same padding on both sides."""
    ph, pw = self.padding
    args = [x, g.param(self.weight)] + ([g.param(self.bias)] if self.bias is not None else [])
    return g.op("Conv", *args, kernel_shape=list(self.weight.shape[2:]), strides=list(self.stride),
                pads=[ph, pw, ph, pw], dilations=list(self.dilation), group=self.groups)


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``groups == in_channels == out_channels`` (same parameters and keys); float32
    on the CPU runs ``kernels.depthwise_conv2d_cpu`` (about 2x faster, forward and backward, than oneDNN through Jittor, which
    reorders every tensor to a blocked layout and back), CUDA Jittor's own depth-wise kernel."""

    def execute(self, x):
        if jt.flags.use_cuda or x.dtype != "float32" or tuple(self.dilation) != (1, 1):
            return super().execute(x)
        return depthwise_conv2d_cpu(x, self.weight, self.bias, self.stride, self.padding)

    count_macs = conv_macs
    onnx = conv_onnx


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
    """``nn.Conv2d`` with tuple arguments normalised (Jittor accepts ints or tuples); a depth-wise
    conv is a :class:`DepthwiseConv2d`."""
    def pair(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (v, v)
    cls = DepthwiseConv2d if groups > 1 and groups == in_channels == out_channels else nn.Conv2d
    return cls(in_channels, out_channels, pair(kernel_size), stride=pair(stride),
               padding=pair(padding), groups=groups, bias=bias)


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

    def onnx(self, g, x):
        x = g.call(self.conv, x)
        if self.norm_name is not None:
            x = g.call(getattr(self, self.norm_name), x)
        return g.call(self.activate, x) if self.activate is not None else x

    count_macs = no_own_macs   # conv, norm and activation count themselves
