"""PhotoMetricDistortion and Normalize (mmseg 0.x / mmcv 1.x semantics, BGR uint8 input)."""
import cv2
import numpy as np

from .compose import TRANSFORMS, get_rng


def _convert(img, alpha=1.0, beta=0.0):
    img = img.astype(np.float32) * alpha + beta
    return np.clip(img, 0, 255).astype(np.uint8)


@TRANSFORMS.register()
class PhotoMetricDistortion:
    """Each with probability 1/2, in this order: brightness (+U(-delta, delta)); contrast (x U(range)),
    either here (mode 1) or last (mode 0); saturation (x U(range) on HSV S); hue (+randint(-delta, delta)
    mod 180 on HSV H).  Every step clips to [0, 255] and returns uint8."""

    def __init__(self, brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5), hue_delta=18):
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    def brightness(self, img, rng):
        if rng.integers(2):
            return _convert(img, beta=rng.uniform(-self.brightness_delta, self.brightness_delta))
        return img

    def contrast(self, img, rng):
        if rng.integers(2):
            return _convert(img, alpha=rng.uniform(self.contrast_lower, self.contrast_upper))
        return img

    def saturation(self, img, rng):
        if rng.integers(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=rng.uniform(self.saturation_lower, self.saturation_upper))
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img

    def hue(self, img, rng):
        if rng.integers(2) and self.hue_delta > 0:
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            shift = int(rng.integers(-self.hue_delta, self.hue_delta))
            hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + shift) % 180
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return img

    def __call__(self, results):
        rng = get_rng(results)
        img = results["img"]
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        img = self.brightness(img, rng)
        mode = rng.integers(2)
        if mode == 1:
            img = self.contrast(img, rng)
        img = self.saturation(img, rng)
        img = self.hue(img, rng)
        if mode == 0:
            img = self.contrast(img, rng)
        results["img"] = img
        return results


@TRANSFORMS.register()
class Normalize:
    """``(img - mean) / std`` in float32, after BGR -> RGB if ``to_rgb`` (mean/std given in RGB order)."""

    def __init__(self, mean, std, to_rgb=True):
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        self.to_rgb = to_rgb

    def __call__(self, results):
        img = results["img"].astype(np.float32)
        if self.to_rgb:
            img = img[..., ::-1]
        mean = self.mean.astype(np.float64).reshape(1, -1)
        stdinv = 1.0 / self.std.astype(np.float64).reshape(1, -1)
        results["img"] = np.ascontiguousarray(((img - mean) * stdinv).astype(np.float32))
        results["img_norm_cfg"] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results
