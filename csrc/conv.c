/* Convolution entry points: dispatch by algorithm and ISA (stub, filled in by the conv kernels). */
#include "fc_internal.h"
#define STUB(name, ...) fc_status name(__VA_ARGS__) { return FC_ERR_UNSUPPORTED; }
STUB(fc_conv2d_f32, fc_context *ctx, const fc_conv_shape *s, int algo, const float *x, const float *w, const float *bias, float *y)
STUB(fc_conv2d_f64, fc_context *ctx, const fc_conv_shape *s, int algo, const double *x, const double *w, const double *bias, double *y)
STUB(fc_conv2d_grad_input_f32, fc_context *ctx, const fc_conv_shape *s, int algo, const float *gy, const float *w, float *gx)
STUB(fc_conv2d_grad_input_f64, fc_context *ctx, const fc_conv_shape *s, int algo, const double *gy, const double *w, double *gx)
STUB(fc_conv2d_grad_weight_f32, fc_context *ctx, const fc_conv_shape *s, int algo, const float *gy, const float *x, float *gw)
STUB(fc_conv2d_grad_weight_f64, fc_context *ctx, const fc_conv_shape *s, int algo, const double *gy, const double *x, double *gw)
STUB(fc_conv2d_grad_bias_f32, fc_context *ctx, const fc_conv_shape *s, const float *gy, float *gb)
STUB(fc_conv2d_grad_bias_f64, fc_context *ctx, const fc_conv_shape *s, const double *gy, double *gb)
STUB(fc_add_channel_bias_f32, fc_context *ctx, int64_t n, int64_t c, int64_t hw, const float *bias, float *y)
STUB(fc_add_channel_bias_f64, fc_context *ctx, int64_t n, int64_t c, int64_t hw, const double *bias, double *y)
fc_status fc_conv2d_workspace(const fc_context *ctx, const fc_conv_shape *s, int algo, int elem_size, int pass, int64_t *bytes) { *bytes = 0; return FC_OK; }
