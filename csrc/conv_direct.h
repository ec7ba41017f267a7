/* Portable direct convolution kernels (conv_direct.c), called by the
 * dispatch in conv.c.  The shape has been validated with fc_conv_check and
 * the output is non-empty; none allocates workspace. */
#ifndef FC_CONV_DIRECT_H
#define FC_CONV_DIRECT_H

#include "fc_internal.h"

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

#endif /* FC_CONV_DIRECT_H */
