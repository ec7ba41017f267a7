/* Fast direct backward passes, called by the grad_* dispatch in conv.c.
 *
 *   fc_conv2d_grad_input_fwd_*   grad input as forward convolutions of
 *       grad_out through the forward direct dispatcher (conv_bwd.c):
 *       stride 1 is one convolution with the kernel flipped and its channel
 *       axes swapped; stride > 1 is split into stride_h*stride_w stride-1
 *       sub-problems (one per output phase, no zero insertion).
 *   fc_conv2d_grad_weight_direct_*__avx2   register-blocked AVX2 grad
 *       weight (conv_bwd_avx2.c); FC_NOT_HANDLED for shapes it does not
 *       serve (then the portable kernel runs).
 *   fc_conv2d_grad_weight_direct_*__avx512   the same kernel with zmm
 *       vectors (conv_bwd_avx512.c); FC_NOT_HANDLED for shapes it does not
 *       serve (then the AVX2 kernel runs).
 *
 * The shape has been validated (fc_conv_check) and the result is non-empty. */
#ifndef FC_CONV_BWD_H
#define FC_CONV_BWD_H

#include "fc_internal.h"

fc_status fc_conv2d_grad_input_fwd_f32(fc_context *ctx, const fc_conv_shape *s,
                                       const float *gy, const float *w, float *gx);
fc_status fc_conv2d_grad_input_fwd_f64(fc_context *ctx, const fc_conv_shape *s,
                                       const double *gy, const double *w, double *gx);
/* Bytes fc_conv2d_grad_input_fwd_* allocates itself (the forward calls'
 * own workspace, zero for the direct kernels, is not included). */
fc_status fc_conv2d_grad_input_fwd_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                             int elem_size, int64_t *bytes);

fc_status fc_conv2d_grad_weight_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const float *gy, const float *x, float *gw);
fc_status fc_conv2d_grad_weight_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const double *gy, const double *x, double *gw);

fc_status fc_conv2d_grad_weight_direct_f32__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const float *gy, const float *x, float *gw);
fc_status fc_conv2d_grad_weight_direct_f64__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const double *gy, const double *x, double *gw);

#endif /* FC_CONV_BWD_H */
