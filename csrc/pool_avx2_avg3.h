/* AVX2 avg pooling 3x3 stride 1 padding 1, forward and backward, as
 * separable sums (included by pool_avx2_impl.h once per dtype, with the V*
 * macros defined).
 *
 * Output plane == input plane (H x W).  Each output row is one vertical
 * pass (the up-to-three rows summed column by column into a zero-bordered
 * row buffer t[0..W+1], t[0] = t[W+1] = 0) and one horizontal pass
 * (t[i] + t[i+1] + t[i+2]): 6 vector loads per VL outputs instead of 9,
 * no per-output branches, and the padding handled by the zero border.
 *
 * Divisors take three values per axis (first, interior, last), so their
 * reciprocals are a 3x3 table built once per call: interior columns use
 * one vector multiply, the two edge columns are patched in scalar.  Sums
 * are formed in a different order than the generic kernel's window order
 * (the results agree to rounding; they never depend on the thread count).
 *
 * Backward is the same box sum applied to grad_out scaled by each output's
 * reciprocal divisor (each gradient is scaled before it is summed, as the
 * generic kernel does). */

#define FC_AVG3_MAXW 4096   /* row buffer on the stack: wider planes take the generic path */

/* recip[rc][cc]: 1/divisor of an output in row class rc and column class
 * cc (0 first, 1 interior, 2 last), from the exact window rule. */
static void FC_SFX(avg3_recips)(const fc_pool_shape *s, FC_T recip[3][3]) {
    const int64_t rows[3] = {0, FC_MIN(1, s->h_out - 1), s->h_out - 1};
    const int64_t cols[3] = {0, FC_MIN(1, s->w_out - 1), s->w_out - 1};
    int64_t h0, h1, w0, w1;
    int i, j;
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            recip[i][j] = (FC_T)1 / (FC_T)fc_pool_avg_window(s, rows[i], cols[j], &h0, &h1, &w0, &w1);
}

static FC_INLINE int FC_SFX(avg3_class)(int64_t i, int64_t n) {
    return i == 0 ? 0 : (i == n - 1 ? 2 : 1);
}

/* t[i] = sum of the n (1..3) rows r[0..n) at column i, in row order,
 * each row multiplied by sc[k] first when sc is given; i in [0, W). */
static FC_INLINE void FC_SFX(avg3_vsum)(FC_T *t, const FC_T *const r[3], const FC_T sc[3], int n, int64_t W,
                                        const int scale) {
    int64_t i = 0;
    if (W >= VL) {
        const VT s0 = VSET1(scale ? sc[0] : 1), s1 = VSET1(scale ? sc[1] : 1), s2 = VSET1(scale ? sc[2] : 1);
        for (;; i += VL) {
            VT v;
            if (i + VL > W) {
                if (i >= W) break;
                i = W - VL;                   /* overlapping last block: recomputes, same values */
            }
            v = scale ? VMUL(VLOAD(r[0] + i), s0) : VLOAD(r[0] + i);
            if (n > 1) v = VADD(v, scale ? VMUL(VLOAD(r[1] + i), s1) : VLOAD(r[1] + i));
            if (n > 2) v = VADD(v, scale ? VMUL(VLOAD(r[2] + i), s2) : VLOAD(r[2] + i));
            VSTORE(t + i, v);
        }
        return;
    }
    for (; i < W; i++) {
        FC_T v = scale ? r[0][i] * sc[0] : r[0][i];
        if (n > 1) v += scale ? r[1][i] * sc[1] : r[1][i];
        if (n > 2) v += scale ? r[2][i] * sc[2] : r[2][i];
        t[i] = v;
    }
}

