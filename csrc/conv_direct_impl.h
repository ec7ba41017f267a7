/* Direct convolution kernels, written once for element type T with name
 * suffix SFX (f32 / f64).  Included by conv_direct.c only; see there for
 * the design notes.  All index arithmetic is int64_t. */
#ifndef T
#error "define T and SFX before including conv_direct_impl.h"
#endif
#ifndef FC_TW
#error "define FC_TW (forward register tile width, in elements)"
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

/* GCC/Clang generic vectors of FC_TW elements for the register tiles: a
 * plain-C array accumulator is not reliably kept in registers, a vector
 * variable is.  Other compilers (or -DFC_DIRECT_NO_TILES, for A/B timing)
 * use the row kernel for everything. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(FC_DIRECT_NO_TILES)
#define FC_VECEXT 1
typedef T FN(fc_vec_) __attribute__((vector_size(FC_TW * sizeof(T))));

/* Register tiles: 4 output channels x (1 or 2) vectors of FC_TW output
 * columns of one output row accumulate in vector variables, so each input
 * vector feeds four multiply-adds and each output is stored once.  Interior
 * tiles (every tap inside the input: columns [ow_lo, ow_hi)) load the input
 * directly; border and tail tiles gather each tap's valid columns into a
 * zeroed vector.  Each output element is bias + sum over (ci, i, j) in that
 * order whatever the tiling or thread count (adding w * 0 for a clipped tap
 * leaves the sum unchanged). */
typedef struct {
    const fc_conv_shape *s;
    const T *ximg;          /* this image's input */
    const T *wc[4];         /* the 4 channels' weights at input channel 0, tap (0, 0) */
    int64_t w_ci, w_i, w_j; /* weight strides per input channel, kernel row, kernel column */
    T *yr[4];               /* the 4 channels' output rows */
    T bv[4];
    int64_t nc, oh, cig, ci0;
} FN(fc_tile_ctx_);

static inline void FN(fc_tile_store_)(const FN(fc_tile_ctx_) *t, int64_t c, int64_t ow0,
                                      int64_t len, FN(fc_vec_) acc) {
    T out[FC_TW];
    int64_t k;
    if (c >= t->nc) return;
    memcpy(out, &acc, sizeof acc);
    for (k = 0; k < len; k++) t->yr[c][ow0 + k] = out[k];
}

/* Two vectors (2*FC_TW columns) from ow0, all taps inside, unit stride. */
static void FN(fc_tile_interior2_)(const FN(fc_tile_ctx_) *t, int64_t ow0) {
    const fc_conv_shape *s = t->s;
    const int64_t kh = s->kh, kw = s->kw, dw = s->dil_w, wj = t->w_j;
    const T *w0 = t->wc[0], *w1 = t->wc[1], *w2 = t->wc[2], *w3 = t->wc[3];
    FN(fc_vec_) z, a0, a1, a2, a3, b0, b1, b2, b3;
    int64_t ci, i, j;
    memset(&z, 0, sizeof z);
    a0 = b0 = z + t->bv[0];
    a1 = b1 = z + t->bv[1];
    a2 = b2 = z + t->bv[2];
    a3 = b3 = z + t->bv[3];
    for (ci = 0; ci < t->cig; ci++) {
        const T *xplane = t->ximg + (t->ci0 + ci) * s->h_in * s->w_in;
        for (i = 0; i < kh; i++) {
            const int64_t ih = t->oh * s->stride_h - s->pad_h + i * s->dil_h;
            const T *xr, *wa, *wb, *wcc, *wd;
            if (ih < 0 || ih >= s->h_in) continue;
            xr = xplane + ih * s->w_in + (ow0 - s->pad_w);
            wa = w0 + ci * t->w_ci + i * t->w_i;
            wb = w1 + ci * t->w_ci + i * t->w_i;
            wcc = w2 + ci * t->w_ci + i * t->w_i;
            wd = w3 + ci * t->w_ci + i * t->w_i;
            for (j = 0; j < kw; j++) {
                FN(fc_vec_) x0, x1;
                memcpy(&x0, xr + j * dw, sizeof x0);
                memcpy(&x1, xr + j * dw + FC_TW, sizeof x1);
                const T v0 = wa[j * wj], v1 = wb[j * wj], v2 = wcc[j * wj], v3 = wd[j * wj];
                a0 += v0 * x0; b0 += v0 * x1;
                a1 += v1 * x0; b1 += v1 * x1;
                a2 += v2 * x0; b2 += v2 * x1;
                a3 += v3 * x0; b3 += v3 * x1;
            }
        }
    }
    FN(fc_tile_store_)(t, 0, ow0, FC_TW, a0); FN(fc_tile_store_)(t, 0, ow0 + FC_TW, FC_TW, b0);
    FN(fc_tile_store_)(t, 1, ow0, FC_TW, a1); FN(fc_tile_store_)(t, 1, ow0 + FC_TW, FC_TW, b1);
    FN(fc_tile_store_)(t, 2, ow0, FC_TW, a2); FN(fc_tile_store_)(t, 2, ow0 + FC_TW, FC_TW, b2);
    FN(fc_tile_store_)(t, 3, ow0, FC_TW, a3); FN(fc_tile_store_)(t, 3, ow0 + FC_TW, FC_TW, b3);
}

