"""SegFormer-specific checks against the NVlabs fixtures (eval and train step: tests/models/test_parity.py)."""
import jittor as jt

from tests.helpers import SEGFORMER, assert_close, load_npz, segformer_tiny

EVAL = ["segformer_tiny_eval_b2_128x160.npz", "segformer_tiny_eval_b1_100x132.npz"]


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


