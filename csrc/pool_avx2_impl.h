/* AVX2 pooling kernels for one dtype, instantiated twice by pool_avx2.c with
 * FC_T, FC_SFX and the V* vector macros defined (8 floats or 4 doubles).
 *
 * Forward kernels are specialised on kernel K, stride S (1 or 2) and
 * padding P (compile-time constants, dilation 1).  For one output row they
 * vectorise over VL consecutive outputs whose columns all lie inside the
 * input ("lane-valid"); rows in the padding are skipped, exactly as the
 * generic code skips padding taps, so window order, NaN handling,
 * tie-breaking and divisors equal the generic kernels (pool_generic.h),
 * which handle the border columns and tails.
 *
 * Stride 2: the taps of VL outputs are every other element of 2*VL
 * consecutive inputs; VEVEN/VODD pick them from two loads in a lane order
 * that VFIX undoes once per result. */

/* First output whose window columns all lie inside the input, and one past
 * the last such output (ow_hi <= ow_lo means none). */
static inline void FC_SFX(lane_valid)(const fc_pool_shape *s, int K, int S, int P, int64_t *lo, int64_t *hi) {
    int64_t a = (P + S - 1) / S, b;
    b = (s->w_in - K + P) >= 0 ? (s->w_in - K + P) / S + 1 : 0;
    if (b > s->w_out) b = s->w_out;
    *lo = a;
    *hi = b > a ? b : a;
}

/* Tap (r, c) of the VL outputs starting at `row` = &x[ih][ow*S - P]. */
#define TAP(row, c, S, odd)                                                         \
    ((S) == 1 ? VLOAD((row) + (c))                                                  \
     : (odd) ? VODD(VLOAD((row) + (c) - 1), VLOAD((row) + (c) - 1 + VL))            \
             : VEVEN(VLOAD((row) + (c)), VLOAD((row) + (c) + VL)))

/* Fold tap value v (in-plane offset `off`) into the running max m and its
 * index code: the first maximum wins and a NaN v replaces m, as PyTorch's
 * `v > m || isnan(v)`.  Without indices, max(v, m) keeps m on ties and when
 * m is NaN, and the blend lets a NaN v through. */
#define MAX_FOLD(m, code, v, off, with_idx)                                         \
    do {                                                                            \
        if (with_idx) {                                                             \
            VT take_ = VOR(VGT(v, m), VUNORD(v));                                   \
            m = VBLEND(m, v, take_);                                                \
            code = VBLEND(code, VCODE(off), take_);                                 \
        } else {                                                                    \
            m = VMAX(v, m);                                                         \
            m = VBLEND(m, v, VUNORD(v));                                            \
        }                                                                           \
    } while (0)

/* Stride 2 reads one element before (odd loads) or after (even loads) the
 * taps; choose the variant that stays inside the row.  0 = no safe load. */
static FC_INLINE int FC_SFX(load_variant)(int64_t ow, int64_t W, int K, int S, int P) {
    int64_t first = ow * S - P, last = (ow + VL - 1) * S - P + K - 1;
    if (S == 1) return 1;
    if (first >= 1) return 2;             /* odd variant reads first-1 .. last */
    if (last + 1 <= W - 1) return 3;      /* even variant reads first .. last+1 */
    return 0;
}

/* Software prefetch (into L2) of the S input rows that the row
 * FC_PF_ROWS output rows below reads first, at this block's columns: one
 * cache line per row per block of VL outputs at stride 2.  The hardware
 * prefetchers alone keep too few lines in flight for one core to stream at
 * memory speed (measured: 2x2/2 on 100 MB went from ~10 to ~20 GB/s). */
#define FC_PF_ROWS 8
#ifndef FC_PF_ROWS_FN
#define FC_PF_ROWS_FN
/* Prefetch distance in output rows of `row_bytes` each: FC_PF_ROWS, or
 * more for narrow rows, so that at least ~8 KB are in flight (a DRAM
 * latency's worth at streaming speed); a power-of-two estimate, no division. */
static FC_INLINE int64_t fc_pf_rows(int64_t row_bytes) {
    const int lg = row_bytes > 0 ? 63 - __builtin_clzll((unsigned long long)row_bytes) : 0;
    const int64_t d = lg >= 13 ? 1 : ((int64_t)8192 >> lg);
    return d > FC_PF_ROWS ? d : FC_PF_ROWS;
}
#endif
static FC_INLINE void FC_SFX(prefetch_rows)(const FC_T *x, int64_t H, int64_t W, int64_t ih_next,
                                            int64_t col, const int S) {
    /* Rows past the plane are the next plane's (planes are contiguous), so
     * small planes prefetch their successor; past the array's end a
     * prefetch is only a hint and never faults. */
    const uintptr_t base = (uintptr_t)x;
    int64_t ih = ih_next + (fc_pf_rows(S * W * (int64_t)sizeof(FC_T)) - 1) * S, r;
    (void)H;
    for (r = 0; r < S; r++)
        _mm_prefetch((const char *)(base + (uintptr_t)(((ih + r) * W + col) * (int64_t)sizeof(FC_T))), _MM_HINT_T1);
}

#ifndef FC_PREFETCH_SPAN
#define FC_PREFETCH_SPAN
/* Prefetch (into L2) every cache line of [p, p + bytes). */
static FC_INLINE void prefetch_span(uintptr_t p, int64_t bytes) {
    int64_t i;
    for (i = 0; i < bytes; i += 64) _mm_prefetch((const char *)(p + (uintptr_t)i), _MM_HINT_T1);
}
#endif

/* Backward: the grad_out (and index) rows FC_PF_ROWS output rows below. */
static FC_INLINE void FC_SFX(prefetch_out_rows)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind,
                                                int64_t oh) {
    /* rows past the plane belong to the next plane (a hint: never faults) */
    const int64_t ahead = (oh + FC_PF_ROWS) * s->w_out, wo = s->w_out;
    prefetch_span((uintptr_t)gy + (uintptr_t)(ahead * (int64_t)sizeof(FC_T)), wo * (int64_t)sizeof(FC_T));
    if (ind) prefetch_span((uintptr_t)ind + (uintptr_t)(ahead * 8), wo * 8);
}

/* Max over output row `oh`, outputs [ow, ow_hi) (lane-valid); output o is
 * stored at yrow[o - o_base] (and irow[o - o_base]).  Returns the first
 * output it did not compute. */
