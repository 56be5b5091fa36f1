"""The embedded toy dataset: textured shapes on textured backgrounds, in the ADE20K layout.

``make_toy_dataset(root)`` deterministically writes::

    root/images/{training,validation}/toy_XXXXX.jpg
    root/annotations/{training,validation}/toy_XXXXX.png   (0 = unlabeled -> ignored, 1..6 = classes)
    root/toy_dataset.json                                   (the generation settings)

Each class has its own colour range and texture (plain noise, stripes, checks,
rings, ...), so a tiny SegNeXt learns it on a CPU in minutes; a band along one
edge is unlabeled (value 0, ignored after ``reduce_zero_label``), so the ignore
path is exercised too.  ``ToyDataset`` generates the folder on first use.
"""
import json
import os
import shutil

import cv2
import numpy as np

from .custom import DATASETS, CustomDataset

TOY_CLASSES = ("background", "disc", "square", "triangle", "ring", "bar")
TOY_PALETTE = ((120, 120, 120), (220, 20, 60), (0, 80, 200), (40, 170, 40), (230, 200, 0), (150, 60, 200))
_SETTINGS_FILE = "toy_dataset.json"


def _texture(rng, kind, yy, xx):
    if kind == 0:    # smooth noise
        return cv2.GaussianBlur(rng.normal(0, 1, yy.shape).astype(np.float32), (0, 0), 3) * 3
    if kind == 1:    # stripes
        return np.sin(xx * rng.uniform(0.3, 0.6) + rng.uniform(0, 6)).astype(np.float32)
    if kind == 2:    # checks
        k = int(rng.integers(5, 9))
        return (((yy // k) + (xx // k)) % 2).astype(np.float32) * 2 - 1
    if kind == 3:    # diagonal stripes
        return np.sin((xx + yy) * rng.uniform(0.25, 0.45)).astype(np.float32)
    return rng.normal(0, 1, yy.shape).astype(np.float32)   # fine grain


def _shape_mask(rng, cls, yy, xx, size):
    cy, cx = rng.uniform(0.15, 0.85, 2) * size
    r = rng.uniform(0.08, 0.2) * size
    if cls == 1:   # disc
        return (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    if cls == 2:   # square
        return (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
    if cls == 3:   # triangle, apex up
        t = (yy - (cy - r)) / (2 * r)
        return (t >= 0) & (t <= 1) & (np.abs(xx - cx) < t * r)
    if cls == 4:   # ring
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        return (d2 < r ** 2) & (d2 > (0.55 * r) ** 2)
    theta = rng.uniform(0, np.pi)   # bar: a rotated thin rectangle
    along = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    across = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    return (np.abs(along) < 1.6 * r) & (np.abs(across) < 0.25 * r)


# per class: base BGR colour, texture kind, texture amplitude
_STYLE = {0: ((110, 120, 130), 0, 18), 1: ((60, 40, 210), 4, 20), 2: ((200, 90, 20), 1, 35),
          3: ((50, 170, 50), 2, 30), 4: ((20, 200, 230), 0, 15), 5: ((190, 60, 150), 3, 30)}


def make_toy_image(seed, index, size=256):
    """One (BGR uint8 image, uint8 label) pair; label 0 = unlabeled, 1 + class id otherwise."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.empty((size, size, 3), np.float32)
    label = np.ones((size, size), np.uint8)     # background class (1 on disk)
    colour, kind, amp = _STYLE[0]
    jitter = rng.uniform(-25, 25, 3)
    img[:] = (np.array(colour) + jitter)[None, None, :] + amp * _texture(rng, kind, yy, xx)[..., None]
    for _ in range(int(rng.integers(2, 6))):
        cls = int(rng.integers(1, len(TOY_CLASSES)))
        mask = _shape_mask(rng, cls, yy, xx, size)
        colour, kind, amp = _STYLE[cls]
        tex = (np.array(colour) + rng.uniform(-20, 20, 3))[None, None, :] + amp * _texture(rng, kind, yy, xx)[..., None]
        img[mask] = tex[mask]
        label[mask] = cls + 1
    band = int(rng.integers(6, 16))             # unlabeled band along one edge
    edge = int(rng.integers(4))
    sl = [(slice(0, band), slice(None)), (slice(size - band, size), slice(None)),
          (slice(None), slice(0, band)), (slice(None), slice(size - band, size))][edge]
    label[sl] = 0
    img[sl] = img[sl] * 0.5 + 60
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), label


def make_toy_dataset(root, n_train=200, n_val=50, size=256, seed=0, log=None):
    """Write the toy dataset to ``root`` (atomically: a folder is complete or absent). Returns ``root``."""
    settings = dict(n_train=n_train, n_val=n_val, size=size, seed=seed, classes=list(TOY_CLASSES))
    marker = os.path.join(root, _SETTINGS_FILE)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == settings:
                return root
        raise FileExistsError(f"{root} holds a toy dataset made with other settings ({marker}); "
                              "remove it or choose another folder")
    if os.path.exists(root) and os.listdir(root):
        raise FileExistsError(f"{root} exists and is not a toy dataset folder")
    tmp = f"{os.path.abspath(root).rstrip(os.sep)}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    index = 0
    for split, count in (("training", n_train), ("validation", n_val)):
        os.makedirs(os.path.join(tmp, "images", split))
        os.makedirs(os.path.join(tmp, "annotations", split))
        for _ in range(count):
            img, label = make_toy_image(seed, index, size)
            name = f"toy_{index:05d}"
            cv2.imwrite(os.path.join(tmp, "images", split, name + ".jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            cv2.imwrite(os.path.join(tmp, "annotations", split, name + ".png"), label)
            index += 1
    with open(os.path.join(tmp, _SETTINGS_FILE), "w") as f:
        json.dump(settings, f)
    try:
        if os.path.isdir(root) and not os.listdir(root):
            os.rmdir(root)
        os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
        os.replace(tmp, root)
    except OSError:
        if not os.path.isfile(marker):   # nobody else finished it either
            raise
        shutil.rmtree(tmp, ignore_errors=True)   # another process (MPI rank) was first
    if log:
        log(f"wrote toy dataset: {n_train} training + {n_val} validation images ({size}x{size}) to {root}")
    return root


@DATASETS.register()
class ToyDataset(CustomDataset):
    """The toy dataset (6 classes, ADE20K layout, ``reduce_zero_label``); generated in ``data_root`` if absent."""

    CLASSES = TOY_CLASSES
    PALETTE = TOY_PALETTE

    def __init__(self, data_root="data/toy", img_dir="images/training", ann_dir="annotations/training",
                 generate=dict(), **kwargs):
        if generate is not None and not os.path.isfile(os.path.join(data_root, _SETTINGS_FILE)):
            make_toy_dataset(data_root, **generate)
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("reduce_zero_label", True)
        super().__init__(data_root=data_root, img_dir=img_dir, ann_dir=ann_dir, **kwargs)