/* out[i] = (t[i] + t[i+1] + t[i+2]) * sc for i in [0, W) (sc = 1: no multiply). */
static FC_INLINE void FC_SFX(avg3_hsum)(FC_T *out, const FC_T *t, int64_t W, FC_T sc, const int scale) {
    int64_t i = 0;
    if (W >= VL) {
        const VT vs = VSET1(sc);
        for (;; i += VL) {
            VT v;
            if (i + VL > W) {
                if (i >= W) break;
                i = W - VL;
            }
            v = VADD(VADD(VLOAD(t + i), VLOAD(t + i + 1)), VLOAD(t + i + 2));
            VSTORE(out + i, scale ? VMUL(v, vs) : v);
        }
        return;
    }
    for (; i < W; i++) {
        FC_T v = (t[i] + t[i + 1]) + t[i + 2];
        out[i] = scale ? v * sc : v;
    }
}

/* The rows of the window of output row oh (stride 1, pad 1): up to 3. */
static FC_INLINE int FC_SFX(avg3_rows)(const FC_T *base, int64_t oh, int64_t H, int64_t W, const FC_T *r[3],
                                       int64_t rowid[3]) {
    int n = 0;
    int64_t ih;
    for (ih = oh - 1; ih <= oh + 1; ih++)
        if (ih >= 0 && ih < H) { rowid[n] = ih; r[n++] = base + ih * W; }
    return n;
}

static void FC_SFX(avg3_plane)(const fc_pool_shape *s, const FC_T recip[3][3], const FC_T *x, FC_T *y) {
    const int64_t H = s->h_in, W = s->w_in;
    FC_T t[FC_AVG3_MAXW + 2];
    int64_t oh, rowid[3];
    t[0] = 0;
    t[W + 1] = 0;
    for (oh = 0; oh < H; oh++) {
        const FC_T *r[3] = {x, x, x}, one[3] = {1, 1, 1};
        const int rc = FC_SFX(avg3_class)(oh, H);
        const int n = FC_SFX(avg3_rows)(x, oh, H, W, r, rowid);
        FC_T *yr = y + oh * W;
        FC_SFX(avg3_vsum)(t + 1, r, one, n, W, 0);
        FC_SFX(avg3_hsum)(yr, t, W, recip[rc][1], 1);
        /* edge columns: their own divisors, same sum order as the vector code */
        yr[0] = ((t[0] + t[1]) + t[2]) * recip[rc][0];
        yr[W - 1] = ((t[W - 1] + t[W]) + t[W + 1]) * recip[rc][2];
    }
}

static void FC_SFX(avg3_backward_plane)(const fc_pool_shape *s, const FC_T recip[3][3], const FC_T *gy,
                                        FC_T *gx) {
    const int64_t H = s->h_in, W = s->w_in;
    FC_T t[FC_AVG3_MAXW + 2];
    int64_t ih, rowid[3];
    t[0] = 0;
    t[W + 1] = 0;
    for (ih = 0; ih < H; ih++) {
        const FC_T *r[3] = {gy, gy, gy};
        FC_T sc[3] = {1, 1, 1}, e0 = 0, e1 = 0;
        const int n = FC_SFX(avg3_rows)(gy, ih, H, W, r, rowid);
        int k;
        for (k = 0; k < n; k++) sc[k] = recip[FC_SFX(avg3_class)(rowid[k], H)][1];
        FC_SFX(avg3_vsum)(t + 1, r, sc, n, W, 1);
        /* edge columns of grad_out have their own divisors */
        for (k = 0; k < n; k++) {
            const int rc = FC_SFX(avg3_class)(rowid[k], H);
            FC_T a = r[k][0] * recip[rc][0], b = r[k][W - 1] * recip[rc][2];
            e0 = k ? e0 + a : a;
            e1 = k ? e1 + b : b;
        }
        t[1] = e0;
        t[W] = e1;
        FC_SFX(avg3_hsum)(gx + ih * W, t, W, 1, 0);
    }
}

/* 1 when the separable kernels serve this (kind 3) call. */
static int FC_SFX(avg3_ok)(const fc_pool_shape *s) {
    return s->w_in <= FC_AVG3_MAXW && s->w_out == s->w_in && s->h_out == s->h_in && s->w_in >= 1 && s->h_in >= 1;
}
