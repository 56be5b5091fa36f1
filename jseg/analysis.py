"""Model size and cost: parameters and multiply-accumulates (MACs).

The SegNeXt paper and README report "GFLOPs" that are really GMACs from
torchprofile (``OFF:tools/get_flops.py``: ``profile_macs(model.forward_dummy, img) / 1e9``),
input 512x512 for ADE20K and 2048x1024 for Cityscapes.  torchprofile traces the
PyTorch graph and counts, per aten op:

* convolution: ``prod(out) * in_channels/groups * kh * kw`` (bias not counted);
* ``bmm`` / ``matmul``: ``b * n * m * p``; linear: ``prod(out) * in_features``;
* elementwise ``mul``: ``prod(out)`` (``add``/``div``/activations/softmax: 0);
* batch/layer/group norm with affine parameters: ``prod(out)``;
* ``upsample_bilinear2d``: ``4 * prod(out)``, also for a same-size resize, which
  mmseg's ``resize`` still calls.

Here the same rules are applied per module through forward hooks, for the ops
of the *official* forward (jseg's own implementation may compute the same
values with other ops, e.g. a per-item matmul loop).  The forward is only
traced: Jittor builds the graph lazily and nothing is executed, so counting a
2048x1024 SegNeXt-L takes a second and no memory.
"""
import math

import jittor as jt
from jittor import nn

from .models.backbones.mscan import (MSCAN, AttentionModule, Block, DWConv, Mlp, OverlapPatchEmbed,
                                     SpatialAttention, StemConv)
from .models.heads.ham_head import NMF2D, Hamburger, LightHamHead
from .models.layers import BatchNorm2d, ConvModule, Dropout, DropPath, GELU, GroupNorm, LayerNorm, ReLU
from .models.segmentor import EncoderDecoder

BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")


def count_params(module):
    """Parameters of ``module`` (state-dict entries except BN running statistics), as ``sum(p.numel())``."""
    return sum(int(math.prod(v.shape)) for k, v in module.state_dict().items()
               if k.rsplit(".", 1)[-1] not in BUFFER_NAMES)


# ----------------------------------------------------------------------------- per-module MAC rules
# rule(module, inputs, output) -> MACs of the module's own ops (children are counted by their own hooks)

def _numel(v):
    return int(math.prod(v.shape))


def _conv(m, inputs, out):
    kh, kw = m.weight.shape[2:]
    return _numel(out) * (m.in_channels // m.groups) * kh * kw


def _linear(m, inputs, out):
    return _numel(out) * m.weight.shape[1]


def _affine_norm(m, inputs, out):
    return _numel(out) if getattr(m, "weight", None) is not None else 0


def _msca(m, inputs, out):
    return _numel(out)  # attn * u


def _block(m, inputs, out):
    return 2 * _numel(out)  # layer_scale_1 * attn(...), layer_scale_2 * mlp(...)


def nmf_macs(BS, D, N, R, steps):
    """MACs of the official NMF2D forward on (BS, D, N) with R bases and ``steps`` updates."""
    xt_b = BS * N * D * R                     # x^T @ bases
    coef_upd = xt_b + BS * (R * D * R + N * R * R) + BS * N * R   # numerator, coef @ (B^T B), coef *
    bases_upd = BS * D * N * R + BS * (R * N * R + D * R * R) + BS * D * R
    init = xt_b + BS * N * R                 # x^T bases, inv_t *
    reconstruct = BS * D * R * N             # bases @ coef^T
    return init + steps * (coef_upd + bases_upd) + coef_upd + reconstruct


def _nmf(m, inputs, out):
    B, C, H, W = inputs[0].shape
    steps = m.train_steps if m.is_training() else m.eval_steps
    return nmf_macs(B * m.S, C // m.S, H * W, m.R, steps)


def _light_ham_head(m, inputs, out):
    feats = [inputs[0][i] for i in m.in_index]
    H, W = feats[0].shape[2:]
    # every selected level is bilinearly resized to stage-2 size (the first one to its own size)
    return sum(4 * f.shape[0] * f.shape[1] * H * W for f in feats)


MAC_RULES = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    BatchNorm2d: _affine_norm,
    LayerNorm: _affine_norm,
    GroupNorm: _affine_norm,
    AttentionModule: _msca,
    Block: _block,
    NMF2D: _nmf,
    LightHamHead: _light_ham_head,
    # own ops are adds, activations, dropout or reshapes only (0 MACs in torchprofile)
    nn.Sequential: None, nn.ModuleList: None, nn.ReLU: None, nn.GELU: None, nn.Dropout: None,
    GELU: None, ReLU: None, Dropout: None, DropPath: None, ConvModule: None,
    StemConv: None, OverlapPatchEmbed: None, SpatialAttention: None, DWConv: None, Mlp: None, MSCAN: None,
    Hamburger: None, EncoderDecoder: None,
}


class MissingMacRule(KeyError):
    pass


def _rule_for(module):
    """The rule of the module's exact class (a subclass may add ops, so it needs its own entry)."""
    cls = type(module)
    if cls not in MAC_RULES:
        raise MissingMacRule(f"no MAC rule for {cls.__module__}.{cls.__qualname__}: add one to "
                             f"jseg.analysis.MAC_RULES (None if its own ops are adds/activations only)")
    return MAC_RULES[cls]


def count_macs(model, shape, batch=1):
    """MACs of ``model.encode_decode`` (the official ``forward_dummy``) in eval mode on a
    ``(batch, 3, H, W)`` input, counted like torchprofile.

    Returns ``{"total": int, "backbone": int, "decode_head": int, "resize": int}``, where ``resize``
    is the final bilinear resize of the logits to the input size.  The model is put back into its
    previous train/eval mode.
    """
    H, W = shape
    counts = {}
    owner = {}
    for name, m in model.named_modules():
        if name:
            owner[id(m)] = name.split(".", 1)[0]
    hooked = []

    missing = []

    def hook(m, inputs, out):
        try:
            rule = _rule_for(m)
        except MissingMacRule as e:
            missing.append(str(e))
            return
        if rule is not None:
            part = owner.get(id(m), "")
            counts[part] = counts.get(part, 0) + rule(m, inputs, out)

    for m in model.modules():
        m.register_forward_hook(hook)
        hooked.append(m)
    was_training = model.is_training()
    model.eval()
    try:
        with jt.no_grad():
            logits = model.encode_decode(jt.zeros((batch, 3, H, W), "float32"))
            counts["resize"] = 4 * _numel(logits)
            del logits
    finally:
        for m in hooked:
            m.remove_forward_hook()
        if was_training:
            model.train()
        jt.clean_graph()
    if missing:
        raise MissingMacRule(sorted(set(missing))[0])
    counts["total"] = sum(counts.values())
    return counts
