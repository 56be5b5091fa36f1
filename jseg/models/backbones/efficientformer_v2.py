"""EfficientFormerV2, the feature backbone of CGRSeg (its segmentation fork).

Official source: ``nizhenliang/CGRSeg`` @ b6c70fa, ``models/backbones/efficientformer_v2.py``
(a fork of ``snap-research/EfficientFormer`` ``models/efficientformer_v2.py``).  Paper: Li et al.,
"Rethinking Vision Transformers for MobileNet Size and Speed", ICCV 2023; CGRSeg: Ni et al.,
"Context-Guided Spatial Feature Reconstruction for Efficient Semantic Segmentation", ECCV 2024.

``network`` holds 7 entries: stage blocks at 0, 2, 4, 6 (outputs at strides 4/8/16/32) and
the downsampling ``Embedding`` at 1, 3, 5 (5 adds an ``Attention4DDownsample`` branch).
Attention-bias tables are learned on a grid for a 512x512 input (``resolution``) and
bicubically resized to the actual token counts (the identity at 512x512).  The bias is
computed on every forward, so there is no eval-time cache to go stale.

BatchNorm: officially the backbone's BNs are frozen unless a pretrained checkpoint is
given, in which case they are converted to SyncBN and train; every CGRSeg config gives
one, so here they train (``norm_eval=True`` freezes them).
"""
import itertools
import math

import numpy as np
import jittor as jt
from jittor import nn

from ...checkpoint import CheckpointRules
from ...registry import MODELS
from .base import PretrainedBackbone
from ..layers import (GELU, BatchNorm2d, DropPath, Dropout, bicubic_resize, bmm, build_norm_layer, conv2d,
                      no_own_macs, numel, resize, softmax)

# per-block MLP expansion ratios of stages 0-3 (EfficientFormerV2 expansion_ratios_*)
EXPANSION_RATIOS = {
    "S0": {"0": [4, 4], "1": [4, 4], "2": [4, 3, 3, 3, 4, 4], "3": [4, 3, 3, 4]},
    "S1": {"0": [4, 4, 4], "1": [4, 4, 4], "2": [4, 4, 3, 3, 3, 3, 4, 4, 4], "3": [4, 4, 3, 3, 4, 4]},
    "S2": {"0": [4] * 4, "1": [4] * 4, "2": [4, 4, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4], "3": [4, 4, 3, 3, 3, 3, 4, 4]},
    "L": {"0": [4] * 5, "1": [4] * 5, "2": [4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4],
          "3": [4, 4, 4, 3, 3, 3, 3, 4, 4, 4]},
}


_BN = dict(type="BN", requires_grad=True)


def _norm(norm_cfg, c):
    return build_norm_layer(norm_cfg, c)[1]


