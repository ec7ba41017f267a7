/* im2col + BLAS GEMM convolution: forward, grad input (GEMM + col2im, also
 * the transposed convolution) and grad weight (im2col + GEMM).
 *
 * Layout.  For group g the column matrix of a chunk of output positions is
 * row-major col[k][p] with k = (c, i, j) over the group's input channels and
 * kernel taps, p over the chunk's output positions.  Read by the Fortran
 * BLAS that is the column-major P x K matrix with ld = P, so no transposes
 * are ever materialised:
 *   forward      Y (P x cog)  = C (P x K) * W (K x cog)         gemm N,N
 *   grad input   C (P x Kb)   = G (P x cog) * Wblk^T             gemm N,T  -> col2im
 *   grad weight  GWblk (Kb x cog) += C^T (Kb x P) * G (P x cog)  gemm T,N
 * where W is the PyTorch weight (cog x K row-major = K x cog column-major).
 * Grad input with stride 1 and few output channels per group instead runs as
 * the forward convolution of grad_out with the flipped, transposed weight
 * ("forward form", see im2col_plan_make).  The 1x1 stride-1 unpadded case
 * uses x (or writes grad_x) in place of the column matrix: no workspace.
 *
 * Chunking (see im2col_plan).  A chunk is either a run of output rows of one
 * image or, when a whole image is smaller than the target, several whole
 * images (their output / grad_out are then staged in a packed buffer).  The
 * geometry depends only on the shape, the dtype and ctx->workspace_limit,
 * never on the thread count, and every output element is produced by the
 * same sequence of BLAS calls whichever thread runs them: results are
 * bit-identical for any number of threads.  grad weight and grad input split
 * the group's input channels into fixed blocks ("tasks"); each task owns its
 * slice of the result and reduces over chunks in a fixed order, so no
 * cross-thread reduction exists at all.
 *
 * Workspace.  Each thread gets its own buffers (allocated up front through
 * fc_ws_alloc); threads_used * per_thread_bytes stays under the limit except
 * that one chunk is never smaller than one output row of one channel block:
 * a limit below that is exceeded rather than refused.  A limit too small for
 * one buffer per thread reduces the number of threads instead.
 *
 * Threads.  OpenMP over tasks; each thread calls the BLAS on its own chunk,
 * so the BLAS must run single-threaded inside those regions (the Python
 * side limits OpenBLAS to one thread around the call, see
 * fastconv/_blas_threads.py).
 */
#include "fc_internal.h"
#include <limits.h>

/* Chunk targets (elements of the column buffer and output positions). */
#define FC_I2C_TARGET_BYTES (1 << 20)   /* col buffer stays in L2 while GEMM packs it */
#define FC_I2C_P_MIN 256                /* enough columns to amortise packing W */
#define FC_I2C_MIN_TASKS 4              /* backward: split channels into >= this many tasks */
#define FC_I2C_KB_MIN 64                /* ... but keep each task's K at least this */
#define FC_I2C_FWD_FORM_MAX_COG 128     /* grad input in forward form below this cog */
#define FC_I2C_MAX_THREADS 256          /* per-thread buffer table size */

typedef struct {
    int pass;              /* 0 fwd, 1 grad input, 2 grad weight */
    int identity;          /* 1x1, stride 1, no padding: x is its own column matrix */
    int trivial;           /* nothing for the BLAS to do (an empty dimension) */
    int64_t cig, cog, khkw, K;
    int64_t cb, nkb, Kb;   /* channel block (backward), number of blocks, block K */
    int64_t HW;            /* output positions per image */
    int64_t R, nb;         /* rows per chunk (nb == 1) or images per chunk (R == h_out) */
    int64_t Pc;            /* max output positions per chunk */
    int64_t rchunks, nchunks;
    int64_t ntasks;
    int64_t col_elems, stage_elems;   /* per-thread buffers */
    int64_t per_thread_bytes;
    int threads;           /* threads used */
    /* grad input in "forward form" (stride 1): a forward im2col convolution of
     * grad_out with the flipped, transposed weight; `fwd` is that conv's shape */
    int fwd_form;
    int64_t wrot_bytes;    /* the rearranged weight, shared by all threads */
    fc_conv_shape fwd;
} im2col_plan;

