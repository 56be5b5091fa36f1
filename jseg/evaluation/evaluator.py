"""Sharded evaluation of a segmentor on a dataset: rank r takes images r, r+W, ...; the confusion areas
are summed over ranks, so every rank gets the same result for any number of processes."""
import os
import time

import numpy as np

from .. import dist
from .metrics import confusion_areas, metric_list, summarize


def show_paths(dataset, show_dir):
    """Where ``evaluate(show_dir=...)`` writes the prediction of each image (its relative name, ``.png``)."""
    return [os.path.join(show_dir, os.path.splitext(info["filename"])[0] + ".png") for info in dataset.img_infos]


def evaluate(model, dataset, seed=0, log=None, show_dir=None, metrics=("mIoU",)):
    """Sharded evaluation: rank r takes images r, r+W, ...; histograms are summed over ranks.

    Returns ``summarize(areas, metrics)`` of the dataset (identical on every rank and for any number of
    ranks).
    """
    metrics = metric_list(metrics)   # an unknown metric fails before the images are evaluated
    was_training = model.is_training()
    model.eval()
    num_classes = len(dataset.CLASSES)
    areas = np.zeros((3, num_classes), np.int64)
    indices = list(range(dist.rank(), dataset.num_samples(), dist.world_size()))
    shown = show_paths(dataset, show_dir) if show_dir else None
    t0 = time.time()
    for n, idx in enumerate(indices, 1):
        sample = dataset.get_sample(idx, np.random.default_rng([seed, idx]))
        gt = dataset.get_gt_seg_map(idx)
        # random streams keyed by (seed, 1, image): the same result whichever rank evaluates the image
        prob = model.infer_test_sample(sample, gt.shape[:2], sample_key=(seed, 1, idx))
        pred = np.argmax(prob, axis=0)
        areas += confusion_areas(pred, gt, num_classes, dataset.ignore_index)
        if show_dir:
            from ..visualization import save_colored
            save_colored(shown[idx], pred, dataset.PALETTE)
        if log and dist.is_main() and (n == len(indices) or n % 50 == 0):
            log(f"eval {n}/{len(indices)} (this rank) {time.time() - t0:.1f} s")
    if was_training:
        model.train()
    return summarize(dist.all_reduce_sum(areas).astype(np.int64), metrics)
