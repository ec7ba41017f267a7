/* Grad input through the forward direct convolution, for element type T
 * with suffix SFX.  Included by conv_bwd.c (see there for the method). */
#define FC_GJ2(a, b) a##b
#define FC_GJ(a, b) FC_GJ2(a, b)
#define GFN(name) FC_GJ(name, SFX)
#define FWD(name) FC_GJ(name, SFX)
#ifndef FC_GIN_PACK_TAPS
#define FC_GIN_PACK_TAPS 1024   /* phase taps with a precomputed source index */
#endif
#define FC_GIN_STAGE_TAPS (256 / (int)sizeof(T))  /* staged packing: 16*16*taps, 64 KB of stack */

/* Rearranged weights of one phase: wt[g*cig + ci][co][jh][jw] =
 * w[g*cog + co][ci][kmax_h - jh*kstep_h][kmax_w - jw*kstep_w], i.e. the
 * forward weight (c_in, c_out/groups, t_h, t_w) of the phase's convolution.
 * Blocks of 16 input channels so each read of w is a 16-channel run. */
static void GFN(gin_pack_)(const fc_context *ctx, const fc_conv_shape *s, const T *w, T *wt,
                           const fc_gin_axis *ah, const fc_gin_axis *aw) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t khkw = s->kh * s->kw, tt = ah->t * aw->t;
    const int64_t nblk = (cig + 15) / 16, items = s->groups * nblk;
    const int t = fc_threads_for(ctx, FC_MIN(items, (s->c_out * cig * tt) / 65536 + 1));
    /* locals: with -fno-strict-aliasing the stores below would otherwise
     * reload every struct field */
    const int64_t hm = ah->kmax, hs = ah->kstep, wm = aw->kmax, ws = aw->kstep, wt_n = aw->t;
    const int64_t kw = s->kw, tab = tt <= FC_GIN_PACK_TAPS;
    const int flip = tt == khkw;  /* every tap, kernel flipped: source tap tt-1-q */
    int64_t idx[FC_GIN_PACK_TAPS];
    int64_t it, e;
    (void)t;
    /* source tap of each phase tap */
    for (e = 0; e < tt && tab; e++) idx[e] = (hm - (e / wt_n) * hs) * kw + (wm - (e % wt_n) * ws);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < items; it++) {
        const int64_t g = it / nblk, ci0 = (it % nblk) * 16, ci1 = FC_MIN(cig, ci0 + 16);
        int64_t co, ci, q;
        if (tt <= FC_GIN_STAGE_TAPS) {
            /* 16 x 16 channel blocks through a staging buffer, so each row
             * of wt is written in one 16*tt run (written tap by tap, the 16
             * rows, a multiple of 2 KB apart for the usual channel counts,
             * share a few L1 sets and evict each other's partial lines) */
            T stage[16 * 16 * FC_GIN_STAGE_TAPS];
            int64_t co0;
            for (co0 = 0; co0 < cog; co0 += 16) {
                const int64_t nco = FC_MIN(16, cog - co0);
                /* stride 1 flips the whole kernel: constant offsets for
                 * the common sizes (an indexed scalar copy costs about as
                 * much per weight as a 7x7-plane convolution's FMAs) */
#define FC_GIN_STAGE(COPY)                                                          \
                for (co = 0; co < nco; co++) {                                      \
                    const T *src = w + ((g * cog + co0 + co) * cig) * khkw;         \
                    for (ci = ci0; ci < ci1; ci++) {                                \
                        const T *restrict sp = src + ci * khkw;                     \
                        T *restrict dp = stage + ((ci - ci0) * 16 + co) * tt;       \
                        COPY;                                                       \
                    }                                                               \
                }
                if (flip && tt == 9) {
                    FC_GIN_STAGE(for (q = 0; q < 9; q++) dp[q] = sp[8 - q])
                } else if (flip && tt == 1) {
                    FC_GIN_STAGE(dp[0] = sp[0])
                } else if (flip) {
                    FC_GIN_STAGE(for (q = 0; q < tt; q++) dp[q] = sp[tt - 1 - q])
                } else {
                    FC_GIN_STAGE(for (q = 0; q < tt; q++) dp[q] = sp[idx[q]])
                }
#undef FC_GIN_STAGE
                for (ci = ci0; ci < ci1; ci++)
                    memcpy(wt + ((g * cig + ci) * cog + co0) * tt, stage + (ci - ci0) * 16 * tt,
                           (size_t)(nco * tt) * sizeof(T));
            }
            continue;
        }
        for (co = 0; co < cog; co++) {
            const T *src = w + ((g * cog + co) * cig) * khkw;
            for (ci = ci0; ci < ci1; ci++) {
                const T *restrict sp = src + ci * khkw;
                T *restrict dp = wt + ((g * cig + ci) * cog + co) * tt;
                if (tab)
                    for (q = 0; q < tt; q++) dp[q] = sp[idx[q]];
                else
                    for (q = 0; q < tt; q++) dp[q] = sp[(hm - (q / wt_n) * hs) * kw + (wm - (q % wt_n) * ws)];
            }
        }
    }
}

