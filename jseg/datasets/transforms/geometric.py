"""Resize, RandomCrop, RandomFlip, Pad, ResizeToMultiple with mmseg 0.x / mmcv 1.x semantics.

Images are resized bilinearly (``cv2.INTER_LINEAR``), label maps with nearest
neighbour only, so label values stay exact.
"""
import cv2
import numpy as np

from .compose import TRANSFORMS, DataError, get_rng

_INTERP = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
           "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}


def imresize(img, size, interpolation="bilinear"):
    """Resize to ``size = (w, h)``."""
    return cv2.resize(img, (int(size[0]), int(size[1])), interpolation=_INTERP[interpolation])


def rescale_size(w, h, scale):
    """mmcv ``rescale_size``: keep the aspect ratio, long edge <= max(scale), short edge <= min(scale).

    Returns ``((new_w, new_h), scale_factor)``; sizes rounded as ``int(x * factor + 0.5)``.
    """
    if isinstance(scale, (int, float)):
        factor = float(scale)
    else:
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return (int(w * factor + 0.5), int(h * factor + 0.5)), factor


def _seg_fields(results):
    return results.get("seg_fields", [])


@TRANSFORMS.register()
class Resize:
    """Resize to a scale chosen from ``img_scale`` (``(long, short)`` tuples) and ``ratio_range``.

    * ``ratio_range=(a, b)``: scale = ``(int(s0 * r), int(s1 * r))`` with ``r ~ U[a, b)`` (s = img_scale,
      or the image size if img_scale is None);
    * several ``img_scale`` tuples: ``multiscale_mode='range'`` samples long/short edges uniformly between
      them, ``'value'`` picks one;
    * ``keep_ratio=True``: resize by ``min(max(scale)/long, min(scale)/short)`` (mmcv ``imrescale``);
      otherwise to exactly ``scale = (w, h)``.
    A ``results['scale']`` set earlier (by MultiScaleFlipAug) is used as it is.
    """

    def __init__(self, img_scale=None, multiscale_mode="range", ratio_range=None, keep_ratio=True, min_size=None):
        if img_scale is None:
            self.img_scale = None
        elif isinstance(img_scale, list):
            self.img_scale = [tuple(s) for s in img_scale]
        else:
            self.img_scale = [tuple(img_scale)]
        if ratio_range is not None and self.img_scale is not None and len(self.img_scale) != 1:
            raise ValueError("Resize: ratio_range needs exactly one img_scale")
        if multiscale_mode not in ("range", "value"):
            raise ValueError(f"Resize: multiscale_mode must be 'range' or 'value', got {multiscale_mode!r}")
        if min_size is not None:
            raise NotImplementedError("Resize: min_size is not supported")
        self.multiscale_mode = multiscale_mode
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio

    def _random_scale(self, results, rng):
        if self.ratio_range is not None:
            if self.img_scale is None:
                h, w = results["img"].shape[:2]
                base = (w, h)
            else:
                base = self.img_scale[0]
            lo, hi = self.ratio_range
            ratio = rng.random() * (hi - lo) + lo
            return (int(base[0] * ratio), int(base[1] * ratio))
        if self.img_scale is None:
            raise ValueError("Resize: img_scale is None and no ratio_range/results['scale'] given")
        if len(self.img_scale) == 1:
            return self.img_scale[0]
        if self.multiscale_mode == "value":
            return self.img_scale[int(rng.integers(len(self.img_scale)))]
        longs = [max(s) for s in self.img_scale]
        shorts = [min(s) for s in self.img_scale]
        return (int(rng.integers(min(longs), max(longs) + 1)), int(rng.integers(min(shorts), max(shorts) + 1)))

    def __call__(self, results):
        if "scale" not in results:
            results["scale"] = self._random_scale(results, get_rng(results))
        scale = results["scale"]
        img = results["img"]
        h, w = img.shape[:2]
        if self.keep_ratio:
            size, _ = rescale_size(w, h, scale)
        else:
            size = (int(scale[0]), int(scale[1]))
        new = imresize(img, size, "bilinear")
        new_h, new_w = new.shape[:2]
        results["img"] = new
        results["img_shape"] = results["pad_shape"] = new.shape
        results["scale_factor"] = np.array([new_w / w, new_h / h, new_w / w, new_h / h], dtype=np.float32)
        results["keep_ratio"] = self.keep_ratio
        for key in _seg_fields(results):
            results[key] = imresize(results[key], size, "nearest")
        return results


