/* Space-to-batch dilated convolution, written once for element type T with
 * name suffix SFX (f32 / f64).  Included by conv_dilated.c only; the design
 * notes are there.  All index arithmetic is int64_t and bounded by the plan
 * (fc_dil_make_plan checked every product). */
#ifndef T
#error "define T and SFX before including conv_dilated_impl.h"
#endif

#define FC_JOIN2(a, b) a##b
#define FC_JOIN(a, b) FC_JOIN2(a, b)
#define FN(name) FC_JOIN(name, SFX)
#define DENSE(name) FC_JOIN(FC_JOIN(name, _), SFX)
#define DRK(name) FC_JOIN(FC_JOIN(name, SFX), __avx2)
#ifdef FC_WITH_AVX512
#define DRKZ(name) FC_JOIN(FC_JOIN(name, SFX), __avx512)
#define DRK_CALL(ctx, name, ...) (fc_drk_avx512(ctx) ? DRKZ(name)(ctx, __VA_ARGS__) : DRK(name)(ctx, __VA_ARGS__))
#else
#define DRK_CALL(ctx, name, ...) DRK(name)(ctx, __VA_ARGS__)
#endif

/* Threads for `rows` rows of `len` copied elements each: copies are memory
 * bound, so only large copies are split. */
static int FN(fc_dil_copy_threads_)(const fc_context *ctx, int64_t rows, int64_t len) {
    int64_t total;
    if (fc_checked_mul(rows, len < 1 ? 1 : len, &total)) total = INT64_MAX;
    return fc_threads_for(ctx, FC_MIN(rows, total / 32768 + 1));
}

/* xs[(n*ph + rh)*pw + rw, c, m, l] = xpad[n, c, sh*rh + dh*m, sw*rw + dw*l]
 * (zero outside x).  One work item per (n, rh, c, m): the source row is read
 * for all pw classes while it is in cache.  With `clip`, positions that only
 * the junk outputs of their class read are zero too (grad weight multiplies
 * them by the zero junk grad_out: a NaN/Inf there must not give 0*NaN). */
static void FN(fc_dil_split_input_)(const fc_context *ctx, const fc_conv_shape *s,
                                    const fc_dil_plan *pl, const T *x, T *xs, int clip) {
    const int64_t ph = pl->ph, pw = pl->pw, hs = pl->hs, ws = pl->ws, c_in = s->c_in;
    const int64_t items = s->n * ph * c_in * hs;
    const int t = FN(fc_dil_copy_threads_)(ctx, items, pw * ws);
    int64_t it;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < items; it++) {
        const int64_t m = it % hs;
        const int64_t c = (it / hs) % c_in;
        const int64_t rh = (it / (hs * c_in)) % ph;
        const int64_t nn = it / (hs * c_in * ph);
        const int64_t ih = s->stride_h * rh + s->dil_h * m - s->pad_h;
        const int row_in = ih >= 0 && ih < s->h_in &&
                           (!clip || m < fc_dil_extent(s->h_out, ph, rh, pl->dense.stride_h, s->kh));
        const T *src = row_in ? x + ((nn * c_in + c) * s->h_in + ih) * s->w_in : NULL;
        int64_t rw;
        for (rw = 0; rw < pw; rw++) {
            T *restrict dst = xs + ((((nn * ph + rh) * pw + rw) * c_in + c) * hs + m) * ws;
            int64_t lo = 0, hi = 0, l;
            const int64_t off = s->stride_w * rw;
            if (row_in)
                fc_dil_range(off, s->dil_w, s->pad_w, s->w_in,
                             clip ? fc_dil_extent(s->w_out, pw, rw, pl->dense.stride_w, s->kw) : ws,
                             &lo, &hi);
            for (l = 0; l < lo; l++) dst[l] = 0;
            if (hi > lo) {
                const T *restrict sp = src + off + s->dil_w * lo - s->pad_w;
                const int64_t dw = s->dil_w;
                if (dw == 1) {
                    memcpy(dst + lo, sp, (size_t)(hi - lo) * sizeof(T));
                } else {
                    for (l = lo; l < hi; l++) dst[l] = sp[(l - lo) * dw];
                }
            }
            for (l = hi; l < ws; l++) dst[l] = 0;
        }
    }
}

/* gys[(n*ph + rh)*pw + rw, co, q, t] = gy[n, co, rh + ph*q, rw + pw*t], zero
 * for the junk outputs past h_out / w_out. */
static void FN(fc_dil_split_output_)(const fc_context *ctx, const fc_conv_shape *s,
                                     const fc_dil_plan *pl, const T *gy, T *gys) {
    const int64_t ph = pl->ph, pw = pl->pw, qh = pl->qh, qw = pl->qw, c_out = s->c_out;
    const int64_t items = s->n * ph * c_out * qh;
    const int t = FN(fc_dil_copy_threads_)(ctx, items, pw * qw);
    int64_t it;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < items; it++) {
        const int64_t q = it % qh;
        const int64_t co = (it / qh) % c_out;
        const int64_t rh = (it / (qh * c_out)) % ph;
        const int64_t nn = it / (qh * c_out * ph);
        const int64_t i = rh + ph * q;
        const T *src = i < s->h_out ? gy + ((nn * c_out + co) * s->h_out + i) * s->w_out : NULL;
        int64_t rw, tt;
        for (rw = 0; rw < pw; rw++) {
            T *restrict dst = gys + ((((nn * ph + rh) * pw + rw) * c_out + co) * qh + q) * qw;
            /* outputs j = rw + pw*tt < w_out */
            const int64_t nv = src ? (s->w_out - rw + pw - 1) / pw : 0;
            for (tt = 0; tt < nv; tt++) dst[tt] = src[rw + pw * tt];
            for (; tt < qw; tt++) dst[tt] = 0;
        }
    }
}

/* y[n, co, rh + ph*q, rw + pw*t] = ys[(n*ph + rh)*pw + rw, co, q, t] for the
 * valid outputs only. */
static void FN(fc_dil_merge_output_)(const fc_context *ctx, const fc_conv_shape *s,
                                     const fc_dil_plan *pl, const T *ys, T *y) {
    const int64_t ph = pl->ph, pw = pl->pw, qh = pl->qh, qw = pl->qw, c_out = s->c_out;
    const int64_t h_out = s->h_out, w_out = s->w_out;
    const int64_t rows = s->n * c_out * h_out;
    const int t = FN(fc_dil_copy_threads_)(ctx, rows, w_out);
    int64_t r;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (r = 0; r < rows; r++) {
        const int64_t i = r % h_out;
        const int64_t co = (r / h_out) % c_out;
        const int64_t nn = r / (h_out * c_out);
        const int64_t rh = i % ph, q = i / ph;
        T *restrict dst = y + r * w_out;
        int64_t rw, tt;
        if (pw == 1) {
            memcpy(dst, ys + (((nn * ph + rh) * c_out + co) * qh + q) * qw, (size_t)w_out * sizeof(T));
            continue;
        }
        for (rw = 0; rw < pw && rw < w_out; rw++) {
            const T *restrict src = ys + ((((nn * ph + rh) * pw + rw) * c_out + co) * qh + q) * qw;
            const int64_t nv = (w_out - rw + pw - 1) / pw;
            for (tt = 0; tt < nv; tt++) dst[rw + pw * tt] = src[tt];
        }
    }
}

