/* Register-blocked grad weight (see conv_bwd_avx2.c), written once for both
 * dtypes.  Needs T, V, VL, SFX(name) and the V_* ops. */
#define NCO (2 * VL)

/* One micro-tile: nj (<= 6) combos x nv (1 or 2) vectors of output
 * channels, over `rows` output rows of `wo` pixels.  gyt: grad_out [pixel][NCO];
 * combo j reads xs[off[j] + r*rstep + ow*sw]; acc: [combo][NCO], updated. */
static FC_AI void SFX(tile)(const int nj, const int nv, const T *gyt, const T *xs,
                            const int64_t *off, int64_t rows, int64_t wo, int64_t rstep,
                            int64_t sw, T *acc) {
    V a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
    const T *x0 = xs + off[0];
    const T *x1 = nj > 1 ? xs + off[1] : x0, *x2 = nj > 2 ? xs + off[2] : x0;
    const T *x3 = nj > 3 ? xs + off[3] : x0, *x4 = nj > 4 ? xs + off[4] : x0;
    const T *x5 = nj > 5 ? xs + off[5] : x0;
    int64_t r;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = V_ZERO();
#define GW_LD(j) \
    if (nj > j) { a##j##0 = V_LOAD(acc + j * NCO); if (nv > 1) a##j##1 = V_LOAD(acc + j * NCO + VL); }
    GW_LD(0) GW_LD(1) GW_LD(2) GW_LD(3) GW_LD(4) GW_LD(5)
#undef GW_LD
    for (r = 0; r < rows; r++) {
        const T *g = gyt + r * wo * NCO;
        const int64_t xo = r * rstep;
        int64_t ow, i = xo;
        for (ow = 0; ow < wo; ow++, g += NCO, i += sw) {
            const V g0 = V_LOAD(g);
            const V g1 = nv > 1 ? V_LOAD(g + VL) : V_ZERO();
#define GW_STEP(j)                                          \
            if (nj > j) {                                   \
                const V b = V_SET1(x##j[i]);                \
                a##j##0 = V_FMA(b, g0, a##j##0);            \
                if (nv > 1) a##j##1 = V_FMA(b, g1, a##j##1); \
            }
            GW_STEP(0) GW_STEP(1) GW_STEP(2) GW_STEP(3) GW_STEP(4) GW_STEP(5)
#undef GW_STEP
        }
    }
#define GW_ST(j) \
    if (nj > j) { V_STOREU(acc + j * NCO, a##j##0); if (nv > 1) V_STOREU(acc + j * NCO + VL, a##j##1); }
    GW_ST(0) GW_ST(1) GW_ST(2) GW_ST(3) GW_ST(4) GW_ST(5)
#undef GW_ST
}

#define GW_CALL(NJ, NV) SFX(tile)(NJ, NV, gyt, xs, off, rows, wo, rstep, sw, acc)
#define GW_NV(NJ) do { if (nv > 1) GW_CALL(NJ, 2); else GW_CALL(NJ, 1); } while (0)
static FC_NOINLINE void SFX(tile_dispatch)(int nj, int nv, const T *gyt, const T *xs,
                                          const int64_t *off, int64_t rows, int64_t wo,
                                          int64_t rstep, int64_t sw, T *acc) {
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

static inline int64_t SFX(rows_in)(const fc_conv_shape *s, int64_t rows) {
    return (rows - 1) * s->stride_h + (s->kh - 1) * s->dil_h + 1;
}

/* grad_out rows [r0, r0+rows) of nco channels (channel c at src + c*po),
 * transposed to gyt[pixel][NCO]; lanes past nco are zero. */
static void SFX(transpose)(T *gyt, const T *src, int64_t po, int nco, int64_t P) {
    int64_t p;
    int c;
    for (c = 0; c < nco; c++) {
        const T *sp = src + c * po;
        for (p = 0; p < P; p++) gyt[p * NCO + c] = sp[p];
    }
    for (c = nco; c < NCO; c++)
        for (p = 0; p < P; p++) gyt[p * NCO + c] = 0;
}

static fc_status SFX(run)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x, T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t khkw = s->kh * s->kw, ho = s->h_out, wo = s->w_out;
    const int64_t plane_in = s->h_in * s->w_in, plane_out = ho * wo;
    const int64_t xmax = GW_XBYTES / (int64_t)sizeof(T);
    int64_t rows, nrc, wb, plane_b, cib, nkb, ncob, ntask, t64;
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
    cib = FC_MAX(1, FC_MIN(cib, cig));
    nkb = (cig + cib - 1) / cib;
    cib = (cig + nkb - 1) / nkb;
    ncob = (cog + NCO - 1) / NCO;
    FC_MUL(s->groups, ncob, &t64);
    FC_MUL(t64, nkb, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(32) T acc[GW_KMAX * NCO];
        FC_ALIGNED(32) T gyt[GW_PMAX * NCO];
        FC_ALIGNED(32) T xb[GW_XBYTES / sizeof(T)];
        int64_t off[GW_KMAX];
        int64_t task;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            const int64_t kb = task % nkb, cob = (task / nkb) % ncob, g = task / (nkb * ncob);
            const int64_t co_abs = g * cog + cob * NCO;
            const int nco = (int)FC_MIN(NCO, cog - cob * NCO);
            const int nv = nco > VL ? 2 : 1;
            const int64_t ci0 = kb * cib, cb = FC_MIN(cib, cig - ci0), K = cb * khkw;
            const int64_t wrow = copy ? wb : s->w_in;
            const int64_t rstep = s->stride_h * wrow;
            int64_t n, rc, k, c, i, j;
            if (cb <= 0) continue;
            for (k = 0; k < K * NCO; k++) acc[k] = 0;
            for (c = 0; c < cb; c++)
                for (i = 0; i < s->kh; i++)
                    for (j = 0; j < s->kw; j++)
                        off[(c * s->kh + i) * s->kw + j] = c * plane_b + i * s->dil_h * wrow + j * s->dil_w;
            for (n = 0; n < s->n; n++) {
                const T *ximg = x + (n * s->c_in + g * cig + ci0) * plane_in;
                for (rc = 0; rc < nrc; rc++) {
                    const int64_t r0 = rc * rows, r1 = FC_MIN(ho, r0 + rows), R = r1 - r0;
                    const T *xs;
                    SFX(transpose)(gyt, gy + (n * s->c_out + co_abs) * plane_out + r0 * wo,
                                   plane_out, nco, R * wo);
                    if (copy) {
                        const int64_t rows_b = SFX(rows_in)(s, R), ih_s = r0 * s->stride_h - s->pad_h;
                        const int64_t c_lo = FC_MIN(wb, FC_MAX(0, s->pad_w));
                        const int64_t c_hi = FC_MAX(c_lo, FC_MIN(wb, s->w_in + s->pad_w));
                        for (c = 0; c < cb; c++) {
                            const T *xp = ximg + c * plane_in - s->pad_w;
                            for (i = 0; i < rows_b; i++) {
                                T *dst = xb + c * plane_b + i * wb;
                                const int64_t ih = ih_s + i;
                                if (ih < 0 || ih >= s->h_in) {
                                    memset(dst, 0, (size_t)wb * sizeof(T));
                                    continue;
                                }
                                if (c_lo > 0) memset(dst, 0, (size_t)c_lo * sizeof(T));
                                if (c_hi > c_lo) memcpy(dst + c_lo, xp + ih * s->w_in + c_lo, (size_t)(c_hi - c_lo) * sizeof(T));
                                if (wb > c_hi) memset(dst + c_hi, 0, (size_t)(wb - c_hi) * sizeof(T));
                            }
                        }
                        xs = xb;
                    } else {
                        xs = ximg + r0 * s->stride_h * s->w_in;
                    }
                    for (k = 0; k < K; k += GW_NJ)
                        SFX(tile_dispatch)((int)FC_MIN(GW_NJ, K - k), nv, gyt, xs, off + k, R, wo,
                                           rstep, s->stride_w, acc + k * NCO);
                }
            }
            for (c = 0; c < nco; c++) {
                T *dst = gw + ((co_abs + c) * cig + ci0) * khkw;
                for (k = 0; k < K; k++) dst[k] = acc[k * NCO + c];
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}

#undef NCO
