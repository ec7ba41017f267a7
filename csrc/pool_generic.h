/* Generic (any kernel/stride/padding/dilation) per-output pooling helpers,
 * written once and instantiated per dtype:
 *
 *   #define FC_T float
 *   #define FC_SFX(name) name##_f32
 *   #include "pool_generic.h"
 *
 * They follow PyTorch's CPU kernels exactly (window order, NaN handling,
 * tie-breaking, divisor), so the specialised SIMD kernels can use them for
 * borders and tails and give identical results.  Included by pool.c and by
 * pool_avx2.c (static inline: each translation unit gets its own copy). */
#include "fc_internal.h"

#ifndef FC_POOL_GENERIC_COMMON
#define FC_POOL_GENERIC_COMMON

/* Valid taps of one window along one axis: first valid tap `lo` (a tap
 * position, >= 0), `hi` one past the last position that may hold a tap
 * (taps are lo, lo+dil, ... < hi).  `start` is the window origin
 * o*stride - pad.  Mirrors PyTorch's `while (ih0 < 0) ih0 += dil`. */
static inline void fc_pool_taps(int64_t start, int64_t k, int64_t dil, int64_t in,
                                int64_t *lo, int64_t *hi) {
    int64_t end = start + (k - 1) * dil + 1;
    if (start < 0) start += ((-start + dil - 1) / dil) * dil;
    *lo = start;
    *hi = end < in ? end : in;
}

/* Avg-pool window clipped to the input and its divisor, as PyTorch: with
 * count_include_pad the window is first clipped to the padded extent
 * [-pad, in + pad); divisor_override wins over both. */
static inline int64_t fc_pool_avg_window(const fc_pool_shape *s, int64_t oh, int64_t ow,
                                         int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t a0 = oh * s->stride_h - s->pad_h, b0 = ow * s->stride_w - s->pad_w;
    int64_t a1 = FC_MIN(a0 + s->kh, s->h_in + s->pad_h);
    int64_t b1 = FC_MIN(b0 + s->kw, s->w_in + s->pad_w);
    int64_t padded = (a1 - a0) * (b1 - b0);
    a0 = FC_MAX(a0, 0); b0 = FC_MAX(b0, 0);
    a1 = FC_MIN(a1, s->h_in); b1 = FC_MIN(b1, s->w_in);
    *h0 = a0; *h1 = a1; *w0 = b0; *w1 = b1;
    if (s->divisor_override) return s->divisor_override;
    if (s->count_include_pad) return padded;
    return (a1 - a0) * (b1 - b0);
}

/* Is `idx` (offset in an h_in*w_in plane) a tap of window (oh, ow)?
 * Returns 1 yes, 0 no, 2 when the window has no valid tap at all and idx is
 * the placeholder index PyTorch's forward reports for such a window. */
static inline int fc_pool_index_in_window(const fc_pool_shape *s, int64_t oh, int64_t ow, int64_t idx) {
    int64_t hlo, hhi, wlo, whi, ih, iw;
    fc_pool_taps(oh * s->stride_h - s->pad_h, s->kh, s->dil_h, s->h_in, &hlo, &hhi);
    fc_pool_taps(ow * s->stride_w - s->pad_w, s->kw, s->dil_w, s->w_in, &wlo, &whi);
    if (hlo >= hhi || wlo >= whi) return idx == hlo * s->w_in + wlo ? 2 : 0;
    if (idx < 0 || idx >= s->h_in * s->w_in) return 0;
    ih = idx / s->w_in;
    iw = idx - ih * s->w_in;
    if (ih < hlo || ih >= hhi || (ih - hlo) % s->dil_h) return 0;
    if (iw < wlo || iw >= whi || (iw - wlo) % s->dil_w) return 0;
    return 1;
}
/* Threads for `planes` planes of `plane_elems` elements (the larger of the
 * input and output plane).  Small calls run on one thread: an OpenMP team
 * costs microseconds, and far more when a core is busy with other work. */
#define FC_POOL_GRAIN 8192
static inline int fc_pool_threads(const fc_context *ctx, int64_t planes, int64_t plane_elems) {
    int64_t per = plane_elems >= FC_POOL_GRAIN ? 1 : FC_POOL_GRAIN / (plane_elems > 0 ? plane_elems : 1);
    return fc_threads_for(ctx, (planes + per - 1) / per);
}
#endif /* FC_POOL_GENERIC_COMMON */

/* One max-pool output: the first maximum in window order (row-major), a NaN
 * anywhere in the window wins (the last NaN, as PyTorch).  Empty windows
 * give -inf and PyTorch's placeholder index. */
