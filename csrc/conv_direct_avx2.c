/* AVX2+FMA register-blocked direct convolution (forward), float32 and
 * float64.  Zero workspace: weights are re-packed per (output-channel block,
 * input-channel block) into a bounded stack buffer.  The kernel body is
 * written once in conv_direct_avx2_impl.h and instantiated per dtype here;
 * depthwise convolutions have their own path (conv_direct_avx2_dw.h). */
#include "fc_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "fc_transpose_avx2.h"
#include <stdint.h>
#include <math.h>

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))

#define MODE_S1 0
#define MODE_S2 1
#define MODE_SG 2

/* Widest kernel served (mask table size) and packed-weight stack buffer. */
#define FC_DIRECT_MAX_KW 32
#define FC_DIRECT_WP 4096          /* elements: 16 KB f32, 32 KB f64 */
#define FC_DIRECT_WP_BUDGET 2048   /* target packed elements per ci-block */

/* v & *mask with the mask as a memory operand: as a plain intrinsic GCC
 * keeps the masks in registers and spills accumulators instead. */
static inline __m256 fc_and_mem_ps(__m256 v, const __m256i *mask) {
    __asm__("vandps %1, %0, %0" : "+x"(v) : "m"(*mask));
    return v;
}
static inline __m256d fc_and_mem_pd(__m256d v, const __m256i *mask) {
    __asm__("vandpd %1, %0, %0" : "+x"(v) : "m"(*mask));
    return v;
}

/* ---------------- float32: 8 lanes ---------------- */
#define T float
#define V __m256
#define VL 8
#define MASK __m256i
#define MASKINT int32_t
#define V_LANE_MASK_INIT {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0}
#define VIDX __m256i
#define SFX(name) fc_direct_f32_##name
#define MASK_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(a) _mm256_set1_ps(a)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_MASKLOAD(p, m) _mm256_maskload_ps((p), (m))
#define V_MASKSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define FC_SFMA(a, b, c) fmaf((a), (b), (c))
#define V_AND(v, m) fc_and_mem_ps((v), &(m))
/* even elements of lo:hi -> [lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6] */
/* even elements of lo:hi, lane order [lo0 lo2 hi0 hi2 lo4 lo6 hi4 hi6]:
 * output pixels 0 1 4 5 2 3 6 7.  Accumulators stay in that order and
 * V_PERM (its own inverse) restores pixel order at load/store of y. */
#define V_DEINT2(lo, hi) _mm256_shuffle_ps((lo), (hi), 0x88)
#define V_S2_LANES {0, 1, 4, 5, 2, 3, 6, 7}
#define V_PERM(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8))
#define V_GIDX(sw) _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(sw)))
#define V_GATHER(p, idx, m) _mm256_mask_i32gather_ps(_mm256_setzero_ps(), (p), (idx), _mm256_castsi256_ps(m), 4)
#include "conv_direct_avx2_impl.h"
#undef T
#undef V
#undef VL
#undef MASK
#undef MASKINT
#undef V_LANE_MASK_INIT
#undef VIDX
#undef SFX
#undef MASK_LOAD
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_STOREU
#undef V_MASKLOAD
#undef V_MASKSTORE
#undef V_FMA
#undef FC_SFMA
#undef V_AND
#undef V_DEINT2
#undef V_PERM
#undef V_S2_LANES
#undef V_GIDX
#undef V_GATHER

/* ---------------- float64: 4 lanes ---------------- */
#define T double
#define V __m256d
#define VL 4
#define MASK __m256i
#define MASKINT int64_t
#define V_LANE_MASK_INIT {-1, -1, -1, -1, 0, 0, 0, 0}
#define VIDX __m128i
#define SFX(name) fc_direct_f64_##name
#define MASK_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(a) _mm256_set1_pd(a)
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd((p), (v))
#define V_MASKLOAD(p, m) _mm256_maskload_pd((p), (m))
#define V_MASKSTORE(p, m, v) _mm256_maskstore_pd((p), (m), (v))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define FC_SFMA(a, b, c) fma((a), (b), (c))
#define V_AND(v, m) fc_and_mem_pd((v), &(m))
/* even elements of lo:hi in lane order [lo0 hi0 lo2 hi2] (pixels 0 2 1 3) */
#define V_DEINT2(lo, hi) _mm256_unpacklo_pd((lo), (hi))
#define V_S2_LANES {0, 2, 1, 3}
#define V_PERM(v) _mm256_permute4x64_pd((v), 0xD8)
#define V_GIDX(sw) _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)(sw)))
#define V_GATHER(p, idx, m) _mm256_mask_i32gather_pd(_mm256_setzero_pd(), (p), (idx), _mm256_castsi256_pd(m), 8)
#include "conv_direct_avx2_impl.h"

fc_status fc_conv2d_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const float *x, const float *w, const float *bias, float *y) {
    if (!ctx || !s || (!y && s->n * s->c_out * s->h_out * s->w_out > 0)) return FC_ERR_ARG;
    return fc_direct_f32_direct(ctx, s, x, w, bias, y);
}

fc_status fc_conv2d_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const double *x, const double *w, const double *bias, double *y) {
    if (!ctx || !s || (!y && s->n * s->c_out * s->h_out * s->w_out > 0)) return FC_ERR_ARG;
    return fc_direct_f64_direct(ctx, s, x, w, bias, y);
}

#else  /* compiled without AVX2: decline (never called; dispatch is guarded) */
fc_status fc_conv2d_direct_f32__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const float *x, const float *w, const float *bias, float *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}
fc_status fc_conv2d_direct_f64__avx2(fc_context *ctx, const fc_conv_shape *s,
                                     const double *x, const double *w, const double *bias, double *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}
#endif
