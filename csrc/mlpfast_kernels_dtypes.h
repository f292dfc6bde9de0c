/* Instantiates mlpfast_kernels_impl.h for float and double, for the
 * instruction set named by ISA (included by mlpfast_kernels.c once per ISA).
 * No include guard on purpose. */

#define REAL float
#define SUF f32
#define EXP expf
#define LOG logf
#define TANH tanhf
#define SQRT sqrtf
#define REAL_EPS 1.1920928955078125e-07f /* FLT_EPSILON, as numpy's finfo(float32).eps */
#include "mlpfast_kernels_impl.h"
#undef REAL
#undef SUF
#undef EXP
#undef LOG
#undef TANH
#undef SQRT
#undef REAL_EPS

#define REAL double
#define SUF f64
#define EXP exp
#define LOG log
#define TANH tanh
#define SQRT sqrt
#define REAL_EPS 2.220446049250313e-16 /* DBL_EPSILON, as numpy's finfo(float64).eps */
#include "mlpfast_kernels_impl.h"
#undef REAL
#undef SUF
#undef EXP
#undef LOG
#undef TANH
#undef SQRT
#undef REAL_EPS
