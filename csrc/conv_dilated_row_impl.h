/* Row kernels of the dilated algorithm, written once for element type T
 * (vector V of VL lanes, names through SFX) and tile geometry (MR, GMR,
 * GNC).  Included by conv_dilated_row_avx2.c and conv_dilated_row_avx512.c;
 * the design is in conv_dilated_row.h.
 *
 * Forward and grad input are the same kernel ("row convolution"):
 *
 *   out[o][j] = init[o] + sum_{b in taps(j)} sum_i W[o][i][b] * in[i][j + base + b*step]
 *
 * forward: in = x, base = -pad, step = dil;  grad input: in = grad_out,
 * base = pad, step = -dil, W transposed.  The micro-tile is MR output rows
 * x 3 vectors of consecutive columns: per (tap, input row) three vector
 * loads of `in`, MR weight broadcasts into a register, each feeding three
 * FMAs.  Each output is summed in a fixed order (init, then taps ascending,
 * each over input rows ascending) and written by one thread: results do not
 * depend on the thread count.
 *
 * Grad weight: gw[o][i][b] = sum_j gy[o][j] * x[i][j - pad + b*dil] over the
 * valid j, as GMR x GNC vector accumulators (output x input channels) whose
 * lanes hold the partial sums of columns j = j0 + lane (mod VL); the column
 * range is walked in fixed chunks (gy and x slices stay in L1/L2) and the
 * lanes are added in order at the end.
 *
 * The including file defines, besides the vector ops: MASK / SFX(mask)(n)
 * (lanes [0, n) set), V_MLOAD (masked load, zero elsewhere) and V_INREG(v)
 * (keeps a broadcast in a register: an FMA with an embedded broadcast
 * costs a load uop per use). */

#define NV 3                  /* vectors of columns per forward tile */
#define TW (NV * VL)          /* columns of a full tile */
/* Columns per work item (forward / grad input; FC_DRK_CW_TILES set by the includer):
 * its input columns (all channels, every tap) stay in L1 across the
 * output-row blocks; 2 AVX2 tiles measured faster than 1 or 4 (4 overflows
 * L1 with 64 channels x 2 taps). */
#define CW (FC_DRK_CW_TILES * TW)
#define JC (64 * VL)          /* grad weight: columns per chunk */

/* out[r][0, ncols) for r < nrows; `in` points at column 0 of input row 0 for
 * tap 0 of the segment; wp at the segment's first tap, (tap, row) x MR. */
