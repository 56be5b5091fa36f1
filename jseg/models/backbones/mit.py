"""Mix Transformer (MiT), the encoder of SegFormer.

Official source: ``NVlabs/SegFormer`` @ 65fa8cf,
``mmseg/models/backbones/mix_transformer.py``.  Paper: Xie et al.,
"SegFormer: Simple and Efficient Design for Semantic Segmentation with
Transformers", NeurIPS 2021, Sec. 3.1 (Eq. 1-3).

Tokens are ``(B, N, C)`` inside a stage, as officially; every stage returns
an NCHW map (strides 4, 8, 16, 32).  Attribute names equal the official
state-dict names (``block1.0.attn.kv.weight``, ``block1.0.mlp.dwconv.dwconv.weight`` ...).
LayerNorm eps: 1e-5 in the patch embeddings and the spatial-reduction norm
(``nn.LayerNorm`` default there), 1e-6 in the blocks and stage norms.
"""

import re
from collections import OrderedDict

import numpy as np
from jittor import nn

from ...checkpoint import CheckpointError, CheckpointRules
from ...registry import MODELS
from .base import PretrainedBackbone
from ..layers import (GELU, DropPath, Dropout, LayerNorm, Linear, bmm, bmm_nt, conv2d, fan_out_normal_init_,
                      no_own_macs, softmax)


def _tokens_to_map(x, H, W):
    B, N, C = x.shape
    return x.transpose(0, 2, 1).reshape((B, C, H, W))


def _map_to_tokens(x):
    B, C, H, W = x.shape
    return x.reshape((B, C, H * W)).transpose(0, 2, 1)


def _tokens_to_map_onnx(g, x, like, channels):
    """ONNX: tokens (B, H*W, C) -> (B, C, H, W), with B, H, W read from the map ``like`` at run time."""
    shape = g.concat_shape(g.shape(like, 0, 1), [channels], g.shape(like, 2, 4))
    return g.reshape(g.transpose(x, [0, 2, 1]), shape)


def _map_to_tokens_onnx(g, x):
    return g.transpose(g.reshape(x, [0, 0, -1]), [0, 2, 1])


class OverlapPatchEmbed(nn.Module):
    """``Conv(k, stride, padding=k//2)`` then LayerNorm (eps 1e-5) over the flattened tokens.

    Returns ``(tokens (B, H'*W', C), H', W')``.
    """

    def __init__(self, patch_size=7, stride=4, in_chans=3, embed_dim=768):
        self.proj = conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=patch_size // 2)
        self.norm = LayerNorm(embed_dim, eps=1e-5)

    def execute(self, x):
        x = self.proj(x)
        H, W = x.shape[2:]
        return self.norm(_map_to_tokens(x)), H, W

    def onnx(self, g, x):
        """-> (tokens, the map they came from: it carries H, W for the later reshapes)."""
        x = g.call(self.proj, x)
        return g.call(self.norm, _map_to_tokens_onnx(g, x)), x


