/* AVX2+FMA peak loops: 12 independent 256-bit FMA chains held in registers.
 * Twelve chains cover FMA latency (4-5 cycles) times two FMA ports on
 * current x86 cores while leaving registers for the two constants. */
#include "fc_internal.h"
#include "fc_peak.h"

#ifdef FC_WITH_AVX2
#include <immintrin.h>

#define FC_PEAK_CHAINS 12

/* acc = acc * m + a converges to a / (1 - m) ~ 1: no overflow, no denormals. */
const int64_t fc_peak_f32_flops_per_iter__avx2 = FC_PEAK_CHAINS * 8 * 2;
const int64_t fc_peak_f64_flops_per_iter__avx2 = FC_PEAK_CHAINS * 4 * 2;

__attribute__((noinline)) double fc_peak_kernel_f32__avx2(int64_t iters) {
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    __m256 c0 = _mm256_set1_ps(0.10f), c1 = _mm256_set1_ps(0.11f), c2 = _mm256_set1_ps(0.12f);
    __m256 c3 = _mm256_set1_ps(0.13f), c4 = _mm256_set1_ps(0.14f), c5 = _mm256_set1_ps(0.15f);
    __m256 c6 = _mm256_set1_ps(0.16f), c7 = _mm256_set1_ps(0.17f), c8 = _mm256_set1_ps(0.18f);
    __m256 c9 = _mm256_set1_ps(0.19f), c10 = _mm256_set1_ps(0.20f), c11 = _mm256_set1_ps(0.21f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, m, a); c1 = _mm256_fmadd_ps(c1, m, a);
        c2 = _mm256_fmadd_ps(c2, m, a); c3 = _mm256_fmadd_ps(c3, m, a);
        c4 = _mm256_fmadd_ps(c4, m, a); c5 = _mm256_fmadd_ps(c5, m, a);
        c6 = _mm256_fmadd_ps(c6, m, a); c7 = _mm256_fmadd_ps(c7, m, a);
        c8 = _mm256_fmadd_ps(c8, m, a); c9 = _mm256_fmadd_ps(c9, m, a);
        c10 = _mm256_fmadd_ps(c10, m, a); c11 = _mm256_fmadd_ps(c11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return (double)out[0] + out[7];
}

__attribute__((noinline)) double fc_peak_kernel_f64__avx2(int64_t iters) {
    const __m256d m = _mm256_set1_pd(0.999999), a = _mm256_set1_pd(1e-6);
    __m256d c0 = _mm256_set1_pd(0.10), c1 = _mm256_set1_pd(0.11), c2 = _mm256_set1_pd(0.12);
    __m256d c3 = _mm256_set1_pd(0.13), c4 = _mm256_set1_pd(0.14), c5 = _mm256_set1_pd(0.15);
    __m256d c6 = _mm256_set1_pd(0.16), c7 = _mm256_set1_pd(0.17), c8 = _mm256_set1_pd(0.18);
    __m256d c9 = _mm256_set1_pd(0.19), c10 = _mm256_set1_pd(0.20), c11 = _mm256_set1_pd(0.21);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_pd(c0, m, a); c1 = _mm256_fmadd_pd(c1, m, a);
        c2 = _mm256_fmadd_pd(c2, m, a); c3 = _mm256_fmadd_pd(c3, m, a);
        c4 = _mm256_fmadd_pd(c4, m, a); c5 = _mm256_fmadd_pd(c5, m, a);
        c6 = _mm256_fmadd_pd(c6, m, a); c7 = _mm256_fmadd_pd(c7, m, a);
        c8 = _mm256_fmadd_pd(c8, m, a); c9 = _mm256_fmadd_pd(c9, m, a);
        c10 = _mm256_fmadd_pd(c10, m, a); c11 = _mm256_fmadd_pd(c11, m, a);
    }
    __m256d s = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(c0, c1), _mm256_add_pd(c2, c3)),
                              _mm256_add_pd(_mm256_add_pd(c4, c5), _mm256_add_pd(c6, c7)));
    s = _mm256_add_pd(s, _mm256_add_pd(_mm256_add_pd(c8, c9), _mm256_add_pd(c10, c11)));
    double out[4];
    _mm256_storeu_pd(out, s);
    return out[0] + out[3];
}

#endif /* FC_WITH_AVX2 */
