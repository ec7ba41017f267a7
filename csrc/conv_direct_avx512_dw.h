/* Depthwise 3x3 on the AVX-512 path (groups == c_in == c_out; stride (1,1)
 * with dilation 1-FC_ZDW_MAXD, or stride (2,2) with dilation 1): a
 * per-channel 2-D stencil vectorised along the output width.  Tile: FC_ZDW_R output rows x up to 2 zmm of pixels; each
 * input vector loaded once feeds up to 3 output rows; the 9 weights stay in
 * registers.  Padding and row ends use zero-masking loads (masked-out lanes
 * read nothing, so no scalar edge path and no copy), partial vectors masked
 * stores.  Stride 2 loads 2 vectors per tap and keeps the even elements
 * (vpermt2ps).  Dilation d (compile-time) only moves the taps: kw shifts by
 * kw*d lanes and input row i feeds output row r when i - r is 0, d or 2d, so
 * the loads stay the same contiguous vectors.
 *
 * Summation order per output: bias, then kh, kw ascending, fixed by the
 * shape, so results do not depend on the thread count.  Included by
 * conv_direct_avx512.c once per dtype. */

#define FC_ZDW_R 4
#define FC_ZDW_MAXD 4                       /* dilations served (2*d <= VL for both dtypes) */

/* Lanes [n, n + VL) of the concatenation lo:hi, n in [0, VL] compile-time. */
#define FC_ZDW_SHIFT(hi, lo, n) ((n) == 0 ? (lo) : (n) == VL ? (hi) : V_ALIGNR(hi, lo, (n) % VL))

/* Lanes r in [0, VL) with 0 <= base + r < lim_in and r < lim_lanes. */
static inline MASKT SFX(zdw_mask)(int64_t base, int64_t lim_in, int64_t lim_lanes) {
    int64_t lo = base < 0 ? -base : 0, hi = lim_in - base;
    if (hi > lim_lanes) hi = lim_lanes;
    if (hi > VL) hi = VL;
    if (lo >= hi) return (MASKT)0;
    return (MASKT)(V_TAILMASK(hi) & ~V_TAILMASK(lo));
}

/* One tile: rows [oh0, oh0 + nrows) (nrows <= R), nv vectors of pixels from
 * ow0; mk: input masks per (kw, load), mo: output masks per vector.
 * st, nv compile-time at the call sites. */