static FC_AI void SFX(tile)(const int nv, const int masked, const T *in, int64_t ld, int64_t nin,
                            int64_t step, int64_t ntap, const T *wp, const T *init, T *out,
                            int64_t ldo, int64_t nrows, int64_t ncols) {
    V a[MR][NV];
    const MASK m = SFX(mask)(masked ? ncols - (nv - 1) * VL : VL);
    int64_t t, i;
    int r, c;
#pragma GCC unroll 16
    for (r = 0; r < MR; r++) {
        const V b = V_SET1(init[r]);
#pragma GCC unroll 4
        for (c = 0; c < NV; c++) a[r][c] = b;
    }
    for (t = 0; t < ntap; t++) {
        const T *xp = in + t * step;
        const T *wq = wp + t * nin * MR;
        for (i = 0; i < nin; i++, xp += ld, wq += MR) {
            V xv[NV];
#pragma GCC unroll 4
            for (c = 0; c < NV; c++)
                xv[c] = c >= nv ? V_ZERO() : (masked && c == nv - 1) ? V_MLOAD(xp + c * VL, m)
                                                                    : V_LOADU(xp + c * VL);
#pragma GCC unroll 16
            for (r = 0; r < MR; r++) {
                V wv = V_SET1(wq[r]);
                V_INREG(wv);
#pragma GCC unroll 4
                for (c = 0; c < NV; c++)
                    if (c < nv) a[r][c] = V_FMA(xv[c], wv, a[r][c]);
            }
        }
    }
    if (!masked && nv == NV && nrows == MR) {
#pragma GCC unroll 16
        for (r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (c = 0; c < NV; c++) V_STOREU(out + r * ldo + c * VL, a[r][c]);
    } else {
        /* partial tile: through a stack buffer (masked stores are slow on AMD) */
        FC_ALIGNED(64) T buf[MR][TW];
#pragma GCC unroll 16
        for (r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (c = 0; c < NV; c++) V_STOREU(buf[r] + c * VL, a[r][c]);
        for (r = 0; r < nrows; r++) memcpy(out + r * ldo, buf[r], (size_t)ncols * sizeof(T));
    }
}

static FC_NOINLINE void SFX(tile_full)(const T *in, int64_t ld, int64_t nin, int64_t step,
                                       int64_t ntap, const T *wp, const T *init, T *out,
                                       int64_t ldo, int64_t nrows) {
    SFX(tile)(NV, 0, in, ld, nin, step, ntap, wp, init, out, ldo, nrows, TW);
}

static FC_NOINLINE void SFX(tile_tail)(const T *in, int64_t ld, int64_t nin, int64_t step,
                                       int64_t ntap, const T *wp, const T *init, T *out,
                                       int64_t ldo, int64_t nrows, int64_t ncols) {
    switch ((ncols + VL - 1) / VL) {
    case 3: SFX(tile)(3, 1, in, ld, nin, step, ntap, wp, init, out, ldo, nrows, ncols); break;
    case 2: SFX(tile)(2, 1, in, ld, nin, step, ntap, wp, init, out, ldo, nrows, ncols); break;
    default: SFX(tile)(1, 1, in, ld, nin, step, ntap, wp, init, out, ldo, nrows, ncols); break;
    }
}

typedef struct { int64_t j0, j1, blo, bhi; } SFX(seg);

/* Cut [0, len_out) into segments with a constant range [blo, bhi) of taps b
 * whose column j + base + b*step lies in [0, len_in) (a contiguous range:
 * the condition is linear in b).  At most 2*kw + 1 segments. */
static int SFX(segments)(int64_t len_out, int64_t len_in, int64_t base, int64_t step, int64_t kw,
                         SFX(seg) *sg) {
    int64_t pts[2 * FC_DRK_MAXKW + 2];
    int np = 0, i, k, ns = 0;
    pts[np++] = 0;
    pts[np++] = len_out;
    for (k = 0; k < kw; k++) {
        const int64_t lo = -base - k * step, hi = len_in - base - k * step;
        pts[np++] = FC_MIN(len_out, FC_MAX((int64_t)0, lo));
        pts[np++] = FC_MIN(len_out, FC_MAX((int64_t)0, hi));
    }
    for (i = 1; i < np; i++) {   /* insertion sort, np <= 2*kw + 2 */
        const int64_t v = pts[i];
        int j = i - 1;
        while (j >= 0 && pts[j] > v) { pts[j + 1] = pts[j]; j--; }
        pts[j + 1] = v;
    }
    for (i = 0; i + 1 < np; i++) {
        const int64_t j0 = pts[i], j1 = pts[i + 1];
        int64_t blo = -1, bhi = -1;
        if (j1 <= j0) continue;
        for (k = 0; k < kw; k++) {
            const int64_t c = j0 + base + k * step;
            if (c >= 0 && c < len_in) {
                if (blo < 0) blo = k;
                bhi = k + 1;
            }
        }
        sg[ns].j0 = j0;
        sg[ns].j1 = j1;
        sg[ns].blo = blo < 0 ? 0 : blo;
        sg[ns].bhi = blo < 0 ? 0 : bhi;
        ns++;
    }
    return ns;
}

/* The row convolution over nimg images of `groups` groups (input rows
 * nin per group, output rows nout per group); wp packed as
 * [g][ob][b][i][MR] (zero rows past nout). */
static void SFX(run)(fc_context *ctx, int64_t nimg, int64_t groups, int64_t nin, int64_t nout,
                     int64_t kw, const T *in, int64_t len_in, T *out, int64_t len_out,
                     int64_t base, int64_t step, const T *wp, const T *bias) {
    SFX(seg) sg[2 * FC_DRK_MAXKW + 1];
    int64_t cstart[2 * FC_DRK_MAXKW + 2];
    const int64_t nob = (nout + MR - 1) / MR;
    const int ns = SFX(segments)(len_out, len_in, base, step, kw, sg);
    int64_t nch = 0, items, it;
    int k, t;
    for (k = 0; k < ns; k++) {
        cstart[k] = nch;
        nch += (sg[k].j1 - sg[k].j0 + CW - 1) / CW;
    }
    cstart[ns] = nch;
    items = nimg * groups * nch;   /* <= output elements: fits */
    t = fc_threads_for(ctx, items);
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < items; it++) {
        fc_fpmode fp = fc_fpmode_enter();
        const int64_t ch = it % nch, g = (it / nch) % groups, n = it / (nch * groups);
        const T *inimg = in + (n * groups + g) * nin * len_in;
        T *outimg = out + (n * groups + g) * nout * len_out;
        int64_t ob, j0, j1, ntap, j;
        int sk = 0;
        while (cstart[sk + 1] <= ch) sk++;
        j0 = sg[sk].j0 + (ch - cstart[sk]) * CW;
        j1 = FC_MIN(sg[sk].j1, j0 + CW);
        ntap = sg[sk].bhi - sg[sk].blo;
        /* (Software prefetch of the next chunk, spread over the row blocks,
         * measured slower on the Sapphire-Rapids class core: its index
         * arithmetic cost more than it hid; the hardware prefetcher copes.) */
        for (ob = 0; ob < nob; ob++) {
            const int64_t nrows = FC_MIN((int64_t)MR, nout - ob * MR);
            const T *w_ob = wp + ((g * nob + ob) * kw + sg[sk].blo) * nin * MR;
            T *o = outimg + ob * MR * len_out;
            T init[MR];
            int64_t r;
            for (r = 0; r < MR; r++) init[r] = (bias && r < nrows) ? bias[g * nout + ob * MR + r] : (T)0;
            if (ntap == 0) {   /* every tap on padding */
                for (r = 0; r < nrows; r++)
                    for (j = j0; j < j1; j++) o[r * len_out + j] = init[r];
                continue;
            }
            for (j = j0; j + TW <= j1; j += TW)
                SFX(tile_full)(inimg + j + base + sg[sk].blo * step, len_in, nin, step, ntap, w_ob,
                               init, o + j, len_out, nrows);
            if (j < j1)
                SFX(tile_tail)(inimg + j + base + sg[sk].blo * step, len_in, nin, step, ntap, w_ob,
                               init, o + j, len_out, nrows, j1 - j);
        }
        fc_fpmode_leave(fp);
    }
}

/* Packs W as [g][ob][b][i][MR]: forward (tr = 0) W[o][i][b] = w[g*cog + o][i][b],
 * grad input (tr = 1) W[o][i][b] = w[g*cog + i][o][b] (o an input channel). */
static void SFX(pack)(const fc_conv_shape *s, int tr, const T *w, T *wp) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups, kw = s->kw;
    const int64_t nout = tr ? cig : cog, nin = tr ? cog : cig, nob = (nout + MR - 1) / MR;
    int64_t g, ob, b, i, r;
    for (g = 0; g < s->groups; g++)
        for (ob = 0; ob < nob; ob++)
            for (b = 0; b < kw; b++)
                for (i = 0; i < nin; i++) {
                    T *dst = wp + (((g * nob + ob) * kw + b) * nin + i) * MR;
                    for (r = 0; r < MR; r++) {
                        const int64_t o = ob * MR + r;
                        dst[r] = o >= nout ? (T)0
                               : tr ? w[((g * cog + i) * cig + o) * kw + b]
                                    : w[((g * cog + o) * cig + i) * kw + b];
                    }
                }
}

