/* Type-generic body of conv_im2col.c, included once per dtype with
 * FC_I2C_T (element type), FC_I2C_SFX (f32/f64) and FC_I2C_GEMM (the
 * fc_context member: sgemm/dgemm) defined.  No include guard on purpose. */
#define FC_I2C_CAT2(a, b) a##_##b
#define FC_I2C_CAT(a, b) FC_I2C_CAT2(a, b)
#define FC_I2C_NAME(base) FC_I2C_CAT(base, FC_I2C_SFX)
#define FT FC_I2C_T

/* The chunk with index ci: images [n0, n0+nbc), output rows [r0, r0+rows). */
static inline void FC_I2C_NAME(chunk_of)(const im2col_plan *p, const fc_conv_shape *s, int64_t ci,
                                         int64_t *n0, int64_t *nbc, int64_t *r0, int64_t *rows) {
    if (p->nb > 1) {
        *n0 = ci * p->nb;
        *nbc = FC_MIN(p->nb, s->n - *n0);
        *r0 = 0;
        *rows = s->h_out;
    } else {
        *n0 = ci / p->rchunks;
        *nbc = 1;
        *r0 = (ci % p->rchunks) * p->R;
        *rows = FC_MIN(p->R, s->h_out - *r0);
    }
}

/* col[k][q] (ld = P) for channels [c0, c0+cbc) of group g over the chunk:
 * q = b*rows*w_out + r*w_out + ow.  Padding taps become zero runs, stride-1
 * rows are one memcpy. */
static void FC_I2C_NAME(im2col)(const fc_conv_shape *s, const im2col_plan *p, const FT *x,
                                int64_t g, int64_t c0, int64_t cbc, int64_t n0, int64_t nbc,
                                int64_t r0, int64_t rows, FT *col, int64_t P) {
    const int64_t wo = s->w_out, hin = s->h_in, win = s->w_in;
    const int64_t plane = hin * win;
    int64_t c, i, j, b, r;
    for (c = 0; c < cbc; c++) {
        for (i = 0; i < s->kh; i++) {
            const int64_t offh = i * s->dil_h - s->pad_h;
            for (j = 0; j < s->kw; j++) {
                const int64_t offw = j * s->dil_w - s->pad_w;
                int64_t lo, hi;
                FT *dk = col + ((c * s->kh + i) * s->kw + j) * P;
                valid_range(offw, s->stride_w, win, wo, &lo, &hi);
                for (b = 0; b < nbc; b++) {
                    const FT *xp = x + ((n0 + b) * s->c_in + g * p->cig + c0 + c) * plane;
                    for (r = 0; r < rows; r++) {
                        const int64_t ih = (r0 + r) * s->stride_h + offh;
                        FT *d = dk + (b * rows + r) * wo;
                        const FT *src;
                        if (ih < 0 || ih >= hin) {
                            memset(d, 0, (size_t)wo * sizeof(FT));
                            continue;
                        }
                        src = xp + ih * win + offw;   /* src[ow*stride] is tap ow */
                        if (lo > 0) memset(d, 0, (size_t)lo * sizeof(FT));
                        if (s->stride_w == 1) {
                            memcpy(d + lo, src + lo, (size_t)(hi - lo) * sizeof(FT));
                        } else {
                            const int64_t sw = s->stride_w;
                            int64_t ow;
                            for (ow = lo; ow < hi; ow++) d[ow] = src[ow * sw];
                        }
                        if (hi < wo) memset(d + hi, 0, (size_t)(wo - hi) * sizeof(FT));
                    }
                }
            }
        }
    }
}

