"""The reduced SegFormer end to end against the NVlabs fixtures: eval (two sizes) and one train step."""
import numpy as np
import jittor as jt
import pytest

from jseg.checkpoint import model_state_dict
from tests.helpers import assert_features_match, SEGFORMER, assert_close, assert_grad_close, load_npz, segformer_tiny

EVAL = ["segformer_tiny_eval_b2_128x160.npz", "segformer_tiny_eval_b1_100x132.npz"]


@pytest.mark.parametrize("no_grad", [False, True], ids=["graph", "no_grad"])
@pytest.mark.parametrize("name", EVAL)
def test_eval_stages_head_and_final_logits(name, no_grad):
    f = load_npz(name, SEGFORMER)
    model = segformer_tiny()
    with jt.flag_scope(no_grad=int(no_grad)):
        out = model.forward_features(jt.array(f["input"]))
    assert_features_match(out, f)


def test_head_intermediates():
    """The MLP projections and the fused map (catches a wrong c4..c1 concat order directly)."""
    f = load_npz(EVAL[0], SEGFORMER)
    model = segformer_tiny()
    head = model.decode_head
    feats = model.backbone(jt.array(f["input"]))
    for i, lin in enumerate([head.linear_c1, head.linear_c2, head.linear_c3, head.linear_c4], start=1):
        assert_close(lin(feats[i - 1]), f[f"dbg_head_linear_c{i}"], f"linear_c{i}")
    maps = []
    from jseg.models.layers import resize
    for c, lin in ((feats[3], head.linear_c4), (feats[2], head.linear_c3), (feats[1], head.linear_c2),
                   (feats[0], head.linear_c1)):
        B, _, h, w = c.shape
        maps.append(resize(lin(c).transpose(0, 2, 1).reshape((B, -1, h, w)), feats[0].shape[2:]))
    assert_close(head.linear_fuse(jt.concat(maps, dim=1)), f["dbg_head_linear_fuse"], "linear_fuse")


def test_train_step_loss_every_gradient_and_bn_buffers():
    f = load_npz("segformer_tiny_train_b2_128x160.npz", SEGFORMER)
    grads_ref = load_npz("segformer_tiny_train_grads.npz", SEGFORMER)
    buffers_ref = load_npz("segformer_tiny_train_bn_buffers_after_forward.npz", SEGFORMER)
    model = segformer_tiny(train=True, backbone__drop_path_rate=0.0, decode_head__dropout_ratio=0.0)
    img = jt.array(f["input"])
    feats = model.backbone(img)
    for i in range(1, 5):
        assert_close(feats[i - 1], f[f"train_stage{i}"], f"train_stage{i}")
    losses = model.decode_head.forward_train(feats, jt.array(f["label"]))
    loss, log_vars = model.parse_losses(losses)
    assert_close(loss, f["loss"].reshape(1), "loss (mean over ALL pixels)")
    params = {k: v for k, v in model.state_dict().items() if not v.is_stop_grad()}
    with_grad = [k[len("grad."):] for k in grads_ref if k.startswith("grad.")]
    no_grad = [k[len("nograd."):] for k in grads_ref if k.startswith("nograd.")]
    assert sorted(with_grad + no_grad) == sorted(params) and len(with_grad) == 133
    grads = jt.grad(loss, list(params.values()))
    for (name, _), g in zip(params.items(), grads):
        if name in no_grad:   # the official, never used conv_seg
            assert np.abs(g.numpy()).max() == 0, name
        else:
            assert_grad_close(g, grads_ref["grad." + name], name)
    state = model_state_dict(model)
    for k, v in buffers_ref.items():
        key = k[len("after_step."):]
        if key.endswith("num_batches_tracked"):
            assert state[key] == v == 1001, key
        else:
            assert_close(state[key], v, key)
