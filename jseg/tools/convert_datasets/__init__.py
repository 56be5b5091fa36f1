"""Dataset preparation: ``python -m jseg.tools.convert_datasets.NAME --help``.

* ``cityscapes``: ``*_gtFine_labelIds.png`` -> ``*_gtFine_labelTrainIds.png`` (19 classes, 255 ignored).
* ``voc_aug``: SBD ``cls/*.mat`` + VOC 2012 -> ``SegmentationClassAug/*.png`` and ``aug.txt``.
* ``coco_stuff``: COCO-Stuff 164k ``stuffthingmaps`` (182 ids) -> ``*_labelTrainIds.png`` (171 classes).
* ``isaid``: large iSAID images + RGB masks -> 896x896 patches with class-id masks.
* Pascal Context: no converter; see ``pascal_context.md`` beside this file for the expected layout.
"""
import os

from ...fileio import atomic_path


def walk(root, suffix):
    """Sorted paths under ``root`` ending with ``suffix``."""
    out = []
    for d, _, files in os.walk(root, followlinks=True):
        out.extend(os.path.join(d, f) for f in files if f.endswith(suffix))
    return sorted(out)


def write_png_atomic(path, array):
    import cv2
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_path(path, ".png") as tmp:
        if not cv2.imwrite(tmp, array):
            raise OSError(f"could not write {path}")


def progress(i, n, every=500, out=print):
    if i == n or i % every == 0:
        out(f"  {i}/{n}")
