/* AVX2 max pooling backward, 3x3 stride 2 padding 1, by gather (included
 * by pool_avx2_impl.h once per dtype, with the V* macros and the per-dtype
 * FC_SFX(max3_codes) / VCEQ helpers of pool_avx2.c defined).
 *
 * Input column 2q is a tap of output column q only (tap column c = 1);
 * column 2q+1 of q (c = 2) and then of q+1 (c = 0).  The same holds for
 * rows.  So output row p writes input rows 2p (r = 1) and 2p+1 (r = 2)
 * fresh, and adds its r = 0 contributions to row 2p-1 (written fresh by
 * row p-1 just before, still in L1).  Every grad_input element is written
 * by the row that first touches it -- no zero-fill pass, no scatter -- and
 * each element's sum is formed in output (row-major) order, as PyTorch's
 * scatter forms it: (0 + g(q, c=2)) + g(q+1, c=0) and so on.
 *
 * An index selects its tap by equality of its window-relative code
 * (idx - origin = r*W + c) with each tap's code; a lane whose code matches
 * none of its valid taps is a bad index (reported as FC_ERR_INDEX).  Border
 * outputs (first/last column, first/last row) run the same formulas in
 * scalar code, so results do not depend on which path wrote an element. */

/* 1 when `code` names a tap (r, c) with r in [r_lo, r_hi), c in [c_lo, c_hi). */
static FC_INLINE int FC_SFX(max3_code_ok)(int64_t code, int64_t W, int r_lo, int r_hi, int64_t c_lo,
                                          int64_t c_hi) {
    int ok = 0, r;
    for (r = r_lo; r < r_hi; r++) {
        const int64_t t = code - (int64_t)r * W;
        ok |= (t >= c_lo) & (t < c_hi);
    }
    return ok;
}

/* Scalar pairs q in [q0, q1) of output row p (see the file comment). */
static FC_INLINE int FC_SFX(max3_pairs)(const fc_pool_shape *s, const FC_T *gyrow, const int64_t *irow,
                                        FC_T *const rows[3], int64_t ih0, int r_lo, int r_hi, int64_t q0, int64_t q1) {
    const int64_t W = s->w_in, wo = s->w_out;
    int64_t q;
    for (q = q0; q < q1; q++) {
        const int64_t iw0 = 2 * q - 1;
        const int64_t code = irow[q] - (ih0 * W + iw0);
        const int have_next = q + 1 < wo;
        const int64_t code_n = have_next ? irow[q + 1] - (ih0 * W + iw0 + 2) : -1;
        const FC_T g = gyrow[q], gn = have_next ? gyrow[q + 1] : (FC_T)0;
        int r;
        if (!FC_SFX(max3_code_ok)(code, W, r_lo, r_hi, iw0 < 0 ? 1 : 0, FC_MIN((int64_t)3, W - iw0)))
            return 1;
        for (r = r_lo; r < r_hi; r++) {
            FC_T *row = rows[r];
            const int64_t rw = (int64_t)r * W;
            if (2 * q < W)
                row[2 * q] = (r == 0 ? row[2 * q] : (FC_T)0) + (code == rw + 1 ? g : (FC_T)0);
            if (2 * q + 1 < W) {
                FC_T v = (r == 0 ? row[2 * q + 1] : (FC_T)0) + (code == rw + 2 ? g : (FC_T)0);
                row[2 * q + 1] = v + (code_n == rw ? gn : (FC_T)0);
            }
        }
    }
    return 0;
}

/* Output row p, pairs [q0, q1); irow/gyrow indexable on [q0, min(q1 + 1, wo)).
 * rows[r] = input row 2p-1+r (in grad_input or a row buffer). */