/* One vector of `len` <= FC_TW columns from ow0; `interior` when all taps
 * of all FC_TW columns are inside the input, else taps are clipped. */
static void FN(fc_tile_one_)(const FN(fc_tile_ctx_) *t, int64_t ow0, int64_t len, int interior) {
    const fc_conv_shape *s = t->s;
    const int64_t kh = s->kh, kw = s->kw, dw = s->dil_w, sw = s->stride_w, wj = t->w_j;
    const T *w0 = t->wc[0], *w1 = t->wc[1], *w2 = t->wc[2], *w3 = t->wc[3];
    FN(fc_vec_) z, a0, a1, a2, a3;
    int64_t ci, i, j, k;
    memset(&z, 0, sizeof z);
    a0 = z + t->bv[0];
    a1 = z + t->bv[1];
    a2 = z + t->bv[2];
    a3 = z + t->bv[3];
    for (ci = 0; ci < t->cig; ci++) {
        const T *xplane = t->ximg + (t->ci0 + ci) * s->h_in * s->w_in;
        for (i = 0; i < kh; i++) {
            const int64_t ih = t->oh * s->stride_h - s->pad_h + i * s->dil_h;
            const int64_t widx = ci * t->w_ci + i * t->w_i;
            const T *xrow;
            if (ih < 0 || ih >= s->h_in) continue;
            xrow = xplane + ih * s->w_in;
            for (j = 0; j < kw; j++) {
                const int64_t off = j * dw - s->pad_w;  /* iw = ow*sw + off */
                T buf[FC_TW];
                FN(fc_vec_) xv;
                if (interior) {
                    const T *xr = xrow + (ow0 * sw + off);
                    for (k = 0; k < FC_TW; k++) buf[k] = xr[k * sw];
                } else {
                    int64_t lo, hi, ka, kb;
                    fc_tap_range(s->w_in, s->w_out, sw, off, &lo, &hi);
                    ka = FC_MAX(lo, ow0) - ow0;
                    kb = FC_MIN(hi, ow0 + len) - ow0;
                    if (ka >= kb) continue;
                    for (k = 0; k < FC_TW; k++) buf[k] = 0;
                    for (k = ka; k < kb; k++) buf[k] = xrow[(ow0 + k) * sw + off];
                }
                memcpy(&xv, buf, sizeof xv);
                a0 += w0[widx + j * wj] * xv;
                a1 += w1[widx + j * wj] * xv;
                a2 += w2[widx + j * wj] * xv;
                a3 += w3[widx + j * wj] * xv;
            }
        }
    }
    FN(fc_tile_store_)(t, 0, ow0, len, a0);
    FN(fc_tile_store_)(t, 1, ow0, len, a1);
    FN(fc_tile_store_)(t, 2, ow0, len, a2);
    FN(fc_tile_store_)(t, 3, ow0, len, a3);
}

