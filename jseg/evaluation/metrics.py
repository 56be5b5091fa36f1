"""Segmentation metrics with mmseg 0.x semantics (``mmseg/core/evaluation/metrics.py``).

Per image, pixels whose label is ``ignore_index`` are dropped; the areas of
intersection, prediction and label are histogrammed per class and summed over
the dataset (and over MPI ranks).  IoU = I / (P + L - I), Acc = I / L; a class
absent from both labels and predictions has IoU = Acc = nan and is left out of
the means (``nanmean``); aAcc = sum(I) / sum(L).
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


def summarize(areas):
    """From summed areas (3, K): ``{'aAcc', 'mIoU', 'mAcc', 'IoU', 'Acc'}`` (fractions; per-class arrays)."""
    inter, area_pred, area_label = (np.asarray(a, dtype=np.float64) for a in areas)
    union = area_pred + area_label - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
        acc = inter / area_label
    iou[union == 0] = np.nan
    acc[area_label == 0] = np.nan
    with np.errstate(invalid="ignore"):
        return {"aAcc": inter.sum() / area_label.sum() if area_label.sum() else np.nan,
                "mIoU": np.nanmean(iou) if np.isfinite(iou).any() else np.nan,
                "mAcc": np.nanmean(acc) if np.isfinite(acc).any() else np.nan,
                "IoU": iou, "Acc": acc}


def format_table(result, class_names):
    """mmseg-style per-class table (percent, 2 decimals) and the summary line."""
    width = max([len("Class")] + [len(c) for c in class_names])
    lines = [f"| {'Class':<{width}} |  IoU  |  Acc  |", f"|{'-' * (width + 2)}|-------|-------|"]
    for name, iou, acc in zip(class_names, result["IoU"], result["Acc"]):
        lines.append(f"| {name:<{width}} | {iou * 100:5.2f} | {acc * 100:5.2f} |")
    lines.append(f"Summary: aAcc {result['aAcc'] * 100:.2f}  mIoU {result['mIoU'] * 100:.2f}  "
                 f"mAcc {result['mAcc'] * 100:.2f}")
    return "\n".join(lines)