static FC_INLINE int64_t FC_SFX(max_row)(const fc_pool_shape *s, const FC_T *x, FC_T *yrow, int64_t *irow,
                                         int64_t o_base, int64_t oh, int64_t ow, int64_t ow_hi,
                                         const int K, const int S, const int P, const int with_idx) {
    const int64_t W = s->w_in, ih0 = oh * S - P;
    const int r_lo = ih0 < 0 ? (int)-ih0 : 0;
    const int r_hi = (int)FC_MIN((int64_t)K, s->h_in - ih0);
    if (r_lo >= r_hi) return ow;
    const int64_t ow_start = ow;
    for (;; ow += VL) {
        int var, r, c;
        VT m = VSET1(-INFINITY), code = VCODE((int64_t)r_lo * W - P);
        if (ow + VL > ow_hi) {
            /* last block: recompute a few outputs rather than a scalar tail */
            if (ow < ow_hi && ow_hi - VL >= ow_start) ow = ow_hi - VL;
            else break;
        }
        var = FC_SFX(load_variant)(ow, W, K, S, P);
        if (!var) break;
        FC_SFX(prefetch_rows)(x, s->h_in, W, ih0 + K, ow * S - P, S);
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++) {
                VT v = TAP(row, c, S, var == 2);
                MAX_FOLD(m, code, v, (int64_t)r * W + c - P, with_idx);
            }
        }
        if (S == 2) { m = VFIX(m); code = VFIX(code); }
        VSTORE(yrow + (ow - o_base), m);
        if (with_idx) VSTORE_IDX(irow + (ow - o_base), code, ih0 * W + ow * S, S);
    }
    /* a row with fewer than VL lane-valid outputs (narrow planes): one
     * block with masked loads -- lanes past the row end read nothing, so
     * never fault -- and masked stores of the n real outputs */
    if (ow < ow_hi && ow_hi - ow < VL && ow == ow_start) {
        const int64_t n = ow_hi - ow, left = W - (ow * S - P);  /* elements from the block start to the row end */
        VT m = VSET1(-INFINITY), code = VCODE((int64_t)r_lo * W - P);
        int r, c;
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++) {
                VT v = S == 1 ? VMLOAD(row + c, left - c)
                              : VEVEN(VMLOAD(row + c, left - c), VMLOAD(row + c + VL, left - c - VL));
                MAX_FOLD(m, code, v, (int64_t)r * W + c - P, with_idx);
            }
        }
        if (S == 2) { m = VFIX(m); code = VFIX(code); }
        VMSTORE(yrow + (ow - o_base), m, n);
        if (with_idx) VMSTORE_IDX(irow + (ow - o_base), code, ih0 * W + ow * S, S, n);
        ow = ow_hi;
    }
    /* scalar tail over the remaining lane-valid outputs (same semantics) */
    for (; ow < ow_hi; ow++) {
        FC_T m = (FC_T)-INFINITY;
        int64_t best = (ih0 + r_lo) * W + ow * S - P;
        int r, c;
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++) {
                int take;
                int64_t cand = (ih0 + r) * W + ow * S - P + c;
                m = FC_SFX(scalar_max)(m, row[c], &take);
                best = take ? cand : best;
            }
        }
        yrow[ow - o_base] = m;
        if (with_idx) irow[ow - o_base] = best;
    }
    return ow;
}

static FC_INLINE int64_t FC_SFX(avg_row)(const fc_pool_shape *s, const FC_T *x, FC_T *yrow,
                                         int64_t oh, int64_t ow, int64_t ow_hi,
                                         const int K, const int S, const int P) {
    const int64_t W = s->w_in, ih0 = oh * S - P;
    const int r_lo = ih0 < 0 ? (int)-ih0 : 0;
    const int r_hi = (int)FC_MIN((int64_t)K, s->h_in - ih0);
    int64_t h0, h1, w0, w1, div;
    VT vdiv;
    if (r_lo >= r_hi || ow >= ow_hi) return ow;
    {
    /* every lane-valid output of this row has the same divisor */
    div = fc_pool_avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
    vdiv = VSET1((FC_T)1 / (FC_T)div);   /* reciprocal: multiply, not divide */
    const int64_t ow_start = ow;
    for (;; ow += VL) {
        int var, r, c;
        VT sum = VZERO();
        if (ow + VL > ow_hi) {
            if (ow < ow_hi && ow_hi - VL >= ow_start) ow = ow_hi - VL;
            else break;
        }
        var = FC_SFX(load_variant)(ow, W, K, S, P);
        if (!var) break;
        FC_SFX(prefetch_rows)(x, s->h_in, W, ih0 + K, ow * S - P, S);
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++) sum = VADD(sum, TAP(row, c, S, var == 2));
        }
        if (S == 2) sum = VFIX(sum);
        VSTORE(yrow + ow, VMUL(sum, vdiv));
    }
    if (ow < ow_hi && ow_hi - ow < VL && ow == ow_start) {    /* narrow row: masked block */
        const int64_t n = ow_hi - ow, left = W - (ow * S - P);
        VT sum = VZERO();
        int r, c;
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++)
                sum = VADD(sum, S == 1 ? VMLOAD(row + c, left - c)
                                       : VEVEN(VMLOAD(row + c, left - c), VMLOAD(row + c + VL, left - c - VL)));
        }
        if (S == 2) sum = VFIX(sum);
        VMSTORE(yrow + ow, VMUL(sum, vdiv), n);
        ow = ow_hi;
    }
    for (; ow < ow_hi; ow++) {
        FC_T sum = 0;
        int r, c;
        for (r = r_lo; r < r_hi; r++) {
            const FC_T *row = x + (ih0 + r) * W + ow * S - P;
            for (c = 0; c < K; c++) sum += row[c];
        }
        yrow[ow] = sum * ((FC_T)1 / (FC_T)div);
    }
    }
    return ow;
}

/* Rows of at most FC_NT_ROW outputs can be streamed (see stream_row). */
#define FC_NT_ROW 2048

/* dst[0..n) = src[0..n), the 64-byte aligned whole cache lines with
 * non-temporal stores: an output far larger than the cache is not read
 * into it first (a normal store reads each line before writing it), which
 * is a fifth of a 2x2/2 forward's memory traffic. */
static FC_INLINE void FC_SFX(stream_row)(FC_T *dst, const FC_T *src, int64_t n) {
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 63); i++) dst[i] = src[i];
    for (; i + 2 * VL <= n; i += 2 * VL) {
        VSTREAM(dst + i, VLOAD(src + i));
        VSTREAM(dst + i + VL, VLOAD(src + i + VL));
    }
    for (; i < n; i++) dst[i] = src[i];
}

