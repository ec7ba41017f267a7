/* Machine measurement: floating-point peak and streaming-copy bandwidth.
 *
 * fc_measure_fma_peak runs independent multiply-add chains held in
 * registers (no memory traffic) on each of ctx->num_threads threads for
 * about `seconds` of wall time and reports the sum of the per-thread rates,
 * each over that thread's CPU time (the rate while it runs).  The ISA
 * follows ctx->isa: AVX-512 or AVX2+FMA vectors, or the baseline's SSE2 vectors (a
 * multiply and an add, no FMA: that is the baseline machine's real peak).
 *
 * fc_measure_copy_bandwidth copies a buffer much larger than the last-level
 * cache with memcpy, each thread its own slice, and reports bytes read plus
 * bytes written per second (the STREAM "copy" convention). */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 199309L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "fc_internal.h"
#include "fc_peak.h"
#include <time.h>

static double fc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time consumed by the calling thread.  Rates are work / this thread's
 * CPU time, i.e. the rate while the thread actually runs: a measurement made
 * while other processes share the cores would otherwise cache a peak far
 * below the machine's (the interval itself is still wall-clock).  Falls back
 * to wall time where the clock is unavailable. */
static double fc_thread_cpu(void) {
#ifdef CLOCK_THREAD_CPUTIME_ID
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
    return -1.0;
}

/* Seconds to divide the work by: thread CPU time when meaningful, else wall. */
static double fc_busy_seconds(double cpu0, double cpu1, double wall) {
    double busy = cpu1 - cpu0;
    if (cpu0 < 0 || cpu1 < 0 || !(busy > 0) || busy > wall) return wall;
    return busy;
}

/* ---- baseline loops (SSE2 on x86-64 via GNU vector extensions) ---------- */
#define FC_PEAK_CHAINS 12
#if defined(__GNUC__) || defined(__clang__)
typedef float fc_v4f __attribute__((vector_size(16)));
typedef double fc_v2d __attribute__((vector_size(16)));
#define FC_F32_LANES 4
#define FC_F64_LANES 2
#else
typedef float fc_v4f;
typedef double fc_v2d;
#define FC_F32_LANES 1
#define FC_F64_LANES 1
#endif

const int64_t fc_peak_f32_flops_per_iter__baseline = FC_PEAK_CHAINS * FC_F32_LANES * 2;
const int64_t fc_peak_f64_flops_per_iter__baseline = FC_PEAK_CHAINS * FC_F64_LANES * 2;

/* acc = acc * m + a: one multiply and one add per lane, independent chains. */
#define FC_PEAK_BODY(T, S, m, a)                                                 \
    T c[FC_PEAK_CHAINS];                                                        \
    for (int j = 0; j < FC_PEAK_CHAINS; j++) c[j] = (m) * 0 + (S)(0.1 + 0.01 * j);\
    for (int64_t i = 0; i < iters; i++) {                                       \
        c[0] = c[0] * (m) + (a); c[1] = c[1] * (m) + (a);                       \
        c[2] = c[2] * (m) + (a); c[3] = c[3] * (m) + (a);                       \
        c[4] = c[4] * (m) + (a); c[5] = c[5] * (m) + (a);                       \
        c[6] = c[6] * (m) + (a); c[7] = c[7] * (m) + (a);                       \
        c[8] = c[8] * (m) + (a); c[9] = c[9] * (m) + (a);                       \
        c[10] = c[10] * (m) + (a); c[11] = c[11] * (m) + (a);                   \
    }                                                                           \
    T s = c[0];                                                                 \
    for (int j = 1; j < FC_PEAK_CHAINS; j++) s = s + c[j];

#if defined(__GNUC__) || defined(__clang__)
#define FC_NOINLINE __attribute__((noinline))
#else
#define FC_NOINLINE
#endif

FC_NOINLINE double fc_peak_kernel_f32__baseline(int64_t iters) {
    const fc_v4f m = (fc_v4f){0} + 0.999999f, a = (fc_v4f){0} + 1e-6f;
    FC_PEAK_BODY(fc_v4f, float, m, a)
#if FC_F32_LANES > 1
    return (double)s[0] + s[FC_F32_LANES - 1];
#else
    return s;
#endif
}

FC_NOINLINE double fc_peak_kernel_f64__baseline(int64_t iters) {
    const fc_v2d m = (fc_v2d){0} + 0.999999, a = (fc_v2d){0} + 1e-6;
    FC_PEAK_BODY(fc_v2d, double, m, a)
#if FC_F64_LANES > 1
    return s[0] + s[FC_F64_LANES - 1];
#else
    return s;
#endif
}

typedef double (*fc_peak_kernel)(int64_t);

/* Sink so the kernels' results are used. */
static volatile double fc_peak_sink;

