/*
 * fastconv C API.
 *
 * Every entry point takes raw pointers to C-contiguous NCHW buffers, 64-bit
 * sizes in a shape struct, and an fc_context (threads, ISA, BLAS, workspace
 * limit).  Each returns an fc_status; none touches Python objects, none
 * asserts on user input.  The Python side validates arguments and computes
 * output shapes; the C side re-checks what it relies on (sizes, overflow) and
 * fails with a status instead of reading out of bounds.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fc_status {
    FC_OK = 0,
    FC_ERR_SHAPE = 1,       /* inconsistent or non-positive sizes */
    FC_ERR_OVERFLOW = 2,    /* a size computation would overflow int64 */
    FC_ERR_NOMEM = 3,       /* workspace allocation failed */
    FC_ERR_INDEX = 4,       /* max-pool index outside its window */
    FC_ERR_ARG = 5,         /* bad enum / null pointer / unsupported combo */
    FC_ERR_UNSUPPORTED = 6, /* algorithm cannot serve this configuration */
    FC_NOT_HANDLED = 100    /* internal: a specialised kernel declines; never returned to Python */
} fc_status;

typedef enum fc_isa {
    FC_ISA_BASELINE = 0,
    FC_ISA_AVX2 = 1,        /* AVX2 + FMA */
    FC_ISA_AVX512 = 2       /* AVX-512 F/BW/VL (+ AVX2/FMA); implies every AVX2 path */
} fc_isa;

typedef enum fc_conv_algo {
    FC_ALGO_DIRECT = 0,
    FC_ALGO_IM2COL = 1,
    FC_ALGO_DILATED = 2
} fc_conv_algo;

/* Fortran BLAS gemm, as exported by scipy.linalg.cython_blas. */
typedef void (*fc_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                            float *alpha, float *a, int *lda, float *b, int *ldb,
                            float *beta, float *c, int *ldc);
typedef void (*fc_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                            double *alpha, double *a, int *lda, double *b, int *ldb,
                            double *beta, double *c, int *ldc);

typedef struct fc_context {
    int num_threads;          /* >= 1: OpenMP threads for this call */
    int isa;                  /* fc_isa chosen at import (or forced) */
    int64_t workspace_limit;  /* bytes; bounds chunked workspaces (im2col) */
    fc_sgemm_fn sgemm;        /* may be NULL when no BLAS is available */
    fc_dgemm_fn dgemm;
    int64_t workspace_bytes;  /* out: bytes of workspace this call allocated (summed) */
} fc_context;

/*
 * A convolution as seen from its forward pass:
 *   x (n, c_in, h_in, w_in) * w (c_out, c_in/groups, kh, kw) -> y (n, c_out, h_out, w_out)
 * h_out/w_out are given (Python applies PyTorch's formula); C checks that
 * every tap of every output stays inside the padded input.
 * Transposed convolution uses the same struct with x/y swapped: its input is
 * this struct's y and its output this struct's x.
 */
typedef struct fc_conv_shape {
    int64_t n, c_in, h_in, w_in;
    int64_t c_out, kh, kw;
    int64_t h_out, w_out;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;        /* top / left padding */
    int64_t dil_h, dil_w;
    int64_t groups;
} fc_conv_shape;

typedef struct fc_pool_shape {
    int64_t n, c, h_in, w_in;     /* n*c planes of h_in x w_in */
    int64_t h_out, w_out;
    int64_t kh, kw;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;         /* max pooling only; 1 for avg */
    int count_include_pad;        /* avg only */
    int64_t divisor_override;     /* avg only; 0 = none */
} fc_pool_shape;

/* ---- runtime ----------------------------------------------------------- */
int fc_cpu_has_avx2_fma(void);        /* what the CPU supports */
int fc_cpu_has_avx512(void);          /* AVX-512 F/BW/VL + AVX2/FMA, zmm/opmask state saved by the OS */
int fc_openmp_enabled(void);          /* 1 when built with OpenMP */
int fc_openmp_max_threads(void);
const char *fc_build_info(void);      /* compiler and flags */

/* Checked shape helpers (exposed so tests can probe them past 2^31/2^32). */
int fc_checked_mul(int64_t a, int64_t b, int64_t *out);   /* 0 ok, 1 overflow */
int fc_checked_add(int64_t a, int64_t b, int64_t *out);
fc_status fc_conv_check(const fc_conv_shape *s);
fc_status fc_pool_check(const fc_pool_shape *s);