#ifndef FC_STREAM_I64
#define FC_STREAM_I64
static FC_INLINE void stream_row_i64(int64_t *dst, const int64_t *src, int64_t n) {
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 63); i++) dst[i] = src[i];
    for (; i + 8 <= n; i += 8) {
        _mm256_stream_si256((__m256i *)(dst + i), _mm256_loadu_si256((const __m256i *)(src + i)));
        _mm256_stream_si256((__m256i *)(dst + i + 4), _mm256_loadu_si256((const __m256i *)(src + i + 4)));
    }
    for (; i < n; i++) dst[i] = src[i];
}
#endif

/* One plane of max pooling with a fixed (K, S, P); nt: rows are built in
 * a buffer and streamed out (w_out <= FC_NT_ROW). */
static FC_INLINE void FC_SFX(max_plane)(const fc_pool_shape *s, const FC_T *x, FC_T *y, int64_t *ind,
                                        const int K, const int S, const int P, const int nt) {
    FC_T ybuf[FC_NT_ROW];
    int64_t ibuf[FC_NT_ROW];
    int64_t lo, hi, oh, wo = s->w_out;
    FC_SFX(lane_valid)(s, K, S, P, &lo, &hi);
    for (oh = 0; oh < s->h_out; oh++) {
        FC_T *yr = nt ? ybuf : y + oh * wo;
        int64_t *ir = ind ? (nt ? ibuf : ind + oh * wo) : NULL;
        int64_t ow, k;
        for (ow = 0; ow < FC_MIN(lo, wo); ow++) {
            yr[ow] = FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
            if (ir) ir[ow] = k;
        }
        ow = ir ? FC_SFX(max_row)(s, x, yr, ir, 0, oh, lo, hi, K, S, P, 1)
                : FC_SFX(max_row)(s, x, yr, NULL, 0, oh, lo, hi, K, S, P, 0);
        for (; ow < wo; ow++) {
            yr[ow] = FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
            if (ir) ir[ow] = k;
        }
        if (nt) {
            FC_SFX(stream_row)(y + oh * wo, ybuf, wo);
            if (ind) stream_row_i64(ind + oh * wo, ibuf, wo);
        }
    }
}

/* Stream the output when the call's arrays together exceed the last-level
 * cache (they would not stay cached for the next layer anyway). */
static int FC_SFX(use_nt)(const fc_pool_shape *s, int64_t extra_bytes_per_out) {
    const double bytes = (double)(s->n * s->c) *
        ((double)(s->h_in * s->w_in) * sizeof(FC_T) + (double)(s->h_out * s->w_out) * (sizeof(FC_T) + extra_bytes_per_out));
    return s->w_out <= FC_NT_ROW && bytes >= (double)fc_pool_llc_bytes();
}

/* Border outputs [o0, o1) of row oh with a fixed K: taps outside the input
 * are read clamped and replaced by 0 (x + 0 == x exactly, and the sum
 * starts at +0), so the sum equals the generic kernel's without its
 * data-dependent loop bounds, which mispredict. */
static FC_INLINE void FC_SFX(avg_border)(const fc_pool_shape *s, const FC_T *x, FC_T *yrow, int64_t oh,
                                         int64_t o0, int64_t o1, const int K, const int S, const int P) {
    const int64_t W = s->w_in, H = s->h_in, ih0 = oh * S - P;
    int64_t o, h0, h1, w0, w1;
    for (o = o0; o < o1; o++) {
        const int64_t iw0 = o * S - P;
        const int64_t div = fc_pool_avg_window(s, oh, o, &h0, &h1, &w0, &w1);
        FC_T sum = 0;
        int r, c;
        if (h0 >= h1 || w0 >= w1) { yrow[o] = 0; continue; }
        for (r = 0; r < K; r++) {
            const int64_t ih = ih0 + r;
            const int rv = ih >= 0 && ih < H;
            const FC_T *row = x + FC_MIN(FC_MAX(ih, 0), H - 1) * W;
            for (c = 0; c < K; c++) {
                const int64_t iw = iw0 + c;
                const FC_T v = row[FC_MIN(FC_MAX(iw, 0), W - 1)];
                sum += (rv & (iw >= 0) & (iw < W)) ? v : (FC_T)0;
            }
        }
        yrow[o] = sum * ((FC_T)1 / (FC_T)div);
    }
}

static FC_INLINE void FC_SFX(avg_plane)(const fc_pool_shape *s, const FC_T *x, FC_T *y,
                                        const int K, const int S, const int P, const int nt) {
    FC_T ybuf[FC_NT_ROW];
    int64_t lo, hi, oh, wo = s->w_out;
    FC_SFX(lane_valid)(s, K, S, P, &lo, &hi);
    for (oh = 0; oh < s->h_out; oh++) {
        FC_T *yr = nt ? ybuf : y + oh * wo;
        int64_t ow;
        FC_SFX(avg_border)(s, x, yr, oh, 0, FC_MIN(lo, wo), K, S, P);
        ow = FC_SFX(avg_row)(s, x, yr, oh, lo, hi, K, S, P);
        FC_SFX(avg_border)(s, x, yr, oh, ow, wo, K, S, P);
        if (nt) FC_SFX(stream_row)(y + oh * wo, ybuf, wo);
    }
}

/* The specialised configurations: 0 = none. */
static int FC_SFX(fast_kind)(const fc_pool_shape *s) {
    if (s->kh != s->kw || s->stride_h != s->stride_w || s->pad_h != s->pad_w) return 0;
    if (s->dil_h != 1 || s->dil_w != 1) return 0;
    /* int32 tap offsets in the float32 index path */
    if (s->w_in > (int64_t)1 << 28) return 0;
    if (s->kh == 2 && s->stride_h == 2 && s->pad_h == 0) return 1;
    if (s->kh == 3 && s->stride_h == 2 && s->pad_h == 1) return 2;
    if (s->kh == 3 && s->stride_h == 1 && s->pad_h == 1) return 3;
    return 0;
}

#include "pool_avx2_fwd.h"

/* Planes [*p0, *p1) of the calling thread: a contiguous share of `planes`
 * (the flat kernels need consecutive planes; no result depends on it). */
static void FC_SFX(my_planes)(int64_t planes, int64_t *p0, int64_t *p1) {
#ifdef _OPENMP
    const int64_t nth = omp_get_num_threads(), id = omp_get_thread_num();
#else
    const int64_t nth = 1, id = 0;
#endif
    const int64_t q = planes / nth, r = planes % nth;
    *p0 = id * q + FC_MIN(id, r);
    *p1 = *p0 + q + (id < r);
}

