"""mmseg cross-entropy semantics against the train-step fixture (loss over all vs valid pixels)."""
import numpy as np
import jittor as jt
import pytest

from jseg.models.layers import resize
from jseg.models.losses import CrossEntropyLoss, accuracy, cross_entropy
from tests.helpers import load_npz


@pytest.fixture(scope="module")
def logits_and_label():
    f = load_npz("segnext_micro_ade5_random_train_step.npz")
    logits = resize(jt.array(f["head_logits_train"]), f["label"].shape[1:])
    return f, logits, jt.array(f["label"])


def test_default_divides_by_all_pixels(logits_and_label):
    f, logits, label = logits_and_label
    loss = CrossEntropyLoss()(logits, label, ignore_index=255).item()
    assert abs(loss - float(f["loss_mean_over_all_pixels"])) < 1e-5
    assert abs(loss - float(f["loss_mean_over_valid_pixels"])) > 0.1


def test_avg_non_ignore_divides_by_valid_pixels(logits_and_label):
    f, logits, label = logits_and_label
    loss = CrossEntropyLoss(avg_non_ignore=True)(logits, label, ignore_index=255).item()
    assert abs(loss - float(f["loss_mean_over_valid_pixels"])) < 1e-5


def test_accuracy_ignores_255(logits_and_label):
    f, logits, label = logits_and_label
    assert abs(accuracy(logits, label).item() - float(f["acc_seg"])) < 1e-3


def test_all_ignored_gives_zero_and_class_weight():
    logits = jt.array(np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32))
    label = jt.full((1, 4, 4), 255, "int32")
    assert cross_entropy(logits, label).item() == 0.0
    assert cross_entropy(logits, label, avg_non_ignore=True).item() == 0.0
    lab = np.zeros((1, 4, 4), np.int32)
    lab[0, :2] = 1
    lab = jt.array(lab)
    plain = cross_entropy(logits, lab).item()
    doubled = cross_entropy(logits, lab, class_weight=[2.0, 2.0, 2.0]).item()
    assert abs(doubled - 2 * plain) < 1e-5
    only_one = cross_entropy(logits, lab, class_weight=[0.0, 1.0, 0.0]).item()
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    assert abs(only_one - (-lp[0, 1, :2].sum() / 16)) < 1e-5