class Attention(nn.Module):
    """Efficient self-attention (paper Eq. 2): keys/values from a spatially reduced sequence.

    ``K, V = kv(LN(Conv_{R,stride R}(x)))`` (reduction only if ``sr_ratio > 1``), ``kv`` rows are
    ``[k; v]``; per head ``softmax(q k^T / sqrt(d_head)) v``, then ``proj``.
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0,
                 sr_ratio=1):
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.q = Linear(dim, dim, bias=qkv_bias)
        self.kv = Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = LayerNorm(dim, eps=1e-5)

    def execute(self, x, H, W):
        B, N, C = x.shape
        h, d = self.num_heads, C // self.num_heads
        # one head (the 16384-token first stage of B0-B5): the head split is a no-op, skip its copies
        q = self.q(x)
        if h > 1:
            q = q.reshape((B, N, h, d)).permute(0, 2, 1, 3).reshape((B * h, N, d))
        if self.sr_ratio > 1:
            x = self.norm(_map_to_tokens(self.sr(_tokens_to_map(x, H, W))))
        M = x.shape[1]
        kv = self.kv(x).reshape((B, M, 2, h, d)).permute(2, 0, 3, 1, 4)
        k = kv[0].reshape((B * h, M, d))
        v = kv[1].reshape((B * h, M, d))
        attn = softmax(bmm_nt(q, k) * self.scale, dim=-1)
        attn = self.attn_drop(attn)
        x = bmm(attn, v)
        if h > 1:
            x = x.reshape((B, h, N, d)).permute(0, 2, 1, 3).reshape((B, N, C))
        return self.proj_drop(self.proj(x))

    def onnx(self, g, x, like):
        C, h = self.dim, self.num_heads
        d = C // h
        q = g.transpose(g.reshape(g.call(self.q, x), [0, 0, h, d]), [0, 2, 1, 3])           # (B, h, N, d)
        if self.sr_ratio > 1:
            x = g.call(self.norm, _map_to_tokens_onnx(g, g.call(self.sr, _tokens_to_map_onnx(g, x, like, C))))
        kv = g.transpose(g.reshape(g.call(self.kv, x), [0, 0, 2, h, d]), [2, 0, 3, 1, 4])  # (2, B, h, M, d)
        k = g.op("Gather", kv, g.const(0, "index", np.int64), axis=0)
        v = g.op("Gather", kv, g.const(1, "index", np.int64), axis=0)
        attn = g.softmax(g.op("Mul", g.matmul(q, k, trans_b=True, rank=4), g.const(self.scale)), axis=-1)
        out = g.reshape(g.transpose(g.matmul(attn, v), [0, 2, 1, 3]), [0, 0, C])
        return g.call(self.proj, out)


class DWConv(nn.Module):
    """3x3 depth-wise conv on tokens (key ``mlp.dwconv.dwconv.weight``)."""

    def __init__(self, dim):
        self.dwconv = conv2d(dim, dim, 3, padding=1, groups=dim)

    def execute(self, x, H, W):
        return _map_to_tokens(self.dwconv(_tokens_to_map(x, H, W)))

    def onnx(self, g, x, like):
        return _map_to_tokens_onnx(g, g.call(self.dwconv, _tokens_to_map_onnx(g, x, like, self.dwconv.in_channels)))


class Mlp(nn.Module):
    """Mix-FFN (paper Eq. 3): ``fc1 -> DW3x3 -> GELU -> drop -> fc2 -> drop``."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        self.fc1 = Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = GELU()
        self.fc2 = Linear(hidden_features, in_features)
        self.drop = Dropout(drop)

    def execute(self, x, H, W):
        x = self.drop(self.act(self.dwconv(self.fc1(x), H, W)))
        return self.drop(self.fc2(x))

    def onnx(self, g, x, like):
        return g.call(self.fc2, g.call(self.act, g.call(self.dwconv, g.call(self.fc1, x), like)))


class Block(nn.Module):
    """``x = x + drop_path(attn(norm1(x)))``; ``x = x + drop_path(mlp(norm2(x)))`` (norms eps 1e-6)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, sr_ratio=1, norm_eps=1e-6):
        self.norm1 = LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def execute(self, x, H, W):
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        return x + self.drop_path(self.mlp(self.norm2(x), H, W))

    def onnx(self, g, x, like):
        x = g.op("Add", x, g.call(self.attn, g.call(self.norm1, x), like))
        return g.op("Add", x, g.call(self.mlp, g.call(self.norm2, x), like))


@MODELS.register()
class MixVisionTransformer(PretrainedBackbone):
    """MiT-B0..B5 (NVlabs ``mit_b0`` .. ``mit_b5``; see ``configs/_base_/models/segformer_mit-b*.py``).

    Args:
        in_chans: input channels.
        embed_dims: channels per stage (B0: [32,64,160,256]; B1-B5: [64,128,320,512]).
        num_heads: heads per stage ([1,2,5,8] in all variants).
        mlp_ratios: Mix-FFN expansion ([4,4,4,4]).
        qkv_bias: bias of q/kv (True in all variants).
        qk_scale: attention scale override (None: head_dim^-0.5).
        drop_rate / attn_drop_rate: dropouts (0 in all variants).
        drop_path_rate: stochastic depth, linearly increased over all blocks (0.1).
        depths: blocks per stage (B0/B1 [2,2,2,2], B2 [3,4,6,3], B3 [3,4,18,3], B4 [3,8,27,3], B5 [3,6,40,3]).
        sr_ratios: spatial reduction per stage ([8,4,2,1]).
        norm_eps: eps of the block and stage LayerNorms (1e-6).
        pretrained / init_cfg: an ImageNet ``mit_b*.pth`` (classifier ``head.*`` dropped) or segmentor checkpoint.
    Returns (execute): list of the four stage outputs, NCHW.
    """

    def __init__(self, in_chans=3, embed_dims=(64, 128, 256, 512), num_heads=(1, 2, 4, 8), mlp_ratios=(4, 4, 4, 4),
                 qkv_bias=False, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0,
                 depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1), norm_eps=1e-6, num_stages=4, pretrained=None,
                 init_cfg=None):
        lists = dict(embed_dims=embed_dims, num_heads=num_heads, mlp_ratios=mlp_ratios, depths=depths,
                     sr_ratios=sr_ratios)
        if any(len(v) != num_stages for v in lists.values()):
            raise ValueError(f"MixVisionTransformer: {lists} must all have num_stages={num_stages} entries")
        self._set_pretrained(pretrained, init_cfg)
        self.num_stages = num_stages
        self.embed_dims = list(embed_dims)
        self.depths = list(depths)
        for i in range(num_stages):
            patch, stride = (7, 4) if i == 0 else (3, 2)
            setattr(self, f"patch_embed{i + 1}",
                    OverlapPatchEmbed(patch, stride, in_chans if i == 0 else embed_dims[i - 1], embed_dims[i]))
        dpr = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        cur = 0
        for i in range(num_stages):
            setattr(self, f"block{i + 1}", nn.ModuleList([
                Block(embed_dims[i], num_heads[i], mlp_ratios[i], qkv_bias, qk_scale, drop_rate, attn_drop_rate,
                      dpr[cur + j], sr_ratios[i], norm_eps) for j in range(depths[i])]))
            setattr(self, f"norm{i + 1}", LayerNorm(embed_dims[i], eps=norm_eps))
            cur += depths[i]
        self._init_random()

    def _init_random(self):
        """Official ``_init_weights``: Linear trunc_normal(0.02)/0 (done in Linear), LayerNorm (1, 0),
        Conv N(0, sqrt(2/fan_out)) with fan_out = k*k*out/groups, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out_normal_init_(m)

    def execute(self, x):
        outs = []
        for i in range(self.num_stages):
            x, H, W = getattr(self, f"patch_embed{i + 1}")(x)
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x, H, W)
            x = _tokens_to_map(getattr(self, f"norm{i + 1}")(x), H, W)
            outs.append(x)
        return outs

    def onnx(self, g, x):
        outs = []
        for i in range(self.num_stages):
            x, like = g.call(getattr(self, f"patch_embed{i + 1}"), x)
            for blk in getattr(self, f"block{i + 1}"):
                x = g.call(blk, x, like)
            x = _tokens_to_map_onnx(g, g.call(getattr(self, f"norm{i + 1}"), x), like, self.embed_dims[i])
            outs.append(x)
        return outs


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)
# SegFormer's get_flops: mmcv's module counter plus NVlabs' ``sra_flops`` term for the attention matmuls.