/* 2x2/2 exactly tiled, no indices: max or avg over flat row pairs.  It
 * serves every such call: with the flat stream's prefetch and streamed
 * stores beyond the cache it measured faster than the row kernels there
 * too (vgg2 2x2/2, 64 MB, warm: 24 vs 14-18 GB/s), and below the cache it
 * always was (14x14 planes: 2x). */
static fc_status FC_SFX(k2_flat_call)(fc_context *ctx, const fc_pool_shape *s, const FC_T *x, FC_T *y,
                                      const int is_max, FC_T scale) {
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    const int nt = FC_SFX(use_nt)(s, 0);
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
        int64_t p0, p1;
        fc_fpmode fm;
        if (!is_max) fm = fc_fpmode_enter();   /* max: no FTZ/DAZ (subnormal compares) */
        FC_SFX(my_planes)(planes, &p0, &p1);
        if (p1 > p0) {
            if (is_max && nt) FC_SFX(k2_flat)(x + p0 * hw_in, y + p0 * hw_out, (p1 - p0) * s->h_out, s->w_in, 1, scale, 1);
            else if (is_max) FC_SFX(k2_flat)(x + p0 * hw_in, y + p0 * hw_out, (p1 - p0) * s->h_out, s->w_in, 1, scale, 0);
            else if (nt) FC_SFX(k2_flat)(x + p0 * hw_in, y + p0 * hw_out, (p1 - p0) * s->h_out, s->w_in, 0, scale, 1);
            else FC_SFX(k2_flat)(x + p0 * hw_in, y + p0 * hw_out, (p1 - p0) * s->h_out, s->w_in, 0, scale, 0);
        }
        _mm_sfence();
        if (!is_max) fc_fpmode_leave(fm);
    }
    return FC_OK;
}

fc_status FC_SFXA(fc_max_pool2d)(fc_context *ctx, const fc_pool_shape *s, const FC_T *x, FC_T *y,
                                 int64_t *indices) {
    const int kind = FC_SFX(fast_kind)(s);
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    int64_t p;
    if (!kind) return FC_NOT_HANDLED;
    if (kind == 1 && !indices && FC_SFX(k2_exact)(s)) return FC_SFX(k2_flat_call)(ctx, s, x, y, 1, 1);
    const int nt = FC_SFX(use_nt)(s, indices ? 8 : 0);
    const int m3 = kind == 2 && !indices && FC_SFX(max3s2_ok)(s);
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++) {
            const FC_T *xp = x + p * hw_in;
            FC_T *yp = y + p * hw_out;
            int64_t *ip = indices ? indices + p * hw_out : NULL;
            if (m3) {
                if (nt) FC_SFX(max3s2_plane)(s, xp, yp, 1);
                else FC_SFX(max3s2_plane)(s, xp, yp, 0);
            } else if (kind == 1) {
                if (nt) FC_SFX(max_plane)(s, xp, yp, ip, 2, 2, 0, 1);
                else FC_SFX(max_plane)(s, xp, yp, ip, 2, 2, 0, 0);
            } else if (kind == 2) {
                if (nt) FC_SFX(max_plane)(s, xp, yp, ip, 3, 2, 1, 1);
                else FC_SFX(max_plane)(s, xp, yp, ip, 3, 2, 1, 0);
            } else FC_SFX(max_plane)(s, xp, yp, ip, 3, 1, 1, 0);
        }
        _mm_sfence();   /* streamed stores visible before the call returns */
    }
    return FC_OK;
}

#include "pool_avx2_avg3.h"

fc_status FC_SFXA(fc_avg_pool2d)(fc_context *ctx, const fc_pool_shape *s, const FC_T *x, FC_T *y) {
    const int kind = FC_SFX(fast_kind)(s);
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    const int sep = kind == 3 && FC_SFX(avg3_ok)(s);
    FC_T recip[3][3];
    int64_t p;
    if (!kind) return FC_NOT_HANDLED;
    if (kind == 1 && FC_SFX(k2_exact)(s))
        return FC_SFX(k2_flat_call)(ctx, s, x, y, 0,
                                    (FC_T)1 / (FC_T)(s->divisor_override ? s->divisor_override : 4));
    const int nt = FC_SFX(use_nt)(s, 0);
    const int a3 = kind == 2 && FC_SFX(max3s2_ok)(s);
    if (sep) FC_SFX(avg3_recips)(s, recip);
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    {
        fc_fpmode fm = fc_fpmode_enter();
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++) {
            const FC_T *xp = x + p * hw_in;
            FC_T *yp = y + p * hw_out;
            if (sep) FC_SFX(avg3_plane)(s, (const FC_T(*)[3])recip, xp, yp);
            else if (kind == 1) {
                if (nt) FC_SFX(avg_plane)(s, xp, yp, 2, 2, 0, 1);
                else FC_SFX(avg_plane)(s, xp, yp, 2, 2, 0, 0);
            } else if (kind == 2 && a3) {
                if (nt) FC_SFX(avg3s2_plane)(s, xp, yp, 1);
                else FC_SFX(avg3s2_plane)(s, xp, yp, 0);
            } else if (kind == 2) {
                if (nt) FC_SFX(avg_plane)(s, xp, yp, 3, 2, 1, 1);
                else FC_SFX(avg_plane)(s, xp, yp, 3, 2, 1, 0);
            } else FC_SFX(avg_plane)(s, xp, yp, 3, 1, 1, 0);
        }
        _mm_sfence();
        fc_fpmode_leave(fm);
    }
    return FC_OK;
}

/* ---- max backward ------------------------------------------------------- */

#define FC_POOL_BLK 64

/* gx[ind[o]] += gy[o] for the outputs [o0, o1) of row oh, each index first
 * checked against its own window without a division: its offset from the
 * window origin must be r*W + c for a valid tap (r, c).  Returns 1 on a bad
 * index.  Output order, so sums equal the generic kernel's. */
static FC_INLINE int FC_SFX(scatter_checked)(const fc_pool_shape *s, const FC_T *gyrow, const int64_t *irow,
                                             FC_T *gx, int64_t oh, int64_t o0, int64_t o1,
                                             const int K, const int S, const int P) {
    const int64_t W = s->w_in, ih0 = oh * S - P;
    const int r_lo = ih0 < 0 ? (int)-ih0 : 0;
    const int r_hi = (int)FC_MIN((int64_t)K, s->h_in - ih0);
    int64_t o;
    for (o = o0; o < o1; o++) {
        const int64_t iw0 = o * S - P, idx = irow[o];
        const int64_t c_lo = iw0 < 0 ? -iw0 : 0, c_hi = FC_MIN((int64_t)K, W - iw0);
        const int64_t code = idx - (ih0 * W + iw0);
        int ok = 0, r;
        if (r_lo >= r_hi || c_lo >= c_hi) {       /* window with no tap: rare */
            int res = fc_pool_index_in_window(s, oh, o, idx);
            if (res == 0) return 1;
            continue;
        }
        for (r = r_lo; r < r_hi; r++) {
            const int64_t t = code - (int64_t)r * W;
            ok |= (t >= c_lo) & (t < c_hi);
        }
        if (!ok) return 1;
        gx[idx] += gyrow[o];
    }
    return 0;
}

