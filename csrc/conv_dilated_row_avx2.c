/* Row kernels of the dilated algorithm (AVX2+FMA), float32 and float64:
 * WaveNet-like one-row convolutions straight from x / grad_out, see
 * conv_dilated_row.h.  Called by conv_dilated_impl.h on the AVX2 path. */
#include "conv_dilated_row.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))
#define MASK __m256i
#define MASK_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))

/* ---------------- float32: 8 lanes ---------------- */
#define T float
#define V __m256
#define VL 8
#define MASKINT int32_t
#define V_MASK_TAB {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0}
#define SFX(name) fc_drk_f32_##name
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(a) _mm256_set1_ps(a)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_MLOAD(p, m) _mm256_maskload_ps((p), (m))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#include "conv_dilated_row_avx2_impl.h"
#undef T
#undef V
#undef VL
#undef MASKINT
#undef V_MASK_TAB
#undef SFX
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_STOREU
#undef V_MLOAD
#undef V_FMA

/* ---------------- float64: 4 lanes ---------------- */
#define T double
#define V __m256d
#define VL 4
#define MASKINT int64_t
#define V_MASK_TAB {-1, -1, -1, -1, 0, 0, 0, 0}
#define SFX(name) fc_drk_f64_##name
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(a) _mm256_set1_pd(a)
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd((p), (v))
#define V_MLOAD(p, m) _mm256_maskload_pd((p), (m))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#include "conv_dilated_row_avx2_impl.h"

#define FC_DRK_ENTRY(T, SFX)                                                                   \
fc_status fc_dil_row_forward_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,            \
                                           const T *x, const T *w, const T *bias, T *y) {      \
    return fc_drk_##SFX##_forward(ctx, s, x, w, bias, y);                                      \
}                                                                                              \
fc_status fc_dil_row_grad_input_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,         \
                                              const T *gy, const T *w, T *gx) {                \
    return fc_drk_##SFX##_grad_input(ctx, s, gy, w, gx);                                       \
}                                                                                              \
fc_status fc_dil_row_grad_weight_##SFX##__avx2(fc_context *ctx, const fc_conv_shape *s,        \
                                               const T *gy, const T *x, T *gw) {               \
    return fc_drk_##SFX##_grad_weight(ctx, s, gy, x, gw);                                      \
}
FC_DRK_ENTRY(float, f32)
FC_DRK_ENTRY(double, f64)

#endif
