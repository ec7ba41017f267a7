/* AVX2 pooling fast paths: 2x2 stride 2, 3x3 stride 2 pad 1 and 3x3
 * stride 1 pad 1 (any ceil_mode / avg options), float32 and float64.
 * The kernels are written once in pool_avx2_impl.h over the V* macros
 * below; border columns and tails use the generic code of pool_generic.h
 * (compiled here with AVX2 too), so results equal the generic path. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "fc_internal.h"
#include "pool_kernels.h"

#define FC_INLINE inline __attribute__((always_inline))

/* Calls whose arrays together exceed this stream their output past the
 * cache (non-temporal stores): a typical last-level cache slice of one core
 * complex.  Only speed depends on it, never a result. */
#ifndef FC_POOL_LLC
#define FC_POOL_LLC ((int64_t)32 << 20)
#endif
static int64_t fc_pool_llc_bytes(void) { return FC_POOL_LLC; }

/* 1 when every index irow[o], o in [o, o1), lies in its own window, for
 * outputs whose window columns are all inside the input and whose valid
 * rows are r_lo..r_hi-1: offset from the window origin = r*W + c with
 * 0 <= c < K.  Four int64 indices per step, no division. */
static int idx_row_ok(const int64_t *irow, int64_t o, int64_t o1, int64_t ih0, int64_t W,
                      int K, int S, int P, int r_lo, int r_hi) {
    const __m256i minus1 = _mm256_set1_epi64x(-1), kv = _mm256_set1_epi64x(K);
    const __m256i step = _mm256_set1_epi64x(4 * (int64_t)S);
    __m256i base = _mm256_add_epi64(_mm256_set1_epi64x(ih0 * W + o * S - P),
                                    _mm256_set_epi64x(3 * (int64_t)S, 2 * (int64_t)S, S, 0));
    __m256i bad = _mm256_setzero_si256();
    int r;
    for (; o + 4 <= o1; o += 4) {
        __m256i code = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(irow + o)), base);
        __m256i ok = _mm256_setzero_si256();
        for (r = r_lo; r < r_hi; r++) {
            __m256i t = _mm256_sub_epi64(code, _mm256_set1_epi64x((int64_t)r * W));
            ok = _mm256_or_si256(ok, _mm256_and_si256(_mm256_cmpgt_epi64(t, minus1), _mm256_cmpgt_epi64(kv, t)));
        }
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(ok, minus1));
        base = _mm256_add_epi64(base, step);
    }
    if (!_mm256_testz_si256(bad, bad)) return 0;
    for (; o < o1; o++) {
        int64_t code = irow[o] - (ih0 * W + o * S - P);
        int ok = 0;
        for (r = r_lo; r < r_hi; r++) {
            int64_t t = code - (int64_t)r * W;
            ok |= (t >= 0) & (t < K);
        }
        if (!ok) return 0;
    }
    return 1;
}

/* 2x2/2 max backward gather for 4 outputs: g[j] goes to the tap its code
 * (offset of the argmax from the window origin: 0, 1, W or W+1) names,
 * +0 elsewhere (0 + g, the zero-filled scatter's sum); r0/r1 = the
 * window's two rows at column 2*o. */
static inline void k2_store4_f32(const float *g, __m256i m00, __m256i m01, __m256i m10, __m256i m11,
                                 float *r0, float *r1) {
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);   /* int64 mask -> int32 */
    const __m128 gv = _mm_loadu_ps(g), z = _mm_setzero_ps();
    /* 0 + g: +0 for a -0 gradient, as the zero-filled scatter */
#define K2M(m) _mm_add_ps(z, _mm_and_ps(gv, _mm_castsi128_ps(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32((m), pick)))))
    __m128 e00 = K2M(m00), e01 = K2M(m01);
    __m128 e10 = K2M(m10), e11 = K2M(m11);
#undef K2M
    _mm_storeu_ps(r0, _mm_unpacklo_ps(e00, e01));
    _mm_storeu_ps(r0 + 4, _mm_unpackhi_ps(e00, e01));
    _mm_storeu_ps(r1, _mm_unpacklo_ps(e10, e11));
    _mm_storeu_ps(r1 + 4, _mm_unpackhi_ps(e10, e11));
}