static fc_status SFX(forward)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                              const T *bias, T *y) {
    int64_t elems;
    T *wp;
    if (!fc_drk_plan(ctx, s, (int)sizeof(T), 0, &elems)) return FC_NOT_HANDLED;
    wp = (T *)fc_ws_alloc(ctx, elems * (int64_t)sizeof(T));
    if (!wp) return FC_ERR_NOMEM;
    SFX(pack)(s, 0, w, wp);
    SFX(run)(ctx, s->n, s->groups, s->c_in / s->groups, s->c_out / s->groups, s->kw, x, s->w_in,
             y, s->w_out, -s->pad_w, s->dil_w, wp, bias);
    fc_ws_free(ctx, wp, elems * (int64_t)sizeof(T));
    return FC_OK;
}

static fc_status SFX(grad_input)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *w,
                                 T *gx) {
    int64_t elems;
    T *wp;
    if (!fc_drk_plan(ctx, s, (int)sizeof(T), 1, &elems)) return FC_NOT_HANDLED;
    wp = (T *)fc_ws_alloc(ctx, elems * (int64_t)sizeof(T));
    if (!wp) return FC_ERR_NOMEM;
    SFX(pack)(s, 1, w, wp);
    SFX(run)(ctx, s->n, s->groups, s->c_out / s->groups, s->c_in / s->groups, s->kw, gy, s->w_out,
             gx, s->w_in, s->pad_w, -s->dil_w, wp, NULL);
    fc_ws_free(ctx, wp, elems * (int64_t)sizeof(T));
    return FC_OK;
}