def _attention_macs(self, convention, inputs, out):
    x, H, W = inputs
    if convention == "torchprofile":
        B, N, C = x.shape
        Nr = (H // self.sr_ratio) * (W // self.sr_ratio) if self.sr_ratio > 1 else N
        # q k^T, * scale, attn v (the Linear/conv/norm children count themselves)
        return 2 * B * N * Nr * C + B * self.num_heads * N * Nr
    if convention == "nvlabs":
        # NVlabs ``sra_flops(h, w, r, dim) = 2 * h * w * (h // r) * (w // r) * dim`` per attention layer
        r = self.sr_ratio
        return 2 * x.shape[0] * H * W * (H // r) * (W // r) * self.dim
    return 0


Attention.count_macs = _attention_macs
for _cls in (OverlapPatchEmbed, DWConv, Mlp, Block, MixVisionTransformer):
    _cls.count_macs = no_own_macs
MixVisionTransformer.paper_macs_convention = "nvlabs"


# ----------------------------------------------------------------------------- checkpoints (jseg.checkpoint)
_MM1_MIT = re.compile(r"^(backbone\.)?layers\.(\d+)\.([012])\.(.+)$")
_MM1_MIT_FFN = {"0": "mlp.fc1", "1": "mlp.dwconv.dwconv", "4": "mlp.fc2"}


def mmseg1_to_official(state_dict):
    """mmseg-1.x MiT keys -> NVlabs names and shapes (the inverse of mmseg's ``mit2mmseg.py``).

    ``layers.{i}.0.projection`` -> ``patch_embed{i+1}.proj``; ``layers.{i}.2`` -> ``norm{i+1}``;
    in block ``layers.{i}.1.{j}``: ``attn.attn.in_proj_{weight,bias}`` (rows [q; k; v]) is split into
    ``attn.q`` and ``attn.kv`` (rows [k; v]), ``attn.attn.out_proj`` -> ``attn.proj``,
    ``ffn.layers.{0,1,4}`` -> ``mlp.fc1`` / ``mlp.dwconv.dwconv`` / ``mlp.fc2`` (1x1-conv weights
    reshaped to Linear).  A ``backbone.`` prefix is kept.  Returns ``(state_dict, renamed)``;
    a state dict without such keys comes back unchanged.
    """
    if not any(_MM1_MIT.match(k) for k in state_dict):
        return state_dict, []
    out, renamed = OrderedDict(), []
    for k, v in state_dict.items():
        m = _MM1_MIT.match(k)
        if not m:
            out[k] = v
            continue
        prefix, stage, part, rest = m.group(1) or "", int(m.group(2)) + 1, m.group(3), m.group(4)
        if part == "0":
            new = {f"{prefix}patch_embed{stage}.{rest.replace('projection.', 'proj.', 1)}": v}
        elif part == "2":
            new = {f"{prefix}norm{stage}.{rest}": v}
        else:
            j, sub = rest.split(".", 1)
            base = f"{prefix}block{stage}.{j}."
            if sub.startswith("attn.attn.in_proj_"):
                kind = sub[len("attn.attn.in_proj_"):]
                C = v.shape[0] // 3
                new = {base + f"attn.q.{kind}": np.ascontiguousarray(v[:C]),
                       base + f"attn.kv.{kind}": np.ascontiguousarray(v[C:])}
            elif sub.startswith("attn.attn.out_proj."):
                new = {base + "attn.proj." + sub[len("attn.attn.out_proj."):]: v}
            elif sub.startswith("ffn.layers."):
                idx, kind = sub[len("ffn.layers."):].split(".", 1)
                if idx not in _MM1_MIT_FFN:
                    raise CheckpointError(f"{k}: unknown mmseg-1.x MixFFN layer index {idx} (expected 0, 1 or 4)")
                if idx in ("0", "4") and kind == "weight":
                    v = v.reshape(v.shape[0], v.shape[1])
                new = {base + f"{_MM1_MIT_FFN[idx]}.{kind}": v}
            else:  # norm1, norm2, attn.sr, attn.norm keep their names
                new = {base + sub: v}
        for dst, val in new.items():
            out[dst] = val
            renamed.append((k, dst))
    return out, renamed


_OFFICIAL_MIT = re.compile(r"^(backbone\.)?(patch_embed|block|norm)(\d+)\.(.+)$")
_MIT_FFN_MM1 = {v: k for k, v in _MM1_MIT_FFN.items()}


def official_to_mmseg1(state_dict):
    """NVlabs MiT keys -> mmseg 1.x names and shapes (what mmseg's ``mit2mmseg.py`` does; the inverse
    of ``mmseg1_to_official``): ``attn.q`` and ``attn.kv`` rows are joined into ``attn.attn.in_proj_*``,
    Linear weights of the MixFFN become 1x1-conv weights."""
    out, renamed = OrderedDict(), []
    for k, v in state_dict.items():
        m = _OFFICIAL_MIT.match(k)
        if not m:
            out[k] = v
            continue
        prefix, kind, stage, rest = m.group(1) or "", m.group(2), int(m.group(3)) - 1, m.group(4)
        if kind == "patch_embed":
            dst = {f"{prefix}layers.{stage}.0.{rest.replace('proj.', 'projection.', 1)}": v}
        elif kind == "norm":
            dst = {f"{prefix}layers.{stage}.2.{rest}": v}
        else:
            j, sub = rest.split(".", 1)
            base = f"{prefix}layers.{stage}.1.{j}."
            if sub.startswith("attn.kv."):
                continue                                   # joined with attn.q below
            if sub.startswith("attn.q."):
                what = sub[len("attn.q."):]
                kv = state_dict[f"{prefix}block{stage + 1}.{j}.attn.kv.{what}"]
                dst = {base + f"attn.attn.in_proj_{what}": np.concatenate([v, kv], axis=0)}
                renamed.append((f"{prefix}block{stage + 1}.{j}.attn.kv.{what}", base + f"attn.attn.in_proj_{what}"))
            elif sub.startswith("attn.proj."):
                dst = {base + "attn.attn.out_proj." + sub[len("attn.proj."):]: v}
            elif sub.startswith("mlp."):
                layer, what = sub[len("mlp."):].rsplit(".", 1)
                if layer in ("fc1", "fc2") and what == "weight":
                    v = v.reshape(v.shape[0], v.shape[1], 1, 1)
                dst = {base + f"ffn.layers.{_MIT_FFN_MM1['mlp.' + layer]}.{what}": v}
            else:   # norm1, norm2, attn.sr, attn.norm keep their names
                dst = {base + sub: v}
        for name, val in dst.items():
            out[name] = val
            renamed.append((k, name))
    return out, renamed


MixVisionTransformer.checkpoint_rules = CheckpointRules(
    backbone_prefixes=("patch_embed", "block", "norm"),   # NVlabs ImageNet mit_b*.pth: flat, with head.*
    classifier_keys={"head.": "ImageNet classifier head"},
    convert=mmseg1_to_official, to_mmseg1=official_to_mmseg1)
