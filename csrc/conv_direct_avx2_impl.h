/* Register-blocked direct convolution, AVX2+FMA, written once for both
 * dtypes.  Included by conv_direct_avx2.c after it defines:
 *   T, V, VL (lanes per vector), SFX(name), and the vector ops below.
 *
 * Micro-tile: NC (<= 6) output channels x NV (<= 2) vectors of VL output
 * pixels of one output row, i.e. up to 12 ymm accumulators (6x16 for f32,
 * 6x8 for f64).  The inner step broadcasts the NC packed weights of one tap
 * and FMAs each with the NV input vectors of that tap.
 *
 * Input vectors for a tap come from one of three load modes:
 *   MODE_S1   stride 1: contiguous loads,
 *   MODE_S2   stride 2: two contiguous loads de-interleaved with shuffles,
 *   MODE_SG   any other stride: masked gathers.
 * Blocks whose taps all stay inside the row use plain loads; blocks touching
 * the left/right padding or the row's tail use per-lane masks (masked-out
 * lanes read nothing and load 0, which is what zero padding contributes).
 *
 * Summation order of every output element is fixed by the shape alone
 * (ci ascending, then kh, then kw; y holds the partial sum exactly between
 * input-channel blocks), so results do not depend on the thread count.
 */

/* Mask vectors per tap: one per output vector. */
#define FC_MAXRAW 2

/* Per-block lane masks for every kw tap (raw load masks) and the output lanes. */
typedef struct {
    MASK in[FC_DIRECT_MAX_KW][FC_MAXRAW];
    MASK out[2];
    int need[FC_DIRECT_MAX_KW];  /* tap kw has lanes to clear (else plain loads) */
} SFX(masks);

/* Output pixel held by each lane after V_DEINT2. */
static const int SFX(s2_lane)[VL] = V_S2_LANES;

/* Build the masks of a block starting at output column ow0 with `nvalid`
 * output lanes (<= NV*VL), input start iw0 = ow0*sw - pw. */
static void SFX(build_masks)(SFX(masks) *m, int mode, int nv, int64_t iw0, int64_t nvalid,
                             int64_t kw_n, int64_t dw, int64_t sw, int64_t w_in) {
    MASKINT lanes[VL];
    int64_t kw, q, r;
    for (q = 0; q < nv; q++) {
        for (r = 0; r < VL; r++) lanes[r] = (q * VL + r < nvalid) ? (MASKINT)-1 : 0;
        m->out[q] = MASK_LOAD(lanes);
    }
    for (kw = 0; kw < kw_n; kw++) {
        int64_t base = iw0 + kw * dw;
        m->need[kw] = 0;
        for (q = 0; q < nv; q++) {
            for (r = 0; r < VL; r++) {
                int64_t out_lane, addr;
                if (mode == MODE_S1) { out_lane = q * VL + r; addr = base + out_lane; }
                else if (mode == MODE_S2) {
                    /* applied after the de-interleave: lanes in its pixel order */
                    out_lane = q * VL + SFX(s2_lane)[r]; addr = base + 2 * out_lane;
                }
                else { out_lane = q * VL + r; addr = base + out_lane * sw; }
                if (mode != MODE_SG && out_lane >= nvalid) {
                    lanes[r] = (MASKINT)-1;  /* never stored: garbage allowed (load stays in x) */
                } else {
                    lanes[r] = (out_lane < nvalid && addr >= 0 && addr < w_in) ? (MASKINT)-1 : 0;
                    if (!lanes[r]) m->need[kw] = 1;
                }
            }
            m->in[kw][q] = MASK_LOAD(lanes);
        }
    }
}

/* Everything a block needs that is fixed for one (image, group, co-block,
 * ci-block). */
