/* AVX2 pooling fast paths (pool_avx2.c).  Each takes a whole call (all
 * planes, its own OpenMP loop) and returns FC_NOT_HANDLED for
 * configurations it does not specialise, so the caller falls back to the
 * generic kernels.  Arguments are already checked by the entry point. */
#ifndef FC_POOL_KERNELS_H
#define FC_POOL_KERNELS_H
#include "fastconv.h"

#ifdef FC_WITH_AVX2
fc_status fc_max_pool2d_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y,
                                  int64_t *indices);
fc_status fc_max_pool2d_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y,
                                  int64_t *indices);
fc_status fc_max_pool2d_backward_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                           const int64_t *indices, const float *x, float *gx);
fc_status fc_max_pool2d_backward_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                           const int64_t *indices, const double *x, double *gx);
fc_status fc_avg_pool2d_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y);
fc_status fc_avg_pool2d_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y);
fc_status fc_avg_pool2d_backward_f32__avx2(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                           float *gx);
fc_status fc_avg_pool2d_backward_f64__avx2(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                           double *gx);
#endif

#endif /* FC_POOL_KERNELS_H */
