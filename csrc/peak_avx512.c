/* AVX-512 peak loops: 16 independent 512-bit FMA chains held in registers.
 * Cores with two 512-bit FMA units (Intel server parts) double the AVX2
 * figure; on cores that split a zmm FMA in two (AMD Zen 4) it equals it.
 * Sixteen chains cover FMA latency (4 cycles) times two ports. */
#include "fc_internal.h"
#include "fc_peak.h"

#ifdef FC_WITH_AVX512
#include <immintrin.h>

#define FC_PEAK_CHAINS 16

/* acc = acc * m + a converges to a / (1 - m) ~ 1: no overflow, no denormals. */
const int64_t fc_peak_f32_flops_per_iter__avx512 = FC_PEAK_CHAINS * 16 * 2;
const int64_t fc_peak_f64_flops_per_iter__avx512 = FC_PEAK_CHAINS * 8 * 2;

#define FC_PEAK_BODY(V, SET1, FMA, ADD, REDUCE, T)                                       \
    const V m = SET1((T)0.999999), a = SET1((T)1e-6);                                    \
    V c[FC_PEAK_CHAINS];                                                                 \
    int j;                                                                               \
    for (j = 0; j < FC_PEAK_CHAINS; j++) c[j] = SET1((T)(0.10 + 0.01 * j));              \
    for (int64_t i = 0; i < iters; i++) {                                                \
        _Pragma("GCC unroll 16")                                                         \
        for (j = 0; j < FC_PEAK_CHAINS; j++) c[j] = FMA(c[j], m, a);                     \
    }                                                                                    \
    for (j = 1; j < FC_PEAK_CHAINS; j++) c[0] = ADD(c[0], c[j]);                         \
    return (double)REDUCE(c[0]);

__attribute__((noinline)) double fc_peak_kernel_f32__avx512(int64_t iters) {
    FC_PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps, float)
}

__attribute__((noinline)) double fc_peak_kernel_f64__avx512(int64_t iters) {
    FC_PEAK_BODY(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_reduce_add_pd, double)
}

#endif /* FC_WITH_AVX512 */
