"""Parameters and torchprofile-style GMACs of the shipped SegNeXt configs against the official numbers.

Expected values: fact sheet section 7 (segnext_facts.md), measured on the official
PyTorch code with torchprofile 0.1.0 (``profile_macs`` of ``forward_dummy``) and
``sum(p.numel())``; the paper's rounded figures are T 6.6 / S 15.9 / B 34.9 /
L 70.0 GMACs at 512x512 and 50.5 / 124.6 / 275.6 / 553.7 at 2048x1024.
"""
import pytest
from jittor import nn

from jseg.analysis import MissingMacRule, count_macs, count_params, paper_ruleset
from jseg.models.layers import no_own_macs
from jseg.config import Config
from jseg.models import build_segmentor
from tests.helpers import ROOT

# variant: (torchprofile GMACs ADE 512x512, Cityscapes 2048x1024, backbone params, ADE head params)
OFFICIAL = {"tiny": (6.593, 50.54, 3_903_584, 359_830),
            "small": (15.853, 124.62, 13_450_176, 482_710),
            "base": (34.896, 275.65, 26_277_824, 1_358_486),
            "large": (69.955, 553.70, 44_636_864, 4_289_686)}
PAPER = {"tiny": (6.6, 50.5), "small": (15.9, 124.6), "base": (34.9, 275.6), "large": (70.0, 553.7)}


def _model(variant, dataset):
    return build_segmentor(Config.fromfile(f"{ROOT}/configs/segnext/segnext_{variant}_{dataset}_160k.py").model)


@pytest.mark.parametrize("variant", list(OFFICIAL))
def test_params_and_gmacs_equal_torchprofile(variant):
    ade, city, backbone, head = OFFICIAL[variant]
    model = _model(variant, "512x512_ade20k")
    assert count_params(model.backbone) == backbone
    assert count_params(model.decode_head) == head
    assert count_params(model) == backbone + head
    macs = count_macs(model, (512, 512))
    assert macs["total"] / 1e9 == pytest.approx(ade, rel=2e-4)
    assert macs["total"] / 1e9 == pytest.approx(PAPER[variant][0], rel=0.01)
    assert macs["total"] == macs["backbone"] + macs["decode_head"] + macs["resize"]
    assert macs["resize"] == 4 * 150 * 512 * 512
    city_model = _model(variant, "1024x1024_cityscapes")
    gmacs = count_macs(city_model, (1024, 2048))["total"] / 1e9
    assert gmacs == pytest.approx(city, rel=2e-4)
    assert gmacs == pytest.approx(PAPER[variant][1], rel=0.01)


# SegFormer: NVlabs tools/get_flops.py (mmcv module counter + sra_flops), NV heads, 150 classes;
# segformer_cgrseg_facts.md section 1.6 (the paper's Table 1a to rounding; B5 183.3 at 640x640)
SEGFORMER_GFLOPS = {0: 8.42, 1: 15.93, 2: 62.43, 3: 79.09, 4: 95.73, 5: 111.70}


@pytest.mark.parametrize("b", list(SEGFORMER_GFLOPS))
def test_segformer_gflops_equal_nvlabs_rule(b):
    cfg = Config.fromfile(f"{ROOT}/configs/segformer/segformer_mit-b{b}_512x512_ade20k_160k.py")
    model = build_segmentor(cfg.model)
    assert paper_ruleset(model) == "nvlabs"
    g = count_macs(model, (512, 512), ruleset="nvlabs")["total"] / 1e9
    assert abs(g - SEGFORMER_GFLOPS[b]) <= 0.006   # the reference is rounded to 0.01
    assert g == pytest.approx(SEGFORMER_GFLOPS[b], rel=0.01)


def test_segformer_b5_640_and_the_attention_term():
    model = build_segmentor(Config.fromfile(f"{ROOT}/configs/segformer/segformer_mit-b5_640x640_ade20k_160k.py").model)
    assert abs(count_macs(model, (640, 640), ruleset="nvlabs")["total"] / 1e9 - 183.44) <= 0.006
    b0 = build_segmentor(Config.fromfile(f"{ROOT}/configs/segformer/segformer_mit-b0_512x512_ade20k_160k.py").model)
    modules = count_macs(b0, (512, 512), ruleset="mmcv")["total"] / 1e9
    assert abs(modules - 7.38) <= 0.006   # fact sheet: 7.38 from modules + 1.04 from attention


# CGRSeg: mmseg's stock get_flops (mmcv module counter), 512x512, 150 classes;
# segformer_cgrseg_facts.md section 2.5 (the authors' README: 4.0 / 7.6 / 14.9)
CGRSEG_GFLOPS = {"t": 4.07, "b": 7.79, "l": 15.09}


@pytest.mark.parametrize("v", list(CGRSEG_GFLOPS))
def test_cgrseg_gflops_equal_mmcv_counter(v):
    model = build_segmentor(Config.fromfile(f"{ROOT}/configs/cgrseg/cgrseg_{v}_512x512_ade20k_160k.py").model)
    assert paper_ruleset(model) == "mmcv"
    g = count_macs(model, (512, 512), ruleset="mmcv")["total"] / 1e9
    assert g == pytest.approx(CGRSEG_GFLOPS[v], rel=0.01)
    if v == "t":
        assert abs(g - 4.07) <= 0.006


def test_counts_eval_mode_and_restores_train_mode():
    model = _model("tiny", "512x512_ade20k")
    eval_count = count_macs(model, (64, 64))
    model.train()
    assert count_macs(model, (64, 64)) == eval_count   # NMF counted with its 7 eval steps, not 6
    assert model.is_training()


def test_conv_rule_by_hand():
    class Net(nn.Module):
        def __init__(self):
            self.dw = nn.Conv2d(8, 8, (1, 7), padding=(0, 3), groups=8)
            self.pw = nn.Conv2d(8, 4, 1)

        def execute(self, x):
            return self.pw(self.dw(x))

    class Seg(nn.Module):  # count_macs needs encode_decode
        def __init__(self):
            self.backbone = Net()

        def encode_decode(self, img):
            return self.backbone(img[:, :1].broadcast((img.shape[0], 8, *img.shape[2:])))

    Net.count_macs = Seg.count_macs = no_own_macs   # only the two convs count
    macs = count_macs(Seg(), (10, 12))
    assert macs["backbone"] == 8 * 10 * 12 * 7 + 4 * 10 * 12 * 8
    assert macs["resize"] == 4 * 4 * 10 * 12


def test_module_without_rule_is_refused():
    class Mystery(nn.Module):
        def execute(self, x):
            return x * x

    class Seg(nn.Module):
        def __init__(self):
            self.backbone = Mystery()

        def encode_decode(self, img):
            return self.backbone(img)

    with pytest.raises(MissingMacRule, match="no counting rule for .*Mystery"):
        count_macs(Seg(), (8, 8))
