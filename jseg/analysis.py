"""Model size and cost: parameters and operation counts, counted the way each paper counts.

Two counting conventions are reproduced (each paper's ``tools/get_flops.py``):

``torchprofile`` (SegNeXt: ``profile_macs(model.forward_dummy, img) / 1e9``, printed as "GFLOPs",
really MACs).  torchprofile traces the PyTorch graph and counts, per aten op:

* convolution: ``prod(out) * in_channels/groups * kh * kw`` (bias not counted);
* ``bmm`` / ``matmul`` / ``linear``: ``batch * n * m * p``;
* elementwise ``mul``: ``prod(out)`` (``add``/``div``/activations/softmax: 0);
* batch/layer/group norm with affine parameters: ``prod(out)``;
* ``upsample_bilinear2d``: ``4 * prod(out)``, also for a same-size resize, which
  mmseg's ``resize`` still calls.

``nvlabs`` (SegFormer: mmcv's ``get_model_complexity_info`` module counter plus NVlabs'
``sra_flops`` term for the attention matmuls).  mmcv counts modules only:

* Conv2d: ``prod(out) * in/groups * kh * kw`` plus ``prod(out)`` for a bias;
* Linear: ``prod(in) * out_features`` plus ``out_features`` for a bias (mmcv's rule);
* BN/GN/LN: ``numel(in)``, doubled when affine (SyncBN: not counted); ReLU: ``numel(out)``;
* GELU, softmax, matmuls, elementwise ops and ``F.interpolate`` are not counted;
* NVlabs adds ``2 * N * N_reduced * C`` per efficient-attention layer.

The rules are applied per module through forward hooks, for the ops of the
*official* forward (jseg's implementation may compute the same values with
other ops).  The forward is only traced: Jittor builds the graph lazily and
nothing is executed, so counting a 2048x1024 model takes a second.
"""
import math

import jittor as jt
from jittor import nn

from .models.backbones import efficientformer_v2 as ef2
from .models.backbones import mit
from .models.backbones.mscan import (MSCAN, AttentionModule, Block, DWConv, Mlp, OverlapPatchEmbed,
                                     SpatialAttention, StemConv)
from .models.heads import cgr_head as cgr
from .models.heads.ham_head import NMF2D, Hamburger, LightHamHead
from .models.heads.segformer_head import MLP, SegFormerHead
from .models.layers import (BatchNorm2d, ConvModule, Dropout, DropPath, GELU, GroupNorm, LayerNorm, Linear,
                            ReLU)
from .models.segmentor import EncoderDecoder

# non-parameter state: BN statistics, and EfficientFormerV2's bias index tables and unused ImageNet bias buffers
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked", "attention_biases", "attention_bias_idxs",
                "attention_bias_idxs_seg")


def count_params(module):
    """Parameters of ``module`` (state-dict entries except buffers), as PyTorch's ``sum(p.numel())``."""
    return sum(int(math.prod(v.shape)) for k, v in module.state_dict().items()
               if k.rsplit(".", 1)[-1] not in BUFFER_NAMES)


def _numel(v):
    return int(math.prod(v.shape))


# ----------------------------------------------------------------------------- torchprofile rules
# rule(module, inputs, output) -> count of the module's own ops (children are counted by their own hooks)

