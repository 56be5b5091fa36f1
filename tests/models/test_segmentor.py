"""The micro SegNeXt model against the official fixtures: slide, one-step gradient, TTA (eval and train step:
tests/models/test_parity.py)."""
import numpy as np
import jittor as jt
import pytest

from jseg.models.random_streams import random_streams
from jseg.models.segmentor import slide_grid
from tests.helpers import assert_close, assert_grad_close, load_npz, micro_model

EVAL_FIXTURES = ["segnext_micro_ade5_random_eval_2x3x128x160.npz", "segnext_micro_ade5_random_eval_2x3x100x132.npz"]


def test_micro_eval_encode_decode_equals_forward_features():
    f = load_npz(EVAL_FIXTURES[0])
    model = micro_model()
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
        assert_close(model.encode_decode(jt.array(f["input"])), f["logits"], "encode_decode logits")


def test_slide_grid_is_official():
    f = load_npz("segnext_micro_ade5_random_slide_1x3x100x132.npz")
    assert slide_grid(100, 132, tuple(f["crop_size"]), tuple(f["stride"])) == [tuple(b) for b in
                                                                              f["crop_boxes_y1y2x1x2"].tolist()]
    # Cityscapes: 1024x2048 with crop 1024 / stride 768 -> 3 crops at x1 = 0, 768, 1024
    assert slide_grid(1024, 2048, (1024, 1024), (768, 768)) == [(0, 1024, 0, 1024), (0, 1024, 768, 1792),
                                                                (0, 1024, 1024, 2048)]


def test_micro_slide_inference():
    f = load_npz("segnext_micro_ade5_random_slide_1x3x100x132.npz")
    model = micro_model(test_cfg=dict(mode="slide", crop_size=(64, 64), stride=(48, 48)))
    with random_streams(inject={"nmf_bases": list(f["nmf_bases"])}) as streams:
        logits = model.slide_inference(jt.array(f["input"]))
    assert streams.pending("nmf_bases") == 0   # one set of bases per crop, all used
    assert_close(logits, f["logits"], "slide logits")


@pytest.fixture(scope="module")
def train_step():
    return load_npz("segnext_micro_ade5_random_train_step.npz")


def _train_forward(f, grad_mode="full"):
    model = micro_model(train=True, backbone__drop_path_rate=0.0, decode_head__dropout_ratio=0.0,
                        **{"decode_head.ham_kwargs.GRAD_MODE": grad_mode})
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
        losses = model.forward_train(jt.array(f["input"]), jt.array(f["label"]))
    loss, log_vars = model.parse_losses(losses)
    return model, loss, log_vars


def test_onestep_gradient_variant(train_step):
    """grad_mode='onestep' is HamNet's one-step gradient (the fixture's diagnostic onestep_grad.*)."""
    f = train_step
    model, loss, _ = _train_forward(f, "onestep")
    names = ["backbone.block4.0.attn.proj_1.weight", "decode_head.squeeze.conv.weight",
             "decode_head.hamburger.ham_in.conv.weight", "decode_head.conv_seg.weight"]
    params = model.state_dict()
    grads = jt.grad(loss, [params[n] for n in names])
    for n, g in zip(names, grads):
        assert_grad_close(g, f["onestep_grad." + n], n)
    # and it is really different from the official full gradient upstream of the NMF
    full = f["grad.decode_head.squeeze.conv.weight"]
    assert np.abs(grads[1].numpy() - full).max() > 0.1 * np.abs(full).max()


def test_flip_and_multiscale_tta_average_probabilities():
    f = load_npz(EVAL_FIXTURES[0])
    model = micro_model()
    img = jt.array(f["input"])
    flipped = img[:, :, :, ::-1]
    # reference: the official view's probabilities from the fixture logits, the flipped view flipped back
    with random_streams(inject={"nmf_bases": [f["nmf_bases"], f["nmf_bases"]]}):
        prob = model.aug_test([(img, False), (flipped, True)], ori_shape=(128, 160)).numpy()
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
        flip_logits = model.encode_decode(flipped).numpy()[:, :, :, ::-1]

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    assert_close(prob, (softmax(f["logits"]) + softmax(flip_logits)) / 2, "flip TTA probabilities")
    # multi-scale: each view is resized back to ori_shape before averaging
    with random_streams(keys=[(0, 0), (0, 1)]):
        pred = model.predict(img, scales=(0.75, 1.0), flip=True)
    assert tuple(pred.shape) == (2, 128, 160)


def test_whole_inference_rescales_to_original_shape():
    f = load_npz(EVAL_FIXTURES[0])
    model = micro_model()
    with random_streams(inject={"nmf_bases": [f["nmf_bases"]]}):
        prob = model.inference(jt.array(f["input"]), ori_shape=(100, 132)).numpy()
    assert prob.shape == (2, 5, 100, 132)
    np.testing.assert_allclose(prob.sum(1), 1.0, atol=1e-5)


def test_keyed_random_streams_give_identical_results_every_run():
    f = load_npz(EVAL_FIXTURES[1])
    runs = []
    for _ in range(2):
        model = micro_model()
        with random_streams(keys=[(2024, 0), (2024, 1)]):
            runs.append(model.predict(jt.array(f["input"])).numpy())
    assert np.array_equal(runs[0], runs[1])