typedef struct {
    const T *x;        /* input plane of the block's first input channel */
    const T *wp;       /* packed weights [ci][kh][kw][nc] */
    const T *bias;     /* bias of the co-block's first channel, or NULL */
    T *y;              /* output plane of the co-block's first channel */
    int64_t plane_in;  /* h_in*w_in */
    int64_t plane_out; /* h_out*w_out */
    int64_t w_in, w_out;
    int64_t cib;       /* input channels in this block */
    int64_t kh_n, kw_n, dh, dw, sw;
    int first;         /* first ci-block: initialise from bias/zero instead of y */
    int64_t xoff, xlen; /* offset of x from the buffer start; buffer length */
    int64_t rs;        /* input offset between consecutive output rows: stride_h*w_in */
    VIDX gidx;         /* gather indices: lane*sw */
} SFX(blk);

/* Partial vectors of y (row tails): masked load/store of the first n
 * lanes (once per tile; measured faster here than a scalar copy, which
 * when inlined also made GCC spill the main loop's accumulators). */
static const MASKINT SFX(lane_mask)[2 * VL] = V_LANE_MASK_INIT;
static inline V SFX(load_part)(const T *p, int64_t n) {
    return V_MASKLOAD(p, MASK_LOAD(SFX(lane_mask) + VL - n));
}
static inline void SFX(store_part)(T *p, V v, int64_t n) {
    V_MASKSTORE(p, MASK_LOAD(SFX(lane_mask) + VL - n), v);
}

/* Accumulators are named scalars (a<c><j>), not an array: GCC keeps an
 * array of vectors in memory across the loop, which halves the speed. */
#define FC_FOR_ACC(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* Input vector of output-vector slot q (mask slot q) at p for tap kw.
 * Masked tiles load the full vector and clear the padding/tail lanes with
 * an AND (vmaskmovps is several times slower on Zen); the caller checks
 * that such a tile's loads stay inside x, else it runs in gather mode,
 * which reads only the lanes it needs. */
#define FC_LOADV(p, q)                                                                       \
    (mode == MODE_S1 ? (masked && m->need[kw] ? V_AND(V_LOADU(p), m->in[kw][q]) : V_LOADU(p)) \
     : mode == MODE_S2 ? (masked && m->need[kw] ? V_AND(V_DEINT2(V_LOADU(p), V_LOADU((p) + VL)), m->in[kw][q]) \
                                 : V_DEINT2(V_LOADU(p), V_LOADU((p) + VL)))                    \
     : V_GATHER((p), b->gidx, m->in[kw][q]))

/* One micro-tile: NC channels x 2 vectors (NV=2: 2*VL consecutive pixels
 * of row oh; RP: VL pixels of rows oh and oh+1) or x 1 vector (NV=1).
 * nc, nv, mode, masked, kwc, rp are compile-time constants at each call
 * site.  kwc: 0 = runtime kw, k>0 = kw known, -1 = 1x1 kernel.
 * [k0lo, k0hi) / [k1lo, k1hi): kh taps inside the input for each row. */