static FC_INLINE int FC_SFX(max3_row)(const fc_pool_shape *s, const FC_T *gyrow, const int64_t *irow,
                                      FC_T *const rows[3], int64_t p, int64_t q0, int64_t q1) {
    const int64_t W = s->w_in, wo = s->w_out, ih0 = 2 * p - 1;
    const int r_lo = ih0 < 0 ? 1 : 0;
    const int r_hi = (int)FC_MIN((int64_t)3, s->h_in - ih0);
    /* lanes q need columns 2q, 2q+1 inside (2q+2 <= W) and q+1 < wo; lane
     * q = 0 has no tap column 0 (it is column -1): masked in the check */
    const int64_t vlo = q0, vhi = FC_MIN(FC_MIN(q1, W / 2), wo - 1);
    int64_t q = q0;
    if (r_lo < r_hi && vhi - vlo >= VL) {
        /* which of the window rows exist: r = 0 (row 2p-1, accumulated),
         * r = 1 (row 2p, fresh), r = 2 (row 2p+1, fresh) */
        const int has0 = r_lo == 0, has1 = r_lo <= 1 && r_hi >= 2, has2 = r_hi == 3;
        const VT zero = VZERO();
        __m256i hib = _mm256_setzero_si256();
        VT bad = zero;
        int64_t done;
        FC_T *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
        if (FC_SFX(max3_pairs)(s, gyrow, irow, rows, ih0, r_lo, r_hi, q0, vlo)) return 1;
        done = vlo;
        for (q = vlo;; q += VL) {
            VT g, g1, m, any = zero, e, a, b, lo, hi, c0ok;
            __m256i code, code1;
            if (q + VL > vhi) {
                if (q >= vhi) break;
                q = vhi - VL;                 /* overlapping last block */
            }
            code = FC_SFX(max3_codes)(irow + q, ih0 * W + 2 * q - 1, &hib);
            code1 = FC_SFX(max3_codes)(irow + q + 1, ih0 * W + 2 * q + 1, &hib);
            g = VLOAD(gyrow + q);
            g1 = VLOAD(gyrow + q + 1);
            c0ok = q > 0 ? VTRUE() : VLANES_GE(q, 1);
            if (has0) {
                /* row 2p-1 += this row's r = 0 taps, lanes not added before */
                const VT keep = VLANES_GE(q, done);
                VT ev, od, x0 = VLOAD(r0 + 2 * q), x1 = VLOAD(r0 + 2 * q + VL);
                m = VCEQ(code, 1); any = m; e = VAND(VAND(g, m), keep);
                m = VCEQ(code, 2); any = VOR(any, m); a = VAND(VAND(g, m), keep);
                m = VCEQ(code1, 0); b = VAND(VAND(g1, m), keep);
                any = VOR(any, VAND(VCEQ(code, 0), c0ok));
                ev = VADD(VFIX(VEVEN(x0, x1)), e);             /* even columns, lane order */
                od = VADD(VADD(VFIX(VODD(x0, x1)), a), b);     /* odd columns */
                VINTERLEAVE(ev, od, lo, hi);
                VSTORE(r0 + 2 * q, lo);
                VSTORE(r0 + 2 * q + VL, hi);
            }
            if (has1) {
                m = VCEQ(code, (int64_t)W + 1); any = VOR(any, m); e = VAND(g, m);
                m = VCEQ(code, (int64_t)W + 2); any = VOR(any, m); a = VAND(g, m);
                m = VCEQ(code1, (int64_t)W); b = VAND(g1, m);
                any = VOR(any, VAND(VCEQ(code, (int64_t)W), c0ok));
                VINTERLEAVE(VADD(zero, e), VADD(VADD(zero, a), b), lo, hi);
                VSTORE(r1 + 2 * q, lo);
                VSTORE(r1 + 2 * q + VL, hi);
            }
            if (has2) {
                m = VCEQ(code, 2 * (int64_t)W + 1); any = VOR(any, m); e = VAND(g, m);
                m = VCEQ(code, 2 * (int64_t)W + 2); any = VOR(any, m); a = VAND(g, m);
                m = VCEQ(code1, 2 * (int64_t)W); b = VAND(g1, m);
                any = VOR(any, VAND(VCEQ(code, 2 * (int64_t)W), c0ok));
                VINTERLEAVE(VADD(zero, e), VADD(VADD(zero, a), b), lo, hi);
                VSTORE(r2 + 2 * q, lo);
                VSTORE(r2 + 2 * q + VL, hi);
            }
            bad = VOR(bad, VANDNOT(any, VTRUE()));
            done = q + VL;
        }
        if (!VALLZERO(bad) || !_mm256_testz_si256(hib, hib)) return 1;
        q = vhi;
    }
    return FC_SFX(max3_pairs)(s, gyrow, irow, rows, ih0, r_lo, r_hi, q, q1);
}

/* 1 when the gather serves this (kind 2) plane shape: every window has a
 * valid row and column (always true for PyTorch's output sizes). */
#define FC_MAX3_ROWBUF 2048   /* argmax row buffer (recompute path) on the stack */
static int FC_SFX(max3_ok)(const fc_pool_shape *s) {
    return s->w_out <= FC_MAX3_ROWBUF && 2 * (s->h_out - 1) - 1 <= s->h_in - 1 && 2 * (s->w_out - 1) - 1 <= s->w_in - 1 && s->h_out >= 1 &&
           s->w_out >= 1;
}

/* Rows are written in place with normal stores (no streaming: see
 * FC_SFXA(fc_max_pool2d_backward)). */
static int FC_SFX(max3_backward_plane)(const fc_pool_shape *s, const FC_T *gy, const int64_t *ind, const FC_T *x,
                                       FC_T *gx) {
    const int64_t wo = s->w_out, W = s->w_in;
    int64_t p, lo, hi;
    FC_SFX(lane_valid)(s, 3, 2, 1, &lo, &hi);
    for (p = 0; p < s->h_out; p++) {
        const FC_T *gyrow = gy + p * wo;
        const int64_t ih0 = 2 * p - 1;
        FC_T *rows[3];
        rows[0] = gx + ih0 * W; rows[1] = rows[0] + W; rows[2] = rows[1] + W;
        FC_SFX(prefetch_out_rows)(s, gy, ind, p);
        if (ind) {
            if (FC_SFX(max3_row)(s, gyrow, ind + p * wo, rows, p, 0, wo)) return 1;
        } else {
            /* the row's argmax (forward kernels), then the same gather */
            int64_t ibuf[FC_MAX3_ROWBUF], q0;
            for (q0 = 0; q0 < wo; q0 += FC_POOL_BLK)
                FC_SFX(argmax_block)(s, x, p, q0, FC_MIN(q0 + FC_POOL_BLK, wo), lo, hi, ibuf + q0, 3, 2, 1);
            if (FC_SFX(max3_row)(s, gyrow, ibuf, rows, p, 0, wo)) return 1;
        }
    }
    return 0;
}