/* One output row of the tile context's channels, all column tiles.  The
 * interior columns are [ow_lo, ow_hi). */
static void FN(fc_tile_row_)(const FN(fc_tile_ctx_) *t, int64_t ow_lo, int64_t ow_hi) {
    const fc_conv_shape *s = t->s;
    int64_t p = 0;
    while (p < s->w_out) {
        if (p >= ow_lo && p + 2 * FC_TW <= ow_hi && s->stride_w == 1) {
            FN(fc_tile_interior2_)(t, p);
            p += 2 * FC_TW;
        } else if (p >= ow_lo && p + FC_TW <= ow_hi) {
            FN(fc_tile_one_)(t, p, FC_TW, 1);
            p += FC_TW;
        } else {
            /* Border: stop at ow_lo so the interior tiles start there. */
            int64_t len = FC_MIN(FC_TW, s->w_out - p);
            if (p < ow_lo) len = FC_MIN(len, ow_lo - p);
            FN(fc_tile_one_)(t, p, len, 0);
            p += len;
        }
    }
}

/* Forward: one output row of channels co0 .. co0+nc-1 (nc <= 4, one group). */
static void FN(fc_fwd_tiles_)(const fc_conv_shape *s, const T *restrict ximg, const T *restrict w,
                              const T *restrict bias, T *restrict yimg, int64_t co0, int64_t nc,
                              int64_t oh, int64_t cig, int64_t ci0, int64_t ow_lo, int64_t ow_hi) {
    const int64_t kk = s->kh * s->kw;
    FN(fc_tile_ctx_) t;
    int64_t c;
    t.s = s;
    t.ximg = ximg;
    t.nc = nc;
    t.oh = oh;
    t.cig = cig;
    t.ci0 = ci0;
    t.w_ci = kk;
    t.w_i = s->kw;
    t.w_j = 1;
    /* Channels past nc repeat the last one (computed, never stored). */
    for (c = 0; c < 4; c++) {
        const int64_t cc = co0 + (c < nc ? c : nc - 1);
        t.wc[c] = w + cc * cig * kk;
        t.yr[c] = yimg + (cc * s->h_out + oh) * s->w_out;
        t.bv[c] = bias ? bias[cc] : (T)0;
    }
    FN(fc_tile_row_)(&t, ow_lo, ow_hi);
}

/* Grad input with stride 1 is a forward convolution of grad_out with the
 * kernel flipped and its channel axes swapped, padding d*(k-1) - pad (which
 * may be negative: the tile code only needs offsets): `ps` is that pseudo
 * convolution's shape (input = grad_out, output = grad_x).  One grad_x row
 * of input channels ci0g + cil0 .. + nc-1 of group g; terms are summed over
 * (co, i, j) with the taps in flipped order. */
static void FN(fc_gin_tiles_)(const fc_conv_shape *ps, const T *restrict gyimg, const T *restrict w,
                              T *restrict gximg, int64_t g, int64_t cil0, int64_t nc, int64_t ih,
                              int64_t cig, int64_t cog, int64_t ow_lo, int64_t ow_hi) {
    const int64_t kh = ps->kh, kw = ps->kw, kk = kh * kw;
    FN(fc_tile_ctx_) t;
    int64_t c;
    t.s = ps;
    t.ximg = gyimg;
    t.nc = nc;
    t.oh = ih;
    t.cig = cog;         /* the pseudo conv's input channels: this group's outputs */
    t.ci0 = g * cog;
    t.w_ci = cig * kk;   /* next output channel co */
    t.w_i = -kw;         /* flipped taps */
    t.w_j = -1;
    for (c = 0; c < 4; c++) {
        const int64_t cil = cil0 + (c < nc ? c : nc - 1);
        t.wc[c] = w + ((g * cog) * cig + cil) * kk + (kh - 1) * kw + (kw - 1);
        t.yr[c] = gximg + ((g * cig + cil) * ps->h_out + ih) * ps->w_out;
        t.bv[c] = 0;
    }
    FN(fc_tile_row_)(&t, ow_lo, ow_hi);
}
#else
#define FC_VECEXT 0
#endif