static inline void k2_store4_f64(const double *g, __m256i m00, __m256i m01, __m256i m10, __m256i m11,
                                 double *r0, double *r1) {
    const __m256d gv = _mm256_loadu_pd(g), z = _mm256_setzero_pd();
#define K2M(m) _mm256_add_pd(z, _mm256_and_pd(gv, _mm256_castsi256_pd(m)))
    __m256d e00 = K2M(m00), e01 = K2M(m01);
    __m256d e10 = K2M(m10), e11 = K2M(m11);
#undef K2M
    __m256d ul = _mm256_unpacklo_pd(e00, e01), uh = _mm256_unpackhi_pd(e00, e01);
    _mm256_storeu_pd(r0, _mm256_permute2f128_pd(ul, uh, 0x20));
    _mm256_storeu_pd(r0 + 4, _mm256_permute2f128_pd(ul, uh, 0x31));
    ul = _mm256_unpacklo_pd(e10, e11);
    uh = _mm256_unpackhi_pd(e10, e11);
    _mm256_storeu_pd(r1, _mm256_permute2f128_pd(ul, uh, 0x20));
    _mm256_storeu_pd(r1 + 4, _mm256_permute2f128_pd(ul, uh, 0x31));
}

/* ---- float32: 8 lanes ---------------------------------------------------- */
#define FC_T float
#define FC_SFX(name) name##_f32
#define FC_SFXA(name) name##_f32__avx2
#define VT __m256
#define VL 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSTREAM _mm256_stream_ps
#define VSET1 _mm256_set1_ps
#define VZERO _mm256_setzero_ps
#define VMAX _mm256_max_ps
#define VADD _mm256_add_ps
#define VMUL _mm256_mul_ps
#define VOR _mm256_or_ps
#define VBLEND _mm256_blendv_ps
#define VGT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define VUNORD(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define VEVEN(a, b) _mm256_shuffle_ps((a), (b), 0x88)
#define VODD(a, b) _mm256_shuffle_ps((a), (b), 0xDD)
#define VFIX(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8))
/* window-relative tap offsets ride in the float lanes as int32 */
#define VCODE(off) _mm256_castsi256_ps(_mm256_set1_epi32((int)(off)))
static inline void store_idx_f32(int64_t *dst, __m256 code, int64_t base, int64_t S) {
    __m256i c = _mm256_castps_si256(code);
    __m256i b = _mm256_add_epi64(_mm256_set1_epi64x(base), _mm256_set_epi64x(3 * S, 2 * S, S, 0));
    __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(c)), b);
    __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(c, 1)),
                                  _mm256_add_epi64(b, _mm256_set1_epi64x(4 * S)));
    _mm256_storeu_si256((__m256i *)dst, lo);
    _mm256_storeu_si256((__m256i *)(dst + 4), hi);
}
#define VSTORE_IDX store_idx_f32
/* lanes j < k (k clamped so the int32 compare cannot wrap) */
#define VMASK32(k) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)FC_MAX(FC_MIN((int64_t)(k), 64), -1)), \
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VMLOAD(p, k) _mm256_maskload_ps((p), VMASK32(k))
/* unordered in a or b; lanes 1.. of p (lane 0 is column -1: never read);
 * -inf in lane 0 and +0 elsewhere (OR-ed into a masked load) */
#define VUNORD2(a, b) _mm256_cmp_ps((a), (b), _CMP_UNORD_Q)
#define VMLOAD_FROM1(p) _mm256_maskload_ps((p), _mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1))
#define VNEGINF0() _mm256_setr_ps(-INFINITY, 0, 0, 0, 0, 0, 0, 0)
/* Masked stores through a stack vector: vmaskmov stores are microcoded
 * and slow on AMD cores. */
#define VMSTORE(p, v, k) do {                                                          \
        float vb_[8];                                                                  \
        int64_t i_, k_ = (k);                                                          \
        _mm256_storeu_ps(vb_, (v));                                                    \
        for (i_ = 0; i_ < k_ && i_ < 8; i_++) (p)[i_] = vb_[i_];                       \
    } while (0)
static inline void mstore_idx_f32(int64_t *dst, __m256 code, int64_t base, int64_t S, int64_t k) {
    __m256i c = _mm256_castps_si256(code);
    __m256i b = _mm256_add_epi64(_mm256_set1_epi64x(base), _mm256_set_epi64x(3 * S, 2 * S, S, 0));
    __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(c)), b);
    __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(c, 1)),
                                  _mm256_add_epi64(b, _mm256_set1_epi64x(4 * S)));
    int64_t buf[8], i;
    _mm256_storeu_si256((__m256i *)buf, lo);
    _mm256_storeu_si256((__m256i *)(buf + 4), hi);
    for (i = 0; i < k && i < 8; i++) dst[i] = buf[i];
}
#define VMSTORE_IDX mstore_idx_f32
#define VAND _mm256_and_ps
#define VANDNOT _mm256_andnot_ps
#define VTRUE() _mm256_castsi256_ps(_mm256_set1_epi32(-1))
#define VALLZERO(v) _mm256_testz_ps((v), (v))
#define VCEQ(code, k) _mm256_castsi256_ps(_mm256_cmpeq_epi32((code), _mm256_set1_epi32((int)(k))))
/* Window-relative codes of 8 int64 indices as int32 lanes: ind[j] - b[j],
 * b[0..3] in b0 and b[4..7] in b1.  Codes of valid taps are small and
 * non-negative; any lane whose high 32 bits are not zero is a bad index
 * (flagged in *hib, never truncated into a valid-looking code). */