/* gx += col2im(col): the adjoint of im2col above (padding taps dropped). */
static void FC_I2C_NAME(col2im)(const fc_conv_shape *s, const im2col_plan *p, const FT *col,
                                int64_t g, int64_t c0, int64_t cbc, int64_t n0, int64_t nbc,
                                int64_t r0, int64_t rows, FT *gx, int64_t P) {
    const int64_t wo = s->w_out, hin = s->h_in, win = s->w_in;
    const int64_t plane = hin * win;
    int64_t c, i, j, b, r;
    for (c = 0; c < cbc; c++) {
        for (i = 0; i < s->kh; i++) {
            const int64_t offh = i * s->dil_h - s->pad_h;
            for (j = 0; j < s->kw; j++) {
                const int64_t offw = j * s->dil_w - s->pad_w;
                int64_t lo, hi;
                const FT *sk = col + ((c * s->kh + i) * s->kw + j) * P;
                valid_range(offw, s->stride_w, win, wo, &lo, &hi);
                if (hi <= lo) continue;
                for (b = 0; b < nbc; b++) {
                    FT *gp = gx + ((n0 + b) * s->c_in + g * p->cig + c0 + c) * plane;
                    for (r = 0; r < rows; r++) {
                        const int64_t ih = (r0 + r) * s->stride_h + offh;
                        const FT *sr = sk + (b * rows + r) * wo;
                        FT *dst;
                        int64_t ow;
                        if (ih < 0 || ih >= hin) continue;
                        dst = gp + ih * win + offw;
                        if (s->stride_w == 1) {
                            FT *restrict d1 = dst;
                            const FT *restrict s1 = sr;
                            for (ow = lo; ow < hi; ow++) d1[ow] += s1[ow];
                        } else {
                            const int64_t sw = s->stride_w;
                            for (ow = lo; ow < hi; ow++) dst[ow * sw] += sr[ow];
                        }
                    }
                }
            }
        }
    }
}

/* stage[o][q] (ld = P) <- gy channels of group g for a multi-image chunk. */
static void FC_I2C_NAME(gather_out)(const fc_conv_shape *s, const im2col_plan *p, const FT *gy,
                                    int64_t g, int64_t n0, int64_t nbc, FT *stage, int64_t P) {
    int64_t b, o;
    for (o = 0; o < p->cog; o++)
        for (b = 0; b < nbc; b++)
            memcpy(stage + o * P + b * p->HW,
                   gy + ((n0 + b) * s->c_out + g * p->cog + o) * p->HW, (size_t)p->HW * sizeof(FT));
}

static void FC_I2C_NAME(free_bufs)(fc_context *ctx, const im2col_plan *p, FT **bufs) {
    int t;
    for (t = 0; t < p->threads; t++)
        if (bufs[t]) fc_ws_free(ctx, bufs[t], p->per_thread_bytes);
}

/* Allocates p->threads per-thread buffers (all up front, so the reported
 * workspace does not depend on how many threads OpenMP really starts); on
 * failure frees what it got and returns FC_ERR_NOMEM. */
static fc_status FC_I2C_NAME(alloc_bufs)(fc_context *ctx, const im2col_plan *p, FT **bufs) {
    int t;
    for (t = 0; t < p->threads; t++) bufs[t] = NULL;
    if (p->per_thread_bytes == 0) return FC_OK;
    for (t = 0; t < p->threads; t++) {
        bufs[t] = (FT *)fc_ws_alloc(ctx, p->per_thread_bytes);
        if (!bufs[t]) {
            FC_I2C_NAME(free_bufs)(ctx, p, bufs);
            return FC_ERR_NOMEM;
        }
    }
    return FC_OK;
}

/* The column matrix of a chunk (channels [c0, c0+cbc) of group g): x itself
 * for the 1x1 identity within one image, else im2col into col.  Sets *ld. */
static const FT *FC_I2C_NAME(cols_of)(const fc_conv_shape *s, const im2col_plan *p, const FT *x,
                                      int64_t g, int64_t c0, int64_t cbc, int64_t n0, int64_t nbc,
                                      int64_t r0, int64_t rows, FT *col, int64_t P, int *ld) {
    if (p->identity && p->nb == 1) {
        *ld = (int)p->HW;
        return x + (n0 * s->c_in + g * p->cig + c0) * p->HW + r0 * s->w_out;
    }
    FC_I2C_NAME(im2col)(s, p, x, g, c0, cbc, n0, nbc, r0, rows, col, P);
    *ld = (int)P;
    return col;
}

/* grad_out of group g over a chunk as a P x cog matrix: in place for a
 * chunk of rows of one image, else staged (gather_out).  Sets *ld. */
