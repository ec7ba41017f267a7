/* Chunking of the output plane and of the input channels for the
 * output-channel-vectorised direct kernels (the AVX2 and the AVX-512 tile
 * share it, each with its own limits).  Fixed by the shape and the thread
 * count alone; no chunking changes any output's summation order, so
 * results stay identical across thread counts. */
#ifndef FC_CONV_DIRECT_OCV_PLAN_H
#define FC_CONV_DIRECT_OCV_PLAN_H
#include "fc_internal.h"

typedef struct {
    int64_t min_cog;      /* fewest output channels per group served */
    int64_t pmax;         /* output pixels per chunk */
    int64_t kmax;         /* taps (ci, kh, kw) per input-channel block */
    int64_t xmax;         /* elements of the zero-padded input block */
    int64_t k1;           /* input channels per block for 1x1 kernels */
    int banded;           /* 1: the kernel copies dilated tap rows as bands */
    int64_t max_imgs;     /* images per chunk when a chunk holds a whole plane */
} fc_ocv_limits;

typedef struct {
    int copy;             /* 1: zero-padded input block; 0: read x in place */
    int64_t rows_per;     /* output rows per chunk */
    int64_t nrc;          /* chunks */
    int64_t wb;           /* input block row length (copy) */
    int64_t cib, ncib;    /* input channels per block, blocks */
    int64_t imgs, nic;    /* images per chunk, image chunks (imgs * nic >= n) */
} fc_ocv_plan;

/* Input rows a chunk of `rows` output rows reads. */
static inline int64_t fc_ocv_rows_in(const fc_conv_shape *s, int64_t rows) {
    return (rows - 1) * s->stride_h + (s->kh - 1) * s->dil_h + 1;
}

/* Band height when the padded block holds one band of rows per kernel row
 * (a dilation taller than the chunk leaves gaps between the rows the taps
 * read: copying only the bands keeps the block, and so the input-channel
 * block, large), else 0 (one contiguous span). */
static inline int64_t fc_ocv_band(const fc_conv_shape *s, const fc_ocv_limits *lim, int64_t rows) {
    const int64_t hb = (rows - 1) * s->stride_h + 1;
    return lim->banded && s->kh * hb < fc_ocv_rows_in(s, rows) ? hb : 0;
}

/* Rows of the padded block of a chunk of `rows` output rows whose band
 * height (fc_ocv_band) is `band`. */
static inline int64_t fc_ocv_band_rows(const fc_conv_shape *s, int64_t band, int64_t rows) {
    return band ? s->kh * band : fc_ocv_rows_in(s, rows);
}

static inline int64_t fc_ocv_block_rows(const fc_conv_shape *s, const fc_ocv_limits *lim, int64_t rows) {
    return fc_ocv_band_rows(s, fc_ocv_band(s, lim, rows), rows);
}

/* Input channels per block for the plan's rows: the packed weights stay
 * within kmax taps and the padded input block within xmax.  1x1 kernels
 * read x in place with a plane stride per tap, so fewer channels per block
 * keep the tile's x lines and weights in L1 (measured). */
static int fc_ocv_fit_cib(const fc_conv_shape *s, const fc_ocv_limits *lim, fc_ocv_plan *pl) {
    const int64_t khkw = s->kh * s->kw, cig = s->c_in / s->groups;
    int64_t cib = khkw == 1 ? lim->k1 : lim->kmax / khkw;
    if (pl->copy) {
        const int64_t plane_b = fc_ocv_block_rows(s, lim, pl->rows_per) * pl->wb;
        if (plane_b * pl->imgs > lim->xmax) return 0;
        cib = FC_MIN(cib, lim->xmax / (plane_b * pl->imgs));
    }
    cib = FC_MAX(1, FC_MIN(cib, cig));
    pl->ncib = (cig + cib - 1) / cib;
    pl->cib = (cig + pl->ncib - 1) / pl->ncib;
    return 1;
}

