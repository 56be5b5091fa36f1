"""Layer semantics not covered by the official fixtures."""
import numpy as np
import jittor as jt

from jseg.models.layers import Dropout2d, GroupNorm, LayerNorm, bmm, resize


def test_dropout2d_drops_whole_channels_in_train_only():
    d = Dropout2d(0.5)
    x = jt.ones((8, 16, 4, 4))
    d.eval()
    assert (d(x).numpy() == 1).all()
    d.train()
    y = d(x).numpy().reshape(8, 16, -1)
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == y[:, :, :1]).all()
    assert 0 < (y[:, :, 0] == 0).sum() < 128


def test_norms_are_two_pass_at_large_means():
    """mean 100, std 0.1: E[x^2]-E[x]^2 in fp32 (Jittor's built-in norms) loses most of the variance."""
    rng = np.random.default_rng(0)
    x = (100 + 0.1 * rng.normal(size=(2, 64, 3, 5))).astype(np.float32)
    x64 = x.astype(np.float64)
    g = x64.reshape(2, 32, -1)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(GroupNorm(32, 64)(jt.array(x)).numpy(), ref, atol=1e-3)
    assert np.abs(jt.nn.GroupNorm(32, 64)(jt.array(x)).numpy() - ref).max() > 1e-2
    ref_ln = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(LayerNorm(64, axis=1)(jt.array(x)).numpy(), ref_ln, atol=1e-3)


def test_bmm_and_resize_identity():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 5, 7)).astype(np.float32), rng.normal(size=(3, 7, 2)).astype(np.float32)
    np.testing.assert_allclose(bmm(jt.array(a), jt.array(b)).numpy(), a @ b, rtol=1e-5, atol=1e-5)
    x = jt.array(a[None])
    assert resize(x, (5, 7)) is x
