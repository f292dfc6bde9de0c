/* Instantiates mlpfast_kernels_impl.h for float and double. */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <string.h>
#include <time.h>

#include "mlpfast_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many elements a kernel runs on one thread: forking costs more. */
#define MLP_OMP_MIN_WORK 65536
/* Column-split kernels give each thread at least this many columns. */
#define MLP_COL_BLOCK 64

/* How many column blocks (one per thread) a column-split kernel uses for
 * `work` elements over O columns: 1 when the work or the columns are too few. */
static int mlp_column_blocks(ptrdiff_t work, ptrdiff_t O, int n_threads)
{
    return (work >= MLP_OMP_MIN_WORK && O >= MLP_COL_BLOCK) ? n_threads : 1;
}

int mlp_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int mlp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

double mlp_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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