/* The argmax of outputs [o0, o1) of row oh into ibuf[o - o0] (-1 for a
 * window with no tap), computed with the forward kernels. */
static FC_INLINE void FC_SFX(argmax_block)(const fc_pool_shape *s, const FC_T *x, int64_t oh, int64_t o0,
                                           int64_t o1, int64_t lo, int64_t hi, int64_t *ibuf,
                                           const int K, const int S, const int P) {
    FC_T ybuf[FC_POOL_BLK];
    const int64_t ih0 = oh * S - P;
    int64_t o = o0, a = FC_MAX(o0, lo), b = FC_MIN(o1, hi);
    if (ih0 >= s->h_in || ih0 + K <= 0) b = a;    /* no valid row: all generic */
    if (a < b) {
        for (; o < a; o++) (void)FC_SFX(fc_pool_max_one)(s, x, oh, o, &ibuf[o - o0]);
        o = FC_SFX(max_row)(s, x, ybuf, ibuf, o0, oh, a, b, K, S, P, 1);
    }
    for (; o < o1; o++) (void)FC_SFX(fc_pool_max_one)(s, x, oh, o, &ibuf[o - o0]);
    /* mark windows with no tap (only possible outside the lane-valid run,
     * or when the row has no valid tap row) */
    for (o = o0; o < o1; o++) {
        int64_t hlo, hhi, wlo, whi;
        if (o >= a && o < b) continue;
        fc_pool_taps(oh * S - P, K, 1, s->h_in, &hlo, &hhi);
        fc_pool_taps(o * S - P, K, 1, s->w_in, &wlo, &whi);
        if (hlo >= hhi || wlo >= whi) ibuf[o - o0] = -1;
    }
}

/* 2x2/2 gather of VL outputs with gradients g and window-relative codes
 * `code`: r0[0..2VL) / r1[0..2VL) (the window rows) get g where the code
 * names the tap, +0 elsewhere (0 + g: the zero-filled scatter's sum);
 * lanes naming no tap are OR-ed into *badv. */
static FC_INLINE void FC_SFX(k2_gather)(VT g, __m256i code, int64_t W, FC_T *r0, FC_T *r1, VT *badv) {
    const VT zero = VZERO();
    const VT m00 = VCEQ(code, 0), m01 = VCEQ(code, 1), m10 = VCEQ(code, W), m11 = VCEQ(code, W + 1);
    VT lo, hi;
    *badv = VOR(*badv, VANDNOT(VOR(VOR(m00, m01), VOR(m10, m11)), VTRUE()));
    VINTERLEAVE(VADD(zero, VAND(g, m00)), VADD(zero, VAND(g, m01)), lo, hi);
    VSTORE(r0, lo);
    VSTORE(r0 + VL, hi);
    VINTERLEAVE(VADD(zero, VAND(g, m10)), VADD(zero, VAND(g, m11)), lo, hi);
    VSTORE(r1, lo);
    VSTORE(r1 + VL, hi);
}

/* dst[0..n) = src[0..n) for short rows (no library call per row). */
static FC_INLINE void FC_SFX(copy_short)(FC_T *dst, const FC_T *src, int64_t n) {
    int64_t i;
    if (n < VL) {
        for (i = 0; i < n; i++) dst[i] = src[i];
        return;
    }
    for (i = 0;; i += VL) {
        if (i + VL > n) {
            if (i >= n) break;
            i = n - VL;
        }
        VSTORE(dst + i, VLOAD(src + i));
    }
}

/* 2x2/2 with indices on exactly tiled planes whose rows are narrower than
 * a vector (wo < VL) but whose planes hold at least one (hw_out >= VL):
 * each plane is one flat run of outputs.  A table gives every output's
 * window origin (the codes' base); the windows' top and bottom rows are
 * gathered into two flat buffers (output row oh's W = 2*wo elements at
 * oh*W) and copied out row by row.  No per-row vector prologue, full
 * vectors instead of a 4-lane path with an overlapping block per row. */
#define FC_K2_TAB 1024        /* outputs per plane served (table on the stack) */
static int FC_SFX(k2_narrow_ok)(const fc_pool_shape *s) {
    const int64_t hw_out = s->h_out * s->w_out;
    return FC_SFX(k2_exact)(s) && s->w_out < VL && hw_out >= VL && hw_out <= FC_K2_TAB;
}

static int FC_SFX(max_backward_k2_narrow)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind, FC_T *gx,
                                          int64_t nplanes) {
    const int64_t W = s->w_in, wo = s->w_out, hw_out = s->h_out * wo;
    int64_t tab[FC_K2_TAB], oh, o, f, p;
    FC_T t0[2 * FC_K2_TAB], t1[2 * FC_K2_TAB];
    for (oh = 0; oh < s->h_out; oh++)
        for (o = 0; o < wo; o++) tab[oh * wo + o] = 2 * oh * W + 2 * o;
    for (p = 0; p < nplanes; p++) {
        const FC_T *g = gy + p * hw_out;
        const int64_t *ip = ind + p * hw_out;
        FC_T *gxp = gx + p * 4 * hw_out;
        __m256i hib = _mm256_setzero_si256();
        VT badv = VZERO();
        for (f = 0;; f += VL) {
            if (f + VL > hw_out) {
                if (f >= hw_out) break;
                f = hw_out - VL;              /* overlapping last block: stores are idempotent */
            }
            FC_SFX(k2_gather)(VLOAD(g + f), VCODES_TAB(ip + f, tab + f, &hib), W, t0 + 2 * f, t1 + 2 * f, &badv);
        }
        if (!VALLZERO(badv) || !_mm256_testz_si256(hib, hib)) return 1;
        for (oh = 0; oh < s->h_out; oh++) {
            FC_SFX(copy_short)(gxp + 2 * oh * W, t0 + oh * W, W);
            FC_SFX(copy_short)(gxp + (2 * oh + 1) * W, t1 + oh * W, W);
        }
    }
    return 0;
}

/* 2x2 stride 2: windows tile the plane, so grad_x is written once by
 * gather (each element: its window's gradient if it is the argmax, else 0)
 * and the index check comes free with the selects.  Partial windows
 * (ceil_mode) and uncovered edges fall back to memset + checked scatter. */
