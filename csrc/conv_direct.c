/* Portable direct convolution: forward, grad input, grad weight, grad bias
 * and per-channel bias, for float and double.
 *
 * Written once in conv_direct_impl.h and instantiated per dtype.  The loops
 * are ordered so the innermost one runs along the output (or input) width
 * with unit stride whenever the convolution stride is 1, which the compiler
 * vectorises at -O3 without -ffast-math.  Padding is handled by computing,
 * per kernel tap, the range of output positions whose tap lands inside the
 * input, so the inner loops carry no bounds tests.
 *
 * Threading: every output element is written by exactly one thread, and the
 * order in which its terms are summed does not depend on the thread count,
 * so results are bit-identical for any number of threads.
 */
#include "conv_direct.h"

/* Minimum multiply-adds per thread before another thread is worth waking. */
#define FC_DIRECT_GRAIN 32768

/* Output positions o in [0, out) whose tap o*stride + off lies in [0, in):
 * returns the half-open range [*lo, *hi) (empty when *lo == *hi).  off is
 * t*dil - pad for tap t; fc_conv_check guarantees no overflow. */
static inline void fc_tap_range(int64_t in, int64_t out, int64_t stride, int64_t off,
                                int64_t *lo, int64_t *hi) {
    int64_t a, b;
    if (stride == 1) {
        a = -off;
        b = in - off;
    } else {
        a = -fc_floordiv(off, stride);
        b = fc_floordiv(in - 1 - off, stride) + 1;
    }
    if (a < 0) a = 0;
    if (b > out) b = out;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* Threads for `items` independent items of `per_item` multiply-adds each:
 * no more than there are items, and no more than the total work justifies. */
static int fc_direct_threads(const fc_context *ctx, int64_t items, int64_t per_item) {
    int64_t total;
    if (per_item < 1) per_item = 1;
    if (fc_checked_mul(items, per_item, &total)) total = INT64_MAX;
    return fc_threads_for(ctx, FC_MIN(items, total / FC_DIRECT_GRAIN + 1));
}

/* a*b*c*d saturated at INT64_MAX (only used to size thread counts). */
static int64_t fc_sat_prod4(int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t t;
    if (fc_checked_mul(a, b, &t) || fc_checked_mul(t, c, &t) || fc_checked_mul(t, d, &t))
        return INT64_MAX;
    return t;
}

#define T float
#define SFX f32
#include "conv_direct_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_direct_impl.h"
#undef T
#undef SFX
