/* Dilated convolution by space-to-batch decomposition.
 *
 * Along one axis, with stride s, dilation d and g = gcd(s, d), output o reads
 * padded-input positions o*s + a*d (a = kernel tap).  Write o = r + P*q with
 * P = d/g and r in [0, P).  Since s*P = d*(s/g),
 *
 *     o*s + a*d = s*r + d*((s/g)*q + a),
 *
 * so the outputs of residue class r read only the padded positions
 * s*r + d*m (m = 0, 1, ...), and on that sub-sequence they form a *dense*
 * (dilation 1) convolution with stride s/g.  Every (stride, dilation) pair
 * therefore decomposes exactly; d | s gives P = 1 (a strided subsample),
 * s = 1 gives the classic P = d interleaved sub-images.
 *
 * Three ways of running the dense convolutions of the sub-images:
 *   - row kernels (AVX2 path; one-row layers such as WaveNet's run as H = 1,
 *     >= 8 channels per group; conv_dilated_row.h): the classes are
 *     computed in place, a vector of consecutive outputs holding VL classes
 *     side by side and tap b one load at offset b*dil; no copies, taps on
 *     padding skipped by segments of the row.
 *   - GEMM path (a BLAS is installed and every group has >= 8 input and
 *     output channels; see "the GEMM path" below): the sub-images are never
 *     materialised; tap (a, b) of all of them is one BLAS GEMM over a
 *     column-shifted copy of the input, skipping padding rows and columns.
 *   - sub-image path (otherwise: depthwise / few channels, no BLAS),
 *     described next.
 *
 * In 2-D the P_h x P_w sub-images of every image are copied (zero padding
 * materialised) into one workspace tensor stacked along the batch axis,
 * (n*P_h*P_w, c_in, hs, ws), all padded to the largest class (q_h = ceil(
 * h_out/P_h) outputs per class); one dense convolution through the public
 * dispatcher (FC_ALGO_DIRECT: the best dense kernel for the ISA) computes all
 * classes; the valid outputs are interleaved back (batch-to-space).  Classes
 * with fewer outputs compute a few junk outputs that are never copied back.
 *
 * Backward:
 *   grad input, stride 1 with padding <= dil*(k-1): the forward convolution
 *     of grad_out with the kernel flipped and its channel axes swapped
 *     (fc_dil_gin_as_fwd), run through the forward sub-image path, so only
 *     real input positions are computed.  Otherwise:
 *   grad input: grad_out is split the same way into sub-images with the junk
 *     outputs set to zero; the dense grad input gives the gradient of every
 *     sub-image element; each padded-input position belongs to at most one
 *     (class, m) pair (s*r mod d takes distinct values for r in [0, P)), so
 *     the input gradient is a pure gather, zero where no sub-image reads.
 *   grad weight: the dense grad weight over the stacked sub-images (junk
 *     outputs zero) sums exactly the products of the dilated grad weight.
 *
 * Workspace (all through fc_ws_alloc so the reported bytes are exact):
 *   forward     sub-inputs + sub-outputs (+ nested dense forward's, 0 for direct)
 *   grad input  sub-grad_out + sub-grad_input (+ nested); as a forward:
 *               rearranged weights + the forward's sub-inputs/sub-outputs
 *   grad weight sub-inputs + sub-grad_out (+ nested)
 * A trivial configuration (n, c_in, c_out, h_out or w_out zero) or an empty
 * result allocates nothing.  fastconv/_workspace.py mirrors this exactly.
 *
 * Threads: the copies write every element from exactly one thread and the
 * dense kernels are thread-count independent, so results are too.
 */
#include "fc_internal.h"
#include "conv_dilated_row.h"

/* Decomposition of one convolution. */
typedef struct {
    int64_t ph, pw;       /* classes per axis: dil / gcd(stride, dil) */
    int64_t qh, qw;       /* outputs per class (largest class) */
    int64_t hs, ws;       /* sub-image size */
    int64_t b;            /* n * ph * pw stacked sub-images */
    int64_t sub_in;       /* elements of the stacked sub-inputs  (b, c_in, hs, ws) */
    int64_t sub_out;      /* elements of the stacked sub-outputs (b, c_out, qh, qw) */
    fc_conv_shape dense;  /* the dense convolution over the stacked sub-images */
} fc_dil_plan;

