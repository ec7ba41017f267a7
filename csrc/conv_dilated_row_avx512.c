/* Row kernels of the dilated algorithm (AVX-512 F), float32 and float64:
 * WaveNet-like one-row convolutions straight from x / grad_out, see
 * conv_dilated_row.h.  Compiled with AVX-512 flags (setup.py, *_avx512.c)
 * and called by conv_dilated_impl.h only when fc_drk_avx512(ctx).  Same
 * kernels as the AVX2 file with 512-bit vectors and larger tiles. */
#include "conv_dilated_row.h"

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define FC_AI inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_ALIGNED(n) __attribute__((aligned(n)))
#define MR FC_DRK_MR_AVX512
#define GMR FC_DRK_GMR_AVX512
#define GNC FC_DRK_GNC_AVX512
/* Forces the weight broadcast into a register: GCC would otherwise fold it
 * into every FMA as an embedded {1toN} memory operand, one load uop per
 * FMA instead of one per three. */
#define V_INREG(v) __asm__("" : "+v"(v))
#define FC_DRK_CW_TILES 1   /* 1 tile of 48 columns: 64 channels x 2 taps stay in L1 */

/* ---------------- float32: 16 lanes ---------------- */
#define T float
#define V __m512
#define VL 16
#define MASK __mmask16
#define SFX(name) fc_drk_f32_##name
#define EXPORT(op) fc_dil_row_##op##_f32__avx512
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(a) _mm512_set1_ps(a)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define V_MLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
/* Lanes [0, n) set, 0 < n <= VL. */
static FC_AI MASK fc_drk_f32_mask(int64_t n) { return (MASK)((1u << n) - 1u); }
#include "conv_dilated_row_impl.h"
#undef T
#undef V
#undef VL
#undef MASK
#undef SFX
#undef EXPORT
#undef V_ZERO
#undef V_SET1
#undef V_LOADU
#undef V_STOREU
#undef V_MLOAD
#undef V_FMA

/* ---------------- float64: 8 lanes ---------------- */
#define T double
#define V __m512d
#define VL 8
#define MASK __mmask8
#define SFX(name) fc_drk_f64_##name
#define EXPORT(op) fc_dil_row_##op##_f64__avx512
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(a) _mm512_set1_pd(a)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd((p), (v))
#define V_MLOAD(p, m) _mm512_maskz_loadu_pd((m), (p))
#define V_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
static FC_AI MASK fc_drk_f64_mask(int64_t n) { return (MASK)((1u << n) - 1u); }
#include "conv_dilated_row_impl.h"

#endif
