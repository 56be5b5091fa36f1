"""Activations with PyTorch's definitions, and mmcv's ``act_cfg``."""
import math

import jittor as jt
from jittor import nn

from ..kernels import softmax_cpu
from .counting import no_own_macs, numel
from .precision import HALF, float32_region, to_float32


def softmax(x, dim=-1):
    """``F.softmax(x, dim)``; over the last axis of float32 on the CPU jseg's threaded kernel
    (forward and backward), else Jittor's."""
    if str(x.dtype) in HALF:  # mixed precision: softmax in float32, as the official code
        with float32_region():
            return softmax(to_float32(x), dim)
    if (dim == -1 or dim == x.ndim - 1) and not jt.flags.use_cuda and x.dtype == "float32":
        return softmax_cpu(x)
    return nn.softmax(x, dim=dim)


class GELU(nn.Module):
    """Exact (erf) GELU, PyTorch's ``nn.GELU()`` default."""

    def execute(self, x):
        return 0.5 * x * (1.0 + jt.erf(x * (1.0 / math.sqrt(2.0))))

    def onnx(self, g, x):
        erf = g.op("Erf", g.op("Mul", x, g.const(1.0 / math.sqrt(2.0))))
        return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", erf, g.const(1.0)))

    count_macs = no_own_macs   # neither torchprofile nor mmcv counts GELU


class ReLU(nn.Module):
    def execute(self, x):
        return jt.nn.relu(x)

    def onnx(self, g, x):
        return g.op("Relu", x)

    def count_macs(self, convention, inputs, out):
        return 0 if convention == "torchprofile" else numel(out)   # mmcv counts one per output


def build_activation(cfg):
    if cfg is None:
        return None
    kind = cfg.get("type")
    if kind == "ReLU":
        return ReLU()
    if kind == "GELU":
        return GELU()
    raise KeyError(f"unknown activation type {kind!r} in act_cfg; expected ReLU or GELU")
