/* Convolution entry points: dispatch by algorithm and ISA (stub, filled in by the conv kernels).
 * Minimal interim routing of FC_ALGO_IM2COL added by the im2col branch. */
#include "fc_internal.h"
#define STUB(name, ...) fc_status name(__VA_ARGS__) { return FC_ERR_UNSUPPORTED; }
fc_status fc_conv2d_f32(fc_context *ctx, const fc_conv_shape *s, int algo, const float *x, const float *w, const float *bias, float *y) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_im2col_f32(ctx, s, x, w, bias, y) : FC_ERR_UNSUPPORTED;
}
fc_status fc_conv2d_f64(fc_context *ctx, const fc_conv_shape *s, int algo, const double *x, const double *w, const double *bias, double *y) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_im2col_f64(ctx, s, x, w, bias, y) : FC_ERR_UNSUPPORTED;
}
fc_status fc_conv2d_grad_input_f32(fc_context *ctx, const fc_conv_shape *s, int algo, const float *gy, const float *w, float *gx) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_grad_input_im2col_f32(ctx, s, gy, w, gx) : FC_ERR_UNSUPPORTED;
}
fc_status fc_conv2d_grad_input_f64(fc_context *ctx, const fc_conv_shape *s, int algo, const double *gy, const double *w, double *gx) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_grad_input_im2col_f64(ctx, s, gy, w, gx) : FC_ERR_UNSUPPORTED;
}
fc_status fc_conv2d_grad_weight_f32(fc_context *ctx, const fc_conv_shape *s, int algo, const float *gy, const float *x, float *gw) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_grad_weight_im2col_f32(ctx, s, gy, x, gw) : FC_ERR_UNSUPPORTED;
}
fc_status fc_conv2d_grad_weight_f64(fc_context *ctx, const fc_conv_shape *s, int algo, const double *gy, const double *x, double *gw) {
    return algo == FC_ALGO_IM2COL ? fc_conv2d_grad_weight_im2col_f64(ctx, s, gy, x, gw) : FC_ERR_UNSUPPORTED;
}
STUB(fc_conv2d_grad_bias_f32, fc_context *ctx, const fc_conv_shape *s, const float *gy, float *gb)
STUB(fc_conv2d_grad_bias_f64, fc_context *ctx, const fc_conv_shape *s, const double *gy, double *gb)
STUB(fc_add_channel_bias_f32, fc_context *ctx, int64_t n, int64_t c, int64_t hw, const float *bias, float *y)
STUB(fc_add_channel_bias_f64, fc_context *ctx, int64_t n, int64_t c, int64_t hw, const double *bias, double *y)
fc_status fc_conv2d_workspace(const fc_context *ctx, const fc_conv_shape *s, int algo, int elem_size, int pass, int64_t *bytes) {
    if (algo == FC_ALGO_IM2COL) return fc_conv2d_im2col_workspace(ctx, s, elem_size, pass, bytes);
    *bytes = 0; return FC_OK;
}
