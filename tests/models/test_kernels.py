"""The threaded CPU kernels (jseg.models.kernels): bilinear resize (forward against PyTorch's float32
arithmetic, backward against the transposed interpolation and Jittor's own autograd), argmax,
softmax and depth-wise convolution (forward and gradients against Jittor's ops).

The reference below is a NumPy transcription of the rule PyTorch's CPU
``upsample_bilinear2d`` documents and applies (float32 throughout): scale =
in/out (align_corners: (in-1)/(out-1)), src = max(scale*(dst+0.5)-0.5, 0),
i0 = min(floor(src), in-1), i1 = i0 + (i0 < in-1), l1 = clamp(src-i0, 0, 1),
a same-size axis is copied, and the two axes are combined as
h0*(w0*a + w1*b) + h1*(w0*c + w1*d).  End-to-end agreement with real PyTorch
outputs is checked on the fixtures in test_segmentor.py (under no_grad).
"""
import jittor as jt
import numpy as np
import pytest
from jittor import nn

from jseg.models.kernels import argmax_cpu, bilinear_resize_cpu, bmm_cpu, depthwise_conv2d_cpu, softmax_cpu
from jseg.models.layers import conv2d, resize, softmax
from jseg.models.layers.conv import DepthwiseConv2d

f32 = np.float32


def _axis(n_in, n_out, align_corners):
    if n_in == n_out:
        i = np.arange(n_out)
        return i, i, np.zeros(n_out, f32)
    if align_corners:
        s = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
    else:
        s = f32(n_in) / f32(n_out)
    d = np.arange(n_out).astype(f32)
    src = (s * d) if align_corners else np.maximum(s * (d + f32(0.5)) - f32(0.5), f32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(src - i0.astype(f32), 0, 1).astype(f32)
    return i0, i1, l1


def torch_rule_resize(x, size, align_corners):
    y0, y1, ly = _axis(x.shape[2], size[0], align_corners)
    x0, x1, lx = _axis(x.shape[3], size[1], align_corners)
    rows = lambda r: x[:, :, r][:, :, :, x0] * (f32(1) - lx) + x[:, :, r][:, :, :, x1] * lx
    return rows(y0) * (f32(1) - ly)[:, None] + rows(y1) * ly[:, None]


def _matrix(n_in, n_out, align_corners):
    """The (out, in) interpolation matrix of one axis (float64)."""
    i0, i1, l1 = _axis(n_in, n_out, align_corners)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - l1.astype(np.float64))
    np.add.at(m, (np.arange(n_out), i1), l1.astype(np.float64))
    return m


def adjoint_resize(g, in_hw, align_corners):
    """dL/dx for y = Ry x Rx^T: Ry^T g Rx (float64)."""
    ry = _matrix(in_hw[0], g.shape[2], align_corners)
    rx = _matrix(in_hw[1], g.shape[3], align_corners)
    return np.einsum("yi,ncyx,xj->ncij", ry, g.astype(np.float64), rx)


CASES = [((2, 3, 13, 17), (100, 132), False),   # 8x-ish upsampling, as the final logits resize
         ((1, 2, 100, 132), (37, 53), False),   # downsampling (aug-test scale 0.5, rescale to ori_shape)
         ((1, 2, 7, 9), (13, 5), False),        # up in H, down in W
         ((1, 2, 7, 9), (13, 5), True),
         ((1, 1, 1, 1), (4, 6), False),
         ((1, 2, 5, 5), (1, 1), True),
         ((1, 2, 33, 40), (33, 81), False)]     # same size in H


