"""MSCAN, the convolutional encoder of SegNeXt.

Official source: ``Visual-Attention-Network/SegNeXt`` @ c87bcae,
``mmseg/models/backbones/mscan.py`` (mmseg 0.24.1).  Paper: Guo et al.,
"SegNeXt: Rethinking Convolutional Attention Design for Semantic
Segmentation", NeurIPS 2022, Sec. 3.1, Eq. (1)-(2), Table 2.

Layout note: the official blocks take ``(B, N, C)`` tokens and reshape to
NCHW inside every block.  Here feature maps stay NCHW through a whole stage
(the per-stage LayerNorm normalises over the channel axis), which is the same
computation without the reshapes.  Attribute names equal the official
state-dict names (``block1.0.attn.spatial_gating_unit.conv0_1.weight`` ...).
"""
import re

import numpy as np
import jittor as jt
from jittor import nn

from ...checkpoint import CheckpointRules
from ...registry import MODELS
from .base import PretrainedBackbone
from ..layers import (GELU, DropPath, Dropout, LayerNorm, BatchNorm2d, GroupNorm, build_norm_layer,
                      constant_init_, conv2d, fan_out_normal_init_, no_own_macs, numel)

_DEFAULT_NORM = dict(type="SyncBN", requires_grad=True)


class StemConv(nn.Module):
    """Stage-1 patch embedding: two 3x3 stride-2 convs with BN (GELU between); stride 4 in total."""

    def __init__(self, in_channels, out_channels, norm_cfg=_DEFAULT_NORM):
        self.proj = nn.Sequential(
            conv2d(in_channels, out_channels // 2, 3, stride=2, padding=1),
            build_norm_layer(norm_cfg, out_channels // 2)[1],
            GELU(),
            conv2d(out_channels // 2, out_channels, 3, stride=2, padding=1),
            build_norm_layer(norm_cfg, out_channels)[1],
        )

    def execute(self, x):
        return self.proj(x)

    def onnx(self, g, x):
        return g.call(self.proj, x)


class OverlapPatchEmbed(nn.Module):
    """Stages 2-4 patch embedding: 3x3 stride-2 conv (padding ``patch_size // 2``) then BN."""

    def __init__(self, patch_size=3, stride=2, in_chans=3, embed_dim=768, norm_cfg=_DEFAULT_NORM):
        self.proj = conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=patch_size // 2)
        self.norm = build_norm_layer(norm_cfg, embed_dim)[1]

    def execute(self, x):
        return self.norm(self.proj(x))

    def onnx(self, g, x):
        return g.call(self.norm, g.call(self.proj, x))


class AttentionModule(nn.Module):
    """MSCA, the multi-scale convolutional attention (paper Eq. 1-2).

    ``Att = Conv1x1(DW5x5(F) + sum_i DW_{k_i x 1}(DW_{1 x k_i}(DW5x5(F))))``, k = 7, 11, 21;
    ``Out = Att * F``.  All convs are depth-wise with bias except the 1x1 ``conv3``.
    """

    def __init__(self, dim):
        self.conv0 = conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv0_1 = conv2d(dim, dim, (1, 7), padding=(0, 3), groups=dim)
        self.conv0_2 = conv2d(dim, dim, (7, 1), padding=(3, 0), groups=dim)
        self.conv1_1 = conv2d(dim, dim, (1, 11), padding=(0, 5), groups=dim)
        self.conv1_2 = conv2d(dim, dim, (11, 1), padding=(5, 0), groups=dim)
        self.conv2_1 = conv2d(dim, dim, (1, 21), padding=(0, 10), groups=dim)
        self.conv2_2 = conv2d(dim, dim, (21, 1), padding=(10, 0), groups=dim)
        self.conv3 = conv2d(dim, dim, 1)

    def execute(self, x):
        attn = self.conv0(x)
        attn_0 = self.conv0_2(self.conv0_1(attn))
        attn_1 = self.conv1_2(self.conv1_1(attn))
        attn_2 = self.conv2_2(self.conv2_1(attn))
        attn = self.conv3(attn + attn_0 + attn_1 + attn_2)
        return attn * x

    def onnx(self, g, x):
        attn = g.call(self.conv0, x)
        branches = [g.call(second, g.call(first, attn)) for first, second in
                    ((self.conv0_1, self.conv0_2), (self.conv1_1, self.conv1_2), (self.conv2_1, self.conv2_2))]
        for b in branches:
            attn = g.op("Add", attn, b)
        return g.op("Mul", g.call(self.conv3, attn), x)


class SpatialAttention(nn.Module):
    """``proj_1 -> GELU -> MSCA -> proj_2``, plus a shortcut from its (already normalised) input."""

    def __init__(self, d_model):
        self.proj_1 = conv2d(d_model, d_model, 1)
        self.activation = GELU()
        self.spatial_gating_unit = AttentionModule(d_model)
        self.proj_2 = conv2d(d_model, d_model, 1)

    def execute(self, x):
        shortcut = x
        x = self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))
        return x + shortcut

    def onnx(self, g, x):
        y = g.call(self.proj_1, x)
        for m in (self.activation, self.spatial_gating_unit, self.proj_2):
            y = g.call(m, y)
        return g.op("Add", y, x)


class DWConv(nn.Module):
    """3x3 depth-wise conv; a wrapper only so the key reads ``mlp.dwconv.dwconv.weight`` as officially."""

    def __init__(self, dim):
        self.dwconv = conv2d(dim, dim, 3, padding=1, groups=dim)

    def execute(self, x):
        return self.dwconv(x)

    def onnx(self, g, x):
        return g.call(self.dwconv, x)


class Mlp(nn.Module):
    """Conv feed-forward: ``fc1 (1x1) -> DW3x3 -> GELU -> drop -> fc2 (1x1) -> drop``."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        self.fc1 = conv2d(in_features, hidden_features, 1)
        self.dwconv = DWConv(hidden_features)
        self.act = GELU()
        self.fc2 = conv2d(hidden_features, in_features, 1)
        self.drop = Dropout(drop)

    def execute(self, x):
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))

    def onnx(self, g, x):
        for m in (self.fc1, self.dwconv, self.act, self.drop, self.fc2, self.drop):
            x = g.call(m, x)
        return x


class Block(nn.Module):
    """MSCAN block (NCHW in and out)::

        x = x + drop_path(layer_scale_1 * attn(norm1(x)))
        x = x + drop_path(layer_scale_2 * mlp(norm2(x)))

    ``norm1``/``norm2`` are BatchNorm (paper Sec. 3.1), layer scales start at 1e-2.
    """

    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0, norm_cfg=_DEFAULT_NORM):
        self.layer_scale_1 = jt.full((dim,), 1e-2, "float32")
        self.layer_scale_2 = jt.full((dim,), 1e-2, "float32")
        self.norm1 = build_norm_layer(norm_cfg, dim)[1]
        self.attn = SpatialAttention(dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = build_norm_layer(norm_cfg, dim)[1]
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def execute(self, x):
        ls1 = self.layer_scale_1.reshape((1, -1, 1, 1))
        ls2 = self.layer_scale_2.reshape((1, -1, 1, 1))
        x = x + self.drop_path(ls1 * self.attn(self.norm1(x)))
        x = x + self.drop_path(ls2 * self.mlp(self.norm2(x)))
        return x

    def onnx(self, g, x):
        for scale, norm, branch in ((self.layer_scale_1, self.norm1, self.attn),
                                    (self.layer_scale_2, self.norm2, self.mlp)):
            y = g.op("Mul", g.reshape(g.param(scale), [1, -1, 1, 1]), g.call(branch, g.call(norm, x)))
            x = g.op("Add", x, g.call(self.drop_path, y))
        return x


@MODELS.register()
class MSCAN(PretrainedBackbone):
    """Multi-Scale Convolutional Attention Network (4 stages, strides 4/8/16/32).

    Args:
        in_chans: input channels.
        embed_dims: channels per stage (T: [32,64,160,256]; S/B/L: [64,128,320,512]).
        mlp_ratios: MLP expansion per stage ([8,8,4,4] in all variants).
        drop_rate: MLP dropout (0 in all official configs).
        drop_path_rate: stochastic depth, linearly increased over all blocks.
        depths: blocks per stage (T [3,3,5,2], S [2,2,4,2], B [3,3,12,3], L [3,5,27,3]).
        num_stages: 4.
        norm_cfg: norm of blocks and patch embeddings (official: SyncBN; ``BN`` for per-process BN).
        pretrained: optional path of an ImageNet MSCAN or segmentor checkpoint, loaded by ``init_weights``.
    Returns (execute): list of the four stage outputs, NCHW.
    """

    def __init__(self, in_chans=3, embed_dims=(64, 128, 256, 512), mlp_ratios=(4, 4, 4, 4), drop_rate=0.0,
                 drop_path_rate=0.0, depths=(3, 4, 6, 3), num_stages=4, norm_cfg=_DEFAULT_NORM,
                 pretrained=None, init_cfg=None):
        if not (len(embed_dims) == len(mlp_ratios) == len(depths) == num_stages):
            raise ValueError(f"MSCAN: embed_dims {embed_dims}, mlp_ratios {mlp_ratios} and depths {depths} "
                             f"must all have num_stages={num_stages} entries")
        self.depths = list(depths)
        self.num_stages = num_stages
        self.embed_dims = list(embed_dims)
        self._set_pretrained(pretrained, init_cfg)
        dpr = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        cur = 0
        for i in range(num_stages):
            if i == 0:
                patch_embed = StemConv(in_chans, embed_dims[0], norm_cfg=norm_cfg)
            else:
                patch_embed = OverlapPatchEmbed(patch_size=3, stride=2, in_chans=embed_dims[i - 1],
                                                embed_dim=embed_dims[i], norm_cfg=norm_cfg)
            block = nn.ModuleList([Block(embed_dims[i], mlp_ratios[i], drop_rate, dpr[cur + j], norm_cfg)
                                   for j in range(depths[i])])
            norm = LayerNorm(embed_dims[i], axis=1)
            cur += depths[i]
            setattr(self, f"patch_embed{i + 1}", patch_embed)
            setattr(self, f"block{i + 1}", block)
            setattr(self, f"norm{i + 1}", norm)
        self._init_random()

    def _init_random(self):
        """Official ``init_weights`` without a checkpoint: convs N(0, sqrt(2/fan_out)), bias 0; norms (1, 0)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out_normal_init_(m)
            elif isinstance(m, (LayerNorm, BatchNorm2d, GroupNorm)):
                constant_init_(m.weight, 1.0)
                constant_init_(m.bias, 0.0)

    def execute(self, x):
        outs = []
        for i in range(self.num_stages):
            x = getattr(self, f"patch_embed{i + 1}")(x)
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x)
            x = getattr(self, f"norm{i + 1}")(x)
            outs.append(x)
        return outs

    def onnx(self, g, x):
        outs = []
        for i in range(self.num_stages):
            x = g.call(getattr(self, f"patch_embed{i + 1}"), x)
            for blk in getattr(self, f"block{i + 1}"):
                x = g.call(blk, x)
            x = g.call(getattr(self, f"norm{i + 1}"), x)
            outs.append(x)
        return outs


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)
# SegNeXt's get_flops uses torchprofile; mmcv's module counter sees only the convs and norms here.

