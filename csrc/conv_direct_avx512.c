/* AVX-512 (F/BW/VL) register-blocked direct convolution (forward), float32
 * and float64.  Compiled with -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma
 * (setup.py, files named *_avx512.c) and called only when the runtime ISA is
 * FC_ISA_AVX512; shapes it does not serve return FC_NOT_HANDLED and the
 * dispatcher (conv.c) falls through to the AVX2 kernels.
 *
 * Kernels (each written once for both dtypes and instantiated below):
 *   conv_direct_avx512_ocv.h  output-channel-vectorised tile, 4 zmm of
 *                             channels x 6 flattened pixels (any stride,
 *                             padding, dilation, groups with >= VL channels)
 *   conv_direct_avx512_dw.h   depthwise 3x3 (stride 1/2), vectorised along
 *                             the width with masked row tails (float32; the
 *                             AVX2 tile is faster for float64)
 * Zero heap workspace (bounded stack buffers). */
#include "fc_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "fc_transpose_avx2.h"
#include <stdint.h>

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))

#ifndef FC_Z_K1
#define FC_Z_K1 128     /* input channels per block for 1x1 kernels */
#endif

/* ---------------- float32: 16 lanes ---------------- */
#define T float
#define V __m512
#define VL 16
#define TR 8
#define MASKT __mmask16
#define SFX(name) fc_z_f32_##name
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(a) _mm512_set1_ps(a)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_TAILMASK(n) ((__mmask16)((n) >= 16 ? 0xFFFFu : ((1u << (n)) - 1u)))
#define V_MASKLOADU(m, p) _mm512_maskz_loadu_ps((m), (p))
#define V_MASKSTOREU(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define VIDX __m512i
#define V_EVEN_IDX() _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define V_ODD_IDX() _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define V_EVEN(lo, idx, hi) _mm512_permutex2var_ps((lo), (idx), (hi))
/* lanes [n, VL) of lo then [0, n) of hi */
#define V_ALIGNR(hi, lo, n) _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), (n)))
static inline void SFX(z_tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr8x8_f32(src, ss, dst, ds); }
#include "conv_direct_avx512_ocv.h"
#include "conv_direct_avx512_dw.h"
#undef T
#undef V
#undef VL
#undef TR
#undef MASKT
#undef SFX
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_STOREU
#undef V_FMA
#undef V_BCAST
#undef V_TAILMASK
#undef V_MASKLOADU
#undef V_MASKSTOREU
#undef VIDX
#undef V_EVEN_IDX
#undef V_EVEN
#undef V_ODD_IDX
#undef V_ALIGNR

/* ---------------- float64: 8 lanes ---------------- */
#define T double
#define V __m512d
#define VL 8
#define TR 4
#define MASKT __mmask8
#define SFX(name) fc_z_f64_##name
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(a) _mm512_set1_pd(a)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd((p), (v))
#define V_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define V_BCAST(p) _mm512_set1_pd(*(p))
#define V_TAILMASK(n) ((__mmask8)((n) >= 8 ? 0xFFu : ((1u << (n)) - 1u)))
#define V_MASKLOADU(m, p) _mm512_maskz_loadu_pd((m), (p))
#define V_MASKSTOREU(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define VIDX __m512i
#define V_EVEN_IDX() _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14)
#define V_ODD_IDX() _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15)
#define V_EVEN(lo, idx, hi) _mm512_permutex2var_pd((lo), (idx), (hi))
#define V_ALIGNR(hi, lo, n) _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(hi), _mm512_castpd_si512(lo), (n)))
static inline void SFX(z_tr)(const T *src, int64_t ss, T *dst, int64_t ds) { fc_tr4x4_f64(src, ss, dst, ds); }
#include "conv_direct_avx512_ocv.h"
#include "conv_direct_avx512_dw.h"

#define FC_Z_ENTRY(T_, S_)                                                                        \
fc_status fc_conv2d_direct_##S_##__avx512(fc_context *ctx, const fc_conv_shape *s, const T_ *x,   \
                                          const T_ *w, const T_ *bias, T_ *y) {                   \
    fc_status st;                                                                                 \
    if (!ctx || !s || (!y && s->n * s->c_out * s->h_out * s->w_out > 0)) return FC_ERR_ARG;       \
    if (s->n == 0 || s->c_out == 0 || s->h_out == 0 || s->w_out == 0) return FC_OK;               \
    /* depthwise: the AVX-512 tile for float32 only (float64 measured        \
     * 1.2-2.5x slower than the AVX2 tile here, which then serves it) */     \
    if (sizeof(T_) == 4 && (st = fc_z_##S_##_dw3x3(ctx, s, x, w, bias, y)) != FC_NOT_HANDLED)     \
        return st;                                                                                \
    return fc_z_##S_##_z_ocv(ctx, s, x, w, bias, y);                                              \
}
FC_Z_ENTRY(float, f32)
FC_Z_ENTRY(double, f64)

#else  /* compiled without AVX-512: decline (never called; dispatch is guarded) */
fc_status fc_conv2d_direct_f32__avx512(fc_context *ctx, const fc_conv_shape *s,
                                       const float *x, const float *w, const float *bias, float *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}
fc_status fc_conv2d_direct_f64__avx512(fc_context *ctx, const fc_conv_shape *s,
                                       const double *x, const double *w, const double *bias, double *y) {
    (void)ctx; (void)s; (void)x; (void)w; (void)bias; (void)y;
    return FC_NOT_HANDLED;
}
#endif
