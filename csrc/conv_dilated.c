/* Dilated convolution by space-to-batch (placeholder: unsupported until implemented). */
#include "fc_internal.h"
#define UNSUPPORTED(name, ...) fc_status name(__VA_ARGS__) { return FC_ERR_UNSUPPORTED; }
UNSUPPORTED(fc_conv2d_dilated_f32, fc_context *ctx, const fc_conv_shape *s, const float *x, const float *w, const float *bias, float *y)
UNSUPPORTED(fc_conv2d_dilated_f64, fc_context *ctx, const fc_conv_shape *s, const double *x, const double *w, const double *bias, double *y)
UNSUPPORTED(fc_conv2d_grad_input_dilated_f32, fc_context *ctx, const fc_conv_shape *s, const float *gy, const float *w, float *gx)
UNSUPPORTED(fc_conv2d_grad_input_dilated_f64, fc_context *ctx, const fc_conv_shape *s, const double *gy, const double *w, double *gx)
UNSUPPORTED(fc_conv2d_grad_weight_dilated_f32, fc_context *ctx, const fc_conv_shape *s, const float *gy, const float *x, float *gw)
UNSUPPORTED(fc_conv2d_grad_weight_dilated_f64, fc_context *ctx, const fc_conv_shape *s, const double *gy, const double *x, double *gw)
fc_status fc_conv2d_dilated_workspace(const fc_context *ctx, const fc_conv_shape *s, int elem_size, int pass, int64_t *bytes) {
    (void)ctx; (void)s; (void)elem_size; (void)pass; *bytes = 0; return FC_ERR_UNSUPPORTED;
}
