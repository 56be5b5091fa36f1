"""Segmentation metrics with mmseg semantics (0.x ``mmseg/core/evaluation/metrics.py``, 1.x ``IoUMetric``).

Per image, pixels whose label is ``ignore_index`` are dropped; the areas of
intersection I, prediction P and label L are histogrammed per class and summed over
the dataset (and over MPI ranks).  Per class, as mmseg divides them:

* ``mIoU``: IoU = I / (P + L - I), Acc = I / L;
* ``mDice``: Dice = 2I / (P + L), Acc = I / L;
* ``mFscore``: Precision = I / P, Recall = I / L,
  Fscore = (1 + beta^2) Precision Recall / (beta^2 Precision + Recall) (beta = 1).

A 0/0 is nan and left out of the class means (``nanmean``), as in mmseg; this includes mmseg's
quirk that a class present in labels and predictions but never right (Precision = Recall = 0) has
Fscore nan, not 0.  aAcc = sum(I) / sum(L).
"""
import numpy as np


def confusion_areas(pred, label, num_classes, ignore_index=255):
    """``(area_intersect, area_pred, area_label)`` of one image, each (num_classes,) int64."""
    pred = np.asarray(pred).ravel()
    label = np.asarray(label).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"prediction has {pred.size} pixels, label {label.size}")
    mask = label != ignore_index
    pred, label = pred[mask].astype(np.int64), label[mask].astype(np.int64)
    inter = np.bincount(pred[pred == label], minlength=num_classes)[:num_classes]
    area_pred = np.bincount(pred, minlength=num_classes)[:num_classes]
    area_label = np.bincount(label, minlength=num_classes)[:num_classes]
    return np.stack([inter, area_pred, area_label]).astype(np.int64)


METRICS = ("mIoU", "mDice", "mFscore")
# per-class columns of each metric, in mmseg's order
COLUMNS = {"mIoU": ("IoU", "Acc"), "mDice": ("Dice", "Acc"), "mFscore": ("Fscore", "Precision", "Recall")}


def _divide(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


def _nanmean(x):
    with np.errstate(invalid="ignore"):
        return np.nanmean(x) if np.isfinite(x).any() else np.nan


def metric_list(metrics):
    """A metric name or names -> a list; ``KeyError`` naming any that is not one of ``METRICS``."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise KeyError(f"metric(s) {unknown} not supported; expected any of {list(METRICS)}")
    return names


def summarize(areas, metrics=("mIoU",), beta=1):
    """From summed areas (3, K): ``aAcc``, then per metric its per-class arrays (``IoU``, ``Acc``, ``Dice``,
    ``Fscore``, ``Precision``, ``Recall``: fractions) and their means (``mIoU``, ``mAcc``, ...)."""
    metrics = metric_list(metrics)
    inter, area_pred, area_label = (np.asarray(a, dtype=np.float64) for a in areas)
    out = {"aAcc": inter.sum() / area_label.sum() if area_label.sum() else np.nan}
    for metric in metrics:
        if metric == "mIoU":
            out["IoU"] = _divide(inter, area_pred + area_label - inter)
            out["Acc"] = _divide(inter, area_label)
        elif metric == "mDice":
            out["Dice"] = _divide(2 * inter, area_pred + area_label)
            out["Acc"] = _divide(inter, area_label)
        else:
            precision, recall = _divide(inter, area_pred), _divide(inter, area_label)
            out["Fscore"] = _divide((1 + beta ** 2) * precision * recall, beta ** 2 * precision + recall)
            out["Fscore"][np.isnan(precision) | np.isnan(recall)] = np.nan
            out["Precision"], out["Recall"] = precision, recall
    for key in [k for k in list(out) if k != "aAcc"]:
        out["m" + key] = _nanmean(out[key])
    return out


def format_table(result, class_names):
    """mmseg-style per-class table (percent, 2 decimals) and the summary line, for the metrics in ``result``."""
    columns = [c for c in ("IoU", "Acc", "Dice", "Fscore", "Precision", "Recall") if c in result]
    width = max([len("Class")] + [len(c) for c in class_names])
    col_w = [max(5, len(c)) for c in columns]
    lines = [f"| {'Class':<{width}} | " + " | ".join(f"{c:^{w}}" for c, w in zip(columns, col_w)) + " |",
             f"|{'-' * (width + 2)}|" + "|".join("-" * (w + 2) for w in col_w) + "|"]
    for i, name in enumerate(class_names):
        lines.append(f"| {name:<{width}} | " + " | ".join(f"{result[c][i] * 100:{w}.2f}" for c, w in zip(columns, col_w))
                     + " |")
    means = ["aAcc"] + ["m" + c for c in columns]
    lines.append("Summary: " + "  ".join(f"{m} {result[m] * 100:.2f}" for m in means))
    return "\n".join(lines)
