/* Portable direct convolution kernels (conv_direct.c), called by the
 * dispatch in conv.c.  The shape has been validated with fc_conv_check and
 * the output is non-empty; none allocates workspace.  Also the helpers the
 * kernel template (conv_direct_impl.h) shares between its instantiations. */
#ifndef FC_CONV_DIRECT_H
#define FC_CONV_DIRECT_H

#include "fc_internal.h"

/* Minimum multiply-adds per thread before another thread is worth waking. */
#define FC_DIRECT_GRAIN 32768

/* Output positions o in [0, out) whose tap o*stride + off lies in [0, in):
 * returns the half-open range [*lo, *hi) (empty when *lo == *hi).  off is
 * t*dil - pad for tap t; fc_conv_check guarantees no overflow. */
static inline void fc_tap_range(int64_t in, int64_t out, int64_t stride, int64_t off,
                                int64_t *lo, int64_t *hi) {
    int64_t a, b;
    if (stride == 1) {
        a = -off;
        b = in - off;
    } else {
        a = -fc_floordiv(off, stride);
        b = fc_floordiv(in - 1 - off, stride) + 1;
    }
    if (a < 0) a = 0;
    if (b > out) b = out;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* Threads for `items` independent items of `per_item` multiply-adds each:
 * no more than there are items, and no more than the total work justifies. */
static inline int fc_direct_threads(const fc_context *ctx, int64_t items, int64_t per_item) {
    int64_t total;
    if (per_item < 1) per_item = 1;
    if (fc_checked_mul(items, per_item, &total)) total = INT64_MAX;
    return fc_threads_for(ctx, FC_MIN(items, total / FC_DIRECT_GRAIN + 1));
}

/* a*b*c*d saturated at INT64_MAX (only used to size thread counts). */
static inline int64_t fc_sat_prod4(int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t t;
    if (fc_checked_mul(a, b, &t) || fc_checked_mul(t, c, &t) || fc_checked_mul(t, d, &t))
        return INT64_MAX;
    return t;
}

#define FC_DECLARE_DIRECT(T, SFX)                                                              \
    fc_status fc_conv2d_direct_##SFX(fc_context *ctx, const fc_conv_shape *s, const T *x,      \
                                     const T *w, const T *bias, T *y);                         \
    fc_status fc_conv2d_grad_input_direct_##SFX(fc_context *ctx, const fc_conv_shape *s,       \
                                                const T *gy, const T *w, T *gx);               \
    fc_status fc_conv2d_grad_weight_direct_##SFX(fc_context *ctx, const fc_conv_shape *s,      \
                                                 const T *gy, const T *x, T *gw);              \
    fc_status fc_conv2d_grad_bias_direct_##SFX(fc_context *ctx, const fc_conv_shape *s,        \
                                               const T *gy, T *gb);                            \
    fc_status fc_add_channel_bias_direct_##SFX(fc_context *ctx, int64_t n, int64_t c,          \
                                               int64_t hw, const T *bias, T *y);

FC_DECLARE_DIRECT(float, f32)
FC_DECLARE_DIRECT(double, f64)
/* The same portable code compiled with AVX2+FMA (conv_direct_generic_avx2.c):
 * the backward passes and the forward fallback on the AVX2 path. */
FC_DECLARE_DIRECT(float, f32__avx2_generic)
FC_DECLARE_DIRECT(double, f64__avx2_generic)

#endif /* FC_CONV_DIRECT_H */
