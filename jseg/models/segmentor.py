"""EncoderDecoder segmentor: training forward, whole/slide inference, flip and multi-scale TTA.

Official source: SegNeXt @ c87bcae ``mmseg/models/segmentors/encoder_decoder.py``
(mmseg 0.24.1).  The inference conventions kept exactly:
* ``encode_decode`` resizes the head logits to the input size (bilinear, align_corners=False);
* whole mode then resizes again to the original image size when rescaling;
* slide mode sums crop logits on a canvas and divides by the per-pixel count
  (official crop grid), softmax after averaging;
* TTA averages softmax probabilities over scales/flips, a flipped input's
  probabilities being flipped back first.
"""
import numpy as np
import jittor as jt
from jittor import nn

from ..registry import MODELS
from .layers import no_own_macs, resize
from .kernels import argmax
from .random_streams import random_streams


def slide_grid(height, width, crop_size, stride):
    """Official crop boxes ``(y1, y2, x1, x2)`` in row-major order (last crop shifted back inside)."""
    h_crop, w_crop = crop_size
    h_stride, w_stride = stride
    h_grids = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * h_stride, w_idx * w_stride
            y2, x2 = min(y1 + h_crop, height), min(x1 + w_crop, width)
            boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return boxes


@MODELS.register()
class EncoderDecoder(nn.Module):
    """Backbone + decode head.

    Args:
        backbone / decode_head: configs (dicts with ``type``).
        neck / auxiliary_head: must be None (SegNeXt has neither).
        train_cfg: unused (kept for config compatibility).
        test_cfg: ``dict(mode='whole')`` or ``dict(mode='slide', crop_size=(h, w), stride=(h, w))``.
        pretrained: path of backbone weights (same as ``backbone.pretrained``).
    """

    def __init__(self, backbone, decode_head, neck=None, auxiliary_head=None, train_cfg=None, test_cfg=None,
                 pretrained=None, init_cfg=None):
        if neck is not None or auxiliary_head is not None:
            raise NotImplementedError("EncoderDecoder: neck and auxiliary_head are not supported")
        backbone = dict(backbone)
        if pretrained is not None:
            backbone["pretrained"] = pretrained
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {"mode": "whole"})
        mode = self.test_cfg.get("mode", "whole")
        if mode not in ("whole", "slide"):
            raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got {mode!r}")
        if mode == "slide" and not ("crop_size" in self.test_cfg and "stride" in self.test_cfg):
            raise ValueError("test_cfg mode='slide' needs crop_size and stride")

    def init_weights(self):
        """Load the backbone's pretrained weights if configured (call after construction)."""
        return self.backbone.init_weights()

    # ------------------------------------------------------------------ forward
    def extract_feat(self, img):
        return self.backbone(img)

    def encode_decode(self, img):
        """Logits at the input resolution (head logits bilinearly resized)."""
        out = self.decode_head(self.extract_feat(img))
        return resize(out, img.shape[2:], "bilinear", self.align_corners)

    def onnx(self, g, img):
        """``encode_decode``: logits at the input size, before softmax."""
        out = g.call(self.decode_head, g.call(self.backbone, img))
        return g.resize(out, like=img, align_corners=self.align_corners)

    def forward_features(self, img):
        """Eval-style forward returning ``stage1..4``, ``head_logits`` and ``logits`` (for parity checks)."""
        feats = self.extract_feat(img)
        head_logits = self.decode_head(feats)
        out = {f"stage{i + 1}": f for i, f in enumerate(feats)}
        out["head_logits"] = head_logits
        out["logits"] = resize(head_logits, img.shape[2:], "bilinear", self.align_corners)
        return out

    def forward_train(self, img, gt_semantic_seg):
        """Losses dict with official names (``decode.loss_ce``, ``decode.acc_seg``)."""
        feats = self.extract_feat(img)
        losses = self.decode_head.forward_train(feats, gt_semantic_seg)
        return {f"decode.{k}": v for k, v in losses.items()}

    @staticmethod
    def parse_losses(losses):
        """Total loss = sum of entries whose name contains 'loss'; also returns float log values."""
        total = sum(v for k, v in losses.items() if "loss" in k)
        jt.sync(list(losses.values()) + [total])   # one pass for all of them, not one per .item()
        log_vars = {k: float(v.item()) for k, v in losses.items()}
        log_vars["loss"] = float(total.item())
        return total, log_vars

    def execute(self, img, gt_semantic_seg=None):
        if gt_semantic_seg is not None:
            return self.forward_train(img, gt_semantic_seg)
        return self.encode_decode(img)

    # ------------------------------------------------------------------ inference
    def slide_inference(self, img, ori_shape=None, rescale=False):
        """Averaged pre-softmax logits over the official crop grid (one encode_decode per crop)."""
        crop_size = tuple(int(v) for v in self.test_cfg["crop_size"])
        stride = tuple(int(v) for v in self.test_cfg["stride"])
        B, _, H, W = img.shape
        preds = jt.zeros((B, self.num_classes, H, W), dtype=img.dtype)
        count = np.zeros((H, W), dtype=np.float32)
        for y1, y2, x1, x2 in slide_grid(H, W, crop_size, stride):
            crop_logit = self.encode_decode(img[:, :, y1:y2, x1:x2])
            preds = preds + nn.pad(crop_logit, (x1, W - x2, y1, H - y2))
            count[y1:y2, x1:x2] += 1
        preds = preds / jt.array(count).reshape((1, 1, H, W))
        if rescale and ori_shape is not None:
            preds = resize(preds, ori_shape[:2], "bilinear", self.align_corners)
        return preds

    def whole_inference(self, img, ori_shape=None, rescale=False, img_shape=None):
        """Logits at the input size, or (rescale) at ``ori_shape``.  ``img_shape``: the image's size before
        the test pipeline padded it (mmseg 0.27: the padded area is cropped off before rescaling)."""
        seg_logit = self.encode_decode(img)
        if rescale and ori_shape is not None:
            if img_shape is not None and tuple(img_shape[:2]) != tuple(img.shape[2:]):
                seg_logit = seg_logit[:, :, :int(img_shape[0]), :int(img_shape[1])]
            seg_logit = resize(seg_logit, ori_shape[:2], "bilinear", self.align_corners)
        return seg_logit

    def inference(self, img, ori_shape=None, rescale=True, flip=False, flip_direction="horizontal", img_shape=None):
        """Softmax probabilities (B, K, h, w) at ``ori_shape`` (if rescale) for one test view.

        ``flip``: the view ``img`` was flipped; its probabilities are flipped back.
        ``img_shape``: the view's size before padding (whole mode crops the padding off).
        """
        if self.test_cfg.get("mode", "whole") == "slide":
            seg_logit = self.slide_inference(img, ori_shape, rescale)
        else:
            seg_logit = self.whole_inference(img, ori_shape, rescale, img_shape)
        output = nn.softmax(seg_logit, dim=1)
        if flip:
            output = output[:, :, :, ::-1] if flip_direction == "horizontal" else output[:, :, ::-1, :]
        return output

    def aug_test(self, views, ori_shape, rescale=True):
        """Average probabilities over test views.

        Args:
            views: list of ``(img, flip)``, ``(img, flip, direction)`` or ``(img, flip, direction, img_shape)``;
                each ``img`` is a normalised (B, 3, h, w) input prepared by the test pipeline (resized, flipped,
                padded; ``img_shape`` is its size before padding).
            ori_shape: (H, W) every view's probabilities are resized to.
        Returns: (B, K, H, W) averaged probabilities.
        """
        total = None
        for view in views:
            img, flip = view[0], view[1]
            direction = view[2] if len(view) > 2 else "horizontal"
            img_shape = view[3] if len(view) > 3 else None
            prob = self.inference(img, ori_shape, rescale, flip, direction, img_shape)
            total = prob if total is None else total + prob
        return total / len(views)

    def infer_test_sample(self, sample, ori_shape, sample_key=None):
        """Probabilities (K, H, W) NumPy for one test-pipeline sample (``img``: a list of (C, h, w) views,
        ``img_metas``: their flip flags); ``sample_key`` keys this image's random streams (see
        ``random_streams``: the same key, the same result)."""
        views = [(jt.array(np.array(v[None], copy=True)), m.get("flip", False),
                  m.get("flip_direction", "horizontal"), m.get("img_shape"))
                 for v, m in zip(sample["img"], sample["img_metas"])]
        with random_streams(None if sample_key is None else [sample_key]), jt.no_grad():
            return self.aug_test(views, ori_shape=tuple(ori_shape)).numpy()[0]

    def predict(self, img, scales=(1.0,), flip=False, ori_shape=None):
        """Label map (B, H, W) for normalised images, with optional multi-scale/flip TTA (sets eval mode).

        The model resizes the normalised input itself (bilinear) for each scale;
        the dataset test pipeline (which resizes raw images) gives mmseg's exact
        multi-scale inputs and should be preferred when reproducing paper numbers.
        """
        self.eval()
        H, W = img.shape[2:]
        ori_shape = tuple(ori_shape or (H, W))
        views = []
        for s in scales:
            scaled = img if s == 1.0 else resize(img, (int(H * s + 0.5), int(W * s + 0.5)), "bilinear", False)
            views.append((scaled, False))
            if flip:
                views.append((scaled[:, :, :, ::-1], True))
        with jt.no_grad():
            prob = self.aug_test(views, ori_shape)
            return argmax(prob, dim=1)


EncoderDecoder.count_macs = no_own_macs   # jseg.analysis counts the final logits resize itself