static inline __m256i codes_f32(const int64_t *ind, __m256i b0, __m256i b1, __m256i *hib) {
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m256i c0 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)ind), b0);
    const __m256i c1 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(ind + 4)), b1);
    *hib = _mm256_or_si256(*hib, _mm256_or_si256(_mm256_srli_epi64(c0, 32), _mm256_srli_epi64(c1, 32)));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(c0, pick))),
                                   _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(c1, pick)), 1);
}
/* codes of outputs whose window origins step by 2: ind[j] - (B + 2j) */
static inline __m256i max3_codes_f32(const int64_t *ind, int64_t B, __m256i *hib) {
    const __m256i b0 = _mm256_add_epi64(_mm256_set1_epi64x(B), _mm256_setr_epi64x(0, 2, 4, 6));
    return codes_f32(ind, b0, _mm256_add_epi64(b0, _mm256_set1_epi64x(8)), hib);
}
/* codes against a table of window origins */
#define VCODES_TAB(ind, tab, hib) codes_f32((ind), _mm256_loadu_si256((const __m256i *)(tab)), \
                                            _mm256_loadu_si256((const __m256i *)((tab) + 4)), (hib))
/* all-ones in lanes j with start + j >= done (lanes not yet accumulated) */
#define VLANES_GE(start, done) _mm256_castsi256_ps(_mm256_cmpgt_epi32(                   \
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),                    \
                         _mm256_set1_epi32((int)((start) - (done)))), _mm256_set1_epi32(-1)))
/* lo/hi = a0 b0 a1 b1 ... (natural order) */
#define VINTERLEAVE(a, b, lo, hi) do {                                  \
        __m256 ul_ = _mm256_unpacklo_ps((a), (b)), uh_ = _mm256_unpackhi_ps((a), (b)); \
        (lo) = _mm256_permute2f128_ps(ul_, uh_, 0x20);                  \
        (hi) = _mm256_permute2f128_ps(ul_, uh_, 0x31);                  \
    } while (0)
/* Branch-free `v > m || isnan(v) ? v : m` (random data mispredicts a branch). */
static inline float scalar_max_f32(float m, float v, int *take) {
    __m128 vm = _mm_set_ss(m), vv = _mm_set_ss(v);
    __m128 t = _mm_or_ps(_mm_cmp_ss(vv, vm, _CMP_GT_OQ), _mm_cmp_ss(vv, vv, _CMP_UNORD_Q));
    *take = _mm_movemask_ps(t) & 1;
    return _mm_cvtss_f32(_mm_blendv_ps(vm, vv, t));
}
#include "pool_generic.h"
#include "pool_avx2_impl.h"
#undef FC_T
#undef FC_SFX
#undef FC_SFXA
#undef VT
#undef VL
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VSET1
#undef VZERO
#undef VMAX
#undef VADD
#undef VMUL
#undef VOR
#undef VBLEND
#undef VGT
#undef VUNORD
#undef VEVEN
#undef VODD
#undef VFIX
#undef VCODE
#undef VSTORE_IDX
#undef VMLOAD
#undef VUNORD2
#undef VMLOAD_FROM1
#undef VNEGINF0
#undef VMSTORE
#undef VMSTORE_IDX
#undef VINTERLEAVE
#undef VAND
#undef VANDNOT
#undef VTRUE
#undef VALLZERO
#undef VCEQ
#undef VCODES_TAB
#undef VLANES_GE
#undef TAP
#undef MAX_FOLD