/* win[p][a][b] = gy plane p at (c0_h + a, c0_w + b), zero outside grad_out;
 * `planes` planes (images x c_out). */
static void GFN(gin_window_)(const fc_context *ctx, const fc_conv_shape *s, const T *gy, T *win,
                             int64_t planes, const fc_gin_axis *ah, const fc_gin_axis *aw) {
    const int64_t lh = ah->len, lw = aw->len, ho = s->h_out, wo = s->w_out;
    const int64_t b0 = FC_MIN(lw, FC_MAX(0, -aw->c0));
    const int64_t b1 = FC_MAX(b0, FC_MIN(lw, wo - aw->c0));
    const int t = fc_threads_for(ctx, FC_MIN(planes, planes * lh * lw / 65536 + 1));
    int64_t p;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (p = 0; p < planes; p++) {
        const T *src = gy + p * ho * wo;
        T *dst = win + p * lh * lw;
        int64_t a;
        for (a = 0; a < lh; a++) {
            const int64_t row = ah->c0 + a;
            T *d = dst + a * lw;
            if (row < 0 || row >= ho) {
                memset(d, 0, (size_t)lw * sizeof(T));
                continue;
            }
            if (b0 > 0) memset(d, 0, (size_t)b0 * sizeof(T));
            if (b1 > b0) memcpy(d + b0, src + row * wo + aw->c0 + b0, (size_t)(b1 - b0) * sizeof(T));
            if (lw > b1) memset(d + b1, 0, (size_t)(lw - b1) * sizeof(T));
        }
    }
}

/* gx plane p at (r_h + m*s_h, r_w + q*s_w) = res[p][m][q], or 0 when res is
 * NULL; `planes` planes (images x c_in). */
static void GFN(gin_scatter_)(const fc_context *ctx, const fc_conv_shape *s, const T *res, T *gx,
                              int64_t planes, int64_t rh, int64_t rw, const fc_gin_axis *ah,
                              const fc_gin_axis *aw) {
    const int64_t mh = ah->m, mw = aw->m, sh = s->stride_h, sw = s->stride_w;
    const int64_t hi = s->h_in, wi = s->w_in;
    const int t = fc_threads_for(ctx, FC_MIN(planes, planes * mh * mw / 65536 + 1));
    int64_t p;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (p = 0; p < planes; p++) {
        T *dst = gx + p * hi * wi + rh * wi + rw;
        int64_t m, q;
        for (m = 0; m < mh; m++) {
            T *d = dst + m * sh * wi;
            if (res) {
                const T *r = res + (p * mh + m) * mw;
                for (q = 0; q < mw; q++) d[q * sw] = r[q];
            } else {
                for (q = 0; q < mw; q++) d[q * sw] = 0;
            }
        }
    }
}