static const FT *FC_I2C_NAME(gy_of)(const fc_conv_shape *s, const im2col_plan *p, const FT *gy,
                                    int64_t g, int64_t n0, int64_t nbc, int64_t r0, FT *stage,
                                    int64_t P, int *ld) {
    if (p->nb == 1) {
        *ld = (int)p->HW;
        return gy + (n0 * s->c_out + g * p->cog) * p->HW + r0 * s->w_out;
    }
    FC_I2C_NAME(gather_out)(s, p, gy, g, n0, nbc, stage, P);
    *ld = (int)P;
    return stage;
}

/* The start the three passes share: the plan for `pass` and, when there is
 * nothing to multiply, the whole call (out = the bias or zero for the
 * forward, zero for the gradients).  Returns 1 when the call is finished,
 * with its status in *st; 0 when the GEMMs must run. */
static int FC_I2C_NAME(prologue)(fc_context *ctx, const fc_conv_shape *s, int pass, const FT *bias,
                                 FT *out, im2col_plan *p, fc_status *st) {
    int64_t rows, len, q, e;
    *st = FC_OK;
    if (!ctx || !s) {
        *st = FC_ERR_ARG;
        return 1;
    }
    if ((*st = im2col_plan_make(ctx, s, (int)sizeof(FT), pass, p))) return 1;
    if (!p->trivial) {
        if (ctx->FC_I2C_GEMM) return 0;
        *st = FC_ERR_UNSUPPORTED;   /* no BLAS */
        return 1;
    }
    if (pass == 0) {
        rows = s->n * s->c_out; len = p->HW;
    } else if (pass == 1) {
        rows = s->n * s->c_in; len = s->h_in * s->w_in;
    } else {
        rows = s->c_out; len = p->K;
    }
    if (rows == 0 || len == 0) return 1;
    for (q = 0; q < rows; q++) {
        const FT v = bias ? bias[q % s->c_out] : (FT)0;
        FT *o = out + q * len;
        for (e = 0; e < len; e++) o[e] = v;
    }
    return 1;
}

/* ---- forward ---------------------------------------------------------- */

/* The forward pass for plan p of shape s (non-trivial, BLAS present). */
static fc_status FC_I2C_NAME(forward_run)(fc_context *ctx, const fc_conv_shape *s,
                                          const im2col_plan *pp, const FT *x, const FT *w,
                                          const FT *bias, FT *y) {
    const im2col_plan p = *pp;
    FT *bufs[FC_I2C_MAX_THREADS];
    fc_status st;
    int64_t task;
    if ((st = FC_I2C_NAME(alloc_bufs)(ctx, &p, bufs))) return st;
#ifdef _OPENMP
#pragma omp parallel num_threads(p.threads) if (p.threads > 1)
#endif
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FT *col = bufs[FC_OMP_THREAD_NUM()];
        FT *stage = col ? col + p.col_elems : NULL;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (task = 0; task < p.ntasks; task++) {
            const int64_t g = task / p.nchunks, ci = task % p.nchunks;
            int64_t n0, nbc, r0, rows, P;
            const FT *A;
            FT *C;
            int m, nn, k, lda, ldb, ldc;
            FT one = 1, beta = 0;
            char tn = 'N';
            FC_I2C_NAME(chunk_of)(&p, s, ci, &n0, &nbc, &r0, &rows);
            P = nbc * rows * s->w_out;
            A = FC_I2C_NAME(cols_of)(s, &p, x, g, 0, p.cig, n0, nbc, r0, rows, col, P, &lda);
            if (p.nb == 1) {
                C = y + (n0 * s->c_out + g * p.cog) * p.HW + r0 * s->w_out;
                ldc = (int)p.HW;
                if (bias) {
                    /* y starts as the bias and the GEMM accumulates onto it */
                    int64_t o, e;
                    for (o = 0; o < p.cog; o++) {
                        FT v = bias[g * p.cog + o], *yo = C + o * p.HW;
                        for (e = 0; e < P; e++) yo[e] = v;
                    }
                    beta = 1;
                }
            } else {
                C = stage;
                ldc = (int)P;
            }
            m = (int)P; nn = (int)p.cog; k = (int)p.K; ldb = (int)p.K;
            ctx->FC_I2C_GEMM(&tn, &tn, &m, &nn, &k, &one, (FT *)A, &lda,
                             (FT *)(w + g * p.cog * p.K), &ldb, &beta, C, &ldc);
            if (p.nb > 1) {
                int64_t b, o, e;
                for (b = 0; b < nbc; b++)
                    for (o = 0; o < p.cog; o++) {
                        const FT *sp = stage + o * P + b * p.HW;
                        FT *yo = y + ((n0 + b) * s->c_out + g * p.cog + o) * p.HW;
                        FT v = bias ? bias[g * p.cog + o] : (FT)0;
                        if (bias) for (e = 0; e < p.HW; e++) yo[e] = sp[e] + v;
                        else memcpy(yo, sp, (size_t)p.HW * sizeof(FT));
                    }
            }
        }
        fc_fpmode_leave(fpm);
    }
    FC_I2C_NAME(free_bufs)(ctx, &p, bufs);
    return FC_OK;
}

