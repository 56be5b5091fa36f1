"""BaseDecodeHead: input selection, the final classifier and the losses.

Official source: SegNeXt @ c87bcae ``mmseg/models/decode_heads/decode_head.py``
(mmseg 0.24.1).
"""
from jittor import nn

from ...registry import MODELS
from ..layers import Dropout2d, conv2d, constant_init_, float32_region, normal_init_, resize, to_float32
from ..losses import accuracy


class BaseDecodeHead(nn.Module):
    """Common decode-head parts.

    Args:
        in_channels: channels of the selected backbone outputs (int or list).
        channels: channels before the classifier.
        num_classes: output classes.
        dropout_ratio: Dropout2d before ``conv_seg`` (0.1 officially).
        norm_cfg / act_cfg: for the head's ConvModules (SegNeXt: GN(32) / ReLU).
        in_index: which backbone outputs to use.
        input_transform: None (one input) or ``'multiple_select'`` (a list).
        loss_decode: loss config (``CrossEntropyLoss``).
        ignore_index: label ignored by loss and accuracy (255).
        align_corners: for every bilinear resize (False).
    """

    def __init__(self, in_channels, channels, *, num_classes, dropout_ratio=0.1, conv_cfg=None, norm_cfg=None,
                 act_cfg=dict(type="ReLU"), in_index=-1, input_transform=None,
                 loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                 ignore_index=255, sampler=None, align_corners=False, init_cfg=None):
        if conv_cfg is not None:
            raise NotImplementedError("decode head: conv_cfg other than None is not supported")
        if sampler is not None:
            raise NotImplementedError("decode head: pixel samplers are not supported")
        if input_transform == "multiple_select":
            if not isinstance(in_channels, (list, tuple)) or not isinstance(in_index, (list, tuple)) \
                    or len(in_channels) != len(in_index):
                raise ValueError(f"multiple_select needs in_channels {in_channels} and in_index {in_index} "
                                 "as lists of equal length")
            in_channels = list(in_channels)
            in_index = list(in_index)
        elif input_transform is not None:
            raise ValueError(f"input_transform {input_transform!r} is not supported (None or 'multiple_select')")
        self.in_channels = in_channels
        self.channels = channels
        self.num_classes = num_classes
        self.dropout_ratio = dropout_ratio
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.in_index = in_index
        self.input_transform = input_transform
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.loss_decode = MODELS.build(loss_decode)
        self.conv_seg = conv2d(channels, num_classes, 1)
        normal_init_(self.conv_seg.weight, 0.01)
        constant_init_(self.conv_seg.bias, 0.0)
        self.dropout = Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

    def _transform_inputs(self, inputs):
        if self.input_transform == "multiple_select":
            return [inputs[i] for i in self.in_index]
        return inputs[self.in_index]

    def cls_seg(self, feat):
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.conv_seg(feat)

    def cls_seg_onnx(self, g, feat):
        return g.call(self.conv_seg, feat)   # Dropout2d: the identity at inference

    def losses(self, seg_logit, seg_label):
        """``{'loss_ce', 'acc_seg'}`` on logits upsampled to the label size.  ``seg_label``: (B, H, W) ints."""
        if seg_label.ndim == 4:
            seg_label = seg_label.squeeze(1)
        with float32_region():  # mixed precision: the loss in float32
            seg_logit = resize(to_float32(seg_logit), seg_label.shape[1:], "bilinear", self.align_corners)
            loss = self.loss_decode(seg_logit, seg_label, ignore_index=self.ignore_index)
        return {self.loss_decode.loss_name: loss,
                "acc_seg": accuracy(seg_logit, seg_label, ignore_index=self.ignore_index)}

    def forward_train(self, inputs, seg_label):
        return self.losses(self(inputs), seg_label)
