/* AVX2+FMA register-blocked direct convolution (placeholder: declines every
 * configuration so conv.c falls back to the baseline). */
#include "fc_internal.h"

fc_status fc_conv2d_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const float *x, const float *w, const float *bias, float *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}

fc_status fc_conv2d_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const double *x, const double *w, const double *bias, double *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}
