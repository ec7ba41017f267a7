/* Internal helpers shared by the kernel files: checked arithmetic, OpenMP
 * shims, floating-point mode, and the ISA-specific kernels' declarations. */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include "fastconv.h"
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define FC_OMP_THREAD_NUM() omp_get_thread_num()
#else
#define FC_OMP_THREAD_NUM() 0
#endif

#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Status-propagating checked arithmetic on int64. */
#define FC_MUL(a, b, out) do { if (fc_checked_mul((a), (b), (out))) return FC_ERR_OVERFLOW; } while (0)
#define FC_ADD(a, b, out) do { if (fc_checked_add((a), (b), (out))) return FC_ERR_OVERFLOW; } while (0)

/* Floor division for possibly negative numerators (positive divisor). */
static inline int64_t fc_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Floating-point mode for a kernel call: flush denormals to zero (FTZ) and
 * treat denormal inputs as zero (DAZ) so subnormal data cannot slow the
 * kernels down; restored on exit.  MXCSR is per thread, so call inside each
 * OpenMP parallel region. */
typedef struct { unsigned int saved; } fc_fpmode;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
static inline fc_fpmode fc_fpmode_enter(void) {
    fc_fpmode m; m.saved = _mm_getcsr();
    _mm_setcsr(m.saved | 0x8040u);  /* FTZ (bit 15) | DAZ (bit 6) */
    return m;
}
static inline void fc_fpmode_leave(fc_fpmode m) { _mm_setcsr(m.saved); }
#else
static inline fc_fpmode fc_fpmode_enter(void) { fc_fpmode m; m.saved = 0; return m; }
static inline void fc_fpmode_leave(fc_fpmode m) { (void)m; }
#endif

/* Number of threads to use for `work` independent items. */
static inline int fc_threads_for(const fc_context *ctx, int64_t work) {
    int t = ctx->num_threads < 1 ? 1 : ctx->num_threads;
    if (work < t) t = (int)(work < 1 ? 1 : work);
    return t;
}

/* Workspace: every kernel allocation goes through fc_ws_alloc so the bytes
 * can be reported: ctx->workspace_bytes accumulates the bytes requested in
 * one call (per-thread buffers summed).  The cost model must equal it. */
void *fc_ws_alloc(fc_context *ctx, int64_t bytes);
void fc_ws_free(fc_context *ctx, void *p, int64_t bytes);

#if defined(__x86_64__) || defined(_M_X64)
#define FC_HAVE_X86 1
#else
#define FC_HAVE_X86 0
#endif

#endif /* FC_INTERNAL_H */