/* gx[n, c, ih, iw] = gxs[class of (ih + pad_h, iw + pad_w)], zero where no
 * class reads the position. */
static void FN(fc_dil_merge_input_)(const fc_context *ctx, const fc_conv_shape *s,
                                    const fc_dil_plan *pl, const T *gxs, T *gx) {
    const int64_t ph = pl->ph, pw = pl->pw, hs = pl->hs, ws = pl->ws, c_in = s->c_in;
    const int64_t h_in = s->h_in, w_in = s->w_in;
    const int64_t rows = s->n * c_in * h_in;
    const int t = FN(fc_dil_copy_threads_)(ctx, rows, w_in);
    int64_t r;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (r = 0; r < rows; r++) {
        const int64_t ih = r % h_in;
        const int64_t c = (r / h_in) % c_in;
        const int64_t nn = r / (h_in * c_in);
        T *restrict dst = gx + r * w_in;
        int64_t rh, m, rw, l, iw;
        for (iw = 0; iw < w_in; iw++) dst[iw] = 0;
        if (!fc_dil_locate(ih + s->pad_h, ph, s->stride_h, s->dil_h, hs, &rh, &m)) continue;
        for (rw = 0; rw < pw; rw++) {
            const T *restrict src = gxs + ((((nn * ph + rh) * pw + rw) * c_in + c) * hs + m) * ws;
            const int64_t off = s->stride_w * rw;
            int64_t lo, hi;
            fc_dil_range(off, s->dil_w, s->pad_w, w_in, ws, &lo, &hi);
            if (hi <= lo) continue;
            {
                T *restrict dp = dst + off + s->dil_w * lo - s->pad_w;
                const int64_t dw = s->dil_w;
                if (dw == 1) memcpy(dp, src + lo, (size_t)(hi - lo) * sizeof(T));
                else for (l = lo; l < hi; l++) dp[(l - lo) * dw] = src[l];
            }
        }
    }
}

static void FN(fc_dil_fill_)(T *p, int64_t elems, int64_t inner, const T *per_channel,
                             int64_t channels) {
    int64_t i;
    for (i = 0; i < elems; i++) p[i] = per_channel ? per_channel[(i / inner) % channels] : (T)0;
}

/* The checks the three entry points share, for result `out` of `pass` (0 y,
 * 1 grad x, 2 grad w).  Returns 1 when the call is already finished, with
 * its status in *st: bad arguments, an empty result, or no products at all
 * (y is then its bias, the gradients zero); 0 when the kernels must run. */
static int FN(fc_dil_prologue_)(const fc_context *ctx, const fc_conv_shape *s, int pass, T *out,
                                const T *bias, fc_status *st) {
    *st = FC_OK;
    if (!ctx || !s) {
        *st = FC_ERR_ARG;
        return 1;
    }
    if ((*st = fc_conv_check(s)) || fc_dil_result_elems(s, pass) == 0) return 1;
    if (!out) {
        *st = FC_ERR_ARG;
        return 1;
    }
    if (!fc_dil_trivial(s)) return 0;
    if (pass == 0)   /* c_in == 0: every output is its bias */
        FN(fc_dil_fill_)(out, fc_dil_result_elems(s, 0), s->h_out * s->w_out, bias, s->c_out);
    else             /* empty sums */
        FN(fc_dil_fill_)(out, fc_dil_result_elems(s, pass), 1, NULL, 1);
    return 1;
}

/* ---- GEMM path (see conv_dilated.c) ------------------------------------- */

/* Row-major C (M x N) = op(A) op(B) + beta C through the column-major BLAS
 * (a row-major matrix is its transpose in column-major storage). */
static inline void FN(fc_dil_gemm_)(const fc_context *ctx, char ta, char tb, int64_t M, int64_t N,
                                    int64_t K, const T *A, int64_t lda, const T *B, int64_t ldb,
                                    T beta, T *C, int64_t ldc) {
    char cta = tb, ctb = ta;
    int m = (int)N, n = (int)M, k = (int)K, la = (int)ldb, lb = (int)lda, lc = (int)ldc;
    T one = 1;
    FC_DIL_GEMM_FN(ctx)(&cta, &ctb, &m, &n, &k, &one, (T *)B, &la, (T *)A, &lb, &beta, C, &lc);
}

/* Wp[a][co][b][ci] = w[co][ci][a][b]: for kernel row a, a (c_out x kw*cig)
 * matrix whose columns (b, ci) follow the layout of the stacked copies X_b. */
static inline int64_t FN(fc_dil_wp_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t a,
                                     int64_t co, int64_t b) {
    return ((a * s->c_out + co) * s->kw + b) * gp->cig;
}

/* Written in order; the reads of one (a, co) sweep a cig*kh*kw slab of w
 * that stays in cache (writing in w's order instead would be kh*kw streams
 * a power-of-two-ish stride apart, which thrash the L1 sets). */
static void FN(fc_dil_pack_weights_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp,
                                     const T *w, T *wp) {
    const int64_t cig = gp->cig, khkw = gp->khkw;
    int64_t co, ci, a, b;
    for (a = 0; a < s->kh; a++)
        for (co = 0; co < s->c_out; co++)
            for (b = 0; b < s->kw; b++) {
                const T *restrict src = w + co * cig * khkw + a * s->kw + b;
                T *restrict dst = wp + FN(fc_dil_wp_)(s, gp, a, co, b);
                for (ci = 0; ci < cig; ci++) dst[ci] = src[ci * khkw];
            }
}

/* Grad-input weights: Wq[a][g][b][ci][co] = w[g*cog + co][ci][a][b], so the
 * rows (b, ci) of a unit of kernel columns form one row-major (rows x cog)
 * operand the BLAS packs without transposing (a transposed pack of Wp per
 * GEMM call cost ~10% of grad input). */
static inline int64_t FN(fc_dil_wq_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t a,
                                     int64_t g, int64_t b) {
    return (((a * s->groups + g) * s->kw + b) * gp->cig) * gp->cog;
}

static void FN(fc_dil_pack_weights_gi_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp,
                                        const T *w, T *wq) {
    const int64_t cig = gp->cig, cog = gp->cog, khkw = gp->khkw, tb = 16;
    int64_t a, g, b, ci, co, c0, o0;
    /* a (co x ci) transpose per tap and group, in 16 x 16 tiles */
    for (a = 0; a < s->kh; a++)
        for (g = 0; g < s->groups; g++)
            for (b = 0; b < s->kw; b++) {
                const T *restrict src = w + g * cog * cig * khkw + a * s->kw + b;
                T *restrict dst = wq + FN(fc_dil_wq_)(s, gp, a, g, b);
                for (c0 = 0; c0 < cig; c0 += tb)
                    for (o0 = 0; o0 < cog; o0 += tb)
                        for (ci = c0; ci < FC_MIN(cig, c0 + tb); ci++)
                            for (co = o0; co < FC_MIN(cog, o0 + tb); co++)
                                dst[ci * cog + co] = src[(co * cig + ci) * khkw];
            }
}

