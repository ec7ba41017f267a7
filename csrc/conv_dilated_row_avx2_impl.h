/* Row kernels of the dilated algorithm, written once for element type T
 * (vector V of VL lanes, names through SFX).  Included by
 * conv_dilated_row_avx2.c only; the design is in conv_dilated_row.h.
 *
 * Forward and grad input are the same kernel ("row convolution"):
 *
 *   out[o][j] = init[o] + sum_{b in taps(j)} sum_i W[o][i][b] * in[i][j + base + b*step]
 *
 * forward: in = x, base = -pad, step = dil;  grad input: in = grad_out,
 * base = pad, step = -dil, W transposed.  The micro-tile is 4 output rows x
 * 3 vectors of consecutive columns (12 accumulators): per (tap, input row)
 * three vector loads of `in`, four weight broadcasts, twelve FMAs.  Each
 * output is summed in a fixed order (init, then taps ascending, each over
 * input rows ascending) and written by one thread: results do not depend on
 * the thread count.
 *
 * Grad weight: gw[o][i][b] = sum_j gy[o][j] * x[i][j - pad + b*dil] over the
 * valid j, as 12 vector accumulators (4 output x 3 input channels) whose
 * lanes hold the partial sums of columns j = j0 + lane (mod VL); the column
 * range is walked in fixed chunks (gy and x slices stay in L1/L2) and the
 * lanes are added in order at the end. */

#define MR FC_DRK_MR
#define NC FC_DRK_NC
#define TW (3 * VL)           /* columns of a full tile */
/* Columns per work item (forward / grad input): its input columns (all
 * channels, every tap) stay in L1 across the output-row blocks; 2 tiles
 * measured faster than 1 or 4 (4 overflows L1 with 64 channels x 2 taps). */
#define CW (2 * TW)
#define JC (64 * VL)          /* grad weight: columns per chunk */

static const MASKINT SFX(mtab)[2 * VL] = V_MASK_TAB;

/* Lanes [0, n) set, 0 < n <= VL. */
static FC_AI MASK SFX(mask)(int64_t n) {
    return MASK_LOAD(SFX(mtab) + VL - n);
}

/* out[r][0, ncols) for r < nrows; `in` points at column 0 of input row 0 for
 * tap 0 of the segment; wp at the segment's first tap, (tap, row) x MR. */
static FC_AI void SFX(tile)(const int nv, const int masked, const T *in, int64_t ld, int64_t nin,
                            int64_t step, int64_t ntap, const T *wp, const T *init, T *out,
                            int64_t ldo, int64_t nrows, int64_t ncols) {
    V a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32;
    const MASK m = SFX(mask)(masked ? ncols - (nv - 1) * VL : VL);
    int64_t t, i;
    a00 = a01 = a02 = V_SET1(init[0]);
    a10 = a11 = a12 = V_SET1(init[1]);
    a20 = a21 = a22 = V_SET1(init[2]);
    a30 = a31 = a32 = V_SET1(init[3]);
    for (t = 0; t < ntap; t++) {
        const T *xp = in + t * step;
        const T *wq = wp + t * nin * MR;
        for (i = 0; i < nin; i++, xp += ld, wq += MR) {
            const V x0 = (nv == 1 && masked) ? V_MLOAD(xp, m) : V_LOADU(xp);
            const V x1 = nv > 1 ? ((nv == 2 && masked) ? V_MLOAD(xp + VL, m) : V_LOADU(xp + VL)) : V_ZERO();
            const V x2 = nv > 2 ? (masked ? V_MLOAD(xp + 2 * VL, m) : V_LOADU(xp + 2 * VL)) : V_ZERO();
            V wv;
#define FC_DRK_ROW(r)                                                   \
            wv = V_SET1(wq[r]);                                         \
            a##r##0 = V_FMA(x0, wv, a##r##0);                           \
            if (nv > 1) a##r##1 = V_FMA(x1, wv, a##r##1);               \
            if (nv > 2) a##r##2 = V_FMA(x2, wv, a##r##2);
            FC_DRK_ROW(0) FC_DRK_ROW(1) FC_DRK_ROW(2) FC_DRK_ROW(3)
#undef FC_DRK_ROW
        }
    }
    if (!masked && nv == 3 && nrows == MR) {
        V_STOREU(out, a00); V_STOREU(out + VL, a01); V_STOREU(out + 2 * VL, a02);
        out += ldo;
        V_STOREU(out, a10); V_STOREU(out + VL, a11); V_STOREU(out + 2 * VL, a12);
        out += ldo;
        V_STOREU(out, a20); V_STOREU(out + VL, a21); V_STOREU(out + 2 * VL, a22);
        out += ldo;
        V_STOREU(out, a30); V_STOREU(out + VL, a31); V_STOREU(out + 2 * VL, a32);
    } else {
        /* partial tile: through a stack buffer (masked stores are slow on AMD) */
        FC_ALIGNED(32) T buf[MR][TW];
        int64_t r;
        V_STOREU(buf[0], a00); V_STOREU(buf[0] + VL, a01); V_STOREU(buf[0] + 2 * VL, a02);
        V_STOREU(buf[1], a10); V_STOREU(buf[1] + VL, a11); V_STOREU(buf[1] + 2 * VL, a12);
        V_STOREU(buf[2], a20); V_STOREU(buf[2] + VL, a21); V_STOREU(buf[2] + 2 * VL, a22);
        V_STOREU(buf[3], a30); V_STOREU(buf[3] + VL, a31); V_STOREU(buf[3] + 2 * VL, a32);
        for (r = 0; r < nrows; r++) memcpy(out + r * ldo, buf[r], (size_t)ncols * sizeof(T));
    }
}

