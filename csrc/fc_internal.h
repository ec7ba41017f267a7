/* Internal helpers shared by the kernel files: checked arithmetic, OpenMP
 * shims, floating-point mode, and the ISA-specific kernels' declarations. */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include "fastconv.h"
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define FC_OMP_THREAD_NUM() omp_get_thread_num()
#else
#define FC_OMP_THREAD_NUM() 0
#endif

#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Status-propagating checked arithmetic on int64. */
#define FC_MUL(a, b, out) do { if (fc_checked_mul((a), (b), (out))) return FC_ERR_OVERFLOW; } while (0)
#define FC_ADD(a, b, out) do { if (fc_checked_add((a), (b), (out))) return FC_ERR_OVERFLOW; } while (0)

/* Floor division for possibly negative numerators (positive divisor). */
static inline int64_t fc_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Floating-point mode for a kernel call: flush denormals to zero (FTZ) and
 * treat denormal inputs as zero (DAZ) so subnormal data cannot slow the
 * kernels down; restored on exit.  MXCSR is per thread, so call inside each
 * OpenMP parallel region. */
typedef struct { unsigned int saved; } fc_fpmode;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
static inline fc_fpmode fc_fpmode_enter(void) {
    fc_fpmode m; m.saved = _mm_getcsr();
    _mm_setcsr(m.saved | 0x8040u);  /* FTZ (bit 15) | DAZ (bit 6) */
    return m;
}
static inline void fc_fpmode_leave(fc_fpmode m) { _mm_setcsr(m.saved); }
#else
static inline fc_fpmode fc_fpmode_enter(void) { fc_fpmode m; m.saved = 0; return m; }
static inline void fc_fpmode_leave(fc_fpmode m) { (void)m; }
#endif

/* Number of threads to use for `work` independent items. */
static inline int fc_threads_for(const fc_context *ctx, int64_t work) {
    int t = ctx->num_threads < 1 ? 1 : ctx->num_threads;
    if (work < t) t = (int)(work < 1 ? 1 : work);
    return t;
}

/* Workspace: every kernel allocation goes through fc_ws_alloc so the bytes
 * can be reported: ctx->workspace_bytes accumulates the bytes requested in
 * one call (per-thread buffers summed).  The cost model must equal it. */
void *fc_ws_alloc(fc_context *ctx, int64_t bytes);
void fc_ws_free(fc_context *ctx, void *p, int64_t bytes);

#if defined(__x86_64__) || defined(_M_X64)
#define FC_HAVE_X86 1
#else
#define FC_HAVE_X86 0
#endif

/* ---- kernel families, called by the dispatch in conv.c -------------------
 * A specialised kernel returns FC_NOT_HANDLED for configurations it does not
 * serve; the dispatcher then falls back to the next candidate. */

/* AVX2+FMA direct convolution forward (conv_direct_avx2.c); workspace 0. */
fc_status fc_conv2d_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const float *x, const float *w, const float *bias, float *y);
fc_status fc_conv2d_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const double *x, const double *w, const double *bias, double *y);

/* AVX-512 direct convolution forward (conv_direct_avx512.c); workspace 0.
 * FC_NOT_HANDLED for shapes it does not serve (the AVX2 kernels follow). */
fc_status fc_conv2d_direct_f32__avx512(fc_context *ctx, const fc_conv_shape *s,
                                       const float *x, const float *w, const float *bias, float *y);
fc_status fc_conv2d_direct_f64__avx512(fc_context *ctx, const fc_conv_shape *s,
                                       const double *x, const double *w, const double *bias, double *y);

/* im2col + BLAS GEMM (conv_im2col.c): forward, grad input (GEMM + col2im),
 * grad weight (im2col + GEMM).  Workspace bounded by ctx->workspace_limit. */
fc_status fc_conv2d_im2col_f32(fc_context *ctx, const fc_conv_shape *s,
                               const float *x, const float *w, const float *bias, float *y);
fc_status fc_conv2d_im2col_f64(fc_context *ctx, const fc_conv_shape *s,
                               const double *x, const double *w, const double *bias, double *y);
fc_status fc_conv2d_grad_input_im2col_f32(fc_context *ctx, const fc_conv_shape *s,
                                          const float *gy, const float *w, float *gx);
fc_status fc_conv2d_grad_input_im2col_f64(fc_context *ctx, const fc_conv_shape *s,
                                          const double *gy, const double *w, double *gx);
fc_status fc_conv2d_grad_weight_im2col_f32(fc_context *ctx, const fc_conv_shape *s,
                                           const float *gy, const float *x, float *gw);
fc_status fc_conv2d_grad_weight_im2col_f64(fc_context *ctx, const fc_conv_shape *s,
                                           const double *gy, const double *x, double *gw);
/* Bytes the im2col kernels will allocate (pass: 0 fwd, 1 grad input, 2 grad weight). */
fc_status fc_conv2d_im2col_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                     int elem_size, int pass, int64_t *bytes);

/* Dilated convolution by space-to-batch decomposition (conv_dilated.c):
 * the padded input is split into dil_h x dil_w interleaved sub-images, each
 * convolved densely through the public entry points with `inner_algo`
 * (FC_ALGO_DIRECT or FC_ALGO_IM2COL), and the results interleaved back. */
fc_status fc_conv2d_dilated_f32(fc_context *ctx, const fc_conv_shape *s,
                                const float *x, const float *w, const float *bias, float *y);
fc_status fc_conv2d_dilated_f64(fc_context *ctx, const fc_conv_shape *s,
                                const double *x, const double *w, const double *bias, double *y);
fc_status fc_conv2d_grad_input_dilated_f32(fc_context *ctx, const fc_conv_shape *s,
                                           const float *gy, const float *w, float *gx);
fc_status fc_conv2d_grad_input_dilated_f64(fc_context *ctx, const fc_conv_shape *s,
                                           const double *gy, const double *w, double *gx);
fc_status fc_conv2d_grad_weight_dilated_f32(fc_context *ctx, const fc_conv_shape *s,
                                            const float *gy, const float *x, float *gw);
fc_status fc_conv2d_grad_weight_dilated_f64(fc_context *ctx, const fc_conv_shape *s,
                                            const double *gy, const double *x, double *gw);
fc_status fc_conv2d_dilated_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                      int elem_size, int pass, int64_t *bytes);

#endif /* FC_INTERNAL_H */