@TRANSFORMS.register()
class RandomCrop:
    """Random ``crop_size = (h, w)`` crop; with ``cat_max_ratio < 1`` retried up to 10 times until no
    single class (``ignore_index`` excluded) covers ``>= cat_max_ratio`` of the crop and >1 class is present."""

    def __init__(self, crop_size, cat_max_ratio=1.0, ignore_index=255):
        if crop_size[0] <= 0 or crop_size[1] <= 0:
            raise ValueError(f"RandomCrop: crop_size must be positive, got {crop_size}")
        self.crop_size = tuple(crop_size)
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index

    def _bbox(self, img, rng):
        margin_h = max(img.shape[0] - self.crop_size[0], 0)
        margin_w = max(img.shape[1] - self.crop_size[1], 0)
        y1 = int(rng.integers(0, margin_h + 1))
        x1 = int(rng.integers(0, margin_w + 1))
        return y1, y1 + self.crop_size[0], x1, x1 + self.crop_size[1]

    @staticmethod
    def crop(img, bbox):
        y1, y2, x1, x2 = bbox
        return img[y1:y2, x1:x2, ...]

    def __call__(self, results):
        rng = get_rng(results)
        img = results["img"]
        bbox = self._bbox(img, rng)
        if self.cat_max_ratio < 1.0 and "gt_semantic_seg" in results:
            for _ in range(10):
                labels, counts = np.unique(self.crop(results["gt_semantic_seg"], bbox), return_counts=True)
                counts = counts[labels != self.ignore_index]
                if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                bbox = self._bbox(img, rng)
        img = self.crop(img, bbox)
        results["img"] = img
        results["img_shape"] = img.shape
        for key in _seg_fields(results):
            results[key] = self.crop(results[key], bbox)
        return results


@TRANSFORMS.register()
class RandomFlip:
    """Flip image and labels together with probability ``prob`` (a preset ``results['flip']`` wins)."""

    def __init__(self, prob=None, direction="horizontal"):
        if prob is not None and not 0 <= prob <= 1:
            raise ValueError(f"RandomFlip: prob must be in [0, 1], got {prob}")
        if direction not in ("horizontal", "vertical"):
            raise ValueError(f"RandomFlip: direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.prob = prob
        self.direction = direction

    def __call__(self, results):
        if "flip" not in results:
            results["flip"] = bool(self.prob is not None and get_rng(results).random() < self.prob)
        if "flip_direction" not in results:
            results["flip_direction"] = self.direction
        if results["flip"]:
            axis = 1 if results["flip_direction"] == "horizontal" else 0
            results["img"] = np.ascontiguousarray(np.flip(results["img"], axis=axis))
            for key in _seg_fields(results):
                results[key] = np.ascontiguousarray(np.flip(results[key], axis=axis))
        return results


@TRANSFORMS.register()
class Pad:
    """Pad bottom/right to ``size = (h, w)`` or to a multiple of ``size_divisor``; labels with ``seg_pad_val``."""

    def __init__(self, size=None, size_divisor=None, pad_val=0, seg_pad_val=255):
        if (size is None) == (size_divisor is None):
            raise ValueError("Pad: give exactly one of size and size_divisor")
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @staticmethod
    def pad(img, shape, value):
        h, w = img.shape[:2]
        if shape[0] < h or shape[1] < w:
            raise DataError(f"Pad: image {h}x{w} is larger than the pad size {shape[0]}x{shape[1]}")
        widths = [(0, shape[0] - h), (0, shape[1] - w)] + [(0, 0)] * (img.ndim - 2)
        return np.pad(img, widths, mode="constant", constant_values=value)

    def __call__(self, results):
        img = results["img"]
        if self.size is not None:
            shape = self.size
        else:
            d = self.size_divisor
            shape = (int(np.ceil(img.shape[0] / d)) * d, int(np.ceil(img.shape[1] / d)) * d)
        padded = self.pad(img, shape, self.pad_val)
        results["img"] = padded
        results["pad_shape"] = padded.shape
        results["pad_fixed_size"] = self.size
        results["pad_size_divisor"] = self.size_divisor
        for key in _seg_fields(results):
            results[key] = self.pad(results[key], padded.shape[:2], self.seg_pad_val)
        return results


@TRANSFORMS.register()
class ResizeToMultiple:
    """Resize (not pad) up to the next multiple of ``size_divisor`` on each side (ADE20K test pipeline)."""

    def __init__(self, size_divisor=32, interpolation=None):
        self.size_divisor = size_divisor
        self.interpolation = interpolation or "bilinear"

    def _target(self, h, w):
        d = self.size_divisor
        return int(np.ceil(w / d)) * d, int(np.ceil(h / d)) * d

    def __call__(self, results):
        img = results["img"]
        size = self._target(*img.shape[:2])
        img = imresize(img, size, self.interpolation)
        results["img"] = img
        results["img_shape"] = results["pad_shape"] = img.shape
        for key in _seg_fields(results):
            results[key] = imresize(results[key], self._target(*results[key].shape[:2]), "nearest")
        return results


@TRANSFORMS.register()
class AlignedResize(Resize):
    """NVlabs SegFormer's test-time resize: ``Resize`` (keep ratio) and then, again, a resize (not a pad)
    to the next multiple of ``size_divisor`` (NVlabs ``mmseg/datasets/pipelines/transforms.py``);
    the same as ``Resize`` followed by ``ResizeToMultiple``."""

    def __init__(self, img_scale=None, multiscale_mode="range", ratio_range=None, keep_ratio=True,
                 size_divisor=32, min_size=None):
        super().__init__(img_scale, multiscale_mode, ratio_range, keep_ratio, min_size)
        self.align = ResizeToMultiple(size_divisor)

    def __call__(self, results):
        return self.align(super().__call__(results))