static FC_AI void SFX(zdw_tile)(const fc_conv_shape *s, const int st, const int dl, const int nv, const T *xp,
                                const V *wv, const V bv, T *yp, int64_t oh0, int64_t nrows,
                                int64_t ow0, const MASKT *mk, const MASKT *mo, const VIDX ev, const VIDX od) {
    const int64_t ih0 = oh0 * st - s->pad_h;
    const int64_t iw0 = ow0 * st - s->pad_w;
    V a00 = bv, a01 = bv, a10 = bv, a11 = bv, a20 = bv, a21 = bv, a30 = bv, a31 = bv;
    V wr[9];
    int i, kw;
    /* the 9 weights in registers: as memory operands (GCC's choice) every
     * FMA would add a 64-byte load, and loads are this tile's bottleneck */
#pragma GCC unroll 9
    for (i = 0; i < 9; i++) { wr[i] = wv[i]; __asm__("" : "+v"(wr[i])); }
#pragma GCC unroll 16
    for (i = 0; i < (FC_ZDW_R - 1) * st + 2 * dl + 1; i++) {
        const int64_t ih = ih0 + i;
        const T *row;
        if (ih < 0 || ih >= s->h_in) continue;
        row = xp + ih * s->w_in + iw0;
        {
            /* the 3 kw taps of each output vector from few loads: stride 1
             * loads A, B, C (48 inputs) and shifts by kw*dl with valignd; stride 2
             * loads 64 inputs + 1 and splits even/odd with vpermt2ps */
            V t[3][2];
            if (st == 1) {
                const V A = V_MASKLOADU(mk[0], row), B = V_MASKLOADU(mk[1], row + VL);
                t[0][0] = A; t[1][0] = FC_ZDW_SHIFT(B, A, dl); t[2][0] = FC_ZDW_SHIFT(B, A, 2 * dl);
                if (nv > 1) {
                    const V C = V_MASKLOADU(mk[2], row + 2 * VL);
                    t[0][1] = B; t[1][1] = FC_ZDW_SHIFT(C, B, dl); t[2][1] = FC_ZDW_SHIFT(C, B, 2 * dl);
                } else {
                    t[0][1] = t[1][1] = t[2][1] = V_ZERO();
                }
            } else {
                const V A = V_MASKLOADU(mk[0], row), B = V_MASKLOADU(mk[1], row + VL);
                const V C = V_MASKLOADU(mk[2], row + 2 * VL);
                t[0][0] = V_EVEN(A, ev, B); t[1][0] = V_EVEN(A, od, B);
                if (nv > 1) {
                    const V D = V_MASKLOADU(mk[3], row + 3 * VL), E = V_MASKLOADU(mk[4], row + 4 * VL);
                    t[0][1] = V_EVEN(C, ev, D); t[1][1] = V_EVEN(C, od, D);
                    t[2][0] = V_ALIGNR(t[0][1], t[0][0], 1);
                    t[2][1] = V_ALIGNR(E, t[0][1], 1);
                } else {
                    t[2][0] = V_ALIGNR(C, t[0][0], 1);
                    t[0][1] = t[1][1] = t[2][1] = V_ZERO();
                }
            }
#pragma GCC unroll 3
        for (kw = 0; kw < 3; kw++) {
            const V v0 = t[kw][0], v1 = t[kw][1];
#define FC_ZDW_ROW(r)                                                                        \
            if (i - (r) * st >= 0 && (i - (r) * st) % dl == 0 && (i - (r) * st) / dl < 3) {  \
                const V w_ = wr[(i - (r) * st) / dl * 3 + kw];                               \
                a##r##0 = V_FMA(w_, v0, a##r##0);                                            \
                if (nv > 1) a##r##1 = V_FMA(w_, v1, a##r##1);                                \
            }
            FC_ZDW_ROW(0) FC_ZDW_ROW(1) FC_ZDW_ROW(2) FC_ZDW_ROW(3)
#undef FC_ZDW_ROW
        }
        }
    }
#define FC_ZDW_STORE(r)                                                                      \
    if ((r) < nrows) {                                                                       \
        T *q = yp + (oh0 + (r)) * s->w_out + ow0;                                            \
        if (mo[0] == (MASKT)V_TAILMASK(VL)) V_STOREU(q, a##r##0);                           \
        else V_MASKSTOREU(q, mo[0], a##r##0);                                                \
        if (nv > 1) {                                                                        \
            if (mo[1] == (MASKT)V_TAILMASK(VL)) V_STOREU(q + VL, a##r##1);                  \
            else V_MASKSTOREU(q + VL, mo[1], a##r##1);                                       \
        }                                                                                    \
    }
    FC_ZDW_STORE(0) FC_ZDW_STORE(1) FC_ZDW_STORE(2) FC_ZDW_STORE(3)
#undef FC_ZDW_STORE
}

#define FC_ZDW_CALL(ST, DL, NV) SFX(zdw_tile)(s, ST, DL, NV, xp, wv, bv, yp, oh0, nrows, ow0, mk, mo, ev, od)
#define FC_ZDW_NV(ST, DL) do { if (nv > 1) FC_ZDW_CALL(ST, DL, 2); else FC_ZDW_CALL(ST, DL, 1); } while (0)
static FC_NOINLINE void SFX(zdw_tile_dispatch)(const fc_conv_shape *s, int st, int nv, const T *xp,
                                              const V *wv, const V bv, T *yp, int64_t oh0,
                                              int64_t nrows, int64_t ow0, const MASKT *mk,
                                              const MASKT *mo, const VIDX ev, const VIDX od) {
    if (st == 2) { FC_ZDW_NV(2, 1); return; }
    switch (s->dil_w) {
    case 1: FC_ZDW_NV(1, 1); break;
    case 2: FC_ZDW_NV(1, 2); break;
    case 3: FC_ZDW_NV(1, 3); break;
    default: FC_ZDW_NV(1, 4); break;
    }
}
#undef FC_ZDW_NV
#undef FC_ZDW_CALL

/* Small planes, stride 1, w_out == w_in (pad_w 1): the output plane taken
 * flattened, so a 7x7 plane is 4 vectors (not 7 rows of 7/16 lanes).  The
 * input of tap (kh, kw) for flat output p is flat input p + (kh - pad_h)*W
 * + kw - 1; lanes whose tap falls off the row (wrapping to the next) or
 * outside the plane are masked out of the load.  The masks, the same for
 * every channel, are built once per call: m[v*9 + tap] for vector v. */
#define FC_ZDWF_MAXV 64                     /* vectors per plane: <= 1024 (f32) / 512 (f64) pixels */
#ifndef FC_ZDWF_MINW
#define FC_ZDWF_MINW 8                      /* flattened below this width (measured: 7 yes, 14 no) */
#endif
#define FC_ZDWF_U 4                         /* vectors in flight (FMA latency) */

static void SFX(zdwf_masks)(const fc_conv_shape *s, int64_t nvec, MASKT *m) {
    const int64_t W = s->w_out, P = s->h_out * s->w_out;
    int64_t v, l;
    int t;
    for (v = 0; v < nvec * 9; v++) m[v] = 0;
    for (v = 0; v < nvec; v++)
        for (l = 0; l < VL; l++) {
            const int64_t p = v * VL + l, oh = p / W, ow = p % W;
            if (p >= P) break;
            for (t = 0; t < 9; t++) {
                const int64_t ih = oh + t / 3 - s->pad_h, iw = ow + t % 3 - 1;
                if (ih >= 0 && ih < s->h_in && iw >= 0 && iw < s->w_in)
                    m[v * 9 + t] |= (MASKT)((MASKT)1 << l);
            }
        }
}

static FC_AI void SFX(zdwf_group)(const int nu, const T *xp, T *yp, const V *wr, const V bv,
                                  const MASKT *m, int64_t v0, int64_t W, int64_t ph, int64_t P) {
    V a0 = bv, a1 = bv, a2 = bv, a3 = bv;
    int t;
#pragma GCC unroll 9
    for (t = 0; t < 9; t++) {
        const int64_t off = (t / 3 - ph) * W + t % 3 - 1;
        const T *q = xp + v0 * VL + off;
        a0 = V_FMA(wr[t], V_MASKLOADU(m[(v0 + 0) * 9 + t], q), a0);
        if (nu > 1) a1 = V_FMA(wr[t], V_MASKLOADU(m[(v0 + 1) * 9 + t], q + VL), a1);
        if (nu > 2) a2 = V_FMA(wr[t], V_MASKLOADU(m[(v0 + 2) * 9 + t], q + 2 * VL), a2);
        if (nu > 3) a3 = V_FMA(wr[t], V_MASKLOADU(m[(v0 + 3) * 9 + t], q + 3 * VL), a3);
    }
#define FC_ZDWF_ST(u)                                                                            if (nu > u) {                                                                                    const int64_t p = (v0 + u) * VL;                                                             if (P - p >= VL) V_STOREU(yp + p, a##u);                                                     else V_MASKSTOREU(yp + p, (MASKT)V_TAILMASK(P - p), a##u);                               }
    FC_ZDWF_ST(0) FC_ZDWF_ST(1) FC_ZDWF_ST(2) FC_ZDWF_ST(3)
#undef FC_ZDWF_ST
}

static FC_NOINLINE void SFX(zdwf_plane)(const T *xp, T *yp, const V *wv, const V bv, const MASKT *m,
                                       int64_t nvec, int64_t W, int64_t ph, int64_t P) {
    V wr[9];
    int64_t v0;
    int i;
#pragma GCC unroll 9
    for (i = 0; i < 9; i++) { wr[i] = wv[i]; __asm__("" : "+v"(wr[i])); }
    for (v0 = 0; v0 + FC_ZDWF_U <= nvec; v0 += FC_ZDWF_U)
        SFX(zdwf_group)(4, xp, yp, wr, bv, m, v0, W, ph, P);
    switch (nvec - v0) {
    case 3: SFX(zdwf_group)(3, xp, yp, wr, bv, m, v0, W, ph, P); break;
    case 2: SFX(zdwf_group)(2, xp, yp, wr, bv, m, v0, W, ph, P); break;
    case 1: SFX(zdwf_group)(1, xp, yp, wr, bv, m, v0, W, ph, P); break;
    default: break;
    }
}

static fc_status SFX(zdwf)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                           const T *bias, T *y) {
    const int64_t P = s->h_out * s->w_out, nvec = (P + VL - 1) / VL;
    int64_t planes;
    int nthr;
    MASKT m[FC_ZDWF_MAXV * 9];
    FC_MUL(s->n, s->c_out, &planes);
    SFX(zdwf_masks)(s, nvec, m);
    nthr = fc_threads_for(ctx, planes);
#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        int64_t pl;
#pragma omp for schedule(static)
        for (pl = 0; pl < planes; pl++) {
            const int64_t c = pl % s->c_out;
            const T *wk = w + c * 9;
            V wv[9];
            int k;
            for (k = 0; k < 9; k++) wv[k] = V_SET1(wk[k]);
            SFX(zdwf_plane)(x + pl * s->h_in * s->w_in, y + pl * P, wv, V_SET1(bias ? bias[c] : (T)0),
                            m, nvec, s->w_out, s->pad_h, P);
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}

/* Serves depthwise 3x3, stride (1,1) with dilation (d,d), d <= FC_ZDW_MAXD,
 * or stride (2,2) with dilation 1; else FC_NOT_HANDLED. */
static fc_status SFX(dw3x3)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                            const T *bias, T *y) {
    const int st = (int)s->stride_w;
    const int64_t dl = s->dil_w;
    int64_t rows_per, nrc, ntask;
    int nthr;
    if (!(s->groups == s->c_in && s->c_out == s->c_in && s->kh == 3 && s->kw == 3 &&
          s->dil_h == dl && dl >= 1 && s->stride_h == s->stride_w &&
          ((st == 1 && dl <= FC_ZDW_MAXD && 2 * dl <= VL) || (st == 2 && dl == 1))))
        return FC_NOT_HANDLED;
    /* narrow planes: flattened (rows of < 2 vectors would waste lanes) */
    if (st == 1 && dl == 1 && s->w_out == s->w_in && s->w_out < FC_ZDWF_MINW &&
        s->h_out * s->w_out <= FC_ZDWF_MAXV * VL)
        return SFX(zdwf)(ctx, s, x, w, bias, y);
    /* ~1024 output pixels per task, whole R-row tiles */
    rows_per = FC_MAX(1, 1024 / s->w_out);
    rows_per = (rows_per + FC_ZDW_R - 1) / FC_ZDW_R * FC_ZDW_R;
    nrc = (s->h_out + rows_per - 1) / rows_per;
    FC_MUL(s->n * s->c_out, nrc, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        const VIDX ev = V_EVEN_IDX(), od = V_ODD_IDX();
        int64_t task;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            const int64_t rc = task % nrc, nc_ = task / nrc;   /* nc_ = n*C + c */
            const int64_t c = nc_ % s->c_out;
            const int64_t r0 = rc * rows_per, r1 = FC_MIN(s->h_out, r0 + rows_per);
            const T *xp = x + nc_ * s->h_in * s->w_in;
            const T *wk = w + c * 9;
            T *yp = y + nc_ * s->h_out * s->w_out;
            const V bv = V_SET1(bias ? bias[c] : (T)0);
            V wv[9];
            int64_t oh0, ow0;
            int k;
            for (k = 0; k < 9; k++) wv[k] = V_SET1(wk[k]);
            for (ow0 = 0; ow0 < s->w_out; ow0 += 2 * VL) {
                const int64_t nvalid = FC_MIN(2 * VL, s->w_out - ow0);
                const int nv = nvalid > VL ? 2 : 1;
                const int64_t iw0 = ow0 * st - s->pad_w;
                MASKT mk[5], mo[2];
                int q;
                mo[0] = SFX(zdw_mask)(0, nvalid, VL);
                mo[1] = SFX(zdw_mask)(VL, nvalid, VL);
                /* load q covers inputs iw0 + q*VL + [0, VL): keep those inside
                 * the row and needed by a valid output (the last one reads
                 * input st*(nvalid-1) + 2*dl) */
                for (q = 0; q < 5; q++)
                    mk[q] = SFX(zdw_mask)(iw0 + q * VL, s->w_in, st * (nvalid - 1) + 2 * dl + 1 - (int64_t)q * VL);
                for (oh0 = r0; oh0 < r1; oh0 += FC_ZDW_R)
                    SFX(zdw_tile_dispatch)(s, st, nv, xp, wv, bv, yp, oh0, FC_MIN(FC_ZDW_R, r1 - oh0),
                                           ow0, mk, mo, ev, od);
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
