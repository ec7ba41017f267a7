/* Grad input through the forward direct convolution.
 *
 * gx[ih] = sum over taps kh and outputs oh with oh*s + kh*d - p = ih of
 * w[kh] * gy[oh].  Split the input positions by phase r = ih mod s: for
 * ih = r + m*s the taps that reach it are kh = kmax, kmax - s', ... (s' =
 * s/gcd(s,d)), reading gy[m + c0 + j*d'] for the j-th of them (d' =
 * d/gcd(s,d), c0 = (r + p - kmax*d)/s).  So each phase (r_h, r_w) is a
 * stride-1 forward convolution of a window of gy (rows c0 .. c0+L-1, zero
 * outside gy) with the phase's taps, their channel axes swapped (c_in <->
 * c_out within each group) and ordered by increasing offset (flipped), and
 * dilation d'.  Every multiply-add is a real one: no zero insertion.
 *
 * The convolutions go through the public forward entry point with
 * FC_ALGO_DIRECT, so grad input runs on whatever forward direct kernel the
 * ISA has.  Stride 1 with padding p <= d*(k-1) needs no copy of gy (the
 * equivalent padding d*(k-1)-p is symmetric and >= 0) and writes gx
 * directly; otherwise each phase's gy window is copied zero-filled into a
 * workspace buffer and, for stride > 1, the phase's result is scattered
 * into every s-th position of gx.  Workspace: the rearranged weights plus
 * those two buffers for `nb` images at a time (nb bounded by the workspace
 * limit); fastconv/_workspace.py mirrors fc_gin_plan exactly.
 *
 * Results are independent of the thread count: the forward kernels are, and
 * the copies and scatters move values without arithmetic. */
#include "conv_bwd.h"

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

/* One phase r along one axis. */
typedef struct {
    int64_t m;      /* input positions r, r+s, ... below `in` */
    int64_t t;      /* taps reaching them (0: those positions get zero) */
    int64_t kmax;   /* largest such tap; the others are kmax - j*kstep */
    int64_t kstep;
    int64_t c0;     /* gy offset of the window start (may be < 0) */
    int64_t dil;    /* tap spacing in gy */
    int64_t len;    /* window length m + (t-1)*dil */
    int64_t pad;    /* without a window copy: symmetric zero padding of gy */
    int64_t e;      /* ... and the leading outputs that convolution computes
                       and drops (its output j + e is position j) */
} fc_gin_axis;

static void gin_axis(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d,
                     int64_t r, fc_gin_axis *a) {
    const int64_t g = gcd64(s, d);
    int64_t kk;
    a->m = r < in ? (in - r + s - 1) / s : 0;
    a->kstep = s / g;
    a->dil = d / g;
    a->t = 0; a->kmax = 0; a->c0 = 0; a->len = 0; a->pad = 0; a->e = 0;
    for (kk = k - 1; kk >= 0; kk--)
        if ((r + p - kk * d) % s == 0) {
            a->kmax = kk;
            a->t = kk / a->kstep + 1;
            a->c0 = (r + p - kk * d) / s;
            a->len = a->m + (a->t - 1) * a->dil;
            /* window rows [c0, c0+len) of gy, the part outside gy zero: a
             * convolution of gy padded by `pad` on both sides reads rows
             * [j - pad, ...) for its output j, so position j is its output
             * j + c0 + pad */
            a->pad = FC_MAX(0, FC_MAX(-a->c0, a->c0 + a->len - out));
            a->e = a->c0 + a->pad;
            break;
        }
}

/* BODY for each phase some tap reaches, in (r_h, r_w) order: axes in ah,
 * aw, residues in rh_, rw_. */
#define FC_GIN_FOR_PHASES(s, ah, aw, BODY)                                                       \
    do {                                                                                         \
        int64_t rh_, rw_;                                                                        \
        for (rh_ = 0; rh_ < FC_MIN((s)->stride_h, (s)->h_in); rh_++) {                           \
            gin_axis((s)->h_in, (s)->h_out, (s)->kh, (s)->stride_h, (s)->pad_h, (s)->dil_h, rh_, &(ah)); \
            if ((ah).m == 0 || (ah).t == 0) continue;                                            \
            for (rw_ = 0; rw_ < FC_MIN((s)->stride_w, (s)->w_in); rw_++) {                       \
                gin_axis((s)->w_in, (s)->w_out, (s)->kw, (s)->stride_w, (s)->pad_w, (s)->dil_w, rw_, &(aw)); \
                if ((aw).m == 0 || (aw).t == 0) continue;                                        \
                BODY                                                                             \
            }                                                                                    \
        }                                                                                        \
    } while (0)

#ifndef FC_GIN_PAD_WASTE
#define FC_GIN_PAD_WASTE 16   /* padded form if it computes <= 1/16 more outputs */
#endif

