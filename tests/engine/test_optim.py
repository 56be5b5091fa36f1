"""Optimizer groups and LR schedule of the official SegNeXt recipe (fact sheet §5, mmcv 1.x)."""
import numpy as np
import jittor as jt
import pytest

from jseg.config import Config
from jseg.engine.optim import build_optimizer, load_optimizer_state, optimizer_state, param_groups
from jseg.engine.schedule import PolyLR
from jseg.models import build_segmentor
from tests.helpers import ROOT

OFFICIAL = dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01,
                paramwise_cfg=dict(custom_keys={"pos_block": dict(decay_mult=0.0), "norm": dict(decay_mult=0.0),
                                                "head": dict(lr_mult=10.0)}))


def test_segnext_tiny_groups_match_mmcv():
    model = build_segmentor(Config.fromfile(f"{ROOT}/configs/segnext/segnext_tiny_512x512_ade20k_160k.py").model)
    groups = {(round(g["lr"], 12), g["weight_decay"]): g for g in param_groups(
        model, 6e-5, 0.01, OFFICIAL["paramwise_cfg"])}
    assert {k: len(g["params"]) for k, g in groups.items()} == {(6e-5, 0.01): 378, (6e-5, 0.0): 66,
                                                                (6e-4, 0.01): 13}
    wd0 = groups[(6e-5, 0.0)]["names"]
    assert "backbone.block1.0.norm1.weight" in wd0 and "backbone.patch_embed2.norm.bias" in wd0
    assert "backbone.norm4.weight" in wd0
    assert "backbone.patch_embed1.proj.1.weight" in groups[(6e-5, 0.01)]["names"]   # stem BN: no 'norm' in name
    assert "decode_head.squeeze.gn.weight" in groups[(6e-4, 0.01)]["names"]          # 'head' wins, GN named gn


def test_segformer_b0_groups_match_mmcv():
    """NVlabs B0 (194 official keys): 60 LayerNorm tensors have 'norm' in their names (patch_embed.norm x4x2,
    norm1/norm2 x8 blocks x2, attn.norm x6 blocks with sr x2, norm1..4 x2); the 15 decode_head tensors
    (conv_seg 2, linear_c1..4 8, linear_fuse conv 1 + bn 2, linear_pred 2) take lr x10; 176 - 60 = 116 rest."""
    cfg = Config.fromfile(f"{ROOT}/configs/segformer/segformer_mit-b0_512x512_ade20k_160k.py")
    assert cfg.optimizer.paramwise_cfg == OFFICIAL["paramwise_cfg"] and cfg.optimizer.lr == 6e-5
    model = build_segmentor(cfg.model)
    groups = {(round(g["lr"], 12), g["weight_decay"]): g for g in param_groups(
        model, 6e-5, 0.01, OFFICIAL["paramwise_cfg"])}
    assert {k: len(g["params"]) for k, g in groups.items()} == {(6e-5, 0.01): 116, (6e-5, 0.0): 60,
                                                                (6e-4, 0.01): 15}
    assert "backbone.block1.0.attn.norm.weight" in groups[(6e-5, 0.0)]["names"]
    assert "decode_head.linear_fuse.bn.weight" in groups[(6e-4, 0.01)]["names"]   # 'head' beats 'norm'


def test_cgrseg_substring_matching_quirks():
    """CGRSeg's custom keys match by substring (fact sheet 2.3): 'head' also hits the backbone's talking heads
    (lr x10) and 'norm' the MLP norms norm1/norm2/mid_norm (no decay)."""
    cfg = Config.fromfile(f"{ROOT}/configs/cgrseg/cgrseg_t_512x512_ade20k_160k.py")
    assert cfg.optimizer.lr == 1.2e-4 and sorted(cfg.optimizer.paramwise_cfg.custom_keys) == \
        ["absolute_pos_embed", "head", "norm"]
    model = build_segmentor(cfg.model)
    groups = {(round(g["lr"], 12), g["weight_decay"]): g["names"] for g in param_groups(
        model, 1.2e-4, 0.01, cfg.optimizer.paramwise_cfg)}
    assert "backbone.network.6.5.token_mixer.talking_head1.weight" in groups[(1.2e-3, 0.01)]
    assert "backbone.network.0.0.mlp.mid_norm.weight" in groups[(1.2e-4, 0.0)]
    assert "backbone.patch_embed.1.weight" in groups[(1.2e-4, 0.01)]   # stem BN: no 'norm' in its name
    assert all(n.startswith("decode_head.") or "talking_head" in n for n in groups[(1.2e-3, 0.01)])


