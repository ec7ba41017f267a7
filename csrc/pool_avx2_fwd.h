/* AVX2 forward fast paths without indices (included by pool_avx2_impl.h
 * once per dtype, with the V* macros of pool_avx2.c defined):
 *
 * - 2x2/2 on exactly tiled planes (H, W even, no padding): the planes of a
 *   thread are one tall image, so each row is reduced horizontally over a
 *   flat, uniform stream (no per-row or per-plane prologue: 14x14 planes
 *   cost what one long row costs), then row pairs are combined.
 * - max 3x3/2 p1: each input row is reduced horizontally once (3 taps per
 *   output column) and the three row results are combined; the row shared
 *   by two output rows (2p+1) is kept in a row buffer instead of being
 *   re-reduced.  Output column 0 (tap column -1 is padding) runs in the
 *   vector block with a masked load, so no scalar first column.
 *
 * Max: every combine is VMAX(later, earlier), which keeps the earlier
 * operand on ties, and the grouping keeps window (row-major) order, so the
 * value equals the first maximum in window order even between +0 and -0.
 * NaN: VMAX drops some NaNs, so the loads are checked for unordered lanes
 * and any block that holds a NaN is recomputed by the exact scalar/vector
 * code (window order, the last NaN wins, as PyTorch): results are bit for
 * bit those of the generic kernel.
 * Avg 2x2/2 sums (x00 + x01) + (x10 + x11) (the generic kernel sums in
 * window order: they can differ in the last bit, as division by the
 * divisor vs multiplication by its reciprocal already does). */

#define FC_FLAT_H 2048        /* row-reduced elements per group (8/16 KB) */
/* Software prefetch in the flat stream, an L1 prefetch FC_FLAT_PF bytes
 * ahead: the hardware prefetchers alone keep too few lines in flight for
 * one core to read DRAM at full speed (vgg1 2x2/2, 100 MB, streamed
 * stores: 17 -> 21 GB/s; vgg5, 4 MB, after a cache flush: 6.6 -> 7.5-8.3);
 * from the cache it measured neutral.  (An L2 prefetch 8 KB ahead made
 * vgg3 slower.) */
#define FC_FLAT_PF 2048
/* 1 when 2x2/2 tiles the planes exactly (every window full, none cut). */
static int FC_SFX(k2_exact)(const fc_pool_shape *s) {
    return s->w_in % 2 == 0 && s->h_in % 2 == 0 && s->w_out * 2 == s->w_in && s->h_out * 2 == s->h_in &&
           s->w_in >= 2 && s->w_in <= FC_FLAT_H;
}

/* h[i] = op(x[2i], x[2i+1]) for i in [0, n), n >= VL; lanes in natural
 * order.  Returns the OR of unordered lanes seen (max only). */
static FC_INLINE VT FC_SFX(hblock)(const FC_T *x, FC_T *h, int64_t i, VT nan, const int is_max) {
    const VT a = VLOAD(x + 2 * i), b = VLOAD(x + 2 * i + VL);
    const VT e = VEVEN(a, b), o = VODD(a, b);
    if (is_max) {
        VSTORE(h + i, VFIX(VMAX(o, e)));    /* column 2k+1 after 2k: ties keep 2k */
        return VOR(nan, VUNORD2(a, b));
    }
    VSTORE(h + i, VFIX(VADD(e, o)));
    return nan;
}

static FC_INLINE VT FC_SFX(flat_hpass)(const FC_T *x, FC_T *h, int64_t n, const int is_max) {
    VT nan = VZERO();
    int64_t i;
    /* one sequential stream (two interleaved halves measured slower) */
    for (i = 0;; i += VL) {
        if (i + VL > n) {
            if (i >= n) break;
            i = n - VL;                 /* overlapping last block: idempotent */
        }
        /* a hint past the array's end never faults */
        _mm_prefetch((const char *)(x + 2 * i) + FC_FLAT_PF, _MM_HINT_T0);
        nan = FC_SFX(hblock)(x, h, i, nan, is_max);
    }
    return nan;
}

