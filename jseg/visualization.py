"""Colour label maps with a dataset palette (RGB) and write them."""
import os

import cv2
import numpy as np


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
    tmp = f"{path}.tmp{os.getpid()}.png"
    cv2.imwrite(tmp, colorize(label, palette)[..., ::-1])
    os.replace(tmp, path)