/* The dense algorithm run on the sub-images. */
#define FC_DIL_INNER FC_ALGO_DIRECT

static int64_t fc_gcd(int64_t a, int64_t b) {
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

/* 1 when the configuration needs no dense call at all (the result is bias,
 * or zero): nothing is allocated then. */
static int fc_dil_trivial(const fc_conv_shape *s) {
    return s->n == 0 || s->c_in == 0 || s->c_out == 0 || s->h_out == 0 || s->w_out == 0;
}

/* Plan one axis: classes p, outputs per class q, sub-image size m, dense stride. */
static fc_status fc_dil_axis(int64_t out, int64_t k, int64_t stride, int64_t dil,
                             int64_t *p, int64_t *q, int64_t *m, int64_t *dstride) {
    const int64_t g = fc_gcd(stride, dil);
    int64_t t;
    *p = dil / g;
    *dstride = stride / g;
    *q = out / *p + (out % *p != 0);
    /* m = (q-1)*dstride + k; the largest padded position a class reads,
     * stride*(p-1) + dil*(m-1), must fit in int64 too. */
    FC_MUL(*q - 1, *dstride, &t);
    FC_ADD(t, k, m);
    FC_MUL(*m - 1, dil, &t);
    {
        int64_t u;
        FC_MUL(*p - 1, stride, &u);
        FC_ADD(t, u, &t);
    }
    return FC_OK;
}

static fc_status fc_dil_make_plan(const fc_conv_shape *s, fc_dil_plan *pl) {
    fc_status st;
    int64_t t, sh2, sw2;
    if ((st = fc_dil_axis(s->h_out, s->kh, s->stride_h, s->dil_h, &pl->ph, &pl->qh, &pl->hs, &sh2)))
        return st;
    if ((st = fc_dil_axis(s->w_out, s->kw, s->stride_w, s->dil_w, &pl->pw, &pl->qw, &pl->ws, &sw2)))
        return st;
    FC_MUL(s->n, pl->ph, &t);
    FC_MUL(t, pl->pw, &pl->b);
    FC_MUL(pl->b, s->c_in, &t);
    FC_MUL(t, pl->hs, &t);
    FC_MUL(t, pl->ws, &pl->sub_in);
    FC_MUL(pl->b, s->c_out, &t);
    FC_MUL(t, pl->qh, &t);
    FC_MUL(t, pl->qw, &pl->sub_out);
    /* byte sizes must fit too */
    FC_MUL(pl->sub_in, 8, &t);
    FC_MUL(pl->sub_out, 8, &t);
    FC_ADD(pl->sub_in * 8, pl->sub_out * 8, &t);
    pl->dense.n = pl->b;
    pl->dense.c_in = s->c_in;
    pl->dense.h_in = pl->hs;
    pl->dense.w_in = pl->ws;
    pl->dense.c_out = s->c_out;
    pl->dense.kh = s->kh;
    pl->dense.kw = s->kw;
    pl->dense.h_out = pl->qh;
    pl->dense.w_out = pl->qw;
    pl->dense.stride_h = sh2;
    pl->dense.stride_w = sw2;
    pl->dense.pad_h = 0;
    pl->dense.pad_w = 0;
    pl->dense.dil_h = 1;
    pl->dense.dil_w = 1;
    pl->dense.groups = s->groups;
    return fc_conv_check(&pl->dense);
}

/* Elements of the result of `pass` (0 y, 1 grad x, 2 grad w). */
static int64_t fc_dil_result_elems(const fc_conv_shape *s, int pass) {
    /* fc_conv_check has proved these products fit. */
    if (pass == 0) return s->n * s->c_out * s->h_out * s->w_out;
    if (pass == 1) return s->n * s->c_in * s->h_in * s->w_in;
    return s->c_out * (s->c_in / s->groups) * s->kh * s->kw;
}

/* Sub-image positions read by the valid outputs of class r along one axis
 * (out outputs, p classes, dense stride ds, kernel k): the class has
 * ceil((out - r) / p) valid outputs; 0 when it has none. */
static inline int64_t fc_dil_extent(int64_t out, int64_t p, int64_t r, int64_t ds, int64_t k) {
    const int64_t nv = r < out ? (out - r + p - 1) / p : 0;
    return nv > 0 ? (nv - 1) * ds + k : 0;
}

/* Index of the class (r) and sub-image position (m) holding padded position
 * `p` along one axis, or 0 when no class reads it. */
static inline int fc_dil_locate(int64_t p, int64_t nclass, int64_t stride, int64_t dil,
                                int64_t size, int64_t *r, int64_t *m) {
    int64_t c;
    for (c = 0; c < nclass; c++) {
        const int64_t t = p - stride * c;
        if (t < 0) break;
        if (t % dil == 0 && t / dil < size) { *r = c; *m = t / dil; return 1; }
    }
    return 0;
}

/* ---- the GEMM path ---------------------------------------------------------
 * With a BLAS and enough channels per group, the dense convolutions of all
 * sub-images are computed at once without materialising the sub-images:
 * tap (a, b) of every sub-image (rh, rw) multiplies the same weight matrix
 * W[:, :, a, b] with the sub-images shifted by (a, b), and on the
 * interleaved input that shift is the row offset a*dil_h and the column
 * offset b*dil_w.  So, per tap:
 *
 *   y[co, i, :] += W_ab[co, ci] . X_b[ci, i*sh + a*dh - ph, :]     (one GEMM)
 *
 * where X_b[ci, h, j] = x[ci, h, j*sw + b*dw - pw] (zero outside x) is the
 * column-shifted input, one copy per kernel column b.  For a stride
 * sh > 1 the rows of X_b are stored grouped by h mod sh, so that the rows
 * one tap reads (all congruent to a*dh - ph mod sh) are contiguous.  Output
 * rows whose tap lands on the top/bottom padding are skipped: the GEMM runs
 * only over the rows the tap really reads, so atrous layers with large
 * padding do fewer multiplications than the dense count.
 *
 * Work is split into fixed chunks of output (or input) positions that depend
 * only on the shape; each chunk is owned by one thread and its elements are
 * summed by the same BLAS calls in the same order whatever the thread count,
 * so results are bit-identical for any number of threads.  The BLAS must be
 * single-threaded inside the OpenMP region (the Python side limits it).
 *
 * Padding columns are skipped too: X_b holds only the band of output
 * columns [lo_b, lo_b + C_b) whose tap b reads a real input column.  A
 * kernel column whose band is the whole row accumulates straight into y;
 * a partial band accumulates into its own (c_out, h_out, C_b) temporary,
 * added into y afterwards (grad_out is copied into that band layout for
 * the backward passes).  Every element is summed in a fixed order: bias,
 * full-band columns, then partial-band columns, each over kernel rows.
 *
 * A single input row with unit column stride (1-D convolutions such as
 * WaveNet's, run as H = 1) needs no copies at all: X_b is then x itself
 * offset by b*dw - pw, with the channel stride of x; every tap then reads
 * at most one output row, so grad_out bands are read in place too, and the
 * grad-input GEMMs accumulate straight into gx (chunks of gx columns, the
 * kernel columns in order), with no G_b and no scatter.
 *
 * Workspace: the column-shifted copies of one image (sum over b of
 * c_in*sh*umax*C_b; for grad input they hold the gradients G_b), the band
 * temporaries (sum over partial b of c_out*h_out*C_b) and one weight-sized
 * buffer (packed weights, or the grad-weight accumulator).  A viewed
 * single-row input has no copies, and band temporaries only forward.
 *
 * Row paths (one input row, kh == 1, no row padding, unit column stride:
 * WaveNet-like layers run as H = 1): every pass instead works on chunks of
 * columns, copying the chunk's kw column-shifted slices of its GEMM operand
 * (x, or grad_out for grad input) into a per-thread buffer that stays in
 * cache, so one GEMM per chunk and group with K = kw * channels produces
 * the chunk (the BLAS then packs from L2 instead of from kw * channels
 * strided rows in memory).  Grad weight sums fixed consecutive runs of
 * chunks into min(chunks, FC_DIL_ROW_PARTS) partial accumulators, added in
 * order, so the result does not depend on the thread count.  Workspace:
 * threads used x one chunk copy, plus the weight buffer (grad weight: one
 * accumulator per part). */
#include <limits.h>

#define FC_DIL_GEMM_MIN_C 8        /* channels per group for the GEMM path */
#define FC_DIL_CHUNK_ELEMS 131072  /* target cig * chunk positions (BLAS repacks per call) */
#define FC_DIL_ROW_ELEMS 65536     /* row path: target elements of one chunk's stacked copy */
#define FC_DIL_ROW_PARTS 4         /* row path grad weight: partial sums, added in order */

/* One kernel column of the GEMM path; see fc_dil_col_compute. */
typedef struct { int64_t lo, cb, cs, xoff, toff, rlo, rhi; int full; } fc_dil_col;

/* Columns with a cached description (fc_dil_gemm_plan.cols); wider kernels
 * recompute it (O(kw) per query). */
#define FC_DIL_MAXCOLS 16

typedef struct {
    int64_t cig, cog, khkw;
    int64_t umax;        /* rows per stride class: ceil(h_in / sh) */
    int64_t hw;          /* output positions per channel: h_out * w_out */
    int64_t pc;          /* positions per chunk */
    int64_t x_elems;     /* sum over kernel columns b of c_in * sh * umax * C_b */
    int64_t t_elems;     /* sum over partial columns of c_out * h_out * C_b */
    int64_t w_elems;     /* c_out * cig * kh * kw */
    int64_t nfull;       /* kernel columns whose band is the whole output row */
    int view;            /* h_in == 1 and stride_w == 1: X_b is a view of x, never copied */
    /* Row paths (view, kh == 1, no row padding): chunked stacked copies.
     * Forward: chunks of rpc output columns, copies of kw * c_in * rpc;
     * grad input: chunks of rpci input columns, copies of kw * c_out * rpci. */
    int row, rowi;
    int64_t rpc, rnch, r_elems, rpci, rnchi, ri_elems;
    fc_dil_col cols[FC_DIL_MAXCOLS];  /* the first kernel columns, described once */
} fc_dil_gemm_plan;

/* Range [lo, hi) of positions l whose coordinate off + step*l - pad lands
 * inside [0, in), clipped to [0, size). */
static inline void fc_dil_range(int64_t off, int64_t step, int64_t pad, int64_t in,
                                int64_t size, int64_t *lo, int64_t *hi) {
    int64_t a = -fc_floordiv(off - pad, step);        /* off + step*l - pad >= 0 */
    int64_t b = -fc_floordiv(off - pad - in, step);   /* off + step*l - pad < in */
    if (a < 0) a = 0;
    if (b > size) b = size;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* Kernel column b: its band of output columns [lo, lo + cb) (the columns
 * whose tap reads a real input column), the channel stride of its
 * column-shifted copy X_b (cs = sh*umax*cb), and the offsets of X_b in the
 * copies buffer and of its partial-band output in the temporaries buffer.
 * (Widening near-full bands to the whole row with zero columns, to stack
 * them into one longer-K GEMM without temporaries, measured slower: the
 * extra multiplications cost more than the temporaries.)  [rlo, rhi) is
 * the band's real range, equal to [lo, lo + cb). */

/* The band of kernel column b. */
static inline void fc_dil_band(const fc_conv_shape *s, int64_t b, int64_t *lo, int64_t *hi) {
    fc_dil_range(b * s->dil_w, s->stride_w, s->pad_w, s->w_in, s->w_out, lo, hi);
}

static void fc_dil_col_compute(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t b,
                               fc_dil_col *c) {
    int64_t k, lo, hi;
    c->xoff = c->toff = 0;
    for (k = 0; k <= b; k++) {
        fc_dil_band(s, k, &lo, &hi);
        c->rlo = c->lo = lo;
        c->rhi = hi;
        c->cb = hi - lo;
        c->cs = s->stride_h * gp->umax * c->cb;
        c->full = c->cb == s->w_out;
        if (k < b) {
            c->xoff += s->c_in * c->cs;
            if (!c->full) c->toff += s->c_out * s->h_out * c->cb;
        }
    }
}

static inline void fc_dil_col_info(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t b,
                                   fc_dil_col *c) {
    if (b < FC_DIL_MAXCOLS && b < s->kw) *c = gp->cols[b];
    else fc_dil_col_compute(s, gp, b, c);
}

/* Kernel columns are processed in "units": a run of consecutive full-band
 * columns when groups == 1 (their copies X_b are adjacent with the same
 * channel stride, so the run is one GEMM operand with K = run * c_in), else
 * a single column (always when `stack` is 0: the copies are views of x).
 * Returns the end of the unit starting at column b and fills *col with b's
 * description. */
static int64_t fc_dil_unit(const fc_conv_shape *s, const fc_dil_gemm_plan *gp, int64_t b,
                           int stack, fc_dil_col *col) {
    int64_t e = b + 1;
    fc_dil_col_info(s, gp, b, col);
    if (stack && col->full && s->groups == 1) {
        for (; e < s->kw; e++) {
            fc_dil_col nx;
            fc_dil_col_info(s, gp, e, &nx);
            if (!nx.full) break;
        }
    }
    return e;
}

/* Chunks of a row path over `span` columns with `chans` stacked channels
 * per kernel column: columns per chunk, chunks, elements of one copy. */
static int fc_dil_row_plan(const fc_conv_shape *s, int view, int64_t chans, int64_t span,
                           int64_t *rpc, int64_t *nch, int64_t *elems) {
    int64_t t, target;
    *rpc = *nch = *elems = 0;
    if (!view || s->kh != 1 || s->pad_h != 0 || s->h_out != 1 || span < 1 ||
        fc_checked_mul(s->kw, chans, &t) || t > FC_DIL_ROW_ELEMS / 64)
        return 0;
    target = FC_MAX((int64_t)64, FC_MIN((int64_t)4096, FC_DIL_ROW_ELEMS / t));
    *nch = (span + target - 1) / target;
    *rpc = (span + *nch - 1) / *nch;
    *elems = t * *rpc;
    return 1;
}

/* 1 when the GEMM path serves this convolution (mirrored by _workspace.py). */
static int fc_dil_gemm_plan_make(const fc_context *ctx, const fc_conv_shape *s, int elem_size,
                                 fc_dil_gemm_plan *gp) {
    int64_t t, b, lo, hi, cs_max;
    if (elem_size == 4 ? !ctx->sgemm : !ctx->dgemm) return 0;
    gp->cig = s->c_in / s->groups;
    gp->cog = s->c_out / s->groups;
    if (gp->cig < FC_DIL_GEMM_MIN_C || gp->cog < FC_DIL_GEMM_MIN_C) return 0;
    gp->khkw = s->kh * s->kw;
    gp->umax = s->h_in / s->stride_h + (s->h_in % s->stride_h != 0);
    if (fc_checked_mul(s->stride_h, gp->umax, &t) || fc_checked_mul(t, s->w_out, &cs_max)) return 0;
    gp->hw = s->h_out * s->w_out;  /* proved to fit by fc_conv_check */
    /* every BLAS dimension and leading dimension is an int */
    if (cs_max > INT_MAX || gp->hw > INT_MAX || s->w_in > INT_MAX || gp->cog > INT_MAX ||
        s->kw * gp->cig > INT_MAX)  /* fits int64: a factor of the weight size */
        return 0;
    gp->view = s->h_in == 1 && s->stride_w == 1;
    gp->x_elems = gp->t_elems = gp->nfull = 0;
    for (b = 0; b < s->kw; b++) {
        int64_t cb;
        fc_dil_band(s, b, &lo, &hi);
        cb = hi - lo;
        /* c_in * cs_b <= c_in * cs_max and c_out * hw fit: both are bounded
         * by byte sizes checked below / in fc_conv_check. */
        if (fc_checked_mul(s->c_in, s->stride_h * gp->umax * cb, &t) ||
            fc_checked_add(gp->x_elems, t, &gp->x_elems))
            return 0;
        if (cb == s->w_out) {
            gp->nfull++;
        } else if (fc_checked_mul(s->c_out, s->h_out * cb, &t) ||
                   fc_checked_add(gp->t_elems, t, &gp->t_elems)) {
            return 0;
        }
    }
    gp->w_elems = s->c_out * gp->cig * gp->khkw;
    if (fc_checked_add(gp->x_elems, gp->t_elems, &t) || fc_checked_add(t, gp->w_elems, &t) ||
        fc_checked_mul(t, 8, &t))
        return 0;
    {
        /* Balanced chunks of about the target size; shape-dependent only. */
        const int64_t target = FC_MAX((int64_t)512, FC_MIN((int64_t)8192, FC_DIL_CHUNK_ELEMS / gp->cig));
        const int64_t span = FC_MAX(gp->hw, cs_max), nch = (span + target - 1) / target;
        gp->pc = nch > 0 ? (span + nch - 1) / nch : 1;
    }
    for (b = 0; b < s->kw && b < FC_DIL_MAXCOLS; b++) fc_dil_col_compute(s, gp, b, &gp->cols[b]);
    /* Row paths (WaveNet-like 1-D layers): chunks of columns, each copying
     * its kw column-shifted slices of the GEMM operand (x forward, grad_out
     * for grad input) into one per-thread buffer small enough for the cache
     * (zero where a tap lands outside), so one GEMM with K = kw * channels
     * per group writes the chunk: no accumulation passes over the result and
     * an L2-resident operand for the BLAS to pack. */
    gp->row = fc_dil_row_plan(s, gp->view, s->c_in, s->w_out, &gp->rpc, &gp->rnch, &gp->r_elems);
    gp->rowi = fc_dil_row_plan(s, gp->view, s->c_out, s->w_in, &gp->rpci, &gp->rnchi, &gp->ri_elems);
    return 1;
}

/* Output rows [*i0, *i1) whose tap at offset a*dil - pad lands inside [0, in). */
static inline void fc_dil_tap_rows(int64_t in, int64_t out, int64_t stride, int64_t off,
                                   int64_t *i0, int64_t *i1) {
    int64_t lo = -fc_floordiv(off, stride);                  /* i*stride + off >= 0 */
    int64_t hi = fc_floordiv(in - 1 - off, stride) + 1;      /* i*stride + off <= in-1 */
    if (lo < 0) lo = 0;
    if (hi > out) hi = out;
    if (hi < lo) hi = lo;
    *i0 = lo;
    *i1 = hi;
}

/* Grad input on the sub-image path: stride 1 with padding <= dil*(k-1) on
 * both axes runs as the forward convolution fc_dil_gin_fwd_shape (grad_out
 * in, kernel flipped, channel axes swapped, padding dil*(k-1) - pad), whose
 * output is exactly the input: see fc_dil_grad_input_fwd_. */
static int fc_dil_gin_as_fwd(const fc_conv_shape *s) {
    return s->stride_h == 1 && s->stride_w == 1 && s->pad_h <= s->dil_h * (s->kh - 1) &&
           s->pad_w <= s->dil_w * (s->kw - 1);
}

static void fc_dil_gin_fwd_shape(const fc_conv_shape *s, fc_conv_shape *f) {
    *f = *s;
    f->c_in = s->c_out;
    f->c_out = s->c_in;
    f->h_in = s->h_out;
    f->w_in = s->w_out;
    f->h_out = s->h_in;
    f->w_out = s->w_in;
    f->pad_h = s->dil_h * (s->kh - 1) - s->pad_h;
    f->pad_w = s->dil_w * (s->kw - 1) - s->pad_w;
}

/* 1 when the sub-image path (stacked sub-images through the dense direct
 * dispatcher: AVX-512/AVX2 register-blocked kernels) is preferred to the
 * GEMM path for `pass` (0 y, 1 grad x, 2 grad w).  Large dense sub-images
 * run faster there than as per-tap GEMMs plus their copies; small ones
 * (high rates) stay on the GEMM path, which also skips the taps on padding.
 * Thresholds (outputs per sub-image), measured at 1 thread on DeepLab ASPP
 * layers (128-256 channels, 3x3): forward wins from 289 (rate 2 at 33x33,
 * rates 2-4 at 65x65) and loses at 81 (rate 4 at 33x33); grad input, run
 * as a forward (fc_dil_gin_as_fwd), wins from 121 (rate 6 at 65x65); the
 * dense grad weight only wins at 1089 (rate 2 at 65x65).  Mirrored by
 * _workspace.py. */
#define FC_DIL_SPLIT_MIN_PIX_FWD 256
#define FC_DIL_SPLIT_MIN_PIX_GIN 100
#define FC_DIL_SPLIT_MIN_PIX_GW 1024
static int fc_dil_prefer_split(const fc_context *ctx, const fc_conv_shape *s, int pass) {
    int64_t qh, qw;
    if (ctx->isa < FC_ISA_AVX2 || s->stride_h != 1 || s->stride_w != 1) return 0;
    if (s->c_out / s->groups < 16) return 0;
    if (pass == 1 && (s->c_in / s->groups < 16 || !fc_dil_gin_as_fwd(s))) return 0;
    qh = (s->h_out + s->dil_h - 1) / s->dil_h;   /* stride 1: dil classes per axis */
    qw = (s->w_out + s->dil_w - 1) / s->dil_w;
    return qh * qw >= (pass == 0 ? FC_DIL_SPLIT_MIN_PIX_FWD   /* both <= h_out, w_out: no overflow */
                       : pass == 1 ? FC_DIL_SPLIT_MIN_PIX_GIN : FC_DIL_SPLIT_MIN_PIX_GW);
}

fc_status fc_conv2d_dilated_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                      int elem_size, int pass, int64_t *bytes) {
    fc_status st;
    fc_dil_plan pl;
    fc_dil_gemm_plan gp;
    int64_t elems, nested = 0, t;
    if (!ctx || !s || !bytes) return FC_ERR_ARG;
    *bytes = 0;
    if ((st = fc_conv_check(s))) return st;
    if (elem_size != 4 && elem_size != 8) return FC_ERR_ARG;
    if (pass < 0 || pass > 2) return FC_ERR_ARG;
    if (fc_dil_result_elems(s, pass) == 0 || fc_dil_trivial(s)) return FC_OK;
    if (fc_drk_plan(ctx, s, elem_size, pass, &t)) {   /* row kernels (conv_dilated_row.h) */
        FC_MUL(t, elem_size, bytes);
        return FC_OK;
    }
    if (!fc_dil_prefer_split(ctx, s, pass) && fc_dil_gemm_plan_make(ctx, s, elem_size, &gp)) {
        /* a viewed single-row input needs no copies, and its backward passes
         * read grad_out rows in place (no band temporaries) */
        if (pass == 0 && gp.row) {   /* one chunk buffer per thread used */
            FC_MUL(gp.r_elems, fc_threads_for(ctx, gp.rnch), &t);
        } else if (pass == 1 && gp.rowi) {
            FC_MUL(gp.ri_elems, fc_threads_for(ctx, gp.rnchi), &t);
        } else if (pass == 2 && gp.row) {   /* per thread copies + np accumulators */
            const int64_t np = FC_MIN(gp.rnch, (int64_t)FC_DIL_ROW_PARTS);
            int64_t u;
            FC_MUL(gp.r_elems, fc_threads_for(ctx, np), &t);
            FC_MUL(gp.w_elems, np - 1, &u);   /* the weight buffer is added below */
            FC_ADD(t, u, &t);
        } else {
            FC_ADD(gp.view ? 0 : gp.x_elems, (gp.view && pass != 0) ? 0 : gp.t_elems, &t);
        }
        FC_ADD(t, gp.w_elems, &t);
        FC_MUL(t, elem_size, bytes);
        return FC_OK;
    }
    if (pass == 1 && fc_dil_gin_as_fwd(s)) {   /* weights + split gy + split gx */
        fc_conv_shape f;
        fc_dil_gin_fwd_shape(s, &f);
        if ((st = fc_dil_make_plan(&f, &pl))) return st;
        if ((st = fc_conv2d_workspace(ctx, &pl.dense, FC_DIL_INNER, elem_size, 0, &nested)))
            return st;
        FC_ADD(pl.sub_in, pl.sub_out, &elems);
        FC_ADD(elems, fc_dil_result_elems(s, 2), &elems);
        FC_MUL(elems, elem_size, &t);
        FC_ADD(t, nested, bytes);
        return FC_OK;
    }
    if ((st = fc_dil_make_plan(s, &pl))) return st;
    if (pass == 0 || pass == 2) elems = pl.sub_in + pl.sub_out;  /* x and y (or grad_out) */
    else elems = pl.sub_out + pl.sub_in;                         /* grad_out and grad x */
    if ((st = fc_conv2d_workspace(ctx, &pl.dense, FC_DIL_INNER, elem_size, pass, &nested)))
        return st;
    FC_MUL(elems, elem_size, &t);
    FC_ADD(t, nested, bytes);
    return FC_OK;
}

/* Workspace buffers a kernel takes together: all of them or none.  Sizes
 * in bytes; a kernel fills n and bytes[], then reads p[] after take. */
#define FC_DIL_MAX_BUFS 3
typedef struct {
    int n;
    int64_t bytes[FC_DIL_MAX_BUFS];
    void *p[FC_DIL_MAX_BUFS];
} fc_dil_bufs;

static void fc_dil_bufs_give(fc_context *ctx, fc_dil_bufs *b) {
    int i;
    for (i = b->n - 1; i >= 0; i--) {
        fc_ws_free(ctx, b->p[i], b->bytes[i]);
        b->p[i] = NULL;
    }
}

/* Allocates every buffer through fc_ws_alloc; on a failure frees the ones it
 * got and returns FC_ERR_NOMEM. */
static fc_status fc_dil_bufs_take(fc_context *ctx, fc_dil_bufs *b) {
    int i, ok = 1;
    for (i = 0; i < b->n; i++) {
        b->p[i] = ok ? fc_ws_alloc(ctx, b->bytes[i]) : NULL;
        if (!b->p[i]) ok = 0;
    }
    if (ok) return FC_OK;
    fc_dil_bufs_give(ctx, b);
    return FC_ERR_NOMEM;
}

/* The space-to-batch path's plan and buffers: p[0] the split input
 * (pl->sub_in elements), p[1] the split output (pl->sub_out). */
static fc_status fc_dil_split_bufs(fc_context *ctx, const fc_conv_shape *s, int elem,
                                   fc_dil_plan *pl, fc_dil_bufs *mem) {
    fc_status st = fc_dil_make_plan(s, pl);
    if (st) return st;
    mem->n = 2;
    mem->bytes[0] = pl->sub_in * elem;
    mem->bytes[1] = pl->sub_out * elem;
    return fc_dil_bufs_take(ctx, mem);
}

#define T float
#define SFX f32
#define FC_DIL_GEMM_FN(ctx) ((ctx)->sgemm)
#include "conv_dilated_impl.h"
#undef FC_DIL_GEMM_FN
#undef T
#undef SFX

#define T double
#define SFX f64
#define FC_DIL_GEMM_FN(ctx) ((ctx)->dgemm)
#include "conv_dilated_impl.h"
#undef FC_DIL_GEMM_FN
#undef T
#undef SFX
