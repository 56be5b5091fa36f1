"""ONNX export (jseg/export/onnx_graph.py, onnx_export.py; the CLI in tests/tools/test_export.py):
the graphs of the three fixture models, run in onnxruntime, give the official PyTorch logits and
jseg's within the fp32 noise floor, given the same NMF bases.

onnx and onnxruntime are test-only dependencies (scripts/run_tests.sh installs them)."""
import numpy as np
import pytest
import jittor as jt
from jittor import nn

from jseg.export.onnx_export import build_graph
from jseg.export.onnx_graph import ExportError
from jseg.models.heads.ham_head import NMF2D
from jseg.models.layers import GELU
from jseg.models.random_streams import random_streams
from tests.helpers import (CGRSEG, CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH, SEGFORMER, SEGFORMER_TINY_CONFIG,
                           SEGFORMER_TINY_PTH, assert_close, load_npz, micro_model)

onnx = pytest.importorskip("onnx", reason="test dependency: scripts/run_tests.sh installs onnx")
ort = pytest.importorskip("onnxruntime", reason="test dependency: scripts/run_tests.sh installs onnxruntime")


def _model(config, pth):
    from jseg.checkpoint import load_checkpoint
    from jseg.config import Config
    from jseg.models import build_segmentor
    model = build_segmentor(Config.fromfile(config).model)
    load_checkpoint(model, pth)
    return model.eval()


def _session(g):
    proto = g.to_model()
    onnx.checker.check_model(proto)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _run(session, **feeds):
    return session.run(["logits"], {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()})[0]


def _jseg_logits(model, img, bases=None):
    with jt.no_grad(), random_streams(inject={"nmf_bases": [bases]} if bases is not None else None):
        return model.encode_decode(jt.array(img)).numpy()


@pytest.fixture(scope="module")
def segnext():
    return micro_model()


def test_segnext_fixed_shape_equals_pytorch_and_jseg(segnext):
    fx = load_npz("segnext_micro_ade5_random_eval_2x3x100x132.npz")
    g, notes = build_graph(segnext, (100, 132), batch=2)
    assert notes == [] and [i[0] for i in g.inputs] == ["input", "nmf_bases"]
    out = _run(_session(g), input=fx["input"], nmf_bases=fx["nmf_bases"])
    assert_close(out, fx["logits"], "onnxruntime vs PyTorch")
    assert_close(out, _jseg_logits(segnext, fx["input"], fx["nmf_bases"]), "onnxruntime vs jseg")


def test_segnext_dynamic_graph_at_two_sizes(segnext):
    g, _ = build_graph(segnext, dynamic=True)
    assert g.inputs[0][1] == ["N", 3, "H", "W"] and g.inputs[1][1] == ["N*1", 64, 4]
    session = _session(g)
    for name in ("segnext_micro_ade5_random_eval_2x3x100x132.npz", "segnext_micro_ade5_random_eval_2x3x128x160.npz"):
        fx = load_npz(name)
        assert_close(_run(session, input=fx["input"], nmf_bases=fx["nmf_bases"]), fx["logits"], name)
        one = _run(session, input=fx["input"][1:], nmf_bases=fx["nmf_bases"][1:])     # batch 1 as well
        assert_close(one, fx["logits"][1:], name + " [1:]")


def test_bases_seed_makes_the_bases_constants_as_a_seeded_nmf(segnext):
    fx = load_npz("segnext_micro_ade5_random_eval_2x3x100x132.npz")
    img = fx["input"][:1]
    g, _ = build_graph(segnext, (100, 132), batch=1, bases_seed=7)
    assert [i[0] for i in g.inputs] == ["input"]
    bases = NMF2D.from_raw_draws(np.random.default_rng(7).random((1, 64, 4), dtype=np.float32))
    assert_close(_run(_session(g), input=img), _jseg_logits(segnext, img, bases), "seeded bases")
    # a dynamic batch: every image gets the same constant bases
    g, _ = build_graph(segnext, dynamic=True, bases_seed=7)
    assert_close(_run(_session(g), input=fx["input"]), _jseg_logits(segnext, fx["input"], np.concatenate([bases] * 2)),
                 "seeded bases, batch 2")


def test_segformer_dynamic_graph_equals_pytorch_at_two_sizes():
    model = _model(SEGFORMER_TINY_CONFIG, SEGFORMER_TINY_PTH)
    g, notes = build_graph(model, dynamic=True)
    assert notes == [] and [i[0] for i in g.inputs] == ["input"]
    session = _session(g)
    for name in ("segformer_tiny_eval_b1_100x132.npz", "segformer_tiny_eval_b2_128x160.npz"):
        fx = load_npz(name, SEGFORMER)
        out = _run(session, input=fx["input"])
        assert_close(out, fx["final_logits"], name)
        if name.endswith("b1_100x132.npz"):
            assert_close(out, _jseg_logits(model, fx["input"]), name + " vs jseg")


def test_cgrseg_is_exported_at_a_fixed_shape_and_says_so():
    model = _model(CGRSEG_TINY_CONFIG, CGRSEG_TINY_PTH)
    fx = load_npz("cgrseg_tiny_eval_b2_128x160.npz", CGRSEG)
    g, notes = build_graph(model, (128, 160), batch=2, dynamic=True)
    assert len(notes) == 1 and "fixed shape 2x3x128x160" in notes[0] and "attention biases" in notes[0]
    assert g.inputs[0][1] == [2, 3, 128, 160]
    out = _run(_session(g), input=fx["input"])
    assert_close(out, fx["final_logits"], "onnxruntime vs PyTorch")
    assert_close(out, _jseg_logits(model, fx["input"]), "onnxruntime vs jseg")


class Swish(nn.Module):
    def execute(self, x):
        return x * jt.sigmoid(x)


class ScaledGELU(GELU):
    """Inherits GELU's exporter but computes something else: must not be exported with it."""

    def execute(self, x):
        return 2 * super().execute(x)


@pytest.mark.parametrize("layer, name", [(Swish, "tests.export.test_onnx_export.Swish"),
                                         (ScaledGELU, "tests.export.test_onnx_export.ScaledGELU")])
def test_a_layer_without_an_exporter_is_named(layer, name):
    model = micro_model()
    model.backbone.block1[0].mlp.act = layer()
    with pytest.raises(ExportError) as e:
        build_graph(model, (64, 64))
    msg = str(e.value)
    assert "backbone.block1.0.mlp.act" in msg and name in msg and "no ONNX exporter" in msg
    assert "\n" not in msg


def test_opsets_outside_the_written_range_are_refused(segnext):
    with pytest.raises(ExportError, match="--opset 18: jseg writes opsets 13-17"):
        build_graph(segnext, (64, 64), opset=18)
    fx = load_npz("segnext_micro_ade5_random_eval_2x3x100x132.npz")
    g, _ = build_graph(segnext, (100, 132), batch=2, opset=13)
    assert g.to_model().opset_import[0].version == 13
    assert_close(_run(_session(g), input=fx["input"], nmf_bases=fx["nmf_bases"]), fx["logits"], "opset 13")
