/* Compiled with -mavx2 -mfma: proves the per-file ISA flags reach this file. */
#include "fc_internal.h"
#include <immintrin.h>
int fc_avx2_probe(void) {
    __m256 a = _mm256_set1_ps(1.0f);
    a = _mm256_fmadd_ps(a, a, a);
    return (int)_mm256_cvtss_f32(a);
}
