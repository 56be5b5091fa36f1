"""NMF2D, Hamburger and LightHamHead against the official PyTorch fixtures."""
import numpy as np
import jittor as jt
import pytest

from jseg.config import ConfigError
from jseg.models.heads.ham_head import NMF2D, Hamburger
from jseg.models.random_streams import random_streams
from tests.helpers import assert_close, assert_grad_close, load_module_params, load_npz

GN = dict(type="GN", num_groups=32, requires_grad=True)


def test_bases_normalisation():
    f = load_npz("modules/nmf2d.npz")
    assert_close(NMF2D.normalize(jt.array(f["bases_raw"])), f["bases"], "F.normalize(bases_raw, dim=1)",
                 atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_nmf2d_steps_output_and_full_gradient(mode):
    f = load_npz("modules/nmf2d.npz")
    nmf = NMF2D.from_ham_kwargs(dict(MD_R=8))
    assert nmf.inv_t == 1 and nmf.train_steps == int(f["train_steps"]) == 6 and nmf.eval_steps == 7
    nmf.train() if mode == "train" else nmf.eval()
    x = jt.array(f["input"])
    B, C, H, W = f["input"].shape
    flat = x.reshape((B, C, H * W))
    bases0 = jt.array(f["bases"])

    steps = nmf.train_steps if mode == "train" else nmf.eval_steps
    nmf.train_steps = nmf.eval_steps = 0
    _, coef_init = nmf.local_inference(flat, bases0)
    nmf.train_steps = nmf.eval_steps = steps
    assert_close(coef_init, f[f"{mode}_coef_init"], "softmax coefficient init")

    bases, coef = nmf.local_inference(flat, bases0)
    assert_close(bases, f[f"{mode}_bases_final"], f"bases after {steps} steps")
    assert_close(coef, f[f"{mode}_coef_after_steps"], f"coef after {steps} steps")
    assert_close(NMF2D.update_coef(flat, bases, coef), f[f"{mode}_coef_final"], "compute_coef")

    with random_streams(inject={"nmf_bases": [f["bases"]]}) as streams:
        out = nmf(x)
    assert streams.pending("nmf_bases") == 0
    assert_close(out, f[f"{mode}_output"], "NMF2D output")
    grad = jt.grad((out * jt.array(f[f"{mode}_grad_output"])).sum(), x)
    assert_grad_close(grad, f[f"{mode}_grad_input"], "d output / d input through all steps")


def test_hamburger_eval():
    f = load_npz("modules/hamburger.npz")
    ham = Hamburger(64, dict(MD_R=8), norm_cfg=GN)
    load_module_params(ham, f)
    ham.eval()
    with random_streams(inject={"nmf_bases": [f["bases"]]}):
        assert_close(ham(jt.array(f["input"])), f["output"], "Hamburger output")


def test_seeded_bases_are_reproducible():
    f = load_npz("modules/nmf2d.npz")
    x = jt.array(f["input"])
    outs = []
    for seed in (123, 123, 7):
        nmf = NMF2D(R=8, seed=seed)
        nmf.eval()
        outs.append(nmf(x).numpy())
    assert np.array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], outs[2])
    nmf = NMF2D(R=8)  # unseeded: Jittor's RNG, a new draw every forward (official behaviour)
    nmf.eval()
    assert not np.allclose(nmf(x).numpy(), nmf(x).numpy())


def test_injected_bases_shape_is_checked():
    nmf = NMF2D(R=8)
    with random_streams(inject={"nmf_bases": [np.ones((2, 64, 4), np.float32)]}):
        with pytest.raises(ValueError, match=r"injected NMF bases have shape \(2, 64, 4\).*\(2, 64, 8\)"):
            nmf(jt.ones((2, 64, 3, 3)))


def test_ham_kwargs_validation():
    nmf = NMF2D.from_ham_kwargs(dict(MD_S=1, MD_D=512, MD_R=16, TRAIN_STEPS=6, EVAL_STEPS=7, INV_T=100, ETA=0.9,
                                     RAND_INIT=True, SPATIAL=True))
    assert (nmf.S, nmf.R, nmf.inv_t) == (1, 16, 1)
    mm1 = NMF2D.from_ham_kwargs(dict(MD_S=1, MD_R=16, train_steps=5, eval_steps=9, inv_t=100, rand_init=True))
    assert (mm1.train_steps, mm1.eval_steps) == (5, 9)
    with pytest.raises(ConfigError, match="MD_Q"):
        NMF2D.from_ham_kwargs(dict(MD_Q=3))
    with pytest.raises(NotImplementedError, match="RAND_INIT"):
        NMF2D.from_ham_kwargs(dict(RAND_INIT=False))


def test_per_sample_keys_do_not_depend_on_batching():
    f = load_npz("modules/nmf2d.npz")
    x = f["input"]
    nmf = NMF2D(R=8)
    nmf.eval()
    with random_streams(keys=[(3, 1, 0), (3, 1, 1)]):
        both = nmf(jt.array(x)).numpy()
    halves = []
    for j in range(2):
        with random_streams(keys=[(3, 1, j)]):
            halves.append(nmf(jt.array(x[j:j + 1])).numpy())
            second = nmf(jt.array(x[j:j + 1])).numpy()   # the next forward with the same keys: new bases
    np.testing.assert_allclose(both, np.concatenate(halves), rtol=1e-5, atol=1e-6)
    assert not np.allclose(second, halves[1])