fc_status FN(fc_conv2d_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                                const T *bias, T *y) {
    /* An empty input plane contributes nothing (all taps are padding). */
    const int64_t cig = (s->h_in == 0 || s->w_in == 0) ? 0 : s->c_in / s->groups;
    const int64_t cig_w = s->c_in / s->groups;  /* weight layout */
    const int64_t cog = s->c_out / s->groups;
    /* Channel tiles of 4 when a group has at least 4 output channels (and
     * there is input to read); otherwise one output row per work item. */
    const int tiled = FC_VECEXT && cog >= 4 && cig > 0;
    const int64_t tc = tiled ? 4 : 1;
    const int64_t nblk = (cog + tc - 1) / tc;  /* channel tiles per group */
    const int64_t items = s->n * s->groups * nblk * s->h_out;
    const int64_t x_img = s->c_in * s->h_in * s->w_in;
    const int64_t y_img = s->c_out * s->h_out * s->w_out;
    const int t = fc_direct_threads(ctx, items, fc_sat_prod4(tc * cig, s->kh, s->kw, s->w_out));
    int64_t ow_lo, ow_hi, unused;
    /* Columns where every tap is inside the input: tap 0 has the largest
     * lower bound, tap kw-1 the smallest upper bound. */
    fc_tap_range(s->w_in, s->w_out, s->stride_w, -s->pad_w, &ow_lo, &unused);
    fc_tap_range(s->w_in, s->w_out, s->stride_w, (s->kw - 1) * s->dil_w - s->pad_w, &unused, &ow_hi);
    (void)ow_lo; (void)ow_hi; (void)y_img;
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t r;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (r = 0; r < items; r++) {
            const int64_t oh = r % s->h_out;
            const int64_t q = r / s->h_out;
            const int64_t blk = q % nblk;
            const int64_t g = (q / nblk) % s->groups;
            const int64_t nn = q / (nblk * s->groups);
            const int64_t co0 = g * cog + blk * tc;
#if FC_VECEXT
            if (tiled) {
                FN(fc_fwd_tiles_)(s, x + nn * x_img, w, bias, y + nn * y_img, co0,
                                  FC_MIN(4, cog - blk * 4), oh, cig, g * cig, ow_lo, ow_hi);
                continue;
            }
#endif
            FN(fc_fwd_row_)(s, cig ? x + nn * x_img : x, cig ? w + co0 * cig * s->kh * s->kw : w,
                            bias ? bias[co0] : (T)0, y + ((nn * s->c_out + co0) * s->h_out + oh) * s->w_out,
                            oh, cig, g * cig_w);
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
    const int64_t gy_img = s->c_out * s->h_out * s->w_out;
    const int64_t gx_img = s->c_in * s->h_in * s->w_in;
    /* Stride 1 with at least 4 input channels per group: register tiles of
     * 4 input channels on the flipped-kernel pseudo convolution. */
    const int tiled = FC_VECEXT && s->stride_h == 1 && s->stride_w == 1 && cig >= 4 && cog > 0;
    const int64_t tc = tiled ? 4 : 1;
    const int64_t nblk = (cig + tc - 1) / tc;
    const int64_t items = s->n * s->groups * nblk * s->h_in;
    const int64_t per_item = fc_sat_prod4(tc * cog, s->kh, s->kw, s->w_in) / s->stride_h + 1;
    const int t = fc_direct_threads(ctx, items, per_item);
    fc_conv_shape ps = *s;
    int64_t ow_lo = 0, ow_hi = 0, unused;
    if (tiled) {
        ps.c_in = s->c_out; ps.h_in = s->h_out; ps.w_in = s->w_out;
        ps.c_out = s->c_in; ps.h_out = s->h_in; ps.w_out = s->w_in;
        ps.pad_h = s->dil_h * (s->kh - 1) - s->pad_h;
        ps.pad_w = s->dil_w * (s->kw - 1) - s->pad_w;
        fc_tap_range(ps.w_in, ps.w_out, 1, -ps.pad_w, &ow_lo, &unused);
        fc_tap_range(ps.w_in, ps.w_out, 1, (ps.kw - 1) * ps.dil_w - ps.pad_w, &unused, &ow_hi);
    }
    (void)ps; (void)gx_img; (void)ow_lo; (void)ow_hi;
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        fc_fpmode fp = fc_fpmode_enter();
        int64_t r;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (r = 0; r < items; r++) {
            const int64_t ih = r % s->h_in;
            const int64_t q = r / s->h_in;
            const int64_t blk = q % nblk;
            const int64_t g = (q / nblk) % s->groups;
            const int64_t nn = q / (nblk * s->groups);
            const int64_t cil0 = blk * tc;
#if FC_VECEXT
            if (tiled) {
                FN(fc_gin_tiles_)(&ps, gy + nn * gy_img, w, gx + nn * gx_img, g, cil0,
                                  FC_MIN(4, cig - cil0), ih, cig, cog, ow_lo, ow_hi);
                continue;
            }
#endif
            FN(fc_gin_row_)(s, cog ? gy + nn * gy_img : gy, w,
                            gx + ((nn * s->c_in + g * cig + cil0) * s->h_in + ih) * s->w_in, ih, cil0,
                            g * (s->c_out / s->groups), cog, cig);
        }
        fc_fpmode_leave(fp);
    }
    (void)t;
    return FC_OK;
}