/* ---- float64: 4 lanes ---------------------------------------------------- */
#define FC_T double
#define FC_SFX(name) name##_f64
#define FC_SFXA(name) name##_f64__avx2
#define VT __m256d
#define VL 4
#define VLOAD _mm256_loadu_pd
#define VSTORE _mm256_storeu_pd
#define VSTREAM _mm256_stream_pd
#define VSET1 _mm256_set1_pd
#define VZERO _mm256_setzero_pd
#define VMAX _mm256_max_pd
#define VADD _mm256_add_pd
#define VMUL _mm256_mul_pd
#define VOR _mm256_or_pd
#define VBLEND _mm256_blendv_pd
#define VGT(a, b) _mm256_cmp_pd((a), (b), _CMP_GT_OQ)
#define VUNORD(a) _mm256_cmp_pd((a), (a), _CMP_UNORD_Q)
#define VEVEN(a, b) _mm256_unpacklo_pd((a), (b))
#define VODD(a, b) _mm256_unpackhi_pd((a), (b))
#define VFIX(v) _mm256_permute4x64_pd((v), 0xD8)
#define VCODE(off) _mm256_castsi256_pd(_mm256_set1_epi64x((int64_t)(off)))
static inline void store_idx_f64(int64_t *dst, __m256d code, int64_t base, int64_t S) {
    __m256i b = _mm256_add_epi64(_mm256_set1_epi64x(base), _mm256_set_epi64x(3 * S, 2 * S, S, 0));
    _mm256_storeu_si256((__m256i *)dst, _mm256_add_epi64(_mm256_castpd_si256(code), b));
}
#define VSTORE_IDX store_idx_f64
#define VMASK64(k) _mm256_cmpgt_epi64(_mm256_set1_epi64x((int64_t)(k)), _mm256_setr_epi64x(0, 1, 2, 3))
#define VMLOAD(p, k) _mm256_maskload_pd((p), VMASK64(k))
#define VUNORD2(a, b) _mm256_cmp_pd((a), (b), _CMP_UNORD_Q)
#define VMLOAD_FROM1(p) _mm256_maskload_pd((p), _mm256_setr_epi64x(0, -1, -1, -1))
#define VNEGINF0() _mm256_setr_pd(-INFINITY, 0, 0, 0)
#define VMSTORE(p, v, k) do {                                                          \
        double vb_[4];                                                                 \
        int64_t i_, k_ = (k);                                                          \
        _mm256_storeu_pd(vb_, (v));                                                    \
        for (i_ = 0; i_ < k_ && i_ < 4; i_++) (p)[i_] = vb_[i_];                       \
    } while (0)
static inline void mstore_idx_f64(int64_t *dst, __m256d code, int64_t base, int64_t S, int64_t k) {
    __m256i b = _mm256_add_epi64(_mm256_set1_epi64x(base), _mm256_set_epi64x(3 * S, 2 * S, S, 0));
    int64_t v[4], i;
    _mm256_storeu_si256((__m256i *)v, _mm256_add_epi64(_mm256_castpd_si256(code), b));
    for (i = 0; i < k && i < 4; i++) dst[i] = v[i];
}
#define VMSTORE_IDX mstore_idx_f64
#define VAND _mm256_and_pd
#define VANDNOT _mm256_andnot_pd
#define VTRUE() _mm256_castsi256_pd(_mm256_set1_epi64x(-1))
#define VALLZERO(v) _mm256_testz_pd((v), (v))
#define VCEQ(code, k) _mm256_castsi256_pd(_mm256_cmpeq_epi64((code), _mm256_set1_epi64x((int64_t)(k))))
static inline __m256i max3_codes_f64(const int64_t *ind, int64_t B, __m256i *hib) {
    (void)hib;
    return _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)ind),
                            _mm256_add_epi64(_mm256_set1_epi64x(B), _mm256_setr_epi64x(0, 2, 4, 6)));
}
#define VCODES_TAB(ind, tab, hib) _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(ind)), \
                                                   _mm256_loadu_si256((const __m256i *)(tab)))
#define VLANES_GE(start, done) _mm256_castsi256_pd(_mm256_cmpgt_epi64(                   \
        _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 2, 3), _mm256_set1_epi64x((start) - (done))), \
        _mm256_set1_epi64x(-1)))
#define VINTERLEAVE(a, b, lo, hi) do {                                  \
        __m256d ul_ = _mm256_unpacklo_pd((a), (b)), uh_ = _mm256_unpackhi_pd((a), (b)); \
        (lo) = _mm256_permute2f128_pd(ul_, uh_, 0x20);                  \
        (hi) = _mm256_permute2f128_pd(ul_, uh_, 0x31);                  \
    } while (0)
static inline double scalar_max_f64(double m, double v, int *take) {
    __m128d vm = _mm_set_sd(m), vv = _mm_set_sd(v);
    __m128d t = _mm_or_pd(_mm_cmp_sd(vv, vm, _CMP_GT_OQ), _mm_cmp_sd(vv, vv, _CMP_UNORD_Q));
    *take = _mm_movemask_pd(t) & 1;
    return _mm_cvtsd_f64(_mm_blendv_pd(vm, vv, t));
}
#include "pool_generic.h"
#include "pool_avx2_impl.h"