# Hand-computed from mmcv's formula: poly(power 1, min 0, 160k) x linear warmup (1500, ratio 1e-6).
EXPECTED_FACTOR = {
    0: 1e-6,                                          # (1 - 0) * (1 - (1 - 0) * (1 - 1e-6))
    1: (1 - 1 / 160000) * (1 - (1 - 1 / 1500) * (1 - 1e-6)),
    750: 0.9953125 * 0.5000005,                       # regular 1 - 750/160000; warmup 1 - 0.5 * (1 - 1e-6)
    1499: (1 - 1499 / 160000) * (1 - (1 / 1500) * (1 - 1e-6)),
    1500: 0.990625,                                   # warmup over: 1 - 1500/160000
    80000: 0.5,
    159999: 1 / 160000,
}


@pytest.mark.parametrize("t", sorted(EXPECTED_FACTOR))
def test_poly_warmup_lr(t):
    sched = PolyLR(max_iters=160000, power=1.0, min_lr=0.0, warmup="linear", warmup_iters=1500,
                   warmup_ratio=1e-6)
    for lr0 in (6e-5, 6e-4):                          # backbone groups and the head (lr_mult 10)
        assert sched.lr(lr0, t) == pytest.approx(lr0 * EXPECTED_FACTOR[t], rel=1e-9, abs=0)


def test_schedule_applies_to_every_group():
    model = build_segmentor(Config.fromfile(f"{ROOT}/configs/segnext/segnext_tiny_512x512_ade20k_160k.py").model)
    opt = build_optimizer(model, OFFICIAL)
    PolyLR(160000, 1.0, 0.0, "linear", 1500, 1e-6).apply(opt, 80000)
    assert sorted(round(g["lr"], 12) for g in opt.param_groups) == [3e-5, 3e-5, 3e-4]


def test_adamw_step_and_state_round_trip():
    """One AdamW step equals the PyTorch formula; the saved moments restore exactly."""
    lin = jt.nn.Linear(3, 2)
    opt = build_optimizer(lin, dict(type="AdamW", lr=0.1, weight_decay=0.5))
    w0 = lin.weight.numpy().copy()
    x = jt.array(np.ones((4, 3), np.float32))
    loss = (lin(x) ** 2).sum()
    g = jt.grad(loss, lin.weight).numpy()
    opt.step(loss)
    m, v = 0.1 * g, 0.001 * g * g
    expected = w0 * (1 - 0.1 * 0.5) - 0.1 / 0.1 * m / (np.sqrt(v) / np.sqrt(0.001) + 1e-8)
    np.testing.assert_allclose(lin.weight.numpy(), expected, rtol=1e-5, atol=1e-6)
    state = optimizer_state(opt)
    opt2 = build_optimizer(lin, dict(type="AdamW", lr=0.1, weight_decay=0.5))
    load_optimizer_state(opt2, state)
    assert opt2.n_step == 1
    for a, b in zip(opt.param_groups[0]["m"], opt2.param_groups[0]["m"]):
        assert np.array_equal(a.numpy(), b.numpy())


def test_fused_adamw_equals_the_formula_and_jittors_over_steps():
    """The fused CPU AdamW: 5 steps over 25 tensors of ranks 1, 2 and 4 (two chunks of a rank, a tensor split
    over threads), two groups with their own lr and weight decay; against the AdamW formula in float64 and
    Jittor's own AdamW, within float32 rounding."""
    from jseg.engine.optim import AdamW
    rng = np.random.default_rng(0)
    shapes = [(7,), (3, 5), (4, 3, 3, 3), (70000,)] * 6 + [(2, 2)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    lrs = [(0.01, 0.05) if i < 10 else (0.003, 0.0) for i in range(len(shapes))]

    def run(cls):
        ps = [jt.array(a) for a in init]
        opt = cls([{"params": ps[:10], "lr": 0.01, "weight_decay": 0.05},
                   {"params": ps[10:], "lr": 0.003, "weight_decay": 0.0}], 0.01, eps=1e-8, betas=(0.9, 0.999))
        for _ in range(5):
            opt.step(sum((p * p * (i + 1)).sum() + p.sum() * 0.3 for i, p in enumerate(ps)))
            jt.sync_all()
        return [p.numpy() for p in ps], opt

    fused, opt = run(AdamW)
    ref, _ = run(jt.optim.AdamW)
    assert opt.n_step == 5 and len(opt.param_groups[1]["values"]) == 15
    ps = [a.astype(np.float64) for a in init]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    for t in range(1, 6):
        for i, p in enumerate(ps):
            lr, wd = lrs[i]
            g = 2 * p * (i + 1) + 0.3
            p *= 1 - lr * wd
            ms[i] = 0.9 * ms[i] + 0.1 * g
            vs[i] = 0.999 * vs[i] + 0.001 * g * g
            p -= lr / (1 - 0.9 ** t) * ms[i] / (np.sqrt(vs[i]) / np.sqrt(1 - 0.999 ** t) + 1e-8)
    for f, r, exact in zip(fused, ref, ps):
        scale = np.abs(exact).max()
        assert np.abs(f - exact).max() <= 1e-6 * scale
        assert np.abs(f - r).max() <= 1e-6 * scale