/* Scalar 2x2/2 of the outputs of row pairs [0, npairs) of x into y: max
 * exactly in window order (the NaN fallback of k2_flat), avg with the
 * vector code's sum order (groups too small for a vector). */
static void FC_SFX(k2_scalar_pairs)(const FC_T *x, FC_T *y, int64_t npairs, int64_t W, const int is_max,
                                    FC_T scale) {
    const int64_t wo = W / 2;
    int64_t j, k;
    for (j = 0; j < npairs; j++)
        for (k = 0; k < wo; k++) {
            const FC_T *t = x + 2 * j * W + 2 * k;
            const FC_T v[4] = {t[0], t[1], t[W], t[W + 1]};
            FC_T m = (FC_T)-INFINITY;
            int i;
            if (is_max) {
                for (i = 0; i < 4; i++) m = (v[i] > m || v[i] != v[i]) ? v[i] : m;
            } else {
                m = ((v[0] + v[1]) + (v[2] + v[3])) * scale;
            }
            y[j * wo + k] = m;
        }
}

/* 2x2/2 (max or avg, no indices) of `npairs` consecutive row pairs of
 * width W starting at x (rows of consecutive planes are consecutive). */
static FC_INLINE void FC_SFX(k2_flat)(const FC_T *x, FC_T *y, int64_t npairs, int64_t W, const int is_max,
                                      FC_T scale, const int nt) {
    /* slack: rows narrower than a vector (wo < VL) are combined one full
     * vector per row pair, whose extra lanes read the next row (or the
     * zeroed slack) and write the next pair's outputs (rewritten next) or
     * the slack of ob */
    FC_T hb[FC_FLAT_H + VL], ob[FC_FLAT_H / 2 + VL];
    const int64_t wo = W / 2, G = FC_MAX((int64_t)1, FC_FLAT_H / W);
    const int narrow = wo < VL, buffered = nt || narrow;
    const VT vs = VSET1(scale);
    int64_t j0, j, k;
    if (narrow) memset(hb, 0, sizeof(hb));   /* lanes past the data: defined, never used */
    for (j0 = 0; j0 < npairs; j0 += G) {
        const int64_t g = FC_MIN(G, npairs - j0);
        const FC_T *xs = x + j0 * 2 * W;
        FC_T *yd = y + j0 * wo;
        FC_T *out = buffered ? ob : yd;
        VT nan;
        if (g * W < VL) {               /* fewer row-reduced elements than a vector */
            FC_SFX(k2_scalar_pairs)(xs, yd, g, W, is_max, scale);
            continue;
        }
        nan = FC_SFX(flat_hpass)(xs, hb, g * W, is_max);
        /* hb holds rows 2j, 2j+1 of the group as g*2 rows of wo */
        for (j = 0; j < g; j++) {
            const FC_T *h0 = hb + 2 * j * wo, *h1 = h0 + wo;
            FC_T *o = out + j * wo;
            for (k = 0;; k += VL) {
                VT r;
                if (k + VL > wo && !narrow) {
                    if (k >= wo) break;
                    k = wo - VL;
                }
                r = is_max ? VMAX(VLOAD(h1 + k), VLOAD(h0 + k)) : VMUL(VADD(VLOAD(h0 + k), VLOAD(h1 + k)), vs);
                VSTORE(o + k, r);
                if (narrow) break;
            }
        }
        if (is_max && !VALLZERO(nan)) FC_SFX(k2_scalar_pairs)(xs, out, g, W, 1, scale);
        if (nt) FC_SFX(stream_row)(yd, ob, g * wo);
        else if (narrow) memcpy(yd, ob, (size_t)(g * wo) * sizeof(FC_T));
    }
}

/* Horizontal max of the 3 taps of outputs q0 .. q0+VL-1 of input row
 * `row` (columns 2q0-1 .. 2q0+2VL-1), in VEVEN/VODD lane order.  q0 == 0:
 * column -1 is padding, read masked and replaced by -inf. */