@pytest.mark.parametrize("shape,size,align_corners", CASES)
def test_kernel_follows_pytorch_rule(shape, size, align_corners):
    x = np.random.default_rng(0).standard_normal(shape).astype(f32)
    out = bilinear_resize_cpu(jt.array(x), size, align_corners)
    assert out.shape == (*shape[:2], *size)
    np.testing.assert_allclose(out.numpy(), torch_rule_resize(x, size, align_corners), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape,size,align_corners", CASES)
def test_kernel_gradient_is_the_transposed_interpolation(shape, size, align_corners):
    rng = np.random.default_rng(3)
    x = jt.array(rng.standard_normal(shape).astype(f32))
    w = rng.standard_normal((*shape[:2], *size)).astype(f32)
    g = jt.grad((bilinear_resize_cpu(x, size, align_corners) * jt.array(w)).sum(), x).numpy()
    ref = adjoint_resize(w, shape[2:], align_corners)
    assert np.abs(g - ref).max() <= 1e-5 * np.abs(ref).max()
    # Jittor's own differentiable resize (the op the kernel replaces) agrees too
    jx = jt.array(x.numpy())
    jg = jt.grad((nn.interpolate(jx, size=size, mode="bilinear", align_corners=align_corners)
                  * jt.array(w)).sum(), jx).numpy()
    assert np.abs(g - jg).max() <= 1e-5 * np.abs(jg).max()


def test_kernel_equals_jittor_upsampling_and_threads_do_not_matter(monkeypatch):
    x = jt.array(np.random.default_rng(1).standard_normal((1, 7, 16, 20)).astype(f32))
    w = jt.array(np.random.default_rng(2).standard_normal((1, 7, 128, 160)).astype(f32))
    ref = nn.interpolate(x, size=(128, 160), mode="bilinear", align_corners=False).numpy()
    one = bilinear_resize_cpu(x, (128, 160))
    g_one = jt.grad((one * w).sum(), x).numpy()
    np.testing.assert_allclose(one.numpy(), ref, atol=2e-6, rtol=0)
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")   # 3 threads over 7 planes: uneven split
    three = bilinear_resize_cpu(x, (128, 160))
    np.testing.assert_array_equal(three.numpy(), one.numpy())
    np.testing.assert_array_equal(jt.grad((three * w).sum(), x).numpy(), g_one)


def test_resize_uses_the_kernel_with_and_without_gradient():
    x = jt.array(np.random.default_rng(2).standard_normal((1, 2, 100, 132)).astype(f32))
    ref = torch_rule_resize(x.numpy(), (37, 53), False)
    with jt.no_grad():
        np.testing.assert_allclose(resize(x, (37, 53)).numpy(), ref, atol=1e-6, rtol=0)
    w = jt.ones((1,), "float32")   # a graph with a parameter
    y = resize(x * w, (37, 53))
    assert not y.is_stop_grad()
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-6, rtol=0)   # the kernel, not Jittor's op
    g = jt.grad(y.sum(), w)
    np.testing.assert_allclose(g.numpy(), [ref.sum()], rtol=1e-4)


@pytest.mark.parametrize("shape,dim", [((2, 150, 33, 47), 1), ((3, 5, 7), 2), ((4, 9), 0)])
def test_argmax_equals_jittor(shape, dim, monkeypatch):
    x = np.random.default_rng(4).standard_normal(shape).astype(f32)
    x[(0,) * len(shape)] = 1e9       # a clear winner somewhere
    ref = jt.argmax(jt.array(x), dim=dim)[0].numpy()
    out = argmax_cpu(jt.array(x), dim)
    assert out.dtype == "int32" and out.shape == ref.shape
    np.testing.assert_array_equal(out.numpy(), ref)
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")
    np.testing.assert_array_equal(argmax_cpu(jt.array(x), dim).numpy(), ref)


def test_argmax_first_maximum_and_nan_as_pytorch():
    # columns: tie (first wins), NaN after a number, NaN first, two NaNs, -inf only
    x = np.array([[[1.0, 0.0, np.nan, np.nan, -np.inf]],
                  [[1.0, np.nan, 5.0, np.nan, -np.inf]],
                  [[0.5, 7.0, 9.0, 1.0, -np.inf]]], f32)[None]   # (1, 3, 1, 5)
    out = argmax_cpu(jt.array(x), 1).numpy()
    np.testing.assert_array_equal(out, [[[0, 1, 0, 0, 0]]])
    np.testing.assert_array_equal(out, np.argmax(x, axis=1))   # NumPy's rule is PyTorch's: NaN is the maximum


