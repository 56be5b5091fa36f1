"""Matrix products written as 2-D matmuls: on the CPU Jittor hands only those to oneDNN."""
import jittor as jt
from jittor import nn

from .counting import numel


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


def bmm_nt(a, b):
    """Batched ``(B, n, m) @ (B, k, m)^T``: oneDNN multiplies by the transposed operand itself, so no
    transposed copy of ``b`` is made (on the CPU, one 2-D product per batch entry)."""
    if jt.flags.use_cuda:
        return nn.bmm_transpose(a, b)
    if a.shape[0] == 1:
        return nn.matmul_transpose(a[0], b[0]).unsqueeze(0)
    return jt.stack([nn.matmul_transpose(a[i], b[i]) for i in range(a.shape[0])])


def linear_macs(self, convention, inputs, out):
    """torchprofile: ``numel(out) * in_features``; mmcv: ``numel(in) * out_features`` plus ``out_features``
    for a bias (mmcv's rule)."""
    if convention == "torchprofile":
        return numel(out) * self.weight.shape[1]
    return numel(inputs[0]) * out.shape[-1] + (out.shape[-1] if self.bias is not None else 0)


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

    count_macs = linear_macs
