"""iSAID: cut the large aerial images and their RGB semantic masks into patches with class ids.

    python -m jseg.tools.convert_datasets.isaid SRC OUT [--patch 896] [--overlap 384]

SRC holds the unpacked official archives: ``{train,val}/images/NAME.png`` and
``{train,val}/Semantic_masks/images/NAME_instance_color_RGB.png``.  OUT gets
``img_dir/{split}/NAME_y1_y2_x1_x2.png`` and
``ann_dir/{split}/NAME_y1_y2_x1_x2_instance_color_RGB.png`` (class ids 0..15).
Patches step by ``patch - overlap``; the last one on each axis ends at the
border; images smaller than a patch are padded (image 0, label 255).  Mask
colours that are not iSAID class colours become 255 and are counted in the report.
"""
import argparse
import os
import sys

import cv2
import numpy as np

from . import write_png_atomic
from ...datasets.classes import ISAID_PALETTE
from ...datasets.transforms import DataError


def starts(length, patch, step):
    if length <= patch:
        return [0]
    out = list(range(0, length - patch + 1, step))
    if out[-1] != length - patch:
        out.append(length - patch)
    return out


def colour_to_ids(mask_bgr):
    rgb = mask_bgr[..., ::-1].astype(np.int32)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    ids = np.full(key.shape, 255, np.uint8)
    for cls, (r, g, b) in enumerate(ISAID_PALETTE):
        ids[key == ((r << 16) | (g << 8) | b)] = cls
    return ids


def convert(src, dst, patch=896, overlap=384, out=print):
    step = patch - overlap
    total, unknown = 0, 0
    for split in ("train", "val"):
        img_dir = os.path.join(src, split, "images")
        mask_dir = os.path.join(src, split, "Semantic_masks", "images")
        if not os.path.isdir(img_dir):
            continue
        for fn in sorted(f for f in os.listdir(img_dir) if f.endswith(".png")):
            name = fn[:-4]
            img = cv2.imread(os.path.join(img_dir, fn), cv2.IMREAD_COLOR)
            mask_path = os.path.join(mask_dir, name + "_instance_color_RGB.png")
            mask = cv2.imread(mask_path, cv2.IMREAD_COLOR)
            if img is None or mask is None:
                raise DataError(f"cannot read {os.path.join(img_dir, fn) if img is None else mask_path}")
            if img.shape[:2] != mask.shape[:2]:
                raise DataError(f"{mask_path} is {mask.shape[:2]} but its image is {img.shape[:2]}")
            ids = colour_to_ids(mask)
            unknown += int((ids == 255).sum())
            h, w = ids.shape
            for y in starts(h, patch, step):
                for x in starts(w, patch, step):
                    pi = np.zeros((patch, patch, 3), np.uint8)
                    pl = np.full((patch, patch), 255, np.uint8)
                    crop_i, crop_l = img[y:y + patch, x:x + patch], ids[y:y + patch, x:x + patch]
                    pi[:crop_i.shape[0], :crop_i.shape[1]] = crop_i
                    pl[:crop_l.shape[0], :crop_l.shape[1]] = crop_l
                    base = f"{name}_{y}_{y + patch}_{x}_{x + patch}"
                    write_png_atomic(os.path.join(dst, "img_dir", split, base + ".png"), pi)
                    write_png_atomic(os.path.join(dst, "ann_dir", split, base + "_instance_color_RGB.png"), pl)
                    total += 1
    if not total:
        raise DataError(f"no images under {src}/{{train,val}}/images")
    out(f"isaid: wrote {total} patch pairs ({patch}x{patch}, overlap {overlap}) to {dst}; "
        f"{unknown} mask pixels had no iSAID class colour (-> 255)")
    return total


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.convert_datasets.isaid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--patch", type=int, default=896)
    p.add_argument("--overlap", type=int, default=384)
    a = p.parse_args(argv)
    convert(a.src, a.dst, a.patch, a.overlap)
    return 0


def main(argv=None):
    from .._cli import run
    return run("convert_datasets.isaid", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
