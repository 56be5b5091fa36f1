"""SegFormer's all-MLP decoder (the NVlabs head, not mmseg 1.x's ``SegformerHead``).

Official source: ``NVlabs/SegFormer`` @ 65fa8cf,
``mmseg/models/decode_heads/segformer_head.py``; paper Sec. 3.2, Eq. 4:

    F_i = Linear(C_i, E)(F_i), upsampled to H/4 x W/4      (i = 1..4)
    F   = Linear(4E, E)(Concat(F_4, F_3, F_2, F_1))         (1x1 conv, no bias, BN, ReLU)
    M   = Linear(E, N_cls)(F)                                (after Dropout2d)

The concat order is c4, c3, c2, c1.  ``conv_seg`` of BaseDecodeHead exists
(officially created, kept in the checkpoints) but is never used.
"""
import jittor as jt
from jittor import nn

from ...checkpoint import CheckpointRules
from ...registry import MODELS
from ..layers import ConvModule, Linear, conv2d, no_own_macs, resize
from .decode_head import BaseDecodeHead


class MLP(nn.Module):
    """``Linear(input_dim, embed_dim)`` on the flattened map (key ``linear_cN.proj``); returns tokens."""

    def __init__(self, input_dim=2048, embed_dim=768):
        self.proj = Linear(input_dim, embed_dim)

    def execute(self, x):
        B, C, H, W = x.shape
        return self.proj(x.reshape((B, C, H * W)).transpose(0, 2, 1))

    def onnx(self, g, x):
        return g.call(self.proj, g.transpose(g.reshape(x, [0, 0, -1]), [0, 2, 1]))


@MODELS.register()
class SegFormerHead(BaseDecodeHead):
    """All-MLP decoder.

    Args (besides BaseDecodeHead's; ``in_index`` [0,1,2,3], ``channels`` only sizes the unused ``conv_seg``):
        feature_strides: strides of the four inputs ([4, 8, 16, 32]).
        decoder_params: ``dict(embed_dim=E)`` (256 for B0/B1, 768 for B2-B5).
    """

    def __init__(self, feature_strides=(4, 8, 16, 32), decoder_params=dict(embed_dim=768), **kwargs):
        super().__init__(input_transform="multiple_select", **kwargs)
        if len(feature_strides) != len(self.in_channels) or list(feature_strides) != sorted(feature_strides):
            raise ValueError(f"SegFormerHead: feature_strides {feature_strides} must be increasing and match "
                             f"in_channels {self.in_channels}")
        self.feature_strides = list(feature_strides)
        E = decoder_params["embed_dim"]
        self.embed_dim = E
        c1, c2, c3, c4 = self.in_channels
        self.linear_c4 = MLP(c4, E)
        self.linear_c3 = MLP(c3, E)
        self.linear_c2 = MLP(c2, E)
        self.linear_c1 = MLP(c1, E)
        self.linear_fuse = ConvModule(4 * E, E, 1, norm_cfg=self.norm_cfg)
        self.linear_pred = conv2d(E, self.num_classes, 1)

    def execute(self, inputs):
        c1, c2, c3, c4 = self._transform_inputs(inputs)
        size = c1.shape[2:]
        maps = []
        for c, mlp in ((c4, self.linear_c4), (c3, self.linear_c3), (c2, self.linear_c2), (c1, self.linear_c1)):
            B, _, h, w = c.shape
            m = mlp(c).transpose(0, 2, 1).reshape((B, self.embed_dim, h, w))
            maps.append(m if c is c1 else resize(m, size, "bilinear", self.align_corners))
        x = self.linear_fuse(jt.concat(maps, dim=1))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.linear_pred(x)

    def onnx(self, g, inputs):
        c1, c2, c3, c4 = self._transform_inputs(inputs)
        maps = []
        for c, mlp in ((c4, self.linear_c4), (c3, self.linear_c3), (c2, self.linear_c2), (c1, self.linear_c1)):
            shape = g.concat_shape(g.shape(c, 0, 1), [self.embed_dim], g.shape(c, 2, 4))
            m = g.reshape(g.transpose(g.call(mlp, c), [0, 2, 1]), shape)
            maps.append(m if c is c1 else g.resize(m, like=c1, align_corners=self.align_corners))
        return g.call(self.linear_pred, g.call(self.linear_fuse, g.op("Concat", *maps, axis=1)))


# ----------------------------------------------------------------------------- operation counts (jseg.analysis)

def _head_macs(self, convention, inputs, out):
    if convention != "torchprofile":
        return 0   # mmcv does not count F.interpolate
    c1 = inputs[0][self.in_index[0]]
    H, W = c1.shape[2:]
    return 3 * 4 * c1.shape[0] * self.embed_dim * H * W   # _c4, _c3, _c2 resized to the c1 size


SegFormerHead.count_macs = _head_macs
MLP.count_macs = no_own_macs


# ----------------------------------------------------------------------------- checkpoints (jseg.checkpoint)

def _checkpoint_hint(report):
    if any(k.startswith(("decode_head.fusion_conv.", "decode_head.convs.")) for k in report.unexpected):
        return ("this checkpoint has mmseg-1.x's SegformerHead, a different head from NVlabs' all-MLP "
                "decoder: only its backbone can be loaded, e.g. load_checkpoint(model.backbone, path)")
    return None


SegFormerHead.checkpoint_rules = CheckpointRules(hint=_checkpoint_hint)