static FC_INLINE VT FC_SFX(h3)(const FC_T *row, int64_t q0, VT *nan) {
    const FC_T *p = row + 2 * q0;
    VT a0, a1, b0, b1, c0, c1, c2;
    if (q0 == 0) a0 = VOR(VMLOAD_FROM1(p - 1), VNEGINF0());
    else a0 = VLOAD(p - 1);
    a1 = VLOAD(p - 1 + VL);
    b0 = VLOAD(p);
    b1 = VLOAD(p + VL);
    *nan = VOR(*nan, VOR(VUNORD2(a0, a1), VUNORD2(b0, b1)));
    c0 = VEVEN(a0, a1);      /* column 2q-1 */
    c1 = VEVEN(b0, b1);      /* column 2q */
    c2 = VODD(b0, b1);       /* column 2q+1 */
    return VMAX(c2, VMAX(c1, c0));
}

/* 1 when max3s2_plane serves this (kind 2) call without indices. */
static int FC_SFX(max3s2_ok)(const fc_pool_shape *s) {
    int64_t lo, hi;
    FC_SFX(lane_valid)(s, 3, 2, 1, &lo, &hi);
    return hi >= VL && hi <= FC_NT_ROW && s->w_out <= FC_NT_ROW;
}

/* Exact output row oh (window order, NaN as PyTorch): the NaN fallback. */
static FC_INLINE void FC_SFX(max_row_exact)(const fc_pool_shape *s, const FC_T *x, FC_T *yr, int64_t oh,
                                            int64_t lo, int64_t hi, const int K, const int S, const int P) {
    int64_t ow, k;
    for (ow = 0; ow < FC_MIN(lo, s->w_out); ow++) yr[ow] = FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
    ow = FC_SFX(max_row)(s, x, yr, NULL, 0, oh, lo, hi, K, S, P, 0);
    for (; ow < s->w_out; ow++) yr[ow] = FC_SFX(fc_pool_max_one)(s, x, oh, ow, &k);
}

/* One plane of max 3x3/2 p1 without indices (max3s2_ok). */
static FC_INLINE void FC_SFX(max3s2_plane)(const fc_pool_shape *s, const FC_T *x, FC_T *y, const int nt) {
    FC_T hb[FC_NT_ROW + VL], ybuf[FC_NT_ROW];
    const int64_t W = s->w_in, H = s->h_in, wo = s->w_out, ho = s->h_out;
    int64_t lo, hv, p, b, nb, ow, k;
    VT prev_nan = VZERO();
    FC_SFX(lane_valid)(s, 3, 2, 1, &lo, &hv);
    nb = (hv + VL - 1) / VL;
    for (p = 0; p < ho; p++) {
        const int64_t r1 = 2 * p, r2 = 2 * p + 1;
        const int have0 = p > 0 && r1 - 1 < H, have2 = r2 < H;
        FC_T *yr = nt ? ybuf : y + p * wo;
        VT nan = prev_nan, nan2 = VZERO();
        if (r1 >= H) {                  /* ceil_mode: only row 2p-1 is inside */
            FC_SFX(max_row_exact)(s, x, yr, p, lo, hv, 3, 2, 1);
        } else {
            const FC_T *x1 = x + r1 * W, *x2 = x + r2 * W;
            for (b = 0; b < nb; b++) {
                const int64_t q0 = FC_MIN(b * VL, hv - VL);
                VT m = FC_SFX(h3)(x1, q0, &nan);
                if (have0) m = VMAX(m, VLOAD(hb + b * VL));
                if (have2) {
                    const VT h2 = FC_SFX(h3)(x2, q0, &nan2);
                    m = VMAX(h2, m);
                    VSTORE(hb + b * VL, h2);
                }
                FC_SFX(prefetch_rows)(x, H, W, r1 + 2, 2 * q0 - 1, 2);
                VSTORE(yr + q0, VFIX(m));
            }
            for (ow = hv; ow < wo; ow++) yr[ow] = FC_SFX(fc_pool_max_one)(s, x, p, ow, &k);
            if (!VALLZERO(VOR(nan, nan2))) FC_SFX(max_row_exact)(s, x, yr, p, lo, hv, 3, 2, 1);
        }
        prev_nan = nan2;
        if (nt) FC_SFX(stream_row)(y + p * wo, ybuf, wo);
    }
}