static FC_INLINE int FC_SFX(max_backward_k2_plane)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind,
                                                   const FC_T *x, FC_T *gx) {
    const int64_t W = s->w_in, H = s->h_in, ho = s->h_out, wo = s->w_out;
    const int64_t hi = FC_MIN(wo, W / 2), oh_full = FC_MIN(ho, H / 2);
    const int exact = hi == wo && 2 * wo == W && oh_full == ho && 2 * ho == H;
    int64_t oh, o0, o;
    if (!exact) memset(gx, 0, (size_t)(H * W) * sizeof(FC_T));
    for (oh = 0; oh < ho; oh++) {
        const FC_T *gyrow = gy + oh * wo;
        FC_T *r0 = gx + 2 * oh * W, *r1 = r0 + W;
        int64_t ibuf[FC_POOL_BLK];
        FC_SFX(prefetch_out_rows)(s, gy, ind, oh);
        if (oh >= oh_full) {                  /* a window row cut by the bottom edge */
            if (ind) {
                if (FC_SFX(scatter_checked)(s, gyrow, ind + oh * wo, gx, oh, 0, wo, 2, 2, 0)) return 1;
            } else {
                for (o0 = 0; o0 < wo; o0 += FC_POOL_BLK) {
                    const int64_t o1 = FC_MIN(o0 + FC_POOL_BLK, wo);
                    FC_SFX(argmax_block)(s, x, oh, o0, o1, 0, hi, ibuf, 2, 2, 0);
                    for (o = o0; o < o1; o++)
                        if (ibuf[o - o0] >= 0) gx[ibuf[o - o0]] += gyrow[o];
                }
            }
            continue;
        }
        for (o0 = 0; o0 < hi; o0 += FC_POOL_BLK) {
            const int64_t o1 = FC_MIN(o0 + FC_POOL_BLK, hi);
            const int64_t *ib;
            int bad = 0;
            if (ind) ib = ind + oh * wo + o0;
            else {
                FC_SFX(argmax_block)(s, x, oh, o0, o1, 0, hi, ibuf, 2, 2, 0);
                ib = ibuf;
            }
            if (o1 - o0 >= VL) {
                /* VL outputs per step: window-relative codes as VL lanes
                 * (int32 for float32, flagged if they do not fit), four
                 * tap masks, two interleaved row stores */
                __m256i hib = _mm256_setzero_si256();
                VT badv = VZERO();
                for (o = o0;; o += VL) {
                    if (o + VL > o1) {
                        if (o >= o1) break;
                        o = o1 - VL;              /* overlapping last block: stores are idempotent */
                    }
                    FC_SFX(k2_gather)(VLOAD(gyrow + o), FC_SFX(max3_codes)(ib + (o - o0), 2 * oh * W + 2 * o, &hib),
                                      W, r0 + 2 * o, r1 + 2 * o, &badv);
                }
                bad = !VALLZERO(badv) || !_mm256_testz_si256(hib, hib);
                o = o1;
            } else {
                const __m256i wv = _mm256_set1_epi64x(W), w1v = _mm256_set1_epi64x(W + 1);
                const __m256i one = _mm256_set1_epi64x(1), zero = _mm256_setzero_si256();
                __m256i base = _mm256_add_epi64(_mm256_set1_epi64x(2 * oh * W + 2 * o0),
                                                _mm256_setr_epi64x(0, 2, 4, 6));
                __m256i badv = zero;
                for (o = o0;; o += 4) {
                    __m256i code, m00, m01, m10, m11;
                    if (o + 4 > o1) {
                        /* last block overlaps the previous one: the stores are idempotent */
                        if (o >= o1 || o1 - o0 < 4) break;
                        base = _mm256_add_epi64(base, _mm256_set1_epi64x(2 * (o1 - 4 - o)));
                        o = o1 - 4;
                    }
                    code = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(ib + (o - o0))), base);
                    m00 = _mm256_cmpeq_epi64(code, zero);
                    m01 = _mm256_cmpeq_epi64(code, one);
                    m10 = _mm256_cmpeq_epi64(code, wv);
                    m11 = _mm256_cmpeq_epi64(code, w1v);
                    badv = _mm256_or_si256(badv, _mm256_cmpeq_epi64(
                        _mm256_or_si256(_mm256_or_si256(m00, m01), _mm256_or_si256(m10, m11)), zero));
                    FC_SFX(k2_store4)(gyrow + o, m00, m01, m10, m11, r0 + 2 * o, r1 + 2 * o);
                    base = _mm256_add_epi64(base, _mm256_set1_epi64x(8));
                }
                bad = !_mm256_testz_si256(badv, badv);
            }
            for (; o < o1; o++) {
                const int64_t code = ib[o - o0] - (2 * oh * W + 2 * o);
                const FC_T g = gyrow[o];
                bad |= !((code == 0) | (code == 1) | (code == W) | (code == W + 1));
                r0[2 * o] = (FC_T)0 + (code == 0 ? g : (FC_T)0);     /* +0, as the vector code */
                r0[2 * o + 1] = (FC_T)0 + (code == 1 ? g : (FC_T)0);
                r1[2 * o] = (FC_T)0 + (code == W ? g : (FC_T)0);
                r1[2 * o + 1] = (FC_T)0 + (code == W + 1 ? g : (FC_T)0);
            }
            if (bad) return 1;
        }
        if (hi < wo) {                        /* windows cut by the right edge */
            if (ind) {
                if (FC_SFX(scatter_checked)(s, gyrow, ind + oh * wo, gx, oh, hi, wo, 2, 2, 0)) return 1;
            } else {
                FC_SFX(argmax_block)(s, x, oh, hi, wo, 0, hi, ibuf, 2, 2, 0);
                for (o = hi; o < wo; o++)
                    if (ibuf[o - hi] >= 0) gx[ibuf[o - hi]] += gyrow[o];
            }
        }
    }
    return 0;
}

