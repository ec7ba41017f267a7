/* AVX2 pooling fast paths (placeholder: declines every configuration). */
#include "fc_internal.h"
#include "pool_kernels.h"

fc_status fc_max_pool2d_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y,
                                  int64_t *indices) { (void)ctx; (void)s; (void)x; (void)y; (void)indices; return FC_NOT_HANDLED; }
fc_status fc_max_pool2d_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y,
                                  int64_t *indices) { (void)ctx; (void)s; (void)x; (void)y; (void)indices; return FC_NOT_HANDLED; }
fc_status fc_max_pool2d_backward_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                           const int64_t *indices, const float *x, float *gx) { (void)ctx; (void)s; (void)gy; (void)indices; (void)x; (void)gx; return FC_NOT_HANDLED; }
fc_status fc_max_pool2d_backward_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                           const int64_t *indices, const double *x, double *gx) { (void)ctx; (void)s; (void)gy; (void)indices; (void)x; (void)gx; return FC_NOT_HANDLED; }
fc_status fc_avg_pool2d_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y) { (void)ctx; (void)s; (void)x; (void)y; return FC_NOT_HANDLED; }
fc_status fc_avg_pool2d_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y) { (void)ctx; (void)s; (void)x; (void)y; return FC_NOT_HANDLED; }
fc_status fc_avg_pool2d_backward_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                           float *gx) { (void)ctx; (void)s; (void)gy; (void)gx; return FC_NOT_HANDLED; }
fc_status fc_avg_pool2d_backward_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                           double *gx) { (void)ctx; (void)s; (void)gy; (void)gx; return FC_NOT_HANDLED; }
