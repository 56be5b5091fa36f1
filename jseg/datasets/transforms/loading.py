"""LoadImageFromFile, LoadAnnotations (mmseg 0.x ``datasets/pipelines/loading.py`` semantics)."""
import os

import cv2
import numpy as np
from PIL import Image

from .compose import TRANSFORMS, DataError


def _path(results, prefix_key, info_key):
    name = results[info_key]["filename"] if info_key == "img_info" else results[info_key]["seg_map"]
    prefix = results.get(prefix_key)
    return os.path.join(prefix, name) if prefix else name


def read_image(path, flag="color"):
    """BGR uint8 (H, W, 3) like ``mmcv.imread(path, 'color')``; one clear error if it cannot be read."""
    if not os.path.isfile(path):
        raise DataError(f"image file not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if flag == "color" else cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise DataError(f"cannot decode image {path}: not a readable image file (corrupted or unsupported)")
    return img


def read_label(path):
    """Label map as stored (palette PNG -> indices) as uint8 (H, W), like mmcv's pillow 'unchanged'.

    Every value survives exactly or the file is refused: a 16-bit or 32-bit map is accepted only if
    all its values fit 0..255 (a value of 258 is not silently read as 2); float, colour and
    multi-channel maps are refused with what was found.
    """
    if not os.path.isfile(path):
        raise DataError(f"annotation file not found: {path}")
    try:
        with Image.open(path) as im:
            mode = im.mode
            gt = np.array(im)
    except Exception as e:  # PIL raises many types for broken files
        raise DataError(f"cannot decode annotation {path}: {type(e).__name__}: {e}") from e
    if gt.ndim == 3 and gt.shape[2] == 1:
        gt = gt[:, :, 0]
    if gt.ndim != 2:
        raise DataError(f"annotation {path} is a {mode} image of shape {gt.shape}; expected a single-channel "
                        "label map of class ids (a grey or palette PNG), not a colour rendering")
    if gt.size == 0:
        raise DataError(f"annotation {path} is empty ({gt.shape[0]}x{gt.shape[1]})")
    if gt.dtype == np.uint8:
        return gt
    if gt.dtype == bool:
        return gt.astype(np.uint8)
    if not np.issubdtype(gt.dtype, np.integer):
        raise DataError(f"annotation {path} holds {gt.dtype} values (PIL mode {mode}); expected integer class ids")
    lo, hi = int(gt.min()), int(gt.max())
    if lo < 0 or hi > 255:
        raise DataError(f"annotation {path} is a {gt.dtype.itemsize * 8}-bit label map with values {lo}..{hi}; "
                        "label values must be 0..255 (class ids and the ignore index): re-encode it")
    return gt.astype(np.uint8)


@TRANSFORMS.register()
class LoadImageFromFile:
    """Read ``img_prefix/img_info['filename']`` as BGR uint8 (float32 if ``to_float32``)."""

    def __init__(self, to_float32=False, color_type="color", imdecode_backend="cv2", file_client_args=None):
        if imdecode_backend != "cv2":
            raise ValueError(f"LoadImageFromFile: imdecode_backend {imdecode_backend!r} unsupported (cv2)")
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results):
        filename = _path(results, "img_prefix", "img_info")
        img = read_image(filename, self.color_type)
        if self.to_float32:
            img = img.astype(np.float32)
        results.update(filename=filename, ori_filename=results["img_info"]["filename"], img=img,
                       img_shape=img.shape, ori_shape=img.shape, pad_shape=img.shape, scale_factor=1.0,
                       img_norm_cfg=dict(mean=np.zeros(3, np.float32), std=np.ones(3, np.float32), to_rgb=False))
        return results


@TRANSFORMS.register()
class LoadAnnotations:
    """Read ``seg_prefix/ann_info['seg_map']``; ``reduce_zero_label``: 0 -> 255, k -> k - 1.

    ``reduce_zero_label=None`` (default) follows the dataset's setting (mmseg 1.x rule), so a
    pipeline cannot silently disagree with its dataset; True/False override it.  Label values
    outside ``[0, num_classes)`` and the ignore index raise a DataError naming the file.
    """

    def __init__(self, reduce_zero_label=None, imdecode_backend="pillow", file_client_args=None):
        self.reduce_zero_label = reduce_zero_label

    def __call__(self, results):
        filename = _path(results, "seg_prefix", "ann_info")
        gt = read_label(filename)
        img_shape = results.get("ori_shape")
        if img_shape is not None and tuple(gt.shape) != tuple(img_shape[:2]):
            raise DataError(f"annotation {filename} is {gt.shape[0]}x{gt.shape[1]} but its image "
                            f"{results.get('filename')} is {img_shape[0]}x{img_shape[1]}")
        label_map = results.get("label_map")
        if label_map:
            mapped = gt.copy()
            for old, new in label_map.items():
                mapped[gt == old] = new
            gt = mapped
        reduce = self.reduce_zero_label
        if reduce is None:
            reduce = bool(results.get("reduce_zero_label", False))
        if reduce:
            gt = gt.copy()
            gt[gt == 0] = 255
            gt = gt - 1
            gt[gt == 254] = 255
        num_classes = results.get("num_classes")
        if num_classes is not None:  # set by the dataset
            ignore = results.get("ignore_index", 255)
            # the maximum first: np.unique sorts every pixel (~1 ms a small image), needed only when something is off
            values = np.unique(gt) if gt.size and gt.max() >= num_classes else np.zeros(0, gt.dtype)
            bad = values[(values >= num_classes) & (values != ignore)]
            if bad.size:
                raise DataError(f"annotation {filename} has label values {bad.tolist()[:10]} outside "
                                f"[0, {num_classes}) and the ignore index {ignore}"
                                + (" (after reduce_zero_label)" if reduce else ""))
        results["gt_semantic_seg"] = gt
        results.setdefault("seg_fields", []).append("gt_semantic_seg")
        return results
