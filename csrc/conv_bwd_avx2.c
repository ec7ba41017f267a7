/* AVX2+FMA register-blocked grad weight, float32 and float64.
 *
 * gw[co][ci][kh][kw] = sum over (n, oh, ow) of gy[n][co][oh][ow] *
 * x[n][ci][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw]: a GEMM with output
 * channels as rows, the (ci, kh, kw) "combos" as columns and output pixels
 * as the reduction.  The vectors hold NCO = 2*VL consecutive output
 * channels; the micro-tile is NCO channels x 6 combos (12 accumulators;
 * the kernel, conv_bwd_gw_impl.h, is shared with the AVX-512 file),
 * and each step over one output pixel loads the pixel's two grad_out
 * vectors and broadcasts the input value each combo reads there.  The same
 * scheme as the output-channel-vectorised forward kernel, with pixels as
 * the reduction instead of taps.
 *
 * A task is (group, block of NCO output channels, block of input
 * channels).  It walks the output plane in chunks of rows (image by image;
 * planes smaller than half a chunk several images at a time),
 * copying per chunk its channels' grad_out transposed to [pixel][NCO] and,
 * with padding, its input rows zero-padded into stack buffers (redundant
 * across tasks but 1/(NCO*kh*kw) of the multiply-adds), and accumulates
 * into a stack buffer acc[combo][NCO], written to gw at the end.  No heap
 * workspace.
 *
 * Every gw element is owned by one task and sums its products over
 * (n, oh, ow) in that order: results do not depend on the thread count. */
#include "conv_bwd.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "fc_transpose_avx2.h"

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))

#define GW_NJ 6          /* combos per micro-tile */
#define GW_NV 2          /* vectors of output channels per micro-tile */
#define GW_KMAX 576      /* combos per task (acc buffer) */
#define GW_PTARGET 256   /* output pixels per chunk (grad_out block stays in L1) */
#define GW_PMAX 512      /* widest output row served */
#define GW_XBYTES 49152  /* padded input block */
#define GW_L2_BYTES (512 * 1024)  /* input planes of one task's channel block */
#define GW_GMAX 4        /* co-blocks per task sharing one input copy */
#define GW_ACC_COMBOS 1152  /* acc buffer: combos x co-blocks (73 KB) */

/* ---------------- float32 ---------------- */
#define T float
#define V __m256
#define VL 8
#define SFX(name) fc_gw_f32_##name
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(a) _mm256_set1_ps(a)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_LOAD(p) _mm256_load_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define TR 8
static inline void SFX(tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr8x8_f32(src, ss, dst, ds); }
#include "conv_bwd_gw_impl.h"
#undef T
#undef V
#undef VL
#undef SFX
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_LOAD
#undef V_STOREU
#undef V_FMA
#undef TR

/* ---------------- float64 ---------------- */
#define T double
#define V __m256d
#define VL 4
#define SFX(name) fc_gw_f64_##name
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(a) _mm256_set1_pd(a)
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_LOAD(p) _mm256_load_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd((p), (v))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define TR 4
static inline void SFX(tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr4x4_f64(src, ss, dst, ds); }
#include "conv_bwd_gw_impl.h"

fc_status fc_conv2d_grad_weight_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const float *gy, const float *x, float *gw) {
    return fc_gw_f32_run(ctx, s, gy, x, gw);
}

fc_status fc_conv2d_grad_weight_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const double *gy, const double *x, double *gw) {
    return fc_gw_f64_run(ctx, s, gy, x, gw);
}

#else  /* compiled without AVX2: decline (never called; dispatch is guarded) */
fc_status fc_conv2d_grad_weight_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const float *gy, const float *x, float *gw) {
    (void)ctx; (void)s; (void)gy; (void)x; (void)gw;
    return FC_NOT_HANDLED;
}
fc_status fc_conv2d_grad_weight_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                                 const double *gy, const double *x, double *gw) {
    (void)ctx; (void)s; (void)gy; (void)x; (void)gw;
    return FC_NOT_HANDLED;
}
#endif
