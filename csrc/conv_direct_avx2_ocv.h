/* Output-channel-vectorised direct convolution (oneDNN's AVX2 scheme on
 * NCHW data): the vectors hold NCO = 2*VL consecutive output channels, the
 * micro-tile is FC_OCV_NP output pixels x 2 vectors (6x16 f32, 6x8 f64:
 * 12 accumulators), and each step broadcasts one input value per pixel and
 * FMAs it with the two packed weight vectors of one (ci, kh, kw) tap.
 *
 * Pixels are taken along the output plane flattened (h*w as one dimension),
 * each with its own input base pointer, so small planes (7x7, 14x14), row
 * ends and strides waste no lanes; a chunk of whole small planes spans
 * several images, so each packed weight block serves them all.  Padding is
 * handled by copying the input rows a chunk needs, zero-padded, into a
 * stack block; without padding the kernel reads x in place.  Partial sums
 * of a (pixel chunk, co-block) live in a stack buffer acc[P][NCO] across
 * input-channel blocks and are transposed into y once at the end.  No heap
 * workspace.
 *
 * Summation order of each output: bias, then (ci, kh, kw) ascending, fixed
 * by the shape alone, so results do not depend on the thread count.
 * Included by conv_direct_avx2_impl.h (same dtype macros). */

#include "conv_direct_ocv_plan.h"

#define FC_OCV_NP 6
#define FC_OCV_NCO (2 * VL)
#ifndef FC_OCV_KMAX
#define FC_OCV_KMAX 576                            /* taps per ci-block */
#endif
#define FC_OCV_PMAX 512                            /* output pixels per chunk */
#ifndef FC_OCV_XBYTES
#define FC_OCV_XBYTES 49152
#endif
#define FC_OCV_XMAX ((int64_t)(FC_OCV_XBYTES / sizeof(T))) /* padded input block elements */

/* One tile: np pixels (x pointers xp[0..np)) x nv vectors of channels.
 * init: per-lane initial values (bias) or NULL to resume from acc. */