def _conv(m, inputs, out):
    kh, kw = m.weight.shape[2:]
    return _numel(out) * (m.in_channels // m.groups) * kh * kw


def _linear(m, inputs, out):
    return _numel(out) * m.weight.shape[1]


def _affine_norm(m, inputs, out):
    return _numel(out) if getattr(m, "weight", None) is not None else 0


def _msca(m, inputs, out):
    return _numel(out)  # attn * u


def _mscan_block(m, inputs, out):
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


def _mit_attention_tp(m, inputs, out):
    x, H, W = inputs
    B, N, C = x.shape
    Nr = (H // m.sr_ratio) * (W // m.sr_ratio) if m.sr_ratio > 1 else N
    # q k^T, * scale, attn v (the Linear/conv/norm children count themselves)
    return 2 * B * N * Nr * C + B * m.num_heads * N * Nr


def _segformer_head_tp(m, inputs, out):
    c1 = inputs[0][m.in_index[0]]
    H, W = c1.shape[2:]
    return 3 * 4 * c1.shape[0] * m.embed_dim * H * W   # _c4, _c3, _c2 resized to the c1 size


def _ef2_attention_tp(m, inputs, out):
    B, C, H, W = inputs[0].shape
    if m.stride is not None:
        H, W = H // 2, W // 2
    N, h = H * W, m.num_heads
    macs = B * h * N * N * (m.key_dim + 1 + m.d)   # q k, * scale, attn v (bicubic bias: not counted)
    if m.stride is not None:
        macs += 4 * _numel(out)                     # nn.Upsample bilinear (out has the upsampled size)
    return macs


def _ef2_down_attention_tp(m, inputs, out):
    B, C, H, W = inputs[0].shape
    Nq, N, h = (H // 2) * (W // 2), H * W, m.num_heads
    return B * h * Nq * N * (m.key_dim + 1 + m.d)


def _lgquery_tp(m, inputs, out):
    return _numel(out)   # AvgPool2d(1, 2): one per output (torchprofile avg_pool)


def _layer_scales(n):
    return lambda m, inputs, out: n * _numel(out)


def _rca_tp(m, inputs, out):
    B, C, H, W = inputs[0].shape
    return B * C * (H + W) + _numel(out)   # two adaptive pools, att * loc


def _rcm_tp(m, inputs, out):
    return _numel(out)   # * gamma


def _fuse_block_tp(m, inputs, out):
    return 4 * _numel(out) + _numel(out)   # bilinear up of the gate (to x_l's size), fuse1 * gate


def _cgr_head_tp(m, inputs, out):
    xx = [inputs[0][i] for i in m.in_index]
    B = xx[0].shape[0]
    H32, W32 = xx[-1].shape[2:]
    pooled = sum(f.shape[1] for f in xx) * ((H32 - 1) // 2 + 1) * ((W32 - 1) // 2 + 1) * B
    ups = sum(4 * B * m.channels * f.shape[2] * f.shape[3] for f in xx[:-1])   # results[-1] resized to xx[i]
    K, (h8, w8) = m.num_classes, xx[0].shape[2:]
    gather = B * K * h8 * w8 * m.channels + B * K * m.channels   # probs @ x^T, DPG context y @ mask
    return pooled + ups + gather + B * m.channels * h8 * w8      # x * sigmoid(gate)


_ZERO = [  # own ops are adds, activations, dropout or reshapes only
    nn.Sequential, nn.ModuleList, nn.ReLU, nn.GELU, nn.Dropout, GELU, ReLU, Dropout, DropPath, ConvModule,
    StemConv, OverlapPatchEmbed, SpatialAttention, DWConv, Mlp, MSCAN, Hamburger, EncoderDecoder,
    mit.OverlapPatchEmbed, mit.DWConv, mit.Mlp, mit.Block, mit.MixVisionTransformer, MLP,
    nn.Sigmoid, ef2.Mlp, ef2.Embedding, ef2.EfficientFormerV2, cgr.ConvMlp, cgr.NextLayer, cgr.DPGHead,
]

TORCHPROFILE = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    Linear: _linear,
    BatchNorm2d: _affine_norm,
    LayerNorm: _affine_norm,
    GroupNorm: _affine_norm,
    AttentionModule: _msca,
    Block: _mscan_block,
    NMF2D: _nmf,
    LightHamHead: _light_ham_head,
    mit.Attention: _mit_attention_tp,
    SegFormerHead: _segformer_head_tp,
    ef2.Attention4D: _ef2_attention_tp,
    ef2.Attention4DDownsample: _ef2_down_attention_tp,
    ef2.LGQuery: _lgquery_tp,
    ef2.FFN: _layer_scales(1),
    ef2.AttnFFN: _layer_scales(2),
    cgr.RCA: _rca_tp,
    cgr.RCM: _rcm_tp,
    cgr.FuseBlockMulti: _fuse_block_tp,
    cgr.ChannelLayerNorm: _affine_norm,
    cgr.CGRSeg: _cgr_head_tp,
    **{cls: None for cls in _ZERO},
}


# ----------------------------------------------------------------------------- mmcv / NVlabs rules

def _mmcv_conv(m, inputs, out):
    return _conv(m, inputs, out) + (_numel(out) if m.bias is not None else 0)


def _mmcv_linear(m, inputs, out):
    return _numel(inputs[0]) * out.shape[-1] + (out.shape[-1] if m.bias is not None else 0)


def _mmcv_norm(m, inputs, out):
    if getattr(m, "sync", False):
        return 0   # nn.SyncBatchNorm is not in mmcv's counter mapping
    return _numel(inputs[0]) * (2 if getattr(m, "weight", None) is not None else 1)


def _mmcv_relu(m, inputs, out):
    return _numel(out)


def _nv_sra(m, inputs, out):
    """NVlabs ``sra_flops(h, w, r, dim) = 2 * h * w * (h // r) * (w // r) * dim`` per attention layer."""
    x, H, W = inputs
    r = m.sr_ratio
    return 2 * x.shape[0] * H * W * (H // r) * (W // r) * m.dim


MMCV = {cls: None for cls in TORCHPROFILE}
MMCV.update({nn.Conv2d: _mmcv_conv, nn.Linear: _mmcv_linear, Linear: _mmcv_linear, BatchNorm2d: _mmcv_norm,
             LayerNorm: _mmcv_norm, GroupNorm: _mmcv_norm, ReLU: _mmcv_relu, nn.ReLU: _mmcv_relu})
def _numel_in(m, inputs, out):
    return _numel(inputs[0])


def _numel_out(m, inputs, out):
    return _numel(out)


def _ef2_attention_mmcv(m, inputs, out):
    return _numel(out) if m.stride is not None else 0   # nn.Upsample: one per output


def _rca_mmcv(m, inputs, out):
    return 2 * _numel(inputs[0])   # nn.AdaptiveAvgPool2d (None,1) and (1,None): one per input element each


def _fuse_block_mmcv(m, inputs, out):
    x_h = inputs[1]
    return x_h.shape[0] * m.fuse2.conv.out_channels * x_h.shape[2] * x_h.shape[3]   # h_sigmoid's nn.ReLU6


MMCV.update({ef2.Attention4D: _ef2_attention_mmcv, ef2.LGQuery: _numel_in, cgr.RCA: _rca_mmcv,
             cgr.FuseBlockMulti: _fuse_block_mmcv, cgr.ChannelLayerNorm: _mmcv_norm})
NVLABS = {**MMCV, mit.Attention: _nv_sra}

RULESETS = {"torchprofile": TORCHPROFILE, "mmcv": MMCV, "nvlabs": NVLABS}
# what each paper's get_flops counts; the final logits resize costs 4/output only in torchprofile
FINAL_RESIZE = {"torchprofile": 4, "mmcv": 0, "nvlabs": 0}
DESCRIPTION = {"torchprofile": "GMACs (torchprofile, SegNeXt's 'GFLOPs')",
               "mmcv": "GFLOPs (mmcv module counter, CGRSeg's)",
               "nvlabs": "GFLOPs (mmcv module counter + NVlabs attention term, SegFormer's)"}


def paper_ruleset(model):
    """The convention the model's paper used: SegFormer (MiT) -> 'nvlabs', CGRSeg (EfficientFormerV2) -> 'mmcv'
    (mmseg's stock get_flops), SegNeXt -> 'torchprofile'."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, mit.MixVisionTransformer):
        return "nvlabs"
    if isinstance(backbone, ef2.EfficientFormerV2):
        return "mmcv"
    return "torchprofile"


class MissingMacRule(KeyError):
    pass


def _rule_for(module, rules):
    """The rule of the module's exact class (a subclass may add ops, so it needs its own entry)."""
    cls = type(module)
    if cls not in rules:
        raise MissingMacRule(f"no counting rule for {cls.__module__}.{cls.__qualname__}: add one to "
                             f"jseg.analysis.TORCHPROFILE (None if its own ops are adds/activations only)")
    return rules[cls]


def count_macs(model, shape, batch=1, ruleset="torchprofile"):
    """Operations of ``model.encode_decode`` (the official ``forward_dummy``) in eval mode on a
    ``(batch, 3, H, W)`` input, under ``ruleset`` (``'torchprofile'``, ``'mmcv'``, ``'nvlabs'``).

    Returns ``{"total": int, "backbone": int, "decode_head": int, "resize": int}``, where ``resize``
    is the final bilinear resize of the logits to the input size.  The model is put back into its
    previous train/eval mode.
    """
    if ruleset not in RULESETS:
        raise ValueError(f"unknown ruleset {ruleset!r}; expected one of {sorted(RULESETS)}")
    rules = RULESETS[ruleset]
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
            rule = _rule_for(m, rules)
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
            counts["resize"] = FINAL_RESIZE[ruleset] * _numel(logits)
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