fc_status FC_I2C_NAME(fc_conv2d_im2col)(fc_context *ctx, const fc_conv_shape *s, const FT *x,
                                        const FT *w, const FT *bias, FT *y) {
    im2col_plan p;
    fc_status st;
    if (FC_I2C_NAME(prologue)(ctx, s, 0, bias, y, &p, &st)) return st;
    return FC_I2C_NAME(forward_run)(ctx, s, &p, x, w, bias, y);
}

/* grad input in forward form: wrot[g][c][o][i'][j'] = w[g][o][c][kh-1-i'][kw-1-j'],
 * then the forward convolution of gy with it (see im2col_plan_make). */
static fc_status FC_I2C_NAME(grad_input_fwd_form)(fc_context *ctx, const fc_conv_shape *s,
                                                  const im2col_plan *p, const FT *gy,
                                                  const FT *w, FT *gx) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t kh = s->kh, kw = s->kw, khkw = kh * kw;
    FT *wrot = (FT *)fc_ws_alloc(ctx, p->wrot_bytes);
    fc_status st;
    int64_t gc;
    if (!wrot) return FC_ERR_NOMEM;
#ifdef _OPENMP
#pragma omp parallel for num_threads(p->threads) if (p->threads > 1) schedule(static)
#endif
    for (gc = 0; gc < s->c_in; gc++) {       /* gc = g*cig + c */
        const int64_t g = gc / cig, c = gc % cig;
        int64_t o, t;
        for (o = 0; o < cog; o++) {
            const FT *src = w + ((g * cog + o) * cig + c) * khkw;
            FT *dst = wrot + (gc * cog + o) * khkw;
            for (t = 0; t < khkw; t++) dst[t] = src[khkw - 1 - t];   /* (i,j) -> (kh-1-i, kw-1-j) */
        }
    }
    st = FC_I2C_NAME(forward_run)(ctx, &p->fwd, p, gy, wrot, NULL, gx);
    fc_ws_free(ctx, wrot, p->wrot_bytes);
    return st;
}

/* ---- grad input (and transposed convolution forward) ------------------ */

