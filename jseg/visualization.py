"""Colour label maps with a dataset palette (RGB) and write them."""
import os

import cv2
import numpy as np

from .fileio import atomic_path


def colorize(label, palette, ignore_index=255):
    """(H, W) class ids -> (H, W, 3) RGB uint8; ignored/unknown pixels black."""
    pal = np.zeros((256, 3), np.uint8)
    pal[:len(palette)] = np.asarray(palette, np.uint8)
    if ignore_index is not None and ignore_index < 256 and ignore_index >= len(palette):
        pal[ignore_index] = 0
    return pal[np.asarray(label, np.int64).clip(0, 255)]


def save_colored(path, label, palette):
    """Write the colourised ``label`` as a PNG (atomically)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_path(path, ".png") as tmp:
        cv2.imwrite(tmp, colorize(label, palette)[..., ::-1])


def overlay(img_bgr, label, palette, opacity=0.5):
    """The image (BGR uint8) with the label colours blended in at ``opacity`` (BGR uint8, same size)."""
    color = colorize(label, palette)[..., ::-1].astype(np.float32)
    out = img_bgr.astype(np.float32) * (1 - opacity) + color * opacity
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def save_palette_png(path, label, palette):
    """Write labels as a palette ('P' mode) PNG: the pixel values are the class ids, shown in colour."""
    from PIL import Image
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    im = Image.fromarray(np.asarray(label, np.uint8), mode="P")
    flat = [c for rgb in palette for c in rgb][:768]
    im.putpalette(flat + [0] * (768 - len(flat)))
    with atomic_path(path, ".png") as tmp:
        im.save(tmp)


def save_image(path, img_bgr):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_path(path, ".png") as tmp:
        if not cv2.imwrite(tmp, img_bgr):
            raise OSError(f"could not write {path}")
