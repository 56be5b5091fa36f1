"""Cityscapes: make ``*_gtFine_labelTrainIds.png`` from ``*_gtFine_labelIds.png``.

    python -m jseg.tools.convert_datasets.cityscapes data/cityscapes

Walks ``ROOT/gtFine``; ids map to the 19 train ids of the official label table
(everything else, including license plates, becomes 255).  Also writes
``ROOT/train.txt`` / ``ROOT/val.txt`` (image names without suffix) and reports
what it wrote.
"""
import argparse
import os
import sys

import cv2
import numpy as np

from ...datasets.transforms import DataError
from . import progress, walk, write_png_atomic

# Cityscapes label table: id -> trainId for the 19 evaluated classes.
ID_TO_TRAINID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LUT = np.full(256, 255, np.uint8)
for _id, _train in ID_TO_TRAINID.items():
    LUT[_id] = _train


def convert(root, out=print):
    gt = os.path.join(root, "gtFine")
    files = walk(gt, "_gtFine_labelIds.png")
    if not files:
        raise DataError(f"no *_gtFine_labelIds.png under {gt} (expected gtFine/{{train,val}}/CITY/)")
    for i, path in enumerate(files, 1):
        ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if ids is None or ids.ndim != 2:
            raise DataError(f"cannot read {path} as a single-channel label image")
        write_png_atomic(path.replace("_gtFine_labelIds.png", "_gtFine_labelTrainIds.png"), LUT[ids])
        progress(i, len(files), out=out)
    for split in ("train", "val"):
        names = [os.path.relpath(p, os.path.join(gt, split)).replace("_gtFine_labelIds.png", "")
                 for p in files if os.path.relpath(p, gt).startswith(split + os.sep)]
        if names:
            with open(os.path.join(root, f"{split}.txt"), "w") as f:
                f.write("\n".join(names) + "\n")
    out(f"cityscapes: wrote {len(files)} *_gtFine_labelTrainIds.png under {gt}")
    return len(files)


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.convert_datasets.cityscapes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="Cityscapes folder holding gtFine/ and leftImg8bit/")
    convert(p.parse_args(argv).root)
    return 0


def main(argv=None):
    from .._cli import run
    return run("convert_datasets.cityscapes", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