/* Returns 0 if a kernel with these limits does not serve the shape. */
static int fc_ocv_make_plan(const fc_conv_shape *s, const fc_ocv_limits *lim, fc_ocv_plan *pl) {
    const int64_t khkw = s->kh * s->kw, cig = s->c_in / s->groups;
    int64_t rows;
    /* too few output channels per group would leave most lanes idle */
    if (s->c_out / s->groups < lim->min_cog) return 0;
    if (s->w_out > lim->pmax || khkw > lim->kmax || cig < 1) return 0;
    pl->copy = s->pad_h != 0 || s->pad_w != 0;
    pl->wb = (s->w_out - 1) * s->stride_w + (s->kw - 1) * s->dil_w + 1;
    rows = FC_MAX(1, FC_MIN(s->h_out, lim->pmax / s->w_out));
    if (pl->copy)
        while (rows > 1 && fc_ocv_block_rows(s, lim, rows) * pl->wb > lim->xmax) rows--;
    pl->nrc = (s->h_out + rows - 1) / rows;
    pl->rows_per = (s->h_out + pl->nrc - 1) / pl->nrc;  /* even chunks */
    pl->imgs = 1;
    pl->nic = s->n;
    return fc_ocv_fit_cib(s, lim, pl);
}

/* Small planes: a chunk holding a whole plane takes several images, so a
 * packed weight block serves all their pixels (at 7x7 the pack is about a
 * fifth of the time when it serves 49 pixels).  Enough image chunks are
 * left for every thread (`per` = tasks per image chunk: groups x channel
 * blocks), in a count the threads divide when the batch allows. */
static void fc_ocv_batch_images(const fc_conv_shape *s, const fc_ocv_limits *lim, int threads, int64_t per,
                                fc_ocv_plan *pl) {
    const int64_t plane = s->h_out * s->w_out;
    int64_t imgs, nic;
    fc_ocv_plan p2;
    if (pl->nrc != 1 || s->n < 2 || lim->max_imgs < 2) return;
    imgs = FC_MIN(FC_MIN(s->n, lim->max_imgs), lim->pmax / plane);
    if (imgs < 2) return;
    nic = (s->n + imgs - 1) / imgs;
    while (nic < s->n && (nic * per < threads || (nic * per < 8 * (int64_t)threads && (nic * per) % threads != 0)))
        nic++;
    p2 = *pl;
    p2.imgs = (s->n + nic - 1) / nic;
    p2.nic = (s->n + p2.imgs - 1) / p2.imgs;
    if (p2.imgs > 1 && fc_ocv_fit_cib(s, lim, &p2)) *pl = p2;
}

/* Input offset of each of a chunk's P pixels: nimg images of pp pixels
 * from output row r0; an image's input is xis apart in x (in place) or xbs
 * in the padded block (copy, rows wb long). */
static inline void fc_ocv_pixel_bases(const fc_conv_shape *s, int copy, int64_t r0, int64_t pp, int64_t P,
                                      int64_t wb, int64_t xis, int64_t xbs, int64_t *pbase) {
    int64_t p;
    for (p = 0; p < P; p++) {
        const int64_t i = p / pp, q = p % pp, oh = r0 + q / s->w_out, ow = q % s->w_out;
        pbase[p] = copy ? i * xbs + (oh - r0) * s->stride_h * wb + ow * s->stride_w
                        : i * xis + (oh * s->stride_h) * s->w_in + ow * s->stride_w;
    }
}

/* Few tasks (batch 1): split the rows into a few more chunks so every
 * thread gets the same number (56 rows: 7 chunks -> 8 for 2 threads).
 * `outer` = tasks per row chunk (image chunks x groups x channel blocks). */
static void fc_ocv_balance(const fc_conv_shape *s, const fc_ocv_limits *lim, int threads, int64_t outer,
                           fc_ocv_plan *pl) {
    int64_t nrc2;
    if (threads <= 1 || outer * pl->nrc >= 8 * (int64_t)threads || (outer * pl->nrc) % threads == 0) return;
    for (nrc2 = pl->nrc + 1; nrc2 <= FC_MIN(s->h_out, 2 * pl->nrc); nrc2++) {
        const int64_t rp = (s->h_out + nrc2 - 1) / nrc2;
        if ((s->h_out + rp - 1) / rp == nrc2 && (outer * nrc2) % threads == 0) {
            fc_ocv_plan p2 = *pl;
            p2.rows_per = rp;
            p2.nrc = nrc2;
            if (fc_ocv_fit_cib(s, lim, &p2)) *pl = p2;
            return;
        }
    }
}

#endif /* FC_CONV_DIRECT_OCV_PLAN_H */
