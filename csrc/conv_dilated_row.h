/* Row kernels of the dilated algorithm (AVX2+FMA, conv_dilated_row_avx2.c):
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

#define FC_DRK_MR 4        /* output rows (channels) per tile */
#define FC_DRK_NC 3        /* grad weight: input channels per tile (x 4 output channels) */
#define FC_DRK_MAXKW 64    /* widest kernel served (segments live on the stack) */

/* 1 when the row kernels serve this convolution on this context; *elems is
 * then the workspace (elements of elem_size bytes) of `pass` (0 forward,
 * 1 grad input, 2 grad weight):
 *   forward     packed weights, groups * ceil(cog/4)*4 * kw * cig
 *   grad input  packed weights, groups * ceil(cig/4)*4 * kw * cog
 *   grad weight vector accumulators, groups * ceil(cog/4) * kw * ceil(cig/3) * 12 * VL
 * (VL = 32 / elem_size lanes).  Mirrored by fastconv/_workspace.py. */
static inline int fc_drk_plan(const fc_context *ctx, const fc_conv_shape *s, int elem_size,
                              int pass, int64_t *elems) {
#ifdef FC_WITH_AVX2
    const int64_t cig = s->c_in / s->groups, cog = s->c_out / s->groups;
    const int64_t vl = 32 / elem_size;
    int64_t t;
    *elems = 0;
    if (ctx->isa < FC_ISA_AVX2) return 0;
    if (s->h_in != 1 || s->h_out != 1 || s->kh != 1 || s->pad_h != 0 || s->stride_w != 1) return 0;
    if (cig < 8 || cog < 8 || s->kw > FC_DRK_MAXKW) return 0;
    if (pass == 0 || pass == 1) {
        const int64_t nout = pass == 0 ? cog : cig, nin = pass == 0 ? cig : cog;
        const int64_t rows = (nout + FC_DRK_MR - 1) / FC_DRK_MR * FC_DRK_MR;
        if (fc_checked_mul(s->groups, rows, &t) || fc_checked_mul(t, s->kw, &t) ||
            fc_checked_mul(t, nin, &t))
            return 0;
    } else {
        const int64_t nob = (cog + FC_DRK_MR - 1) / FC_DRK_MR, ncb = (cig + FC_DRK_NC - 1) / FC_DRK_NC;
        if (fc_checked_mul(s->groups, nob, &t) || fc_checked_mul(t, s->kw, &t) ||
            fc_checked_mul(t, ncb, &t) || fc_checked_mul(t, FC_DRK_MR * FC_DRK_NC * vl, &t))
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
#define FC_DECLARE_DRK(T, SFX)                                                                 \
    fc_status fc_dil_row_forward_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,        \
                                               const T *x, const T *w, const T *bias, T *y);   \
    fc_status fc_dil_row_grad_input_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,     \
                                                  const T *gy, const T *w, T *gx);             \
    fc_status fc_dil_row_grad_weight_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,    \
                                                   const T *gy, const T *x, T *gw);
FC_DECLARE_DRK(float, f32)
FC_DECLARE_DRK(double, f64)
#undef FC_DECLARE_DRK
#endif

#endif /* FC_CONV_DILATED_ROW_H */
