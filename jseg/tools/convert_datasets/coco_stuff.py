"""COCO-Stuff 164k: map the 182 ids of ``stuffthingmaps_trainval2017`` to 171 train ids.

    python -m jseg.tools.convert_datasets.coco_stuff data/coco_stuff164k

Reads ``ROOT/annotations/{train2017,val2017}/*.png`` (value = COCO id - 1, 255 =
unlabeled) and writes ``*_labelTrainIds.png`` beside them.  The 11 ids with no
class (COCO ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91) become 255; the
remaining 171 are numbered in order (80 things, then 91 stuff classes), which
is the class order of ``COCOStuffDataset``.
"""
import argparse
import os
import sys

import cv2
import numpy as np

from ...datasets.transforms import DataError
from . import progress, walk, write_png_atomic

UNUSED = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
LUT = np.full(256, 255, np.uint8)
LUT[[v for v in range(182) if v not in UNUSED]] = np.arange(171, dtype=np.uint8)


def convert(root, out=print):
    ann = os.path.join(root, "annotations")
    files = [p for p in walk(ann, ".png") if not p.endswith("_labelTrainIds.png")]
    if not files:
        raise DataError(f"no label .png under {ann} (expected annotations/{{train2017,val2017}}/)")
    for i, path in enumerate(files, 1):
        ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if ids is None or ids.ndim != 2:
            raise DataError(f"cannot read {path} as a single-channel label image")
        write_png_atomic(path[:-4] + "_labelTrainIds.png", LUT[ids])
        progress(i, len(files), out=out)
    out(f"coco_stuff: wrote {len(files)} *_labelTrainIds.png under {ann}")
    return len(files)


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.convert_datasets.coco_stuff", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="folder holding images/ and annotations/ (stuffthingmaps)")
    convert(p.parse_args(argv).root)
    return 0


def main(argv=None):
    from .._cli import run
    return run("convert_datasets.coco_stuff", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