/* Row of X_b (in units of rows of C_b) holding input row h: rows are grouped by h mod sh. */
static inline int64_t FN(fc_dil_xrow_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t h) {
    return (h % s->stride_h) * gp->umax + h / s->stride_h;
}

/* For every kernel column b with a non-empty band:
 *   X_b[c][xrow(h)][jj] = ximg[c][h][(lo_b + jj)*sw + b*dw - pw]   (all inside x). */
static void FN(fc_dil_shift_cols_)(const fc_context *ctx, const fc_conv_shape *s,
                                   const fc_dil_gemm_plan *gp, const T *ximg, T *X) {
    const int64_t c_in = s->c_in, h_in = s->h_in, w_in = s->w_in;
    const int64_t rows = s->kw * c_in * h_in;
    const int t = FN(fc_dil_copy_threads_)(ctx, rows, s->w_out);
    int64_t it;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < rows; it++) {
        const int64_t h = it % h_in, c = (it / h_in) % c_in, b = it / (h_in * c_in);
        fc_dil_col col;
        fc_dil_col_info(s, gp, b, &col);
        if (col.cb > 0) {
            /* the real columns [rlo, rhi) of the band [lo, lo + cb); zero around them */
            T *restrict dst = X + col.xoff + c * col.cs + FN(fc_dil_xrow_)(s, gp, h) * col.cb;
            const int64_t sw = s->stride_w, j0 = col.rlo - col.lo, j1 = col.rhi - col.lo;
            const T *restrict src = ximg + (c * h_in + h) * w_in + col.rlo * sw + b * s->dil_w - s->pad_w;
            int64_t j;
            for (j = 0; j < j0; j++) dst[j] = 0;
            if (sw == 1) memcpy(dst + j0, src, (size_t)(j1 - j0) * sizeof(T));
            else for (j = j0; j < j1; j++) dst[j] = src[(j - j0) * sw];
            for (j = j1; j < col.cb; j++) dst[j] = 0;
        }
    }
}

/* First row of channel c0 of X_b and X_b's channel stride: the copy, or for
 * a viewed single-row input x itself (X_b[c][0][jj] = x[c][0][lo_b + jj + b*dw - pw]). */
static inline const T *FN(fc_dil_xsrc_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp,
                                        const T *X, const T *ximg, const fc_dil_col *col,
                                        int64_t b, int64_t c0, int64_t *ld) {
    if (gp->view) {
        *ld = s->w_in;
        return ximg + c0 * s->w_in + col->lo + b * s->dil_w - s->pad_w;
    }
    *ld = col->cs;
    return X + col->xoff + c0 * col->cs;
}

/* For every partial-band column b: GY_b[co][i][jj] = gyimg[co][i][lo_b + jj]. */
static void FN(fc_dil_band_grad_out_)(const fc_context *ctx, const fc_conv_shape *s,
                                      const fc_dil_gemm_plan *gp, const T *gyimg, T *TB) {
    const int64_t rows = s->kw * s->c_out * s->h_out;
    const int t = FN(fc_dil_copy_threads_)(ctx, rows, s->w_out);
    int64_t it;
    (void)t;
    if (gp->t_elems == 0) return;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < rows; it++) {
        const int64_t i = it % s->h_out, co = (it / s->h_out) % s->c_out, b = it / (s->h_out * s->c_out);
        fc_dil_col col;
        fc_dil_col_info(s, gp, b, &col);
        if (col.cb > 0 && !col.full)
            memcpy(TB + col.toff + (co * s->h_out + i) * col.cb,
                   gyimg + (co * s->h_out + i) * s->w_out + col.lo, (size_t)col.cb * sizeof(T));
    }
}

/* Output rows [i0, i1) that kernel row a reads from x, and the X_b row of
 * the first one (in rows of C_b). */
static inline int64_t FN(fc_dil_tap_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t a,
                                      int64_t *i0, int64_t *i1) {
    const int64_t off = a * s->dil_h - s->pad_h;
    fc_dil_tap_rows(s->h_in, s->h_out, s->stride_h, off, i0, i1);
    if (*i1 <= *i0) return 0;
    return FN(fc_dil_xrow_)(s, gp, *i0 * s->stride_h + off);
}

/* Forward work items: chunks of gp->pc positions of the "full" space (y,
 * shared by all full-band columns; only when nfull > 0), then of each
 * partial-band column's temporary.  Grad input: chunks of each column's G_b. */