@pytest.mark.parametrize("shape", [(2, 300, 64), (7, 5), (3, 1)])
def test_softmax_forward_and_gradient_equal_jittor(shape, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(f32) * 4
    x[0, 0] = 80.0            # exp overflows without the max shift
    w = jt.array(rng.standard_normal(shape).astype(f32))
    jx, kx = jt.array(x), jt.array(x)
    ref = nn.softmax(jx, dim=-1)
    out = softmax_cpu(kx)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-6, rtol=1e-5)
    g_ref = jt.grad((ref * w).sum(), jx).numpy()
    g = jt.grad((out * w).sum(), kx).numpy()
    assert np.abs(g - g_ref).max() <= 1e-5 * np.abs(g_ref).max() + 1e-12
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")
    np.testing.assert_array_equal(softmax_cpu(jt.array(x)).numpy(), out.numpy())


def test_layers_softmax_uses_the_kernel_on_the_last_axis_only():
    x = jt.array(np.random.default_rng(6).standard_normal((2, 3, 4)).astype(f32))
    np.testing.assert_array_equal(softmax(x, dim=-1).numpy(), softmax_cpu(x).numpy())
    np.testing.assert_allclose(softmax(x, dim=1).numpy(), nn.softmax(x, dim=1).numpy(), atol=1e-7)


DW_CASES = [((2, 3, 9, 11), (3, 3), (1, 1), (1, 1), True),    # MixFFN / MSCAN FFN 3x3
            ((1, 4, 13, 8), (1, 7), (1, 1), (0, 3), False),   # MSCA strip convs
            ((1, 3, 12, 5), (21, 1), (1, 1), (10, 0), True),  # kernel taller than the input
            ((2, 2, 10, 9), (5, 5), (2, 2), (2, 2), True),    # stride 2
            ((1, 2, 7, 7), (3, 3), (2, 1), (0, 1), True),     # mixed stride, no vertical padding
            ((2, 3, 6, 9), (3, 2), (1, 1), (0, 0), False),    # stride 1, no padding (flat planes, no border)
            ((1, 2, 5, 6), (1, 3), (1, 1), (1, 3), True)]     # stride 1, padding >= kernel: the row kernels


@pytest.mark.parametrize("shape,k,stride,padding,bias", DW_CASES)
def test_depthwise_conv_forward_and_gradients_equal_jittor(shape, k, stride, padding, bias, monkeypatch):
    rng = np.random.default_rng(7)
    C = shape[1]
    x = rng.standard_normal(shape).astype(f32)
    w = rng.standard_normal((C, 1, *k)).astype(f32)
    b = rng.standard_normal((C,)).astype(f32) if bias else None

    def run(fn):
        vs = [jt.array(x), jt.array(w)] + ([jt.array(b)] if bias else [])
        y = fn(vs[0], vs[1], vs[2] if bias else None)
        gy = jt.array(np.random.default_rng(8).standard_normal(y.shape).astype(f32))
        return y.numpy(), [g.numpy() for g in jt.grad((y * gy).sum(), vs)]

    y, grads = run(lambda a, ww, bb: depthwise_conv2d_cpu(a, ww, bb, stride, padding))
    y_ref, grads_ref = run(lambda a, ww, bb: nn.conv2d(a, ww, bb, stride, padding, 1, C))
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, grads_ref):
        assert g.shape == r.shape and np.abs(g - r).max() <= 1e-5 * np.abs(r).max()
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")
    y3, grads3 = run(lambda a, ww, bb: depthwise_conv2d_cpu(a, ww, bb, stride, padding))
    np.testing.assert_array_equal(y3, y)
    for g3, g in zip(grads3, grads):
        np.testing.assert_array_equal(g3, g)


