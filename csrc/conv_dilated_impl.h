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

/* Threads for `rows` rows of `len` copied elements each: copies are memory
 * bound, so only large copies are split. */
static int FN(fc_dil_copy_threads_)(const fc_context *ctx, int64_t rows, int64_t len) {
    int64_t total;
    if (fc_checked_mul(rows, len < 1 ? 1 : len, &total)) total = INT64_MAX;
    return fc_threads_for(ctx, FC_MIN(rows, total / 32768 + 1));
}

/* Range [lo, hi) of sub-image positions l whose padded position
 * off + step*l - pad lands inside [0, in), clipped to [0, size). */
static inline void FN(fc_dil_range_)(int64_t off, int64_t step, int64_t pad, int64_t in,
                                     int64_t size, int64_t *lo, int64_t *hi) {
    /* off + step*l - pad >= 0  <=>  l >= ceil((pad - off)/step) */
    int64_t a = -fc_floordiv(off - pad, step);
    /* off + step*l - pad < in  <=>  l < ceil((in + pad - off)/step) */
    int64_t b = -fc_floordiv(off - pad - in, step);
    if (a < 0) a = 0;
    if (b > size) b = size;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* xs[(n*ph + rh)*pw + rw, c, m, l] = xpad[n, c, sh*rh + dh*m, sw*rw + dw*l]
 * (zero outside x).  One work item per (n, rh, c, m): the source row is read
 * for all pw classes while it is in cache. */
static void FN(fc_dil_split_input_)(const fc_context *ctx, const fc_conv_shape *s,
                                    const fc_dil_plan *pl, const T *x, T *xs) {
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
        const int row_in = ih >= 0 && ih < s->h_in;
        const T *src = row_in ? x + ((nn * c_in + c) * s->h_in + ih) * s->w_in : NULL;
        int64_t rw;
        for (rw = 0; rw < pw; rw++) {
            T *restrict dst = xs + ((((nn * ph + rh) * pw + rw) * c_in + c) * hs + m) * ws;
            int64_t lo = 0, hi = 0, l;
            const int64_t off = s->stride_w * rw;
            if (row_in) FN(fc_dil_range_)(off, s->dil_w, s->pad_w, s->w_in, ws, &lo, &hi);
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
            FN(fc_dil_range_)(off, s->dil_w, s->pad_w, w_in, ws, &lo, &hi);
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

fc_status FN(fc_conv2d_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *x,
                                 const T *w, const T *bias, T *y) {
    fc_status st;
    fc_dil_plan pl;
    T *xs, *ys;
    if (!ctx || !s) return FC_ERR_ARG;
    if ((st = fc_conv_check(s))) return st;
    if (fc_dil_result_elems(s, 0) == 0) return FC_OK;
    if (!y) return FC_ERR_ARG;
    if (fc_dil_trivial(s)) {  /* c_in == 0: every output is its bias */
        FN(fc_dil_fill_)(y, fc_dil_result_elems(s, 0), s->h_out * s->w_out, bias, s->c_out);
        return FC_OK;
    }
    if (!x || !w) return FC_ERR_ARG;
    if ((st = fc_dil_make_plan(s, &pl))) return st;
    xs = (T *)fc_ws_alloc(ctx, pl.sub_in * (int64_t)sizeof(T));
    ys = (T *)fc_ws_alloc(ctx, pl.sub_out * (int64_t)sizeof(T));
    if (!xs || !ys) { st = FC_ERR_NOMEM; goto done; }
    FN(fc_dil_split_input_)(ctx, s, &pl, x, xs);
    st = DENSE(fc_conv2d)(ctx, &pl.dense, FC_DIL_INNER, xs, w, bias, ys);
    if (st == FC_OK) FN(fc_dil_merge_output_)(ctx, s, &pl, ys, y);
done:
    fc_ws_free(ctx, ys, pl.sub_out * (int64_t)sizeof(T));
    fc_ws_free(ctx, xs, pl.sub_in * (int64_t)sizeof(T));
    return st;
}

fc_status FN(fc_conv2d_grad_input_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                            const T *w, T *gx) {
    fc_status st;
    fc_dil_plan pl;
    T *gys, *gxs;
    if (!ctx || !s) return FC_ERR_ARG;
    if ((st = fc_conv_check(s))) return st;
    if (fc_dil_result_elems(s, 1) == 0) return FC_OK;
    if (!gx) return FC_ERR_ARG;
    if (fc_dil_trivial(s)) {  /* no output reads the input */
        FN(fc_dil_fill_)(gx, fc_dil_result_elems(s, 1), 1, NULL, 1);
        return FC_OK;
    }
    if (!gy || !w) return FC_ERR_ARG;
    if ((st = fc_dil_make_plan(s, &pl))) return st;
    gys = (T *)fc_ws_alloc(ctx, pl.sub_out * (int64_t)sizeof(T));
    gxs = (T *)fc_ws_alloc(ctx, pl.sub_in * (int64_t)sizeof(T));
    if (!gys || !gxs) { st = FC_ERR_NOMEM; goto done; }
    FN(fc_dil_split_output_)(ctx, s, &pl, gy, gys);
    st = DENSE(fc_conv2d_grad_input)(ctx, &pl.dense, FC_DIL_INNER, gys, w, gxs);
    if (st == FC_OK) FN(fc_dil_merge_input_)(ctx, s, &pl, gxs, gx);
done:
    fc_ws_free(ctx, gxs, pl.sub_in * (int64_t)sizeof(T));
    fc_ws_free(ctx, gys, pl.sub_out * (int64_t)sizeof(T));
    return st;
}

fc_status FN(fc_conv2d_grad_weight_dilated_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                             const T *x, T *gw) {
    fc_status st;
    fc_dil_plan pl;
    T *xs, *gys;
    if (!ctx || !s) return FC_ERR_ARG;
    if ((st = fc_conv_check(s))) return st;
    if (fc_dil_result_elems(s, 2) == 0) return FC_OK;
    if (!gw) return FC_ERR_ARG;
    if (fc_dil_trivial(s)) {  /* empty sums */
        FN(fc_dil_fill_)(gw, fc_dil_result_elems(s, 2), 1, NULL, 1);
        return FC_OK;
    }
    if (!gy || !x) return FC_ERR_ARG;
    if ((st = fc_dil_make_plan(s, &pl))) return st;
    xs = (T *)fc_ws_alloc(ctx, pl.sub_in * (int64_t)sizeof(T));
    gys = (T *)fc_ws_alloc(ctx, pl.sub_out * (int64_t)sizeof(T));
    if (!xs || !gys) { st = FC_ERR_NOMEM; goto done; }
    FN(fc_dil_split_input_)(ctx, s, &pl, x, xs);
    FN(fc_dil_split_output_)(ctx, s, &pl, gy, gys);
    st = DENSE(fc_conv2d_grad_weight)(ctx, &pl.dense, FC_DIL_INNER, gys, xs, gw);
done:
    fc_ws_free(ctx, gys, pl.sub_out * (int64_t)sizeof(T));
    fc_ws_free(ctx, xs, pl.sub_in * (int64_t)sizeof(T));
    return st;
}

#undef DENSE
#undef FN
#undef FC_JOIN
#undef FC_JOIN2
