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
#define MR FC_DRK_MR_AVX2
#define GMR FC_DRK_GMR_AVX2
#define GNC FC_DRK_GNC_AVX2
#define V_INREG(v) ((void)0)   /* no embedded broadcasts in AVX2 */
#define FC_DRK_CW_TILES 2

/* ---------------- float32: 8 lanes ---------------- */
#define T float
#define V __m256
#define VL 8
#define SFX(name) fc_drk_f32_##name
#define EXPORT(op) fc_dil_row_##op##_f32__avx2
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(a) _mm256_set1_ps(a)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_MLOAD(p, m) _mm256_maskload_ps((p), (m))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
static const int32_t fc_drk_f32_mtab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
/* Lanes [0, n) set, 0 < n <= VL. */
static FC_AI MASK fc_drk_f32_mask(int64_t n) {
    return _mm256_loadu_si256((const __m256i *)(fc_drk_f32_mtab + VL - n));
}
#include "conv_dilated_row_impl.h"
#undef T
#undef V
#undef VL
#undef SFX
#undef EXPORT
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
#define SFX(name) fc_drk_f64_##name
#define EXPORT(op) fc_dil_row_##op##_f64__avx2
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(a) _mm256_set1_pd(a)
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd((p), (v))
#define V_MLOAD(p, m) _mm256_maskload_pd((p), (m))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
static const int64_t fc_drk_f64_mtab[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
static FC_AI MASK fc_drk_f64_mask(int64_t n) {
    return _mm256_loadu_si256((const __m256i *)(fc_drk_f64_mtab + VL - n));
}
#include "conv_dilated_row_impl.h"

#endif
