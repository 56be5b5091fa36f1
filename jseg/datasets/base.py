"""Segmentation datasets on ``jittor.dataset.Dataset``: folder layouts, loading, MPI shards, seeded order.

Batch semantics (as mmseg): ``samples_per_gpu`` images per process, so the
global batch is ``samples_per_gpu x number of MPI processes``.  Jittor splits
each global batch across ranks: every rank reads a disjoint shard and together
they cover the epoch.

Order and augmentation are functions of ``(seed, epoch)`` and
``(seed, epoch, index)``: the same seed gives the same run, another seed
another order (Jittor's own shuffle is the same in every run), whichever
worker loads a sample.  ``set_epoch(epoch, start_batch)`` resumes inside an
interrupted epoch at its next batch.

Errors in bad data (``DataError``) raised in a worker come back to the main
process and are raised there with the file named, instead of Jittor's worker
crash (which SIGINTs the parent).
"""
import os
import traceback

import numpy as np
import jittor as jt
from jittor.dataset import Dataset

from ..registry import Registry
from .transforms import Compose, DataError

DATASETS = Registry("dataset", autoload="jseg.datasets")

_INT32_MAX = 2 ** 31 - 1


class _EpochOrder:
    """Jittor sampler: the global sample order of the dataset's current epoch (from ``start_batch`` on).

    Entries encode ``epoch * N + index`` so that workers (forked once) know the epoch of each draw.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        ds = self.dataset
        n = ds.num_samples()
        epoch = ds.epoch % max(_INT32_MAX // n, 1)
        if ds.shuffle:
            order = np.random.default_rng([ds.seed, ds.epoch]).permutation(n)
        else:
            order = np.arange(n)
        order = order[ds.start_batch * ds.batch_size:]
        return iter((order + epoch * n).tolist())

    def __len__(self):
        ds = self.dataset
        return max(ds.num_samples() - ds.start_batch * ds.batch_size, 0)


def _error_record(kind, message):
    """An error travelling from a worker to the main process (Jittor's worker buffers carry arrays)."""
    return {"__error__": np.frombuffer(f"{kind}\n{message}".encode(), dtype=np.uint8).copy()}


class SegDataset(Dataset):
    """Loader behaviour shared by all datasets; subclasses implement ``num_samples`` and ``get_sample``."""

    def __init__(self):
        super().__init__(batch_size=1, shuffle=False, num_workers=0)
        self.seed = 0
        self.epoch = 0
        self.start_batch = 0
        self.sampler = _EpochOrder(self)

    # -- to implement ------------------------------------------------------------------
    def num_samples(self):
        raise NotImplementedError

    def get_sample(self, idx, rng):
        raise NotImplementedError

    # -- loader ------------------------------------------------------------------------
    def __len__(self):
        return self.num_samples()

    def set_loader(self, samples_per_gpu=1, workers_per_gpu=0, shuffle=False, seed=0, drop_last=False):
        """Batching for iteration: global batch = samples_per_gpu x MPI world size."""
        world = jt.world_size if jt.in_mpi else 1
        self.seed = int(seed)
        self.set_attrs(batch_size=samples_per_gpu * world, num_workers=workers_per_gpu, shuffle=shuffle,
                       drop_last=drop_last)
        return self

    def set_epoch(self, epoch, start_batch=0):
        """The next iteration runs epoch ``epoch`` from its global batch ``start_batch`` (resume)."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def __iter__(self):
        # Jittor's persistent workers pre-compute the next epoch from a call counter; restart them so the
        # order is always this epoch's (a worker start per epoch; epochs are long with RepeatDataset).
        self.reset()
        try:
            for batch in super().__iter__():
                yield batch
            self.epoch += 1
            self.start_batch = 0
        finally:  # also when the iteration is abandoned (break, an error): no idle workers left behind
            self.reset()

    def __getitem__(self, k):
        n = self.num_samples()
        idx, epoch = int(k) % n, int(k) // n
        try:
            return self.get_sample(idx, np.random.default_rng([self.seed, epoch, idx]))
        except DataError as e:
            return _error_record("DataError", str(e))
        except Exception:  # a worker exception would otherwise SIGINT the main process
            return _error_record("RuntimeError", traceback.format_exc())

    def collate_batch(self, batch):
        for b in batch:
            if "__error__" in b:
                return b
        out = {"img_metas": [b.get("img_metas", {}) for b in batch]}
        for key in batch[0]:
            if key == "img_metas":
                continue
            values = [b[key] for b in batch]
            if isinstance(values[0], np.ndarray) and values[0].dtype != object:
                out[key] = np.stack(values)
            elif isinstance(values[0], list) and values[0] and isinstance(values[0][0], np.ndarray):
                out[key] = [np.stack(v) for v in zip(*values)]   # test-time views: one array per view
            else:
                out[key] = values                                 # anything else: one entry per sample
        return out

    def to_jittor(self, batch):
        if "__error__" in batch:
            record = batch["__error__"]
            record = record.numpy() if isinstance(record, jt.Var) else record   # workers' buffers make Vars
            kind, msg = bytes(np.asarray(record, dtype=np.uint8)).decode().split("\n", 1)
            raise (DataError if kind == "DataError" else RuntimeError)(msg)
        if self.keep_numpy_array:
            return batch
        conv = {}
        for k, v in batch.items():
            if isinstance(v, np.ndarray):
                conv[k] = jt.array(v).stop_grad()
            elif k != "img_metas" and isinstance(v, list) and v and isinstance(v[0], np.ndarray) \
                    and len(v) != len(batch["img_metas"]):
                conv[k] = [jt.array(a).stop_grad() for a in v]
            else:
                conv[k] = v
        return conv


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
            for root, _, files in os.walk(self.img_dir, followlinks=True):
                for fn in files:
                    if fn.endswith(self.img_suffix):
                        rel = os.path.relpath(os.path.join(root, fn), self.img_dir)
                        infos.append(self._info(rel, rel[: -len(self.img_suffix)] + self.seg_map_suffix))
            infos.sort(key=lambda i: i["filename"])
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
