/* Pooling entry points (stub, filled in by the pooling kernels). */
#include "fc_internal.h"
#define STUB(name, ...) fc_status name(__VA_ARGS__) { return FC_ERR_UNSUPPORTED; }
STUB(fc_max_pool2d_f32, fc_context *ctx, const fc_pool_shape *s, const float *x, float *y, int64_t *indices)
STUB(fc_max_pool2d_f64, fc_context *ctx, const fc_pool_shape *s, const double *x, double *y, int64_t *indices)
STUB(fc_max_pool2d_backward_f32, fc_context *ctx, const fc_pool_shape *s, const float *gy, const int64_t *indices, const float *x, float *gx)
STUB(fc_max_pool2d_backward_f64, fc_context *ctx, const fc_pool_shape *s, const double *gy, const int64_t *indices, const double *x, double *gx)
STUB(fc_avg_pool2d_f32, fc_context *ctx, const fc_pool_shape *s, const float *x, float *y)
STUB(fc_avg_pool2d_f64, fc_context *ctx, const fc_pool_shape *s, const double *x, double *y)
STUB(fc_avg_pool2d_backward_f32, fc_context *ctx, const fc_pool_shape *s, const float *gy, float *gx)
STUB(fc_avg_pool2d_backward_f64, fc_context *ctx, const fc_pool_shape *s, const double *gy, double *gx)
