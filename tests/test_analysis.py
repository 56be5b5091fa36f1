"""Parameters and torchprofile-style GMACs of the shipped SegNeXt configs against the official numbers.

Expected values: fact sheet section 7 (segnext_facts.md), measured on the official
PyTorch code with torchprofile 0.1.0 (``profile_macs`` of ``forward_dummy``) and
``sum(p.numel())``; the paper's rounded figures are T 6.6 / S 15.9 / B 34.9 /
L 70.0 GMACs at 512x512 and 50.5 / 124.6 / 275.6 / 553.7 at 2048x1024.
"""
import jittor as jt
import pytest
from jittor import nn

from jseg.analysis import MissingMacRule, count_macs, count_params, nmf_macs
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

    from jseg import analysis
    analysis.MAC_RULES.update({Net: None, Seg: None})
    try:
        macs = count_macs(Seg(), (10, 12))
    finally:
        del analysis.MAC_RULES[Net], analysis.MAC_RULES[Seg]
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

    with pytest.raises(MissingMacRule, match="no MAC rule for .*Mystery"):
        count_macs(Seg(), (8, 8))