fc_status fc_measure_fma_peak(fc_context *ctx, int dtype_size, double seconds, double *gflops) {
    fc_peak_kernel kern;
    int64_t flops_per_iter;
    int t;
    if (!ctx || !gflops) return FC_ERR_ARG;
    *gflops = 0;
    if (dtype_size != 4 && dtype_size != 8) return FC_ERR_ARG;
    if (!(seconds > 0) || seconds > 3600) return FC_ERR_ARG;
    /* the widest vectors of the level in use */
#define FC_PEAK_PICK(isa_)                                                               \
    do {                                                                                 \
        kern = dtype_size == 4 ? fc_peak_kernel_f32__##isa_ : fc_peak_kernel_f64__##isa_; \
        flops_per_iter = dtype_size == 4 ? fc_peak_f32_flops_per_iter__##isa_              \
                                         : fc_peak_f64_flops_per_iter__##isa_;             \
    } while (0)
    FC_PEAK_PICK(baseline);
#ifdef FC_WITH_AVX2
    if (ctx->isa >= FC_ISA_AVX2) FC_PEAK_PICK(avx2);
#endif
#ifdef FC_WITH_AVX512
    if (ctx->isa >= FC_ISA_AVX512) FC_PEAK_PICK(avx512);
#endif
#undef FC_PEAK_PICK
    t = ctx->num_threads < 1 ? 1 : ctx->num_threads;
    if (t > 1024) return FC_ERR_ARG;
    double rates[1024];
    for (int i = 0; i < t; i++) rates[i] = 0;

#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        int id = FC_OMP_THREAD_NUM();
        fc_fpmode fp = fc_fpmode_enter();
        /* Calibrate a batch of ~1 ms so the clock is read rarely, then run
         * whole batches until `seconds` have passed. */
        int64_t batch = 1 << 14;
        double sink = 0, t0, el;
        for (;;) {
            t0 = fc_now();
            sink += kern(batch);
            el = fc_now() - t0;
            if (el > 1e-3 || batch > ((int64_t)1 << 40)) break;
            batch *= 2;
        }
        int64_t done = 0;
        double c0 = fc_thread_cpu();
        t0 = fc_now();
        do {
            sink += kern(batch);
            done += batch;
            el = fc_now() - t0;
        } while (el < seconds);
        el = fc_busy_seconds(c0, fc_thread_cpu(), el);
        rates[id] = (double)done * (double)flops_per_iter / el * 1e-9;
        fc_fpmode_leave(fp);
#ifdef _OPENMP
#pragma omp atomic
#endif
        fc_peak_sink += sink;
    }
    double sum = 0;
    for (int i = 0; i < t; i++) sum += rates[i];
    *gflops = sum;
    return FC_OK;
}

fc_status fc_measure_copy_bandwidth(fc_context *ctx, int64_t bytes, double seconds, double *gbps) {
    int t;
    char *src, *dst;
    if (!ctx || !gbps) return FC_ERR_ARG;
    *gbps = 0;
    if (bytes < 4096 || !(seconds > 0) || seconds > 3600) return FC_ERR_ARG;
    t = ctx->num_threads < 1 ? 1 : ctx->num_threads;
    if (t > 1024) return FC_ERR_ARG;
    src = (char *)fc_ws_alloc(ctx, bytes);
    dst = (char *)fc_ws_alloc(ctx, bytes);
    if (!src || !dst) {
        fc_ws_free(ctx, src, bytes);
        fc_ws_free(ctx, dst, bytes);
        return FC_ERR_NOMEM;
    }
    double rates[1024];
    for (int i = 0; i < t; i++) rates[i] = 0;
    /* Each thread owns one 64-byte aligned slice of both buffers. */
    int64_t slice = (bytes / t) & ~(int64_t)63;
    if (slice < 64) slice = 64;

#ifdef _OPENMP
#pragma omp parallel num_threads(t)
#endif
    {
        int id = FC_OMP_THREAD_NUM();
        int64_t off = (int64_t)id * slice;
        int64_t len = (id == t - 1) ? bytes - off : slice;
        if (len > 0) {
            /* First touch by the owning thread; also faults every page in. */
            memset(src + off, (int)(id + 1), (size_t)len);
            memset(dst + off, 0, (size_t)len);
            memcpy(dst + off, src + off, (size_t)len);  /* warm-up */
        }
#ifdef _OPENMP
#pragma omp barrier
#endif
        if (len > 0) {
            int64_t reps = 0;
            double c0 = fc_thread_cpu();
            double t0 = fc_now(), el;
            do {
                memcpy(dst + off, src + off, (size_t)len);
                reps++;
                el = fc_now() - t0;
            } while (el < seconds);
            el = fc_busy_seconds(c0, fc_thread_cpu(), el);
            rates[id] = 2.0 * (double)len * (double)reps / el * 1e-9;
        }
    }
    fc_peak_sink += dst[bytes - 1];
    double sum = 0;
    for (int i = 0; i < t; i++) sum += rates[i];
    *gbps = sum;
    fc_ws_free(ctx, src, bytes);
    fc_ws_free(ctx, dst, bytes);
    return FC_OK;
}
