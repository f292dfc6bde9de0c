/* Instantiates mlpfast_kernels_impl.h for float and double, for the
 * instruction set named by ISA (included by mlpfast_kernels.c once per ISA).
 * The implementation #undefs these dtype parameters when it is done.
 * No include guard on purpose. */

#define REAL float
#define SUF f32
#define UINT uint32_t /* an unsigned integer as wide as REAL */
#define EXP_SHIFT 12582912.0f /* 0x1.8p23: t + SHIFT rounds t to an integer */
#define EXP_SHIFT_BITS 0x4B400000u
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693145751953125f /* ln 2 in 16 bits: k * LN2_HI is exact */
#define EXP_LN2_LO 1.42860682030941723212e-6f
#define EXP_MIN (-87.3f) /* exp(MIN) > FLT_MIN; below MIN exp flushes to 0 */
#define EXP_MAX 88.3f    /* round(MAX / ln 2) = 127, the top exponent; above, +inf */
#define EXP_MANT_BITS 23
#define EXP_BIAS 127u
#define EXP_DEGREE 7 /* Taylor terms r^n / n! kept: error < 1e-8 for |r| <= ln2 / 2 */
#define NCDF_SPLIT_MASK 0xFFFFF000u /* keeps 12 bits: hi^2 exact */
#define NCDF_SPLIT_DEGREE 4
#define LOG logf
#define LOG1P_DEGREE 6 /* terms of log1p_unit's series: error < 2e-8 */
#define SIN sinf
#define COS cosf
#define COPYSIGN copysignf
#define TANH_SAT 10.0f /* tanh(x) rounds to 1 from x = 9.01 */
#define SQRT sqrtf
#define REAL_EPS 1.1920928955078125e-07f /* FLT_EPSILON, as numpy's finfo(float32).eps */
#include "mlpfast_kernels_impl.h"

#define REAL double
#define SUF f64
#define UINT uint64_t
#define EXP_SHIFT 6755399441055744.0 /* 0x1.8p52 */
#define EXP_SHIFT_BITS 0x4338000000000000u
#define EXP_LOG2E 1.4426950408889634074
#define EXP_LN2_HI 6.93147180369123816490e-01 /* ln 2 in 32 bits (fdlibm's split) */
#define EXP_LN2_LO 1.90821492927058770002e-10
#define EXP_MIN (-708.0)
#define EXP_MAX 709.0
#define EXP_MANT_BITS 52
#define EXP_BIAS 1023u
#define EXP_DEGREE 13 /* error < 1e-17 for |r| <= ln2 / 2 */
#define NCDF_SPLIT_MASK 0xFFFFFFFFF8000000u /* keeps 26 bits: hi^2 exact */
#define NCDF_SPLIT_DEGREE 3
#define LOG log
#define LOG1P_DEGREE 15 /* error < 2e-17 */
#define SIN sin
#define COS cos
#define COPYSIGN copysign
#define TANH_SAT 20.0 /* tanh(x) rounds to 1 from x = 19.06 */
#define SQRT sqrt
#define REAL_EPS 2.220446049250313e-16 /* DBL_EPSILON, as numpy's finfo(float64).eps */
#include "mlpfast_kernels_impl.h"
