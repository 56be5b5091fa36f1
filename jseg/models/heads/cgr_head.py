"""CGRSeg decoder: pyramid context with Rectangular Self-Calibration, spatial feature
reconstruction, and the Dynamic Prototype Guided head.

Official source: ``nizhenliang/CGRSeg`` @ b6c70fa, ``models/decode_heads/cgr_head.py``,
``rcm.py``, ``dpg_head.py``.  Paper: Ni et al., ECCV 2024, Sec. 3 (RCM Eq. 1-3, DPG Eq. 4-6).

Inputs are the stride-8/16/32 backbone maps; the output is at stride 8.  ``cls_seg``
(Dropout2d + ``conv_seg``) is used twice with shared weights: once for the coarse
prototypes' logits and once for the output.
"""
import jittor as jt
from jittor import nn

from ...checkpoint import CheckpointRules
from ...registry import MODELS
from ..layers.norm import affine_onnx, norm_macs
from ..layers import (GELU, ConvModule, DropPath, Dropout, adaptive_avg_pool2d, adaptive_avg_pool2d_onnx, bmm,
                      build_norm_layer, centered_variance, conv2d, no_own_macs, numel, resize, softmax)
from .decode_head import BaseDecodeHead

_BN = dict(type="BN", requires_grad=True)   # the authors' RCM/RCA norms are nn.BatchNorm2d