/* Convolution workspace in bytes that `algo` will allocate for this shape. */
fc_status fc_conv2d_workspace(const fc_context *ctx, const fc_conv_shape *s, int algo,
                              int elem_size, int pass, int64_t *bytes);
/* pass: 0 forward, 1 grad input, 2 grad weight */

/* ---- convolution --------------------------------------------------------- */
/* bias may be NULL. */
fc_status fc_conv2d_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                        const float *x, const float *w, const float *bias, float *y);
fc_status fc_conv2d_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                        const double *x, const double *w, const double *bias, double *y);

/* grad_x = conv2d's input gradient; also the transposed convolution forward. */
fc_status fc_conv2d_grad_input_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                                   const float *grad_y, const float *w, float *grad_x);
fc_status fc_conv2d_grad_input_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                                   const double *grad_y, const double *w, double *grad_x);

fc_status fc_conv2d_grad_weight_f32(fc_context *ctx, const fc_conv_shape *s, int algo,
                                    const float *grad_y, const float *x, float *grad_w);
fc_status fc_conv2d_grad_weight_f64(fc_context *ctx, const fc_conv_shape *s, int algo,
                                    const double *grad_y, const double *x, double *grad_w);

/* grad_b[c] = sum over n, h, w of grad_y[n, c, h, w] (length c_out). */
fc_status fc_conv2d_grad_bias_f32(fc_context *ctx, const fc_conv_shape *s,
                                  const float *grad_y, float *grad_b);
fc_status fc_conv2d_grad_bias_f64(fc_context *ctx, const fc_conv_shape *s,
                                  const double *grad_y, double *grad_b);

/* Adds bias[c] to every element of channel c of y (n, c, hw). */
fc_status fc_add_channel_bias_f32(fc_context *ctx, int64_t n, int64_t c, int64_t hw,
                                  const float *bias, float *y);
fc_status fc_add_channel_bias_f64(fc_context *ctx, int64_t n, int64_t c, int64_t hw,
                                  const double *bias, double *y);

/* ---- pooling ------------------------------------------------------------- */
/* indices may be NULL; when given, int64 offsets into each h_in*w_in plane. */
fc_status fc_max_pool2d_f32(fc_context *ctx, const fc_pool_shape *s,
                            const float *x, float *y, int64_t *indices);
fc_status fc_max_pool2d_f64(fc_context *ctx, const fc_pool_shape *s,
                            const double *x, double *y, int64_t *indices);

/* Exactly one of indices / x is used: indices when non-NULL (each validated
 * to lie in its own window, else FC_ERR_INDEX), otherwise the argmax is
 * recomputed from x.  grad_x is fully overwritten. */
fc_status fc_max_pool2d_backward_f32(fc_context *ctx, const fc_pool_shape *s,
                                     const float *grad_y, const int64_t *indices,
                                     const float *x, float *grad_x);
fc_status fc_max_pool2d_backward_f64(fc_context *ctx, const fc_pool_shape *s,
                                     const double *grad_y, const int64_t *indices,
                                     const double *x, double *grad_x);

fc_status fc_avg_pool2d_f32(fc_context *ctx, const fc_pool_shape *s, const float *x, float *y);
fc_status fc_avg_pool2d_f64(fc_context *ctx, const fc_pool_shape *s, const double *x, double *y);

fc_status fc_avg_pool2d_backward_f32(fc_context *ctx, const fc_pool_shape *s,
                                     const float *grad_y, float *grad_x);
fc_status fc_avg_pool2d_backward_f64(fc_context *ctx, const fc_pool_shape *s,
                                     const double *grad_y, double *grad_x);

/* ---- machine measurement ------------------------------------------------- */
/* Runs a register-resident FMA loop for about `seconds` on `threads` threads;
 * writes achieved GFLOP/s. dtype_size 4 or 8. */
fc_status fc_measure_fma_peak(fc_context *ctx, int dtype_size, double seconds, double *gflops);
/* Copies a `bytes` buffer repeatedly; writes achieved GB/s (read + write). */
fc_status fc_measure_copy_bandwidth(fc_context *ctx, int64_t bytes, double seconds, double *gbps);

#ifdef __cplusplus
}
#endif
#endif /* FASTCONV_H */
