"""The reduced CGRSeg end to end against the authors'-code fixtures: eval (plain and padded) and a train step."""
import numpy as np
import jittor as jt
import pytest

from jseg.checkpoint import model_state_dict
from tests.helpers import assert_features_match, CGRSEG, assert_close, assert_grad_close, cgrseg_tiny, load_npz

EVAL = ["cgrseg_tiny_eval_b2_128x160.npz", "cgrseg_tiny_eval_b1_100x132.npz"]


@pytest.mark.parametrize("no_grad", [False, True], ids=["graph", "no_grad"])
@pytest.mark.parametrize("name", EVAL)
def test_eval_stages_head_and_final_logits(name, no_grad):
    f = load_npz(name, CGRSEG)
    model = cgrseg_tiny()
    with jt.flag_scope(no_grad=int(no_grad)):
        out = model.forward_features(jt.array(f["input"]))
    assert_features_match(out, f)


def test_padded_input_is_cropped_back():
    """100x132 padded to 128x160 (Pad(size_divisor=32)); whole inference crops the padding off (mmseg 0.27)."""
    f = load_npz(EVAL[1], CGRSEG)
    model = cgrseg_tiny()
    assert np.array_equal(f["input"][:, :, :100, :132], f["input_unpadded"])
    with jt.no_grad():
        logits = model.whole_inference(jt.array(f["input"]), ori_shape=(100, 132), rescale=True,
                                       img_shape=(100, 132, 3))
    assert_close(logits, f["final_logits_cropped"], "final_logits_cropped")


def test_head_intermediates():
    f = load_npz(EVAL[0], CGRSEG)
    model = cgrseg_tiny()
    head = model.decode_head
    from jseg.models.heads.cgr_head import pyramid_pool_agg, spatial_gather
    xx = [jt.array(f[f"stage{i}"]) for i in (2, 3, 4)]
    ppa = pyramid_pool_agg(xx, 2)
    assert_close(ppa, f["dbg_head_ppa"], "ppa")
    assert_close(head.trans(ppa), f["dbg_head_trans"], "trans")
    x = head._fuse_levels(xx)
    assert_close(x, f["dbg_head_SIM0"], "SIM0")
    fused = head.linear_fuse(x)
    assert_close(fused, f["dbg_head_linear_fuse"], "linear_fuse")
    prev = head.cls_seg(fused)
    assert_close(prev, f["dbg_head_prev_output"], "prev_output")
    ctx = spatial_gather(x, prev)
    assert_close(ctx, f["dbg_head_spatial_gather"], "spatial_gather")
    assert_close(head.lgc(x, ctx), f["dbg_head_lgc"], "lgc")


def test_train_step_loss_every_gradient_and_bn_buffers():
    f = load_npz("cgrseg_tiny_train_b2_128x160.npz", CGRSEG)
    grads_ref = load_npz("cgrseg_tiny_train_grads.npz", CGRSEG)
    buffers_ref = load_npz("cgrseg_tiny_train_bn_buffers_after_forward.npz", CGRSEG)
    model = cgrseg_tiny(train=True, decode_head__dropout_ratio=0.0)
    feats = model.backbone(jt.array(f["input"]))
    for i in range(1, 5):
        assert_close(feats[i - 1], f[f"train_stage{i}"], f"train_stage{i}")
    losses = model.decode_head.forward_train(feats, jt.array(f["label"]))
    loss, _ = model.parse_losses(losses)
    assert_close(loss, f["loss"].reshape(1), "loss (mean over ALL pixels)")
    params = {k: v for k, v in model.state_dict().items() if not v.is_stop_grad()}
    assert sorted(params) == sorted(k[len("grad."):] for k in grads_ref) and len(params) == 287
    grads = jt.grad(loss, list(params.values()))
    for (name, _), g in zip(params.items(), grads):
        assert_grad_close(g, grads_ref["grad." + name], name)
    state = model_state_dict(model)
    assert len(buffers_ref) == 168   # 56 BNs (46 backbone/SyncBN + 10 head BN) x 3 buffers
    for k, v in buffers_ref.items():
        key = k[len("after_step."):]
        if key.endswith("num_batches_tracked"):
            assert state[key] == v == 1001, key
        else:
            assert_close(state[key], v, key)