/* acc[r][c] += sum over the columns of g[r][j] * x[c][j]: nvec full
 * vectors, then `tail` (< VL) masked columns; per vector GNC x loads, GMR
 * gy loads, GMR * GNC FMAs. */
static FC_NOINLINE void SFX(tile_gw)(const T *const *g, const T *const *x, int64_t nvec,
                                     int64_t tail, T *acc) {
    V a[GMR][GNC];
    int64_t v, o;
    int r, c;
#pragma GCC unroll 16
    for (r = 0; r < GMR; r++)
#pragma GCC unroll 16
        for (c = 0; c < GNC; c++) a[r][c] = V_LOADU(acc + (r * GNC + c) * VL);
#define FC_DRK_GW(LD)                                                                   \
    {                                                                                   \
        V xv[GNC];                                                                      \
        _Pragma("GCC unroll 16")                                                        \
        for (c = 0; c < GNC; c++) xv[c] = LD(x[c] + o);                                 \
        _Pragma("GCC unroll 16")                                                        \
        for (r = 0; r < GMR; r++) {                                                     \
            const V gv = LD(g[r] + o);                                                  \
            _Pragma("GCC unroll 16")                                                    \
            for (c = 0; c < GNC; c++) a[r][c] = V_FMA(gv, xv[c], a[r][c]);              \
        }                                                                               \
    }
    for (v = 0, o = 0; v < nvec; v++, o += VL) FC_DRK_GW(V_LOADU)
    if (tail > 0) {
        const MASK m = SFX(mask)(tail);
#define FC_DRK_ML(p) V_MLOAD((p), m)
        FC_DRK_GW(FC_DRK_ML)
#undef FC_DRK_ML
    }
#undef FC_DRK_GW
#pragma GCC unroll 16
    for (r = 0; r < GMR; r++)
#pragma GCC unroll 16
        for (c = 0; c < GNC; c++) V_STOREU(acc + (r * GNC + c) * VL, a[r][c]);
}