static inline FC_T FC_SFX(fc_pool_max_one)(const fc_pool_shape *s, const FC_T *x,
                                           int64_t oh, int64_t ow, int64_t *index) {
    int64_t hlo, hhi, wlo, whi, ih, iw, best;
    FC_T m = (FC_T)-INFINITY;
    fc_pool_taps(oh * s->stride_h - s->pad_h, s->kh, s->dil_h, s->h_in, &hlo, &hhi);
    fc_pool_taps(ow * s->stride_w - s->pad_w, s->kw, s->dil_w, s->w_in, &wlo, &whi);
    best = hlo * s->w_in + wlo;
    for (ih = hlo; ih < hhi; ih += s->dil_h) {
        const FC_T *row = x + ih * s->w_in;
        for (iw = wlo; iw < whi; iw += s->dil_w) {
            /* branch-free select: on random data a branch mispredicts */
            FC_T v = row[iw];
            int take = (v > m) | (v != v);
            m = take ? v : m;
            best = take ? ih * s->w_in + iw : best;
        }
    }
    *index = best;
    return m;
}

/* One avg-pool output: sum in window order times the reciprocal of the
 * divisor (the cost model's convention; PyTorch divides, which can differ
 * in the last bit). */
static inline FC_T FC_SFX(fc_pool_avg_one)(const fc_pool_shape *s, const FC_T *x, int64_t oh, int64_t ow) {
    int64_t h0, h1, w0, w1, ih, iw;
    int64_t div = fc_pool_avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
    FC_T sum = 0;
    if (h0 >= h1 || w0 >= w1) return 0;
    for (ih = h0; ih < h1; ih++)
        for (iw = w0; iw < w1; iw++) sum += x[ih * s->w_in + iw];
    return sum * ((FC_T)1 / (FC_T)div);
}

/* Generic planes.  Each handles output rows [oh0, oh1) (so SIMD kernels can
 * delegate border rows) and output columns [ow0, ow1). */
static inline void FC_SFX(fc_pool_max_rect)(const fc_pool_shape *s, const FC_T *x, FC_T *y, int64_t *ind,
                                            int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1) {
    int64_t oh, ow, k;
    for (oh = oh0; oh < oh1; oh++)
        for (ow = ow0; ow < ow1; ow++) {
            FC_T v = FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
            y[oh * s->w_out + ow] = v;
            if (ind) ind[oh * s->w_out + ow] = k;
        }
}

static inline void FC_SFX(fc_pool_avg_rect)(const fc_pool_shape *s, const FC_T *x, FC_T *y,
                                            int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1) {
    int64_t oh, ow;
    for (oh = oh0; oh < oh1; oh++)
        for (ow = ow0; ow < ow1; ow++)
            y[oh * s->w_out + ow] = FC_SFX(fc_pool_avg_one)(s, x, oh, ow);
}

/* Max backward for one plane by scatter (race-free: one thread owns the
 * plane).  gx is zeroed first; outputs are visited in order so the sums
 * equal PyTorch's.  Returns 0, or 1 when an index lies outside its window. */
static inline int FC_SFX(fc_pool_max_backward_plane)(const fc_pool_shape *s, const FC_T *gy,
                                                     const int64_t *ind, const FC_T *x, FC_T *gx) {
    int64_t oh, ow, k, hw = s->h_in * s->w_in;
    memset(gx, 0, (size_t)hw * sizeof(FC_T));
    for (oh = 0; oh < s->h_out; oh++)
        for (ow = 0; ow < s->w_out; ow++) {
            int64_t o = oh * s->w_out + ow;
            if (ind) {
                int r;
                k = ind[o];
                r = fc_pool_index_in_window(s, oh, ow, k);
                if (r == 0) return 1;
                if (r == 2) continue;   /* empty window: no input gets gradient */
            } else {
                int64_t hlo, hhi, wlo, whi;
                fc_pool_taps(oh * s->stride_h - s->pad_h, s->kh, s->dil_h, s->h_in, &hlo, &hhi);
                fc_pool_taps(ow * s->stride_w - s->pad_w, s->kw, s->dil_w, s->w_in, &wlo, &whi);
                if (hlo >= hhi || wlo >= whi) continue;
                (void)FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
            }
            gx[k] += gy[o];
        }
    return 0;
}

/* Avg backward for one plane: zero, then scatter grad/divisor over each
 * window in output order (PyTorch's order). */
static inline void FC_SFX(fc_pool_avg_backward_plane)(const fc_pool_shape *s, const FC_T *gy, FC_T *gx) {
    int64_t oh, ow, ih, iw, h0, h1, w0, w1;
    memset(gx, 0, (size_t)(s->h_in * s->w_in) * sizeof(FC_T));
    for (oh = 0; oh < s->h_out; oh++)
        for (ow = 0; ow < s->w_out; ow++) {
            int64_t div = fc_pool_avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
            FC_T g;
            if (h0 >= h1 || w0 >= w1) continue;
            g = gy[oh * s->w_out + ow] * ((FC_T)1 / (FC_T)div);
            for (ih = h0; ih < h1; ih++)
                for (iw = w0; iw < w1; iw++) gx[ih * s->w_in + iw] += g;
        }
}