static fc_status FN(fc_dil_gemm_forward_)(fc_context *ctx, const fc_conv_shape *s,
                                          const fc_dil_gemm_plan *gp, const T *x, const T *w,
                                          const T *bias, T *y) {
    const int64_t hw = gp->hw, pc = gp->pc, h_out = s->h_out, w_out = s->w_out;
    const int64_t c_in = s->c_in, c_out = s->c_out, cig = gp->cig, cog = gp->cog;
    const int64_t full_chunks = gp->nfull > 0 ? (hw + pc - 1) / pc : 0;
    fc_dil_bufs mem = {3, {(gp->view ? 0 : gp->x_elems) * (int64_t)sizeof(T),
                           gp->t_elems * (int64_t)sizeof(T), gp->w_elems * (int64_t)sizeof(T)}, {NULL}};
    T *X, *TB, *wp;
    int64_t nn, b, tasks = full_chunks;
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    X = (T *)mem.p[0]; TB = (T *)mem.p[1]; wp = (T *)mem.p[2];
    for (b = 0; b < s->kw; b++) {
        fc_dil_col col;
        fc_dil_col_info(s, gp, b, &col);
        if (col.cb > 0 && !col.full) tasks += (h_out * col.cb + pc - 1) / pc;
    }
    FN(fc_dil_pack_weights_)(s, gp, w, wp);
    for (nn = 0; nn < s->n; nn++) {
        T *yimg = y + nn * c_out * hw;
        const T *ximg = x + nn * c_in * s->h_in * s->w_in;
        const int t = fc_threads_for(ctx, tasks);
        const int t2 = FN(fc_dil_copy_threads_)(ctx, c_out * h_out, w_out);
        int64_t task, r;
        (void)t; (void)t2;
        if (!gp->view) FN(fc_dil_shift_cols_)(ctx, s, gp, ximg, X);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
#endif
        for (task = 0; task < tasks; task++) {
            fc_fpmode fp = fc_fpmode_enter();
            int64_t rest = task, bsel = -1, len = hw, p0, p1, co, p, a, g, bb;
            T *C;
            int64_t ldc;
            fc_dil_col col = {0, 0, 0, 0, 0, 0, 0, 0};
            /* locate the task's space */
            if (rest >= full_chunks) {
                rest -= full_chunks;
                for (bb = 0; bb < s->kw; bb++) {
                    int64_t nch;
                    fc_dil_col_info(s, gp, bb, &col);
                    if (col.cb == 0 || col.full) continue;
                    nch = (h_out * col.cb + pc - 1) / pc;
                    if (rest < nch) { bsel = bb; break; }
                    rest -= nch;
                }
                len = h_out * col.cb;
            }
            p0 = rest * pc;
            p1 = FC_MIN(len, p0 + pc);
            if (bsel < 0) {
                C = yimg;
                ldc = hw;
                for (co = 0; co < c_out; co++) {
                    const T bv = bias ? bias[co] : (T)0;
                    for (p = p0; p < p1; p++) yimg[co * hw + p] = bv;
                }
            } else {
                C = TB + col.toff;
                ldc = len;
                for (co = 0; co < c_out; co++) memset(C + co * ldc + p0, 0, (size_t)(p1 - p0) * sizeof(T));
            }
            for (bb = (bsel < 0 ? 0 : bsel); bb < (bsel < 0 ? s->kw : bsel + 1);) {
                fc_dil_col cb_;
                const int64_t be = bsel < 0 ? fc_dil_unit(s, gp, bb, !gp->view, &cb_) : bb + 1;
                const int64_t kk = (be - bb) * cig;   /* K: the unit's columns x channels */
                if (bsel >= 0) fc_dil_col_info(s, gp, bb, &cb_);
                if (cb_.cb == 0 || (bsel < 0 && !cb_.full)) { bb = be; continue; }
                for (a = 0; a < s->kh; a++) {
                    int64_t i0, i1, q0, q1, ldx;
                    const int64_t xrow = FN(fc_dil_tap_)(s, gp, a, &i0, &i1);
                    q0 = FC_MAX(p0, i0 * cb_.cb);
                    q1 = FC_MIN(p1, i1 * cb_.cb);
                    if (q1 <= q0) continue;
                    for (g = 0; g < s->groups; g++) {
                        const T *xb = FN(fc_dil_xsrc_)(s, gp, X, ximg, &cb_, bb, g * cig, &ldx);
                        FN(fc_dil_gemm_)(ctx, 'N', 'N', cog, q1 - q0, kk,
                                         wp + FN(fc_dil_wp_)(s, gp, a, g * cog, bb), s->kw * cig,
                                         xb + xrow * cb_.cb + (q0 - i0 * cb_.cb), ldx,
                                         (T)1, C + g * cog * ldc + q0, ldc);
                    }
                }
                bb = be;
            }
            fc_fpmode_leave(fp);
        }
        /* y = (bias if no full-band column) + partial-band temporaries, in column order. */
        if (gp->nfull == 0 || gp->t_elems > 0) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t2)
#endif
            for (r = 0; r < c_out * h_out; r++) {
                const int64_t co = r / h_out, i = r % h_out;
                T *restrict yr = yimg + r * w_out;
                int64_t j, bb;
                if (gp->nfull == 0) {
                    const T bv = bias ? bias[co] : (T)0;
                    for (j = 0; j < w_out; j++) yr[j] = bv;
                }
                for (bb = 0; bb < s->kw; bb++) {
                    fc_dil_col col;
                    fc_dil_col_info(s, gp, bb, &col);
                    if (col.cb == 0 || col.full) continue;
                    {
                        const T *restrict src = TB + col.toff + (co * h_out + i) * col.cb;
                        T *restrict dst = yr + col.lo;
                        for (j = 0; j < col.cb; j++) dst[j] += src[j];
                    }
                }
            }
        }
    }
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

/* Row paths' operand: out[g][b][c][jj] = in[g*chans + c][start + b*step + jj]
 * for the len columns of a chunk and each of the kw kernel columns b, zero
 * outside [0, in_w).  The forward / grad weight copy x (step = dil_w) and
 * grad input copies grad_out (step = -dil_w). */
static void FN(fc_dil_shifted_rows_)(const T *in, int64_t in_w, int64_t groups, int64_t kw,
                                     int64_t chans, int64_t start, int64_t step, int64_t len, T *out) {
    int64_t g, b, c, jj;
    for (g = 0; g < groups; g++)
        for (b = 0; b < kw; b++) {
            const int64_t off = start + b * step;   /* in column of jj = 0 */
            const int64_t lo = FC_MIN(len, FC_MAX((int64_t)0, -off));
            const int64_t hi = FC_MAX(lo, FC_MIN(len, in_w - off));
            for (c = 0; c < chans; c++) {
                T *restrict dst = out + ((g * kw + b) * chans + c) * len;
                const T *restrict src = in + (g * chans + c) * in_w + off;
                for (jj = 0; jj < lo; jj++) dst[jj] = 0;
                if (hi > lo) memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(T));
                for (jj = hi; jj < len; jj++) dst[jj] = 0;
            }
        }
}

/* X2[g][b][ci][jj] = x[g*cig + ci][j0 + jj + b*dw - pw], zero outside x. */
static void FN(fc_dil_row_copy_)(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, const T *ximg,
                                 int64_t j0, int64_t len, T *X2) {
    FN(fc_dil_shifted_rows_)(ximg, s->w_in, s->groups, s->kw, gp->cig, j0 - s->pad_w, s->dil_w,
                             len, X2);
}

/* Forward of one input row (gp->row, see conv_dilated.c): per chunk of rpc
 * output columns, X2[g][b][ci][jj] = x[g*cig + ci][j0 + jj + b*dw - pw]
 * (zero outside x), then y[g*cog.., j0..] = Wp_g . X2_g (one GEMM, K = kw*cig)
 * plus the bias.  Chunks depend on the shape only, so any thread count gives
 * the same sums. */