static fc_status SFX(grad_weight)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x,
                                  T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups, kw = s->kw;
    const int64_t nob = (cog + GMR - 1) / GMR, ncb = (cig + GNC - 1) / GNC;
    const int64_t w_in = s->w_in, w_out = s->w_out, nchk = (w_out + JC - 1) / JC;
    const int64_t items = s->groups * nob * kw, tl = GMR * GNC * VL;
    int64_t elems, g, co, ci, b;
    T *acc;
    int t;
    if (!fc_drk_plan(ctx, s, (int)sizeof(T), 2, &elems)) return FC_NOT_HANDLED;
    acc = (T *)fc_ws_alloc(ctx, elems * (int64_t)sizeof(T));
    if (!acc) return FC_ERR_NOMEM;
    memset(acc, 0, (size_t)elems * sizeof(T));
    t = fc_threads_for(ctx, items);
    (void)t;
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t n, c;
        for (n = 0; n < s->n; n++)
            for (c = 0; c < nchk; c++) {
                int64_t it;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (it = 0; it < items; it++) {
                    const int64_t bb = it % kw, ob = (it / kw) % nob, gg = it / (kw * nob);
                    const int64_t off = bb * s->dil_w - s->pad_w;   /* x column of output j: j + off */
                    /* valid j: 0 <= j + off < w_in, within the chunk */
                    const int64_t js = FC_MAX(c * JC, FC_MAX((int64_t)0, -off));
                    const int64_t je = FC_MIN(FC_MIN(w_out, (c + 1) * JC), w_in - off);
                    const int64_t nrows = FC_MIN((int64_t)GMR, cog - ob * GMR);
                    const T *gyr, *xr;
                    int64_t cb;
                    if (je <= js) continue;
                    gyr = gy + (n * s->c_out + gg * cog + ob * GMR) * w_out + js;
                    xr = x + (n * s->c_in + gg * cig) * w_in + js + off;
                    for (cb = 0; cb < ncb; cb++) {
                        const int64_t c0 = cb * GNC, ncols = FC_MIN((int64_t)GNC, cig - c0);
                        const T *gr[GMR], *xc[GNC];
                        int k;
                        /* rows past the group's end repeat the last one (results unused) */
                        for (k = 0; k < GMR; k++) gr[k] = gyr + FC_MIN((int64_t)k, nrows - 1) * w_out;
                        for (k = 0; k < GNC; k++) xc[k] = xr + (c0 + FC_MIN((int64_t)k, ncols - 1)) * w_in;
                        SFX(tile_gw)(gr, xc, (je - js) / VL, (je - js) % VL,
                                     acc + (((gg * nob + ob) * kw + bb) * ncb + cb) * tl);
                    }
                }
            }
        fc_fpmode_leave(fp);
    }
    /* lanes added in order */
    for (g = 0; g < s->groups; g++)
        for (co = 0; co < cog; co++)
            for (ci = 0; ci < cig; ci++)
                for (b = 0; b < kw; b++) {
                    const int64_t ob = co / GMR, cb = ci / GNC;
                    const T *a = acc + (((g * nob + ob) * kw + b) * ncb + cb) * tl +
                                 ((co % GMR) * GNC + ci % GNC) * VL;
                    T sum = a[0];
                    int l;
                    for (l = 1; l < VL; l++) sum += a[l];
                    gw[((g * cog + co) * cig + ci) * kw + b] = sum;
                }
    fc_ws_free(ctx, acc, elems * (int64_t)sizeof(T));
    return FC_OK;
}

#undef NV
#undef TW
#undef CW
#undef JC

/* The entry points (declared in conv_dilated_row.h), named by EXPORT. */
fc_status EXPORT(forward)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                          const T *bias, T *y) {
    return SFX(forward)(ctx, s, x, w, bias, y);
}
fc_status EXPORT(grad_input)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *w,
                             T *gx) {
    return SFX(grad_input)(ctx, s, gy, w, gx);
}
fc_status EXPORT(grad_weight)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x,
                              T *gw) {
    return SFX(grad_weight)(ctx, s, gy, x, gw);
}
