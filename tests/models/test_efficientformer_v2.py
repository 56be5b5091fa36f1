"""EfficientFormerV2 / CGRSeg structure: the shipped configs build the authors' T/B/L models."""
import numpy as np
import pytest

from jseg.analysis import count_params
from jseg.checkpoint import read_checkpoint
from jseg.config import Config
from jseg.models import build_segmentor
from jseg.models.backbones.efficientformer_v2 import Attention4D, Attention4DDownsample, AttnFFN, FFN
from tests.helpers import assert_state_matches_tsv, CGRSEG, CGRSEG_TINY_PTH, ROOT, cgrseg_tiny

# segformer_cgrseg_facts.md section 2.5: T exact; B and L in M to 2 decimals (total, backbone, head)
PARAMS_M = {"b": (19.11, 12.15, 6.96), "l": (35.68, 25.58, 10.10)}


def _model(v):
    return build_segmentor(Config.fromfile(f"{ROOT}/configs/cgrseg/cgrseg_{v}_512x512_ade20k_160k.py").model)


def test_cgrseg_t_keys_shapes_and_exact_params():
    model = _model("t")
    state = model.state_dict()
    assert_state_matches_tsv(state, f"{CGRSEG}/cgrseg_t_ade20k_state_dict_keys.tsv")
    assert (count_params(model), count_params(model.backbone), count_params(model.decode_head)) == \
        (9_364_647, 5_748_360, 3_616_287)
    # block layout of EfficientFormerV2-S1: the last 2 blocks of stages 2 and 3 are attention blocks
    net = model.backbone.network
    assert [type(b).__name__ for b in net[4]] == ["FFN"] * 7 + ["AttnFFN"] * 2
    assert [type(b).__name__ for b in net[6]] == ["FFN"] * 4 + ["AttnFFN"] * 2
    assert net[4][7].token_mixer.stride == 2 and net[6][4].token_mixer.stride is None
    assert tuple(net[5].attn.attention_biases_seg.shape) == (8, 1024)


@pytest.mark.parametrize("v", ["b", "l"])
def test_cgrseg_b_l_params(v):
    model = _model(v)
    got = [count_params(m) / 1e6 for m in (model, model.backbone, model.decode_head)]
    assert [round(x, 2) for x in got] == list(PARAMS_M[v])


def test_bias_index_tables_equal_the_checkpoint():
    """The offset numbering is recomputed here; the authors' code stores it in the checkpoint (int64)."""
    sd, _ = read_checkpoint(CGRSEG_TINY_PTH)
    model = build_segmentor(Config.fromfile(f"{CGRSEG}/cgrseg_tiny_config.py").model)
    n = 0
    for name, m in model.backbone.named_modules():
        if isinstance(m, (Attention4D, Attention4DDownsample)):
            ref = np.asarray(sd[f"backbone.{name}.attention_bias_idxs_seg"])
            assert np.array_equal(m.attention_bias_idxs_seg.numpy(), ref), name
            n += 1
    assert n == 3


def test_model_blocks_have_layer_scales_of_official_shape():
    model = cgrseg_tiny()
    blocks = [b for b in model.backbone.modules() if isinstance(b, (FFN, AttnFFN))]
    assert len(blocks) == 6 and all(tuple(b.layer_scale_2.shape) == (b.mlp.norm2.num_features, 1, 1)
                                    for b in blocks)


def test_the_configs_norm_reaches_every_backbone_norm():
    """The configs ask for SyncBN: every backbone BN synchronises (the official training converts them); the
    head's RCM/RCA BNs stay per-process BNs as the authors' code builds them.  The fixture model's official
    run had 46 SyncBatchNorm and 10 BatchNorm2d (tests/fixtures/cgrseg/README.md).  GN reaches them too."""
    from jseg.models.layers import BatchNorm2d, GroupNorm
    from tests.helpers import CGRSEG_TINY_CONFIG
    for model in (_model("t"), build_segmentor(Config.fromfile(CGRSEG_TINY_CONFIG).model)):
        backbone_bns = [m for m in model.backbone.modules() if isinstance(m, BatchNorm2d)]
        assert backbone_bns and all(m.sync for m in backbone_bns)
    bns = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    assert (sum(m.sync for m in bns), sum(not m.sync for m in bns)) == (46, 10)
    cfg = Config.fromfile(f"{ROOT}/configs/cgrseg/cgrseg_t_512x512_ade20k_160k.py")
    cfg.merge_options({"model.backbone.norm_cfg": dict(type="GN", num_groups=8, requires_grad=True)})
    gn = build_segmentor(cfg.model).backbone
    assert not any(isinstance(m, BatchNorm2d) for m in gn.modules())
    assert sum(isinstance(m, GroupNorm) for m in gn.modules()) == len([m for m in _model("t").backbone.modules()
                                                                         if isinstance(m, BatchNorm2d)])