fc_status GFN(fc_conv2d_grad_input_fwd_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                         const T *w, T *gx) {
    const int64_t cig = s->c_in / s->groups;
    const int64_t gy_img = s->c_out * s->h_out * s->w_out, gx_img = s->c_in * s->h_in * s->w_in;
    fc_gin_plan pl;
    fc_gin_axis ah, aw;
    T *wt = NULL, *win = NULL, *res = NULL;
    int64_t rh, rw, n0, wt_b = 0, win_b = 0, res_b = 0;
    int work;
    fc_status st = gin_plan(ctx, s, (int)sizeof(T), &pl, &work);
    if (st != FC_OK) return st;
    if (!work) {  /* no grad_out element (or no input channel): gx = 0 */
        memset(gx, 0, (size_t)(s->n * gx_img) * sizeof(T));
        return FC_OK;
    }
    wt_b = pl.wt_elems * (int64_t)sizeof(T);
    win_b = pl.nb * pl.win_img * (int64_t)sizeof(T);  /* fits: gin_plan checked per*nb <= limit or nb == 1 */
    res_b = pl.nb * pl.out_img * (int64_t)sizeof(T);
    wt = (T *)fc_ws_alloc(ctx, wt_b);
    if (pl.copy) win = (T *)fc_ws_alloc(ctx, win_b);
    if (pl.scatter) res = (T *)fc_ws_alloc(ctx, res_b);
    if (!wt || (pl.copy && !win) || (pl.scatter && !res)) { st = FC_ERR_NOMEM; goto done; }
    /* Phases no tap reaches (stride > kernel) stay zero: clear gx once rather
     * than visiting each of up to stride_h*stride_w phases; only residues
     * below the input size have positions at all. */
    if (pl.scatter) memset(gx, 0, (size_t)(s->n * gx_img) * sizeof(T));
    for (rh = 0; rh < FC_MIN(s->stride_h, s->h_in); rh++) {
        gin_axis(s->h_in, s->kh, s->stride_h, s->pad_h, s->dil_h, rh, &ah);
        if (ah.m == 0 || ah.t == 0) continue;
        for (rw = 0; rw < FC_MIN(s->stride_w, s->w_in); rw++) {
            gin_axis(s->w_in, s->kw, s->stride_w, s->pad_w, s->dil_w, rw, &aw);
            if (aw.m == 0 || aw.t == 0) continue;
            GFN(gin_pack_)(ctx, s, w, wt, &ah, &aw);
            for (n0 = 0; n0 < s->n; n0 += pl.nb) {
                const int64_t nbc = FC_MIN(pl.nb, s->n - n0);
                fc_conv_shape ps;
                const T *src = gy + n0 * gy_img;
                ps.n = nbc;
                ps.c_in = s->c_out; ps.c_out = s->c_in; ps.groups = s->groups;
                ps.kh = ah.t; ps.kw = aw.t;
                ps.h_out = ah.m; ps.w_out = aw.m;
                ps.stride_h = ps.stride_w = 1;
                ps.dil_h = ah.dil; ps.dil_w = aw.dil;
                if (pl.copy) {
                    GFN(gin_window_)(ctx, s, src, win, nbc * s->c_out, &ah, &aw);
                    src = win;
                    ps.h_in = ah.len; ps.w_in = aw.len;
                    ps.pad_h = ps.pad_w = 0;
                } else {  /* stride 1, window = grad_out padded symmetrically */
                    ps.h_in = s->h_out; ps.w_in = s->w_out;
                    ps.pad_h = -ah.c0; ps.pad_w = -aw.c0;
                }
                st = FWD(fc_conv2d_)(ctx, &ps, FC_ALGO_DIRECT, src, wt, NULL,
                                     pl.scatter ? res : gx + n0 * gx_img);
                if (st != FC_OK) goto done;
                if (pl.scatter)
                    GFN(gin_scatter_)(ctx, s, res, gx + n0 * gx_img, nbc * s->c_in, rh, rw, &ah, &aw);
            }
        }
    }
    (void)cig;
done:
    if (res) fc_ws_free(ctx, res, res_b);
    if (win) fc_ws_free(ctx, win, win_b);
    if (wt) fc_ws_free(ctx, wt, wt_b);
    return st;
}

#undef GFN
#undef FWD
#undef FC_GJ
#undef FC_GJ2
