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


AREAS = [[2, 2, 2, 0], [3, 3, 2, 0], [3, 2, 3, 0]]   # the crafted example's I, P, L


def test_dice_by_hand():
    r = summarize(AREAS, metrics=["mDice"])
    dice = [2 * 2 / (3 + 3), 2 * 2 / (3 + 2), 2 * 2 / (2 + 3)]      # 2I / (P + L)
    np.testing.assert_allclose(r["Dice"][:3], dice)
    assert np.isnan(r["Dice"][3]) and r["mDice"] == np.mean(dice) and r["mAcc"] == np.mean([2 / 3, 1, 2 / 3])
    assert "IoU" not in r and r["aAcc"] == 6 / 8


def test_fscore_precision_recall_by_hand():
    r = summarize(AREAS, metrics="mFscore")
    precision, recall = [2 / 3, 2 / 3, 2 / 2], [2 / 3, 2 / 2, 2 / 3]   # I / P, I / L
    f = [2 * p * q / (p + q) for p, q in zip(precision, recall)]         # beta = 1
    np.testing.assert_allclose(r["Precision"][:3], precision)
    np.testing.assert_allclose(r["Recall"][:3], recall)
    np.testing.assert_allclose(r["Fscore"][:3], f)
    np.testing.assert_allclose([r["mFscore"], r["mPrecision"], r["mRecall"]],
                               [np.mean(f), np.mean(precision), np.mean(recall)])
    assert all(np.isnan(r[k][3]) for k in ("Fscore", "Precision", "Recall"))
    # beta weighs recall: F_2 = 5 p r / (4 p + r)
    r2 = summarize(AREAS, metrics="mFscore", beta=2)
    np.testing.assert_allclose(r2["Fscore"][:3], [5 * p * q / (4 * p + q) for p, q in zip(precision, recall)])


def test_fscore_of_a_class_never_right_is_nan_as_in_mmseg():
    # classes 0 and 1 swapped, class 2 right: precision = recall = 0 for 0 and 1 -> 0/0 -> nan (mmseg's quirk)
    r = summarize(confusion_areas(np.array([1, 0, 2]), np.array([0, 1, 2]), 3), metrics=["mIoU", "mFscore"])
    assert r["Precision"].tolist() == [0, 0, 1] and np.isnan(r["Fscore"][:2]).all() and r["Fscore"][2] == 1
    assert r["mFscore"] == 1.0 and r["mPrecision"] == 1 / 3 and r["mIoU"] == 1 / 3


def test_all_metrics_table_and_unknown_metric():
    r = summarize(AREAS, metrics=["mIoU", "mDice", "mFscore"])
    table = format_table(r, ["a", "b", "c", "d"])
    lines = table.splitlines()
    assert lines[0] == "| Class |  IoU  |  Acc  | Dice  | Fscore | Precision | Recall |"
    assert lines[2] == "| a     | 50.00 | 66.67 | 66.67 |  66.67 |     66.67 |  66.67 |"
    assert lines[-1] == ("Summary: aAcc 75.00  mIoU 61.11  mAcc 77.78  mDice 75.56  mFscore 75.56  "
                         "mPrecision 77.78  mRecall 77.78")
    try:
        summarize(AREAS, metrics=["mAP"])
        raise AssertionError("mAP accepted")
    except KeyError as e:
        assert "mAP" in str(e) and "mDice" in str(e)