static FC_AI void SFX(tile)(const SFX(blk) *b, const SFX(masks) *m, const int nc, const int nv,
                            const int mode, const int masked, const int kwc, const int rp,
                            int64_t oh, int64_t ow0, int64_t ih0, int64_t iw0,
                            int64_t k0lo, int64_t k0hi, int64_t k1lo, int64_t k1hi, int64_t nval) {
    V a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
    const int k11 = kwc == -1 && !rp;  /* 1x1 fast loop (row pairs take the general one) */
    const int64_t kw_n = kwc == -1 ? 1 : kwc ? kwc : b->kw_n;
    const int64_t po = b->plane_out;
    T *yp = b->y + oh * b->w_out + ow0;
    /* second vector: next VL pixels, or the same pixels of the next row */
    const int64_t yo1 = rp ? b->w_out : VL;
    const int64_t xo1 = rp ? b->rs : mode == MODE_S1 ? VL : mode == MODE_S2 ? 2 * VL : VL * b->sw;
    /* valid output lanes of each vector (masked tiles only) */
    const int64_t n0 = FC_MIN(VL, nval);
    const int64_t n1 = rp ? n0 : nval - VL;
    const int64_t kh_lo = rp ? FC_MIN(k0lo, k1lo) : k0lo;
    const int64_t kh_hi = rp ? FC_MAX(k0hi, k1hi) : k0hi;
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = V_ZERO();
#define FC_INIT(c)                                                                           \
    if (nc > c) {                                                                            \
        if (!b->first) {                                                                     \
            a##c##0 = masked && n0 < VL ? SFX(load_part)(yp + c * po, n0) : V_LOADU(yp + c * po); \
            if (nv > 1) a##c##1 = masked && n1 < VL ? SFX(load_part)(yp + c * po + yo1, n1) : V_LOADU(yp + c * po + yo1); \
            if (mode == MODE_S2) { a##c##0 = V_PERM(a##c##0); a##c##1 = V_PERM(a##c##1); }  \
        } else if (b->bias) {                                                                \
            a##c##0 = a##c##1 = V_SET1(b->bias[c]);                                          \
        }                                                                                    \
    }
    FC_FOR_ACC(FC_INIT)
#undef FC_INIT
#define FC_STEP(c)                                                                           \
    if (nc > c) {                                                                            \
        V wv = V_SET1(wt[c]);                                                                \
        a##c##0 = V_FMA(wv, v0, a##c##0);                                                    \
        if (nv > 1) a##c##1 = V_FMA(wv, v1, a##c##1);                                        \
    }
    {
        const T *xc = b->x + iw0;
        const T *wc = b->wp;
        const int64_t khkw = b->kh_n * kw_n;
        const int64_t plane_in = b->plane_in, w_in = b->w_in, dh = b->dh, dw = b->dw;
        const int64_t cib = b->cib;
        int64_t ci, kh, kw;
        if (k11) {
            if (kh_lo < kh_hi) {
                const T *p = xc + ih0 * w_in;
                const T *wt = wc;
                kw = 0;
                for (ci = 0; ci < cib; ci++, p += plane_in, wt += nc) {
                    V v0 = FC_LOADV(p, 0), v1 = V_ZERO();
                    if (nv > 1) v1 = FC_LOADV(p + xo1, 1);
                    FC_FOR_ACC(FC_STEP)
                }
            }
        } else {
            for (ci = 0; ci < cib; ci++, xc += plane_in, wc += khkw * nc) {
                for (kh = kh_lo; kh < kh_hi; kh++) {
                    const T *xr = xc + (ih0 + kh * dh) * w_in;
                    const T *wk = wc + kh * kw_n * nc;
                    const int ok0 = !rp || (kh >= k0lo && kh < k0hi);
                    const int ok1 = !rp || (kh >= k1lo && kh < k1hi);
                    for (kw = 0; kw < kw_n; kw++) {
                        const T *p = xr + kw * dw;
                        const T *wt = wk + kw * nc;
                        V v0, v1 = V_ZERO();
                        if (rp) {
                            v0 = ok0 ? FC_LOADV(p, 0) : V_ZERO();
                            v1 = ok1 ? FC_LOADV(p + xo1, 0) : V_ZERO();
                        } else {
                            v0 = FC_LOADV(p, 0);
                            if (nv > 1) v1 = FC_LOADV(p + xo1, 1);
                        }
                        FC_FOR_ACC(FC_STEP)
                    }
                }
            }
        }
    }
#undef FC_STEP
#define FC_STORE(c)                                                                          \
    if (nc > c) {                                                                            \
        if (mode == MODE_S2) { a##c##0 = V_PERM(a##c##0); a##c##1 = V_PERM(a##c##1); }      \
        if (masked) {                                                                        \
            if (n0 < VL) SFX(store_part)(yp + c * po, a##c##0, n0);                          \
            else V_STOREU(yp + c * po, a##c##0);                                             \
            if (nv > 1) {                                                                    \
                if (n1 < VL) SFX(store_part)(yp + c * po + yo1, a##c##1, n1);                \
                else V_STOREU(yp + c * po + yo1, a##c##1);                                   \
            }                                                                                \
        } else {                                                                             \
            V_STOREU(yp + c * po, a##c##0);                                                  \
            if (nv > 1) V_STOREU(yp + c * po + yo1, a##c##1);                                \
        }                                                                                    \
    }
    FC_FOR_ACC(FC_STORE)
#undef FC_STORE
}

/* Arguments of one tile call. */
typedef struct {
    int nc, nv, masked, rp;
    int64_t oh, ow0, ih0, iw0, k0lo, k0hi, k1lo, k1hi;
    int64_t nvalid;    /* valid output pixels of the tile's row (<= 2*VL; <= VL for row pairs) */
} SFX(targs);

#define FC_TILE(NC, NV, MODE, MSK, KWC, RP)                                                     \
    SFX(tile)(b, m, NC, NV, MODE, MSK, KWC, RP, t->oh, t->ow0, t->ih0, t->iw0, t->k0lo, t->k0hi, \
              t->k1lo, t->k1hi, t->nvalid)

/* Over the load modes (the gather mode is always masked, runtime kw). */
#define FC_TILE_MODES(NC, NV, MSK, KWC, RP)                                                      \
    do {                                                                                          \
        if (mode == MODE_S1) FC_TILE(NC, NV, MODE_S1, MSK, KWC, RP);                              \
        else if (mode == MODE_S2) FC_TILE(NC, NV, MODE_S2, MSK, KWC, RP);                         \
        else FC_TILE(NC, NV, MODE_SG, 1, 0, RP);                                                  \
    } while (0)

#define FC_TILE_NV(NC, KWC)                                                                       \
    do {                                                                                          \
        if (t->rp) FC_TILE_MODES(NC, 2, 1, KWC, 1);                                               \
        else if (t->nv == 2) { if (t->masked) FC_TILE_MODES(NC, 2, 1, KWC, 0); else FC_TILE_MODES(NC, 2, 0, KWC, 0); } \
        else { if (t->masked) FC_TILE_MODES(NC, 1, 1, KWC, 0); else FC_TILE_MODES(NC, 1, 0, KWC, 0); } \
    } while (0)

static FC_NOINLINE void SFX(tile_dispatch)(const SFX(blk) *b, const SFX(masks) *m, int mode,
                                          const SFX(targs) *t) {
    switch (t->nc) {
    case 6:
        if (b->kw_n == 3) FC_TILE_NV(6, 3);
        else if (b->kw_n == 1 && b->kh_n == 1) FC_TILE_NV(6, -1);
        else FC_TILE_NV(6, 0);
        break;
    case 5: FC_TILE_NV(5, 0); break;
    case 4: FC_TILE_NV(4, 0); break;
    case 3: FC_TILE_NV(3, 0); break;
    case 2: FC_TILE_NV(2, 0); break;
    default: FC_TILE_NV(1, 0); break;
    }
}

/* Run one tile; a masked tile whose full-vector loads could leave the x
 * buffer (first/last elements of x) is run in gather mode instead. */
static void SFX(run_tile)(const SFX(blk) *b, const fc_conv_shape *s, int mode, SFX(targs) *t,
                          const SFX(masks) *m, SFX(masks) *m_tmp) {
    if (t->masked && mode != MODE_SG && b->cib > 0) {
        const int64_t lo = t->rp ? FC_MIN(t->k0lo, t->k1lo) : t->k0lo;
        const int64_t hi = t->rp ? FC_MAX(t->k0hi, t->k1hi) : t->k0hi;
        if (lo < hi) {
            const int64_t span = (mode == MODE_S1 ? 1 : 2) * (t->rp ? 1 : t->nv) * VL;
            const int64_t first = b->xoff + (t->ih0 + lo * s->dil_h) * s->w_in + t->iw0;
            const int64_t last = b->xoff + (b->cib - 1) * b->plane_in +
                                 (t->ih0 + (t->rp ? s->stride_h : 0) + (hi - 1) * s->dil_h) * s->w_in +
                                 t->iw0 + (s->kw - 1) * s->dil_w + span - 1;
            if (first < 0 || last >= b->xlen) {
                const int64_t nvalid = FC_MIN((t->rp ? 1 : t->nv) * VL, s->w_out - t->ow0);
                SFX(build_masks)(m_tmp, MODE_SG, t->rp ? 1 : t->nv, t->iw0, nvalid, s->kw, s->dil_w,
                                 s->stride_w, s->w_in);
                SFX(tile_dispatch)(b, m_tmp, MODE_SG, t);
                return;
            }
        }
    }
    SFX(tile_dispatch)(b, m, mode, t);
}

/* kh taps of output row oh that land inside [0, h_in): a contiguous range. */
static inline void SFX(kh_range)(const fc_conv_shape *s, int64_t oh, int64_t *lo, int64_t *hi) {
    const int64_t ih0 = oh * s->stride_h - s->pad_h;
    int64_t a = 0, z = s->kh;
    if (ih0 < 0) a = FC_MIN(z, (-ih0 + s->dil_h - 1) / s->dil_h);
    while (z > a && ih0 + (z - 1) * s->dil_h >= s->h_in) z--;
    *lo = a; *hi = z;
}

/* Does the block at ow0 with nvalid output lanes need masks? */
static inline int SFX(needs_mask)(const fc_conv_shape *s, int mode, int nv, int64_t ow0,
                                  int64_t nvalid) {
    int64_t iw0 = ow0 * s->stride_w - s->pad_w, last;
    if (mode == MODE_SG || nvalid != nv * VL) return 1;
    last = iw0 + (s->kw - 1) * s->dil_w + (mode == MODE_S1 ? nv * VL - 1 : 2 * nv * VL - 1);
    return !(iw0 >= 0 && last < s->w_in);
}

/* Rows [r0, r1) x columns [c0, c1) of a (co-block, ci-block), two rows at
 * a time: blocks of 2*VL pixels per row; a last block of <= VL pixels is
 * done for both rows in one row-pair tile so it still uses 2*NC
 * accumulators.  Masks of the chunk's first and last column blocks are
 * built once (m_edge); other masked blocks (rare) build theirs in m_tmp. */
static void SFX(rows)(const SFX(blk) *b, const fc_conv_shape *s, int nc, int mode,
                      int64_t r0, int64_t r1, int64_t c0, int64_t c1, SFX(masks) *m_edge,
                      SFX(masks) *m_tmp) {
    SFX(targs) t;
    int64_t oh, ow0;
    const int64_t last0 = c0 + ((c1 - c0 - 1) / (2 * VL)) * (2 * VL);
    int have_first = 0, have_last = 0;
    t.nc = nc;
    for (oh = r0; oh < r1; oh += 2) {
        const int pair = oh + 1 < r1;
        int64_t k0lo, k0hi, k1lo = 0, k1hi = 0;
        SFX(kh_range)(s, oh, &k0lo, &k0hi);
        if (pair) SFX(kh_range)(s, oh + 1, &k1lo, &k1hi);
        for (ow0 = c0; ow0 < c1; ow0 += 2 * VL) {
            const int64_t nvalid = FC_MIN(2 * VL, c1 - ow0);
            const SFX(masks) *m = m_tmp;
            int r;
            t.nv = nvalid > VL ? 2 : 1;
            t.nvalid = nvalid;
            t.ow0 = ow0;
            t.iw0 = ow0 * s->stride_w - s->pad_w;
            t.masked = SFX(needs_mask)(s, mode, t.nv, ow0, nvalid);
            if (t.masked || (t.nv == 1 && pair)) {
                if (ow0 == c0) {
                    if (!have_first) SFX(build_masks)(&m_edge[0], mode, t.nv, t.iw0, nvalid, s->kw, s->dil_w, s->stride_w, s->w_in);
                    have_first = 1; m = &m_edge[0];
                } else if (ow0 == last0) {
                    if (!have_last) SFX(build_masks)(&m_edge[1], mode, t.nv, t.iw0, nvalid, s->kw, s->dil_w, s->stride_w, s->w_in);
                    have_last = 1; m = &m_edge[1];
                } else {
                    SFX(build_masks)(m_tmp, mode, t.nv, t.iw0, nvalid, s->kw, s->dil_w, s->stride_w, s->w_in);
                }
            }
            if (t.nv == 1 && pair) {
                t.rp = 1; t.nv = 2; t.masked = 1;
                t.oh = oh; t.ih0 = oh * s->stride_h - s->pad_h;
                t.k0lo = k0lo; t.k0hi = k0hi; t.k1lo = k1lo; t.k1hi = k1hi;
                SFX(run_tile)(b, s, mode, &t, m, m_tmp);
                continue;
            }
            t.rp = 0;
            for (r = 0; r <= pair; r++) {
                t.oh = oh + r; t.ih0 = t.oh * s->stride_h - s->pad_h;
                t.k0lo = t.k1lo = r ? k1lo : k0lo;
                t.k0hi = t.k1hi = r ? k1hi : k0hi;
                SFX(run_tile)(b, s, mode, &t, m, m_tmp);
            }
        }
    }
}

/* Pack weights of channels [co_abs, co_abs+nc) x [ci0, ci0+cib) (within
 * the group) as [ci][kh][kw][nc]. */
static void SFX(pack)(T *wp, const T *w, const fc_conv_shape *s, int64_t cig, int64_t co_abs,
                      int nc, int64_t ci0, int64_t cib) {
    const int64_t khkw = s->kh * s->kw;
    int64_t ci, t;
    int c;
    /* read each output channel's weights contiguously */
    for (c = 0; c < nc; c++) {
        const T *src = w + ((co_abs + c) * cig + ci0) * khkw;
        for (ci = 0; ci < cib; ci++)
            for (t = 0; t < khkw; t++)
                wp[(ci * khkw + t) * nc + c] = src[ci * khkw + t];
    }
}

#include "conv_direct_avx2_dw.h"
#include "conv_direct_avx2_ocv.h"

static fc_status SFX(direct)(fc_context *ctx, const fc_conv_shape *s0, const T *x, const T *w,
                             const T *bias, T *y) {
    fc_conv_shape sh = *s0;
    const fc_conv_shape *s = &sh;
    int64_t cig, cog, ncob, khkw, cib_max, ncib, rows_per, nrc, col_chunk, ncc, ntask, t64;
    int64_t in_row_bytes;
    int mode, nthr;

    fc_status st;
    if (s->n == 0 || s->c_out == 0 || s->h_out == 0 || s->w_out == 0) return FC_OK;
    if ((st = SFX(depthwise3x3)(ctx, s, x, w, bias, y)) != FC_NOT_HANDLED) return st;
#ifdef FC_OCV_TEST  /* A/B timing harness: FC_OCV unset -> pixel-vectorised kernel */
    if (getenv("FC_OCV"))
#endif
    if ((st = SFX(ocv)(ctx, s, x, w, bias, y)) != FC_NOT_HANDLED) return st;
    if (s->kw > FC_DIRECT_MAX_KW) return FC_NOT_HANDLED;
    khkw = s->kh * s->kw;
    if (6 * khkw > FC_DIRECT_WP) return FC_NOT_HANDLED;
    if (s->stride_w > 1 << 20) return FC_NOT_HANDLED;  /* gather indices are int32 */
    /* 1x1, stride 1, no padding: the image is one long row of h*w pixels */
    if (s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 &&
        s->pad_h == 0 && s->pad_w == 0) {
        sh.w_in = s->h_in * s->w_in; sh.h_in = 1;
        sh.w_out = s->h_out * s->w_out; sh.h_out = 1;
        sh.dil_h = sh.dil_w = 1;
    }
    mode = s->stride_w == 1 ? MODE_S1 : s->stride_w == 2 ? MODE_S2 : MODE_SG;
    cig = s->c_in / s->groups;
    cog = s->c_out / s->groups;
    ncob = (cog + 5) / 6;
    /* input-channel block: packed weights of one block stay ~8-16 KB */
    cib_max = FC_MAX(1, FC_DIRECT_WP_BUDGET / (6 * khkw));
    ncib = cig == 0 ? 1 : (cig + cib_max - 1) / cib_max;
    if (cig > 0) cib_max = (cig + ncib - 1) / ncib;  /* even blocks */
    /* Spatial chunk per task: ~512 output pixels, fewer when the input rows
     * of one ci-block would not stay in L2 (~128 KB) across co-blocks. */
    in_row_bytes = FC_MAX(1, cib_max * s->w_in * s->stride_h * (int64_t)sizeof(T));
    if (s->w_out > 1024 || (s->h_out == 1 && s->w_out > 256)) {
        col_chunk = FC_MAX(2 * VL, FC_MIN(512, (131072 / FC_MAX(1, cib_max * (int64_t)sizeof(T))) / (2 * VL) * (2 * VL)));
        rows_per = 1;
    } else {
        col_chunk = s->w_out;
        rows_per = FC_MAX(1, FC_MIN(512 / s->w_out, 131072 / in_row_bytes));
        rows_per += rows_per & 1;  /* row pairs */
    }
    rows_per = FC_MIN(rows_per, s->h_out);
    nrc = (s->h_out + rows_per - 1) / rows_per;
    ncc = (s->w_out + col_chunk - 1) / col_chunk;
    FC_MUL(s->n, s->groups, &t64);
    FC_MUL(t64, ncob, &t64);
    FC_MUL(t64, nrc, &t64);
    FC_MUL(t64, ncc, &ntask);
    nthr = fc_threads_for(ctx, ntask);

#pragma omp parallel num_threads(nthr)
    {
        fc_fpmode fpm = fc_fpmode_enter();
        FC_ALIGNED(32) T wp[FC_DIRECT_WP];
        SFX(masks) m_edge[2], m_tmp;
        SFX(blk) b;
        int64_t task;
        b.gidx = V_GIDX(s->stride_w);
        b.plane_in = s->h_in * s->w_in;
        b.plane_out = s->h_out * s->w_out;
        b.w_in = s->w_in; b.w_out = s->w_out;
        b.kh_n = s->kh; b.kw_n = s->kw; b.dh = s->dil_h; b.dw = s->dil_w; b.sw = s->stride_w;
        b.rs = s->stride_h * s->w_in;
        b.xlen = s->n * s->c_in * b.plane_in;
        /* task order: co-block fastest, so consecutive tasks of a thread
         * reuse the same input rows from cache */
#pragma omp for schedule(static)
        for (task = 0; task < ntask; task++) {
            int64_t rest = task;
            const int64_t cob = rest % ncob; rest /= ncob;
            const int64_t cc = rest % ncc; rest /= ncc;
            const int64_t rc = rest % nrc; rest /= nrc;
            const int64_t g = rest % s->groups; rest /= s->groups;
            const int64_t n = rest;
            const int64_t co0 = cob * 6;
            const int nc = (int)FC_MIN(6, cog - co0);
            const int64_t co_abs = g * cog + co0;
            const int64_t r0 = rc * rows_per, r1 = FC_MIN(s->h_out, r0 + rows_per);
            const int64_t c0 = cc * col_chunk, c1 = FC_MIN(s->w_out, c0 + col_chunk);
            int64_t kb;
            b.bias = bias ? bias + co_abs : NULL;
            b.y = y + (n * s->c_out + co_abs) * b.plane_out;
            for (kb = 0; kb < ncib; kb++) {
                const int64_t ci0 = kb * cib_max;
                b.cib = FC_MAX(0, FC_MIN(cib_max, cig - ci0));
                b.first = kb == 0;
                b.xoff = (n * s->c_in + g * cig + ci0) * b.plane_in;
                b.x = x ? x + b.xoff : x;
                b.wp = wp;
                SFX(pack)(wp, w, s, cig, co_abs, nc, ci0, b.cib);
                SFX(rows)(&b, s, nc, mode, r0, r1, c0, c1, m_edge, &m_tmp);
            }
        }
        fc_fpmode_leave(fpm);
    }
    return FC_OK;
}