/* Horizontal sum (c0 + c1) + c2 of outputs q0 .. q0+VL-1 of input row
 * `row` (as h3; column -1 of q0 == 0 is padding, read masked as +0, and
 * 0 + x == x, as the generic sum that starts at 0). */
static FC_INLINE VT FC_SFX(h3sum)(const FC_T *row, int64_t q0) {
    const FC_T *p = row + 2 * q0;
    VT a0 = q0 == 0 ? VMLOAD_FROM1(p - 1) : VLOAD(p - 1), a1 = VLOAD(p - 1 + VL);
    VT b0 = VLOAD(p), b1 = VLOAD(p + VL);
    return VADD(VADD(VEVEN(a0, a1), VEVEN(b0, b1)), VODD(b0, b1));
}

/* One plane of avg 3x3/2 p1 (max3s2_ok geometry, any divisor option):
 * per input row one horizontal pass, rows summed in window order
 * ((row 2p-1 + row 2p) + row 2p+1), times the output's reciprocal divisor
 * (output column 0 has its own when count_include_pad is off). */
static FC_INLINE void FC_SFX(avg3s2_plane)(const fc_pool_shape *s, const FC_T *x, FC_T *y, const int nt) {
    FC_T hb[FC_NT_ROW + VL], ybuf[FC_NT_ROW];
    const int64_t W = s->w_in, H = s->h_in, wo = s->w_out, ho = s->h_out;
    int64_t lo, hv, p, b, nb, h0, h1, w0, w1;
    FC_SFX(lane_valid)(s, 3, 2, 1, &lo, &hv);
    nb = (hv + VL - 1) / VL;
    for (p = 0; p < ho; p++) {
        const int64_t r1 = 2 * p, r2 = 2 * p + 1;
        const int have0 = p > 0 && r1 - 1 < H, have2 = r2 < H;
        FC_T *yr = nt ? ybuf : y + p * wo;
        if (r1 >= H) {                  /* ceil_mode: only row 2p-1 is inside */
            FC_SFX(avg_border)(s, x, yr, p, 0, wo, 3, 2, 1);
        } else {
            const FC_T *x1 = x + r1 * W, *x2 = x + r2 * W;
            const FC_T ri = (FC_T)1 / (FC_T)fc_pool_avg_window(s, p, 1, &h0, &h1, &w0, &w1);
            const FC_T r0 = (FC_T)1 / (FC_T)fc_pool_avg_window(s, p, 0, &h0, &h1, &w0, &w1);
            FC_T first[VL];
            VT rv = VSET1(ri), rv0;
            for (b = 0; b < VL; b++) first[b] = b ? ri : r0;
            rv0 = VLOAD(first);
            for (b = 0; b < nb; b++) {
                const int64_t q0 = FC_MIN(b * VL, hv - VL);
                VT m = FC_SFX(h3sum)(x1, q0);
                if (have0) m = VADD(VLOAD(hb + b * VL), m);
                if (have2) {
                    const VT h2 = FC_SFX(h3sum)(x2, q0);
                    m = VADD(m, h2);
                    VSTORE(hb + b * VL, h2);
                }
                FC_SFX(prefetch_rows)(x, H, W, r1 + 2, 2 * q0 - 1, 2);
                VSTORE(yr + q0, VMUL(VFIX(m), q0 == 0 ? rv0 : rv));
            }
            FC_SFX(avg_border)(s, x, yr, p, hv, wo, 3, 2, 1);
        }
        if (nt) FC_SFX(stream_row)(y + p * wo, ybuf, wo);
    }
}
