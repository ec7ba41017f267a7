/* Row kernels of the dilated algorithm (AVX2+FMA / AVX-512, conv_dilated_row_avx2.c /
 * conv_dilated_row_avx512.c):
 * one-row convolutions (WaveNet-like layers run as H = 1: h_in = 1, kh = 1,
 * no row padding, unit column stride) computed straight from x / grad_out,
 * with no copies.
 *
 * They are the space-to-batch decomposition computed in place: along the
 * row, the outputs j = r + d*q of class r form a dense convolution over the
 * sub-sequence x[r + d*m]; a vector of consecutive outputs holds VL
 * classes side by side, and tap b of all of them is one vector load at
 * offset b*d.  Taps that land on padding are skipped: the row is cut into
 * at most 2*kw + 1 segments with a constant (contiguous) range of valid
 * taps.
 *
 * Shared by conv_dilated.c (which decides, and reports the workspace) and
 * the kernels (which allocate it), so the two agree by construction. */
#ifndef FC_CONV_DILATED_ROW_H
#define FC_CONV_DILATED_ROW_H

#include "fc_internal.h"

/* Tile geometry per ISA (the kernels compile these in; the plan below
 * sizes their workspace from the same numbers):
 *   MR        forward / grad input: output rows per tile (x 3 vectors of columns)
 *   GMR, GNC  grad weight: output x input channels per tile
 * AVX2 (16 ymm): 4 x 3 and 4 x 3 (12 accumulators).  AVX-512 (32 zmm):
 * 8 x 3 (24 accumulators, 3 + 8 loads per 24 FMAs) and 4 x 6 (4 + 6 per
 * 24): on a core with two 512-bit FMA units the loads must stay well under
 * one per FMA. */
#define FC_DRK_MR_AVX2 4
#define FC_DRK_GMR_AVX2 4
#define FC_DRK_GNC_AVX2 3
#define FC_DRK_MR_AVX512 8
#define FC_DRK_GMR_AVX512 4
#define FC_DRK_GNC_AVX512 6
#define FC_DRK_MAXKW 64    /* widest kernel served (segments live on the stack) */

/* 1 when the AVX-512 row kernels run on this context. */
static inline int fc_drk_avx512(const fc_context *ctx) {
#ifdef FC_WITH_AVX512
    return ctx->isa == FC_ISA_AVX512;
#else
    (void)ctx;
    return 0;
#endif
}

/* 1 when the row kernels serve this convolution on this context; *elems is
 * then the workspace (elements of elem_size bytes) of `pass` (0 forward,
 * 1 grad input, 2 grad weight), with the ISA's geometry (above) and
 * VL = vector bytes / elem_size lanes:
 *   forward     packed weights, groups * ceil(cog/MR)*MR * kw * cig
 *   grad input  packed weights, groups * ceil(cig/MR)*MR * kw * cog
 *   grad weight vector accumulators,
 *               groups * ceil(cog/GMR) * kw * ceil(cig/GNC) * GMR*GNC * VL
 * Mirrored by fastconv/_workspace.py. */
static inline int fc_drk_plan(const fc_context *ctx, const fc_conv_shape *s, int elem_size,
                              int pass, int64_t *elems) {
#ifdef FC_WITH_AVX2
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int z = fc_drk_avx512(ctx);
    const int64_t vl = (z ? 64 : 32) / elem_size;
    const int64_t mr = z ? FC_DRK_MR_AVX512 : FC_DRK_MR_AVX2;
    const int64_t gmr = z ? FC_DRK_GMR_AVX512 : FC_DRK_GMR_AVX2;
    const int64_t gnc = z ? FC_DRK_GNC_AVX512 : FC_DRK_GNC_AVX2;
    int64_t t;
    *elems = 0;
    if (ctx->isa < FC_ISA_AVX2) return 0;
    if (s->h_in != 1 || s->h_out != 1 || s->kh != 1 || s->pad_h != 0 || s->stride_w != 1) return 0;
    if (cig < 8 || cog < 8 || s->kw > FC_DRK_MAXKW) return 0;
    if (pass == 0 || pass == 1) {
        const int64_t nout = pass == 0 ? cog : cig, nin = pass == 0 ? cig : cog;
        const int64_t rows = (nout + mr - 1) / mr * mr;
        if (fc_checked_mul(s->groups, rows, &t) || fc_checked_mul(t, s->kw, &t) ||
            fc_checked_mul(t, nin, &t))
            return 0;
    } else {
        const int64_t nob = (cog + gmr - 1) / gmr, ncb = (cig + gnc - 1) / gnc;
        if (fc_checked_mul(s->groups, nob, &t) || fc_checked_mul(t, s->kw, &t) ||
            fc_checked_mul(t, ncb, &t) || fc_checked_mul(t, gmr * gnc * vl, &t))
            return 0;
    }
    if (fc_checked_mul(t, elem_size, elems)) return 0;
    *elems = t;
    return 1;
#else
    (void)ctx; (void)s; (void)elem_size; (void)pass;
    *elems = 0;
    return 0;
#endif
}

#ifdef FC_WITH_AVX2
/* Entry points fc_dil_row_{forward,grad_input,grad_weight}_{f32,f64}__{avx2,avx512}
 * (conv_dilated_row_avx2.c / _avx512.c; the AVX-512 ones exist only with
 * FC_WITH_AVX512 and are called only when fc_drk_avx512). */
#define FC_DECLARE_DRK(T, SFX, ISA)                                                            \
    fc_status fc_dil_row_forward_##SFX##__##ISA(fc_context *ctx, const fc_conv_shape *s,       \
                                                const T *x, const T *w, const T *bias, T *y);  \
    fc_status fc_dil_row_grad_input_##SFX##__##ISA(fc_context *ctx, const fc_conv_shape *s,    \
                                                   const T *gy, const T *w, T *gx);            \
    fc_status fc_dil_row_grad_weight_##SFX##__##ISA(fc_context *ctx, const fc_conv_shape *s,   \
                                                    const T *gy, const T *x, T *gw);
#define FC_DECLARE_DRK_ISA(T, SFX)                                                             \
    FC_DECLARE_DRK(T, SFX, avx2)                                                               \
    FC_DECLARE_DRK(T, SFX, avx512)
FC_DECLARE_DRK_ISA(float, f32)
FC_DECLARE_DRK_ISA(double, f64)
#undef FC_DECLARE_DRK_ISA
#undef FC_DECLARE_DRK
#endif

#endif /* FC_CONV_DILATED_ROW_H */
