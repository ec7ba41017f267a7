/* Convolution entry points: validate, then dispatch by algorithm and ISA.
 *
 *   FC_ALGO_DIRECT   on the AVX-512 path (ctx->isa == FC_ISA_AVX512) forward
 *                    first tries the AVX-512 kernels (conv_direct_avx512.c),
 *                    and grad weight the AVX-512 kernel (conv_bwd_avx512.c),
 *                    then continues as on the AVX2 path.
 *                    On the AVX2 path (ctx->isa >= FC_ISA_AVX2): forward tries
 *                    the register-blocked AVX2 kernel, and when it declines, or
 *                    for the backward passes and bias, the portable kernels
 *                    compiled for AVX2 (conv_direct_generic_avx2.c); on the
 *                    baseline path the portable kernels (conv_direct.c).
 *   FC_ALGO_IM2COL   im2col + BLAS GEMM (conv_im2col.c).
 *   FC_ALGO_DILATED  space-to-batch decomposition (conv_dilated.c).
 *
 * An empty output is a successful no-op; sums over empty ranges (n == 0 for
 * grad weight / grad bias, c_in == 0 for forward) give zeros (plus bias).
 */
#include "conv_direct.h"
#include "conv_bwd.h"

static int64_t prod(int64_t a, int64_t b, int64_t c, int64_t d) {
    /* Only called after fc_conv_check, which proved these products fit. */
    return a * b * c * d;
}

static fc_status check_algo(int algo) {
    return (algo == FC_ALGO_DIRECT || algo == FC_ALGO_IM2COL || algo == FC_ALGO_DILATED)
               ? FC_OK : FC_ERR_ARG;
}

enum { OUT_Y, OUT_X, OUT_W, OUT_BIAS };

/* Common entry validation; *empty is set when the output (`which` buffer)
 * has no elements. */
static fc_status enter(const fc_context *ctx, const fc_conv_shape *s, int algo, int which,
                       const void *out, int *empty) {
    fc_status st;
    int64_t out_elems;
    if (!ctx || !s) return FC_ERR_ARG;
    if ((st = fc_conv_check(s)) != FC_OK) return st;
    if ((st = check_algo(algo)) != FC_OK) return st;
    switch (which) {
    case OUT_Y: out_elems = prod(s->n, s->c_out, s->h_out, s->w_out); break;
    case OUT_X: out_elems = prod(s->n, s->c_in, s->h_in, s->w_in); break;
    case OUT_W: out_elems = prod(s->c_out, s->c_in / s->groups, s->kh, s->kw); break;
    default: out_elems = s->c_out; break;
    }
    *empty = out_elems == 0;
    if (!*empty && !out) return FC_ERR_ARG;
    return FC_OK;
}

