"""Custom CPU kernels (``jt.code``) where Jittor's generic ones are the bottleneck.

Jittor's own CPU kernels are single-threaded and its bilinear resize gathers
and weighs four inputs per output with per-element index arithmetic.  The
final resize of SegNeXt-T's 150-class logits to 512x512 then took 107 ms of a
300 ms inference on 2 cores.  ``bilinear_resize_cpu`` is separable (each
needed input row is interpolated horizontally once, output rows blend two
cached rows) and splits the planes over threads: about 10x faster.  It has
no gradient and is only used under ``no_grad``/for stop-grad inputs.
"""
import os

import jittor as jt

_HEADER = r"""
#include <thread>
#include <vector>
#include <algorithm>
#include <cmath>
"""

# PyTorch's upsample_bilinear2d (CPU, float): scale = in/out (align_corners: (in-1)/(out-1)),
# src = max(scale*(dst+0.5)-0.5, 0) (align_corners: scale*dst), i0 = min(floor(src), in-1),
# i1 = i0 + (i0 < in-1), l1 = src - i0; out = h0*(w0*a + w1*b) + h1*(w0*c + w1*d).
_SRC = r"""
const int NC = in0_shape0, Hi = in0_shape1, Wi = in0_shape2;
const int Ho = out0_shape1, Wo = out0_shape2;
const bool ac = @ALIGN;
const float* src = in0_p;
float* dst = out0_p;
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
int nt = std::min(NC, @THREADS);
if (nt <= 1) { work(0, NC); }
else {
    std::vector<std::thread> ts;
    for (int t = 0; t < nt; t++)
        ts.emplace_back(work, (int)((long long)NC * t / nt), (int)((long long)NC * (t + 1) / nt));
    for (auto& t : ts) t.join();
}
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


def bilinear_resize_cpu(x, size, align_corners=False):
    """Bilinear resize of an ``(N, C, H, W)`` float32 Var to ``size`` on the CPU, like PyTorch's
    ``F.interpolate(mode='bilinear')``; no gradient."""
    N, C, H, W = x.shape
    Ho, Wo = (int(s) for s in size)
    flat = x.reshape((N * C, H, W))
    src = _SRC.replace("@ALIGN", "true" if align_corners else "false").replace("@THREADS", str(cpu_threads()))
    out = jt.code((N * C, Ho, Wo), "float32", [flat], cpu_header=_HEADER, cpu_src=src)
    return out.reshape((N, C, Ho, Wo)).stop_grad()