fc_status FC_I2C_NAME(fc_conv2d_grad_input_im2col)(fc_context *ctx, const fc_conv_shape *s,
                                                   const FT *gy, const FT *w, FT *gx) {
    im2col_plan p;
    FT *bufs[FC_I2C_MAX_THREADS];
    fc_status st;
    int64_t task;
    if (FC_I2C_NAME(prologue)(ctx, s, 1, NULL, gx, &p, &st)) return st;
    if (p.fwd_form) return FC_I2C_NAME(grad_input_fwd_form)(ctx, s, &p, gy, w, gx);
    if ((st = FC_I2C_NAME(alloc_bufs)(ctx, &p, bufs))) return st;
#ifdef _OPENMP
#pragma omp parallel num_threads(p.threads) if (p.threads > 1)
#endif
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FT *col = bufs[FC_OMP_THREAD_NUM()];
        FT *stage = col ? col + p.col_elems : NULL;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (task = 0; task < p.ntasks; task++) {
            const int64_t g = task / p.nkb, c0 = (task % p.nkb) * p.cb;
            const int64_t cbc = FC_MIN(p.cb, p.cig - c0);
            const int64_t plane = s->h_in * s->w_in;
            const int direct_out = p.identity && p.nb == 1;
            int64_t ci, b;
            if (!direct_out)   /* col2im accumulates: start this task's channels at zero */
                for (b = 0; b < s->n; b++)
                    memset(gx + (b * s->c_in + g * p.cig + c0) * plane, 0,
                           (size_t)(cbc * plane) * sizeof(FT));
            for (ci = 0; ci < p.nchunks; ci++) {
                int64_t n0, nbc, r0, rows, P;
                const FT *G;
                FT *C;
                int m, nn, k, ldg, ldb, ldc;
                FT one = 1, zero = 0;
                char tn = 'N', tt = 'T';
                FC_I2C_NAME(chunk_of)(&p, s, ci, &n0, &nbc, &r0, &rows);
                P = nbc * rows * s->w_out;
                G = FC_I2C_NAME(gy_of)(s, &p, gy, g, n0, nbc, r0, stage, P, &ldg);
                if (direct_out) {
                    C = gx + (n0 * s->c_in + g * p.cig + c0) * plane + r0 * s->w_out;
                    ldc = (int)p.HW;
                } else {
                    C = col;
                    ldc = (int)P;
                }
                m = (int)P; nn = (int)(cbc * p.khkw); k = (int)p.cog; ldb = (int)p.K;
                ctx->FC_I2C_GEMM(&tn, &tt, &m, &nn, &k, &one, (FT *)G, &ldg,
                                 (FT *)(w + g * p.cog * p.K + c0 * p.khkw), &ldb, &zero, C, &ldc);
                if (!direct_out)
                    FC_I2C_NAME(col2im)(s, &p, col, g, c0, cbc, n0, nbc, r0, rows, gx, P);
            }
        }
        fc_fpmode_leave(fpm);
    }
    FC_I2C_NAME(free_bufs)(ctx, &p, bufs);
    return FC_OK;
}

/* ---- grad weight ------------------------------------------------------ */

fc_status FC_I2C_NAME(fc_conv2d_grad_weight_im2col)(fc_context *ctx, const fc_conv_shape *s,
                                                    const FT *gy, const FT *x, FT *gw) {
    im2col_plan p;
    FT *bufs[FC_I2C_MAX_THREADS];
    fc_status st;
    int64_t task;
    if (FC_I2C_NAME(prologue)(ctx, s, 2, NULL, gw, &p, &st)) return st;
    if ((st = FC_I2C_NAME(alloc_bufs)(ctx, &p, bufs))) return st;
#ifdef _OPENMP
#pragma omp parallel num_threads(p.threads) if (p.threads > 1)
#endif
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FT *col = bufs[FC_OMP_THREAD_NUM()];
        FT *stage = col ? col + p.col_elems : NULL;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (task = 0; task < p.ntasks; task++) {
            /* this task owns gw[g*cog:(g+1)*cog, c0*khkw:(c0+cbc)*khkw] and sums
             * the chunks into it in index order: no cross-thread reduction */
            const int64_t g = task / p.nkb, c0 = (task % p.nkb) * p.cb;
            const int64_t cbc = FC_MIN(p.cb, p.cig - c0);
            int64_t ci;
            for (ci = 0; ci < p.nchunks; ci++) {
                int64_t n0, nbc, r0, rows, P;
                const FT *A, *G;
                int m, nn, k, lda, ldg, ldc;
                FT one = 1, beta = ci == 0 ? (FT)0 : (FT)1;
                char tn = 'N', tt = 'T';
                FC_I2C_NAME(chunk_of)(&p, s, ci, &n0, &nbc, &r0, &rows);
                P = nbc * rows * s->w_out;
                G = FC_I2C_NAME(gy_of)(s, &p, gy, g, n0, nbc, r0, stage, P, &ldg);
                A = FC_I2C_NAME(cols_of)(s, &p, x, g, c0, cbc, n0, nbc, r0, rows, col, P, &lda);
                m = (int)(cbc * p.khkw); nn = (int)p.cog; k = (int)P; ldc = (int)p.K;
                ctx->FC_I2C_GEMM(&tt, &tn, &m, &nn, &k, &one, (FT *)A, &lda, (FT *)G, &ldg,
                                 &beta, gw + g * p.cog * p.K + c0 * p.khkw, &ldc);
            }
        }
        fc_fpmode_leave(fpm);
    }
    FC_I2C_NAME(free_bufs)(ctx, &p, bufs);
    return FC_OK;
}

#undef FT
#undef FC_I2C_NAME
#undef FC_I2C_CAT
#undef FC_I2C_CAT2
