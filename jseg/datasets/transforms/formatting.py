"""DefaultFormatBundle, ImageToTensor, Collect: the arrays a model consumes (NumPy, CHW)."""
import numpy as np

from .compose import TRANSFORMS

DEFAULT_META_KEYS = ("filename", "ori_filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip",
                     "flip_direction", "img_norm_cfg")


def _chw(img):
    if img.ndim < 3:
        img = img[..., None]
    return np.ascontiguousarray(img.transpose(2, 0, 1))


@TRANSFORMS.register()
class DefaultFormatBundle:
    """``img`` -> (C, H, W) float32; ``gt_semantic_seg`` -> (1, H, W) int64.  Stays NumPy: Jittor
    Vars are made in the main process (faster, and keeps int64)."""

    def __call__(self, results):
        if "img" in results:
            results["img"] = _chw(results["img"]).astype(np.float32, copy=False)
        if "gt_semantic_seg" in results:
            results["gt_semantic_seg"] = results["gt_semantic_seg"][None].astype(np.int64)
        return results


@TRANSFORMS.register()
class ImageToTensor:
    """(H, W, C) -> (C, H, W) for ``keys`` (test pipeline)."""

    def __init__(self, keys=("img",)):
        self.keys = tuple(keys)

    def __call__(self, results):
        for k in self.keys:
            results[k] = _chw(results[k]).astype(np.float32, copy=False)
        return results


@TRANSFORMS.register()
class Collect:
    """Keep ``keys`` and gather ``meta_keys`` into ``img_metas``."""

    def __init__(self, keys, meta_keys=DEFAULT_META_KEYS):
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results):
        missing = [k for k in self.keys if k not in results]
        if missing:
            raise KeyError(f"Collect: keys {missing} are not produced by the pipeline (have {sorted(results)})")
        out = {k: results[k] for k in self.keys}
        out["img_metas"] = {k: results[k] for k in self.meta_keys if k in results}
        return out