#define FC_DEFINE_DISPATCH(T, SFX)                                                                 \
fc_status fc_conv2d_##SFX(fc_context *ctx, const fc_conv_shape *s, int algo, const T *x,           \
                          const T *w, const T *bias, T *y) {                                      \
    int empty = 0;                                                                                 \
    fc_status st = enter(ctx, s, algo, OUT_Y, y, &empty); \
    if (st != FC_OK || empty) return st;                                                           \
    if (s->c_in > 0 && s->h_in > 0 && s->w_in > 0 && (!x || !w)) return FC_ERR_ARG;                \
    if ((s->c_in == 0 || s->h_in == 0 || s->w_in == 0) && algo != FC_ALGO_DILATED) { /* no input element (x may be NULL): y = bias */ \
        const int64_t hw = s->h_out * s->w_out;                                                    \
        int64_t i, c;                                                                              \
        for (i = 0; i < s->n; i++)                                                                 \
            for (c = 0; c < s->c_out; c++) {                                                       \
                T *yp = y + (i * s->c_out + c) * hw;                                               \
                const T v = bias ? bias[c] : (T)0;                                                 \
                int64_t k;                                                                         \
                for (k = 0; k < hw; k++) yp[k] = v;                                                \
            }                                                                                      \
        return FC_OK;                                                                              \
    }                                                                                              \
    switch (algo) {                                                                                \
    case FC_ALGO_DIRECT:                                                                           \
        if (FC_USE_AVX512(ctx)) {                                                                  \
            st = FC_AVX512_DIRECT_##SFX(ctx, s, x, w, bias, y);                                    \
            if (st != FC_NOT_HANDLED) return st;                                                   \
        }                                                                                          \
        if (FC_USE_AVX2(ctx)) {                                                                    \
            st = FC_AVX2_DIRECT_##SFX(ctx, s, x, w, bias, y);                                      \
            if (st != FC_NOT_HANDLED) return st;                                                   \
            return FC_GENERIC_AVX2(fc_conv2d_direct_, SFX)(ctx, s, x, w, bias, y);                 \
        }                                                                                          \
        return fc_conv2d_direct_##SFX(ctx, s, x, w, bias, y);                                      \
    case FC_ALGO_IM2COL:                                                                           \
        st = fc_conv2d_im2col_##SFX(ctx, s, x, w, bias, y); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    default: /* FC_ALGO_DILATED */ \
        st = fc_conv2d_dilated_##SFX(ctx, s, x, w, bias, y); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
fc_status fc_conv2d_grad_input_##SFX(fc_context *ctx, const fc_conv_shape *s, int algo,            \
                                     const T *gy, const T *w, T *gx) {                             \
    int empty = 0;                                                                                 \
    fc_status st = enter(ctx, s, algo, OUT_X, gx, &empty); \
    if (st != FC_OK || empty) return st;                                                           \
    if (s->c_out > 0 && s->h_out > 0 && s->w_out > 0 && (!gy || !w)) return FC_ERR_ARG;            \
    switch (algo) {                                                                                \
    case FC_ALGO_DIRECT:                                                                           \
        return fc_conv2d_grad_input_fwd_##SFX(ctx, s, gy, w, gx); /* forward kernels, conv_bwd.c */ \
    case FC_ALGO_IM2COL:                                                                           \
        st = fc_conv2d_grad_input_im2col_##SFX(ctx, s, gy, w, gx); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    default: /* FC_ALGO_DILATED */ \
        st = fc_conv2d_grad_input_dilated_##SFX(ctx, s, gy, w, gx); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
fc_status fc_conv2d_grad_weight_##SFX(fc_context *ctx, const fc_conv_shape *s, int algo,           \
                                      const T *gy, const T *x, T *gw) {                            \
    int empty = 0;                                                                                 \
    fc_status st = enter(ctx, s, algo, OUT_W, gw, &empty);                                                              \
    if (st != FC_OK || empty) return st;                                                           \
    if (s->n > 0 && s->h_out > 0 && s->w_out > 0 && !gy) return FC_ERR_ARG;                        \
    if (s->n > 0 && s->h_in > 0 && s->w_in > 0 && !x) return FC_ERR_ARG;                           \
    if ((s->h_in == 0 || s->w_in == 0) && algo != FC_ALGO_DILATED) { /* no input element: every product is with padding */     \
        memset(gw, 0, (size_t)(s->c_out * (s->c_in / s->groups) * s->kh * s->kw) * sizeof(T));     \
        return FC_OK;                                                                              \
    }                                                                                              \
    switch (algo) {                                                                                \
    case FC_ALGO_DIRECT:                                                                           \
        if (FC_USE_AVX512(ctx)) {                                                                  \
            st = FC_AVX512_GRAD_WEIGHT_##SFX(ctx, s, gy, x, gw);                                   \
            if (st != FC_NOT_HANDLED) return st;                                                   \
        }                                                                                          \
        if (FC_USE_AVX2(ctx)) {                                                                    \
            st = FC_AVX2_GRAD_WEIGHT_##SFX(ctx, s, gy, x, gw);                                     \
            if (st != FC_NOT_HANDLED) return st;                                                   \
            return FC_GENERIC_AVX2(fc_conv2d_grad_weight_direct_, SFX)(ctx, s, gy, x, gw);         \
        }                                                                                          \
        return fc_conv2d_grad_weight_direct_##SFX(ctx, s, gy, x, gw); \
    case FC_ALGO_IM2COL:                                                                           \
        st = fc_conv2d_grad_weight_im2col_##SFX(ctx, s, gy, x, gw); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    default: /* FC_ALGO_DILATED */ \
        st = fc_conv2d_grad_weight_dilated_##SFX(ctx, s, gy, x, gw); \
        return st == FC_NOT_HANDLED ? FC_ERR_UNSUPPORTED : st; \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
fc_status fc_conv2d_grad_bias_##SFX(fc_context *ctx, const fc_conv_shape *s, const T *gy, T *gb) { \
    int empty = 0;                                                                                 \
    fc_status st = enter(ctx, s, FC_ALGO_DIRECT, OUT_BIAS, gb, &empty);                    \
    if (st != FC_OK || empty) return st;                                                           \
    if (s->n > 0 && s->h_out > 0 && s->w_out > 0 && !gy) return FC_ERR_ARG;                        \
    if (FC_USE_AVX2(ctx)) return FC_GENERIC_AVX2(fc_conv2d_grad_bias_direct_, SFX)(ctx, s, gy, gb); \
    return fc_conv2d_grad_bias_direct_##SFX(ctx, s, gy, gb); \
}                                                                                                  \
                                                                                                   \
fc_status fc_add_channel_bias_##SFX(fc_context *ctx, int64_t n, int64_t c, int64_t hw,             \
                                    const T *bias, T *y) {                                         \
    int64_t total;                                                                                 \
    if (!ctx) return FC_ERR_ARG;                                                                   \
    if (n < 0 || c < 0 || hw < 0) return FC_ERR_SHAPE;                                             \
    if (fc_checked_mul(n, c, &total) || fc_checked_mul(total, hw, &total) ||                       \
        fc_checked_mul(total, (int64_t)sizeof(T), &total))                                         \
        return FC_ERR_OVERFLOW;                                                                    \
    if (total == 0) return FC_OK;                                                                  \
    if (!bias || !y) return FC_ERR_ARG;                                                            \
    if (FC_USE_AVX2(ctx)) return FC_GENERIC_AVX2(fc_add_channel_bias_direct_, SFX)(ctx, n, c, hw, bias, y); \
    return fc_add_channel_bias_direct_##SFX(ctx, n, c, hw, bias, y); \
}

#ifdef FC_WITH_AVX2
#define FC_USE_AVX2(ctx) ((ctx)->isa >= FC_ISA_AVX2)   /* AVX-512 implies AVX2 */
#define FC_AVX2_DIRECT_f32 fc_conv2d_direct_f32__avx2
#define FC_AVX2_DIRECT_f64 fc_conv2d_direct_f64__avx2
#define FC_AVX2_GRAD_WEIGHT_f32 fc_conv2d_grad_weight_direct_f32__avx2
#define FC_AVX2_GRAD_WEIGHT_f64 fc_conv2d_grad_weight_direct_f64__avx2
#define FC_GENERIC_AVX2(name, sfx) FC_GENERIC_AVX2_(name, sfx)
#define FC_GENERIC_AVX2_(name, sfx) name##sfx##__avx2_generic
#else
/* The AVX2 branches are dead code without the AVX2 files; these keep them
 * well-formed and route to the portable kernels. */
#define FC_USE_AVX2(ctx) 0
#define FC_AVX2_DIRECT_f32(ctx, s, x, w, b, y) FC_NOT_HANDLED
#define FC_AVX2_DIRECT_f64(ctx, s, x, w, b, y) FC_NOT_HANDLED
#define FC_AVX2_GRAD_WEIGHT_f32(ctx, s, gy, x, gw) FC_NOT_HANDLED
#define FC_AVX2_GRAD_WEIGHT_f64(ctx, s, gy, x, gw) FC_NOT_HANDLED
#define FC_GENERIC_AVX2(name, sfx) FC_GENERIC_AVX2_(name, sfx)
#define FC_GENERIC_AVX2_(name, sfx) name##sfx
#endif

#ifdef FC_WITH_AVX512
#define FC_USE_AVX512(ctx) ((ctx)->isa == FC_ISA_AVX512)
#define FC_AVX512_DIRECT_f32 fc_conv2d_direct_f32__avx512
#define FC_AVX512_DIRECT_f64 fc_conv2d_direct_f64__avx512
#define FC_AVX512_GRAD_WEIGHT_f32 fc_conv2d_grad_weight_direct_f32__avx512
#define FC_AVX512_GRAD_WEIGHT_f64 fc_conv2d_grad_weight_direct_f64__avx512
#else
#define FC_USE_AVX512(ctx) 0
#define FC_AVX512_DIRECT_f32(ctx, s, x, w, b, y) FC_NOT_HANDLED
#define FC_AVX512_DIRECT_f64(ctx, s, x, w, b, y) FC_NOT_HANDLED
#define FC_AVX512_GRAD_WEIGHT_f32(ctx, s, gy, x, gw) FC_NOT_HANDLED
#define FC_AVX512_GRAD_WEIGHT_f64(ctx, s, gy, x, gw) FC_NOT_HANDLED
#endif

FC_DEFINE_DISPATCH(float, f32)
FC_DEFINE_DISPATCH(double, f64)

fc_status fc_conv2d_workspace(const fc_context *ctx, const fc_conv_shape *s, int algo,
                              int elem_size, int pass, int64_t *bytes) {
    fc_status st;
    if (!ctx || !s || !bytes) return FC_ERR_ARG;
    *bytes = 0;
    if ((st = fc_conv_check(s)) != FC_OK) return st;
    if (elem_size != 4 && elem_size != 8) return FC_ERR_ARG;
    if (pass < 0 || pass > 2) return FC_ERR_ARG;
    switch (algo) {
    case FC_ALGO_DIRECT:  /* grad input: rearranged weights and gy windows (conv_bwd.c) */
        return pass == 1 ? fc_conv2d_grad_input_fwd_workspace(ctx, s, elem_size, bytes) : FC_OK;
    case FC_ALGO_IM2COL:
        return fc_conv2d_im2col_workspace(ctx, s, elem_size, pass, bytes);
    case FC_ALGO_DILATED:
        return fc_conv2d_dilated_workspace(ctx, s, elem_size, pass, bytes);
    default:
        return FC_ERR_ARG;
    }
}
