"""Every model family end to end against the official PyTorch fixtures, one parametrized test per check.

A family is a row of ``FAMILIES``: how to build its reduced model with the official weights, its eval
fixtures (stage1..4, head logits, final logits at one or more input sizes) and its train-step fixtures
(loss, every gradient, BN buffers after the step).  Random draws the official code made (SegNeXt's Ham
bases) are in the fixtures under the stream's name and are injected (``jseg.models.random_streams``).
A new family adds a row; family-specific checks (head intermediates, slide, TTA) stay in its own file.
How each fixture was made: tests/fixtures/README.md.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import jittor as jt
import pytest

from jseg.checkpoint import model_state_dict
from jseg.models.random_streams import random_streams, stream_names
from tests.helpers import (CGRSEG, SEGFORMER, SEGNEXT, assert_close, assert_features_match, assert_grad_close,
                           cgrseg_tiny, load_npz, micro_model, segformer_tiny)


@dataclass
class Family:
    build: Callable
    folder: str
    eval: tuple
    final: str                        # the fixture's name of the logits resized to the input
    train: str
    train_overrides: dict
    grads: Optional[str] = None       # a separate gradient file (else in ``train``)
    buffers: Optional[str] = None     # a separate BN-buffer file (else in ``train``)
    buffer_prefix: str = "after_step."
    n_grads: Optional[int] = None     # parameters with a reference gradient
    n_buffers: Optional[int] = None
    nbt: Optional[int] = None         # num_batches_tracked after the step
    extra: dict = field(default_factory=dict)


FAMILIES = {
    "segnext": Family(micro_model, SEGNEXT, ("segnext_micro_ade5_random_eval_2x3x128x160.npz",
                                             "segnext_micro_ade5_random_eval_2x3x100x132.npz"),
                      "logits", "segnext_micro_ade5_random_train_step.npz",
                      dict(backbone__drop_path_rate=0.0, decode_head__dropout_ratio=0.0),
                      buffer_prefix="after_train.", n_grads=201, n_buffers=45),
    "segformer": Family(segformer_tiny, SEGFORMER, ("segformer_tiny_eval_b2_128x160.npz",
                                                    "segformer_tiny_eval_b1_100x132.npz"),
                        "final_logits", "segformer_tiny_train_b2_128x160.npz",
                        dict(backbone__drop_path_rate=0.0, decode_head__dropout_ratio=0.0),
                        grads="segformer_tiny_train_grads.npz",
                        buffers="segformer_tiny_train_bn_buffers_after_forward.npz", n_grads=133, nbt=1001),
    "cgrseg": Family(cgrseg_tiny, CGRSEG, ("cgrseg_tiny_eval_b2_128x160.npz", "cgrseg_tiny_eval_b1_100x132.npz"),
                     "final_logits", "cgrseg_tiny_train_b2_128x160.npz", dict(decode_head__dropout_ratio=0.0),
                     grads="cgrseg_tiny_train_grads.npz", buffers="cgrseg_tiny_train_bn_buffers_after_forward.npz",
                     n_grads=287, n_buffers=168, nbt=1001),   # 56 BNs (46 backbone/SyncBN + 10 head BN) x 3
}
EVAL_CASES = [(fam, name) for fam, family in FAMILIES.items() for name in family.eval]


def _streams(model, fixture):
    """The fixture's draws of the model's random streams, one forward's worth each."""
    return random_streams(inject={s: [fixture[s]] for s in stream_names(model) if s in fixture})


@pytest.mark.parametrize("no_grad", [False, True], ids=["graph", "no_grad"])
@pytest.mark.parametrize("family,name", EVAL_CASES)
def test_eval_stages_head_and_final_logits(family, name, no_grad):
    """With a graph the resizes are Jittor's differentiable op; under no_grad the threaded CPU kernel."""
    fam = FAMILIES[family]
    f = load_npz(name, fam.folder)
    model = fam.build()
    with jt.flag_scope(no_grad=int(no_grad)), _streams(model, f):
        out = model.forward_features(jt.array(f["input"]))
    assert_features_match(out, f, final=fam.final)
    if "pred" in f:
        assert (np.argmax(out["logits"].numpy(), 1) == f["pred"]).mean() > 0.999


@pytest.mark.parametrize("family", list(FAMILIES))
def test_train_step_loss_every_gradient_and_bn_buffers(family):
    fam = FAMILIES[family]
    f = load_npz(fam.train, fam.folder)
    grads_ref = load_npz(fam.grads, fam.folder) if fam.grads else f
    buffers_ref = load_npz(fam.buffers, fam.folder) if fam.buffers else f
    model = fam.build(train=True, **fam.train_overrides)
    with _streams(model, f):
        feats = model.extract_feat(jt.array(f["input"]))
        for i in range(1, 5):
            if f"train_stage{i}" in f:
                assert_close(feats[i - 1], f[f"train_stage{i}"], f"train_stage{i}")
        losses = {f"decode.{k}": v for k, v in model.decode_head.forward_train(feats, jt.array(f["label"])).items()}
    loss, log_vars = model.parse_losses(losses)
    assert set(log_vars) == {"decode.loss_ce", "decode.acc_seg", "loss"}
    assert_close(loss, f["loss"].reshape(1), "loss (mean over ALL pixels)")
    if "acc_seg" in f:
        assert abs(log_vars["decode.acc_seg"] - float(f["acc_seg"])) < 1e-3

    params = {k: v for k, v in model.state_dict().items() if not v.is_stop_grad()}
    with_grad = [k[len("grad."):] for k in grads_ref if k.startswith("grad.")]
    no_grad = [k[len("nograd."):] for k in grads_ref if k.startswith("nograd.")]   # official, never used
    assert sorted(with_grad + no_grad) == sorted(params) and len(with_grad) == fam.n_grads
    grads = jt.grad(loss, list(params.values()))
    for (name, _), g in zip(params.items(), grads):
        if name in no_grad:
            assert np.abs(g.numpy()).max() == 0, name
        else:
            assert_grad_close(g, grads_ref["grad." + name], name)

    state = model_state_dict(model)
    buffers = {k[len(fam.buffer_prefix):]: v for k, v in buffers_ref.items() if k.startswith(fam.buffer_prefix)}
    assert buffers and (fam.n_buffers is None or len(buffers) == fam.n_buffers)
    for key, v in buffers.items():
        if key.endswith("num_batches_tracked"):
            assert state[key].dtype == np.int64 and state[key].shape == () and state[key] == v, key
            assert fam.nbt is None or v == fam.nbt, key
        else:
            assert_close(state[key], v, key)