/* ---- grad weight --------------------------------------------------------
 * One (co, cil) slice gw[co, cil, :, :] of kh*kw elements per work item;
 * each element sums grad_out * input over (nn, oh, ow) in that order.  With
 * generic vectors and >= 4 output channels per group, an item is 4 output
 * channels x one input channel: each input vector feeds four multiply-adds,
 * the vector partial sums of one (nn, oh, i, j) row are reduced in a fixed
 * tree order, then the scalar tail is added. */
#if FC_VECEXT
static inline T FN(fc_hsum_)(FN(fc_vec_) v) {
    T b[FC_TW];
    int64_t width, l;
    memcpy(b, &v, sizeof v);
    for (width = FC_TW / 2; width >= 1; width /= 2)
        for (l = 0; l < width; l++) b[l] += b[l + width];
    return b[0];
}

static void FN(fc_gw_block_)(const fc_conv_shape *s, const T *gy, const T *x, T *gw, int64_t g,
                             int64_t co0, int64_t nc, int64_t cil, int64_t cig, int64_t n_eff) {
    const int64_t kh = s->kh, kw = s->kw, kk = kh * kw, sw = s->stride_w;
    const int64_t ci = g * cig + cil;
    T *gwc[4];
    int64_t c, e, nn, oh, i, j, k, l;
    for (c = 0; c < 4; c++) gwc[c] = gw + ((co0 + (c < nc ? c : nc - 1)) * cig + cil) * kk;
    for (c = 0; c < nc; c++)
        for (e = 0; e < kk; e++) gwc[c][e] = 0;
    for (nn = 0; nn < n_eff; nn++) {
        const T *xplane = x + (nn * s->c_in + ci) * s->h_in * s->w_in;
        const T *gp[4];
        for (c = 0; c < 4; c++)
            gp[c] = gy + (nn * s->c_out + co0 + (c < nc ? c : nc - 1)) * s->h_out * s->w_out;
        for (oh = 0; oh < s->h_out; oh++) {
            const T *g0 = gp[0] + oh * s->w_out, *g1 = gp[1] + oh * s->w_out;
            const T *g2 = gp[2] + oh * s->w_out, *g3 = gp[3] + oh * s->w_out;
            for (i = 0; i < kh; i++) {
                const int64_t ih = oh * s->stride_h - s->pad_h + i * s->dil_h;
                const T *xrow;
                if (ih < 0 || ih >= s->h_in) continue;
                xrow = xplane + ih * s->w_in;
                for (j = 0; j < kw; j++) {
                    const int64_t off = j * s->dil_w - s->pad_w;
                    int64_t lo, hi, len;
                    FN(fc_vec_) z, a0, a1, a2, a3;
                    T s0, s1, s2, s3, sum[4];
                    fc_tap_range(s->w_in, s->w_out, sw, off, &lo, &hi);
                    len = hi - lo;
                    if (len <= 0) continue;
                    memset(&z, 0, sizeof z);
                    a0 = a1 = a2 = a3 = z;
                    k = 0;
                    for (; k + FC_TW <= len; k += FC_TW) {
                        FN(fc_vec_) xv, v0, v1, v2, v3;
                        if (sw == 1) {
                            memcpy(&xv, xrow + (lo + k + off), sizeof xv);
                        } else {
                            T buf[FC_TW];
                            for (l = 0; l < FC_TW; l++) buf[l] = xrow[(lo + k + l) * sw + off];
                            memcpy(&xv, buf, sizeof xv);
                        }
                        memcpy(&v0, g0 + lo + k, sizeof v0);
                        memcpy(&v1, g1 + lo + k, sizeof v1);
                        memcpy(&v2, g2 + lo + k, sizeof v2);
                        memcpy(&v3, g3 + lo + k, sizeof v3);
                        a0 += v0 * xv;
                        a1 += v1 * xv;
                        a2 += v2 * xv;
                        a3 += v3 * xv;
                    }
                    s0 = FN(fc_hsum_)(a0);
                    s1 = FN(fc_hsum_)(a1);
                    s2 = FN(fc_hsum_)(a2);
                    s3 = FN(fc_hsum_)(a3);
                    for (; k < len; k++) {
                        const T xs = xrow[(lo + k) * sw + off];
                        s0 += g0[lo + k] * xs;
                        s1 += g1[lo + k] * xs;
                        s2 += g2[lo + k] * xs;
                        s3 += g3[lo + k] * xs;
                    }
                    sum[0] = s0; sum[1] = s1; sum[2] = s2; sum[3] = s3;
                    for (c = 0; c < nc; c++) gwc[c][i * kw + j] += sum[c];
                }
            }
        }
    }
}
#endif

