/* Depthwise 3x3 (groups == c_in == c_out, dilation (d,d) with d <=
 * FC_DW_MAXD, stride 1 or 2): a per-channel 2-D stencil vectorised along
 * the width.  Tile: 4 output rows x 2 vectors (2*VL pixels); each input
 * vector loaded once feeds up to 3 output rows, and the 9 weights stay in
 * registers.  Dilation (compile-time in the tile) only moves the taps: tap
 * kw loads from column kw*d, input row i feeds output row r when
 * i - r*stride is 0, d or 2d.  Included by
 * conv_direct_avx2_impl.h (same dtype macros).  Summation order per output
 * is kh then kw ascending, as in every other path, so results do not
 * depend on the thread count. */

#define FC_DW_R 4
#define FC_DW_MAXD 4

/* Scalar reference path for a tile whose full-vector loads could leave the
 * x buffer (its first/last elements). */
static void SFX(dw_tile_scalar)(const fc_conv_shape *s, const T *xp, const T *wk, T bv, T *yp,
                                int64_t oh0, int64_t nrows, int64_t ow0, int64_t nvalid) {
    int64_t r, j, kh, kw;
    for (r = 0; r < nrows; r++) {
        for (j = 0; j < nvalid; j++) {
            T acc = bv;
            const int64_t oh = oh0 + r, ow = ow0 + j;
            for (kh = 0; kh < 3; kh++) {
                const int64_t ih = oh * s->stride_h - s->pad_h + kh * s->dil_h;
                if (ih < 0 || ih >= s->h_in) continue;
                for (kw = 0; kw < 3; kw++) {
                    const int64_t iw = ow * s->stride_w - s->pad_w + kw * s->dil_w;
                    /* padded lanes contribute w*0, as the vector path does */
                    T xv = (iw >= 0 && iw < s->w_in) ? xp[ih * s->w_in + iw] : (T)0;
                    acc = FC_SFMA(wk[kh * 3 + kw], xv, acc);
                }
            }
            yp[oh * s->w_out + ow] = acc;
        }
    }
}

/* One 4-row x 2-vector tile.  mode (MODE_S1/MODE_S2) and masked are
 * compile-time constants at the call sites. */
