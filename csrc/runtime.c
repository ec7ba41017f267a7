/* Runtime: CPU feature detection, build information, checked arithmetic,
 * shape validation and workspace accounting. */
#include "fc_internal.h"
#include <stdio.h>

int fc_cpu_has_avx2_fma(void) {
#if FC_HAVE_X86 && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* AVX-512 F+BW+VL (with AVX2+FMA, which the AVX-512 files also use) and an
 * OS that saves the opmask and zmm state: XCR0 bits 1,2 (SSE, AVX) and 5,6,7
 * (opmask, ZMM_Hi256, Hi16_ZMM), read with XGETBV once OSXSAVE is set. */
int fc_cpu_has_avx512(void) {
#if FC_HAVE_X86 && (defined(__GNUC__) || defined(__clang__))
    unsigned int a, b, c, d, lo, hi;
    if (!fc_cpu_has_avx2_fma()) return 0;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl")))
        return 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 27))) return 0;                      /* OSXSAVE */
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)b; (void)d; (void)hi;
    return (lo & 0xE6u) == 0xE6u;
#else
    return 0;
#endif
}

int fc_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_openmp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#ifndef FC_BUILD_FLAGS
#define FC_BUILD_FLAGS "unknown"
#endif

const char *fc_build_info(void) {
#if defined(__clang__)
    return "clang " __clang_version__ "; flags: " FC_BUILD_FLAGS;
#elif defined(__GNUC__)
    return "gcc " __VERSION__ "; flags: " FC_BUILD_FLAGS;
#else
    return "unknown compiler; flags: " FC_BUILD_FLAGS;
#endif
}

int fc_checked_mul(int64_t a, int64_t b, int64_t *out) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_mul_overflow(a, b, out) ? 1 : 0;
#else
    if (a != 0 && b != 0) {
        if ((a > 0 && b > 0 && a > INT64_MAX / b) || (a < 0 && b < 0 && a < INT64_MAX / b) ||
            (a > 0 && b < 0 && b < INT64_MIN / a) || (a < 0 && b > 0 && a < INT64_MIN / b))
            return 1;
    }
    *out = a * b;
    return 0;
#endif
}

int fc_checked_add(int64_t a, int64_t b, int64_t *out) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_add_overflow(a, b, out) ? 1 : 0;
#else
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return 1;
    *out = a + b;
    return 0;
#endif
}

/* Product of four sizes with overflow check. */
static fc_status prod4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t *out) {
    int64_t t;
    FC_MUL(a, b, &t); FC_MUL(t, c, &t); FC_MUL(t, d, &t);
    *out = t;
    return FC_OK;
}

/* Kernels compute tap coordinates as o*stride - pad + t*dil; this checks
 * that every such value (and in + 2*pad) fits in int64.  Taps that land
 * outside [0, in) are padding and the kernels skip them. */
static fc_status check_axis(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
    int64_t last, span, t;
    if (in < 0 || out < 0 || k < 1 || stride < 1 || dil < 1 || pad < 0) return FC_ERR_SHAPE;
    FC_MUL(k - 1, dil, &span);
    FC_MUL(out > 0 ? out - 1 : 0, stride, &last);
    FC_ADD(last, span, &last);
    FC_ADD(last, 1, &last);
    FC_ADD(in, pad, &t);
    FC_ADD(t, pad, &t);
    return FC_OK;
}

fc_status fc_conv_check(const fc_conv_shape *s) {
    int64_t t;
    fc_status st;
    if (!s) return FC_ERR_ARG;
    if (s->n < 0 || s->c_in < 0 || s->c_out < 0 || s->groups < 1) return FC_ERR_SHAPE;
    if (s->c_in % s->groups || s->c_out % s->groups) return FC_ERR_SHAPE;
    if ((st = check_axis(s->h_in, s->h_out, s->kh, s->stride_h, s->pad_h, s->dil_h))) return st;
    if ((st = check_axis(s->w_in, s->w_out, s->kw, s->stride_w, s->pad_w, s->dil_w))) return st;
    if ((st = prod4(s->n, s->c_in, s->h_in, s->w_in, &t))) return st;
    if ((st = prod4(s->n, s->c_out, s->h_out, s->w_out, &t))) return st;
    if ((st = prod4(s->c_out, s->c_in / s->groups, s->kh, s->kw, &t))) return st;
    /* byte sizes must fit too */
    if ((st = prod4(s->n, s->c_in, s->h_in, s->w_in, &t)) || fc_checked_mul(t, 8, &t)) return FC_ERR_OVERFLOW;
    if ((st = prod4(s->n, s->c_out, s->h_out, s->w_out, &t)) || fc_checked_mul(t, 8, &t)) return FC_ERR_OVERFLOW;
    return FC_OK;
}

fc_status fc_pool_check(const fc_pool_shape *s) {
    int64_t t;
    fc_status st;
    if (!s) return FC_ERR_ARG;
    if (s->n < 0 || s->c < 0) return FC_ERR_SHAPE;
    if ((st = check_axis(s->h_in, s->h_out, s->kh, s->stride_h, s->pad_h, s->dil_h))) return st;
    if ((st = check_axis(s->w_in, s->w_out, s->kw, s->stride_w, s->pad_w, s->dil_w))) return st;
    if (s->divisor_override < 0) return FC_ERR_SHAPE;
    if ((st = prod4(s->n, s->c, s->h_in, s->w_in, &t)) || fc_checked_mul(t, 8, &t)) return FC_ERR_OVERFLOW;
    if ((st = prod4(s->n, s->c, s->h_out, s->w_out, &t)) || fc_checked_mul(t, 8, &t)) return FC_ERR_OVERFLOW;
    return FC_OK;
}

void *fc_ws_alloc(fc_context *ctx, int64_t bytes) {
    void *p;
    int64_t rounded;
    if (bytes < 0 || (uint64_t)bytes > (uint64_t)SIZE_MAX - 64) return NULL;
    /* 64-byte alignment for full-width vector loads; the accounting counts
     * the bytes asked for, which is what the cost model reports. */
    rounded = (bytes + 63) & ~(int64_t)63;
    if (rounded == 0) rounded = 64;
    p = aligned_alloc(64, (size_t)rounded);
    if (p && ctx) {
#ifdef _OPENMP
#pragma omp atomic
#endif
        ctx->workspace_bytes += bytes;
    }
    return p;
}

void fc_ws_free(fc_context *ctx, void *p, int64_t bytes) {
    (void)ctx; (void)bytes;
    free(p);
}
