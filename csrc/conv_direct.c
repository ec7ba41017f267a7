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

#define T float
#define FC_TW 4
#define SFX f32
#include "conv_direct_impl.h"
#undef T
#undef FC_TW
#undef SFX

#define T double
#define FC_TW 2
#define SFX f64
#include "conv_direct_impl.h"
#undef T
#undef FC_TW
#undef SFX
