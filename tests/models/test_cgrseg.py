"""CGRSeg-specific checks against the authors'-code fixtures: padded input, head intermediates (eval and
train step: tests/models/test_parity.py)."""
import numpy as np
import jittor as jt

from tests.helpers import CGRSEG, assert_close, cgrseg_tiny, load_npz

EVAL = ["cgrseg_tiny_eval_b2_128x160.npz", "cgrseg_tiny_eval_b1_100x132.npz"]


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


