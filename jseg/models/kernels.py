"""Custom CPU kernels (``jt.code``) where Jittor's generic ones are the bottleneck.

Jittor's own CPU kernels are single-threaded, its bilinear resize gathers and
weighs four inputs per output with per-element index arithmetic, and its
backward is a scatter-add (``reindex_reduce``).  In a SegNeXt-T training step
(2x150 logits resized to 512x512) the resize forward took 318 ms, its backward
341 ms and the accuracy's argmax 313 ms, of 3.2 s.

- ``bilinear_resize_cpu``: separable (each needed input row is interpolated
  horizontally once, output rows blend two cached rows), planes split over
  threads; differentiable: its backward (``_BILINEAR_GRAD``) applies the
  transposed weights the same way (each output row is folded horizontally
  once, then added to its two input rows).
- ``argmax_cpu``: argmax over dim 1, pixels split over threads, classes read as
  contiguous rows (first maximum wins; a NaN wins, as in PyTorch).
- ``softmax_cpu``: softmax over the last axis with its backward
  (``y * (g - sum(g * y))``), rows split over threads; Jittor's softmax is
  several single-threaded passes (SegFormer-B0's attention: 492 ms of a 3.3 s
  training step).
- ``depthwise_conv2d_cpu``: depth-wise convolution (forward, input and weight
  gradients); oneDNN reorders every input and output to its blocked layout and
  back around each call.  Stride 1 works on zero-padded flat planes (one long
  multiply-add per kernel tap), other strides row by row.
- ``bmm_cpu``: batched product of small matrices (optionally transposed) in one
  op; Jittor hands only 2-D products to oneDNN, and a loop over the batch costs
  ~4 framework ops per entry (the Ham head's NMF: ~900 products a step).
- ``pixel_cross_entropy_cpu``: per-pixel softmax cross-entropy keeping only a
  per-pixel log-sum-exp for its backward (not a log-probability tensor as large
  as the logits).
- ``batch_norm_train_cpu``: training-mode BatchNorm, channels over threads,
  closed-form backward (Jittor's graph reduces on one core, channel-strided).
All run on OpenMP's thread pool (``jseg_parallel``), the one oneDNN uses: threads
of their own competed with oneDNN's spinning workers on every call (a 128x128
SegNeXt step went from 0.33 to 0.20 s with that change alone).  All are faster
than the Jittor ops they replace; CUDA keeps Jittor's.
"""
import functools
import os

import jittor as jt

_HEADER = r"""
#include <vector>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <omp.h>
// NaN test on the bits: Jittor builds kernels with -Ofast, under which v != v folds to false
static inline bool jseg_is_nan(float v) { uint32_t u; std::memcpy(&u, &v, 4); return (u & 0x7fffffffu) > 0x7f800000u; }
// work(begin, end) over [0, n) split in contiguous ranges over at most nt threads of OpenMP's pool: the
// pool oneDNN's convolutions use (libgomp), so the two never compete for the cores and no thread is
// started per call.  Results never depend on the split.
template <class F> static inline void jseg_parallel(long long n, int nt, F work) {
    nt = (int)std::min<long long>(nt, n);
    if (nt <= 1) { work(0LL, n); return; }
    #pragma omp parallel num_threads(nt)
    {
        const long long t = omp_get_thread_num(), k = omp_get_num_threads();
        work(n * t / k, n * (t + 1) / k);
    }
}
"""

# PyTorch's upsample_bilinear2d (CPU, float): scale = in/out (align_corners: (in-1)/(out-1)),
# src = max(scale*(dst+0.5)-0.5, 0) (align_corners: scale*dst), i0 = min(floor(src), in-1),
# i1 = i0 + (i0 < in-1), l1 = src - i0; out = h0*(w0*a + w1*b) + h1*(w0*c + w1*d).
_INDEX = r"""
const bool ac = @ALIGN;
auto scale = [&](int in, int out) -> float {
    if (ac) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.f;
    return (float)in / (float)out;
};
auto index = [&](float s, int d, int in, int& i0, int& i1, float& l1) {
    float r = ac ? s * d : std::max(s * (d + 0.5f) - 0.5f, 0.f);
    i0 = std::min((int)std::floor(r), in - 1);
    i1 = i0 + (i0 < in - 1 ? 1 : 0);
    l1 = std::min(std::max(r - i0, 0.f), 1.f);
};
std::vector<int> x0(Wo), x1(Wo), y0(Ho), y1(Ho);
std::vector<float> lx(Wo), ly(Ho);
const float sx = scale(Wi, Wo), sy = scale(Hi, Ho);
for (int x = 0; x < Wo; x++) index(sx, x, Wi, x0[x], x1[x], lx[x]);
for (int y = 0; y < Ho; y++) index(sy, y, Hi, y0[y], y1[y], ly[y]);
"""

_THREADS = r"""
jseg_parallel(NC, @THREADS, [&](long long b, long long e) { work((int)b, (int)e); });
"""