def _flat_heads(x, heads):
    """(B, heads*c, H, W) -> (B, heads, c, H*W)."""
    B, C, H, W = x.shape
    return x.reshape((B, heads, C // heads, H * W))


def _matmul4(a, b):
    """Batched (B, h, n, m) @ (B, h, m, k) as one (B*h)-batch of 2-D products."""
    B, h, n, m = a.shape
    k = b.shape[-1]
    return bmm(a.reshape((B * h, n, m)), b.reshape((B * h, m, k))).reshape((B, h, n, k))


def _bias_idxs(points_q, points_k, step=1):
    """Offsets ``(|step*qy - ky|, |step*qx - kx|)`` numbered in first-seen order (the official numbering)."""
    offsets, idxs = {}, []
    for p1 in points_q:
        for p2 in points_k:
            off = (abs(p1[0] * step - p2[0]), abs(p1[1] * step - p2[1]))
            if off not in offsets:
                offsets[off] = len(offsets)
            idxs.append(offsets[off])
    return len(offsets), np.array(idxs, np.int64).reshape(len(points_q), len(points_k))


class _AttentionBias(nn.Module):
    """Shared parts of the two attentions: the learned bias table and its (legacy) buffers."""

    onnx_fixed_shape = "its attention biases are resized to the input's token counts"

    def _onnx_attention(self, g, q, k, n_q, n_k):
        """``q k^T * scale + bias`` for (B, h, n_q, kd) queries and (B, h, kd, n_k) keys; the bias is
        computed now, for this export's shape."""
        bias = g.const(self._bias(n_q, n_k).numpy(), "attention_bias")
        return g.op("Add", g.op("Mul", g.op("MatMul", q, k), g.const(self.scale)), bias)

    def _init_bias(self, num_heads, num_offsets, idxs, legacy_cols):
        # parameter first, then buffers: the official state-dict order
        self.attention_biases_seg = jt.zeros((num_heads, num_offsets), "float32")
        self.attention_biases = jt.zeros((num_heads, legacy_cols), "float32").stop_grad()   # ImageNet, unused
        self.attention_bias_idxs = jt.ones((49, legacy_cols), "int64").stop_grad()           # ImageNet, unused
        self.attention_bias_idxs_seg = jt.array(idxs).stop_grad()

    def _bias(self, n_q, n_k):
        """``bicubic(attention_biases_seg[:, idxs])`` to (n_q, n_k), shape (1, heads, n_q, n_k)."""
        idx = self.attention_bias_idxs_seg
        bias = self.attention_biases_seg[:, idx.reshape((-1,))].reshape((1, -1, *idx.shape))
        return bicubic_resize(bias, (n_q, n_k))


class Attention4D(_AttentionBias):
    """Multi-head self-attention on 4-D maps with talking heads and a local value branch.

    ``attn = th2(softmax(th1(q k^T * kd^-0.5 + bias)))``, ``out = proj(attn v + v_local(v))``.
    With ``stride`` the input is first reduced by a stride-2 depthwise conv and the output upsampled back.
    """

    def __init__(self, dim=384, key_dim=32, num_heads=8, attn_ratio=4, resolution=7, stride=None, norm_cfg=_BN):
        self.resolution = math.ceil(resolution / stride) if stride else resolution
        R = self.resolution
        points = list(itertools.product(range(R), range(R)))
        n_off, idxs = _bias_idxs(points, points)
        self._init_bias(num_heads, n_off, idxs, 49)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim ** -0.5
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        self.stride = stride
        if stride is not None:
            self.stride_conv = nn.Sequential(conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim), _norm(norm_cfg, dim))
        nh_kd = num_heads * key_dim
        self.q = nn.Sequential(conv2d(dim, nh_kd, 1), _norm(norm_cfg, nh_kd))
        self.k = nn.Sequential(conv2d(dim, nh_kd, 1), _norm(norm_cfg, nh_kd))
        self.v = nn.Sequential(conv2d(dim, self.dh, 1), _norm(norm_cfg, self.dh))
        self.v_local = nn.Sequential(conv2d(self.dh, self.dh, 3, padding=1, groups=self.dh), _norm(norm_cfg, self.dh))
        self.talking_head1 = conv2d(num_heads, num_heads, 1)
        self.talking_head2 = conv2d(num_heads, num_heads, 1)
        self.proj = nn.Sequential(GELU(), conv2d(self.dh, dim, 1), _norm(norm_cfg, dim))

    def execute(self, x):
        B, C, H, W = x.shape
        if self.stride is not None:
            x = self.stride_conv(x)
            H, W = H // 2, W // 2
        N = H * W
        q = _flat_heads(self.q(x), self.num_heads).transpose(0, 1, 3, 2)       # (B, h, N, kd)
        k = _flat_heads(self.k(x), self.num_heads)                             # (B, h, kd, N)
        v = self.v(x)
        v_local = self.v_local(v)
        v = _flat_heads(v, self.num_heads).transpose(0, 1, 3, 2)               # (B, h, N, d)
        attn = _matmul4(q, k) * self.scale + self._bias(N, N)
        attn = self.talking_head2(softmax(self.talking_head1(attn), dim=-1))
        out = _matmul4(attn, v).transpose(0, 1, 3, 2).reshape((B, self.dh, H, W)) + v_local
        if self.stride is not None:
            out = resize(out, (2 * H, 2 * W), "bilinear", False)   # nn.Upsample(scale_factor=2, 'bilinear')
        return self.proj(out)

    def onnx(self, g, x):
        H, W = g.static_shape(self)[2:]
        if self.stride is not None:
            x = g.call(self.stride_conv, x)
            H, W = H // 2, W // 2
        h, kd = self.num_heads, self.key_dim
        q = g.transpose(g.reshape(g.call(self.q, x), [0, h, kd, -1]), [0, 1, 3, 2])
        k = g.reshape(g.call(self.k, x), [0, h, kd, -1])
        v = g.call(self.v, x)
        v_local = g.call(self.v_local, v)
        v = g.transpose(g.reshape(v, [0, h, self.d, -1]), [0, 1, 3, 2])
        attn = g.call(self.talking_head1, self._onnx_attention(g, q, k, H * W, H * W))
        attn = g.call(self.talking_head2, g.softmax(attn, axis=-1))
        out = g.reshape(g.transpose(g.op("MatMul", attn, v), [0, 1, 3, 2]), [0, self.dh, H, W])
        out = g.op("Add", out, v_local)
        if self.stride is not None:
            out = g.resize(out, size=(2 * H, 2 * W))
        return g.call(self.proj, out)


class LGQuery(nn.Module):
    """Local-global query of the downsampling attention: ``proj(dw3x3_s2(x) + x[..., ::2, ::2])``."""

    def __init__(self, in_dim, out_dim, norm_cfg=_BN):
        self.local = nn.Sequential(conv2d(in_dim, in_dim, 3, stride=2, padding=1, groups=in_dim))
        self.proj = nn.Sequential(conv2d(in_dim, out_dim, 1), _norm(norm_cfg, out_dim))

    def execute(self, x):
        return self.proj(self.local(x) + x[:, :, ::2, ::2])   # AvgPool2d(1, 2, 0) is a subsampling

    def onnx(self, g, x):
        every_other = g.op("Slice", x, g.ints([0, 0]), g.ints([2 ** 62, 2 ** 62]), g.ints([2, 3]), g.ints([2, 2]))
        return g.call(self.proj, g.op("Add", g.call(self.local, x), every_other))


class Attention4DDownsample(_AttentionBias):
    """Stride-2 attention between stages 2 and 3: queries on the half-resolution grid, no talking heads."""

    def __init__(self, dim=384, key_dim=16, num_heads=8, attn_ratio=4, resolution=7, out_dim=None, norm_cfg=_BN):
        self.resolution = resolution
        self.resolution2 = math.ceil(resolution / 2)
        q_points = list(itertools.product(range(self.resolution2), range(self.resolution2)))
        k_points = list(itertools.product(range(resolution), range(resolution)))
        n_off, idxs = _bias_idxs(q_points, k_points, step=math.ceil(resolution / self.resolution2))
        self._init_bias(num_heads, n_off, idxs, 196)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim ** -0.5
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        out_dim = out_dim or dim
        nh_kd = num_heads * key_dim
        self.q = LGQuery(dim, nh_kd, norm_cfg)
        self.k = nn.Sequential(conv2d(dim, nh_kd, 1), _norm(norm_cfg, nh_kd))
        self.v = nn.Sequential(conv2d(dim, self.dh, 1), _norm(norm_cfg, self.dh))
        self.v_local = nn.Sequential(conv2d(self.dh, self.dh, 3, stride=2, padding=1, groups=self.dh), _norm(norm_cfg, self.dh))
        self.proj = nn.Sequential(GELU(), conv2d(self.dh, out_dim, 1), _norm(norm_cfg, out_dim))

    def execute(self, x):
        B, C, H, W = x.shape
        q = _flat_heads(self.q(x), self.num_heads).transpose(0, 1, 3, 2)       # (B, h, HW/4, kd)
        k = _flat_heads(self.k(x), self.num_heads)                             # (B, h, kd, HW)
        v = self.v(x)
        v_local = self.v_local(v)
        v = _flat_heads(v, self.num_heads).transpose(0, 1, 3, 2)               # (B, h, HW, d)
        attn = _matmul4(q, k) * self.scale + self._bias(q.shape[2], H * W)
        attn = softmax(attn, dim=-1)
        out = _matmul4(attn, v).transpose(0, 1, 3, 2).reshape((B, self.dh, H // 2, W // 2)) + v_local
        return self.proj(out)

    def onnx(self, g, x):
        H, W = g.static_shape(self)[2:]
        h, kd = self.num_heads, self.key_dim
        n_q = ((H - 1) // 2 + 1) * ((W - 1) // 2 + 1)          # the stride-2 query grid
        q = g.transpose(g.reshape(g.call(self.q, x), [0, h, kd, -1]), [0, 1, 3, 2])
        k = g.reshape(g.call(self.k, x), [0, h, kd, -1])
        v = g.call(self.v, x)
        v_local = g.call(self.v_local, v)
        v = g.transpose(g.reshape(v, [0, h, self.d, -1]), [0, 1, 3, 2])
        attn = g.softmax(self._onnx_attention(g, q, k, n_q, H * W), axis=-1)
        out = g.reshape(g.transpose(g.op("MatMul", attn, v), [0, 1, 3, 2]), [0, self.dh, H // 2, W // 2])
        return g.call(self.proj, g.op("Add", out, v_local))


class Mlp(nn.Module):
    """``fc1 -> BN -> GELU -> dw3x3 -> BN -> GELU -> drop -> fc2 -> BN -> drop`` (1x1 convs)."""

    def __init__(self, in_features, hidden_features, drop=0.0, norm_cfg=_BN):
        self.fc1 = conv2d(in_features, hidden_features, 1)
        self.act = GELU()
        self.fc2 = conv2d(hidden_features, in_features, 1)
        self.drop = Dropout(drop)
        self.mid = conv2d(hidden_features, hidden_features, 3, padding=1, groups=hidden_features)
        self.mid_norm = _norm(norm_cfg, hidden_features)
        self.norm1 = _norm(norm_cfg, hidden_features)
        self.norm2 = _norm(norm_cfg, in_features)

    def execute(self, x):
        x = self.act(self.norm1(self.fc1(x)))
        x = self.drop(self.act(self.mid_norm(self.mid(x))))
        return self.drop(self.norm2(self.fc2(x)))

    def onnx(self, g, x):
        for m in (self.fc1, self.norm1, self.act, self.mid, self.mid_norm, self.act, self.fc2, self.norm2):
            x = g.call(m, x)
        return x


class FFN(nn.Module):
    """``x + drop_path(layer_scale_2 * mlp(x))``."""

    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0, layer_scale_init_value=1e-5, norm_cfg=_BN):
        self.layer_scale_2 = jt.full((dim, 1, 1), layer_scale_init_value, "float32")
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, norm_cfg)
        self.drop_path = DropPath(drop_path)

    def execute(self, x):
        return x + self.drop_path(self.layer_scale_2 * self.mlp(x))

    def onnx(self, g, x):
        return g.op("Add", x, g.op("Mul", g.param(self.layer_scale_2), g.call(self.mlp, x)))


class AttnFFN(nn.Module):
    """``x + dp(ls1 * Attention4D(x))``, then ``x + dp(ls2 * mlp(x))``."""

    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0, layer_scale_init_value=1e-5, resolution=7,
                 stride=None, key_dim=32, num_heads=8, attn_ratio=4, norm_cfg=_BN):
        self.layer_scale_1 = jt.full((dim, 1, 1), layer_scale_init_value, "float32")
        self.layer_scale_2 = jt.full((dim, 1, 1), layer_scale_init_value, "float32")
        self.token_mixer = Attention4D(dim, key_dim, num_heads, attn_ratio, resolution, stride, norm_cfg)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, norm_cfg)
        self.drop_path = DropPath(drop_path)

    def execute(self, x):
        x = x + self.drop_path(self.layer_scale_1 * self.token_mixer(x))
        return x + self.drop_path(self.layer_scale_2 * self.mlp(x))

    def onnx(self, g, x):
        x = g.op("Add", x, g.op("Mul", g.param(self.layer_scale_1), g.call(self.token_mixer, x)))
        return g.op("Add", x, g.op("Mul", g.param(self.layer_scale_2), g.call(self.mlp, x)))


class Embedding(nn.Module):
    """Stride-2 3x3 conv + BN between stages; with ``asub`` (stages 2->3) plus an Attention4DDownsample branch."""

    def __init__(self, in_chans, embed_dim, asub=False, resolution=None, key_dim=16, num_heads=8, attn_ratio=4,
                 norm_cfg=_BN):
        self.asub = asub
        if asub:
            self.attn = Attention4DDownsample(in_chans, key_dim, num_heads, attn_ratio, resolution, embed_dim, norm_cfg)
            self.conv = conv2d(in_chans, embed_dim, 3, stride=2, padding=1)
            self.bn = _norm(norm_cfg, embed_dim)
        else:
            self.proj = conv2d(in_chans, embed_dim, 3, stride=2, padding=1)
            self.norm = _norm(norm_cfg, embed_dim)

    def execute(self, x):
        if self.asub:
            return self.attn(x) + self.bn(self.conv(x))
        return self.norm(self.proj(x))

    def onnx(self, g, x):
        if self.asub:
            return g.op("Add", g.call(self.attn, x), g.call(self.bn, g.call(self.conv, x)))
        return g.call(self.norm, g.call(self.proj, x))


@MODELS.register()
class EfficientFormerV2(PretrainedBackbone):
    """EfficientFormerV2 feature backbone (CGRSeg's ``efficientformerv2_{s1,s2,l}_feat``).

    Args:
        layers: blocks per stage (S1 [3,3,9,6], S2 [4,4,12,8], L [5,5,15,10]).
        embed_dims: widths (S1 [32,48,120,224], S2 [32,64,144,288], L [40,80,192,384]).
        e_ratios: per-block MLP ratios, a dict of stage -> list, or a name in ``EXPANSION_RATIOS``.
        vit_num: the last ``vit_num`` blocks of stages 2 and 3 are AttnFFN (S1 2, S2 4, L 6).
        resolution: input size the bias tables are laid out for (512).
        drop_rate / drop_path_rate: dropout and stochastic depth (S1 0, S2 0.02, L 0.1).
        layer_scale_init_value: 1e-5.
        attn_key_dim / attn_num_heads / attn_ratio: Attention4D widths (32, 8, 4);
        down_key_dim / down_num_heads / down_attn_ratio: Attention4DDownsample widths (16, 8, 4).
        norm_cfg: every norm of the backbone (46 in S1 ...): ``BN`` by default, as the standalone model;
            CGRSeg's configs give ``SyncBN``, which the official training converts the backbone to.
        norm_eval: keep the BNs in eval mode while training (the official behaviour without a checkpoint).
        pretrained / init_cfg: an ImageNet EfficientFormerV2 checkpoint (``{'model': ...}``; its
            classifier/distillation heads and final norm are dropped) or a segmentor checkpoint.
    Returns (execute): the outputs of ``network`` 0, 2, 4, 6 (strides 4, 8, 16, 32).
    """

    def __init__(self, layers=(3, 3, 9, 6), embed_dims=(32, 48, 120, 224), e_ratios="S1", vit_num=2,
                 resolution=512, drop_rate=0.0, drop_path_rate=0.0, layer_scale_init_value=1e-5,
                 downsamples=(True, True, True, True), attn_key_dim=32, attn_num_heads=8, attn_ratio=4,
                 down_key_dim=16, down_num_heads=8, down_attn_ratio=4, norm_cfg=_BN, norm_eval=False,
                 pretrained=None, init_cfg=None):
        if isinstance(e_ratios, str):
            if e_ratios not in EXPANSION_RATIOS:
                raise KeyError(f"EfficientFormerV2: unknown e_ratios {e_ratios!r}; known {sorted(EXPANSION_RATIOS)}")
            e_ratios = EXPANSION_RATIOS[e_ratios]
        for i, n in enumerate(layers):
            if len(e_ratios[str(i)]) < n:
                raise ValueError(f"EfficientFormerV2: e_ratios['{i}'] has {len(e_ratios[str(i)])} entries for {n} blocks")
        self._set_pretrained(pretrained, init_cfg)
        self.norm_eval = norm_eval
        c0 = embed_dims[0]
        self.patch_embed = nn.Sequential(conv2d(3, c0 // 2, 3, stride=2, padding=1), _norm(norm_cfg, c0 // 2), GELU(),
                                         conv2d(c0 // 2, c0, 3, stride=2, padding=1), _norm(norm_cfg, c0), GELU())
        total = sum(layers)
        network = []
        for i, n in enumerate(layers):
            res = math.ceil(resolution / 2 ** (i + 2))
            blocks = []
            for j in range(n):
                dpr = drop_path_rate * (j + sum(layers[:i])) / (total - 1)
                ratio = e_ratios[str(i)][j]
                if i >= 2 and j > n - 1 - vit_num:
                    blocks.append(AttnFFN(embed_dims[i], ratio, drop_rate, dpr, layer_scale_init_value, res,
                                          2 if i == 2 else None, attn_key_dim, attn_num_heads, attn_ratio,
                                          norm_cfg))
                else:
                    blocks.append(FFN(embed_dims[i], ratio, drop_rate, dpr, layer_scale_init_value, norm_cfg))
            network.append(nn.Sequential(*blocks))
            if i == len(layers) - 1:
                break
            if downsamples[i] or embed_dims[i] != embed_dims[i + 1]:
                network.append(Embedding(embed_dims[i], embed_dims[i + 1], asub=i >= 2, resolution=res,
                                         key_dim=down_key_dim, num_heads=down_num_heads, attn_ratio=down_attn_ratio,
                                         norm_cfg=norm_cfg))
        self.network = nn.ModuleList(network)
        self.out_indices = [0, 2, 4, 6]
        self._init_random()
        _plain_when_counted(self)

    def _init_random(self):
        """Official init: trunc_normal(0.02) convs of the MLPs (fc1/fc2), PyTorch defaults elsewhere."""
        for m in self.modules():
            if isinstance(m, Mlp):
                for conv in (m.fc1, m.fc2):
                    conv.weight.assign(jt.clamp(jt.init.gauss(conv.weight.shape, "float32", std=0.02), -2, 2))
                    conv.bias.assign(jt.zeros(conv.bias.shape, "float32"))

    def execute(self, x):
        if self.norm_eval and self.is_training():
            # Jittor's train() sets every submodule directly (no override is called), so freeze here
            for m in self.modules():
                if isinstance(m, BatchNorm2d):
                    m.is_train = False
        x = self.patch_embed(x)
        outs = []
        for idx, block in enumerate(self.network):
            x = block(x)
            if idx in self.out_indices:
                outs.append(x)
        return outs

    def onnx(self, g, x):
        x = g.call(self.patch_embed, x)
        outs = []
        for idx, block in enumerate(self.network):
            x = g.call(block, x)
            if idx in self.out_indices:
                outs.append(x)
        return outs


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)
# CGRSeg's get_flops is mmcv's module counter (it sees convs, norms, nn.Upsample and the query pooling).

def _attention_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return numel(out) if self.stride is not None else 0   # nn.Upsample: one per output
    B, C, H, W = inputs[0].shape
    if self.stride is not None:
        H, W = H // 2, W // 2
    N, h = H * W, self.num_heads
    macs = B * h * N * N * (self.key_dim + 1 + self.d)   # q k, * scale, attn v (bicubic bias: not counted)
    if self.stride is not None:
        macs += 4 * numel(out)                            # nn.Upsample bilinear (out has the upsampled size)
    return macs


def _down_attention_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return 0
    B, C, H, W = inputs[0].shape
    Nq, N, h = (H // 2) * (W // 2), H * W, self.num_heads
    return B * h * Nq * N * (self.key_dim + 1 + self.d)


def _query_macs(self, convention, inputs, out):
    # AvgPool2d(1, 2): torchprofile one per output, mmcv one per input element
    return numel(out) if convention == "torchprofile" else numel(inputs[0])


def _layer_scales(n):
    def rule(self, convention, inputs, out):
        return n * numel(out) if convention == "torchprofile" else 0
    return rule


Attention4D.count_macs = _attention_macs
Attention4DDownsample.count_macs = _down_attention_macs
LGQuery.count_macs = _query_macs
FFN.count_macs = _layer_scales(1)
AttnFFN.count_macs = _layer_scales(2)
for _cls in (Mlp, Embedding, EfficientFormerV2):
    _cls.count_macs = no_own_macs
EfficientFormerV2.paper_macs_convention = "mmcv"
def _plain_when_counted(backbone):
    """CGRSeg's published GFLOPs (4.07 for T, tests/test_analysis.py) count the backbone's norms, which mmcv
    does for plain BNs only: the official backbone turns SyncBN when its ImageNet checkpoint loads for
    training, and was plain when counted."""
    for m in backbone.modules():
        if isinstance(m, BatchNorm2d):
            m.plain_when_counted = True


# the bias tables of the ImageNet model and the index tables are state, not parameters
_AttentionBias.BUFFERS = ("attention_biases", "attention_bias_idxs", "attention_bias_idxs_seg")


# ----------------------------------------------------------------------------- checkpoints (jseg.checkpoint)
_IMAGENET_CLASSIFIER = "ImageNet classifier head"

EfficientFormerV2.checkpoint_rules = CheckpointRules(
    backbone_prefixes=("network.", "patch_embed."),   # ImageNet EfficientFormerV2: {'model': {...}}
    classifier_keys={"head.": _IMAGENET_CLASSIFIER, "dist_head.": _IMAGENET_CLASSIFIER,
                     "norm.": "ImageNet classifier's final norm"},
    # the ImageNet model has no segmentation bias tables: they keep their init (zeros, recomputed index
    # tables), as the authors' non-strict load leaves them
    init_only_suffixes=("attention_biases_seg", "attention_bias_idxs_seg"))
