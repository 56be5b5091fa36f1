"""Cross-entropy with mmseg semantics, and pixel accuracy.

Official source: mmseg 0.24.1 ``mmseg/models/losses/cross_entropy_loss.py``
and ``accuracy.py``.  The default ``avg_non_ignore=False`` divides the summed
loss of valid pixels by ALL pixels (ignored ones count in the denominator),
which is what the SegNeXt checkpoints were trained with.
"""
import jittor as jt
from jittor import nn

from ..registry import MODELS
from .kernels import argmax, pixel_cross_entropy_cpu


def cross_entropy(logits, label, ignore_index=255, avg_non_ignore=False, class_weight=None):
    """Pixel-wise softmax cross-entropy, mean reduction.

    Args:
        logits: (B, K, H, W) float.
        label: (B, H, W) integer class ids; ``ignore_index`` pixels contribute 0.
        avg_non_ignore: divide by the number of valid pixels instead of all pixels.
        class_weight: optional list of K weights (the per-pixel loss is multiplied
            by the weight of its class; the mean is still over pixels, as in mmseg).
    """
    valid = label != ignore_index
    safe = jt.where(valid, label, jt.zeros_like(label)).cast("int32")
    if not jt.flags.use_cuda and logits.dtype == "float32":
        # one kernel that keeps no log-probabilities (a tensor as large as the logits) for the backward
        per_pixel = pixel_cross_entropy_cpu(logits, label, ignore_index)
    else:
        logp = nn.log_softmax(logits, dim=1)
        picked = jt.gather(logp, 1, safe.unsqueeze(1)).squeeze(1)
        per_pixel = -picked * valid.cast(logits.dtype)
    if class_weight is not None:
        w = jt.array(class_weight).cast(logits.dtype)
        per_pixel = per_pixel * w[safe]
    if avg_non_ignore:
        return per_pixel.sum() / jt.maximum(valid.sum().cast(logits.dtype), 1.0)
    return per_pixel.mean()


def accuracy(logits, label, ignore_index=255):
    """Top-1 pixel accuracy in percent over non-ignored pixels (no gradient)."""
    with jt.no_grad():
        pred = argmax(logits, dim=1)
        valid = label != ignore_index
        correct = ((pred == label) & valid).sum().cast("float32")
        return correct * 100.0 / jt.maximum(valid.sum().cast("float32"), 1.0)


@MODELS.register()
class CrossEntropyLoss(nn.Module):
    """mmseg ``CrossEntropyLoss`` (softmax only).

    Args:
        use_sigmoid / use_mask: must be False.
        class_weight: optional per-class weights.
        loss_weight: multiplier of the loss.
        avg_non_ignore: False (mmseg 0.24 default) = mean over all pixels.
        loss_name: key in the loss dict (``'loss_ce'``).
    """

    def __init__(self, use_sigmoid=False, use_mask=False, reduction="mean", class_weight=None, loss_weight=1.0,
                 avg_non_ignore=False, loss_name="loss_ce"):
        if use_sigmoid or use_mask:
            raise NotImplementedError("CrossEntropyLoss: only the softmax form (use_sigmoid=False) is implemented")
        if reduction != "mean":
            raise NotImplementedError("CrossEntropyLoss: only reduction='mean' is implemented")
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self.avg_non_ignore = avg_non_ignore
        self.loss_name = loss_name

    def execute(self, logits, label, ignore_index=255):
        return self.loss_weight * cross_entropy(logits, label, ignore_index, self.avg_non_ignore, self.class_weight)
