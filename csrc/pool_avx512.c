/* AVX-512 (F/BW/VL) pooling: max backward with saved indices for 3x3/2 p1
 * and exactly tiled 2x2/2 (pool_avx512_maxbwd.h), float32 and float64.
 * Called only when the runtime ISA is FC_ISA_AVX512; other shapes return
 * FC_NOT_HANDLED and the entry point (pool_entry.h) tries the AVX2 paths.
 * Results are bit-identical to the generic kernels (same sums, same
 * order). */
#include "fc_internal.h"
#include "pool_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define FC_AI inline __attribute__((always_inline))

/* ---- float32: 8 outputs = 16 slots; codes int64 -> int32 slots ---------- */
#define FC_T float
#define FC_SFX(name) name##_f32
#define FC_SFXZ(name) name##_f32__avx512
#define ZL 8
#define NS 16
#define ZALLSLOTS 0xFFFFu
#define ZALLLANES 0xFFu
#define ZEVEN 0x5555u
#define ZODD 0xAAAAu
#define ZT __m512
#define ZI __m512i
#define ZM __mmask16
#define ZB __m512i                            /* 8 int64 codes */
#define ZZERO() _mm512_setzero_ps()
/* slot 2j = a, slot 2j+1 = b (int32) */
#define ZPAIR(a, b) _mm512_set1_epi64((int64_t)(((uint64_t)(uint32_t)(int32_t)(b) << 32) | (uint32_t)(int32_t)(a)))
#define ZSET1I(a) _mm512_set1_epi32((int32_t)(a))
#define ZB_INIT(b) _mm512_add_epi64(_mm512_set1_epi64(b), _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14))
#define ZB_ZERO() _mm512_setzero_si512()
#define ZB_STEP(v, k) _mm512_add_epi64((v), _mm512_set1_epi64(k))
#define ZB_CODES(p, m, base) _mm512_sub_epi64(_mm512_maskz_loadu_epi64((__mmask8)(m), (p)), (base))
#define ZB_ACC(acc, m, c) _mm512_mask_or_epi64((acc), (__mmask8)(m), (acc), (c))
/* any code outside [0, 2^31) */
#define ZB_OUTSIDE(acc) (_mm512_test_epi64_mask((acc), _mm512_set1_epi64(~(int64_t)0x7FFFFFFF)) != 0)
/* the low half of each int64 code in both its int32 slots (exact for the
 * codes in [0, 2^31) that ZB_OUTSIDE lets through) */
#define ZDUPC(c) _mm512_or_si512((c), _mm512_slli_epi64((c), 32))
#define ZDUPG(p, m) _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), \
                                          _mm512_castps256_ps512(_mm256_maskz_loadu_ps((__mmask8)(m), (p))))
#define ZKOR(a, b) _kor_mask16((a), (b))
#define ZCMP(m, a, b) _mm512_mask_cmpeq_epi32_mask((__mmask16)(m), (a), (b))
#define ZLOADC(m, p) _mm512_maskz_loadu_ps((__mmask16)(m), (p))
#define ZSTOREC(p, m, v) _mm512_mask_storeu_ps((p), (__mmask16)(m), (v))
#define ZMASKZ_ADD(m, a, b) _mm512_maskz_add_ps((m), (a), (b))
#define ZMASK_ADD(src, m, a, b) _mm512_mask_add_ps((src), (m), (a), (b))
#include "pool_generic.h"
#include "pool_avx512_maxbwd.h"
#undef FC_T
#undef FC_SFX
#undef FC_SFXZ
#undef ZL
#undef NS
#undef ZALLSLOTS
#undef ZALLLANES
#undef ZEVEN
#undef ZODD
#undef ZT
#undef ZI
#undef ZM
#undef ZB
#undef ZZERO
#undef ZPAIR
#undef ZSET1I
#undef ZB_INIT
#undef ZB_ZERO
#undef ZB_STEP
#undef ZB_CODES
#undef ZB_ACC
#undef ZB_OUTSIDE
#undef ZDUPC
#undef ZDUPG
#undef ZCMP
#undef ZKOR
#undef ZLOADC
#undef ZSTOREC
#undef ZMASKZ_ADD
#undef ZMASK_ADD

/* ---- float64: 4 outputs = 8 slots; int64 codes compared whole ----------- */
#define FC_T double
#define FC_SFX(name) name##_f64
#define FC_SFXZ(name) name##_f64__avx512
#define ZL 4
#define NS 8
#define ZALLSLOTS 0xFFu
#define ZALLLANES 0xFu
#define ZEVEN 0x55u
#define ZODD 0xAAu
#define ZT __m512d
#define ZI __m512i
#define ZM __mmask8
#define ZB __m256i                            /* 4 int64 codes */
#define ZZERO() _mm512_setzero_pd()
#define ZPAIR(a, b) _mm512_setr_epi64((a), (b), (a), (b), (a), (b), (a), (b))
#define ZSET1I(a) _mm512_set1_epi64((int64_t)(a))
#define ZB_INIT(b) _mm256_add_epi64(_mm256_set1_epi64x(b), _mm256_setr_epi64x(0, 2, 4, 6))
#define ZB_ZERO() _mm256_setzero_si256()
#define ZB_STEP(v, k) _mm256_add_epi64((v), _mm256_set1_epi64x(k))
#define ZB_CODES(p, m, base) _mm256_sub_epi64(_mm256_maskz_loadu_epi64((__mmask8)(m), (p)), (base))
#define ZB_ACC(acc, m, c) _mm256_mask_or_epi64((acc), (__mmask8)(m), (acc), (c))
#define ZB_OUTSIDE(acc) (_mm256_test_epi64_mask((acc), _mm256_set1_epi64x(~(int64_t)0x7FFFFFFF)) != 0)
#define ZDUPC(c) _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), _mm512_castsi256_si512(c))
#define ZDUPG(p, m) _mm512_permutexvar_pd(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), \
                                          _mm512_castpd256_pd512(_mm256_maskz_loadu_pd((__mmask8)(m), (p))))
#define ZKOR(a, b) ((__mmask8)((a) | (b)))   /* kor of 8-bit masks is AVX-512DQ */
#define ZCMP(m, a, b) _mm512_mask_cmpeq_epi64_mask((__mmask8)(m), (a), (b))
#define ZLOADC(m, p) _mm512_maskz_loadu_pd((__mmask8)(m), (p))
#define ZSTOREC(p, m, v) _mm512_mask_storeu_pd((p), (__mmask8)(m), (v))
#define ZMASKZ_ADD(m, a, b) _mm512_maskz_add_pd((m), (a), (b))
#define ZMASK_ADD(src, m, a, b) _mm512_mask_add_pd((src), (m), (a), (b))
#include "pool_generic.h"
#include "pool_avx512_maxbwd.h"

#else  /* compiled without AVX-512: decline (never called; dispatch is guarded) */
fc_status fc_max_pool2d_backward_f32__avx512(fc_context *ctx, const fc_pool_shape *s, const float *gy,
                                             const int64_t *indices, const float *x, float *gx) {
    (void)ctx; (void)s; (void)gy; (void)indices; (void)x; (void)gx;
    return FC_NOT_HANDLED;
}
fc_status fc_max_pool2d_backward_f64__avx512(fc_context *ctx, const fc_pool_shape *s, const double *gy,
                                             const int64_t *indices, const double *x, double *gx) {
    (void)ctx; (void)s; (void)gy; (void)indices; (void)x; (void)gx;
    return FC_NOT_HANDLED;
}
#endif
