/* Max and avg pooling entry points (float32 and float64).
 *
 * The generic kernels (pool_generic.h) serve every configuration; the AVX2
 * fast paths (pool_avx2.c, declared in pool_kernels.h) take the common
 * ones when the runtime ISA is AVX2, and pool_avx512.c the max backward
 * with indices under AVX-512.  Both are written once and instantiated
 * per dtype. */
#include <math.h>
#include "fc_internal.h"
#include "pool_kernels.h"

#define FC_T float
#define FC_SFX(name) name##_f32
#define FC_SFXA(name) name##_f32__avx2
#define FC_SFXZ(name) name##_f32__avx512
#include "pool_generic.h"
#include "pool_entry.h"
#undef FC_T
#undef FC_SFX
#undef FC_SFXA
#undef FC_SFXZ

#define FC_T double
#define FC_SFX(name) name##_f64
#define FC_SFXA(name) name##_f64__avx2
#define FC_SFXZ(name) name##_f64__avx512
#include "pool_generic.h"
#include "pool_entry.h"
#undef FC_T
#undef FC_SFX
#undef FC_SFXA
#undef FC_SFXZ
