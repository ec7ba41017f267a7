/* Direct convolution kernels, written once for element type T with name
 * suffix SFX (f32 / f64).  Included by conv_direct.c only; see there for
 * the design notes.  All index arithmetic is int64_t. */
#ifndef T
#error "define T and SFX before including conv_direct_impl.h"
#endif

#define FC_JOIN2(a, b) a##b
#define FC_JOIN(a, b) FC_JOIN2(a, b)
#define FN(name) FC_JOIN(name, SFX)

/* Dot product of a[0..len) with b[0, bs, 2*bs, ...] in a fixed order: eight
 * interleaved partial sums (so the compiler can vectorise without
 * reassociating), combined pairwise, then the tail. */
static inline T FN(fc_dot_)(const T *restrict a, const T *restrict b, int64_t len, int64_t bs) {
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    T sum;
    int64_t i = 0, l;
    if (bs == 1) {
        for (; i + 8 <= len; i += 8)
            for (l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    } else {
        for (; i + 8 <= len; i += 8)
            for (l = 0; l < 8; l++) acc[l] += a[i + l] * b[(i + l) * bs];
    }
    sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < len; i++) sum += a[i] * b[i * bs];
    return sum;
}

/* Sum of a[0..len) in the same fixed order. */
static inline T FN(fc_sum_)(const T *restrict a, int64_t len) {
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    T sum;
    int64_t i = 0, l;
    for (; i + 8 <= len; i += 8)
        for (l = 0; l < 8; l++) acc[l] += a[i + l];
    sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < len; i++) sum += a[i];
    return sum;
}

/* ---- forward ------------------------------------------------------------
 * One output row y[nn, co, oh, :]: start from the bias, then for every input
 * channel of the group and every kernel tap add w * (the input row segment
 * that tap sees).  Terms are summed in (ci, i, j) order. */
static void FN(fc_fwd_row_)(const fc_conv_shape *s, const T *restrict ximg, const T *restrict wco,
                            T b, T *restrict yrow, int64_t oh, int64_t cig, int64_t ci0) {
    const int64_t kh = s->kh, kw = s->kw, w_in = s->w_in, h_in = s->h_in, w_out = s->w_out;
    const int64_t sw = s->stride_w;
    int64_t ow, ci, i, j;
    for (ow = 0; ow < w_out; ow++) yrow[ow] = b;
    for (ci = 0; ci < cig; ci++) {
        const T *xplane = ximg + (ci0 + ci) * h_in * w_in;
        for (i = 0; i < kh; i++) {
            const int64_t ih = oh * s->stride_h - s->pad_h + i * s->dil_h;
            const T *xrow, *wk;
            if (ih < 0 || ih >= h_in) continue;
            xrow = xplane + ih * w_in;
            wk = wco + (ci * kh + i) * kw;
            for (j = 0; j < kw; j++) {
                const int64_t off = j * s->dil_w - s->pad_w;  /* iw = ow*sw + off */
                const T wv = wk[j];
                int64_t lo, hi, k, len;
                fc_tap_range(w_in, w_out, sw, off, &lo, &hi);
                len = hi - lo;
                if (len <= 0) continue;
                {
                    T *restrict yr = yrow + lo;
                    const T *restrict xr = xrow + lo * sw + off;
                    if (sw == 1) {
                        for (k = 0; k < len; k++) yr[k] += wv * xr[k];
                    } else {
                        for (k = 0; k < len; k++) yr[k] += wv * xr[k * sw];
                    }
                }
            }
        }
    }
}