def _attention_macs(self, convention, inputs, out):
    return numel(out) if convention == "torchprofile" else 0   # attn * u


def _block_macs(self, convention, inputs, out):
    return 2 * numel(out) if convention == "torchprofile" else 0   # layer_scale_1 * attn(...), layer_scale_2 * mlp(...)


AttentionModule.count_macs = _attention_macs
Block.count_macs = _block_macs
for _cls in (StemConv, OverlapPatchEmbed, SpatialAttention, DWConv, Mlp, MSCAN):
    _cls.count_macs = no_own_macs
MSCAN.paper_macs_convention = "torchprofile"


# ----------------------------------------------------------------------------- checkpoints (jseg.checkpoint)
# mmseg 1.x inlines the DWConv wrapper: block{i}.{j}.mlp.dwconv.{w,b} <-> official ...mlp.dwconv.dwconv.{w,b}
_MM1_DWCONV = re.compile(r"^(.*block\d+\.\d+\.mlp\.dwconv)\.(weight|bias)$")


def _rename(state_dict, pattern, replacement):
    out, renamed = type(state_dict)(), []
    for k, v in state_dict.items():
        dst = pattern.sub(replacement, k)
        if dst != k:
            renamed.append((k, dst))
        out[dst] = v
    return out, renamed


def mmseg1_to_official(state_dict):
    """mmseg-1.x MSCAN keys -> official names: ``(state_dict, renamed)``; other keys unchanged."""
    return _rename(state_dict, _MM1_DWCONV, r"\1.dwconv.\2")


_OFFICIAL_DWCONV = re.compile(r"^(.*block\d+\.\d+\.mlp\.dwconv)\.dwconv\.(weight|bias)$")


def official_to_mmseg1(state_dict):
    """Official MSCAN keys -> mmseg 1.x's (the inverse of ``mmseg1_to_official``)."""
    return _rename(state_dict, _OFFICIAL_DWCONV, r"\1.\2")


MSCAN.checkpoint_rules = CheckpointRules(
    backbone_prefixes=("patch_embed", "block", "norm"),   # ImageNet MSCAN: {'state_dict': {unprefixed, head.*}}
    classifier_keys={"head.": "ImageNet classifier head"},
    convert=mmseg1_to_official, to_mmseg1=official_to_mmseg1)