typedef struct {
    int copy;          /* gy windows are copied (else padded convolutions) */
    int scatter;       /* results go through a buffer (stride > 1 or dropped outputs) */
    int64_t wt_elems;  /* rearranged weights */
    int64_t win_img;   /* window buffer elements per image (0 if !copy) */
    int64_t out_img;   /* result buffer elements per image (0 if !scatter) */
    int64_t nb;        /* images per chunk */
} fc_gin_plan;

/* Each phase is a stride-1 convolution over either a zero-filled copy of
 * its gy window or gy itself, padded symmetrically, with e extra leading
 * outputs dropped: the padded form unless the dropped outputs exceed
 * 1/FC_GIN_PAD_WASTE of the real ones (padding past the kernel's reach).
 * Returns 0 when nothing is allocated (grad_out has no element: gx = 0). */
static fc_status gin_plan(const fc_context *ctx, const fc_conv_shape *s, int elem,
                          fc_gin_plan *pl, int *work) {
    const int64_t cig = s->c_in / s->groups;
    int64_t lh = 0, lw = 0, mh = 0, mw = 0, ph = 0, pw = 0, per, budget, wbytes;
    int64_t real = 0, extra = 0, drop = 0, r;
    fc_gin_axis a, b;
    *work = s->c_out > 0 && s->h_out > 0 && s->w_out > 0 && s->n > 0 && cig > 0 &&
            s->h_in > 0 && s->w_in > 0;
    memset(pl, 0, sizeof *pl);
    if (!*work) return FC_OK;
    FC_MUL(s->c_out, cig, &pl->wt_elems);
    FC_MUL(pl->wt_elems, s->kh * s->kw, &pl->wt_elems);
    for (r = 0; r < FC_MIN(s->stride_h, s->h_in); r++) {  /* phases past the input are empty */
        gin_axis(s->h_in, s->h_out, s->kh, s->stride_h, s->pad_h, s->dil_h, r, &a);
        mh = FC_MAX(mh, a.m);
        if (a.t > 0 && a.m > 0) { lh = FC_MAX(lh, a.len); ph = FC_MAX(ph, a.m + a.e); }
    }
    for (r = 0; r < FC_MIN(s->stride_w, s->w_in); r++) {
        gin_axis(s->w_in, s->w_out, s->kw, s->stride_w, s->pad_w, s->dil_w, r, &a);
        mw = FC_MAX(mw, a.m);
        if (a.t > 0 && a.m > 0) { lw = FC_MAX(lw, a.len); pw = FC_MAX(pw, a.m + a.e); }
    }
    /* outputs of the padded form beyond the real ones (m and e are below
     * the input sizes, whose products fc_conv_check bounded) */
    FC_GIN_FOR_PHASES(s, a, b, {
        real += a.m * b.m;
        extra += (a.m + a.e) * (b.m + b.e) - a.m * b.m;
        drop |= a.e > 0 || b.e > 0;
    });
    pl->copy = extra * FC_GIN_PAD_WASTE > real;
    pl->scatter = s->stride_h > 1 || s->stride_w > 1 || (!pl->copy && drop);
    if (pl->copy) { FC_MUL(s->c_out, lh, &pl->win_img); FC_MUL(pl->win_img, lw, &pl->win_img); }
    if (pl->scatter) {
        FC_MUL(cig * s->groups, pl->copy ? mh : ph, &pl->out_img);
        FC_MUL(pl->out_img, pl->copy ? mw : pw, &pl->out_img);
    }
    FC_MUL(pl->wt_elems, elem, &wbytes);
    FC_ADD(pl->win_img, pl->out_img, &per);
    FC_MUL(per, elem, &per);
    budget = ctx->workspace_limit - wbytes;
    pl->nb = per == 0 ? s->n : FC_MAX(1, FC_MIN(s->n, budget > 0 ? budget / per : 0));
    return FC_OK;
}

fc_status fc_conv2d_grad_input_fwd_workspace(const fc_context *ctx, const fc_conv_shape *s,
                                             int elem_size, int64_t *bytes) {
    fc_gin_plan pl;
    int work;
    int64_t e, t;
    fc_status st = gin_plan(ctx, s, elem_size, &pl, &work);
    *bytes = 0;
    if (st != FC_OK || !work) return st;
    FC_ADD(pl.win_img, pl.out_img, &e);
    FC_MUL(e, pl.nb, &e);
    FC_ADD(e, pl.wt_elems, &e);
    FC_MUL(e, elem_size, &t);
    *bytes = t;
    return FC_OK;
}

#define T float
#define SFX f32
#include "conv_bwd_gin_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_bwd_gin_impl.h"
#undef T
#undef SFX