_SRC = r"""
// jseg-kernel: resize fwd
const int NC = in0_shape0, Hi = in0_shape1, Wi = in0_shape2;
const int Ho = out0_shape1, Wo = out0_shape2;
const float* src = in0_p;
float* dst = out0_p;
""" + _INDEX + r"""
auto work = [&](int c_begin, int c_end) {
    std::vector<float> row_a(Wo), row_b(Wo);
    for (int c = c_begin; c < c_end; c++) {
        const float* plane = src + (size_t)c * Hi * Wi;
        float* outp = dst + (size_t)c * Ho * Wo;
        int ra = -1, rb = -1;
        auto hrow = [&](int r, std::vector<float>& buf) {
            const float* in = plane + (size_t)r * Wi;
            for (int x = 0; x < Wo; x++) {
                float l = lx[x];
                buf[x] = (1.f - l) * in[x0[x]] + l * in[x1[x]];
            }
        };
        for (int y = 0; y < Ho; y++) {
            if (y0[y] != ra) {
                if (y0[y] == rb) { std::swap(row_a, row_b); std::swap(ra, rb); }
                else { hrow(y0[y], row_a); ra = y0[y]; }
            }
            if (y1[y] != rb) {
                if (y1[y] == ra) { row_b = row_a; rb = ra; }
                else { hrow(y1[y], row_b); rb = y1[y]; }
            }
            const float l = ly[y], h0 = 1.f - l;
            float* o = outp + (size_t)y * Wo;
            const float* a = row_a.data();
            const float* b = row_b.data();
            for (int x = 0; x < Wo; x++) o[x] = h0 * a[x] + l * b[x];
        }
    }
};
""" + _THREADS

# Backward: the adjoint of the forward.  in0 = dL/dout (NC, Ho, Wo), out0 = dL/din (NC, Hi, Wi).
# Each output row is folded horizontally once (w0 to x0, w1 to x1), then added to input rows
# y0 (weight h0) and y1 (weight h1): fewer operations than scattering four weights per output.
_BILINEAR_GRAD = r"""
// jseg-kernel: resize bwd
const int NC = out0_shape0, Hi = out0_shape1, Wi = out0_shape2;
const int Ho = in0_shape1, Wo = in0_shape2;
const float* gout = in0_p;
float* gin = out0_p;
""" + _INDEX + r"""
auto work = [&](int c_begin, int c_end) {
    std::vector<float> fold(Wi);
    for (int c = c_begin; c < c_end; c++) {
        const float* g = gout + (size_t)c * Ho * Wo;
        float* plane = gin + (size_t)c * Hi * Wi;
        std::fill(plane, plane + (size_t)Hi * Wi, 0.f);
        for (int y = 0; y < Ho; y++) {
            const float* row = g + (size_t)y * Wo;
            std::fill(fold.begin(), fold.end(), 0.f);
            for (int x = 0; x < Wo; x++) {
                float l = lx[x], v = row[x];
                fold[x0[x]] += (1.f - l) * v;
                fold[x1[x]] += l * v;
            }
            const float l = ly[y], h0 = 1.f - l;
            float* a = plane + (size_t)y0[y] * Wi;
            float* b = plane + (size_t)y1[y] * Wi;
            for (int x = 0; x < Wi; x++) a[x] += h0 * fold[x];
            for (int x = 0; x < Wi; x++) b[x] += l * fold[x];
        }
    }
};
""" + _THREADS

# argmax over dim 1 of (N, C, P): each thread takes a contiguous range of the N*P pixels and walks
# them in blocks, reading every class as a contiguous row of the block.
_ARGMAX = r"""
// jseg-kernel: argmax fwd
const int N = in0_shape0, C = in0_shape1, P = in0_shape2;
const float* x = in0_p;
int* idx = out0_p;
auto work = [&](long long begin, long long end) {
    const int BLOCK = 512;
    float best[BLOCK];
    bool nan[BLOCK];
    for (long long s = begin; s < end;) {
        const int n = (int)(s / P), p = (int)(s % P);
        const int len = (int)std::min<long long>({(long long)BLOCK, (long long)P - p, end - s});
        const float* base = x + (size_t)n * C * P + p;
        int* o = idx + (size_t)n * P + p;
        // fast pass (vectorisable); a block holding a NaN is redone with PyTorch's NaN rule
        bool any_nan = false;
        for (int i = 0; i < len; i++) { best[i] = base[i]; o[i] = 0; any_nan |= jseg_is_nan(base[i]); }
        for (int c = 1; c < C; c++) {
            const float* row = base + (size_t)c * P;
            uint32_t nan_bits = 0;
            for (int i = 0; i < len; i++) {
                const float v = row[i];
                uint32_t u; std::memcpy(&u, &v, 4);
                nan_bits |= (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
                const bool gt = v > best[i];
                best[i] = gt ? v : best[i];
                o[i] = gt ? c : o[i];
            }
            any_nan |= nan_bits != 0;
        }
        if (any_nan) {
            for (int i = 0; i < len; i++) { best[i] = base[i]; o[i] = 0; nan[i] = jseg_is_nan(base[i]); }
            for (int c = 1; c < C; c++) {
                const float* row = base + (size_t)c * P;
                for (int i = 0; i < len; i++) {
                    const float v = row[i];
                    if (nan[i]) continue;
                    if (jseg_is_nan(v)) { nan[i] = true; o[i] = c; }
                    else if (v > best[i]) { best[i] = v; o[i] = c; }
                }
            }
        }
        s += len;
    }
};
const long long total = (long long)N * P;
jseg_parallel(total, (int)std::min<long long>(@THREADS, std::max<long long>(1, total / 4096)), work);
"""


