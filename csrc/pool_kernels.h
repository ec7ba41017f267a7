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

#ifdef FC_WITH_AVX512
/* AVX-512 max backward with indices (pool_avx512.c): 3x3/2 p1 and exactly
 * tiled 2x2/2; FC_NOT_HANDLED otherwise (the AVX2 paths follow). */
fc_status fc_max_pool2d_backward_f32__avx512(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                             const int64_t *indices, const float *x, float *gx);
fc_status fc_max_pool2d_backward_f64__avx512(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                             const int64_t *indices, const double *x, double *gx);
#endif

#endif /* FC_POOL_KERNELS_H */