static FC_NOINLINE void SFX(tile_full)(const T *in, int64_t ld, int64_t nin, int64_t step,
                                       int64_t ntap, const T *wp, const T *init, T *out,
                                       int64_t ldo, int64_t nrows) {
    SFX(tile)(3, 0, in, ld, nin, step, ntap, wp, init, out, ldo, nrows, TW);
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
        /* The rows are a large stride apart (one per channel), too many
         * streams for the hardware prefetcher: prefetch the next chunk's
         * input columns (this segment's taps) and output columns, spread
         * over the output-row blocks of this one. */
        int64_t pf_n = 0, pf_per = 0, pf_done = 0;
        const int64_t pf_lines = (CW * (int64_t)sizeof(T) + 63) / 64 + 1;
        if (j1 < len_out) {
            pf_n = (ntap * nin + nout) * pf_lines;
            pf_per = (pf_n + nob - 1) / nob;
        }
        for (ob = 0; ob < nob; ob++) {
            const int64_t pf_end = FC_MIN(pf_n, pf_done + pf_per);
            for (; pf_done < pf_end; pf_done++) {
                const int64_t row = pf_done / pf_lines, line = pf_done % pf_lines;
                int64_t col;
                const char *p;
                if (row < ntap * nin) {
                    const int64_t tt = row / nin, i = row % nin;
                    col = j1 + base + (sg[sk].blo + tt) * step + line * (64 / (int64_t)sizeof(T));
                    if (col < 0 || col >= len_in) continue;
                    p = (const char *)(inimg + i * len_in + col);
                    _mm_prefetch(p, _MM_HINT_T0);
                } else {
                    col = j1 + line * (64 / (int64_t)sizeof(T));
                    if (col >= len_out) continue;
                    p = (const char *)(outimg + (row - ntap * nin) * len_out + col);
                    __builtin_prefetch(p, 1, 3);
                }
            }
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

/* acc[r][c] += sum over the columns of g_r[j] * x_c[j]: nvec full vectors,
 * then `tail` (< VL) masked columns. */
static FC_NOINLINE void SFX(tile_gw)(const T *g0, const T *g1, const T *g2, const T *g3,
                                     const T *x0, const T *x1, const T *x2, int64_t nvec,
                                     int64_t tail, T *acc) {
    V a00 = V_LOADU(acc + 0 * VL), a01 = V_LOADU(acc + 1 * VL), a02 = V_LOADU(acc + 2 * VL);
    V a10 = V_LOADU(acc + 3 * VL), a11 = V_LOADU(acc + 4 * VL), a12 = V_LOADU(acc + 5 * VL);
    V a20 = V_LOADU(acc + 6 * VL), a21 = V_LOADU(acc + 7 * VL), a22 = V_LOADU(acc + 8 * VL);
    V a30 = V_LOADU(acc + 9 * VL), a31 = V_LOADU(acc + 10 * VL), a32 = V_LOADU(acc + 11 * VL);
    int64_t v, o;
#define FC_DRK_GW(LD)                                                                   \
    {                                                                                   \
        const V xa = LD(x0 + o), xb = LD(x1 + o), xc = LD(x2 + o);                      \
        V gv;                                                                           \
        gv = LD(g0 + o); a00 = V_FMA(gv, xa, a00); a01 = V_FMA(gv, xb, a01); a02 = V_FMA(gv, xc, a02); \
        gv = LD(g1 + o); a10 = V_FMA(gv, xa, a10); a11 = V_FMA(gv, xb, a11); a12 = V_FMA(gv, xc, a12); \
        gv = LD(g2 + o); a20 = V_FMA(gv, xa, a20); a21 = V_FMA(gv, xb, a21); a22 = V_FMA(gv, xc, a22); \
        gv = LD(g3 + o); a30 = V_FMA(gv, xa, a30); a31 = V_FMA(gv, xb, a31); a32 = V_FMA(gv, xc, a32); \
    }
    for (v = 0, o = 0; v < nvec; v++, o += VL) FC_DRK_GW(V_LOADU)
    if (tail > 0) {
        const MASK m = SFX(mask)(tail);
#define FC_DRK_ML(p) V_MLOAD((p), m)
        FC_DRK_GW(FC_DRK_ML)
#undef FC_DRK_ML
    }
#undef FC_DRK_GW
    V_STOREU(acc + 0 * VL, a00); V_STOREU(acc + 1 * VL, a01); V_STOREU(acc + 2 * VL, a02);
    V_STOREU(acc + 3 * VL, a10); V_STOREU(acc + 4 * VL, a11); V_STOREU(acc + 5 * VL, a12);
    V_STOREU(acc + 6 * VL, a20); V_STOREU(acc + 7 * VL, a21); V_STOREU(acc + 8 * VL, a22);
    V_STOREU(acc + 9 * VL, a30); V_STOREU(acc + 10 * VL, a31); V_STOREU(acc + 11 * VL, a32);
}

static fc_status SFX(grad_weight)(fc_context *ctx, const fc_conv_shape *s, const T *gy, const T *x,
                                  T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups, kw = s->kw;
    const int64_t nob = (cog + MR - 1) / MR, ncb = (cig + NC - 1) / NC;
    const int64_t w_in = s->w_in, w_out = s->w_out, nchk = (w_out + JC - 1) / JC;
    const int64_t items = s->groups * nob * kw, tl = MR * NC * VL;
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
                    const int64_t nrows = FC_MIN((int64_t)MR, cog - ob * MR);
                    const T *gyr, *xr;
                    int64_t cb;
                    if (je <= js) continue;
                    gyr = gy + (n * s->c_out + gg * cog + ob * MR) * w_out + js;
                    xr = x + (n * s->c_in + gg * cig) * w_in + js + off;
                    for (cb = 0; cb < ncb; cb++) {
                        const int64_t c0 = cb * NC, ncols = FC_MIN((int64_t)NC, cig - c0);
                        /* rows past the group's end repeat the last one (results unused) */
                        SFX(tile_gw)(gyr, gyr + FC_MIN(1, nrows - 1) * w_out,
                                     gyr + FC_MIN(2, nrows - 1) * w_out, gyr + FC_MIN(3, nrows - 1) * w_out,
                                     xr + c0 * w_in, xr + (c0 + FC_MIN(1, ncols - 1)) * w_in,
                                     xr + (c0 + FC_MIN(2, ncols - 1)) * w_in,
                                     (je - js) / VL, (je - js) % VL,
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
                    const int64_t ob = co / MR, cb = ci / NC;
                    const T *a = acc + (((g * nob + ob) * kw + b) * ncb + cb) * tl +
                                 ((co % MR) * NC + ci % NC) * VL;
                    T sum = a[0];
                    int l;
                    for (l = 1; l < VL; l++) sum += a[l];
                    gw[((g * cog + co) * cig + ci) * kw + b] = sum;
                }
    fc_ws_free(ctx, acc, elems * (int64_t)sizeof(T));
    return FC_OK;
}

#undef MR
#undef NC
#undef TW
#undef CW
#undef JC
