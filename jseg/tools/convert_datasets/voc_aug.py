"""Pascal VOC 2012 + SBD ("aug"): SegmentationClassAug/*.png and ImageSets/Segmentation/aug.txt.

    python -m jseg.tools.convert_datasets.voc_aug VOCdevkit/VOC2012 benchmark_RELEASE/dataset

Writes ``VOC/SegmentationClassAug/NAME.png`` (single-channel class ids, 255 =
boundary/ignore) from SBD's ``cls/NAME.mat`` (``GTcls.Segmentation``) and from
VOC's own ``SegmentationClass/NAME.png`` (palette indices; VOC wins where both
exist), and ``aug.txt`` = (SBD train + SBD val + VOC train) minus VOC val, the
10,582-image training set of the papers.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

from ...datasets.transforms import DataError
from . import progress, write_png_atomic
from .matlab import loadmat


def _names(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def convert(voc_root, sbd_root, out=print):
    seg_dir = os.path.join(voc_root, "SegmentationClass")
    sets = os.path.join(voc_root, "ImageSets", "Segmentation")
    cls_dir = os.path.join(sbd_root, "cls")
    for path in (seg_dir, sets, cls_dir):
        if not os.path.isdir(path):
            raise DataError(f"folder not found: {path}")
    aug_dir = os.path.join(voc_root, "SegmentationClassAug")
    mats = sorted(f for f in os.listdir(cls_dir) if f.endswith(".mat"))
    for i, fn in enumerate(mats, 1):
        path = os.path.join(cls_dir, fn)
        gt = loadmat(path).get("GTcls")
        if not isinstance(gt, dict) or "Segmentation" not in gt:
            raise DataError(f"{path} has no GTcls.Segmentation")
        write_png_atomic(os.path.join(aug_dir, fn[:-4] + ".png"), np.asarray(gt["Segmentation"], np.uint8))
        progress(i, len(mats), out=out)
    vocs = sorted(f for f in os.listdir(seg_dir) if f.endswith(".png"))
    for fn in vocs:
        with Image.open(os.path.join(seg_dir, fn)) as im:
            write_png_atomic(os.path.join(aug_dir, fn), np.array(im, dtype=np.uint8))
    sbd_sets = [os.path.join(sbd_root, s) for s in ("train.txt", "val.txt")]
    train = set(_names(os.path.join(sets, "train.txt")))
    for s in sbd_sets:
        if os.path.isfile(s):
            train |= set(_names(s))
    aug = sorted(train - set(_names(os.path.join(sets, "val.txt"))))
    with open(os.path.join(sets, "aug.txt"), "w") as f:
        f.write("\n".join(aug) + "\n")
    out(f"voc_aug: wrote {len(mats)} SBD + {len(vocs)} VOC label maps to {aug_dir}; "
        f"{len(aug)} names to {os.path.join(sets, 'aug.txt')}")
    return len(aug)


def _main(argv):
    p = argparse.ArgumentParser(prog="python -m jseg.tools.convert_datasets.voc_aug", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("voc_root", help="VOCdevkit/VOC2012")
    p.add_argument("sbd_root", help="SBD benchmark_RELEASE/dataset (holds cls/, train.txt, val.txt)")
    a = p.parse_args(argv)
    convert(a.voc_root, a.sbd_root)
    return 0


def main(argv=None):
    from .._cli import run
    return run("convert_datasets.voc_aug", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