/* Chunk geometry for `s` (already validated) under `limit` bytes. */
static fc_status im2col_plan_core(const fc_context *ctx, const fc_conv_shape *s, int elem,
                                  int pass, int64_t limit, im2col_plan *p) {
    int64_t B = FC_MIN((int64_t)FC_I2C_TARGET_BYTES, limit);
    int64_t t, pcap, nsplit, per;
    memset(p, 0, sizeof *p);
    p->pass = pass;
    p->cig = s->c_in / s->groups;
    p->cog = s->c_out / s->groups;
    FC_MUL(s->kh, s->kw, &p->khkw);
    FC_MUL(p->cig, p->khkw, &p->K);
    FC_MUL(s->h_out, s->w_out, &p->HW);
    p->identity = s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 &&
                  s->pad_h == 0 && s->pad_w == 0 && s->h_in == s->h_out && s->w_in == s->w_out;
    p->trivial = s->n == 0 || p->cig == 0 || p->cog == 0 || p->HW == 0;
    p->threads = 1;
    if (p->trivial) return FC_OK;
    /* Fortran BLAS takes int sizes and leading dimensions. */
    if (p->K > INT_MAX || p->cog > INT_MAX || p->HW > INT_MAX) return FC_ERR_UNSUPPORTED;

    /* Channel blocks: forward keeps the whole K; backward splits it into a
     * fixed number of blocks so groups=1 layers still have parallel tasks. */
    if (pass == 0) {
        p->cb = p->cig;
    } else {
        nsplit = (FC_I2C_MIN_TASKS + s->groups - 1) / s->groups;
        nsplit = FC_MIN(nsplit, FC_MAX((int64_t)1, p->K / FC_I2C_KB_MIN));
        nsplit = FC_MIN(nsplit, p->cig);
        nsplit = FC_MAX(nsplit, (int64_t)1);
        p->cb = (p->cig + nsplit - 1) / nsplit;
        /* keep >= P_MIN columns within the target by shrinking the block */
        if (p->cb * p->khkw * FC_I2C_P_MIN * elem > B)
            p->cb = FC_MAX((int64_t)1, FC_MIN(p->cb, B / (p->khkw * FC_I2C_P_MIN * elem)));
    }
    p->nkb = (p->cig + p->cb - 1) / p->cb;
    p->Kb = p->cb * p->khkw;

    /* Output positions per chunk: the target, raised to P_MIN when the limit allows. */
    pcap = B / (p->Kb * elem);
    pcap = FC_MAX(pcap, FC_MIN((int64_t)FC_I2C_P_MIN, limit / (p->Kb * elem)));
    pcap = FC_MAX(pcap, (int64_t)1);
    p->nb = 1;
    if (pcap >= 2 * p->HW && s->n > 1) {
        /* several whole images per chunk; their output/grad_out is staged too */
        t = FC_MAX(B, FC_MIN((int64_t)FC_I2C_P_MIN * (p->Kb + p->cog) * elem, limit));
        t = t / ((p->Kb + p->cog) * elem) / p->HW;
        p->nb = FC_MIN(t, s->n);
        if (p->nb < 2) p->nb = 1;
    }
    if (p->nb > 1) {
        p->R = s->h_out;
    } else {
        p->R = FC_MIN(FC_MAX(pcap / s->w_out, (int64_t)1), s->h_out);
    }
    FC_MUL(p->nb * p->R, s->w_out, &p->Pc);
    if (p->Pc > INT_MAX) return FC_ERR_UNSUPPORTED;
    p->rchunks = (s->h_out + p->R - 1) / p->R;
    p->nchunks = p->nb > 1 ? (s->n + p->nb - 1) / p->nb : s->n * p->rchunks;

    if (pass == 0) {
        FC_MUL(s->groups, p->nchunks, &p->ntasks);
    } else {
        FC_MUL(s->groups, p->nkb, &p->ntasks);
    }
    /* per-thread buffers: the column chunk (not needed when x is its own
     * column matrix and the chunk lies in one image) and, for multi-image
     * chunks, the staged output / grad_out */
    p->col_elems = (p->identity && p->nb == 1) ? 0 : p->Kb * p->Pc;
    p->stage_elems = p->nb > 1 ? p->cog * p->Pc : 0;
    FC_ADD(p->col_elems, p->stage_elems, &per);
    FC_MUL(per, elem, &p->per_thread_bytes);

    t = ctx->num_threads < 1 ? 1 : ctx->num_threads;
    t = FC_MIN(t, p->ntasks);
    if (p->per_thread_bytes > 0) t = FC_MIN(t, FC_MAX((int64_t)1, limit / p->per_thread_bytes));
    t = FC_MIN(t, (int64_t)FC_I2C_MAX_THREADS);
    p->threads = (int)FC_MAX(t, (int64_t)1);
    return FC_OK;
}