def test_conv2d_builds_the_kernel_module_for_depthwise_only():
    dw = conv2d(8, 8, 3, padding=1, groups=8)
    assert type(dw) is DepthwiseConv2d and isinstance(dw, nn.Conv2d)
    assert type(conv2d(8, 8, 3, padding=1)) is nn.Conv2d and type(conv2d(8, 16, 3, groups=8)) is nn.Conv2d
    x = jt.array(np.random.default_rng(9).standard_normal((1, 8, 6, 6)).astype(f32))
    ref = nn.conv2d(x, dw.weight, dw.bias, 1, 1, 1, 8)
    np.testing.assert_allclose(dw(x).numpy(), ref.numpy(), atol=1e-5)
    assert sorted(dw.state_dict()) == ["bias", "weight"]


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_bmm_kernel_forward_and_gradients_equal_jittor(ta, tb, monkeypatch):
    """``op(a) @ op(b)`` and both gradients against Jittor's ``nn.bmm`` on explicitly transposed operands."""
    rng = np.random.default_rng(9)
    B, n, m, k = 3, 5, 70, 9
    a = rng.standard_normal((B, m, n) if ta else (B, n, m)).astype(f32)
    b = rng.standard_normal((B, k, m) if tb else (B, m, k)).astype(f32)
    gy = jt.array(rng.standard_normal((B, n, k)).astype(f32))

    def run(fn):
        va, vb = jt.array(a), jt.array(b)
        y = fn(va, vb)
        return [v.numpy() for v in [y] + jt.grad((y * gy).sum(), [va, vb])]

    def ref(va, vb):
        return nn.bmm(va.transpose(0, 2, 1) if ta else va, vb.transpose(0, 2, 1) if tb else vb)

    got, want = run(lambda va, vb: bmm_cpu(va, vb, ta, tb)), run(ref)
    for g, r in zip(got, want):
        assert g.shape == r.shape and np.abs(g - r).max() <= 1e-5 * np.abs(r).max()
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")
    for g3, g in zip(run(lambda va, vb: bmm_cpu(va, vb, ta, tb)), got):
        np.testing.assert_array_equal(g3, g)


def test_layers_bmm_small_kernel_and_big_loop_equal_jittor():
    """``layers.bmm`` runs the kernel for small products and loops over oneDNN for big ones: both equal
    Jittor's ``nn.bmm`` (and ``bmm_nt`` its ``bmm_transpose``)."""
    from jseg.models.layers import bmm, bmm_nt
    rng = np.random.default_rng(10)
    for n, m, k in ((8, 64, 16), (64, 128, 64)):   # 8k and 512k multiply-adds per entry
        a = jt.array(rng.standard_normal((2, n, m)).astype(f32))
        b = jt.array(rng.standard_normal((2, m, k)).astype(f32))
        bt = jt.array(rng.standard_normal((2, k, m)).astype(f32))
        want, want_nt = nn.bmm(a, b).numpy(), nn.bmm_transpose(a, bt).numpy()
        np.testing.assert_allclose(bmm(a, b).numpy(), want, atol=1e-4 * np.abs(want).max(), rtol=0)
        np.testing.assert_allclose(bmm_nt(a, bt).numpy(), want_nt, atol=1e-4 * np.abs(want_nt).max(), rtol=0)
        np.testing.assert_allclose(bmm(a.transpose(0, 2, 1), b, trans_a=True).numpy(), want,
                                   atol=1e-4 * np.abs(want).max(), rtol=0)