static fc_status FN(fc_dil_gemm_forward_row_)(fc_context *ctx, const fc_conv_shape *s,
                                              const fc_dil_gemm_plan *gp, const T *x, const T *w,
                                              const T *bias, T *y) {
    const int64_t w_in = s->w_in, w_out = s->w_out, rpc = gp->rpc, kw = s->kw;
    const int64_t cig = gp->cig, cog = gp->cog, kk = kw * cig;
    const int64_t nch = gp->rnch;
    const int t = fc_threads_for(ctx, nch);
    const int64_t buf_bytes = gp->r_elems * (int64_t)t * (int64_t)sizeof(T);
    fc_dil_bufs mem = {2, {buf_bytes, gp->w_elems * (int64_t)sizeof(T)}, {NULL}};
    T *buf, *wp;
    int64_t nn;
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    buf = (T *)mem.p[0]; wp = (T *)mem.p[1];
    FN(fc_dil_pack_weights_)(s, gp, w, wp);   /* kh == 1: wp[co][b][ci] */
    for (nn = 0; nn < s->n; nn++) {
        const T *ximg = x + nn * s->c_in * w_in;
        T *yimg = y + nn * s->c_out * w_out;
        int64_t ch;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
        for (ch = 0; ch < nch; ch++) {
            fc_fpmode fp = fc_fpmode_enter();
            T *X2 = buf + (int64_t)FC_OMP_THREAD_NUM() * gp->r_elems;
            const int64_t j0 = ch * rpc, len = FC_MIN(rpc, w_out - j0);
            int64_t g, co, jj;
            FN(fc_dil_row_copy_)(s, gp, ximg, j0, len, X2);
            /* y = bias + W.X: the GEMM accumulates onto the bias (beta = 1;
             * beta = 0 would cost the BLAS a zeroing pass over y anyway) */
            if (bias)
                for (co = 0; co < s->c_out; co++) {
                    T *restrict yr = yimg + co * w_out + j0;
                    const T bv = bias[co];
                    for (jj = 0; jj < len; jj++) yr[jj] = bv;
                }
            for (g = 0; g < s->groups; g++) {
                T *C = yimg + g * cog * w_out + j0;
                FN(fc_dil_gemm_)(ctx, 'N', 'N', cog, len, kk, wp + g * cog * kk, kk,
                                 X2 + g * kk * len, len, bias ? (T)1 : (T)0, C, w_out);
            }
            fc_fpmode_leave(fp);
        }
    }
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

/* Grad weight of one row (gp->row): the chunks of output columns are split
 * into np = min(chunks, FC_DIL_ROW_PARTS) fixed consecutive parts (shape
 * only); part p sums, image by image and chunk by chunk,
 * acc_p[g*cog + co][(b, ci)] += gy[.., chunk] . X2_g[(b, ci), chunk]^T (one GEMM,
 * K = chunk length), and the parts are added in order: the same sums for
 * any thread count. */
static fc_status FN(fc_dil_gemm_grad_weight_row_)(fc_context *ctx, const fc_conv_shape *s,
                                                  const fc_dil_gemm_plan *gp, const T *gy,
                                                  const T *x, T *gw) {
    const int64_t w_in = s->w_in, w_out = s->w_out, rpc = gp->rpc, kw = s->kw;
    const int64_t cig = gp->cig, cog = gp->cog, kk = kw * cig, nch = gp->rnch;
    const int64_t np = FC_MIN(nch, (int64_t)FC_DIL_ROW_PARTS), we = gp->w_elems;
    const int t = fc_threads_for(ctx, np);
    const int64_t buf_bytes = gp->r_elems * (int64_t)t * (int64_t)sizeof(T);
    const int64_t acc_bytes = np * we * (int64_t)sizeof(T);
    fc_dil_bufs mem = {2, {buf_bytes, acc_bytes}, {NULL}};
    T *buf, *acc;
    int64_t p, i, co, ci, b;
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    buf = (T *)mem.p[0]; acc = (T *)mem.p[1];
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (p = 0; p < np; p++) {
        fc_fpmode fp = fc_fpmode_enter();
        T *X2 = buf + (int64_t)FC_OMP_THREAD_NUM() * gp->r_elems;
        T *A = acc + p * we;
        const int64_t ch0 = p * nch / np, ch1 = (p + 1) * nch / np;
        int first = 1;
        int64_t nn, ch, g;
        for (nn = 0; nn < s->n; nn++) {
            const T *ximg = x + nn * s->c_in * w_in;
            const T *gyimg = gy + nn * s->c_out * w_out;
            for (ch = ch0; ch < ch1; ch++) {
                const int64_t j0 = ch * rpc, len = FC_MIN(rpc, w_out - j0);
                FN(fc_dil_row_copy_)(s, gp, ximg, j0, len, X2);
                for (g = 0; g < s->groups; g++)
                    FN(fc_dil_gemm_)(ctx, 'N', 'T', cog, kk, len, gyimg + g * cog * w_out + j0, w_out,
                                     X2 + g * kk * len, len, first ? (T)0 : (T)1, A + g * cog * kk, kk);
                first = 0;
            }
        }
        fc_fpmode_leave(fp);
    }
    for (p = 1; p < np; p++)
        for (i = 0; i < we; i++) acc[i] += acc[p * we + i];
    /* acc[co][b][ci] -> gw[co][ci][0][b] */
    for (co = 0; co < s->c_out; co++)
        for (b = 0; b < kw; b++)
            for (ci = 0; ci < cig; ci++) gw[(co * cig + ci) * kw + b] = acc[(co * kw + b) * cig + ci];
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

/* Grad input of one row (gp->rowi): per chunk of rpci input columns,
 * G2[g][b][co][jj] = gy[g*cog + co][c0 + jj - b*dw + pw] (zero outside
 * grad_out), then gx[g*cig.., c0..] = Wq_g^T . G2_g, one GEMM with
 * K = kw*cog, where Wq[g][b][co][ci] = w[g*cog + co][ci][0][b]. */
static fc_status FN(fc_dil_gemm_grad_input_row_)(fc_context *ctx, const fc_conv_shape *s,
                                                 const fc_dil_gemm_plan *gp, const T *gy,
                                                 const T *w, T *gx) {
    const int64_t w_in = s->w_in, w_out = s->w_out, rpc = gp->rpci, kw = s->kw;
    const int64_t cig = gp->cig, cog = gp->cog, kk = kw * cog;
    const int64_t nch = gp->rnchi;
    const int t = fc_threads_for(ctx, nch);
    const int64_t buf_bytes = gp->ri_elems * (int64_t)t * (int64_t)sizeof(T);
    fc_dil_bufs mem = {2, {buf_bytes, gp->w_elems * (int64_t)sizeof(T)}, {NULL}};
    T *buf, *wq;
    int64_t nn, g, b, co, ci;
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    buf = (T *)mem.p[0]; wq = (T *)mem.p[1];
    for (g = 0; g < s->groups; g++)
        for (b = 0; b < kw; b++)
            for (co = 0; co < cog; co++) {
                const T *restrict src = w + (g * cog + co) * cig * kw + b;
                T *restrict dst = wq + ((g * kw + b) * cog + co) * cig;
                for (ci = 0; ci < cig; ci++) dst[ci] = src[ci * kw];
            }
    for (nn = 0; nn < s->n; nn++) {
        const T *gyimg = gy + nn * s->c_out * w_out;
        T *gximg = gx + nn * s->c_in * w_in;
        int64_t ch;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
        for (ch = 0; ch < nch; ch++) {
            fc_fpmode fp = fc_fpmode_enter();
            T *G2 = buf + (int64_t)FC_OMP_THREAD_NUM() * gp->ri_elems;
            const int64_t c0 = ch * rpc, len = FC_MIN(rpc, w_in - c0);
            int64_t gg;
            /* gy column of jj = 0 for kernel column bb: c0 - bb*dw + pw */
            FN(fc_dil_shifted_rows_)(gyimg, w_out, s->groups, kw, cog, c0 + s->pad_w, -s->dil_w,
                                     len, G2);
            for (gg = 0; gg < s->groups; gg++)
                FN(fc_dil_gemm_)(ctx, 'T', 'N', cig, len, kk, wq + gg * kk * cig, cig,
                                 G2 + gg * kk * len, len, (T)0, gximg + gg * cig * w_in + c0, w_in);
            fc_fpmode_leave(fp);
        }
    }
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

/* Grad input of a viewed single-row input (h_in == 1, stride_w == 1): every
 * kernel tap (a, b) reads at most one output row, so for each chunk of gx
 * columns the GEMMs W_ab^T . grad_out[row, band] accumulate straight into gx
 * (kernel columns, then rows, in order).  No workspace beyond the weights. */
static fc_status FN(fc_dil_gemm_grad_input_view_)(fc_context *ctx, const fc_conv_shape *s,
                                                  const fc_dil_gemm_plan *gp, const T *gy,
                                                  const T *w, T *gx) {
    const int64_t hw = gp->hw, pc = gp->pc, w_in = s->w_in, c_in = s->c_in, c_out = s->c_out;
    const int64_t cig = gp->cig, cog = gp->cog, nck = (w_in + pc - 1) / pc;
    T *wp = (T *)fc_ws_alloc(ctx, gp->w_elems * (int64_t)sizeof(T));
    int64_t nn;
    if (!wp) return FC_ERR_NOMEM;
    FN(fc_dil_pack_weights_)(s, gp, w, wp);
    for (nn = 0; nn < s->n; nn++) {
        const T *gyimg = gy + nn * c_out * hw;
        T *gximg = gx + nn * c_in * w_in;
        const int t = fc_threads_for(ctx, nck);
        int64_t ch;
        (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
        for (ch = 0; ch < nck; ch++) {
            fc_fpmode fp = fc_fpmode_enter();
            const int64_t c0 = ch * pc, c1 = FC_MIN(w_in, c0 + pc);
            int64_t c, b, a, g;
            for (c = 0; c < c_in; c++) memset(gximg + c * w_in + c0, 0, (size_t)(c1 - c0) * sizeof(T));
            for (b = 0; b < s->kw; b++) {
                fc_dil_col col;
                int64_t off, j0, j1;
                fc_dil_col_info(s, gp, b, &col);
                off = col.lo + b * s->dil_w - s->pad_w;   /* gx column of band position 0 */
                j0 = FC_MAX((int64_t)0, c0 - off);
                j1 = FC_MIN(col.cb, c1 - off);
                if (j1 <= j0) continue;
                for (a = 0; a < s->kh; a++) {
                    int64_t i0, i1;
                    (void)FN(fc_dil_tap_)(s, gp, a, &i0, &i1);
                    if (i1 <= i0) continue;   /* i1 == i0 + 1: one row reads the input row */
                    for (g = 0; g < s->groups; g++)
                        FN(fc_dil_gemm_)(ctx, 'T', 'N', cig, j1 - j0, cog,
                                         wp + FN(fc_dil_wp_)(s, gp, a, g * cog, b), s->kw * cig,
                                         gyimg + g * cog * hw + i0 * s->w_out + col.lo + j0, hw,
                                         (T)1, gximg + g * cig * w_in + off + j0, w_in);
                }
            }
            fc_fpmode_leave(fp);
        }
    }
    fc_ws_free(ctx, wp, gp->w_elems * (int64_t)sizeof(T));
    return FC_OK;
}

static fc_status FN(fc_dil_gemm_grad_input_)(fc_context *ctx, const fc_conv_shape *s,
                                             const fc_dil_gemm_plan *gp, const T *gy, const T *w,
                                             T *gx) {
    const int64_t hw = gp->hw, pc = gp->pc, h_out = s->h_out, w_out = s->w_out;
    const int64_t c_in = s->c_in, c_out = s->c_out, cig = gp->cig, cog = gp->cog;
    const int64_t h_in = s->h_in, w_in = s->w_in;
    fc_dil_bufs mem = {3, {gp->x_elems * (int64_t)sizeof(T), gp->t_elems * (int64_t)sizeof(T),
                           gp->w_elems * (int64_t)sizeof(T)}, {NULL}};
    T *G, *TB, *wp;
    int64_t nn, b, tasks = 0;
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    G = (T *)mem.p[0]; TB = (T *)mem.p[1]; wp = (T *)mem.p[2];
    for (b = 0; b < s->kw;) {   /* chunks of every unit's G */
        fc_dil_col col;
        const int64_t be = fc_dil_unit(s, gp, b, 1, &col);
        if (col.cb > 0) tasks += (col.cs + pc - 1) / pc;
        b = be;
    }
    FN(fc_dil_pack_weights_gi_)(s, gp, w, wp);   /* Wq layout */
    for (nn = 0; nn < s->n; nn++) {
        const T *gyimg = gy + nn * c_out * hw;
        const int64_t rows = c_in * h_in;
        int t = fc_threads_for(ctx, tasks);
        int64_t task, r;
        (void)t;
        FN(fc_dil_band_grad_out_)(ctx, s, gp, gyimg, TB);
        /* G_b = gradient of the column-shifted copy X_b, chunk by chunk. */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
#endif
        for (task = 0; task < tasks; task++) {
            fc_fpmode fp = fc_fpmode_enter();
            int64_t rest = task, bb = 0, be = 0, c, a, g, nch = 0, r0c, r1c, mm;
            fc_dil_col col = {0, 0, 0, 0, 0, 0, 0, 0};
            const T *B;
            int64_t ldb;
            while (bb < s->kw) {   /* locate the task's unit [bb, be) */
                be = fc_dil_unit(s, gp, bb, 1, &col);
                if (col.cb > 0) {
                    nch = (col.cs + pc - 1) / pc;
                    if (rest < nch) break;
                    rest -= nch;
                }
                bb = be;
            }
            mm = (be - bb) * cig;   /* M: the unit's columns x channels */
            r0c = rest * pc;
            r1c = FC_MIN(col.cs, r0c + pc);
            B = col.full ? gyimg : TB + col.toff;
            ldb = col.full ? hw : h_out * col.cb;
            for (c = 0; c < (be - bb) * c_in; c++)
                memset(G + col.xoff + c * col.cs + r0c, 0, (size_t)(r1c - r0c) * sizeof(T));
            for (a = 0; a < s->kh; a++) {
                int64_t i0, i1, r0, r1;
                const int64_t base = FN(fc_dil_tap_)(s, gp, a, &i0, &i1) * col.cb;
                if (i1 <= i0) continue;
                r0 = FC_MAX(r0c, base);
                r1 = FC_MIN(r1c, base + (i1 - i0) * col.cb);
                if (r1 <= r0) continue;
                for (g = 0; g < s->groups; g++)
                    FN(fc_dil_gemm_)(ctx, 'N', 'N', mm, r1 - r0, cog,
                                     wp + FN(fc_dil_wq_)(s, gp, a, g, bb), cog,
                                     B + g * cog * ldb + i0 * col.cb + (r0 - base), ldb,
                                     (T)1, G + col.xoff + g * cig * col.cs + r0, col.cs);
            }
            fc_fpmode_leave(fp);
            (void)nch;
        }
        /* gx[c][h][(lo_b + jj)*sw + b*dw - pw] = sum over b of G_b[c][xrow(h)][jj] (col2im along w). */
        t = FN(fc_dil_copy_threads_)(ctx, rows, s->kw * w_out);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
        for (r = 0; r < rows; r++) {
            const int64_t h = r % h_in, c = r / h_in;
            T *restrict dst = gx + (nn * c_in + c) * h_in * w_in + h * w_in;
            const int64_t xr = FN(fc_dil_xrow_)(s, gp, h);
            int64_t bb, j;
            for (j = 0; j < w_in; j++) dst[j] = 0;
            for (bb = 0; bb < s->kw; bb++) {
                fc_dil_col col;
                const int64_t sw = s->stride_w;
                fc_dil_col_info(s, gp, bb, &col);
                if (col.cb == 0) continue;
                {   /* only the band's real columns [rlo, rhi) map to x */
                    const T *restrict src = G + col.xoff + c * col.cs + xr * col.cb + (col.rlo - col.lo);
                    T *restrict dp = dst + col.rlo * sw + bb * s->dil_w - s->pad_w;
                    const int64_t nr = col.rhi - col.rlo;
                    if (sw == 1) for (j = 0; j < nr; j++) dp[j] += src[j];
                    else for (j = 0; j < nr; j++) dp[j * sw] += src[j];
                }
            }
        }
    }
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

static fc_status FN(fc_dil_gemm_grad_weight_)(fc_context *ctx, const fc_conv_shape *s,
                                              const fc_dil_gemm_plan *gp, const T *gy, const T *x,
                                              T *gw) {
    const int64_t hw = gp->hw, c_in = s->c_in, c_out = s->c_out, h_out = s->h_out;
    const int64_t cig = gp->cig, cog = gp->cog;
    int64_t nunits = 0, b, want, ncb, cbs, tasks, nn, co, ci, a;
    fc_dil_bufs mem = {3, {0}, {NULL}};
    T *X, *TB, *acc;
    for (b = 0; b < s->kw; nunits++) {
        fc_dil_col col;
        b = fc_dil_unit(s, gp, b, !gp->view, &col);
    }
    /* Split output channels only as far as needed for >= 4 work items
     * (each split re-packs the input rows in the BLAS). */
    want = (4 + s->kh * nunits * s->groups - 1) / (s->kh * nunits * s->groups);
    ncb = FC_MAX((int64_t)1, FC_MIN(cog, want));
    cbs = (cog + ncb - 1) / ncb;
    tasks = s->kh * nunits * s->groups * ncb;
    mem.bytes[0] = (gp->view ? 0 : gp->x_elems) * (int64_t)sizeof(T);
    mem.bytes[1] = (gp->view ? 0 : gp->t_elems) * (int64_t)sizeof(T);
    mem.bytes[2] = gp->w_elems * (int64_t)sizeof(T);
    if (fc_dil_bufs_take(ctx, &mem)) return FC_ERR_NOMEM;
    X = (T *)mem.p[0]; TB = (T *)mem.p[1]; acc = (T *)mem.p[2];
    memset(acc, 0, (size_t)gp->w_elems * sizeof(T));  /* acc laid out as Wp: [a][co][b][ci] */
    for (nn = 0; nn < s->n; nn++) {
        const T *gyimg = gy + nn * c_out * hw;
        const T *ximg = x + nn * c_in * s->h_in * s->w_in;
        const int t = fc_threads_for(ctx, tasks);
        int64_t task;
        (void)t;
        if (!gp->view) FN(fc_dil_shift_cols_)(ctx, s, gp, ximg, X);
        if (!gp->view) FN(fc_dil_band_grad_out_)(ctx, s, gp, gyimg, TB);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
#endif
        for (task = 0; task < tasks; task++) {
            fc_fpmode fp = fc_fpmode_enter();
            const int64_t ta = task / (nunits * s->groups * ncb), u = (task / (s->groups * ncb)) % nunits;
            const int64_t g = (task / ncb) % s->groups, cb = task % ncb;
            const int64_t co0 = g * cog + cb * cbs;
            const int64_t mb = FC_MIN(cbs, cog - cb * cbs);
            int64_t i0, i1, bb = 0, be = 0, k;
            fc_dil_col col = {0, 0, 0, 0, 0, 0, 0, 0};
            const int64_t xrow = FN(fc_dil_tap_)(s, gp, ta, &i0, &i1);
            for (k = 0; k <= u; k++) {   /* the task's unit [bb, be) */
                bb = be;
                be = fc_dil_unit(s, gp, bb, !gp->view, &col);
            }
            if (i1 > i0 && col.cb > 0 && mb > 0) {
                /* a full band, or the single row of a viewed input, is read in place */
                const int in_place = col.full || gp->view;
                const T *A = in_place ? gyimg + co0 * hw + i0 * s->w_out + col.lo
                                      : TB + col.toff + co0 * h_out * col.cb + i0 * col.cb;
                const int64_t lda = in_place ? hw : h_out * col.cb;
                int64_t ldx;
                const T *xb = FN(fc_dil_xsrc_)(s, gp, X, ximg, &col, bb, g * cig, &ldx);
                FN(fc_dil_gemm_)(ctx, 'N', 'T', mb, (be - bb) * cig, (i1 - i0) * col.cb, A, lda,
                                 xb + xrow * col.cb, ldx,
                                 (T)1, acc + FN(fc_dil_wp_)(s, gp, ta, co0, bb), s->kw * cig);
            }
            fc_fpmode_leave(fp);
        }
    }
    for (a = 0; a < s->kh; a++)   /* acc read in order (see fc_dil_pack_weights_) */
        for (co = 0; co < c_out; co++)
            for (b = 0; b < s->kw; b++) {
                const T *restrict src = acc + FN(fc_dil_wp_)(s, gp, a, co, b);
                T *restrict dst = gw + co * cig * gp->khkw + a * s->kw + b;
                for (ci = 0; ci < cig; ci++) dst[ci * gp->khkw] = src[ci];
            }
    fc_dil_bufs_give(ctx, &mem);
    return FC_OK;
}

fc_status FN(fc_conv2d_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *x,
                                 const T *w, const T *bias, T *y) {
    fc_status st;
    fc_dil_plan pl;
    fc_dil_gemm_plan gp;
    fc_dil_bufs mem = {0, {0}, {NULL}};
    T *xs, *ys;
    if (FN(fc_dil_prologue_)(ctx, s, 0, y, bias, &st)) return st;
    /* x may be NULL when it has no elements (h_in or w_in 0: all taps are padding) */
    if ((!x && s->h_in > 0 && s->w_in > 0) || !w) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    {   /* WaveNet-like rows: the row kernels (conv_dilated_row.h) */
        int64_t rk;
        if (fc_drk_plan(ctx, s, (int)sizeof(T), 0, &rk)) return DRK_CALL(ctx, fc_dil_row_forward_, s, x, w, bias, y);
    }
#endif
    if (!fc_dil_prefer_split(ctx, s, 0) && fc_dil_gemm_plan_make(ctx, s, (int)sizeof(T), &gp))
        return gp.row ? FN(fc_dil_gemm_forward_row_)(ctx, s, &gp, x, w, bias, y)
                      : FN(fc_dil_gemm_forward_)(ctx, s, &gp, x, w, bias, y);
    if ((st = fc_dil_split_bufs(ctx, s, (int)sizeof(T), &pl, &mem))) return st;
    xs = (T *)mem.p[0]; ys = (T *)mem.p[1];
    FN(fc_dil_split_input_)(ctx, s, &pl, x, xs, 0);
    st = DENSE(fc_conv2d)(ctx, &pl.dense, FC_DIL_INNER, xs, w, bias, ys);
    if (st == FC_OK) FN(fc_dil_merge_output_)(ctx, s, &pl, ys, y);
    fc_dil_bufs_give(ctx, &mem);
    return st;
}

/* Grad input of a stride-1 layer (padding <= dil*(k-1)) as the forward
 * convolution of grad_out with the kernel flipped and its channel axes
 * swapped (fc_dil_gin_fwd_shape), through the sub-image path: the dense
 * sub-convolutions then compute only real input positions (the dense grad
 * input of the sub-images would also compute the gradient of every
 * sub-image padding position: 12-25% more work at DeepLab rates 2-6).
 * Buffers: p[0] the rearranged weights, p[1] / p[2] the split gy / gx. */
static fc_status FN(fc_dil_grad_input_fwd_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                            const T *w, T *gx) {
    fc_status st;
    fc_conv_shape f;
    fc_dil_plan pl;
    fc_dil_bufs mem = {0, {0}, {NULL}};
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups, kk = s->kh * s->kw;
    int64_t it, items;
    T *wt, *gys, *gxs;
    fc_dil_gin_fwd_shape(s, &f);
    if ((st = fc_dil_make_plan(&f, &pl))) return st;
    mem.n = 3;
    mem.bytes[0] = s->c_out * cig * kk * (int64_t)sizeof(T);
    mem.bytes[1] = pl.sub_in * (int64_t)sizeof(T);
    mem.bytes[2] = pl.sub_out * (int64_t)sizeof(T);
    if ((st = fc_dil_bufs_take(ctx, &mem))) return st;
    wt = (T *)mem.p[0]; gys = (T *)mem.p[1]; gxs = (T *)mem.p[2];
    /* wt[g*cig + ci, co, kh-1-a, kw-1-b] = w[g*cog + co, ci, a, b], written in order */
    items = s->c_in * cog;
    for (it = 0; it < items; it++) {
        const int64_t co = it % cog, gi = it / cog, g = gi / cig, ci = gi % cig;
        const T *restrict src = w + ((g * cog + co) * cig + ci) * kk;
        T *restrict dst = wt + it * kk;
        int64_t k;
        for (k = 0; k < kk; k++) dst[k] = src[kk - 1 - k];
    }
    FN(fc_dil_split_input_)(ctx, &f, &pl, gy, gys, 0);
    st = DENSE(fc_conv2d)(ctx, &pl.dense, FC_DIL_INNER, gys, wt, NULL, gxs);
    if (st == FC_OK) FN(fc_dil_merge_output_)(ctx, &f, &pl, gxs, gx);
    fc_dil_bufs_give(ctx, &mem);
    return st;
}

fc_status FN(fc_conv2d_grad_input_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                            const T *w, T *gx) {
    fc_status st;
    fc_dil_plan pl;
    fc_dil_gemm_plan gp;
    fc_dil_bufs mem = {0, {0}, {NULL}};
    T *gys, *gxs;
    if (FN(fc_dil_prologue_)(ctx, s, 1, gx, NULL, &st)) return st;
    if (!gy || !w) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    {   /* WaveNet-like rows: the row kernels (conv_dilated_row.h) */
        int64_t rk;
        if (fc_drk_plan(ctx, s, (int)sizeof(T), 1, &rk)) return DRK_CALL(ctx, fc_dil_row_grad_input_, s, gy, w, gx);
    }
#endif
    if (!fc_dil_prefer_split(ctx, s, 1) && fc_dil_gemm_plan_make(ctx, s, (int)sizeof(T), &gp))
        return gp.rowi ? FN(fc_dil_gemm_grad_input_row_)(ctx, s, &gp, gy, w, gx)
             : gp.view ? FN(fc_dil_gemm_grad_input_view_)(ctx, s, &gp, gy, w, gx)
                       : FN(fc_dil_gemm_grad_input_)(ctx, s, &gp, gy, w, gx);
    if (fc_dil_gin_as_fwd(s)) return FN(fc_dil_grad_input_fwd_)(ctx, s, gy, w, gx);
    if ((st = fc_dil_split_bufs(ctx, s, (int)sizeof(T), &pl, &mem))) return st;
    gxs = (T *)mem.p[0]; gys = (T *)mem.p[1];
    FN(fc_dil_split_output_)(ctx, s, &pl, gy, gys);
    st = DENSE(fc_conv2d_grad_input)(ctx, &pl.dense, FC_DIL_INNER, gys, w, gxs);
    if (st == FC_OK) FN(fc_dil_merge_input_)(ctx, s, &pl, gxs, gx);
    fc_dil_bufs_give(ctx, &mem);
    return st;
}

fc_status FN(fc_conv2d_grad_weight_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                             const T *x, T *gw) {
    fc_status st;
    fc_dil_plan pl;
    fc_dil_gemm_plan gp;
    fc_dil_bufs mem = {0, {0}, {NULL}};
    T *xs, *gys;
    if (FN(fc_dil_prologue_)(ctx, s, 2, gw, NULL, &st)) return st;
    if (!gy || (!x && s->h_in > 0 && s->w_in > 0)) return FC_ERR_ARG;
#ifdef FC_WITH_AVX2
    {   /* WaveNet-like rows: the row kernels (conv_dilated_row.h) */
        int64_t rk;
        if (fc_drk_plan(ctx, s, (int)sizeof(T), 2, &rk)) return DRK_CALL(ctx, fc_dil_row_grad_weight_, s, gy, x, gw);
    }
#endif
    if (!fc_dil_prefer_split(ctx, s, 2) && fc_dil_gemm_plan_make(ctx, s, (int)sizeof(T), &gp))
        return gp.row ? FN(fc_dil_gemm_grad_weight_row_)(ctx, s, &gp, gy, x, gw)
                      : FN(fc_dil_gemm_grad_weight_)(ctx, s, &gp, gy, x, gw);
    if ((st = fc_dil_split_bufs(ctx, s, (int)sizeof(T), &pl, &mem))) return st;
    xs = (T *)mem.p[0]; gys = (T *)mem.p[1];
    FN(fc_dil_split_input_)(ctx, s, &pl, x, xs, 1);
    FN(fc_dil_split_output_)(ctx, s, &pl, gy, gys);
    st = DENSE(fc_conv2d_grad_weight)(ctx, &pl.dense, FC_DIL_INNER, gys, xs, gw);
    fc_dil_bufs_give(ctx, &mem);
    return st;
}

#undef DENSE
#undef DRK
#undef DRKZ
#undef DRK_CALL
#undef FN
#undef FC_JOIN
#undef FC_JOIN2