static FC_AI void SFX(ocv_tile)(const int np, const int nv, const T *const *xp,
                                const int64_t *off, int64_t K, const T *wp, T *acc,
                                const T *init) {
    V a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
    const T *x0 = xp[0];
    const T *x1 = np > 1 ? xp[1] : x0, *x2 = np > 2 ? xp[2] : x0;
    const T *x3 = np > 3 ? xp[3] : x0, *x4 = np > 4 ? xp[4] : x0, *x5 = np > 5 ? xp[5] : x0;
    int64_t k;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = V_ZERO();
#define FC_OI(j)                                                                  \
    if (np > j) {                                                                 \
        if (init) { a##j##0 = V_LOADU(init); if (nv > 1) a##j##1 = V_LOADU(init + VL); } \
        else { a##j##0 = V_LOADU(acc + j * FC_OCV_NCO); if (nv > 1) a##j##1 = V_LOADU(acc + j * FC_OCV_NCO + VL); } \
    }
    FC_OI(0) FC_OI(1) FC_OI(2) FC_OI(3) FC_OI(4) FC_OI(5)
#undef FC_OI
    for (k = 0; k < K; k++) {
        const int64_t o = off[k];
        const V w0 = V_LOADU(wp + k * FC_OCV_NCO);
        const V w1 = nv > 1 ? V_LOADU(wp + k * FC_OCV_NCO + VL) : V_ZERO();
#define FC_OS(j)                                                                  \
        if (np > j) {                                                             \
            const V bx = V_SET1(x##j[o]);                                         \
            a##j##0 = V_FMA(bx, w0, a##j##0);                                     \
            if (nv > 1) a##j##1 = V_FMA(bx, w1, a##j##1);                         \
        }
        FC_OS(0) FC_OS(1) FC_OS(2) FC_OS(3) FC_OS(4) FC_OS(5)
#undef FC_OS
    }
#define FC_OW(j)                                                                  \
    if (np > j) {                                                                 \
        V_STOREU(acc + j * FC_OCV_NCO, a##j##0);                                  \
        if (nv > 1) V_STOREU(acc + j * FC_OCV_NCO + VL, a##j##1);                 \
    }
    FC_OW(0) FC_OW(1) FC_OW(2) FC_OW(3) FC_OW(4) FC_OW(5)
#undef FC_OW
}

#define FC_OCV_CALL(NP, NV) SFX(ocv_tile)(NP, NV, xp, off, K, wp, acc, init)
#define FC_OCV_NV(NP) do { if (nv > 1) FC_OCV_CALL(NP, 2); else FC_OCV_CALL(NP, 1); } while (0)
static FC_NOINLINE void SFX(ocv_tile_dispatch)(int np, int nv, const T *const *xp, const int64_t *off,
                                              int64_t K, const T *wp, T *acc, const T *init) {
    switch (np) {
    case 6: FC_OCV_NV(6); break;
    case 5: FC_OCV_NV(5); break;
    case 4: FC_OCV_NV(4); break;
    case 3: FC_OCV_NV(3); break;
    case 2: FC_OCV_NV(2); break;
    default: FC_OCV_NV(1); break;
    }
}
#undef FC_OCV_NV
#undef FC_OCV_CALL

/* VL x VL block transpose (fc_transpose_avx2.h). */
static inline void SFX(ocv_tr)(const T *src, int64_t ss, T *dst, int64_t ds) {
#if VL == 8
    fc_tr8x8_f32(src, ss, dst, ds);
#else
    fc_tr4x4_f64(src, ss, dst, ds);
#endif
}

/* acc[P][NCO] (first nco lanes valid) -> y: channel c's P pixels at y + c*po.
 * As the AVX-512 tile's z_store: blocks of 64 pixels, swept VL channels at
 * a time, so that each output line is filled by consecutive stores. */
static void SFX(ocv_store)(const T *acc, int64_t P, int nco, T *y, int64_t po) {
    int64_t p = 0, p0;
    int c, h;
    if (nco == FC_OCV_NCO) {
        const int64_t pf = P / VL * VL;
        for (p0 = 0; p0 < pf; p0 += 64)
            for (h = 0; h < FC_OCV_NCO; h += VL)
                for (p = p0; p < FC_MIN(pf, p0 + 64); p += VL)
                    SFX(ocv_tr)(acc + p * FC_OCV_NCO + h, FC_OCV_NCO, y + h * po + p, po);
        p = pf;
    }
    /* tail pixels (and partial channel blocks) */
    for (c = 0; c < nco; c++) {
        T *yc = y + c * po;
        int64_t q;
        for (q = p; q < P; q++) yc[q] = acc[q * FC_OCV_NCO + c];
    }
}

/* Pack K consecutive weights of nco channels (channel c's at src + c*ss)
 * as wp[K][NCO], zero lanes past nco. */
static void SFX(ocv_pack)(T *wp, const T *src, int64_t ss, int nco, int64_t K) {
    int64_t t = 0;
    int c;
    if (nco == FC_OCV_NCO)
        for (; t + VL <= K; t += VL) {
            SFX(ocv_tr)(src + t, ss, wp + t * FC_OCV_NCO, FC_OCV_NCO);
            SFX(ocv_tr)(src + VL * ss + t, ss, wp + t * FC_OCV_NCO + VL, FC_OCV_NCO);
        }
    for (c = 0; c < FC_OCV_NCO; c++) {
        int64_t q;
        if (c < nco)
            for (q = t; q < K; q++) wp[q * FC_OCV_NCO + c] = src[c * ss + q];
        else
            for (q = t; q < K; q++) wp[q * FC_OCV_NCO + c] = 0;
    }
}

/* This tile's chunking limits (conv_direct_ocv_plan.h): at least VL
 * output channels per group, 128 input channels per block for 1x1. */
static const fc_ocv_limits SFX(ocv_limits) = {VL, FC_OCV_PMAX, FC_OCV_KMAX, FC_OCV_XMAX, 128, 0, 16};

/* Serves groups with >= 8 output channels each, w_out <= FC_OCV_PMAX; else
 * FC_NOT_HANDLED. */
static fc_status SFX(ocv)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                          const T *bias, T *y) {
    const int64_t khkw = s->kh * s->kw, cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t ncob = (cog + FC_OCV_NCO - 1) / FC_OCV_NCO;
    fc_ocv_plan pl;
    int64_t ntask, t64;
    int nthr;
    if (!fc_ocv_make_plan(s, &SFX(ocv_limits), &pl)) return FC_NOT_HANDLED;
    FC_MUL(s->groups, ncob, &t64);
    fc_ocv_batch_images(s, &SFX(ocv_limits), ctx->num_threads, t64, &pl);
    FC_MUL(t64, pl.nic, &t64);         /* tasks per row chunk */
    fc_ocv_balance(s, &SFX(ocv_limits), ctx->num_threads, t64, &pl);
    FC_MUL(t64, pl.nrc, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(32) T wp[FC_OCV_KMAX * FC_OCV_NCO];
        FC_ALIGNED(32) T acc[FC_OCV_PMAX * FC_OCV_NCO];
        FC_ALIGNED(32) T xb[FC_OCV_XMAX + VL];
        FC_ALIGNED(32) T binit[FC_OCV_NCO];
        int64_t off[FC_OCV_KMAX];
        int64_t pbase[FC_OCV_PMAX];
        int64_t task;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            int64_t rest = task;
            const int64_t cob = rest % ncob; rest /= ncob;
            const int64_t rc = rest % pl.nrc; rest /= pl.nrc;
            const int64_t g = rest % s->groups; rest /= s->groups;
            const int64_t n0 = rest * pl.imgs, nimg = FC_MIN(pl.imgs, s->n - n0);
            const int64_t co0 = cob * FC_OCV_NCO;
            const int nco = (int)FC_MIN(FC_OCV_NCO, cog - co0);
            const int nv = nco > VL ? 2 : 1;
            const int64_t co_abs = g * cog + co0;
            const int64_t r0 = rc * pl.rows_per, r1 = FC_MIN(s->h_out, r0 + pl.rows_per);
            const int64_t PP = (r1 - r0) * s->w_out, P = nimg * PP;   /* pixels per image, in all */
            const int64_t ih_s = r0 * s->stride_h - s->pad_h;  /* first input row of the block */
            const int64_t rows_b = fc_ocv_rows_in(s, r1 - r0);
            const int64_t wb = pl.copy ? pl.wb : s->w_in;
            const int64_t plane_b = pl.copy ? rows_b * wb : s->h_in * s->w_in;
            /* image i of the chunk: x at ximg + i*xis, its block at xb + i*xbs */
            const int64_t xis = s->c_in * s->h_in * s->w_in, xbs = pl.cib * plane_b;
            const T *ximg = x + (n0 * s->c_in + g * cig) * s->h_in * s->w_in;
            int64_t p, kb, c, im;
            for (c = 0; c < FC_OCV_NCO; c++)
                binit[c] = (bias && c < nco) ? bias[co_abs + c] : (T)0;
            fc_ocv_pixel_bases(s, pl.copy, r0, PP, P, wb, xis, xbs, pbase);
            for (kb = 0; kb < pl.ncib; kb++) {
                const int64_t ci0 = kb * pl.cib, cib = FC_MIN(pl.cib, cig - ci0);
                const int64_t K = cib * khkw;
                const T *xsrc;
                int64_t ci;
                if (cib <= 0) break;
                /* pack weights [ci][kh][kw][NCO] */
                SFX(ocv_pack)(wp, w + (co_abs * cig + ci0) * khkw, cig * khkw, nco, K);
                if (pl.copy) {
                    /* zero-padded rows [ih_s, ih_s + rows_b) x cols [-pad_w, -pad_w + wb):
                     * inline loops, the rows are too short for memcpy calls to pay */
                    const int64_t c_lo = FC_MIN(wb, FC_MAX(0, s->pad_w));
                    const int64_t c_hi = FC_MAX(c_lo, FC_MIN(wb, s->w_in + s->pad_w));
                    for (im = 0; im < nimg * cib; im++) {
                        const int64_t ii = im / cib, ci = im % cib;   /* image, channel */
                        const T *xp = ximg + ii * xis + (ci0 + ci) * s->h_in * s->w_in - s->pad_w;
                        int64_t i, q;
                        for (i = 0; i < rows_b; i++) {
                            T *dst = xb + ii * xbs + ci * plane_b + i * wb;
                            const int64_t ih = ih_s + i;
                            /* zero the row (vectors may run past it: the next
                             * row is written after, the block has VL slack) */
                            for (q = 0; q < wb; q += VL) V_STOREU(dst + q, V_ZERO());
                            if (ih < 0 || ih >= s->h_in) continue;
                            for (q = c_lo; q < c_hi; q += VL) {
                                const T *src = xp + ih * s->w_in + q;
                                if (c_hi - q >= VL) V_STOREU(dst + q, V_LOADU(src));
                                else SFX(store_part)(dst + q, SFX(load_part)(src, c_hi - q), c_hi - q);
                            }
                        }
                    }
                    xsrc = xb;
                } else {
                    xsrc = ximg + ci0 * plane_b;
                }
                for (ci = 0; ci < cib; ci++) {
                    int64_t i, j;
                    for (i = 0; i < s->kh; i++)
                        for (j = 0; j < s->kw; j++)
                            off[(ci * s->kh + i) * s->kw + j] = ci * plane_b + i * s->dil_h * wb + j * s->dil_w;
                }
                /* prefetch the next block's weights (16 strided rows that the
                 * hardware prefetcher follows poorly), spread over the tiles */
                const int64_t ntile = (P + FC_OCV_NP - 1) / FC_OCV_NP;
                const int64_t nci_next = kb + 1 < pl.ncib ? FC_MIN(pl.cib, cig - ci0 - cib) : 0;
                const int64_t lines = (nci_next * khkw * (int64_t)sizeof(T) + 63) / 64;
                const int64_t lpt = (lines + ntile - 1) / ntile;  /* lines per tile per channel */
                const char *wnext = (const char *)(w + (co_abs * cig + ci0 + cib) * khkw);
                int64_t tile = 0;
                int np;
                for (p = 0; p < P; p += np, tile++) {
                    /* tiles of >= 4 pixels are throughput-bound (np*K cycles),
                     * smaller ones latency-bound (~4K): split the end of the
                     * chunk into tiles of 4-6 (49 = 6*6 + 5 + 4 + 4) */
                    const int64_t rem = P - p;
                    const T *xp[FC_OCV_NP];
                    int j;
                    np = rem >= 14 || (rem >= 10 && rem <= 12) ? 6 : rem == 13 || rem == 9 ? 5
                       : rem >= 7 ? 4 : (int)rem;
                    if (lines > 0) {
                        const int64_t l0 = tile * lpt, l1 = FC_MIN(lines, l0 + lpt);
                        int64_t l;
                        for (c = 0; c < nco; c++)
                            for (l = l0; l < l1; l++)
                                _mm_prefetch(wnext + c * cig * khkw * (int64_t)sizeof(T) + 64 * l, _MM_HINT_T0);
                    }
                    for (j = 0; j < np; j++) xp[j] = xsrc + pbase[p + j];
                    SFX(ocv_tile_dispatch)(np, nv, xp, off, K, wp, acc + p * FC_OCV_NCO,
                                           kb == 0 ? binit : NULL);
                }
            }
            for (im = 0; im < nimg; im++)
                SFX(ocv_store)(acc + im * PP * FC_OCV_NCO, PP, nco,
                               y + ((n0 + im) * s->c_out + co_abs) * s->h_out * s->w_out + r0 * s->w_out,
                               s->h_out * s->w_out);
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
