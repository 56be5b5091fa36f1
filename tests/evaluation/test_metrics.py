"""mIoU / mAcc / aAcc against a hand-computed confusion matrix (mmseg nan handling)."""
import numpy as np

from jseg.evaluation import confusion_areas, format_table, summarize


def test_crafted_example():
    # 4 classes; class 3 absent everywhere (-> nan, excluded from the means); 255 ignored.
    label = np.array([[0, 0, 1, 1, 255],
                      [2, 2, 2, 0, 255]])
    pred = np.array([[0, 1, 1, 1, 3],
                     [2, 2, 0, 0, 2]])
    areas = confusion_areas(pred, label, 4)
    # valid pixels: 8.  per class: I = [2, 2, 2, 0], P = [3, 3, 2, 0], L = [3, 2, 3, 0]
    assert areas.tolist() == [[2, 2, 2, 0], [3, 3, 2, 0], [3, 2, 3, 0]]
    r = summarize(areas)
    iou = [2 / 4, 2 / 3, 2 / 3]                      # I / (P + L - I)
    acc = [2 / 3, 2 / 2, 2 / 3]                      # I / L
    np.testing.assert_allclose(r["IoU"][:3], iou)
    np.testing.assert_allclose(r["Acc"][:3], acc)
    assert np.isnan(r["IoU"][3]) and np.isnan(r["Acc"][3])
    assert r["mIoU"] == np.mean(iou) and r["mAcc"] == np.mean(acc) and r["aAcc"] == 6 / 8
    # predicted-but-absent class: IoU 0 (counts in the mean), Acc nan
    r2 = summarize(confusion_areas(np.array([3, 0]), np.array([0, 0]), 4))
    assert r2["IoU"][3] == 0 and np.isnan(r2["Acc"][3]) and r2["mIoU"] == np.mean([0.5, 0.0])
    table = format_table(r, ["a", "b", "c", "d"])
    assert "| a     | 50.00 | 66.67 |" in table and "mIoU 61.11" in table and "| d     |   nan |   nan |" in table


def test_areas_add_over_images():
    a = confusion_areas(np.array([0, 1]), np.array([0, 0]), 2)
    b = confusion_areas(np.array([1, 1]), np.array([1, 255]), 2)
    assert (a + b).tolist() == [[1, 1], [1, 2], [2, 1]]
