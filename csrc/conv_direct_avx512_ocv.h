/* Output-channel-vectorised direct convolution, AVX-512 (the AVX2 kernel's
 * scheme, conv_direct_avx2_ocv.h, with zmm vectors and 32 registers).
 *
 * Vectors hold NCO = NV*VL consecutive output channels (NV = 4: 64 f32 /
 * 32 f64 channels); the micro-tile is up to NP output pixels x NV vectors
 * (6 x 4 = 24 zmm accumulators, plus the NV weight vectors and one
 * broadcast register: 29 of the 32).  Each step loads the NV packed weight
 * vectors of one (ci, kh, kw) tap, then broadcasts one input value per pixel
 * into a register feeding NV FMAs: 6 + NV loads per 6*NV FMAs, which two
 * load ports sustain next to two 512-bit FMA units.
 *
 * Pixels run along the output plane flattened (h*w as one dimension), each
 * with its own input pointer: any plane size, stride or row end wastes no
 * lanes; a chunk's end is split into near-equal tiles (49 = 4*6 + 5*5).
 * A chunk of whole small planes spans several images, their pixels one
 * run, so each packed weight block serves them all (fc_ocv_batch_images).
 * Output-channel tails (fewer than NCO channels in the last block) run with
 * fewer vectors; the packed weights' unused lanes are zero and never
 * stored.  The next block's weights are prefetched into L2 while a block
 * computes (they are read with a large stride when packed).
 *
 * Padding: the input rows a chunk needs are copied, zero-padded (masked
 * loads for the row ends), into a stack block; without padding x is read in
 * place.  Partial sums of a (pixel chunk, co-block) live in a stack buffer
 * acc[P][NCO] across input-channel blocks and are transposed into y once.
 * No heap workspace.
 *
 * Summation order of each output: bias, then (ci, kh, kw) ascending, fixed
 * by the shape alone, so results do not depend on the thread count.
 * Included by conv_direct_avx512.c once per dtype. */

#include "conv_direct_ocv_plan.h"

#define FC_Z_NV 4
#define FC_Z_NCO (FC_Z_NV * VL)
#ifndef FC_Z_NP
#define FC_Z_NP 6                                  /* pixels per tile (7 needs 33 zmm) */
#endif
#ifndef FC_Z_KMAX
#define FC_Z_KMAX 576                              /* taps per ci-block */
#endif
#ifndef FC_Z_PMAX
#define FC_Z_PMAX 512                              /* output pixels per chunk */
#endif
#ifndef FC_Z_XBYTES
#define FC_Z_XBYTES 49152
#endif
#define FC_Z_XMAX ((int64_t)(FC_Z_XBYTES / sizeof(T))) /* padded input block elements */
#ifndef FC_Z_IMGS
#define FC_Z_IMGS 16                               /* images per chunk of whole small planes */
#endif

/* One tile: np pixels (input pointers xp[0..np)) x nv vectors of channels,
 * K taps at offsets off[k] from each pixel's pointer, weights wp[K][NCO].
 * init: per-lane initial values (bias) or NULL to resume from acc. */
