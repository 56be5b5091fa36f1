"""Matrix products written as 2-D matmuls: on the CPU Jittor hands only those to oneDNN."""
import jittor as jt
from jittor import nn

from ..kernels import bmm_cpu
from .counting import numel


# MACs per batch entry up to which one threaded kernel (kernels.bmm_cpu) beats a loop of 2-D oneDNN
# products: the loop costs ~4 framework ops per entry, the kernel is slower per MAC than oneDNN
_SMALL_BMM = 1 << 18


def bmm(a, b, trans_a=False, trans_b=False):
    """Batched matmul ``op(a) @ op(b)`` of ``(B, ., .)`` operands, ``op`` transposing the last two axes
    where asked (no transposed copy is made for the kernel and for ``trans_b`` alone).

    On CPU Jittor hands only 2-D matmuls to oneDNN (its 3-D ``nn.bmm`` is a plain
    broadcast-multiply-sum, 25-40x slower): small products (the Ham head's NMF) run as one kernel,
    big ones loop over the batch with oneDNN.
    """
    if jt.flags.use_cuda or a.dtype != "float32" or b.dtype != "float32":
        if trans_a:
            a = a.transpose(0, 2, 1)
        if trans_b:
            return nn.bmm_transpose(a, b)
        return nn.bmm(a, b)
    n, m = (a.shape[2], a.shape[1]) if trans_a else (a.shape[1], a.shape[2])
    k = b.shape[1] if trans_b else b.shape[2]
    if n * m * k <= _SMALL_BMM:
        return bmm_cpu(a, b, trans_a, trans_b)
    if trans_a:
        a = a.transpose(0, 2, 1)
    product = nn.matmul_transpose if trans_b else jt.matmul
    if a.shape[0] == 1:
        return product(a[0], b[0]).unsqueeze(0)
    return jt.stack([product(a[i], b[i]) for i in range(a.shape[0])])


def bmm_nt(a, b):
    """Batched ``(B, n, m) @ (B, k, m)^T`` without a transposed copy of ``b`` (oneDNN multiplies by the
    transposed operand itself)."""
    return bmm(a, b, trans_b=True)


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

    def onnx(self, g, x):
        """``MatMul`` by the transposed weight (a constant) on tokens of any rank, then the bias."""
        y = g.op("MatMul", x, g.const(self.weight.numpy().T, "weight_t"))
        return g.op("Add", y, g.param(self.bias)) if self.bias is not None else y

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"

    count_macs = linear_macs