def test_pixel_cross_entropy_kernel_equals_log_softmax_and_gather(monkeypatch):
    """Per-pixel loss and logits gradient against Jittor's ``log_softmax`` + ``gather``, with ignored
    pixels (loss and gradient 0) and logits far from 0 (the max shift); a label outside ``[0, K)`` that is
    not the ignore index gives NaN, not a read out of bounds."""
    from jseg.models.kernels import pixel_cross_entropy_cpu
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((2, 7, 9, 13)) * 4 + 50).astype(f32)
    lab = rng.integers(0, 7, (2, 9, 13)).astype(np.int32)
    lab[0, :3, :5] = 255
    gl = jt.array(rng.standard_normal((2, 9, 13)).astype(f32))

    def run(fn):
        v = jt.array(x)
        loss = fn(v, jt.array(lab))
        return loss.numpy(), jt.grad((loss * gl).sum(), v).numpy()

    def ref(v, t):
        valid = (t != 255)
        safe = jt.where(valid, t, jt.zeros_like(t))
        return -jt.gather(nn.log_softmax(v, dim=1), 1, safe.unsqueeze(1)).squeeze(1) * valid.cast("float32")

    (loss, grad), (loss_ref, grad_ref) = run(lambda v, t: pixel_cross_entropy_cpu(v, t, 255)), run(ref)
    np.testing.assert_allclose(loss, loss_ref, atol=1e-5, rtol=1e-5)
    assert np.abs(grad - grad_ref).max() <= 1e-5 * np.abs(grad_ref).max()
    assert (loss[0, :3, :5] == 0).all() and (grad[0, :, :3, :5] == 0).all()
    monkeypatch.setenv("JSEG_CPU_THREADS", "3")
    loss3, grad3 = run(lambda v, t: pixel_cross_entropy_cpu(v, t, 255))
    np.testing.assert_array_equal(loss3, loss)
    np.testing.assert_array_equal(grad3, grad)
    bad = lab.copy()
    bad[1, 2, 3] = 9
    out = pixel_cross_entropy_cpu(jt.array(x), jt.array(bad), 255).numpy()
    assert np.isnan(out[1, 2, 3]) and np.isfinite(np.delete(out.ravel(), 9 * 13 + 2 * 13 + 3)).all()


def test_batch_norm_train_kernel_equals_the_graph_formula(monkeypatch):
    """Training-mode BatchNorm: output, batch statistics and the gradients of x, weight and bias against the
    same formula as Jittor ops (``norm.centered_variance``), on data with a large mean (cancellation)."""
    from jseg.models.kernels import batch_norm_train_cpu
    from jseg.models.layers.norm import centered_variance
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((3, 5, 7, 9)) * 2 + 30).astype(f32)
    w = rng.standard_normal(5).astype(f32)
    b = rng.standard_normal(5).astype(f32)
    gy = jt.array(rng.standard_normal(x.shape).astype(f32))

    def run(fn):
        vs = [jt.array(x), jt.array(w), jt.array(b)]
        y, mean, var = fn(*vs)
        return [v.numpy() for v in [y, mean.reshape((-1,)), var.reshape((-1,))] + jt.grad((y * gy).sum(), vs)]

    def ref(v, ww, bb):
        mean, centered, var = centered_variance(v, [0, 2, 3])
        return centered / jt.sqrt(var + 1e-5) * ww.reshape((1, -1, 1, 1)) + bb.reshape((1, -1, 1, 1)), mean, var

    got, want = run(lambda v, ww, bb: batch_norm_train_cpu(v, ww, bb, 1e-5)), run(ref)
    for g, r in zip(got, want):
        assert g.shape == r.shape and np.abs(g - r).max() <= 2e-5 * max(np.abs(r).max(), 1.0)
    # channels split over 1 and 3 threads (a map big enough for 3) give the same bits
    x = (rng.standard_normal((2, 6, 96, 96)) + 3).astype(f32)
    w, b = rng.standard_normal(6).astype(f32), rng.standard_normal(6).astype(f32)
    gy = jt.array(rng.standard_normal(x.shape).astype(f32))
    outs = []
    for threads in ("1", "3"):
        monkeypatch.setenv("JSEG_CPU_THREADS", threads)
        outs.append(run(lambda v, ww, bb: batch_norm_train_cpu(v, ww, bb, 1e-5)))
    for g1, g3 in zip(*outs):
        np.testing.assert_array_equal(g1, g3)
