"""A fourth model, added from this file alone (docs/adding_a_model.md): registered, built from a config,
loaded strictly from its own "released" checkpoint layouts, and counted by ``jseg.analysis`` and the
``analyze`` tool, without touching jseg.checkpoint or jseg.analysis."""
import numpy as np
import jittor as jt
import pytest
from jittor import nn

from jseg.analysis import count_macs, count_params, paper_ruleset
from jseg.checkpoint import CheckpointError, CheckpointRules, load_checkpoint, load_state_dict, save_checkpoint
from jseg.models import build_segmentor
from jseg.models.heads.decode_head import BaseDecodeHead
from jseg.models.layers import BatchNorm2d, conv2d, no_own_macs, numel
from jseg.registry import MODELS


class ToyBackbone(nn.Module):
    """A strided conv, BN, ReLU and a learned per-channel scale: one stride-2 map."""

    paper_macs_convention = "torchprofile"

    def __init__(self, channels=8):
        self.stem = conv2d(3, channels, 3, stride=2, padding=1)
        self.bn = BatchNorm2d(channels)
        self.scale = jt.ones((channels,), "float32")

    def execute(self, x):
        return [nn.relu(self.bn(self.stem(x))) * self.scale.reshape((1, -1, 1, 1))]

    def count_macs(self, convention, inputs, out):
        return numel(out[0]) if convention == "torchprofile" else 0   # * scale


def _release_to_ours(state_dict):
    """The 'released' layout calls the scale 'gamma'."""
    out, renamed = type(state_dict)(), []
    for k, v in state_dict.items():
        dst = k[:-len("gamma")] + "scale" if k.endswith("gamma") else k
        if dst != k:
            renamed.append((k, dst))
        out[dst] = v
    return out, renamed


def _hint(report):
    return "a toy hint" if "decode_head.extra.weight" in report.unexpected else None


ToyBackbone.checkpoint_rules = CheckpointRules(backbone_prefixes=("stem.",),
                                               classifier_keys={"fc.": "ImageNet classifier head"},
                                               convert=_release_to_ours, hint=_hint)


class ToyHead(BaseDecodeHead):
    def execute(self, inputs):
        return self.cls_seg(self._transform_inputs(inputs))

    count_macs = no_own_macs


TOY = dict(type="EncoderDecoder", backbone=dict(type="ToyBackbone", channels=8),
           decode_head=dict(type="ToyHead", in_channels=8, channels=8, num_classes=3, dropout_ratio=0.0))


@pytest.fixture(scope="module")
def registered():
    for cls in (ToyBackbone, ToyHead):
        MODELS.register(cls)
    yield
    for cls in (ToyBackbone, ToyHead):
        MODELS.remove(cls.__name__)


def _randomised(model, seed=0):
    rng = np.random.default_rng(seed)
    sd = {k: rng.standard_normal(v.shape).astype(np.float32) if v.dtype == "float32" else v.numpy()
          for k, v in model.state_dict().items()}
    sd["backbone.bn.running_var"] = np.abs(sd["backbone.bn.running_var"]) + 0.5
    return sd


def test_toy_model_loads_its_released_layouts_strictly(registered, tmp_path):
    model = build_segmentor(TOY)
    ours = _randomised(model)
    released = {(k[:-len("scale")] + "gamma" if k.endswith("scale") else k): v for k, v in ours.items()}
    report = load_state_dict(model, released)
    assert report.ok and report.renamed == [("backbone.gamma", "backbone.scale")]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours[k].reshape(v.shape), err_msg=k)

    # an ImageNet-style backbone checkpoint: unprefixed keys and a classifier, into the backbone
    imagenet = {k[len("backbone."):]: v for k, v in released.items() if k.startswith("backbone.")}
    imagenet["fc.weight"] = np.zeros((10, 8), np.float32)
    save_checkpoint(str(tmp_path / "toy_imagenet.pkl"), state_dict=imagenet)
    report, _ = load_checkpoint(model.backbone, str(tmp_path / "toy_imagenet.pkl"), target="backbone")
    assert report.layout == "backbone" and report.dropped == [("fc.weight", "ImageNet classifier head")]

    # a key the model lacks is refused, with the model's own hint
    bad = dict(ours, **{"decode_head.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): decode_head.extra.weight[\s\S]*a toy hint"):
        load_state_dict(model, bad)


def test_toy_model_is_counted_by_its_own_rules(registered, tmp_path):
    model = build_segmentor(TOY)
    assert paper_ruleset(model) == "torchprofile"
    macs = count_macs(model, (16, 16))
    # stem conv 3->8 k3 s2 on 8x8 outputs, BN (affine), * scale; head 1x1 conv 8->3; final resize 4/output
    assert macs["backbone"] == 8 * 8 * 8 * 3 * 9 + 512 + 512
    assert macs["decode_head"] == 3 * 8 * 8 * 8
    assert macs["resize"] == 4 * 3 * 16 * 16
    assert count_params(model) == (8 * 3 * 9 + 8) + 2 * 8 + 8 + (3 * 8 + 3)   # BN statistics are buffers

    from jseg.tools.analyze import analyze
    cfg = tmp_path / "toy.py"
    cfg.write_text(f"model = {TOY!r}\n")
    r = analyze(str(cfg), shape=(16, 16))
    assert r["rules"] == "torchprofile" and r["params"]["total"] == count_params(model)
