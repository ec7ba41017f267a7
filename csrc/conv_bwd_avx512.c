/* AVX-512 (F/BW/VL) register-blocked grad weight, float32 and float64.
 *
 * The AVX2 kernel's scheme (conv_bwd_avx2.c; both instantiate
 * conv_bwd_gw_impl.h) with zmm vectors and 32 registers: the micro-tile is
 * NCO = 4*VL output channels (64 f32 / 32 f64) x 6 combos, 24 zmm
 * accumulators; each output pixel costs 4 grad_out vector loads and 6
 * broadcasts for 24 FMAs.  Shapes it does not serve (fewer than VL output
 * channels per group, ...) return FC_NOT_HANDLED and the dispatcher (conv.c)
 * falls through to the AVX2 kernel.  No heap workspace (bounded stack
 * buffers).
 *
 * Every gw element is owned by one task and sums its products over
 * (n, oh, ow) in that order: results do not depend on the thread count. */
#include "conv_bwd.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "fc_transpose_avx2.h"

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))

#define GW_NJ 6          /* combos per micro-tile */
#define GW_NV 4          /* vectors of output channels per micro-tile */
#define GW_KMAX 576      /* combos per task (acc buffer) */
#define GW_PTARGET 128   /* output pixels per chunk: grad_out block 32 KB, in L1 */
#define GW_PMAX 512      /* widest output row served */
#define GW_XBYTES 49152  /* padded input block */
/* no L2 bound on the input channels per task: with one co-block per task
 * the bound only multiplied the passes over grad_out (measured slower) */
#define GW_L2_BYTES 0
#define GW_GMAX 1        /* co-blocks per task sharing one input copy */
#define GW_ACC_COMBOS 576   /* acc buffer: combos x co-blocks (147 KB f32) */

/* ---------------- float32 ---------------- */
#define T float
#define V __m512
#define VL 16
#define TR 8
#define SFX(name) fc_gwz_f32_##name
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(a) _mm512_set1_ps(a)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_LOAD(p) _mm512_load_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
static inline void SFX(tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr8x8_f32(src, ss, dst, ds); }
#include "conv_bwd_gw_impl.h"
#undef T
#undef V
#undef VL
#undef TR
#undef SFX
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_LOAD
#undef V_STOREU
#undef V_FMA

/* ---------------- float64 ---------------- */
#define T double
#define V __m512d
#define VL 8
#define TR 4
#define SFX(name) fc_gwz_f64_##name
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(a) _mm512_set1_pd(a)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_LOAD(p) _mm512_load_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd((p), (v))
#define V_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
static inline void SFX(tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr4x4_f64(src, ss, dst, ds); }
#include "conv_bwd_gw_impl.h"

fc_status fc_conv2d_grad_weight_direct_f32__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const float *gy, const float *x, float *gw) {
    return fc_gwz_f32_run(ctx, s, gy, x, gw);
}

fc_status fc_conv2d_grad_weight_direct_f64__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const double *gy, const double *x, double *gw) {
    return fc_gwz_f64_run(ctx, s, gy, x, gw);
}

#else  /* compiled without AVX-512: decline (never called; dispatch is guarded) */
fc_status fc_conv2d_grad_weight_direct_f32__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const float *gy, const float *x, float *gw) {
    (void)ctx; (void)s; (void)gy; (void)x; (void)gw;
    return FC_NOT_HANDLED;
}
fc_status fc_conv2d_grad_weight_direct_f64__avx512(fc_context *ctx, const fc_conv_shape *s,
                                                   const double *gy, const double *x, double *gw) {
    (void)ctx; (void)s; (void)gy; (void)x; (void)gw;
    return FC_NOT_HANDLED;
}
#endif
