"""MiT (SegFormer encoder): the shipped configs build the official B0-B5 models (keys, shapes, sizes)."""
import pytest

from jseg.analysis import count_params
from jseg.config import Config
from jseg.models import build_segmentor
from jseg.models.backbones.mit import Attention, MixVisionTransformer
from jseg.models.layers import LayerNorm
from tests.helpers import assert_state_matches_tsv, ROOT, SEGFORMER

# fact sheet segformer_cgrseg_facts.md section 1.6 (NV heads, 150 classes; B0 exact, others in M to 2 decimals)
PARAMS_M = {0: (3.77, 3.32, 0.45), 1: (13.74, 13.15, 0.58), 2: (27.48, 24.20, 3.29), 3: (47.36, 44.07, 3.29),
            4: (64.13, 60.84, 3.29), 5: (84.73, 81.44, 3.29)}


def _model(b, dataset="512x512_ade20k"):
    return build_segmentor(Config.fromfile(f"{ROOT}/configs/segformer/segformer_mit-b{b}_{dataset}_160k.py").model)


def test_b0_keys_shapes_and_exact_params():
    model = _model(0)
    state = model.state_dict()
    assert_state_matches_tsv(state, f"{SEGFORMER}/segformer_b0_ade20k_state_dict_keys.tsv")
    assert (count_params(model), count_params(model.backbone), count_params(model.decode_head)) == \
        (3_772_044, 3_319_392, 452_652)


@pytest.mark.parametrize("b", [1, 2, 3, 4, 5])
def test_variant_params(b):
    model = _model(b)
    got = (count_params(model) / 1e6, count_params(model.backbone) / 1e6, count_params(model.decode_head) / 1e6)
    assert [round(v, 2) for v in got] == list(PARAMS_M[b])


def test_layernorm_eps_and_attention_layout():
    """Patch-embed and spatial-reduction norms use 1e-5, block and stage norms 1e-6 (fact sheet 1.1)."""
    m = _model(0).backbone
    assert isinstance(m, MixVisionTransformer)
    assert m.patch_embed1.norm.eps == 1e-5 and m.block1[0].attn.norm.eps == 1e-5
    assert m.block1[0].norm1.eps == m.block1[0].norm2.eps == m.norm1.eps == 1e-6
    attn = m.block1[0].attn
    assert isinstance(attn, Attention) and attn.sr_ratio == 8 and tuple(attn.sr.weight.shape) == (32, 32, 8, 8)
    assert not hasattr(m.block4[0].attn, "sr") and isinstance(m.norm4, LayerNorm)
    assert attn.scale == 32 ** -0.5


def test_cityscapes_config():
    model = _model(0, "1024x1024_cityscapes")
    assert model.decode_head.num_classes == 19
    assert model.test_cfg == dict(mode="slide", crop_size=(1024, 1024), stride=(768, 768))