static FC_AI void SFX(z_tile)(const int np, const int nv, const T *const *xp,
                              const int64_t *off, int64_t K, const T *wp, T *acc,
                              const T *init) {
    V a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
    V a40, a41, a42, a43, a50, a51, a52, a53, a60, a61, a62, a63;
    const T *x0 = xp[0];
    const T *x1 = np > 1 ? xp[1] : x0, *x2 = np > 2 ? xp[2] : x0, *x3 = np > 3 ? xp[3] : x0;
    const T *x4 = np > 4 ? xp[4] : x0, *x5 = np > 5 ? xp[5] : x0, *x6 = np > 6 ? xp[6] : x0;
    int64_t k;
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = a20 = a21 = a22 = a23 = V_ZERO();
    a30 = a31 = a32 = a33 = a40 = a41 = a42 = a43 = a50 = a51 = a52 = a53 = V_ZERO();
    a60 = a61 = a62 = a63 = V_ZERO();
#define FC_ZI1(j, v)                                                                     \
    if (np > j && nv > v)                                                                \
        a##j##v = init ? V_LOADU(init + v * VL) : V_LOADU(acc + j * FC_Z_NCO + v * VL);
#define FC_ZI(j) FC_ZI1(j, 0) FC_ZI1(j, 1) FC_ZI1(j, 2) FC_ZI1(j, 3)
    FC_ZI(0) FC_ZI(1) FC_ZI(2) FC_ZI(3) FC_ZI(4) FC_ZI(5) FC_ZI(6)
#undef FC_ZI
#undef FC_ZI1
    for (k = 0; k < K; k++) {
        const int64_t o = off[k];
        const T *w_ = wp + k * FC_Z_NCO;
        /* the NV weight vectors of this tap, then one broadcast per pixel
         * feeding NV FMAs: 6 + NV loads per 6*NV FMAs (an FMA with an
         * embedded broadcast per vector would need 6*NV + NV loads, more
         * than two load ports feed to two 512-bit FMA ports) */
        const V w0 = V_LOADU(w_);
        const V w1 = nv > 1 ? V_LOADU(w_ + VL) : w0;
        const V w2 = nv > 2 ? V_LOADU(w_ + 2 * VL) : w0;
        const V w3 = nv > 3 ? V_LOADU(w_ + 3 * VL) : w0;
#define FC_ZS1(j)                                                                        \
        if (np > j) {                                                                    \
            const V b = V_BCAST(x##j + o);                                               \
            a##j##0 = V_FMA(w0, b, a##j##0);                                             \
            if (nv > 1) a##j##1 = V_FMA(w1, b, a##j##1);                                 \
            if (nv > 2) a##j##2 = V_FMA(w2, b, a##j##2);                                 \
            if (nv > 3) a##j##3 = V_FMA(w3, b, a##j##3);                                 \
        }
        FC_ZS1(0) FC_ZS1(1) FC_ZS1(2) FC_ZS1(3) FC_ZS1(4) FC_ZS1(5) FC_ZS1(6)
#undef FC_ZS1
    }
#define FC_ZW1(j, v) if (np > j && nv > v) V_STOREU(acc + j * FC_Z_NCO + v * VL, a##j##v);
#define FC_ZW(j) FC_ZW1(j, 0) FC_ZW1(j, 1) FC_ZW1(j, 2) FC_ZW1(j, 3)
    FC_ZW(0) FC_ZW(1) FC_ZW(2) FC_ZW(3) FC_ZW(4) FC_ZW(5) FC_ZW(6)
#undef FC_ZW
#undef FC_ZW1
}

#define FC_Z_CALL(NP, NV) SFX(z_tile)(NP, NV, xp, off, K, wp, acc, init)
#define FC_Z_NVS(NP)                                                                     \
    do {                                                                                 \
        switch (nv) {                                                                    \
        case 4: FC_Z_CALL(NP, 4); break;                                                 \
        case 3: FC_Z_CALL(NP, 3); break;                                                 \
        case 2: FC_Z_CALL(NP, 2); break;                                                 \
        default: FC_Z_CALL(NP, 1); break;                                                \
        }                                                                                \
    } while (0)
static FC_NOINLINE void SFX(z_tile_dispatch)(int np, int nv, const T *const *xp, const int64_t *off,
                                            int64_t K, const T *wp, T *acc, const T *init) {
    switch (np) {
#if FC_Z_NP >= 7
    case 7: FC_Z_NVS(7); break;
#endif
    case 6: FC_Z_NVS(6); break;
    case 5: FC_Z_NVS(5); break;
    case 4: FC_Z_NVS(4); break;
    case 3: FC_Z_NVS(3); break;
    case 2: FC_Z_NVS(2); break;
    default: FC_Z_NVS(1); break;
    }
}
#undef FC_Z_NVS
#undef FC_Z_CALL

/* acc[P][NCO] (first nco lanes valid) -> y: channel c's P pixels at y + c*po.
 * Whole TRxTR blocks through register transposes, the rest element-wise.
 * Pixels go in blocks of FC_Z_SPB, and within a block TR channels at a
 * time sweep it: each output line is filled by consecutive stores, while
 * the block's acc rows stay in L1 for the next TR channels.  (Sweeping all
 * NCO channels per TR pixels wrote 64 rows at once; when the plane size is
 * a multiple of 4 KB their lines share one L1 set and were evicted
 * half-written: the 3->64 3x3 layer at 224x224 ran at 60 GFLOP/s, 74 with
 * channel sweeps.) */
#define FC_Z_SPB 64
static void SFX(z_store)(const T *acc, int64_t P, int nco, T *y, int64_t po) {
    const int64_t pf = P / TR * TR;
    const int full = nco / TR * TR;
    int64_t p0, p;
    int c, cb;
    for (p0 = 0; p0 < pf; p0 += FC_Z_SPB) {
        const int64_t p1 = FC_MIN(pf, p0 + FC_Z_SPB);
        for (cb = 0; cb < full; cb += TR)
            for (p = p0; p < p1; p += TR)
                SFX(z_tr)(acc + p * FC_Z_NCO + cb, FC_Z_NCO, y + cb * po + p, po);
    }
    for (c = 0; c < nco; c++) {
        T *yc = y + c * po;
        int64_t q;
        for (q = (c < full ? pf : 0); q < P; q++) yc[q] = acc[q * FC_Z_NCO + c];
    }
}

/* Pack K consecutive weights of nco channels (channel c's at src + c*ss)
 * as wp[K][NCO], zero lanes past nco. */
static void SFX(z_pack)(T *wp, const T *src, int64_t ss, int nco, int64_t K) {
    /* TR channel rows at a time, each read through all K taps: the nco
     * rows are a stride apart that is often a multiple of 2-4 KB, so they
     * share few L1 sets; TR rows' lines fit the ways of a set and form TR
     * sequential streams the hardware prefetcher follows, where sweeping
     * all nco rows per few taps evicted half-read lines (Zen 4, 8-way L1,
     * against that order: 512-ch 3x3 at 7x7 +9%, 1x1 2048-512 at 7x7 +27%) */
    const int64_t kf = K / TR * TR;
    int64_t t;
    int c, cb;
    const int full = nco / TR * TR;
    for (cb = 0; cb < full; cb += TR)
        for (t = 0; t < kf; t += TR)
            SFX(z_tr)(src + cb * ss + t, ss, wp + t * FC_Z_NCO + cb, FC_Z_NCO);
    for (c = 0; c < FC_Z_NCO; c++) {
        int64_t q;
        if (c < full)
            for (q = kf; q < K; q++) wp[q * FC_Z_NCO + c] = src[c * ss + q];
        else if (c < nco)
            for (q = 0; q < K; q++) wp[q * FC_Z_NCO + c] = src[c * ss + q];
        else
            for (q = 0; q < K; q++) wp[q * FC_Z_NCO + c] = 0;
    }
}

/* This tile's chunking limits (conv_direct_ocv_plan.h); fewer than VL
 * output channels per group would leave most lanes idle (the AVX2 kernels
 * serve those). */
static const fc_ocv_limits SFX(z_limits) = {VL, FC_Z_PMAX, FC_Z_KMAX, FC_Z_XMAX, FC_Z_K1, 1, FC_Z_IMGS};

/* Copy input rows [ih_s, ih_s + rows_b) x cols [-pad_w, -pad_w + wb) of cib
 * channels, zero-padded, into xb (plane stride plane_b); band > 0: block
 * row i is input row ih_s + (i / band) * dil_h + i % band (the kh bands the
 * tap rows read). */
static void SFX(z_copy)(T *xb, const T *ximg, const fc_conv_shape *s, int64_t cib,
                        int64_t ih_s, int64_t rows_b, int64_t band, int64_t wb, int64_t plane_b) {
    const int64_t c_lo = FC_MIN(wb, FC_MAX(0, s->pad_w));
    const int64_t c_hi = FC_MAX(c_lo, FC_MIN(wb, s->w_in + s->pad_w));
    const int64_t hb = band ? band : rows_b, skip = band ? s->dil_h - band : 0;
    int64_t ci, i, q;
    for (ci = 0; ci < cib; ci++) {
        const T *xp = ximg + ci * s->h_in * s->w_in - s->pad_w;
        int64_t ih = ih_s;
        for (i = 0; i < rows_b; i++, ih++) {
            T *dst = xb + ci * plane_b + i * wb;
            if (i && i % hb == 0) ih += skip;      /* next band */
            if (ih < 0 || ih >= s->h_in) {
                for (q = 0; q < wb; q += VL) V_MASKSTOREU(dst + q, V_TAILMASK(wb - q), V_ZERO());
                continue;
            }
            for (q = 0; q < c_lo; q += VL) V_MASKSTOREU(dst + q, V_TAILMASK(c_lo - q), V_ZERO());
            /* full vectors unmasked (masked stores are slow on AMD), then the tail */
            for (q = c_lo; q + VL <= c_hi; q += VL) V_STOREU(dst + q, V_LOADU(xp + ih * s->w_in + q));
            if (q < c_hi) {
                const MASKT m = V_TAILMASK(c_hi - q);
                V_MASKSTOREU(dst + q, m, V_MASKLOADU(m, xp + ih * s->w_in + q));
            }
            for (q = c_hi; q < wb; q += VL) V_MASKSTOREU(dst + q, V_TAILMASK(wb - q), V_ZERO());
        }
    }
}

/* Serves groups with >= VL output channels each, w_out <= FC_Z_PMAX, at
 * most FC_Z_KMAX taps; else FC_NOT_HANDLED. */
static fc_status SFX(z_ocv)(fc_context *ctx, const fc_conv_shape *s, const T *x, const T *w,
                            const T *bias, T *y) {
    const int64_t khkw = s->kh * s->kw, cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t ncob = (cog + FC_Z_NCO - 1) / FC_Z_NCO;
    fc_ocv_plan pl;
    int64_t ntask, t64;
    int nthr;
    if (!fc_ocv_make_plan(s, &SFX(z_limits), &pl)) return FC_NOT_HANDLED;
    FC_MUL(s->groups, ncob, &t64);
    fc_ocv_batch_images(s, &SFX(z_limits), ctx->num_threads, t64, &pl);
    FC_MUL(t64, pl.nic, &t64);         /* tasks per row chunk */
    fc_ocv_balance(s, &SFX(z_limits), ctx->num_threads, t64, &pl);
    FC_MUL(t64, pl.nrc, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(64) T wp[FC_Z_KMAX * FC_Z_NCO];
        FC_ALIGNED(64) T acc[FC_Z_PMAX * FC_Z_NCO];
        FC_ALIGNED(64) T xb[FC_Z_XMAX + VL];
        FC_ALIGNED(64) T binit[FC_Z_NCO];
        int64_t off[FC_Z_KMAX];
        int64_t pbase[FC_Z_PMAX];
        int64_t task;
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            int64_t rest = task;
            const int64_t cob = rest % ncob; rest /= ncob;
            const int64_t rc = rest % pl.nrc; rest /= pl.nrc;
            const int64_t g = rest % s->groups; rest /= s->groups;
            const int64_t n0 = rest * pl.imgs, nimg = FC_MIN(pl.imgs, s->n - n0);
            const int64_t co0 = cob * FC_Z_NCO;
            const int nco = (int)FC_MIN(FC_Z_NCO, cog - co0);
            const int nv = (nco + VL - 1) / VL;
            const int64_t co_abs = g * cog + co0;
            const int64_t r0 = rc * pl.rows_per, r1 = FC_MIN(s->h_out, r0 + pl.rows_per);
            const int64_t PP = (r1 - r0) * s->w_out, P = nimg * PP;   /* pixels per image, in all */
            const int64_t ih_s = r0 * s->stride_h - s->pad_h;  /* first input row of the block */
            const int64_t band = pl.copy ? fc_ocv_band(s, &SFX(z_limits), r1 - r0) : 0;
            const int64_t rows_b = fc_ocv_band_rows(s, band, r1 - r0);
            const int64_t tap_rows = band ? band : s->dil_h;   /* block rows between kernel rows */
            const int64_t wb = pl.copy ? pl.wb : s->w_in;
            const int64_t plane_b = pl.copy ? rows_b * wb : s->h_in * s->w_in;
            /* image i of the chunk: x at ximg + i*xis, its block at xb + i*xbs */
            const int64_t xis = s->c_in * s->h_in * s->w_in, xbs = pl.cib * plane_b;
            const T *ximg = x + (n0 * s->c_in + g * cig) * s->h_in * s->w_in;
            int64_t p, kb, c, im;
            for (c = 0; c < FC_Z_NCO; c++)
                binit[c] = (bias && c < nco) ? bias[co_abs + c] : (T)0;
            fc_ocv_pixel_bases(s, pl.copy, r0, PP, P, wb, xis, xbs, pbase);
            for (kb = 0; kb < pl.ncib; kb++) {
                const int64_t ci0 = kb * pl.cib, cib = FC_MIN(pl.cib, cig - ci0);
                const int64_t K = cib * khkw;
                const T *xsrc;
                int64_t ci;
                int np;
                if (cib <= 0) break;
                /* pack weights [ci][kh][kw][NCO] */
                SFX(z_pack)(wp, w + (co_abs * cig + ci0) * khkw, cig * khkw, nco, K);
                if (pl.copy) {
                    for (im = 0; im < nimg; im++)
                        SFX(z_copy)(xb + im * xbs, ximg + im * xis + ci0 * s->h_in * s->w_in, s, cib, ih_s,
                                    rows_b, band, wb, plane_b);
                    xsrc = xb;
                } else {
                    xsrc = ximg + ci0 * plane_b;
                }
                for (ci = 0; ci < cib; ci++) {
                    int64_t i, j;
                    for (i = 0; i < s->kh; i++)
                        for (j = 0; j < s->kw; j++)
                            off[(ci * s->kh + i) * s->kw + j] =
                                ci * plane_b + i * tap_rows * wb + j * s->dil_w;
                }
                /* the next block's weights (nco rows, strided: the hardware
                 * prefetcher follows them poorly) are prefetched a few lines
                 * per tile while this block computes */
                const int64_t ntile = (P + FC_Z_NP - 1) / FC_Z_NP;
                /* (after the last block: the next co-block's first block,
                 * which the same thread most likely packs next) */
                const int last = kb + 1 >= pl.ncib;
                const int64_t nco_next = last ? FC_MIN(FC_Z_NCO, cog - co0 - FC_Z_NCO) : nco;
                const int64_t nci_next = !last ? FC_MIN(pl.cib, cig - ci0 - cib) : nco_next > 0 ? FC_MIN(pl.cib, cig) : 0;
                const int64_t lines = (nci_next * khkw * (int64_t)sizeof(T) + 63) / 64;
                const int64_t lpt = (lines + ntile - 1) / ntile;
                const char *wnext = (const char *)(w + (last ? (co_abs + FC_Z_NCO) * cig : co_abs * cig + ci0 + cib) * khkw);
                const int64_t wrow = cig * khkw * (int64_t)sizeof(T);
                /* likewise the next block's input rows (padded copy only:
                 * each channel's rows are one contiguous range of x) */
                const int64_t ih_lo = FC_MAX(0, ih_s), ih_hi = FC_MIN(s->h_in, ih_s + fc_ocv_rows_in(s, r1 - r0));
                const int64_t xci_next = !pl.copy || ih_hi <= ih_lo ? 0 : !last ? nci_next : nco_next > 0 ? FC_MIN(pl.cib, cig) : 0;
                const int64_t xlc = ((ih_hi - ih_lo) * s->w_in * (int64_t)sizeof(T) + 63) / 64 + 1;
                const int64_t xlines = nimg * xci_next * xlc, xpt = (xlines + ntile - 1) / ntile;
                const char *xnext = (const char *)(ximg + ((last ? 0 : ci0 + cib) * s->h_in + ih_lo) * s->w_in);
                const int64_t xplane = s->h_in * s->w_in * (int64_t)sizeof(T), ximg_b = xis * (int64_t)sizeof(T);
                int64_t tile = 0;
                for (p = 0; p < P; p += np, tile++) {
                    /* tiles of NP pixels; the chunk's end split into
                     * near-equal tiles (no 1-2 pixel tail when avoidable) */
                    const int64_t rem = P - p, ntl = (rem + FC_Z_NP - 1) / FC_Z_NP;
                    const T *xp[FC_Z_NP];
                    int j;
                    np = (int)((rem + ntl - 1) / ntl);
                    if (lines > 0) {
                        const int64_t l0 = tile * lpt, l1 = FC_MIN(lines, l0 + lpt);
                        int64_t l;
                        for (c = 0; c < nco_next; c++)
                            for (l = l0; l < l1; l++)
                                _mm_prefetch(wnext + c * wrow + 64 * l, _MM_HINT_T1);
                    }
                    if (xlines > 0) {
                        const int64_t l0 = tile * xpt, l1 = FC_MIN(xlines, l0 + xpt);
                        /* line l0 -> (image, channel, line): divisions once per tile, not per line */
                        int64_t l, lc = l0 % xlc, ch = (l0 / xlc) % xci_next, ii = l0 / (xlc * xci_next);
                        const char *pc = xnext + ii * ximg_b + ch * xplane;
                        for (l = l0; l < l1; l++) {
                            _mm_prefetch(pc + 64 * lc, _MM_HINT_T1);
                            if (++lc == xlc) {
                                lc = 0;
                                pc += xplane;
                                if (++ch == xci_next) { ch = 0; pc = xnext + ++ii * ximg_b; }
                            }
                        }
                    }
                    for (j = 0; j < np; j++) xp[j] = xsrc + pbase[p + j];
                    SFX(z_tile_dispatch)(np, nv, xp, off, K, wp, acc + p * FC_Z_NCO,
                                         kb == 0 ? binit : NULL);
                }
            }
            for (im = 0; im < nimg; im++)
                SFX(z_store)(acc + im * PP * FC_Z_NCO, PP, nco,
                             y + ((n0 + im) * s->c_out + co_abs) * s->h_out * s->w_out + r0 * s->w_out,
                             s->h_out * s->w_out);
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
