/* Machine-measurement loops shared between peak.c (baseline, driver) and
 * peak_avx2.c / peak_avx512.c (vector loops). */
#ifndef FC_PEAK_H
#define FC_PEAK_H

#include <stdint.h>

/* Each runs `iters` iterations of a register-resident multiply-add loop with
 * independent accumulator chains and returns a value derived from every
 * accumulator (so the loop cannot be optimised away).  The number of
 * floating-point operations performed is iters * fc_peak_*_flops_per_iter. */
double fc_peak_kernel_f32__baseline(int64_t iters);
double fc_peak_kernel_f64__baseline(int64_t iters);
extern const int64_t fc_peak_f32_flops_per_iter__baseline;
extern const int64_t fc_peak_f64_flops_per_iter__baseline;

#ifdef FC_WITH_AVX2
double fc_peak_kernel_f32__avx2(int64_t iters);
double fc_peak_kernel_f64__avx2(int64_t iters);
extern const int64_t fc_peak_f32_flops_per_iter__avx2;
extern const int64_t fc_peak_f64_flops_per_iter__avx2;
#endif

#ifdef FC_WITH_AVX512
double fc_peak_kernel_f32__avx512(int64_t iters);
double fc_peak_kernel_f64__avx512(int64_t iters);
extern const int64_t fc_peak_f32_flops_per_iter__avx512;
extern const int64_t fc_peak_f64_flops_per_iter__avx512;
#endif

#endif /* FC_PEAK_H */
