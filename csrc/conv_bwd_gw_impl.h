/* Register-blocked grad weight, written once for both dtypes and both the
 * AVX2 (conv_bwd_avx2.c) and AVX-512 (conv_bwd_avx512.c) files.
 *
 * Needs T, V, VL, SFX(name), the V_* ops, SFX(tr) (a TR x TR block
 * transpose) and the plan constants:
 *   GW_NV        vectors of output channels per micro-tile (<= 4)
 *   GW_KMAX      combos per task (acc buffer)
 *   GW_PTARGET   output pixels per chunk (the transposed grad_out block,
 *                GW_PTARGET * NCO elements, stays in L1 across the tiles)
 *   GW_PMAX      widest output row served
 *   GW_XBYTES    padded input block
 *   GW_L2_BYTES  input planes of one task's channel block (0: no bound)
 *   GW_GMAX, GW_ACC_COMBOS   co-blocks per task sharing one input copy,
 *                and the acc buffer (combos x co-blocks) they share */
#define NCO (GW_NV * VL)

/* One micro-tile: nj (<= 6) combos x nv (<= GW_NV) vectors of output
 * channels, over P output pixels.  gyt: grad_out [pixel][NCO]; combo j
 * reads xs[off[j] + pb[p]] at pixel p, broadcast once into a register that
 * feeds the nv FMAs (6 + nv loads per 6*nv FMAs: an FMA with an embedded
 * broadcast would cost a load each, more than two load ports feed two
 * 512-bit FMA ports); acc: [combo][NCO], updated (or set, when `first`). */