fc_status FN(fc_conv2d_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                                const T *bias, T *y) {
    /* An empty input plane contributes nothing (all taps are padding). */
    const int64_t cig = (s->h_in == 0 || s->w_in == 0) ? 0 : s->c_in / s->groups;
    const int64_t cog = s->c_out / s->groups;
    const int64_t rows = s->n * s->c_out * s->h_out;
    const int64_t x_img = s->c_in * s->h_in * s->w_in;
    const int64_t w_co = (s->c_in / s->groups) * s->kh * s->kw;
    const int t = fc_direct_threads(ctx, rows, fc_sat_prod4(cig, s->kh, s->kw, s->w_out));
    (void)cog;
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t r;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (r = 0; r < rows; r++) {
            const int64_t oh = r % s->h_out;
            const int64_t co = (r / s->h_out) % s->c_out;
            const int64_t nn = r / (s->h_out * s->c_out);
            const int64_t g = co / cog;
            const T b = bias ? bias[co] : (T)0;
            FN(fc_fwd_row_)(s, cig ? x + nn * x_img : x, cig ? w + co * w_co : w, b,
                            y + r * s->w_out, oh, cig, g * (s->c_in / s->groups));
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

/* ---- grad input (gather) ------------------------------------------------
 * One input-gradient row gx[nn, ci, ih, :] sums, over the output channels
 * of its group and the kernel rows i whose tap lands on ih, w[co, ci, i, j]
 * times the grad_out row shifted by tap j.  Each row belongs to one thread;
 * terms are summed in (co, i, j) order. */
static void FN(fc_gin_row_)(const fc_conv_shape *s, const T *restrict gyimg, const T *restrict w,
                            T *restrict gxrow, int64_t ih, int64_t cil, int64_t co0, int64_t cog,
                            int64_t cig) {
    const int64_t kh = s->kh, kw = s->kw, w_in = s->w_in, w_out = s->w_out, h_out = s->h_out;
    const int64_t sh = s->stride_h, sw = s->stride_w;
    int64_t iw, c, i, j;
    for (iw = 0; iw < w_in; iw++) gxrow[iw] = 0;
    for (c = 0; c < cog; c++) {
        const int64_t co = co0 + c;
        const T *gyplane = gyimg + co * h_out * w_out;
        const T *wk = w + (co * cig + cil) * kh * kw;
        for (i = 0; i < kh; i++) {
            const int64_t tt = ih + s->pad_h - i * s->dil_h;  /* = oh * sh */
            int64_t oh;
            const T *gyrow;
            if (tt < 0) break;  /* decreasing in i */
            if (tt % sh) continue;
            oh = tt / sh;
            if (oh >= h_out) continue;
            gyrow = gyplane + oh * w_out;
            for (j = 0; j < kw; j++) {
                const int64_t off = j * s->dil_w - s->pad_w;  /* iw = ow*sw + off */
                const T wv = wk[i * kw + j];
                int64_t lo, hi, k, len;
                fc_tap_range(w_in, w_out, sw, off, &lo, &hi);
                len = hi - lo;
                if (len <= 0) continue;
                {
                    T *restrict gr = gxrow + lo * sw + off;
                    const T *restrict yr = gyrow + lo;
                    if (sw == 1) {
                        for (k = 0; k < len; k++) gr[k] += wv * yr[k];
                    } else {
                        for (k = 0; k < len; k++) gr[k * sw] += wv * yr[k];
                    }
                }
            }
        }
    }
}

fc_status FN(fc_conv2d_grad_input_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                           const T *w, T *gx) {
    /* An empty grad_out plane contributes nothing. */
    const int64_t cig = s->c_in / s->groups;
    const int64_t cog = (s->h_out == 0 || s->w_out == 0) ? 0 : s->c_out / s->groups;
    const int64_t rows = s->n * s->c_in * s->h_in;
    const int64_t gy_img = s->c_out * s->h_out * s->w_out;
    const int64_t per_row = fc_sat_prod4(cog, s->kh, s->kw, s->w_out) / s->stride_h + 1;
    const int t = fc_direct_threads(ctx, rows, per_row);
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t r;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (r = 0; r < rows; r++) {
            const int64_t ih = r % s->h_in;
            const int64_t ci = (r / s->h_in) % s->c_in;
            const int64_t nn = r / (s->h_in * s->c_in);
            const int64_t g = ci / cig;
            FN(fc_gin_row_)(s, cog ? gy + nn * gy_img : gy, w, gx + r * s->w_in, ih, ci % cig,
                            g * (s->c_out / s->groups), cog, cig);
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

/* ---- grad weight --------------------------------------------------------
 * One (co, cil) slice gw[co, cil, :, :] of kh*kw elements per work item;
 * each element sums grad_out * input over (nn, oh, ow) in that order. */
fc_status FN(fc_conv2d_grad_weight_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                            const T *x, T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t kh = s->kh, kw = s->kw, kk = s->kh * s->kw;
    const int64_t items = s->c_out * cig;
    const int64_t per_item = fc_sat_prod4(s->n, s->h_out, s->w_out, kk);
    /* Empty input or grad_out planes: the sums are empty, gw is all zeros. */
    const int64_t n_eff = (s->h_in == 0 || s->w_in == 0 || s->h_out == 0 || s->w_out == 0) ? 0 : s->n;
    const int t = fc_direct_threads(ctx, items, per_item);
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t it;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (it = 0; it < items; it++) {
            const int64_t co = it / cig, cil = it % cig;
            const int64_t ci = (co / cog) * cig + cil;
            T *restrict gwk = gw + it * kk;
            int64_t e, nn, oh, i, j;
            for (e = 0; e < kk; e++) gwk[e] = 0;
            for (nn = 0; nn < n_eff; nn++) {
                const T *xplane = x + (nn * s->c_in + ci) * s->h_in * s->w_in;
                const T *gyplane = gy + (nn * s->c_out + co) * s->h_out * s->w_out;
                for (oh = 0; oh < s->h_out; oh++) {
                    const T *gyrow = gyplane + oh * s->w_out;
                    for (i = 0; i < kh; i++) {
                        const int64_t ih = oh * s->stride_h - s->pad_h + i * s->dil_h;
                        const T *xrow;
                        if (ih < 0 || ih >= s->h_in) continue;
                        xrow = xplane + ih * s->w_in;
                        for (j = 0; j < kw; j++) {
                            const int64_t off = j * s->dil_w - s->pad_w;
                            int64_t lo, hi;
                            fc_tap_range(s->w_in, s->w_out, s->stride_w, off, &lo, &hi);
                            if (hi <= lo) continue;
                            gwk[i * kw + j] += FN(fc_dot_)(gyrow + lo, xrow + lo * s->stride_w + off,
                                                          hi - lo, s->stride_w);
                        }
                    }
                }
            }
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

/* ---- grad bias: gb[co] = sum over (nn, plane) in that order ------------- */
fc_status FN(fc_conv2d_grad_bias_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                          T *gb) {
    const int64_t hw = s->h_out * s->w_out;
    const int t = fc_direct_threads(ctx, s->c_out, s->n * hw);
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t co;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (co = 0; co < s->c_out; co++) {
            T acc = 0;
            int64_t nn;
            for (nn = 0; nn < s->n && hw > 0; nn++)
                acc += FN(fc_sum_)(gy + (nn * s->c_out + co) * hw, hw);
            gb[co] = acc;
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

/* ---- y[nn, c, :] += bias[c] ---------------------------------------------- */
fc_status FN(fc_add_channel_bias_direct_)(fc_context *ctx, int64_t n, int64_t c, int64_t hw,
                                          const T *bias, T *y) {
    const int64_t planes = n * c;
    const int t = fc_direct_threads(ctx, planes, hw / 4 + 1);
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t p;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (p = 0; p < planes; p++) {
            T *restrict yp = y + p * hw;
            const T b = bias[p % c];
            int64_t k;
            for (k = 0; k < hw; k++) yp[k] += b;
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

#undef FN
#undef FC_JOIN
#undef FC_JOIN2