/* The plan for one pass.  Grad input with stride 1 (and not the 1x1
 * identity, which needs no columns at all) is computed in forward form:
 *   gx = conv(gy, W'), W'[c][o][i][j] = W[o][c][kh-1-i][kw-1-j],
 *   stride 1, same dilation, padding dil*(k-1) - pad (possibly negative),
 * a GEMM with the long reduction (cog*kh*kw) and no col2im scatter.  It is
 * used when cog < FC_I2C_FWD_FORM_MAX_COG (col2im's GEMM, reducing over cog
 * only, is weak there: measured +10-14% at 32-64 channels, -10% at 128-256),
 * the rearranged weight takes at most half the limit and one row of columns
 * fits beside it; the column chunks then share the rest. */
static fc_status im2col_plan_make(const fc_context *ctx, const fc_conv_shape *s, int elem,
                                  int pass, im2col_plan *p) {
    int64_t limit = ctx->workspace_limit < 0 ? 0 : ctx->workspace_limit;
    int64_t wbytes, row;
    fc_conv_shape f;
    im2col_plan q;
    fc_status st = fc_conv_check(s);
    if (st) return st;
    if ((elem != 4 && elem != 8) || pass < 0 || pass > 2) return FC_ERR_ARG;
    if ((st = im2col_plan_core(ctx, s, elem, pass, limit, p))) return st;
    /* measured: forward form wins while grad_out has few channels per group
     * (col2im's GEMM then reduces over only cog terms), col2im wins above */
    if (pass != 1 || p->trivial || p->identity || s->stride_h != 1 || s->stride_w != 1 ||
        p->cog >= FC_I2C_FWD_FORM_MAX_COG)
        return FC_OK;
    FC_MUL(s->c_out, p->K, &wbytes);
    FC_MUL(wbytes, elem, &wbytes);
    /* the weight copy takes at most half the limit, and one row of columns fits
     * beside it (this form never exceeds the limit; col2im's floor applies) */
    if (fc_checked_mul(p->cog * p->khkw, s->w_in * elem, &row) || fc_checked_add(row, wbytes, &row))
        return FC_OK;
    if (wbytes > limit / 2 || row > limit) return FC_OK;
    f.n = s->n;
    f.c_in = s->c_out; f.h_in = s->h_out; f.w_in = s->w_out;
    f.c_out = s->c_in; f.kh = s->kh; f.kw = s->kw;
    f.h_out = s->h_in; f.w_out = s->w_in;
    f.stride_h = 1; f.stride_w = 1;
    f.pad_h = s->dil_h * (s->kh - 1) - s->pad_h;
    f.pad_w = s->dil_w * (s->kw - 1) - s->pad_w;
    f.dil_h = s->dil_h; f.dil_w = s->dil_w;
    f.groups = s->groups;
    /* an empty grad_input (h_in or w_in 0) or int-sized limits: keep the col2im plan */
    if (im2col_plan_core(ctx, &f, elem, 0, limit - wbytes, &q) != FC_OK || q.trivial)
        return FC_OK;
    *p = q;
    p->fwd_form = 1;
    p->wrot_bytes = wbytes;
    p->fwd = f;
    return FC_OK;
}

fc_status fc_conv2d_im2col_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                     int elem_size, int pass, int64_t *bytes) {
    im2col_plan p;
    fc_status st;
    if (!ctx || !s || !bytes) return FC_ERR_ARG;
    *bytes = 0;
    st = im2col_plan_make(ctx, s, elem_size, pass, &p);
    if (st) return st;
    if (!p.trivial) {
        FC_MUL((int64_t)p.threads, p.per_thread_bytes, bytes);
        FC_ADD(*bytes, p.wrot_bytes, bytes);
    }
    return FC_OK;
}

/* Output range [lo, hi) of o for which o*stride + off lies in [0, n). */
static inline void valid_range(int64_t off, int64_t stride, int64_t n, int64_t nout,
                               int64_t *lo, int64_t *hi) {
    int64_t a, b;
    /* o*stride + off >= 0  <=>  o >= ceil(-off / stride) */
    a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    /* o*stride + off <= n-1 <=> o <= floor((n-1-off) / stride) */
    b = (n - 1 - off) < 0 ? -1 : (n - 1 - off) / stride;
    if (a > nout) a = nout;
    b = FC_MIN(b + 1, nout);
    if (b < a) b = a;
    *lo = a; *hi = b;
}

#define FC_I2C_T float
#define FC_I2C_SFX f32
#define FC_I2C_GEMM sgemm
#include "conv_im2col_tmpl.h"
#undef FC_I2C_T
#undef FC_I2C_SFX
#undef FC_I2C_GEMM

#define FC_I2C_T double
#define FC_I2C_SFX f64
#define FC_I2C_GEMM dgemm
#include "conv_im2col_tmpl.h"
#undef FC_I2C_T
#undef FC_I2C_SFX
#undef FC_I2C_GEMM
