/* Register-blocked grad weight (see conv_bwd_avx2.c), written once for both
 * dtypes.  Needs T, V, VL, SFX(name) and the V_* ops. */
#define NCO (2 * VL)

/* One micro-tile: nj (<= 6) combos x nv (1 or 2) vectors of output
 * channels, over P output pixels.  gyt: grad_out [pixel][NCO]; combo j
 * reads xs[off[j] + pb[p]] at pixel p; acc: [combo][NCO], updated (or set,
 * when `first`). */
static FC_AI void SFX(tile)(const int nj, const int nv, const T *gyt, const T *xs,
                            const int64_t *off, const int64_t *pb, int64_t P, int first, T *acc) {
    V a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
    const T *x0 = xs + off[0];
    const T *x1 = nj > 1 ? xs + off[1] : x0, *x2 = nj > 2 ? xs + off[2] : x0;
    const T *x3 = nj > 3 ? xs + off[3] : x0, *x4 = nj > 4 ? xs + off[4] : x0;
    const T *x5 = nj > 5 ? xs + off[5] : x0;
    int64_t p;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = V_ZERO();
#define GW_LD(j) \
    if (nj > j && !first) { a##j##0 = V_LOAD(acc + j * NCO); if (nv > 1) a##j##1 = V_LOAD(acc + j * NCO + VL); }
    GW_LD(0) GW_LD(1) GW_LD(2) GW_LD(3) GW_LD(4) GW_LD(5)
#undef GW_LD
    for (p = 0; p < P; p++) {
        const T *g = gyt + p * NCO;
        const int64_t i = pb[p];
        const V g0 = V_LOAD(g);
        const V g1 = nv > 1 ? V_LOAD(g + VL) : V_ZERO();
#define GW_STEP(j)                                          \
        if (nj > j) {                                       \
            const V b = V_SET1(x##j[i]);                    \
            a##j##0 = V_FMA(b, g0, a##j##0);                \
            if (nv > 1) a##j##1 = V_FMA(b, g1, a##j##1);    \
        }
        GW_STEP(0) GW_STEP(1) GW_STEP(2) GW_STEP(3) GW_STEP(4) GW_STEP(5)
#undef GW_STEP
    }
#define GW_ST(j) \
    if (nj > j) { V_STOREU(acc + j * NCO, a##j##0); if (nv > 1) V_STOREU(acc + j * NCO + VL, a##j##1); }
    GW_ST(0) GW_ST(1) GW_ST(2) GW_ST(3) GW_ST(4) GW_ST(5)
#undef GW_ST
}

#define GW_CALL(NJ, NV) SFX(tile)(NJ, NV, gyt, xs, off, pb, P, first, acc)
#define GW_NV(NJ) do { if (nv > 1) GW_CALL(NJ, 2); else GW_CALL(NJ, 1); } while (0)
static FC_NOINLINE void SFX(tile_dispatch)(int nj, int nv, const T *gyt, const T *xs,
                                          const int64_t *off, const int64_t *pb, int64_t P,
                                          int first, T *acc) {
    switch (nj) {
    case 6: GW_NV(6); break;
    case 5: GW_NV(5); break;
    case 4: GW_NV(4); break;
    case 3: GW_NV(3); break;
    case 2: GW_NV(2); break;
    default: GW_NV(1); break;
    }
}
#undef GW_NV
#undef GW_CALL

/* VL x VL block transpose (fc_transpose_avx2.h). */
static inline void SFX(tr)(const T *src, int64_t ss, T *dst, int64_t ds) {
#if VL == 8
    fc_tr8x8_f32(src, ss, dst, ds);
#else
    fc_tr4x4_f64(src, ss, dst, ds);
#endif
}

static inline int64_t SFX(rows_in)(const fc_conv_shape *s, int64_t rows) {
    return (rows - 1) * s->stride_h + (s->kh - 1) * s->dil_h + 1;
}

/* grad_out rows [r0, r0+rows) of nco channels (channel c at src + c*po),
 * transposed to gyt[pixel][NCO]; lanes past nco are zero. */
static void SFX(transpose)(T *gyt, const T *src, int64_t po, int nco, int64_t P) {
    int64_t p = 0;
    int c;
    if (nco == NCO)
        for (; p + VL <= P; p += VL) {
            SFX(tr)(src + p, po, gyt + p * NCO, NCO);
            SFX(tr)(src + VL * po + p, po, gyt + p * NCO + VL, NCO);
        }
    for (c = 0; c < nco; c++) {
        const T *sp = src + c * po;
        int64_t q;
        for (q = p; q < P; q++) gyt[q * NCO + c] = sp[q];
    }
    for (c = nco; c < NCO; c++) {
        int64_t q;
        for (q = 0; q < P; q++) gyt[q * NCO + c] = 0;
    }
}

/* acc[K][NCO] -> gw: channel c's K values at dst + c*ds. */
static void SFX(write)(const T *acc, int64_t K, int nco, T *dst, int64_t ds) {
    int64_t k = 0;
    int c;
    if (nco == NCO)
        for (; k + VL <= K; k += VL) {
            SFX(tr)(acc + k * NCO, NCO, dst + k, ds);
            SFX(tr)(acc + k * NCO + VL, NCO, dst + VL * ds + k, ds);
        }
    for (c = 0; c < nco; c++) {
        int64_t q;
        for (q = k; q < K; q++) dst[c * ds + q] = acc[q * NCO + c];
    }
}

static fc_status SFX(run)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x, T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t khkw = s->kh * s->kw, ho = s->h_out, wo = s->w_out;
    const int64_t plane_in = s->h_in * s->w_in, plane_out = ho * wo;
    const int64_t xmax = GW_XBYTES / (int64_t)sizeof(T);
    int64_t rows, nrc, wb, plane_b, cib, nkb, ncob, ncog, G, ntask, t64;
    int copy, nthr;
    if (cog < VL || khkw > GW_KMAX || wo > GW_PMAX || cig < 1) return FC_NOT_HANDLED;
    if (s->n == 0 || ho == 0 || wo == 0 || s->h_in == 0 || s->w_in == 0) {
        memset(gw, 0, (size_t)(s->c_out * cig * khkw) * sizeof(T));  /* empty sums */
        return FC_OK;
    }
    /* read x in place when no tap leaves it, else copy zero-padded rows */
    copy = s->pad_h != 0 || s->pad_w != 0 ||
           (ho - 1) * s->stride_h + (s->kh - 1) * s->dil_h >= s->h_in ||
           (wo - 1) * s->stride_w + (s->kw - 1) * s->dil_w >= s->w_in;
    wb = copy ? (wo - 1) * s->stride_w + (s->kw - 1) * s->dil_w + 1 : s->w_in;
    rows = FC_MAX(1, FC_MIN(ho, GW_PTARGET / wo));
    if (copy)
        while (rows > 1 && SFX(rows_in)(s, rows) * wb > xmax) rows--;
    nrc = (ho + rows - 1) / rows;
    rows = (ho + nrc - 1) / nrc;  /* even chunks */
    plane_b = copy ? SFX(rows_in)(s, rows) * wb : plane_in;
    if (copy && plane_b > xmax) return FC_NOT_HANDLED;
    cib = GW_KMAX / khkw;
    if (copy) cib = FC_MIN(cib, xmax / plane_b);
    /* one image of the block's input channels stays in L2 for the next
     * task (same channels, next co-block) */
    cib = FC_MIN(cib, GW_L2_BYTES / (plane_in * (int64_t)sizeof(T)));
    cib = FC_MAX(1, FC_MIN(cib, cig));
    nkb = (cig + cib - 1) / cib;
    cib = (cig + nkb - 1) / nkb;
    ncob = (cog + NCO - 1) / NCO;
    /* co-blocks per task: each copied input chunk serves G of them; fewer
     * when that would leave threads without a task (any G gives the same
     * sums: results still do not depend on the thread count) */
    G = FC_MAX(1, FC_MIN(FC_MIN(GW_GMAX, ncob), GW_ACC_COMBOS / (cib * khkw)));
    while (G > 1 && s->groups * nkb * ((ncob + G - 1) / G) < 2 * (int64_t)ctx->num_threads) G--;
    ncog = (ncob + G - 1) / G;
    FC_MUL(s->groups, ncog, &t64);
    FC_MUL(t64, nkb, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(32) T acc[GW_ACC_COMBOS * NCO];
        FC_ALIGNED(32) T gyt[GW_PMAX * NCO];
        FC_ALIGNED(32) T xb[GW_XBYTES / sizeof(T) + VL];
        int64_t off[GW_KMAX];
        int64_t pb[GW_PMAX];
        int64_t task, p;
        /* input offset of each pixel of a chunk from the chunk's first row */
        for (p = 0; p < rows * wo; p++)
            pb[p] = (p / wo) * s->stride_h * (copy ? wb : s->w_in) + (p % wo) * s->stride_w;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            /* co-block group fastest: consecutive tasks of a thread read the
             * same input channels, which then come from L2 */
            const int64_t cg0 = (task % ncog) * G, kb = (task / ncog) % nkb, g = task / (nkb * ncog);
            const int64_t ng = FC_MIN(G, ncob - cg0);
            const int64_t ci0 = kb * cib, cb = FC_MIN(cib, cig - ci0), K = cb * khkw;
            const int64_t wrow = copy ? wb : s->w_in;
            int64_t n, rc, k, c, i, j, cc;
            if (cb <= 0) continue;
            for (c = 0; c < cb; c++)
                for (i = 0; i < s->kh; i++)
                    for (j = 0; j < s->kw; j++)
                        off[(c * s->kh + i) * s->kw + j] = c * plane_b + i * s->dil_h * wrow + j * s->dil_w;
            for (n = 0; n < s->n; n++) {
                const T *ximg = x + (n * s->c_in + g * cig + ci0) * plane_in;
                for (rc = 0; rc < nrc; rc++) {
                    const int64_t r0 = rc * rows, r1 = FC_MIN(ho, r0 + rows), R = r1 - r0;
                    const T *xs;
                    if (copy) {
                        const int64_t rows_b = SFX(rows_in)(s, R), ih_s = r0 * s->stride_h - s->pad_h;
                        const int64_t c_lo = FC_MIN(wb, FC_MAX(0, s->pad_w));
                        const int64_t c_hi = FC_MAX(c_lo, FC_MIN(wb, s->w_in + s->pad_w));
                        for (c = 0; c < cb; c++) {
                            const T *xp = ximg + c * plane_in - s->pad_w;
                            for (i = 0; i < rows_b; i++) {
                                T *dst = xb + c * plane_b + i * wb;
                                const int64_t ih = ih_s + i;
                                int64_t q;
                                /* rows are short: inline vector loops, not
                                 * memset/memcpy calls; the zeroing may run
                                 * VL-1 past the row (the next row is written
                                 * after it, the block has VL slack) */
                                for (q = 0; q < wb; q += VL) V_STOREU(dst + q, V_ZERO());
                                if (ih < 0 || ih >= s->h_in) continue;
                                for (q = c_lo; q + VL <= c_hi; q += VL)
                                    V_STOREU(dst + q, V_LOADU(xp + ih * s->w_in + q));
                                for (; q < c_hi; q++) dst[q] = xp[ih * s->w_in + q];
                            }
                        }
                        xs = xb;
                    } else {
                        xs = ximg + r0 * s->stride_h * s->w_in;
                    }
                    for (cc = 0; cc < ng; cc++) {
                        const int64_t co_abs = g * cog + (cg0 + cc) * NCO;
                        const int nco = (int)FC_MIN(NCO, cog - (cg0 + cc) * NCO);
                        const int nv = nco > VL ? 2 : 1;
                        T *a = acc + cc * K * NCO;
                        SFX(transpose)(gyt, gy + (n * s->c_out + co_abs) * plane_out + r0 * wo,
                                       plane_out, nco, R * wo);
                        for (k = 0; k < K; k += GW_NJ)
                            SFX(tile_dispatch)((int)FC_MIN(GW_NJ, K - k), nv, gyt, xs, off + k, pb,
                                               R * wo, n == 0 && rc == 0, a + k * NCO);
                    }
                }
            }
            for (cc = 0; cc < ng; cc++) {
                const int64_t co_abs = g * cog + (cg0 + cc) * NCO;
                const int nco = (int)FC_MIN(NCO, cog - (cg0 + cc) * NCO);
                SFX(write)(acc + cc * K * NCO, K, nco, gw + (co_abs * cig + ci0) * khkw, cig * khkw);
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}

#undef NCO