static FC_AI void SFX(tile)(const int nj, const int nv, const T *gyt, const T *xs,
                            const int64_t *off, const int64_t *pb, int64_t P, int first, T *acc) {
    V a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23;
    V a30, a31, a32, a33, a40, a41, a42, a43, a50, a51, a52, a53;
    const int64_t o0 = off[0], o1 = nj > 1 ? off[1] : o0, o2 = nj > 2 ? off[2] : o0;
    const int64_t o3 = nj > 3 ? off[3] : o0, o4 = nj > 4 ? off[4] : o0, o5 = nj > 5 ? off[5] : o0;
    int64_t p;
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = a20 = a21 = a22 = a23 = V_ZERO();
    a30 = a31 = a32 = a33 = a40 = a41 = a42 = a43 = a50 = a51 = a52 = a53 = V_ZERO();
#define GW_LD1(j, v) if (nj > j && nv > v && !first) a##j##v = V_LOAD(acc + j * NCO + v * VL);
#define GW_LD(j) GW_LD1(j, 0) GW_LD1(j, 1) GW_LD1(j, 2) GW_LD1(j, 3)
    GW_LD(0) GW_LD(1) GW_LD(2) GW_LD(3) GW_LD(4) GW_LD(5)
#undef GW_LD
#undef GW_LD1
#pragma GCC unroll 2
    for (p = 0; p < P; p++) {
        const T *g = gyt + p * NCO;
        const T *xq = xs + pb[p];
        const V g0 = V_LOAD(g);
        const V g1 = nv > 1 ? V_LOAD(g + VL) : g0;
        const V g2 = nv > 2 ? V_LOAD(g + 2 * VL) : g0;
        const V g3 = nv > 3 ? V_LOAD(g + 3 * VL) : g0;
#define GW_STEP(j)                                          \
        if (nj > j) {                                       \
            const V b = V_SET1(xq[o##j]);                    \
            a##j##0 = V_FMA(b, g0, a##j##0);                \
            if (nv > 1) a##j##1 = V_FMA(b, g1, a##j##1);    \
            if (nv > 2) a##j##2 = V_FMA(b, g2, a##j##2);    \
            if (nv > 3) a##j##3 = V_FMA(b, g3, a##j##3);    \
        }
        GW_STEP(0) GW_STEP(1) GW_STEP(2) GW_STEP(3) GW_STEP(4) GW_STEP(5)
#undef GW_STEP
    }
#define GW_ST1(j, v) if (nj > j && nv > v) V_STOREU(acc + j * NCO + v * VL, a##j##v);
#define GW_ST(j) GW_ST1(j, 0) GW_ST1(j, 1) GW_ST1(j, 2) GW_ST1(j, 3)
    GW_ST(0) GW_ST(1) GW_ST(2) GW_ST(3) GW_ST(4) GW_ST(5)
#undef GW_ST
#undef GW_ST1
}

#define GW_CALL(NJ, NV) SFX(tile)(NJ, NV, gyt, xs, off, pb, P, first, acc)
#if GW_NV > 2
#define GW_NVS(NJ)                                                   \
    do {                                                             \
        switch (nv) {                                                \
        case 4: GW_CALL(NJ, 4); break;                               \
        case 3: GW_CALL(NJ, 3); break;                               \
        case 2: GW_CALL(NJ, 2); break;                               \
        default: GW_CALL(NJ, 1); break;                              \
        }                                                            \
    } while (0)
#else
#define GW_NVS(NJ) do { if (nv > 1) GW_CALL(NJ, 2); else GW_CALL(NJ, 1); } while (0)
#endif
static FC_NOINLINE void SFX(tile_dispatch)(int nj, int nv, const T *gyt, const T *xs,
                                          const int64_t *off, const int64_t *pb, int64_t P,
                                          int first, T *acc) {
    switch (nj) {
    case 6: GW_NVS(6); break;
    case 5: GW_NVS(5); break;
    case 4: GW_NVS(4); break;
    case 3: GW_NVS(3); break;
    case 2: GW_NVS(2); break;
    default: GW_NVS(1); break;
    }
}
#undef GW_NVS
#undef GW_CALL

static inline int64_t SFX(rows_in)(const fc_conv_shape *s, int64_t rows) {
    return (rows - 1) * s->stride_h + (s->kh - 1) * s->dil_h + 1;
}

/* P grad_out pixels of nco channels (channel c at src + c*po), transposed
 * to gyt[pixel][NCO]; lanes past nco are zero.  Whole TR x TR blocks
 * through register transposes, the rest element-wise. */
static void SFX(transpose)(T *gyt, const T *src, int64_t po, int nco, int64_t P) {
    const int full = nco / TR * TR;
    int64_t p = 0;
    int c, cb;
    /* channel blocks outer: each block's TR source rows are read through
     * in turn (all nco rows at once, often a multiple of 1 KB apart, would
     * share a few L1 sets) */
    for (cb = 0; cb < full; cb += TR)
        for (p = 0; p + TR <= P; p += TR) SFX(tr)(src + cb * po + p, po, gyt + p * NCO + cb, NCO);
    p = P / TR * TR;
    for (c = 0; c < NCO; c++) {
        const T *sp = src + c * po;
        int64_t q;
        if (c < nco)
            for (q = c < full ? p : 0; q < P; q++) gyt[q * NCO + c] = sp[q];
        else
            for (q = 0; q < P; q++) gyt[q * NCO + c] = 0;
    }
}

/* acc[K][NCO] -> gw: channel c's K values at dst + c*ds. */
static void SFX(write)(const T *acc, int64_t K, int nco, T *dst, int64_t ds) {
    const int full = nco / TR * TR;
    int64_t k = 0;
    int c, cb;
    for (; k + TR <= K; k += TR)
        for (cb = 0; cb < full; cb += TR) SFX(tr)(acc + k * NCO + cb, NCO, dst + cb * ds + k, ds);
    for (c = 0; c < nco; c++) {
        int64_t q;
        for (q = c < full ? k : 0; q < K; q++) dst[c * ds + q] = acc[q * NCO + c];
    }
}

/* Rows [ih_s, ih_s + rows_b) x cols [-pad_w, -pad_w + wb) of cb channels
 * of nn images (channel c of image m at ximg + (m*c_in + c)*plane_in),
 * zero-padded, into xb (channel stride cs, image stride is).  Rows are
 * short: inline vector loops, not memset/memcpy calls; the zeroing may run
 * VL-1 past the row (what follows is written after it, in this order, and
 * the block has VL slack). */
static void SFX(copy)(T *xb, int64_t cs, int64_t is, const T *ximg, const fc_conv_shape *s,
                      int64_t cb, int64_t nn, int64_t ih_s, int64_t rows_b, int64_t wb) {
    const int64_t plane_in = s->h_in * s->w_in;
    const int64_t c_lo = FC_MIN(wb, FC_MAX(0, s->pad_w));
    const int64_t c_hi = FC_MAX(c_lo, FC_MIN(wb, s->w_in + s->pad_w));
    int64_t c, m, i, q;
    for (c = 0; c < cb; c++)
        for (m = 0; m < nn; m++) {
            const T *xp = ximg + (m * s->c_in + c) * plane_in - s->pad_w;
            for (i = 0; i < rows_b; i++) {
                T *dst = xb + c * cs + m * is + i * wb;
                const int64_t ih = ih_s + i;
                for (q = 0; q < wb; q += VL) V_STOREU(dst + q, V_ZERO());
                if (ih < 0 || ih >= s->h_in) continue;
                for (q = c_lo; q + VL <= c_hi; q += VL) V_STOREU(dst + q, V_LOADU(xp + ih * s->w_in + q));
                for (; q < c_hi; q++) dst[q] = xp[ih * s->w_in + q];
            }
        }
}

/* The rows of grad_out and x the next chunk reads (they are read with large
 * strides, one run per channel: more streams than the hardware prefetcher
 * follows), prefetched into L2 a few rows per tile while this chunk
 * computes.  Row r < nn*ngc is grad_out channel r % ngc of image r / ngc,
 * the rest input channels. */
typedef struct {
    const char *g, *x;        /* first row of each kind */
    int64_t gi, gc, glines;   /* image and channel strides (bytes), lines per row */
    int64_t xi, xc, xlines;
    int64_t nn, ngc, nxc, rows, per;  /* images, channels, rows, rows per tile */
} SFX(pf);

static inline void SFX(prefetch)(const SFX(pf) *f, int64_t tile) {
    const int64_t r1 = FC_MIN(f->rows, (tile + 1) * f->per), ng = f->nn * f->ngc;
    int64_t r, l;
    for (r = tile * f->per; r < r1; r++) {
        const char *row;
        int64_t nl;
        if (r < ng) { row = f->g + (r / f->ngc) * f->gi + (r % f->ngc) * f->gc; nl = f->glines; }
        else { row = f->x + ((r - ng) / f->nxc) * f->xi + ((r - ng) % f->nxc) * f->xc; nl = f->xlines; }
        for (l = 0; l < nl; l++) _mm_prefetch(row + 64 * l, _MM_HINT_T1);
    }
}

/* A chunk of the reduction is ni whole images (small planes) or `rows`
 * output rows of one image; fixed by the shape alone. */
static fc_status SFX(run)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x, T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t khkw = s->kh * s->kw, ho = s->h_out, wo = s->w_out;
    const int64_t plane_in = s->h_in * s->w_in, plane_out = ho * wo;
    const int64_t xmax = GW_XBYTES / (int64_t)sizeof(T);
    int64_t rows, nrc, ni, nic, wb, rows_b, img_b, plane_b, cib, nkb, ncob, ncog, G, ntask, t64;
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
    rows_b = SFX(rows_in)(s, rows);
    /* whole planes smaller than half a chunk: several images per chunk */
    ni = nrc == 1 ? FC_MAX(1, FC_MIN(s->n, GW_PTARGET / plane_out)) : 1;
    if (copy)
        while (ni > 1 && ni * rows_b * wb > xmax) ni--;
    nic = (s->n + ni - 1) / ni;
    ni = (s->n + nic - 1) / nic;
    img_b = copy ? rows_b * wb : s->c_in * plane_in;  /* image stride in the block */
    plane_b = copy ? ni * rows_b * wb : plane_in;      /* channel stride */
    if (copy && plane_b > xmax) return FC_NOT_HANDLED;
    cib = GW_KMAX / khkw;
    if (copy) cib = FC_MIN(cib, xmax / plane_b);
    /* one image of the block's input channels stays in L2 for the next
     * task (same channels, next co-block); 0: no bound */
    if (GW_L2_BYTES > 0) cib = FC_MIN(cib, GW_L2_BYTES / (plane_in * (int64_t)sizeof(T)));
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
        FC_ALIGNED(64) T acc[GW_ACC_COMBOS * NCO];
        FC_ALIGNED(64) T gyt[GW_PMAX * NCO];
        FC_ALIGNED(64) T xb[GW_XBYTES / sizeof(T) + VL];
        int64_t off[GW_KMAX];
        int64_t pb[GW_PMAX];
        const int64_t wrow = copy ? wb : s->w_in, pimg = rows * wo;
        int64_t task, p;
        /* input offset of each pixel of a chunk from the chunk's start */
        for (p = 0; p < ni * pimg; p++)
            pb[p] = (p / pimg) * img_b + ((p % pimg) / wo) * s->stride_h * wrow + (p % wo) * s->stride_w;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            /* co-block group fastest: consecutive tasks of a thread read the
             * same input channels, which then come from L2 */
            const int64_t cg0 = (task % ncog) * G, kb = (task / ncog) % nkb, g = task / (nkb * ncog);
            const int64_t ng = FC_MIN(G, ncob - cg0);
            const int64_t ci0 = kb * cib, cb = FC_MIN(cib, cig - ci0), K = cb * khkw;
            int64_t ch, k, c, i, j, cc, im;
            if (cb <= 0) continue;
            for (c = 0; c < cb; c++)
                for (i = 0; i < s->kh; i++)
                    for (j = 0; j < s->kw; j++)
                        off[(c * s->kh + i) * s->kw + j] = c * plane_b + i * s->dil_h * wrow + j * s->dil_w;
            for (ch = 0; ch < nic * nrc; ch++) {
                const int64_t n0 = (ch / nrc) * ni, rc = ch % nrc, nn = FC_MIN(ni, s->n - n0);
                const int64_t r0 = rc * rows, R = FC_MIN(ho, r0 + rows) - r0;
                const T *ximg = x + (n0 * s->c_in + g * cig + ci0) * plane_in;
                const T *xs;
                SFX(pf) f;
                int64_t tile = 0;
                f.rows = 0;
                if (ch + 1 < nic * nrc) {  /* what the next chunk reads */
                    const int64_t n1 = ((ch + 1) / nrc) * ni, q0 = ((ch + 1) % nrc) * rows;
                    const int64_t q1 = FC_MIN(ho, q0 + rows);
                    const int64_t ih0 = FC_MAX(0, q0 * s->stride_h - s->pad_h);
                    const int64_t ih1 = FC_MIN(s->h_in, (q1 - 1) * s->stride_h - s->pad_h +
                                                            (s->kh - 1) * s->dil_h + 1);
                    f.nn = FC_MIN(ni, s->n - n1);
                    f.ngc = FC_MIN(ng * NCO, cog - cg0 * NCO);
                    f.nxc = cb;
                    f.g = (const char *)(gy + (n1 * s->c_out + g * cog + cg0 * NCO) * plane_out + q0 * wo);
                    f.gi = s->c_out * plane_out * (int64_t)sizeof(T);
                    f.gc = plane_out * (int64_t)sizeof(T);
                    f.glines = ((q1 - q0) * wo * (int64_t)sizeof(T) + 63) / 64 + 1;
                    f.x = (const char *)(x + (n1 * s->c_in + g * cig + ci0) * plane_in + ih0 * s->w_in);
                    f.xi = s->c_in * plane_in * (int64_t)sizeof(T);
                    f.xc = plane_in * (int64_t)sizeof(T);
                    f.xlines = ih1 > ih0 ? ((ih1 - ih0) * s->w_in * (int64_t)sizeof(T) + 63) / 64 + 1 : 0;
                    f.rows = f.nn * (f.ngc + f.nxc);
                    f.per = (f.rows + ng * ((K + GW_NJ - 1) / GW_NJ) - 1) / (ng * ((K + GW_NJ - 1) / GW_NJ));
                }
                if (copy) {
                    SFX(copy)(xb, plane_b, img_b, ximg, s, cb, nn, r0 * s->stride_h - s->pad_h,
                              SFX(rows_in)(s, R), wb);
                    xs = xb;
                } else {
                    xs = ximg + r0 * s->stride_h * s->w_in;
                }
                for (cc = 0; cc < ng; cc++) {
                    const int64_t co_abs = g * cog + (cg0 + cc) * NCO;
                    const int nco = (int)FC_MIN(NCO, cog - (cg0 + cc) * NCO);
                    const int nv = (nco + VL - 1) / VL;
                    T *a = acc + cc * K * NCO;
                    for (im = 0; im < nn; im++)
                        SFX(transpose)(gyt + im * R * wo * NCO,
                                       gy + ((n0 + im) * s->c_out + co_abs) * plane_out + r0 * wo,
                                       plane_out, nco, R * wo);
                    for (k = 0; k < K; k += GW_NJ, tile++) {
                        if (f.rows) SFX(prefetch)(&f, tile);
                        SFX(tile_dispatch)((int)FC_MIN(GW_NJ, K - k), nv, gyt, xs, off + k, pb,
                                           nn * R * wo, ch == 0, a + k * NCO);
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
