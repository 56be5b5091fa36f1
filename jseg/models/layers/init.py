"""The weight initialisers of the official code (mmcv's ``normal_init``/``constant_init``, kaiming fan_out)."""
import math

import jittor as jt


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