def cpu_threads():
    """Cores this process may run on (``JSEG_CPU_THREADS`` overrides)."""
    env = os.environ.get("JSEG_CPU_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def _fill_cached(src, subs):
    for key, value in subs:
        src = src.replace(key, value)
    return src


def _fill(src, **subs):
    """``src`` with ``@KEY`` replaced by ``subs[KEY]`` and ``@THREADS`` by :func:`cpu_threads` (cached:
    a training step asks for the same sources hundreds of times)."""
    subs["THREADS"] = cpu_threads()
    # longest keys first: @BIAS must not eat the start of a longer key
    return _fill_cached(src, tuple(sorted(((f"@{k}", str(v)) for k, v in subs.items()), key=lambda kv: (-len(kv[0]), kv[0]))))


def _source(src, align_corners):
    return _fill(src, ALIGN="true" if align_corners else "false")


class _BilinearResize(jt.Function):
    """Forward and exact backward (the transposed interpolation) as threaded kernels."""

    def execute(self, flat, size, align_corners):
        self.in_hw = tuple(flat.shape[1:])
        self.align_corners = align_corners
        return jt.code((flat.shape[0], *size), "float32", [flat], cpu_header=_HEADER,
                       cpu_src=_source(_SRC, align_corners))

    def grad(self, g):
        g = g.cast("float32")
        return (jt.code((g.shape[0], *self.in_hw), "float32", [g], cpu_header=_HEADER,
                        cpu_src=_source(_BILINEAR_GRAD, self.align_corners)), None, None)


def bilinear_resize_cpu(x, size, align_corners=False):
    """Bilinear resize of an ``(N, C, H, W)`` float32 Var to ``size`` on the CPU, like PyTorch's
    ``F.interpolate(mode='bilinear')``, with its exact gradient."""
    N, C, H, W = x.shape
    Ho, Wo = (int(s) for s in size)
    out = _BilinearResize.apply(x.reshape((N * C, H, W)), (Ho, Wo), bool(align_corners))
    return out.reshape((N, C, Ho, Wo))


def argmax_cpu(x, dim=1):
    """Index of the largest value along ``dim`` (int32; first maximum, NaN wins) of a float32 Var on the
    CPU; no gradient.  Same result as ``jt.argmax(x, dim)[0]``."""
    shape = tuple(x.shape)
    lead, C = 1, shape[dim]
    for s in shape[:dim]:
        lead *= s
    P = 1
    for s in shape[dim + 1:]:
        P *= s
    flat = x.detach().reshape((lead, C, P))
    out = jt.code((lead, P), "int32", [flat], cpu_header=_HEADER, cpu_src=_source(_ARGMAX, False))
    return out.reshape(shape[:dim] + shape[dim + 1:]).stop_grad()


# softmax over the last axis of (R, L): y = exp(x - max) / sum; backward gx = y * (g - sum(g * y))
_ROWS = r"""
const long long R = in0_shape0;
const int L = in0_shape1;
auto work = [&](long long r0, long long r1) {
    for (long long r = r0; r < r1; r++) { ROW }
};
jseg_parallel(R, (int)std::min<long long>(@THREADS, std::max<long long>(1, R * L / 16384)), work);
"""
_SOFTMAX = "// jseg-kernel: softmax fwd\n" + _ROWS.replace("ROW", r"""
        const float* a = in0_p + r * L;
        float* y = out0_p + r * L;
        float m = a[0];
        for (int i = 1; i < L; i++) m = std::max(m, a[i]);
        float s = 0.f;
        for (int i = 0; i < L; i++) { const float e = std::exp(a[i] - m); y[i] = e; s += e; }
        const float inv = 1.f / s;
        for (int i = 0; i < L; i++) y[i] *= inv;
""")
_SOFTMAX_GRAD = "// jseg-kernel: softmax bwd\n" + _ROWS.replace("ROW", r"""
        const float* y = in0_p + r * L;
        const float* g = in1_p + r * L;
        float* gx = out0_p + r * L;
        float dot = 0.f;
        for (int i = 0; i < L; i++) dot += g[i] * y[i];
        for (int i = 0; i < L; i++) gx[i] = y[i] * (g[i] - dot);
""")


class _Softmax(jt.Function):
    def execute(self, rows):
        self.y = jt.code(rows.shape, "float32", [rows], cpu_header=_HEADER, cpu_src=_source(_SOFTMAX, False))
        return self.y

    def grad(self, g):
        return jt.code(self.y.shape, "float32", [self.y, g.cast("float32")], cpu_header=_HEADER,
                       cpu_src=_source(_SOFTMAX_GRAD, False))


def softmax_cpu(x):
    """Softmax over the last axis of a float32 Var on the CPU, differentiable."""
    shape = tuple(x.shape)
    return _Softmax.apply(x.reshape((-1, shape[-1]))).reshape(shape)


def argmax(x, dim=1):
    """``jt.argmax(x, dim)[0]`` without gradient; the threaded kernel for float32 on the CPU."""
    if not jt.flags.use_cuda and x.dtype == "float32":
        return argmax_cpu(x, dim)
    return jt.argmax(x.detach(), dim=dim)[0]


# Depth-wise convolution (groups == in == out channels), NCHW, zero padding, no dilation.  oneDNN
# reorders every input and output between NCHW and its blocked layout around each call; these work
# on NCHW rows directly: an output row accumulates, per kernel tap, a shifted input row times the tap
# (contiguous, vectorised for stride 1).  Planes (forward, input gradient) or channels (weight
# gradient) are split over threads.
_DW_COMMON = r"""
const int SH = @SH, SW = @SW, PH = @PH, PW = @PW;
// output columns ox whose input column ox*SW - PW + kx lies in [0, W)
auto cols = [&](int kx, int W, int Wo, int& lo, int& hi) {
    const int a = PW - kx;
    lo = a > 0 ? (a + SW - 1) / SW : 0;
    const int b = W - 1 + PW - kx;
    hi = b < 0 ? 0 : std::min(Wo, b / SW + 1);
    if (hi < lo) hi = lo;
};
// n items of about `cost` multiply-adds each: one thread per ~64k of them at most
auto run = [&](auto work, long long n, long long cost) {
    jseg_parallel(n, (int)std::min<long long>(@THREADS, std::max<long long>(1, n * cost >> 16)), work);
};
"""

_DW_FORWARD = r"""
// jseg-kernel: depthwise conv fwd
const int N = in0_shape0, C = in0_shape1, H = in0_shape2, W = in0_shape3;
const int KH = in1_shape2, KW = in1_shape3, Ho = out0_shape2, Wo = out0_shape3;
""" + _DW_COMMON + r"""
run([&](long long p0, long long p1) {
    for (long long p = p0; p < p1; p++) {
        const int c = (int)(p % C);
        const float* plane = in0_p + p * H * W;
        const float* wc = in1_p + (size_t)c * KH * KW;
        float* out = out0_p + p * Ho * Wo;
        const float bias = @BIAS;
        for (int oy = 0; oy < Ho; oy++) {
            float* o = out + (size_t)oy * Wo;
            for (int ox = 0; ox < Wo; ox++) o[ox] = bias;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * SH - PH + ky;
                if (iy < 0 || iy >= H) continue;
                const float* r = plane + (size_t)iy * W;
                for (int kx = 0; kx < KW; kx++) {
                    const float wv = wc[ky * KW + kx];
                    int lo, hi; cols(kx, W, Wo, lo, hi);
                    if (SW == 1) { const float* rr = r + kx - PW; for (int ox = lo; ox < hi; ox++) o[ox] += wv * rr[ox]; }
                    else for (int ox = lo; ox < hi; ox++) o[ox] += wv * r[ox * SW - PW + kx];
                }
            }
        }
    }
}, (long long)N * C, (long long)H * W * KH * KW);
"""

# dL/dx: every output row scatters its gradient, per tap, into the shifted input row it read
_DW_GRAD_X = r"""
// jseg-kernel: depthwise conv bwd
const int N = out0_shape0, C = out0_shape1, H = out0_shape2, W = out0_shape3;
const int KH = in1_shape2, KW = in1_shape3, Ho = in0_shape2, Wo = in0_shape3;
""" + _DW_COMMON + r"""
run([&](long long p0, long long p1) {
    for (long long p = p0; p < p1; p++) {
        const int c = (int)(p % C);
        const float* gp = in0_p + p * Ho * Wo;
        const float* wc = in1_p + (size_t)c * KH * KW;
        float* dx = out0_p + p * H * W;
        std::fill(dx, dx + (size_t)H * W, 0.f);
        for (int oy = 0; oy < Ho; oy++) {
            const float* g = gp + (size_t)oy * Wo;
            for (int ky = 0; ky < KH; ky++) {
                const int iy = oy * SH - PH + ky;
                if (iy < 0 || iy >= H) continue;
                float* d = dx + (size_t)iy * W;
                for (int kx = 0; kx < KW; kx++) {
                    const float wv = wc[ky * KW + kx];
                    int lo, hi; cols(kx, W, Wo, lo, hi);
                    if (SW == 1) { float* dd = d + kx - PW; for (int ox = lo; ox < hi; ox++) dd[ox] += wv * g[ox]; }
                    else for (int ox = lo; ox < hi; ox++) d[ox * SW - PW + kx] += wv * g[ox];
                }
            }
        }
    }
}, (long long)N * C, (long long)H * W * KH * KW);
"""

# dL/dw and dL/db: per channel, over the batch, each tap is a sum of row dot products
_DW_GRAD_W = r"""
// jseg-kernel: depthwise conv bwd
const int N = in1_shape0, C = in1_shape1, H = in1_shape2, W = in1_shape3;
const int Ho = in0_shape2, Wo = in0_shape3, KH = out0_shape2, KW = out0_shape3;
""" + _DW_COMMON + r"""
run([&](long long c0, long long c1) {
    std::vector<double> acc(KH * KW);
    for (long long c = c0; c < c1; c++) {
        std::fill(acc.begin(), acc.end(), 0.0);
        double bsum = 0.0;
        for (int n = 0; n < N; n++) {
            const float* gp = in0_p + ((size_t)n * C + c) * Ho * Wo;
            const float* xp = in1_p + ((size_t)n * C + c) * H * W;
            for (int oy = 0; oy < Ho; oy++) {
                const float* g = gp + (size_t)oy * Wo;
                float rs = 0.f;
                for (int ox = 0; ox < Wo; ox++) rs += g[ox];
                bsum += rs;
                for (int ky = 0; ky < KH; ky++) {
                    const int iy = oy * SH - PH + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float* r = xp + (size_t)iy * W;
                    for (int kx = 0; kx < KW; kx++) {
                        int lo, hi; cols(kx, W, Wo, lo, hi);
                        float s = 0.f;
                        if (SW == 1) { const float* rr = r + kx - PW; for (int ox = lo; ox < hi; ox++) s += g[ox] * rr[ox]; }
                        else for (int ox = lo; ox < hi; ox++) s += g[ox] * r[ox * SW - PW + kx];
                        acc[ky * KW + kx] += s;
                    }
                }
            }
        }
        for (int k = 0; k < KH * KW; k++) out0_p[c * KH * KW + k] = (float)acc[k];
        out1_p[c] = (float)bsum;
    }
}, (long long)C, (long long)N * H * W * KH * KW);
"""


# Stride 1 (every depth-wise conv of SegNeXt and SegFormer): a plane is copied once into a zero-padded
# buffer of width Wp = W + 2*PW; then output row y, column x is at flat position y*Wp + x of an
# accumulator of that width, and each kernel tap is ONE multiply-add over a contiguous run of the
# buffer (the columns x >= Wo are junk and are not copied out).  Row-by-row loops spent most of their
# time on loop overhead for the small planes of the quick start (8x8..32x32); these runs are long.
# Output rows go in blocks whose accumulator stays in L1.  The input gradient is the same convolution
# of the output gradient with the flipped kernel and the complementary padding.
_DW_S1_COMMON = _DW_COMMON + r"""
const int KH = @KH, KW = @KW;
// zero-padded copy of an H x W plane: (H + 2*ph) rows of Wp = W + 2*pw, plus KW floats of slack
// (the last block's junk columns read past the last row)
auto pad_plane = [&](const float* in, int H, int W, int ph, int pw, std::vector<float>& P) {
    const int Wp = W + 2 * pw;
    P.assign((size_t)(H + 2 * ph) * Wp + KW, 0.f);
    for (int y = 0; y < H; y++) std::memcpy(&P[(size_t)(y + ph) * Wp + pw], in + (size_t)y * W, sizeof(float) * W);
};
// does tap (ky, kx) read any real input for output rows [y0, y1)?
auto live = [&](int ky, int kx, int y0, int y1, int H, int W, int Wo, int ph, int pw) {
    return y0 + ky <= ph + H - 1 && y1 - 1 + ky >= ph && kx <= pw + W - 1 && Wo - 1 + kx >= pw;
};
auto block_rows = [&](int Wp, int Ho) { return std::max(1, std::min(Ho, 4096 / Wp)); };
auto conv_plane = [&](const float* in, int H, int W, int ph, int pw, const float* wc, bool flip, float bias,
                      float* out, std::vector<float>& P, std::vector<float>& A) {
    const int Wp = W + 2 * pw, Ho = H + 2 * ph - KH + 1, Wo = Wp - KW + 1;
    pad_plane(in, H, W, ph, pw, P);
    const int R = block_rows(Wp, Ho);
    A.resize((size_t)R * Wp);
    for (int y0 = 0; y0 < Ho; y0 += R) {
        const int y1 = std::min(Ho, y0 + R);
        const int L = (y1 - y0) * Wp;
        float* __restrict a = A.data();
        for (int i = 0; i < L; i++) a[i] = bias;
        for (int ky = 0; ky < KH; ky++)
            for (int kx = 0; kx < KW; kx++) {
                if (!live(ky, kx, y0, y1, H, W, Wo, ph, pw)) continue;
                const float wv = flip ? wc[(KH - 1 - ky) * KW + (KW - 1 - kx)] : wc[ky * KW + kx];
                const float* __restrict s = P.data() + (size_t)(y0 + ky) * Wp + kx;
                for (int i = 0; i < L; i++) a[i] += wv * s[i];
            }
        for (int y = y0; y < y1; y++) std::memcpy(out + (size_t)y * Wo, a + (size_t)(y - y0) * Wp, sizeof(float) * Wo);
    }
};
// every (n, c) plane of `in` (ih x iw) convolved into `out` (oh x ow) with channel c's kernel (in1)
auto conv_planes = [&](const float* in, int ih, int iw, int ph, int pw, bool flip, const float* bias, float* out,
                       int oh, int ow, long long planes, int C) {
    run([&](long long p0, long long p1) {
        std::vector<float> P, A;
        for (long long p = p0; p < p1; p++) {
            const int c = (int)(p % C);
            conv_plane(in + p * ih * iw, ih, iw, ph, pw, in1_p + (size_t)c * KH * KW, flip, bias ? bias[c] : 0.f,
                       out + p * oh * ow, P, A);
        }
    }, planes, (long long)oh * ow * KH * KW);
};
"""

_DW_S1_FORWARD = r"""
// jseg-kernel: depthwise conv fwd
const int N = in0_shape0, C = in0_shape1, H = in0_shape2, W = in0_shape3;
""" + _DW_S1_COMMON + r"""
conv_planes(in0_p, H, W, PH, PW, false, @BPTR, out0_p, out0_shape2, out0_shape3, (long long)N * C, C);
"""

_DW_S1_GRAD_X = r"""
// jseg-kernel: depthwise conv bwd
const int N = out0_shape0, C = out0_shape1, H = out0_shape2, W = out0_shape3;
const int Ho = in0_shape2, Wo = in0_shape3;
""" + _DW_S1_COMMON + r"""
conv_planes(in0_p, Ho, Wo, KH - 1 - PH, KW - 1 - PW, true, nullptr, out0_p, H, W, (long long)N * C, C);
"""

# dL/dw[ky,kx] = sum over the batch of the output gradient (spread to width Wp, junk columns zero)
# dotted with the padded input shifted by the tap: contiguous dot products, blocked like the forward
_DW_S1_GRAD_W = r"""
// jseg-kernel: depthwise conv bwd
const int N = in1_shape0, C = in1_shape1, H = in1_shape2, W = in1_shape3;
const int Ho = in0_shape2, Wo = in0_shape3;
""" + _DW_S1_COMMON + r"""
run([&](long long c0, long long c1) {
    std::vector<float> P, G;
    std::vector<double> acc(KH * KW);
    const int Wp = W + 2 * PW, R = block_rows(Wp, Ho);
    for (long long c = c0; c < c1; c++) {
        std::fill(acc.begin(), acc.end(), 0.0);
        double bsum = 0.0;
        for (int n = 0; n < N; n++) {
            const float* gp = in0_p + ((size_t)n * C + c) * Ho * Wo;
            pad_plane(in1_p + ((size_t)n * C + c) * H * W, H, W, PH, PW, P);
            for (int y0 = 0; y0 < Ho; y0 += R) {
                const int y1 = std::min(Ho, y0 + R);
                const int L = (y1 - y0) * Wp;
                G.assign((size_t)L, 0.f);
                float bs = 0.f;
                for (int y = y0; y < y1; y++)
                    for (int x = 0; x < Wo; x++) { const float v = gp[(size_t)y * Wo + x]; G[(size_t)(y - y0) * Wp + x] = v; bs += v; }
                bsum += bs;
                const float* __restrict g = G.data();
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++) {
                        if (!live(ky, kx, y0, y1, H, W, Wo, PH, PW)) continue;
                        const float* __restrict s = P.data() + (size_t)(y0 + ky) * Wp + kx;
                        float d = 0.f;
                        for (int i = 0; i < L; i++) d += g[i] * s[i];
                        acc[ky * KW + kx] += d;
                    }
            }
        }
        for (int k = 0; k < KH * KW; k++) out0_p[c * KH * KW + k] = (float)acc[k];
        out1_p[c] = (float)bsum;
    }
}, (long long)C, (long long)N * H * W * KH * KW);
"""


def _dw_source(src, stride, padding, bias=False, kernel=(0, 0)):
    return _fill(src, KH=int(kernel[0]), KW=int(kernel[1]), SH=int(stride[0]), SW=int(stride[1]),
                 PH=int(padding[0]), PW=int(padding[1]), BIAS="in2_p[c]" if bias else "0.f",
                 BPTR="in2_p" if bias else "nullptr")


class _DepthwiseConv(jt.Function):
    def execute(self, x, w, b, stride, padding):
        N, C, H, W = x.shape
        KH, KW = w.shape[2:]
        Ho = (H + 2 * padding[0] - KH) // stride[0] + 1
        Wo = (W + 2 * padding[1] - KW) // stride[1] + 1
        self.x, self.w, self.has_bias, self.stride, self.padding = x, w, b is not None, stride, padding
        # the flat stride-1 kernels; their input gradient needs padding < kernel size (always, in practice)
        self.flat = tuple(stride) == (1, 1) and padding[0] < KH and padding[1] < KW
        inputs = [x, w] + ([b] if b is not None else [])
        return jt.code((N, C, Ho, Wo), "float32", inputs, cpu_header=_HEADER,
                       cpu_src=_dw_source(_DW_S1_FORWARD if self.flat else _DW_FORWARD, stride, padding,
                                          b is not None, (KH, KW)))

    def grad(self, g):
        g = g.cast("float32")
        k = self.w.shape[2:]
        dx = jt.code(self.x.shape, "float32", [g, self.w], cpu_header=_HEADER,
                     cpu_src=_dw_source(_DW_S1_GRAD_X if self.flat else _DW_GRAD_X, self.stride, self.padding,
                                        kernel=k))
        dw, db = jt.code([self.w.shape, (self.w.shape[0],)], ["float32", "float32"], [g, self.x],
                         cpu_header=_HEADER, cpu_src=_dw_source(_DW_S1_GRAD_W if self.flat else _DW_GRAD_W,
                                                                self.stride, self.padding, kernel=k))
        return dx, dw, (db if self.has_bias else None), None, None


def depthwise_conv2d_cpu(x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
    """``F.conv2d(x, weight, bias, stride, padding, groups=C)`` for float32 NCHW ``x`` and ``weight``
    of shape ``(C, 1, kh, kw)`` on the CPU, differentiable in ``x``, ``weight`` and ``bias``."""
    return _DepthwiseConv.apply(x, weight, bias, tuple(stride), tuple(padding))


# Batched matrix product of small matrices, C[b] = op(A[b]) @ op(B[b]) with op = identity or transpose
# (stored row-major as (B, rows, cols)).  Jittor hands only 2-D products to oneDNN, so a batch costs
# one getitem, matmul and stack per entry: ~4 ops of framework overhead each, which dominates the Ham
# head's NMF (about 900 products per quick-start step).  Rows of the batch are split over threads; a
# row of C is a sum of rows of op(B) (contiguous multiply-adds) or, when B is transposed, dot products
# of contiguous rows.
_BMM = r"""
// jseg-kernel: bmm fwd/bwd
const bool TA = @TA, TB = @TB;
const int Bn = out0_shape0, n = out0_shape1, k = out0_shape2;
const int m = TA ? in0_shape1 : in0_shape2;
jseg_parallel((long long)Bn * n, (int)std::min<long long>(@THREADS, std::max<long long>(1, (long long)Bn * n * m * k >> 16)),
              [&](long long r0, long long r1) {
    std::vector<float> arow(m);
    for (long long r = r0; r < r1; r++) {
        const int b = (int)(r / n), i = (int)(r % n);
        const float* A = in0_p + (size_t)b * n * m;
        const float* Bm = in1_p + (size_t)b * m * k;
        float* __restrict c = out0_p + (size_t)r * k;
        for (int j = 0; j < m; j++) arow[j] = TA ? A[(size_t)j * n + i] : A[(size_t)i * m + j];
        const float* __restrict a = arow.data();
        if (!TB) {
            for (int l = 0; l < k; l++) c[l] = 0.f;
            for (int j = 0; j < m; j++) {
                const float av = a[j];
                const float* __restrict brow = Bm + (size_t)j * k;
                for (int l = 0; l < k; l++) c[l] += av * brow[l];
            }
        } else {
            for (int l = 0; l < k; l++) {
                const float* __restrict bt = Bm + (size_t)l * m;
                float s = 0.f;
                for (int j = 0; j < m; j++) s += a[j] * bt[j];
                c[l] = s;
            }
        }
    }
});
"""


def _bmm_code(a, b, ta, tb):
    n = a.shape[2] if ta else a.shape[1]
    k = b.shape[1] if tb else b.shape[2]
    src = _fill(_BMM, TA="true" if ta else "false", TB="true" if tb else "false")
    return jt.code((a.shape[0], n, k), "float32", [a, b], cpu_header=_HEADER, cpu_src=src)


class _Bmm(jt.Function):
    def execute(self, a, b, ta, tb):
        self.a, self.b, self.ta, self.tb = a, b, ta, tb
        return _bmm_code(a, b, ta, tb)

    def grad(self, g):
        a, b, ta, tb = self.a, self.b, self.ta, self.tb
        g = g.cast("float32")
        # y = A' B' with A' = op(A), B' = op(B): dA' = g B'^T, dB' = A'^T g
        if ta:
            da = _bmm_code(b, g, tb, True)           # dA = dA'^T = B' g^T
        else:
            da = _bmm_code(g, b, False, not tb)     # g B'^T
        if tb:
            db = _bmm_code(g, a, True, ta)           # dB = dB'^T = g^T A'
        else:
            db = _bmm_code(a, g, not ta, False)     # A'^T g
        return da, db, None, None


def bmm_cpu(a, b, trans_a=False, trans_b=False):
    """``op(a) @ op(b)`` for float32 ``(B, ., .)`` operands on the CPU (``op``: transpose of the last two
    axes where asked), in one op, differentiable in both."""
    return _Bmm.apply(a, b, bool(trans_a), bool(trans_b))


# Per-pixel softmax cross-entropy over dim 1 of (N, K, P) logits, labels (N, P): loss = lse - x[label] with
# lse = max + log(sum(exp(x - max))), 0 where the label is the ignore index, NaN for any other label outside
# [0, K).  The backward is g * (exp(x - lse) - [k == label]) (0 on ignored pixels), so only the logits and
# lse (K times smaller) are kept: Jittor's log_softmax + gather keep a log-probability tensor as large as
# the logits and scatter into another (SegNeXt at 512x512: 150 x 2 x 512 x 512 floats, 315 MB each).
_CE_COMMON = r"""
const int N = in0_shape0, K = in0_shape1;
const long long P = in0_shape2;
const int IGNORE = @IGNORE;
"""
_CE_FORWARD = "// jseg-kernel: cross-entropy fwd\n" + _CE_COMMON + r"""
const float* x = in0_p;
const int* lab = in1_p;
float* loss = out0_p;
float* lse = out1_p;
jseg_parallel((long long)N * P, (int)std::min<long long>(@THREADS, std::max<long long>(1, (long long)N * P * K >> 16)),
              [&](long long begin, long long end) {
    const int BLOCK = 256;
    float mx[BLOCK], sum[BLOCK];
    for (long long s = begin; s < end;) {
        const int n = (int)(s / P);
        const long long p = s % P;
        const int len = (int)std::min<long long>({(long long)BLOCK, P - p, end - s});
        const float* base = x + (size_t)n * K * P + p;
        for (int i = 0; i < len; i++) mx[i] = base[i];
        for (int k = 1; k < K; k++) {
            const float* row = base + (size_t)k * P;
            for (int i = 0; i < len; i++) mx[i] = std::max(mx[i], row[i]);
        }
        for (int i = 0; i < len; i++) sum[i] = 0.f;
        for (int k = 0; k < K; k++) {
            const float* row = base + (size_t)k * P;
            for (int i = 0; i < len; i++) sum[i] += std::exp(row[i] - mx[i]);
        }
        for (int i = 0; i < len; i++) {
            const long long q = (long long)n * P + p + i;
            const float l = mx[i] + std::log(sum[i]);
            lse[q] = l;
            const int y = lab[q];
            if (y == IGNORE) loss[q] = 0.f;
            else if (y < 0 || y >= K) loss[q] = NAN;
            else loss[q] = l - base[(size_t)y * P + i];
        }
        s += len;
    }
});
"""
_CE_BACKWARD = "// jseg-kernel: cross-entropy bwd\n" + _CE_COMMON + r"""
const float* x = in0_p;
const int* lab = in1_p;
const float* lse = in2_p;
const float* g = in3_p;
float* dx = out0_p;
jseg_parallel((long long)N * P, (int)std::min<long long>(@THREADS, std::max<long long>(1, (long long)N * P * K >> 16)),
              [&](long long begin, long long end) {
    const int BLOCK = 256;
    float gg[BLOCK], l[BLOCK];
    int y[BLOCK];
    for (long long s = begin; s < end;) {
        const int n = (int)(s / P);
        const long long p = s % P;
        const int len = (int)std::min<long long>({(long long)BLOCK, P - p, end - s});
        const long long q0 = (long long)n * P + p;
        for (int i = 0; i < len; i++) {
            y[i] = lab[q0 + i];
            const bool ok = y[i] >= 0 && y[i] < K;
            gg[i] = ok ? g[q0 + i] : 0.f;
            l[i] = lse[q0 + i];
            if (!ok) y[i] = -1;
        }
        for (int k = 0; k < K; k++) {
            const float* row = x + ((size_t)n * K + k) * P + p;
            float* d = dx + ((size_t)n * K + k) * P + p;
            for (int i = 0; i < len; i++) d[i] = gg[i] * (std::exp(row[i] - l[i]) - (y[i] == k ? 1.f : 0.f));
        }
        s += len;
    }
});
"""


class _PixelCrossEntropy(jt.Function):
    def execute(self, logits, label, ignore_index):
        N, K = logits.shape[:2]
        self.shape = logits.shape
        flat = logits.reshape((N, K, -1))
        lab = label.reshape((N, -1)).cast("int32")
        src = _fill(_CE_FORWARD, IGNORE=int(ignore_index))
        loss, lse = jt.code([(N, flat.shape[2]), (N, flat.shape[2])], ["float32", "float32"], [flat, lab],
                            cpu_header=_HEADER, cpu_src=src)
        self.saved = (flat, lab, lse, int(ignore_index))
        return loss.reshape(label.shape)

    def grad(self, g):
        flat, lab, lse, ignore = self.saved
        dx = jt.code(flat.shape, "float32", [flat, lab, lse, g.reshape(lse.shape).cast("float32")],
                     cpu_header=_HEADER, cpu_src=_fill(_CE_BACKWARD, IGNORE=ignore))
        return dx.reshape(self.shape), None, None


def pixel_cross_entropy_cpu(logits, label, ignore_index=255):
    """Per-pixel ``-log_softmax(logits, 1)[label]`` of float32 ``(N, K, ...)`` logits and integer ``(N, ...)``
    labels: 0 where ``label == ignore_index``, NaN for other labels outside ``[0, K)``; differentiable in
    ``logits``."""
    return _PixelCrossEntropy.apply(logits, label, ignore_index)


# BatchNorm in training mode over (N, H*W) per channel, as PyTorch computes it: the mean and the biased
# variance of the centred values accumulated in double, y = (x - mean) / sqrt(var + eps) * w + b; the
# backward in closed form, dx = w / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat)), dw = sum(g * xhat),
# db = sum(g).  Channels are split over threads, each reading its N contiguous planes.  Jittor's graph
# of the same computes its reductions on one core across the channel-strided layout (CGRSeg's step:
# 866 ms in two of them).
_BN_FORWARD = r"""
// jseg-kernel: batchnorm fwd
const int N = in0_shape0, C = in0_shape1;
const long long HW = (long long)in0_shape2 * in0_shape3;
const float eps = @EPS;
jseg_parallel(C, (int)std::min<long long>(@THREADS, std::max<long long>(1, (long long)N * C * HW >> 15)),
              [&](long long c0, long long c1) {
    for (long long c = c0; c < c1; c++) {
        double s = 0.0;
        for (int n = 0; n < N; n++) {
            const float* p = in0_p + ((size_t)n * C + c) * HW;
            float part = 0.f;
            for (long long i = 0; i < HW; i++) part += p[i];
            s += part;
        }
        const double cnt = (double)N * HW;
        const double mean = s / cnt;
        double ss = 0.0;
        for (int n = 0; n < N; n++) {
            const float* p = in0_p + ((size_t)n * C + c) * HW;
            double part = 0.0;
            for (long long i = 0; i < HW; i++) { const double d = p[i] - mean; part += d * d; }
            ss += part;
        }
        const float m = (float)mean, v = (float)(ss / cnt);
        const float scale = in1_p[c] / std::sqrt(v + eps), shift = in2_p[c];
        for (int n = 0; n < N; n++) {
            const float* p = in0_p + ((size_t)n * C + c) * HW;
            float* y = out0_p + ((size_t)n * C + c) * HW;
            for (long long i = 0; i < HW; i++) y[i] = (p[i] - m) * scale + shift;
        }
        out1_p[c] = m;
        out2_p[c] = v;
    }
});
"""
_BN_BACKWARD = r"""
// jseg-kernel: batchnorm bwd
const int N = in0_shape0, C = in0_shape1;
const long long HW = (long long)in0_shape2 * in0_shape3;
const float eps = @EPS;
jseg_parallel(C, (int)std::min<long long>(@THREADS, std::max<long long>(1, (long long)N * C * HW >> 15)),
              [&](long long c0, long long c1) {
    for (long long c = c0; c < c1; c++) {
        const float m = in2_p[c], inv = 1.f / std::sqrt(in3_p[c] + eps);
        double sg = 0.0, sgx = 0.0;
        for (int n = 0; n < N; n++) {
            const float* g = in0_p + ((size_t)n * C + c) * HW;
            const float* x = in1_p + ((size_t)n * C + c) * HW;
            float a = 0.f, b = 0.f;
            for (long long i = 0; i < HW; i++) { a += g[i]; b += g[i] * ((x[i] - m) * inv); }
            sg += a;
            sgx += b;
        }
        const double cnt = (double)N * HW;
        const float k = in4_p[c] * inv, mg = (float)(sg / cnt), mgx = (float)(sgx / cnt);
        for (int n = 0; n < N; n++) {
            const float* g = in0_p + ((size_t)n * C + c) * HW;
            const float* x = in1_p + ((size_t)n * C + c) * HW;
            float* dx = out0_p + ((size_t)n * C + c) * HW;
            for (long long i = 0; i < HW; i++) dx[i] = k * (g[i] - mg - ((x[i] - m) * inv) * mgx);
        }
        out1_p[c] = (float)sgx;
        out2_p[c] = (float)sg;
    }
});
"""


class _BatchNormTrain(jt.Function):
    def execute(self, x, w, b, eps):
        C = x.shape[1]
        src = _fill(_BN_FORWARD, EPS=repr(float(eps)) + "f")
        y, mean, var = jt.code([x.shape, (C,), (C,)], ["float32"] * 3, [x, w, b], cpu_header=_HEADER, cpu_src=src)
        self.saved = (x, w, mean, var, eps)
        return y, mean, var

    def grad(self, gy, gmean=None, gvar=None):
        x, w, mean, var, eps = self.saved
        C = x.shape[1]
        dx, dw, db = jt.code([x.shape, (C,), (C,)], ["float32"] * 3, [gy.cast("float32"), x, mean, var, w],
                             cpu_header=_HEADER, cpu_src=_fill(_BN_BACKWARD, EPS=repr(float(eps)) + "f"))
        return dx, dw, db, None


def batch_norm_train_cpu(x, weight, bias, eps=1e-5):
    """Training-mode BatchNorm of a float32 NCHW ``x`` on the CPU: ``(y, batch mean, biased batch variance)``;
    ``y`` is differentiable in ``x``, ``weight`` and ``bias`` (the statistics are for the running buffers and
    carry no gradient)."""
    y, mean, var = _BatchNormTrain.apply(x, weight, bias, float(eps))
    return y, mean.detach(), var.detach()
