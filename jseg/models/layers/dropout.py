"""Dropout, Dropout2d and DropPath (stochastic depth), in train mode only."""
import jittor as jt
from jittor import nn

from .counting import no_own_macs


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

    def onnx(self, g, x):
        return x   # inference: the identity

    count_macs = no_own_macs


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

    def onnx(self, g, x):
        return x   # inference: the identity

    count_macs = no_own_macs


def Dropout2d(p=0.5):
    return Dropout(p, channelwise=True)