static FC_AI void SFX(dw_tile)(const fc_conv_shape *s, const SFX(masks) *m, const int mode,
                               const int masked, const int dl, const int nv, const T *xp, const V *wv, V bv, T *yp,
                               int64_t oh0, int64_t nrows, int64_t ow0, int64_t nvalid) {
    const int st = mode == MODE_S2 ? 2 : 1;
    const int64_t ih0 = oh0 * st - s->pad_h;
    const int64_t iw0 = ow0 * st - s->pad_w;
    const int64_t xo1 = mode == MODE_S1 ? VL : 2 * VL;
    const int64_t n0 = FC_MIN(VL, nvalid), n1 = nvalid - VL;
    const SFX(blk) *b = NULL;  /* only FC_LOADV's gather branch names it; never taken here */
    V a00 = bv, a01 = bv, a10 = bv, a11 = bv, a20 = bv, a21 = bv, a30 = bv, a31 = bv;
    int i, kw;
    /* fully unrolled: which rows each input row feeds is then known at
     * compile time (a runtime test per row and tap cost ~half the time) */
#pragma GCC unroll 16
    for (i = 0; i < (FC_DW_R - 1) * st + 2 * dl + 1; i++) {
        const int64_t ih = ih0 + i;
        const T *row;
        if (ih < 0 || ih >= s->h_in) continue;
        row = xp + ih * s->w_in + iw0;
#pragma GCC unroll 3
        for (kw = 0; kw < 3; kw++) {
            const T *p = row + kw * dl;
            const V v0 = FC_LOADV(p, 0);
            const V v1 = nv > 1 ? FC_LOADV(p + xo1, 1) : V_ZERO();
#define FC_DW_ROW(r)                                                                         \
            if (i - (r) * st >= 0 && (i - (r) * st) % dl == 0 && (i - (r) * st) / dl < 3) {  \
                const V w_ = wv[(i - (r) * st) / dl * 3 + kw];                               \
                a##r##0 = V_FMA(w_, v0, a##r##0);                                            \
                if (nv > 1) a##r##1 = V_FMA(w_, v1, a##r##1);                                \
            }
            FC_DW_ROW(0) FC_DW_ROW(1) FC_DW_ROW(2) FC_DW_ROW(3)
#undef FC_DW_ROW
        }
    }
#define FC_DW_STORE(r)                                                                       \
    if ((r) < nrows) {                                                                       \
        T *q = yp + (oh0 + (r)) * s->w_out + ow0;                                            \
        if (mode == MODE_S2) { a##r##0 = V_PERM(a##r##0); a##r##1 = V_PERM(a##r##1); }      \
        if (n0 < VL) SFX(store_part)(q, a##r##0, n0); else V_STOREU(q, a##r##0);             \
        if (nv > 1 && n1 > 0) { if (n1 < VL) SFX(store_part)(q + VL, a##r##1, n1); else V_STOREU(q + VL, a##r##1); } \
    }
    FC_DW_STORE(0) FC_DW_STORE(1) FC_DW_STORE(2) FC_DW_STORE(3)
#undef FC_DW_STORE
}

#define FC_DW_CALL(MODE, MSK, DL, NV) SFX(dw_tile)(s, m, MODE, MSK, DL, NV, xp, wv, bv, yp, oh0, nrows, ow0, nvalid)
#define FC_DW_NV(MODE, MSK, DL) do { if (nvalid > VL) FC_DW_CALL(MODE, MSK, DL, 2); else FC_DW_CALL(MODE, MSK, DL, 1); } while (0)
#define FC_DW_DL(MODE, MSK) do {                                                                 \
        switch (s->dil_w) {                                                                      \
        case 1: FC_DW_NV(MODE, MSK, 1); break;                                                   \
        case 2: FC_DW_NV(MODE, MSK, 2); break;                                                   \
        case 3: FC_DW_NV(MODE, MSK, 3); break;                                                   \
        default: FC_DW_NV(MODE, MSK, 4); break;                                                  \
        } } while (0)
static FC_NOINLINE void SFX(dw_tile_dispatch)(const fc_conv_shape *s, const SFX(masks) *m, int mode,
                                             int masked, const T *xp, const V *wv, V bv, T *yp,
                                             int64_t oh0, int64_t nrows, int64_t ow0, int64_t nvalid) {
    if (mode == MODE_S1) {
        if (masked) FC_DW_DL(MODE_S1, 1); else FC_DW_DL(MODE_S1, 0);
    } else {
        if (masked) FC_DW_DL(MODE_S2, 1); else FC_DW_DL(MODE_S2, 0);
    }
}
#undef FC_DW_DL
#undef FC_DW_NV
#undef FC_DW_CALL

/* Serves depthwise 3x3, dilation (d,d) with d <= FC_DW_MAXD, stride (1,1) or
 * (2,2); else FC_NOT_HANDLED. */
static fc_status SFX(depthwise3x3)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                                   const T *bias, T *y) {
    const int mode = s->stride_w == 1 ? MODE_S1 : MODE_S2;
    const int st = mode == MODE_S2 ? 2 : 1;
    const int64_t dl = s->dil_w;
    int64_t rows_per, nrc, ntask, xlen;
    int nthr;
    if (!(s->groups == s->c_in && s->c_out == s->c_in && s->kh == 3 && s->kw == 3 &&
          s->dil_h == dl && dl >= 1 && dl <= FC_DW_MAXD && s->stride_h == s->stride_w &&
          (s->stride_w == 1 || s->stride_w == 2)))
        return FC_NOT_HANDLED;
    if (s->n == 0 || s->c_out == 0 || s->h_out == 0 || s->w_out == 0) return FC_OK;
    /* ~1024 output pixels per task, whole 4-row tiles */
    rows_per = FC_MAX(1, 1024 / s->w_out);
    rows_per = (rows_per + FC_DW_R - 1) / FC_DW_R * FC_DW_R;
    nrc = (s->h_out + rows_per - 1) / rows_per;
    FC_MUL(s->n * s->c_out, nrc, &ntask);
    FC_MUL(s->n * s->c_in, s->h_in * s->w_in, &xlen);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        SFX(masks) m_edge[2], m_tmp;
        const int64_t last0 = ((s->w_out - 1) / (2 * VL)) * (2 * VL);
        int64_t task;
        /* masks of the first and last column blocks: the same for every plane */
        SFX(build_masks)(&m_edge[0], mode, 2, -s->pad_w, FC_MIN(2 * VL, s->w_out), 3, dl, st, s->w_in);
        SFX(build_masks)(&m_edge[1], mode, 2, last0 * st - s->pad_w, s->w_out - last0, 3, dl, st, s->w_in);
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            const int64_t rc = task % nrc, nc_ = task / nrc;   /* nc_ = n*C + c */
            const int64_t c = nc_ % s->c_out;
            const int64_t r0 = rc * rows_per, r1 = FC_MIN(s->h_out, r0 + rows_per);
            const T *xp = x + nc_ * s->h_in * s->w_in;
            const T *wk = w + c * 9;
            T *yp = y + nc_ * s->h_out * s->w_out;
            const T bs = bias ? bias[c] : (T)0;
            const V bv = V_SET1(bs);
            V wv[9];
            int64_t oh, ow0, k;
            for (k = 0; k < 9; k++) wv[k] = V_SET1(wk[k]);
            /* column blocks outer: a masked inner block (dilated taps reach
             * the row end there) builds its masks once per task */
            for (ow0 = 0; ow0 < s->w_out; ow0 += 2 * VL) {
                const int64_t nvalid = FC_MIN(2 * VL, s->w_out - ow0);
                const int64_t iw0 = ow0 * st - s->pad_w;
                const SFX(masks) *m = &m_tmp;
                /* all 3 kw taps of both vectors inside the row, all lanes valid? */
                const int masked = SFX(needs_mask)(s, mode, 2, ow0, nvalid);
                if (masked) {
                    if (ow0 == 0) m = &m_edge[0];
                    else if (ow0 == last0) m = &m_edge[1];
                    else SFX(build_masks)(&m_tmp, mode, 2, iw0, nvalid, 3, dl, st, s->w_in);
                }
                for (oh = r0; oh < r1; oh += FC_DW_R) {
                    const int64_t nrows = FC_MIN(FC_DW_R, r1 - oh);
                    if (masked) {
                        /* full-vector loads of this tile must stay inside x */
                        const int64_t ih_lo = FC_MAX(0, oh * st - s->pad_h);
                        const int64_t ih_hi = FC_MIN(s->h_in - 1, (oh + FC_DW_R - 1) * st - s->pad_h + 2 * dl);
                        const int64_t base = nc_ * s->h_in * s->w_in;
                        const int64_t span = (mode == MODE_S1 ? 2 : 4) * VL;
                        if (ih_lo <= ih_hi &&
                            (base + ih_lo * s->w_in + iw0 < 0 ||
                             base + ih_hi * s->w_in + iw0 + 2 * dl + span - 1 >= xlen)) {
                            SFX(dw_tile_scalar)(s, xp, wk, bs, yp, oh, nrows, ow0, nvalid);
                            continue;
                        }
                    }
                    SFX(dw_tile_dispatch)(s, m, mode, masked, xp, wv, bv, yp, oh, nrows, ow0, nvalid);
                }
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