static FC_INLINE int FC_SFX(max_backward_plane)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind,
                                                const FC_T *x, FC_T *gx, const int K, const int S, const int P) {
    const int64_t wo = s->w_out;
    int64_t oh, lo, hi;
    FC_SFX(lane_valid)(s, K, S, P, &lo, &hi);
    memset(gx, 0, (size_t)(s->h_in * s->w_in) * sizeof(FC_T));
    for (oh = 0; oh < s->h_out; oh++) {
        const FC_T *gyrow = gy + oh * wo;
        if (ind) {
            const int64_t *irow = ind + oh * wo, ih0 = oh * S - P;
            const int r_lo = ih0 < 0 ? (int)-ih0 : 0;
            const int r_hi = (int)FC_MIN((int64_t)K, s->h_in - ih0);
            int64_t o;
            if (r_lo >= r_hi || lo >= hi) {
                if (FC_SFX(scatter_checked)(s, gyrow, irow, gx, oh, 0, wo, K, S, P)) return 1;
                continue;
            }
            /* borders checked one by one, the lane-valid run checked as a
             * vector first; scattered in output order either way */
            if (FC_SFX(scatter_checked)(s, gyrow, irow, gx, oh, 0, lo, K, S, P)) return 1;
            if (!idx_row_ok(irow, lo, hi, ih0, s->w_in, K, S, P, r_lo, r_hi)) return 1;
            for (o = lo; o < hi; o++) gx[irow[o]] += gyrow[o];
            if (FC_SFX(scatter_checked)(s, gyrow, irow, gx, oh, hi, wo, K, S, P)) return 1;
        } else {
            int64_t ibuf[FC_POOL_BLK], o0, o;
            for (o0 = 0; o0 < wo; o0 += FC_POOL_BLK) {
                const int64_t o1 = FC_MIN(o0 + FC_POOL_BLK, wo);
                FC_SFX(argmax_block)(s, x, oh, o0, o1, lo, hi, ibuf, K, S, P);
                for (o = o0; o < o1; o++)
                    if (ibuf[o - o0] >= 0) gx[ibuf[o - o0]] += gyrow[o];
            }
        }
    }
    return 0;
}

#include "pool_avx2_max3bwd.h"

/* grad_input is stored with normal stores, never streamed: the API's
 * output is fresh, and NumPy takes arrays above 32 MB from new mmap pages
 * that the kernel zeroes into the cache at first touch, so a streamed
 * store writes each line to DRAM a second time (2x2/2 on 51-102 MB: 1.4x
 * slower streamed); below that, streaming (row buffers) measured equal or
 * slower too (2x2/2 on 56x56 planes, 3x3/2 on 112x112). */
fc_status FC_SFXA(fc_max_pool2d_backward)(fc_context *ctx, const fc_pool_shape *s, const FC_T *gy,
                                          const int64_t *indices, const FC_T *x, FC_T *gx) {
    const int kind = FC_SFX(fast_kind)(s);
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    int64_t p;
    const int m3 = kind == 2 && FC_SFX(max3_ok)(s);
    const int narrow = kind == 1 && indices && FC_SFX(k2_narrow_ok)(s);
    int bad = 0;
    if (!kind || hw_out == 0) return FC_NOT_HANDLED;
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    if (narrow) {
        int64_t p0, p1;
        FC_SFX(my_planes)(planes, &p0, &p1);
        if (p1 > p0 && FC_SFX(max_backward_k2_narrow)(s, gy + p0 * hw_out, indices + p0 * hw_out, gx + p0 * hw_in, p1 - p0)) {
#pragma omp atomic write
            bad = 1;
        }
    } else {
        /* No FTZ/DAZ: the argmax recomputed from x must compare subnormals
         * exactly as the forward pass (and PyTorch) did. */
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++) {
            const FC_T *gp = gy + p * hw_out, *xp = indices ? NULL : x + p * hw_in;
            const int64_t *ip = indices ? indices + p * hw_out : NULL;
            FC_T *gxp = gx + p * hw_in;
            int r;
            if (kind == 1) r = FC_SFX(max_backward_k2_plane)(s, gp, ip, xp, gxp);
            else if (kind == 2 && m3) r = FC_SFX(max3_backward_plane)(s, gp, ip, xp, gxp);
            else if (kind == 2) r = FC_SFX(max_backward_plane)(s, gp, ip, xp, gxp, 3, 2, 1);
            else r = FC_SFX(max_backward_plane)(s, gp, ip, xp, gxp, 3, 1, 1);
            if (r) {
#pragma omp atomic write
                bad = 1;
            }
        }
    }
    return bad ? FC_ERR_INDEX : FC_OK;
}

/* ---- avg backward -------------------------------------------------------
 * Gather form: for a run of input columns [A, B) of each touched row, the
 * vector code adds, per position, the contributions of every output whose
 * window covers it (all lane-valid, so sharing one divisor), in output
 * order; every other (output, position) pair is scattered by scalar code.
 * Each position's sum is therefore formed in the same order as the
 * generic kernel's scatter. */
