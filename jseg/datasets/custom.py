"""Segmentation datasets as folders: images and label maps by relative name, or a split file; and
``RepeatDataset``.  Each dataset (ADE20K, Cityscapes, ...) is a ``CustomDataset`` with its classes, palette
and suffixes.  Bad data raises ``DataError`` naming the file, from ``dataset[i]`` and from iteration;
images without labels (and labels without images) are said in one note, never skipped silently.
"""
import os
import sys

import numpy as np

from .. import dist
from ..registry import Registry
from .loader import SegDataset
from .transforms import Compose, DataError

DATASETS = Registry("dataset", autoload="jseg.datasets")


def _notice(message):
    """A one-line note about the data on stderr (rank 0 only): what is not used is said, never skipped silently."""
    if dist.is_main():
        print(f"jseg: note: {message}", file=sys.stderr, flush=True)


def _join(root, path):
    if path is None or root is None or os.path.isabs(path):
        return path
    return os.path.join(root, path)


@DATASETS.register()
class CustomDataset(SegDataset):
    """Images in ``img_dir`` (``*img_suffix``) with label maps in ``ann_dir`` (same relative name,
    ``*seg_map_suffix``); or the names listed in a ``split`` file (one name per line, no suffix).

    Args:
        pipeline: transform configs.
        img_dir, ann_dir, split: relative to ``data_root`` unless absolute.
        classes / palette: class names and RGB colours (default: the dataset's own).
        reduce_zero_label: label 0 is "other" (-> 255), k -> k - 1 (ADE20K, Pascal Context 59).
        ignore_index: label value that is not a class (255).
        label_map: optional ``{old: new}`` mapping applied after loading.
        test_mode: no annotations are needed for iteration.
    """

    CLASSES = None
    PALETTE = None

    def __init__(self, pipeline, img_dir, img_suffix=".jpg", ann_dir=None, seg_map_suffix=".png", split=None,
                 data_root=None, test_mode=False, ignore_index=255, reduce_zero_label=False, classes=None,
                 palette=None, label_map=None):
        super().__init__()
        self.data_root = data_root
        self.img_dir = _join(data_root, img_dir)
        self.ann_dir = _join(data_root, ann_dir)
        self.split = _join(data_root, split)
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        self.test_mode = test_mode
        self.ignore_index = ignore_index
        self.reduce_zero_label = reduce_zero_label
        self.label_map = label_map
        self.CLASSES = tuple(classes) if classes is not None else self.CLASSES
        self.PALETTE = tuple(tuple(c) for c in palette) if palette is not None else self.PALETTE
        if self.CLASSES is None:
            raise ValueError(f"{type(self).__name__}: give classes=[...] (names of the label values 0..K-1)")
        if self.PALETTE is None:
            rng = np.random.default_rng(0)
            self.PALETTE = tuple(tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in self.CLASSES)
        if len(self.PALETTE) != len(self.CLASSES):
            raise ValueError(f"{type(self).__name__}: {len(self.PALETTE)} palette colours for "
                             f"{len(self.CLASSES)} classes")
        self.pipeline = Compose(pipeline)
        self.img_infos = self.load_annotations()

    @property
    def num_classes(self):
        return len(self.CLASSES)

    def num_samples(self):
        return len(self.img_infos)

    def load_annotations(self):
        if self.data_root is not None and not os.path.isdir(self.data_root):
            raise DataError(f"{type(self).__name__}: data_root not found: {self.data_root}")
        if not os.path.isdir(self.img_dir):
            raise DataError(f"{type(self).__name__}: img_dir not found: {self.img_dir}")
        if self.ann_dir is not None and not os.path.isdir(self.ann_dir):
            raise DataError(f"{type(self).__name__}: ann_dir not found: {self.ann_dir}")
        infos = []
        if self.split is not None:
            if not os.path.isfile(self.split):
                raise DataError(f"{type(self).__name__}: split file not found: {self.split}")
            with open(self.split) as f:
                names = [line.strip() for line in f if line.strip()]
            for name in names:
                infos.append(self._info(name + self.img_suffix, name + self.seg_map_suffix))
            missing = [i["filename"] for i in infos if not os.path.isfile(os.path.join(self.img_dir, i["filename"]))]
            if missing:
                raise DataError(f"{type(self).__name__}: {len(missing)} images listed in {self.split} are not in "
                                f"{self.img_dir}, e.g. {missing[:3]}")
        else:
            others = []
            for root, _, files in os.walk(self.img_dir, followlinks=True):
                for fn in files:
                    rel = os.path.relpath(os.path.join(root, fn), self.img_dir)
                    if fn.endswith(self.img_suffix):
                        infos.append(self._info(rel, rel[: -len(self.img_suffix)] + self.seg_map_suffix))
                    elif not fn.startswith("."):
                        others.append(rel)
            infos.sort(key=lambda i: i["filename"])
            if others:
                _notice(f"{type(self).__name__}: {len(others)} file(s) in {self.img_dir} do not end with "
                        f"img_suffix {self.img_suffix!r} and are not used, e.g. {', '.join(sorted(others)[:3])}")
            if self.ann_dir is not None:
                expected = {i["ann"]["seg_map"] for i in infos}
                extra = sorted(os.path.relpath(os.path.join(root, fn), self.ann_dir)
                               for root, _, files in os.walk(self.ann_dir, followlinks=True) for fn in files
                               if fn.endswith(self.seg_map_suffix)
                               and os.path.relpath(os.path.join(root, fn), self.ann_dir) not in expected)
                if extra:
                    _notice(f"{type(self).__name__}: {len(extra)} label map(s) in {self.ann_dir} have no image in "
                            f"{self.img_dir} and are not used, e.g. {', '.join(extra[:3])}")
        if not infos:
            raise DataError(f"{type(self).__name__}: no images ending with {self.img_suffix!r} in {self.img_dir}"
                            + (f" (split {self.split})" if self.split else ""))
        if self.ann_dir is not None:
            missing = [i["ann"]["seg_map"] for i in infos
                       if not os.path.isfile(os.path.join(self.ann_dir, i["ann"]["seg_map"]))]
            if missing:
                raise DataError(f"{type(self).__name__}: {len(missing)} of {len(infos)} annotations missing in "
                                f"{self.ann_dir}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                                f"(expected <image name without {self.img_suffix!r}>{self.seg_map_suffix})")
        return infos

    def _info(self, filename, seg_map):
        info = {"filename": filename}
        if self.ann_dir is not None:
            info["ann"] = {"seg_map": seg_map}
        return info

    def pre_pipeline(self, results):
        results.update(img_prefix=self.img_dir, seg_prefix=self.ann_dir, seg_fields=[], label_map=self.label_map,
                       num_classes=self.num_classes, ignore_index=self.ignore_index,
                       reduce_zero_label=self.reduce_zero_label)

    def get_sample(self, idx, rng):
        info = self.img_infos[idx]
        results = {"img_info": info, "rng": rng}
        if "ann" in info:
            results["ann_info"] = info["ann"]
        self.pre_pipeline(results)
        out = self.pipeline(results)
        if out is None:
            raise DataError(f"the pipeline dropped {info['filename']}")
        out.pop("rng", None)
        return out

    def get_gt_seg_map(self, idx):
        """The label map of sample ``idx`` as used for evaluation (label_map / reduce_zero_label applied)."""
        from .transforms.loading import LoadAnnotations
        info = self.img_infos[idx]
        results = {"img_info": info, "ann_info": info["ann"]}
        self.pre_pipeline(results)
        return LoadAnnotations()(results)["gt_semantic_seg"]

    def __repr__(self):
        return (f"{type(self).__name__}({self.num_samples()} images, {self.num_classes} classes, "
                f"img_dir={self.img_dir})")


@DATASETS.register()
class RepeatDataset(SegDataset):
    """``times`` passes over ``dataset`` as one epoch (iteration-based training, mmseg ``RepeatDataset``)."""

    def __init__(self, dataset, times):
        super().__init__()
        self.inner = build_dataset(dataset) if isinstance(dataset, dict) else dataset
        self.times = int(times)
        self.CLASSES, self.PALETTE = self.inner.CLASSES, self.inner.PALETTE

    def num_samples(self):
        return self.times * self.inner.num_samples()

    def get_sample(self, idx, rng):
        return self.inner.get_sample(idx % self.inner.num_samples(), rng)


def build_dataset(cfg, default_args=None):
    """Build a dataset from its config dict (``type`` + arguments)."""
    return DATASETS.build(cfg, **(default_args or {}))