fc_status FN(fc_conv2d_grad_weight_direct_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                            const T *x, T *gw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t kh = s->kh, kw = s->kw, kk = s->kh * s->kw;
    const int tiled = FC_VECEXT && cog >= 4;
    const int64_t nblk = (cog + 3) / 4;
    const int64_t items = tiled ? s->groups * nblk * cig : s->c_out * cig;
    const int64_t per_sum = fc_sat_prod4(s->n, s->h_out, s->w_out, kk);
    const int64_t per_item = (tiled && per_sum < INT64_MAX / 4) ? 4 * per_sum : per_sum;
    /* Empty input or grad_out planes: the sums are empty, gw is all zeros. */
    const int64_t n_eff = (s->h_in == 0 || s->w_in == 0 || s->h_out == 0 || s->w_out == 0) ? 0 : s->n;
    const int t = fc_direct_threads(ctx, items, per_item);
    (void)tiled; (void)nblk;
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
#if FC_VECEXT
            if (tiled) {
                const int64_t blk = (it / cig) % nblk, g = it / (cig * nblk);
                FN(fc_gw_block_)(s, gy, x, gw, g, g * cog + blk * 4, FC_MIN(4, cog - blk * 4), cil,
                                 cig, n_eff);
                continue;
            }
#endif
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
#undef FC_VECEXT
#undef FC_JOIN
#undef FC_JOIN2
