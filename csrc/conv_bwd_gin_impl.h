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
#ifndef FC_GIN_PHASES
#define FC_GIN_PHASES 16   /* phases packed per pass over w */
#endif

/* A phase's axes and where its rearranged weights start in wt. */
typedef struct {
    fc_gin_axis h, w;
    int64_t rh, rw;   /* residues */
    int64_t woff;     /* rearranged weights at wt + woff */
} GFN(fc_gin_phase_);

/* Rearranged weights of one phase: wt[g*cig + ci][co][jh][jw] =
 * w[g*cog + co][ci][kmax_h - jh*kstep_h][kmax_w - jw*kstep_w], i.e. the
 * forward weight (c_in, c_out/groups, t_h, t_w) of the phase's convolution.
 * Blocks of 16 input channels so each read of w is a 16-channel run.  The
 * kernels with at most FC_GIN_STAGE_TAPS taps pack all `nph` phases in one
 * pass over w (each tap belongs to one phase per axis, so the phases'
 * weights together are at most the size of w); larger ones phase by phase. */
static void GFN(gin_pack_)(const fc_context *ctx, const fc_conv_shape *s, const T *w, T *wt,
                           const GFN(fc_gin_phase_) *ph, int nph) {
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t khkw = s->kh * s->kw, kw = s->kw;
    const int64_t nblk = (cig + 15) / 16, items = s->groups * nblk;
    const int staged = khkw <= FC_GIN_STAGE_TAPS;
    /* stride 1 flips the whole kernel: constant offsets (source tap
     * khkw-1-q) for the common sizes; an indexed scalar copy costs about as
     * much per weight as a 7x7-plane convolution's FMAs */
    const int flip = nph == 1 && ph[0].h.t * ph[0].w.t == khkw;
    int64_t idx[FC_GIN_STAGE_TAPS], ioff[FC_GIN_STAGE_TAPS];
    int64_t it, e, total = 0;
    int i, t;
    /* source tap of each phase tap: staged phases' tables back to back */
    for (i = 0; i < nph && staged; i++) {
        const int64_t wt_n = ph[i].w.t, tt = ph[i].h.t * wt_n;
        ioff[i] = total;
        for (e = 0; e < tt; e++)
            idx[total + e] = (ph[i].h.kmax - (e / wt_n) * ph[i].h.kstep) * kw +
                             (ph[i].w.kmax - (e % wt_n) * ph[i].w.kstep);
        total += tt;
    }
    t = fc_threads_for(ctx, FC_MIN(items, (s->c_out * cig * khkw) / 65536 + 1));
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(t)
#endif
    for (it = 0; it < items; it++) {
        const int64_t g = it / nblk, ci0 = (it % nblk) * 16, ci1 = FC_MIN(cig, ci0 + 16);
        int64_t co, ci, q;
        int j;
        if (staged) {
            /* 16 x 16 channel blocks through a staging buffer, so each row
             * of wt is written in one 16*tt run (written tap by tap, the 16
             * rows, a multiple of 2 KB apart for the usual channel counts,
             * share a few L1 sets and evict each other's partial lines) */
            T stage[16 * 16 * FC_GIN_STAGE_TAPS];
            int64_t co0;
            for (co0 = 0; co0 < cog; co0 += 16) {
                const int64_t nco = FC_MIN(16, cog - co0);
#ifdef __GNUC__
                /* the next block's rows of w: 16 runs a row of w apart, more
                 * than the hardware prefetcher follows */
                if (co0 + 16 < cog) {
                    const int64_t nn = FC_MIN(16, cog - co0 - 16), len = (ci1 - ci0) * khkw;
                    for (co = 0; co < nn; co++) {
                        const T *src = w + ((g * cog + co0 + 16 + co) * cig + ci0) * khkw;
                        for (q = 0; q < len; q += 64 / (int64_t)sizeof(T)) __builtin_prefetch(src + q);
                        __builtin_prefetch(src + len - 1);
                    }
                }
#endif
                /* stage[ci][co][tap]: flipped (one phase) or as in w */
#define FC_GIN_STAGE(COPY)                                                          \
                for (co = 0; co < nco; co++) {                                      \
                    const T *src = w + ((g * cog + co0 + co) * cig) * khkw;         \
                    for (ci = ci0; ci < ci1; ci++) {                                \
                        const T *restrict sp = src + ci * khkw;                     \
                        T *restrict dp = stage + ((ci - ci0) * 16 + co) * khkw;     \
                        COPY;                                                       \
                    }                                                               \
                }
                if (flip && khkw == 9) {
                    FC_GIN_STAGE(for (q = 0; q < 9; q++) dp[q] = sp[8 - q])
                } else if (khkw == 1) {
                    FC_GIN_STAGE(dp[0] = sp[0])
                } else if (flip) {
                    FC_GIN_STAGE(for (q = 0; q < khkw; q++) dp[q] = sp[khkw - 1 - q])
                } else if (khkw == 9) {
                    FC_GIN_STAGE(for (q = 0; q < 9; q++) dp[q] = sp[q])
                } else if (khkw == 16) {
                    FC_GIN_STAGE(for (q = 0; q < 16; q++) dp[q] = sp[q])
                } else {
                    FC_GIN_STAGE(for (q = 0; q < khkw; q++) dp[q] = sp[q])
                }
#undef FC_GIN_STAGE
                if (flip || khkw == 1) {
                    for (ci = ci0; ci < ci1; ci++)
                        memcpy(wt + ((g * cig + ci) * cog + co0) * khkw, stage + (ci - ci0) * 16 * khkw,
                               (size_t)(nco * khkw) * sizeof(T));
                    continue;
                }
                /* each phase's taps of the block, one nco*tt run per row */
                for (j = 0; j < nph; j++) {
                    const int64_t tt = ph[j].h.t * ph[j].w.t;
                    const int64_t *restrict ix = idx + ioff[j];
                    for (ci = ci0; ci < ci1; ci++) {
                        const T *restrict sp = stage + (ci - ci0) * 16 * khkw;
                        T *restrict dp = wt + ph[j].woff + ((g * cig + ci) * cog + co0) * tt;
                        /* tap outer: the channel loop has a constant trip
                         * count for full blocks (unrolled) */
                        if (nco == 16)
                            for (q = 0; q < tt; q++) {
                                const T *restrict sq = sp + ix[q];
                                for (co = 0; co < 16; co++) dp[co * tt + q] = sq[co * khkw];
                            }
                        else
                            for (q = 0; q < tt; q++)
                                for (co = 0; co < nco; co++) dp[co * tt + q] = sp[co * khkw + ix[q]];
                    }
                }
            }
            continue;
        }
        for (j = 0; j < nph; j++) {
            const int64_t hm = ph[j].h.kmax, hs = ph[j].h.kstep, wm = ph[j].w.kmax, ws = ph[j].w.kstep;
            const int64_t wt_n = ph[j].w.t, tt = ph[j].h.t * wt_n, tab = tt <= FC_GIN_PACK_TAPS;
            int64_t ix[FC_GIN_PACK_TAPS];
            for (q = 0; q < tt && tab; q++) ix[q] = (hm - (q / wt_n) * hs) * kw + (wm - (q % wt_n) * ws);
            for (co = 0; co < cog; co++) {
                const T *src = w + ((g * cog + co) * cig) * khkw;
                for (ci = ci0; ci < ci1; ci++) {
                    const T *restrict sp = src + ci * khkw;
                    T *restrict dp = wt + ph[j].woff + ((g * cig + ci) * cog + co) * tt;
                    if (tab)
                        for (q = 0; q < tt; q++) dp[q] = sp[ix[q]];
                    else
                        for (q = 0; q < tt; q++) dp[q] = sp[(hm - (q / wt_n) * hs) * kw + (wm - (q % wt_n) * ws)];
                }
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

/* gx plane p at (r_h + m*s_h, r_w + q*s_w) = res[p][e_h + m][e_w + q] (res
 * planes of (m_h + e_h) x (m_w + e_w)); `planes` planes (images x c_in). */
static void GFN(gin_scatter_)(const fc_context *ctx, const fc_conv_shape *s, const T *res, T *gx,
                              int64_t planes, int64_t rh, int64_t rw, const fc_gin_axis *ah,
                              const fc_gin_axis *aw, int64_t eh, int64_t ew) {
    const int64_t mh = ah->m, mw = aw->m, sh = s->stride_h, sw = s->stride_w;
    const int64_t hi = s->h_in, wi = s->w_in, rw_len = mw + ew, rplane = (mh + eh) * rw_len;
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
            T *restrict d = dst + m * sh * wi;
            const T *restrict r = res + p * rplane + (eh + m) * rw_len + ew;
            if (sw == 1)
                memcpy(d, r, (size_t)mw * sizeof(T));
            else
                for (q = 0; q < mw; q++) d[q * sw] = r[q];
        }
    }
}

fc_status GFN(fc_conv2d_grad_input_fwd_)(fc_context *ctx, const fc_conv_shape *s, const T *gy,
                                         const T *w, T *gx) {
    const int64_t gy_img = s->c_out * s->h_out * s->w_out, gx_img = s->c_in * s->h_in * s->w_in;
    const int64_t wtap = s->c_out * (s->c_in / s->groups);  /* rearranged weights per tap */
    fc_gin_plan pl;
    fc_gin_axis ah, aw;
    GFN(fc_gin_phase_) ph[FC_GIN_PHASES];
    T *wt = NULL, *win = NULL, *res = NULL;
    int64_t n0, wt_b = 0, win_b = 0, res_b = 0, done_ph = 0, k;
    int work, nph, j;
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
    if (s->stride_h > 1 || s->stride_w > 1) memset(gx, 0, (size_t)(s->n * gx_img) * sizeof(T));
    /* Phases in batches of up to FC_GIN_PHASES: one packing pass over w per
     * batch (its weights fit wt: each tap belongs to one phase), then the
     * batch's convolutions.  Each gx position belongs to one phase, so the
     * order does not change any result. */
    do {
        int64_t woff = 0;
        nph = 0;
        k = 0;
        FC_GIN_FOR_PHASES(s, ah, aw, {
            if (k++ >= done_ph && nph < FC_GIN_PHASES) {
                ph[nph].h = ah; ph[nph].w = aw; ph[nph].rh = rh_; ph[nph].rw = rw_;
                ph[nph].woff = woff;
                woff += ah.t * aw.t * wtap;
                nph++;
            }
        });
        done_ph += nph;
        if (nph == 0) break;
        GFN(gin_pack_)(ctx, s, w, wt, ph, nph);
        for (j = 0; j < nph; j++) {
            const fc_gin_axis *a = &ph[j].h, *b = &ph[j].w;
            const int64_t eh = pl.copy ? 0 : a->e, ew = pl.copy ? 0 : b->e;
            for (n0 = 0; n0 < s->n; n0 += pl.nb) {
                const int64_t nbc = FC_MIN(pl.nb, s->n - n0);
                fc_conv_shape ps;
                const T *src = gy + n0 * gy_img;
                ps.n = nbc;
                ps.c_in = s->c_out; ps.c_out = s->c_in; ps.groups = s->groups;
                ps.kh = a->t; ps.kw = b->t;
                ps.h_out = a->m + eh; ps.w_out = b->m + ew;
                ps.stride_h = ps.stride_w = 1;
                ps.dil_h = a->dil; ps.dil_w = b->dil;
                if (pl.copy) {
                    GFN(gin_window_)(ctx, s, src, win, nbc * s->c_out, a, b);
                    src = win;
                    ps.h_in = a->len; ps.w_in = b->len;
                    ps.pad_h = ps.pad_w = 0;
                } else {  /* gy padded symmetrically, e leading outputs dropped */
                    ps.h_in = s->h_out; ps.w_in = s->w_out;
                    ps.pad_h = a->pad; ps.pad_w = b->pad;
                }
                st = FWD(fc_conv2d_)(ctx, &ps, FC_ALGO_DIRECT, src, wt + ph[j].woff, NULL,
                                     pl.scatter ? res : gx + n0 * gx_img);
                if (st != FC_OK) goto done;
                if (pl.scatter)
                    GFN(gin_scatter_)(ctx, s, res, gx + n0 * gx_img, nbc * s->c_in, ph[j].rh, ph[j].rw,
                                      a, b, eh, ew);
            }
        }
    } while (nph == FC_GIN_PHASES);
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