static FC_INLINE void FC_SFX(avg_backward_plane)(const fc_pool_shape *s, const FC_T *gy, FC_T *gx,
                                                 const int K, const int S, const int P) {
    const int64_t W = s->w_in, wo = s->w_out;
    int64_t oh, lo, hi;
    FC_SFX(lane_valid)(s, K, S, P, &lo, &hi);
    memset(gx, 0, (size_t)(s->h_in * W) * sizeof(FC_T));
    for (oh = 0; oh < s->h_out; oh++) {
        const FC_T *gyrow = gy + oh * wo;
        const int64_t ih0 = oh * S - P;
        const int r_lo = ih0 < 0 ? (int)-ih0 : 0;
        const int r_hi = (int)FC_MIN((int64_t)K, s->h_in - ih0);
        int64_t A = 0, B = 0, o, h0, h1, w0, w1;
        int r;
        if (r_lo >= r_hi) continue;
        if (hi > lo) {
            const VT vdiv = VSET1((FC_T)1 / (FC_T)fc_pool_avg_window(s, oh, lo, &h0, &h1, &w0, &w1));
            if (K == 2 && S == 2 && P == 0) {
                /* positions 2o, 2o+1 come from output o alone */
                int64_t done = lo;
                for (o = lo; hi - lo >= VL; o += VL) {
                    VT g, e0, e1;
                    if (o + VL > hi) {
                        if (o >= hi) break;
                        o = hi - VL;              /* last block overlaps: mask done lanes */
                    }
                    g = VMUL(VLOAD(gyrow + o), vdiv);
                    g = VAND(g, VLANES_GE(o, done));
                    VINTERLEAVE(g, g, e0, e1);
                    for (r = r_lo; r < r_hi; r++) {
                        FC_T *row = gx + (ih0 + r) * W + 2 * o;
                        VSTORE(row, VADD(VLOAD(row), e0));
                        VSTORE(row + VL, VADD(VLOAD(row + VL), e1));
                    }
                    done = o + VL;
                }
                A = 2 * lo; B = 2 * done;
            } else if (K == 3 && S == 2 && P == 1) {
                /* position 2o from output o; 2o+1 from o, then o+1 */
                int64_t done = lo;
                for (o = lo; hi - 1 - lo >= VL; o += VL) {
                    VT g, g1, keep, e0, e1;
                    if (o + VL + 1 > hi) {
                        if (o + 1 >= hi) break;
                        o = hi - 1 - VL;
                    }
                    keep = VLANES_GE(o, done);
                    g = VMUL(VLOAD(gyrow + o), vdiv);
                    g1 = VMUL(VLOAD(gyrow + o + 1), vdiv);
                    VINTERLEAVE(VAND(g, keep), VAND(VADD(g, g1), keep), e0, e1);
                    for (r = r_lo; r < r_hi; r++) {
                        FC_T *row = gx + (ih0 + r) * W + 2 * o;
                        VSTORE(row, VADD(VLOAD(row), e0));
                        VSTORE(row + VL, VADD(VLOAD(row + VL), e1));
                    }
                    done = o + VL;
                }
                A = 2 * lo; B = 2 * done;
            } else {
                /* K == 3, S == 1, P == 1: position q from outputs q-1, q, q+1 */
                int64_t q, done = lo + 1;
                for (q = lo + 1; hi - 2 - lo >= VL; q += VL) {
                    VT t;
                    if (q + VL + 1 > hi) {
                        if (q + 1 >= hi) break;
                        q = hi - 1 - VL;
                    }
                    t = VMUL(VLOAD(gyrow + q - 1), vdiv);
                    t = VADD(t, VMUL(VLOAD(gyrow + q), vdiv));
                    t = VADD(t, VMUL(VLOAD(gyrow + q + 1), vdiv));
                    t = VAND(t, VLANES_GE(q, done));
                    for (r = r_lo; r < r_hi; r++) {
                        FC_T *row = gx + (ih0 + r) * W + q;
                        VSTORE(row, VADD(VLOAD(row), t));
                    }
                    done = q + VL;
                }
                A = lo + 1; B = done;
            }
        }
        /* the rest, scattered in output order, skipping positions in [A, B):
         * only outputs [0, oL) and [oR, wo) have taps outside it */
        {
            const int64_t oL = FC_MIN(wo, (A + P + S - 1) / S);
            const int64_t oR = FC_MAX(oL, B - K + P >= 0 ? (B - K + P) / S + 1 : 0);
            for (o = 0; o < wo; o++) {
            int64_t ih, iw, div;
            FC_T g;
            if (o == oL && oR > o) o = oR;
            if (o >= wo) break;
            div = fc_pool_avg_window(s, oh, o, &h0, &h1, &w0, &w1);
            if (h0 >= h1 || w0 >= w1) continue;
            g = gyrow[o] * ((FC_T)1 / (FC_T)div);
            for (ih = h0; ih < h1; ih++)
                for (iw = w0; iw < w1; iw++)
                    if (iw < A || iw >= B) gx[ih * W + iw] += g;
            }
        }
    }
}

/* Avg 2x2/2 on exactly tiled planes: output row R of `nrows` consecutive
 * rows (planes are consecutive) alone covers grad_input rows 2R and 2R+1,
 * so both are stored once, 0 + g * scale (the zero-filled scatter's sum),
 * with no zero fill and no read-modify-write. */
static void FC_SFX(avg_backward_k2_exact)(const FC_T *gy, FC_T *gx, int64_t nrows, int64_t wo, FC_T scale) {
    const int64_t W = 2 * wo;
    const VT vs = VSET1(scale), zero = VZERO();
    int64_t R, o;
    for (R = 0; R < nrows; R++) {
        const FC_T *gyrow = gy + R * wo;
        FC_T *r0 = gx + 2 * R * W, *r1 = r0 + W;
        if (wo >= VL) {
            for (o = 0;; o += VL) {
                VT e, lo, hi;
                if (o + VL > wo) {
                    if (o >= wo) break;
                    o = wo - VL;              /* overlapping last block: stores are idempotent */
                }
                e = VADD(zero, VMUL(VLOAD(gyrow + o), vs));
                VINTERLEAVE(e, e, lo, hi);
                VSTORE(r0 + 2 * o, lo);
                VSTORE(r0 + 2 * o + VL, hi);
                VSTORE(r1 + 2 * o, lo);
                VSTORE(r1 + 2 * o + VL, hi);
            }
        } else {
            for (o = 0; o < wo; o++) {
                const FC_T v = (FC_T)0 + gyrow[o] * scale;
                r0[2 * o] = v; r0[2 * o + 1] = v;
                r1[2 * o] = v; r1[2 * o + 1] = v;
            }
        }
    }
}

fc_status FC_SFXA(fc_avg_pool2d_backward)(fc_context *ctx, const fc_pool_shape *s, const FC_T *gy, FC_T *gx) {
    const int kind = FC_SFX(fast_kind)(s);
    const int64_t planes = s->n * s->c, hw_in = s->h_in * s->w_in, hw_out = s->h_out * s->w_out;
    const int sep = kind == 3 && FC_SFX(avg3_ok)(s);
    FC_T recip[3][3];
    int64_t p;
    const int k2x = kind == 1 && FC_SFX(k2_exact)(s);
    const FC_T k2scale = (FC_T)1 / (FC_T)(s->divisor_override ? s->divisor_override : 4);
    if (!kind || hw_out == 0) return FC_NOT_HANDLED;
    if (sep) FC_SFX(avg3_recips)(s, recip);
#pragma omp parallel num_threads(fc_pool_threads(ctx, planes, FC_MAX(hw_in, hw_out)))
    if (k2x) {
        int64_t p0, p1;
        fc_fpmode fm = fc_fpmode_enter();
        FC_SFX(my_planes)(planes, &p0, &p1);
        if (p1 > p0) FC_SFX(avg_backward_k2_exact)(gy + p0 * hw_out, gx + p0 * hw_in, (p1 - p0) * s->h_out, s->w_out, k2scale);
        fc_fpmode_leave(fm);
    } else {
        fc_fpmode fm = fc_fpmode_enter();
#pragma omp for schedule(static)
        for (p = 0; p < planes; p++) {
            const FC_T *gp = gy + p * hw_out;
            FC_T *gxp = gx + p * hw_in;
            if (sep) FC_SFX(avg3_backward_plane)(s, (const FC_T(*)[3])recip, gp, gxp);
            else if (kind == 1) FC_SFX(avg_backward_plane)(s, gp, gxp, 2, 2, 0);
            else if (kind == 2) FC_SFX(avg_backward_plane)(s, gp, gxp, 3, 2, 1);
            else FC_SFX(avg_backward_plane)(s, gp, gxp, 3, 1, 1);
        }
        fc_fpmode_leave(fm);
    }
    return FC_OK;
}
