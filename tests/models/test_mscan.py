"""MSCAN modules and variants against the official PyTorch fixtures (tests/fixtures/segnext)."""
import numpy as np
import jittor as jt
import pytest

from jseg.checkpoint import model_state_dict
from jseg.config import Config
from jseg.models import build_segmentor
from jseg.models.backbones.mscan import AttentionModule, Block, OverlapPatchEmbed, SpatialAttention, StemConv
from jseg.models.layers import DropPath
from tests.helpers import (ROOT, assert_close, assert_state_matches_tsv, load_module_params, load_npz, nchw_to_tokens,
                           segnext_path, tokens_to_nchw)

BN = dict(type="BN", requires_grad=True)


def test_attention_module_msca():
    f = load_npz("modules/attention_module.npz")
    m = AttentionModule(32)
    load_module_params(m, f)
    m.eval()
    assert_close(m(jt.array(f["input"])), f["output"], "MSCA output")


def test_spatial_attention():
    f = load_npz("modules/spatial_attention.npz")
    m = SpatialAttention(32)
    load_module_params(m, f)
    m.eval()
    assert_close(m(jt.array(f["input"])), f["output"], "SpatialAttention output")


def test_block_eval_and_train_with_bn_buffers():
    f = load_npz("modules/block.npz")
    H, W = int(f["H"]), int(f["W"])
    x = jt.array(tokens_to_nchw(f["input"], H, W))
    m = Block(32, mlp_ratio=4, drop_path=0.0, norm_cfg=BN)
    load_module_params(m, f)
    m.eval()
    assert_close(nchw_to_tokens(m(x)), f["output_eval"], "Block eval output")
    m.train()
    assert_close(nchw_to_tokens(m(x)), f["output_train"], "Block train output (batch statistics)")
    state = model_state_dict(m)
    buffers = [k for k in f if k.startswith("after_train.")]
    assert len(buffers) == 6
    for k in buffers:
        key = k[len("after_train."):]
        assert state[key].shape == f[k].shape, key
        assert_close(state[key], f[k], f"{key} after one train forward")


def test_stem_conv():
    f = load_npz("modules/stem.npz")
    m = StemConv(3, 32, norm_cfg=BN)
    load_module_params(m, f)
    m.eval()
    out = m(jt.array(f["input"]))
    assert tuple(out.shape[2:]) == (int(f["H"]), int(f["W"]))
    assert_close(nchw_to_tokens(out), f["output"], "StemConv tokens")


def test_overlap_patch_embed():
    f = load_npz("modules/patch_embed.npz")
    m = OverlapPatchEmbed(patch_size=3, stride=2, in_chans=32, embed_dim=64, norm_cfg=BN)
    load_module_params(m, f)
    m.eval()
    out = m(jt.array(f["input"]))
    assert tuple(out.shape[2:]) == (int(f["H"]), int(f["W"]))
    assert_close(nchw_to_tokens(out), f["output"], "OverlapPatchEmbed tokens")


PARAMS = {"tiny": 4_263_414, "small": 13_932_886, "base": 27_636_310, "large": 48_926_550}


@pytest.mark.parametrize("variant", list(PARAMS))
def test_variant_params_keys_and_shapes(variant):
    """The shipped ADE20K config builds the official model: parameter count, key order and shapes."""
    cfg = Config.fromfile(f"{ROOT}/configs/segnext/segnext_{variant}_512x512_ade20k_160k.py")
    model = build_segmentor(cfg.model)
    state = model.state_dict()
    n_params = sum(int(np.prod(v.shape)) for v in state.values() if not v.is_stop_grad())
    assert n_params == PARAMS[variant]
    assert_state_matches_tsv(state, segnext_path(f"keys/keys_segnext_{variant}.tsv"))


@pytest.mark.parametrize("variant,params", [("tiny", 4_229_747), ("large", 48_792_275)])
def test_cityscapes_configs(variant, params):
    cfg = Config.fromfile(f"{ROOT}/configs/segnext/segnext_{variant}_1024x1024_cityscapes_160k.py")
    model = build_segmentor(cfg.model)
    assert sum(int(np.prod(v.shape)) for v in model.state_dict().values() if not v.is_stop_grad()) == params
    assert model.test_cfg == dict(mode="slide", crop_size=(1024, 1024), stride=(768, 768))


def test_drop_path_rate_schedule_and_semantics():
    cfg = Config.fromfile(f"{ROOT}/configs/segnext/segnext_tiny_512x512_ade20k_160k.py")
    bb = build_segmentor(cfg.model).backbone
    rates = [blk.drop_path.drop_prob for i in range(1, 5) for blk in getattr(bb, f"block{i}")]
    np.testing.assert_allclose(rates, np.linspace(0, 0.1, 13), atol=1e-7)
    dp = DropPath(0.5)
    x = jt.ones((64, 2, 3, 3))
    dp.eval()
    assert (dp(x).numpy() == 1).all()
    dp.train()
    y = dp(x).numpy()
    per_sample = y.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}                  # dropped or rescaled by 1/keep
    assert (per_sample == per_sample[:, :1]).all()                     # whole sample at once
    assert 10 < (per_sample[:, 0] == 0).sum() < 54                     # both outcomes happen