class RCA(nn.Module):
    """Rectangular Self-Calibration Attention: ``att(pool_h(x) + pool_w(x)) * dw3x3(x)``.

    ``att`` = ``(1 x k)`` depthwise conv -> BN -> ReLU -> ``(k x 1)`` depthwise conv -> sigmoid,
    on the sum of the row means (B,C,H,1) and column means (B,C,1,W) broadcast to H x W.
    """

    def __init__(self, inp, band_kernel_size=11, square_kernel_size=3, ratio=1, norm_cfg=_BN):
        gc = inp // ratio
        k = band_kernel_size
        self.dwconv_hw = conv2d(inp, inp, square_kernel_size, padding=square_kernel_size // 2, groups=inp)
        self.excite = nn.Sequential(
            conv2d(inp, gc, (1, k), padding=(0, k // 2), groups=gc),
            build_norm_layer(norm_cfg, gc)[1],
            nn.ReLU(),
            conv2d(gc, inp, (k, 1), padding=(k // 2, 0), groups=gc),
            nn.Sigmoid(),
        )

    def execute(self, x):
        loc = self.dwconv_hw(x)
        gather = x.mean(dim=3, keepdims=True) + x.mean(dim=2, keepdims=True)   # AdaptiveAvgPool (None,1) + (1,None)
        return self.excite(gather) * loc

    def onnx(self, g, x):
        gather = g.op("Add", g.mean(x, [3]), g.mean(x, [2]))
        return g.op("Mul", g.call(self.excite, gather), g.call(self.dwconv_hw, x))


class ConvMlp(nn.Module):
    """1x1 conv -> GELU -> drop -> 1x1 conv (no norm)."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        self.fc1 = conv2d(in_features, hidden_features, 1)
        self.act = GELU()
        self.drop = Dropout(drop)
        self.fc2 = conv2d(hidden_features, in_features, 1)

    def execute(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))

    def onnx(self, g, x):
        return g.call(self.fc2, g.call(self.act, g.call(self.fc1, x)))


class RCM(nn.Module):
    """Rectangular Self-Calibration Module: ``x + drop_path(gamma * mlp(BN(RCA(x))))``."""

    def __init__(self, dim, mlp_ratio=2, ls_init_value=1e-6, drop_path=0.0, dw_size=11, square_kernel_size=3,
                 ratio=1, norm_cfg=_BN):
        self.gamma = jt.full((dim,), ls_init_value, "float32")
        self.token_mixer = RCA(dim, band_kernel_size=dw_size, square_kernel_size=square_kernel_size, ratio=ratio,
                               norm_cfg=norm_cfg)
        self.norm = build_norm_layer(norm_cfg, dim)[1]
        self.mlp = ConvMlp(dim, int(mlp_ratio * dim))
        self.drop_path = DropPath(drop_path)

    def execute(self, x):
        y = self.mlp(self.norm(self.token_mixer(x)))
        return x + self.drop_path(y * self.gamma.reshape((1, -1, 1, 1)))

    def onnx(self, g, x):
        y = g.call(self.mlp, g.call(self.norm, g.call(self.token_mixer, x)))
        return g.op("Add", x, g.op("Mul", y, g.reshape(g.param(self.gamma), [1, -1, 1, 1])))


class NextLayer(nn.Module):
    """A stack of RCMs (key ``trans.transformer_blocks.{i}``)."""

    def __init__(self, block_num, embedding_dim, dw_size, mlp_ratio=2, square_kernel_size=3, ratio=1, norm_cfg=_BN):
        self.transformer_blocks = nn.ModuleList([
            RCM(embedding_dim, mlp_ratio=mlp_ratio, dw_size=dw_size, square_kernel_size=square_kernel_size,
                ratio=ratio, norm_cfg=norm_cfg) for _ in range(block_num)])

    def execute(self, x):
        for blk in self.transformer_blocks:
            x = blk(x)
        return x

    def onnx(self, g, x):
        for blk in self.transformer_blocks:
            x = g.call(blk, x)
        return x


def pyramid_pool_agg(inputs, stride=2):
    """Every map adaptive-average-pooled to ``((H-1)//stride+1, (W-1)//stride+1)`` of the last one, concatenated."""
    H, W = inputs[-1].shape[2:]
    size = ((H - 1) // stride + 1, (W - 1) // stride + 1)
    return jt.concat([adaptive_avg_pool2d(x, size) for x in inputs], dim=1)


def h_sigmoid(x):
    return jt.clamp(x + 3.0, 0.0, 6.0) / 6.0


def h_sigmoid_onnx(g, x):
    return g.op("Div", g.op("Clip", g.op("Add", x, g.const(3.0)), g.const(0.0), g.const(6.0)), g.const(6.0))


class FuseBlockMulti(nn.Module):
    """Spatial feature reconstruction: ``fuse1(x_l) * up(h_sigmoid(fuse2(x_h)))`` (1x1 conv + BN each)."""

    def __init__(self, inp, oup, norm_cfg=dict(type="SyncBN", requires_grad=True)):
        self.fuse1 = ConvModule(inp, oup, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.fuse2 = ConvModule(inp, oup, 1, norm_cfg=norm_cfg, act_cfg=None)

    def execute(self, x_l, x_h):
        sig = resize(h_sigmoid(self.fuse2(x_h)), x_l.shape[2:], "bilinear", False)
        return self.fuse1(x_l) * sig

    def onnx(self, g, x_l, x_h):
        sig = g.resize(h_sigmoid_onnx(g, g.call(self.fuse2, x_h)), like=x_l)
        return g.op("Mul", g.call(self.fuse1, x_l), sig)


def spatial_gather(feats, probs, scale=1.0):
    """OCR-style class centres: ``softmax_over_pixels(probs) @ feats^T`` -> (B, C, K, 1)."""
    B, K, H, W = probs.shape
    C = feats.shape[1]
    p = softmax(scale * probs.reshape((B, K, H * W)), dim=2)
    ctx = bmm(p, feats.reshape((B, C, H * W)), trans_b=True)               # (B, K, C)
    return ctx.transpose(0, 2, 1).reshape((B, C, K, 1))


def spatial_gather_onnx(g, feats, probs, scale=1.0):
    flat = g.reshape(probs, [0, 0, -1])
    p = g.softmax(flat if scale == 1.0 else g.op("Mul", flat, g.const(scale)), axis=2)
    ctx = g.matmul(p, g.reshape(feats, [0, 0, -1]), trans_b=True)                 # (B, K, C)
    return g.reshape(g.transpose(ctx, [0, 2, 1]), [0, 0, -1, 1])


class DPGHead(nn.Module):
    """Dynamic Prototype Guided head (``pool='att'``, ``fusions=['channel_mul']``).

    ``ctx = sum_k softmax_k(conv_mask(y)) y_k`` over the K class prototypes ``y`` (B,C,K,1);
    ``out = x * sigmoid(conv(ReLU(LN(conv(ctx)))))``.
    """

    def __init__(self, in_ch, mid_ch):
        self.conv_mask = conv2d(in_ch, 1, 1)
        self.channel_mul_conv = nn.Sequential(conv2d(in_ch, mid_ch, 1), ChannelLayerNorm(mid_ch), nn.ReLU(),
                                              conv2d(mid_ch, in_ch, 1))

    def execute(self, x, y):
        B, C, K, _ = y.shape
        mask = softmax(self.conv_mask(y).reshape((B, 1, K)), dim=2)          # (B, 1, K)
        ctx = bmm(y.reshape((B, C, K)), mask, trans_b=True).reshape((B, C, 1, 1))
        return x * jt.sigmoid(self.channel_mul_conv(ctx))

    def onnx(self, g, x, y):
        mask = g.softmax(g.reshape(g.call(self.conv_mask, y), [0, 1, -1]), axis=2)   # (B, 1, K)
        ctx = g.reshape(g.matmul(g.reshape(y, [0, 0, -1]), mask, trans_b=True), [0, 0, 1, 1])
        return g.op("Mul", x, g.op("Sigmoid", g.call(self.channel_mul_conv, ctx)))


class ChannelLayerNorm(nn.Module):
    """``nn.LayerNorm([C, 1, 1])`` on (B, C, 1, 1): normalise over C; weight/bias of shape (C, 1, 1)."""

    def __init__(self, num_features, eps=1e-5):
        self.eps = eps
        self.weight = jt.ones((num_features, 1, 1), "float32")
        self.bias = jt.zeros((num_features, 1, 1), "float32")

    def execute(self, x):
        _, centered, var = centered_variance(x, [1, 2, 3])
        return centered / jt.sqrt(var + self.eps) * self.weight + self.bias

    def onnx(self, g, x):
        return affine_onnx(g, g.normalize(x, [1, 2, 3], self.eps), self.weight, self.bias)


@MODELS.register()
class CGRSeg(BaseDecodeHead):
    """CGRSeg decode head.

    Args (besides BaseDecodeHead's; ``in_index`` [1,2,3], ``channels`` 128 (T) / 256 (B, L)):
        is_dw: ``linear_fuse`` is a depthwise 1x1 conv (True in all variants).
        next_repeat: RCMs in the pyramid-context stack (T 5, B 6, L 5).
        mr: MLP ratio of the RCMs (2).
        dw_size / neck_size: band kernel of the per-level / pyramid RCMs (T, B 11; L 9).
        square_kernel_size: the local depthwise conv of RCA (3).
        ratio: RCA channel reduction (1).
        module: 'RCA' (the only token mixer of the official configs).
        legacy_linear_fuse: ``linear_fuse`` as before the authors' commit 8ef4bcf: a plain (depthwise)
            1x1 conv with bias (keys ``linear_fuse.weight/bias``), no BN and no activation; for
            checkpoints trained with that version.  Default: the current ConvModule (conv, BN, ReLU).
        rcm_norm_cfg: the norms inside the RCMs (10 in T): plain ``BN`` officially, also under a SyncBN
            config (per-process statistics, as the authors trained); ``SyncBN`` synchronises them too.
    """

    def __init__(self, is_dw=False, next_repeat=4, mr=2, dw_size=7, neck_size=3, square_kernel_size=1,
                 module="RCA", ratio=1, legacy_linear_fuse=False, rcm_norm_cfg=_BN, **kwargs):
        super().__init__(input_transform="multiple_select", **kwargs)
        if module != "RCA":
            raise NotImplementedError(f"CGRSeg: module {module!r}; only 'RCA' (every official config) is implemented")
        ch = self.channels
        if legacy_linear_fuse:
            self.linear_fuse = conv2d(ch, ch, 1, groups=ch if is_dw else 1)
        else:
            self.linear_fuse = ConvModule(ch, ch, 1, groups=ch if is_dw else 1, norm_cfg=self.norm_cfg,
                                          act_cfg=self.act_cfg)
        total = sum(self.in_channels)
        self.trans = NextLayer(next_repeat, total, dw_size=neck_size, mlp_ratio=mr,
                               square_kernel_size=square_kernel_size, ratio=ratio, norm_cfg=rcm_norm_cfg)
        self.SIM = nn.ModuleList([FuseBlockMulti(c, ch, self.norm_cfg) for c in self.in_channels])
        self.meta = nn.ModuleList([RCM(c, mlp_ratio=mr, dw_size=dw_size, square_kernel_size=square_kernel_size,
                                       ratio=ratio, norm_cfg=rcm_norm_cfg) for c in self.in_channels])
        self.conv = nn.ModuleList([conv2d(ch, c, 1) for c in self.in_channels[:-1]])
        self.lgc = DPGHead(ch, ch)

    def _fuse_levels(self, xx):
        """Pyramid context, then top-down reconstruction; the stride-8 feature map (B, channels, H8, W8)."""
        out = self.trans(pyramid_pool_agg(xx, 2))
        f_cat = jt.split(out, self.in_channels, dim=1)
        results = []
        for i in range(len(xx) - 1, -1, -1):
            local = xx[i]
            if i != len(xx) - 1:
                local = local + self.conv[i](resize(results[-1], xx[i].shape[2:], "bilinear", False))
            results.append(self.SIM[i](self.meta[i](local), f_cat[i]))
        return results[-1]

    def execute(self, inputs):
        x = self._fuse_levels(self._transform_inputs(inputs))
        prev = self.cls_seg(self.linear_fuse(x))
        context = spatial_gather(x, prev)
        return self.cls_seg(self.lgc(x, context) + x)

    onnx_fixed_shape = "its pyramid pooling sizes follow the input size"

    def onnx(self, g, inputs):
        xx = self._transform_inputs(inputs)
        shapes = self._transform_inputs(g.static_shape(self))
        H, W = shapes[-1][2:]
        size = ((H - 1) // 2 + 1, (W - 1) // 2 + 1)
        pooled = [adaptive_avg_pool2d_onnx(g, x, s[2:], size) for x, s in zip(xx, shapes)]
        out = g.call(self.trans, g.op("Concat", *pooled, axis=1))
        f_cat = g.op("Split", out, g.ints(self.in_channels), axis=1, outputs=len(self.in_channels))
        results = []
        for i in range(len(xx) - 1, -1, -1):
            local = xx[i]
            if i != len(xx) - 1:
                local = g.op("Add", local, g.call(self.conv[i], g.resize(results[-1], like=xx[i])))
            results.append(g.call(self.SIM[i], g.call(self.meta[i], local), f_cat[i]))
        x = results[-1]
        prev = self.cls_seg_onnx(g, g.call(self.linear_fuse, x))
        context = spatial_gather_onnx(g, x, prev)
        return self.cls_seg_onnx(g, g.op("Add", g.call(self.lgc, x, context), x))


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)
# CGRSeg's get_flops is mmcv's module counter; torchprofile rules are given for comparison with SegNeXt.

def _rca_macs(self, convention, inputs, out):
    B, C, H, W = inputs[0].shape
    if convention == "torchprofile":
        return B * C * (H + W) + numel(out)   # two adaptive pools, att * loc
    return 2 * numel(inputs[0])   # nn.AdaptiveAvgPool2d (None,1) and (1,None): one per input element each


def _rcm_macs(self, convention, inputs, out):
    return numel(out) if convention == "torchprofile" else 0   # * gamma


def _fuse_block_macs(self, convention, inputs, out):
    if convention == "torchprofile":
        return 4 * numel(out) + numel(out)   # bilinear up of the gate (to x_l's size), fuse1 * gate
    x_h = inputs[1]
    return x_h.shape[0] * self.fuse2.conv.out_channels * x_h.shape[2] * x_h.shape[3]   # h_sigmoid's nn.ReLU6


def _head_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return 0
    xx = [inputs[0][i] for i in self.in_index]
    B = xx[0].shape[0]
    H32, W32 = xx[-1].shape[2:]
    pooled = sum(f.shape[1] for f in xx) * ((H32 - 1) // 2 + 1) * ((W32 - 1) // 2 + 1) * B
    ups = sum(4 * B * self.channels * f.shape[2] * f.shape[3] for f in xx[:-1])   # results[-1] resized to xx[i]
    K, (h8, w8) = self.num_classes, xx[0].shape[2:]
    gather = B * K * h8 * w8 * self.channels + B * K * self.channels   # probs @ x^T, DPG context y @ mask
    return pooled + ups + gather + B * self.channels * h8 * w8        # x * sigmoid(gate)


RCA.count_macs = _rca_macs
RCM.count_macs = _rcm_macs
FuseBlockMulti.count_macs = _fuse_block_macs
CGRSeg.count_macs = _head_macs
ChannelLayerNorm.count_macs = norm_macs
for _cls in (ConvMlp, NextLayer, DPGHead):
    _cls.count_macs = no_own_macs


# ----------------------------------------------------------------------------- checkpoints (jseg.checkpoint)

def _checkpoint_hint(report):
    if "decode_head.linear_fuse.weight" in report.unexpected and \
            "decode_head.linear_fuse.conv.weight" in report.missing:
        return ("a CGRSeg checkpoint from before the authors' commit 8ef4bcf, where linear_fuse was a plain "
                "conv with bias: build the head with --cfg-options model.decode_head.legacy_linear_fuse=True")
    if "decode_head.linear_fuse.conv.weight" in report.unexpected and \
            "decode_head.linear_fuse.weight" in report.missing:
        return ("a CGRSeg checkpoint with the current linear_fuse (ConvModule: conv + BN + ReLU): build the "
                "head without legacy_linear_fuse")
    return None


CGRSeg.checkpoint_rules = CheckpointRules(hint=_checkpoint_hint)
