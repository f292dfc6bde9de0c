/* Kernel bodies, written once and included (by mlpfast_kernels_dtypes.h) for
 * each (dtype, instruction set) pair, with the dtype parameters REAL / SUF /
 * UINT / EXP_* / NCDF_* / LOG1P_DEGREE / LOG / SIN / COS / COPYSIGN / TANH_SAT / SQRT / REAL_EPS defined
 * for float or double, and ISA naming the instruction set; the parameters are #undef'd at the end.
 * Every kernel here is name_SUF_ISA; mlpfast_dispatch_impl.h defines the
 * public name_SUF. No include guard on purpose. */

#define FN(name) MLP_CAT(MLP_CAT(name, SUF), ISA)

#ifndef MLP_EXP_TABLES
#define MLP_EXP_TABLES
/* 1/n! for n = 0..13, in each dtype: the Taylor coefficients of the kernels' exp */
#define MLP_INV_FACTORIALS                                                          \
    {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,         \
     1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,     \
     1.0 / 6227020800.0}
static const float mlp_inv_factorial_f32[14] = MLP_INV_FACTORIALS;
static const double mlp_inv_factorial_f64[14] = MLP_INV_FACTORIALS;
#undef MLP_INV_FACTORIALS
/* 1/(2n + 1) for n = 0..15, in each dtype: the series of atanh(s) / s in s^2 */
#define MLP_INV_ODDS                                                                \
    {1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15,          \
     1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23, 1.0 / 25, 1.0 / 27, 1.0 / 29, 1.0 / 31}
static const float mlp_inv_odd_f32[16] = MLP_INV_ODDS;
static const double mlp_inv_odd_f64[16] = MLP_INV_ODDS;
#undef MLP_INV_ODDS
#endif
#define INV_FACTORIAL MLP_CAT(mlp_inv_factorial, SUF)
#define INV_ODD MLP_CAT(mlp_inv_odd, SUF)

/* c[0] + c[1] x + ... + c[d] x^d for a constant 3 <= d <= 18: Horner's rule on the
 * first three terms, around Estrin's scheme on the rest (pairs c[2i] + c[2i+1] x,
 * then pairs of those with x^2, x^4 and x^8). The chain of dependent
 * operations is then at most 7 steps long where Horner's rule alone makes it
 * d: the kernels' loops are bound by that latency. The last Horner steps keep
 * the low terms, which dominate for |x| < 1, as accurate as Horner's rule
 * alone. The tests on d fold away. */
static inline REAL FN(poly)(const REAL *c, int d, REAL x)
{
    const REAL x2 = x * x, x4 = x2 * x2, x8 = x4 * x4, *e = c + 3;
    const int de = d - 3; /* e's degree */
    REAL p[8], q[4], r[2], y;
    int i;
    for (i = 0; i < 8; i++)
        p[i] = 2 * i > de ? (REAL)0 : (2 * i + 1 > de ? e[2 * i] : e[2 * i] + e[2 * i + 1] * x);
    for (i = 0; i < 4; i++)
        q[i] = 4 * i > de ? (REAL)0 : (4 * i + 2 > de ? p[2 * i] : p[2 * i] + p[2 * i + 1] * x2);
    for (i = 0; i < 2; i++)
        r[i] = 8 * i > de ? (REAL)0 : (8 * i + 4 > de ? q[2 * i] : q[2 * i] + q[2 * i + 1] * x4);
    y = 8 > de ? r[0] : r[0] + r[1] * x8;
    for (i = 2; i >= 0; i--)
        y = y * x + c[i];
    return y;
}

/* The reduction exp and tanh share: x (in [EXP_MIN, EXP_MAX]) = k ln2 + r with
 * |r| <= ln2 / 2 (ln 2 in two parts, so k * LN2_HI is exact); returns
 * exp(r) - 1 = r (1 + r / 2 + ...) from the Taylor terms (FN(poly)) and sets
 * *scale = 2^k, written into the exponent bits. */
static inline REAL FN(expm1_reduced)(REAL x, REAL *scale)
{
    const REAL t = x * EXP_LOG2E + EXP_SHIFT;
    const REAL kf = t - EXP_SHIFT;
    const REAL r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO;
    const REAL q = FN(poly)(INV_FACTORIAL + 1, EXP_DEGREE - 1, r);
    UINT bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - EXP_SHIFT_BITS + EXP_BIAS) << EXP_MANT_BITS; /* 2^k */
    memcpy(scale, &bits, sizeof *scale);
    return q * r;
}

/* exp(x), written out so that loops over it vectorise (libm's exp is an opaque
 * call): x = k ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln 2),
 * exp(r) from its Taylor series, 2^k put straight into the exponent bits (k
 * read off the bits of x / ln2 + SHIFT, so no float-to-int conversion).
 * Within 2 ulp of the true value for x in [EXP_MIN, EXP_MAX]; 0 below (no
 * subnormals: they would be under 1e-38 for float, 1e-307 for double), +inf
 * above (a narrow band below the float/double overflow point included), NaN for
 * NaN. Results are the same on every instruction set (no fused multiply-adds). */
static inline REAL FN(exp)(REAL x)
{
    const REAL xc = x < EXP_MAX ? (x > EXP_MIN ? x : EXP_MIN) : EXP_MAX;
    REAL scale, y;
    y = (FN(expm1_reduced)(xc, &scale) + 1) * scale;
    y = x > EXP_MAX ? (REAL)INFINITY : y;
    y = x < EXP_MIN ? (REAL)0 : y;
    return x != x ? x : y;
}

/* tanh(x) = sign(x) e / (e + 2) with e = expm1(2|x|), vectorisable. expm1 is
 * FN(exp)'s reduction 2|x| = k ln2 + r with exp(r) - 1 and 2^k - 1 kept apart,
 * so nothing cancels for small |x| (there e = 2|x|(1 + ...) and tanh = |x|(...)).
 * 2|x| is clamped where tanh rounds to 1; the sign (-0 included) is copied back.
 * Within 3 ulp of tanh (tested); NaN for NaN; the same on every instruction set. */
static inline REAL FN(tanh)(REAL x)
{
    const REAL ax = x < 0 ? -x : x;
    REAL scale, e;
    e = FN(expm1_reduced)(2 * (ax < TANH_SAT ? ax : TANH_SAT), &scale);
    e = e * scale + (scale - 1); /* expm1(2|x|) = 2^k (exp(r) - 1) + 2^k - 1 */
    return x != x ? x : COPYSIGN(e / (e + 2), x);
}

/* expm1(x) from FN(exp)'s reduction, so that nothing cancels near 0: -1
 * below EXP_MIN, +inf above EXP_MAX, NaN for NaN; the same on every
 * instruction set. */
static inline REAL FN(expm1)(REAL x)
{
    const REAL xc = x < EXP_MAX ? (x > EXP_MIN ? x : EXP_MIN) : EXP_MAX;
    REAL scale, e;
    e = FN(expm1_reduced)(xc, &scale);
    e = e * scale + (scale - 1);
    e = x > EXP_MAX ? (REAL)INFINITY : e;
    e = x < EXP_MIN ? (REAL)-1 : e;
    return x != x ? x : e;
}

/* log(1 + x) for x in [0, 1] (softplus's log(1 + exp(-|z|))), vectorisable
 * where libm's log1p is an opaque call: 2 atanh(s) with s = x / (2 + x) in
 * [0, 1/3], written x - x s + 2 s^3 (1/3 + s^2 / 5 + ...) (2 s = x - x s), so
 * that x itself carries the leading term and every rounding lands on a term
 * at most about s times the result: within 2 ulp with FN(exp)'s e (tested),
 * however small x. The series in s^2 <= 1/9 is cut after LOG1P_DEGREE terms
 * (the rest is below half an ulp); the same on every instruction set. */
static inline REAL FN(log1p_unit)(REAL x)
{
    const REAL s = x / ((REAL)2 + x), s2 = s * s;
    return (x - x * s) + (REAL)2 * s * s2 * FN(poly)(INV_ODD + 1, LOG1P_DEGREE - 1, s2);
}

#include "mlpfast_normal_impl.h"

/* out[N,D] = X[idx[n], :]. The rows are scattered over X, which is often
 * larger than the caches, so each copy of a short row would wait on memory:
 * rows shorter than MLP_GATHER_AHEAD bytes have the row about that many bytes
 * ahead prefetched meanwhile (longer rows stream well enough by themselves). */
void FN(mlp_gather_rows)(REAL *out, const REAL *X, const ptrdiff_t *idx,
                         ptrdiff_t N, ptrdiff_t D)
{
    const ptrdiff_t row = D * (ptrdiff_t)sizeof(REAL);
    const ptrdiff_t ahead = row < MLP_GATHER_AHEAD ? MLP_GATHER_AHEAD / row : N;
    ptrdiff_t n;
    for (n = 0; n < N; n++) {
        if (n + ahead < N)
            mlp_prefetch(X + idx[n + ahead] * D, row);
        memcpy(out + n * D, X + idx[n] * D, (size_t)row);
    }
}

/* 1 when every x[i], i < n, is finite (no NaN, no infinity), else 0 */
static int FN(all_finite_range)(const REAL *x, ptrdiff_t n)
{
    /* x - x is 0 for a finite x and NaN otherwise; MLP_LANES running sums
     * (NaN sticks) keep the loop branch-free so it vectorises. */
    REAL lane[MLP_LANES] = {0}, acc = 0;
    ptrdiff_t i = 0;
    int j;
    for (; i + MLP_LANES <= n; i += MLP_LANES)
        for (j = 0; j < MLP_LANES; j++)
            lane[j] += x[i + j] - x[i + j];
    for (j = 0; i < n; i++, j++)
        lane[j] += x[i] - x[i];
    for (j = 0; j < MLP_LANES; j++)
        acc += lane[j];
    return acc == 0;
}

/* returns 1 when every x[i] is finite, else 0; threaded over chunks of
 * MLP_FINITE_CHUNK elements from two chunks on */
int FN(mlp_all_finite)(const REAL *x, ptrdiff_t n, int n_threads)
{
    const ptrdiff_t n_chunks = (n + MLP_FINITE_CHUNK - 1) / MLP_FINITE_CHUNK;
    ptrdiff_t c;
    int bad = 0;
    if (n_chunks < 2 || n_threads < 2)
        return FN(all_finite_range)(x, n);
#pragma omp parallel for schedule(static) num_threads(mlp_team(n_threads)) reduction(| : bad)
    for (c = 0; c < n_chunks; c++) {
        const ptrdiff_t i0 = c * MLP_FINITE_CHUNK;
        const ptrdiff_t i1 = i0 + MLP_FINITE_CHUNK < n ? i0 + MLP_FINITE_CHUNK : n;
        bad |= !FN(all_finite_range)(x + i0, i1 - i0);
    }
    return !bad;
}

/* Z[N,O] = X[rows] @ W[I,O], X in CSR form (data, indices, indptr);
 * block row n is X's row rows[n], or row0 + n when rows is NULL. */
void FN(mlp_csr_matmul)(REAL *Z, const REAL *data, const ptrdiff_t *indices,
                        const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                        ptrdiff_t N, const REAL *W, ptrdiff_t O)
{
    ptrdiff_t n, p, o;
    for (n = 0; n < N; n++) {
        const ptrdiff_t r = rows ? rows[n] : row0 + n;
        REAL *z = Z + n * O;
        for (o = 0; o < O; o++)
            z[o] = 0;
        for (p = indptr[r]; p < indptr[r + 1]; p++) {
            const REAL x = data[p];
            const REAL *w = W + indices[p] * O;
            for (o = 0; o < O; o++)
                z[o] += x * w[o];
        }
    }
}

/* dW[i0:i1] = X[rows][:, i0:i1].T @ D[N,O] (overwrites those rows), X in CSR
 * form as above; every dW[i,o] is summed over the rows in row order. */
void FN(mlp_csr_matmul_tn)(REAL *dW, const REAL *data, const ptrdiff_t *indices,
                           const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                           ptrdiff_t N, const REAL *D, ptrdiff_t O, ptrdiff_t i0,
                           ptrdiff_t i1)
{
    ptrdiff_t n, i, p, o;
    for (i = i0; i < i1; i++)
        for (o = 0; o < O; o++)
            dW[i * O + o] = 0;
    for (n = 0; n < N; n++) {
        const ptrdiff_t r = rows ? rows[n] : row0 + n;
        const REAL *d = D + n * O;
        for (p = indptr[r]; p < indptr[r + 1]; p++) {
            const ptrdiff_t j = indices[p];
            if (j >= i0 && j < i1) {
                const REAL x = data[p];
                REAL *g = dW + j * O;
                for (o = 0; o < O; o++)
                    g[o] += x * d[o];
            }
        }
    }
}

/* Z[N,PO] <- Z + b;  A[N,O] = act(Z) (A may be Z; P = act->pieces); apart,
 * gelu and softplus then leave their derivative in Z for backward */
void FN(mlp_act_forward)(REAL *A, REAL *Z, const REAL *b, const REAL *slope,
                         const struct mlp_act *act, ptrdiff_t N, ptrdiff_t O)
{
    const ptrdiff_t P = act->pieces, W = P * O;
    const REAL c = (REAL)act->param;
    ptrdiff_t n, o, j;
    for (n = 0; n < N; n++) {
        /* in place, row n of A ends before row n of Z begins but for n = 0,
         * where a[o] is written after every z[j O + o] it reads */
        REAL *z = Z + n * W, *a = A + n * O;
        for (o = 0; o < W; o++)
            z[o] += b[o];
        switch (act->code) {
        case MLP_ACT_LOGISTIC:
            for (o = 0; o < O; o++)
                a[o] = (REAL)1 / ((REAL)1 + FN(exp)(-z[o]));
            break;
        case MLP_ACT_TANH:
            for (o = 0; o < O; o++)
                a[o] = FN(tanh)(z[o]);
            break;
        case MLP_ACT_RELU:
            for (o = 0; o < O; o++)
                a[o] = z[o] > 0 ? z[o] : 0;
            break;
        case MLP_ACT_LEAKY_RELU:
            for (o = 0; o < O; o++)
                a[o] = z[o] > 0 ? z[o] : c * z[o];
            break;
        case MLP_ACT_ELU:
            for (o = 0; o < O; o++)
                a[o] = z[o] > 0 ? z[o] : c * FN(expm1)(z[o]);
            break;
        case MLP_ACT_SELU:
            for (o = 0; o < O; o++)
                a[o] = (REAL)MLP_SELU_SCALE
                       * (z[o] > 0 ? z[o] : (REAL)MLP_SELU_ALPHA * FN(expm1)(z[o]));
            break;
        case MLP_ACT_SOFTPLUS: /* max(z, 0) + log(1 + e), e = exp(-|z|): never overflows */
            if (a == z) {
                for (o = 0; o < O; o++) {
                    const REAL e = FN(exp)(z[o] > 0 ? -z[o] : z[o]);
                    a[o] = (z[o] > 0 ? z[o] : 0) + FN(log1p_unit)(e);
                }
            } else { /* two stores: a loop of its own, or it does not vectorise */
                for (o = 0; o < O; o++) {
                    const REAL e = FN(exp)(z[o] > 0 ? -z[o] : z[o]);
                    const REAL d = (z[o] > 0 ? (REAL)1 : e) / ((REAL)1 + e); /* logistic(z) */
                    a[o] = (z[o] > 0 ? z[o] : 0) + FN(log1p_unit)(e);
                    z[o] = d;
                }
            }
            break;
        case MLP_ACT_GELU: /* z Phi(z) */
            if (a == z) {
                for (o = 0; o < O; o++) {
                    REAL unused;
                    a[o] = z[o] * FN(normal_cdf_gelu_d)(z[o], &unused);
                }
            } else { /* two stores: a loop of its own, or it does not vectorise */
                for (o = 0; o < O; o++) {
                    REAL d;
                    a[o] = z[o] * FN(normal_cdf_gelu_d)(z[o], &d);
                    z[o] = d;
                }
            }
            break;
        case MLP_ACT_PRELU:
            for (o = 0; o < O; o++)
                a[o] = z[o] > 0 ? z[o] : slope[o] * z[o];
            break;
        case MLP_ACT_SINE:
            for (o = 0; o < O; o++)
                a[o] = SIN(c * z[o]);
            break;
        case MLP_ACT_MAXOUT: /* the largest piece */
            for (o = 0; o < O; o++) {
                REAL m = z[o];
                for (j = 1; j < P; j++)
                    m = z[j * O + o] > m ? z[j * O + o] : m;
                a[o] = m;
            }
            break;
        default: /* identity */
            if (a != z)
                memcpy(a, z, (size_t)O * sizeof(REAL));
        }
    }
}

/* dZ[N,PO] = dA[N,O] * dA/dZ with A = act(Z), Z forward's (dZ may be dA when P is 1);
 * PReLU: dS[N,O] = dA * min(Z, 0) too */
void FN(mlp_act_backward)(REAL *dZ, REAL *dS, const REAL *dA, const REAL *Z, const REAL *A,
                          const REAL *slope, const struct mlp_act *act, ptrdiff_t N,
                          ptrdiff_t O)
{
    const ptrdiff_t NO = N * O, P = act->pieces;
    const REAL c = (REAL)act->param;
    ptrdiff_t i, n, o, j;
    switch (act->code) {
    case MLP_ACT_LOGISTIC: /* s' = s (1 - s) */
        for (i = 0; i < NO; i++)
            dZ[i] = dA[i] * A[i] * ((REAL)1 - A[i]);
        break;
    case MLP_ACT_TANH: /* tanh' = 1 - tanh^2 */
        for (i = 0; i < NO; i++)
            dZ[i] = dA[i] * ((REAL)1 - A[i] * A[i]);
        break;
    case MLP_ACT_RELU: /* relu' = [relu > 0] */
        for (i = 0; i < NO; i++)
            dZ[i] = A[i] == 0 ? (REAL)0 : dA[i];
        break;
    case MLP_ACT_LEAKY_RELU: /* 1 above 0, the slope below (a has z's sign, c >= 0) */
        for (i = 0; i < NO; i++)
            dZ[i] = A[i] > 0 ? dA[i] : c * dA[i];
        break;
    case MLP_ACT_ELU: /* 1 above 0, c exp(z) = a + c below */
        for (i = 0; i < NO; i++)
            dZ[i] = A[i] > 0 ? dA[i] : dA[i] * (A[i] + c);
        break;
    case MLP_ACT_SELU: /* scale above 0, scale alpha exp(z) = a + scale alpha below */
        for (i = 0; i < NO; i++)
            dZ[i] = dA[i] * (A[i] > 0 ? (REAL)MLP_SELU_SCALE
                                      : A[i] + (REAL)(MLP_SELU_SCALE * MLP_SELU_ALPHA));
        break;
    case MLP_ACT_SOFTPLUS: /* the logistic function of z, and */
    case MLP_ACT_GELU:     /* Phi(z) + z phi(z): forward left them in Z */
        for (i = 0; i < NO; i++)
            dZ[i] = dA[i] * Z[i];
        break;
    case MLP_ACT_PRELU: /* 1 above 0, the slope below; d a / d s = min(z, 0) */
        for (n = 0; n < N; n++)
            for (o = 0; o < O; o++) {
                const REAL d = dA[n * O + o], z = Z[n * O + o];
                dS[n * O + o] = z > 0 ? (REAL)0 : d * z;
                dZ[n * O + o] = z > 0 ? d : slope[o] * d;
            }
        break;
    case MLP_ACT_SINE: /* c cos(c z) */
        for (i = 0; i < NO; i++)
            dZ[i] = dA[i] * c * COS(c * Z[i]);
        break;
    case MLP_ACT_MAXOUT: /* 1 for the piece forward took, 0 for the others */
        for (n = 0; n < N; n++) {
            const REAL *z = Z + n * P * O;
            REAL *dz = dZ + n * P * O;
            for (o = 0; o < O; o++) {
                REAL m = z[o];
                ptrdiff_t best = 0;
                for (j = 1; j < P; j++) {
                    best = z[j * O + o] > m ? j : best;
                    m = z[j * O + o] > m ? z[j * O + o] : m;
                }
                for (j = 0; j < P; j++)
                    dz[j * O + o] = j == best ? dA[n * O + o] : (REAL)0;
            }
        }
        break;
    default:
        if (dZ != dA)
            memcpy(dZ, dA, (size_t)NO * sizeof(REAL));
    }
}

/* H[N,O] = (A + sigma G) * M / (1 - p), the training-time perturbation of a
 * layer's input (H may be A). Row n draws from mlp_key(key, its data row):
 * rows[n], or row0 + n when rows is NULL. G is standard normal per unit, M is
 * 1 (kept) with probability 1 - p, else 0. */
void FN(mlp_perturb_forward)(REAL *H, const REAL *A, const ptrdiff_t *rows, ptrdiff_t row0,
                             uint64_t key, double p, double sigma, ptrdiff_t N, ptrdiff_t O)
{
    const uint32_t threshold = mlp_drop_threshold(p);
    const REAL scale = (REAL)(1 / (1 - p));
    ptrdiff_t n, o;
    for (n = 0; n < N; n++) {
        const uint64_t rk = mlp_key(key, (uint64_t)(rows ? rows[n] : row0 + n));
        const uint32_t lo = (uint32_t)rk;
        const REAL *a = A + n * O;
        REAL *h = H + n * O;
        if (sigma > 0) {
            for (o = 0; o < O; o++)
                h[o] = a[o] + (REAL)(sigma * mlp_gaussian(
                                         mlp_mix64(rk + (uint64_t)(o + 1) * MLP_GOLDEN64)));
            a = h; /* the mask applies to the noisy input, in place */
        }
        if (p > 0)
            for (o = 0; o < O; o++)
                h[o] = mlp_kept(lo, o, threshold) ? a[o] * scale : (REAL)0;
        else if (h != a)
            memcpy(h, a, (size_t)O * sizeof(REAL));
    }
}

/* dA[N,O] <- dA * M / (1 - p), M the mask of mlp_perturb_forward with the
 * same rows and key (the noise's derivative is 1) */
void FN(mlp_perturb_backward)(REAL *dA, const ptrdiff_t *rows, ptrdiff_t row0, uint64_t key,
                              double p, ptrdiff_t N, ptrdiff_t O)
{
    const uint32_t threshold = mlp_drop_threshold(p);
    const REAL scale = (REAL)(1 / (1 - p));
    ptrdiff_t n, o;
    for (n = 0; n < N; n++) {
        const uint32_t lo = (uint32_t)mlp_key(key, (uint64_t)(rows ? rows[n] : row0 + n));
        REAL *d = dA + n * O;
        for (o = 0; o < O; o++)
            d[o] = mlp_kept(lo, o, threshold) ? d[o] * scale : (REAL)0;
    }
}

/* out[i] = x[i] + sigma G_i for i < n, G_i standard normal from mlp_key(key, i) */
void FN(mlp_add_noise)(REAL *out, const REAL *x, ptrdiff_t n, uint64_t key, double sigma,
                       int n_threads)
{
    ptrdiff_t i;
    MLP_FOR(i, n, n >= MLP_OMP_MIN_WORK, n_threads,
            { out[i] = x[i] + (REAL)(sigma * mlp_gaussian(mlp_key(key, (uint64_t)i))); });
}

/* s[O] = sum_n X[n, :], in row order */
void FN(mlp_column_sums)(REAL *s, const REAL *X, ptrdiff_t N, ptrdiff_t O)
{
    ptrdiff_t n, o;
    for (o = 0; o < O; o++)
        s[o] = 0;
    for (n = 0; n < N; n++)
        for (o = 0; o < O; o++)
            s[o] += X[n * O + o];
}

/* Z[N,K] <- out(Z + b) for one block of rows: the bias (and, for softmax, each
 * row's max) first, then the exp of the whole block in one loop that
 * vectorises across rows, then softmax's row sums.
 * softmax: p = exp(z - max z) / sum exp(z - max z) */
static void FN(output_block)(REAL *Z, const REAL *b, int out, ptrdiff_t N, ptrdiff_t K)
{
    const ptrdiff_t NK = N * K;
    ptrdiff_t n, k, i;
    for (n = 0; n < N; n++) {
        REAL *z = Z + n * K;
        for (k = 0; k < K; k++)
            z[k] += b[k];
        if (out == MLP_OUT_SOFTMAX_MULTI) {
            REAL zmax = z[0];
            for (k = 1; k < K; k++)
                if (z[k] > zmax)
                    zmax = z[k];
            for (k = 0; k < K; k++)
                z[k] -= zmax;
        }
    }
    switch (out) {
    case MLP_OUT_LOGISTIC_BINARY:
        for (i = 0; i < NK; i++)
            Z[i] = (REAL)1 / ((REAL)1 + FN(exp)(-Z[i]));
        break;
    case MLP_OUT_SOFTMAX_MULTI:
    case MLP_OUT_EXP_POISSON:
        for (i = 0; i < NK; i++)
            Z[i] = FN(exp)(Z[i]);
        break;
    default:
        break;
    }
    if (out == MLP_OUT_SOFTMAX_MULTI)
        for (n = 0; n < N; n++) {
            REAL *z = Z + n * K, s = 0;
            for (k = 0; k < K; k++)
                s += z[k];
            for (k = 0; k < K; k++)
                z[k] /= s;
        }
}

/* Z[N,K] <- out(Z + b), in blocks of MLP_OUT_BLOCK rows */
void FN(mlp_output_forward)(REAL *Z, const REAL *b, int out, ptrdiff_t N, ptrdiff_t K)
{
    ptrdiff_t n0;
    for (n0 = 0; n0 < N; n0 += MLP_OUT_BLOCK)
        FN(output_block)(Z + n0 * K, b, out, N - n0 < MLP_OUT_BLOCK ? N - n0 : MLP_OUT_BLOCK,
                         K);
}

/* One row of mlp_output_loss_backward: d[K] = w dloss_n/dz; returns loss_n,
 * its terms summed over k in order (logs only where they count). */
static REAL FN(loss_delta_row)(REAL *d, const REAL *p, const REAL *y, REAL w, int out,
                               REAL param, ptrdiff_t K)
{
    const REAL lo = REAL_EPS, hi = (REAL)1 - REAL_EPS;
    REAL loss = 0;
    ptrdiff_t k, c;
#define CLIP(v) ((v) < lo ? lo : ((v) > hi ? hi : (v)))
    switch (out) {
    case MLP_OUT_LOGISTIC_BINARY:
    case MLP_OUT_SOFTMAX_MULTI:
    case MLP_OUT_EXP_POISSON:
    case MLP_OUT_IDENTITY_SQUARED: /* canonical links: d = w (p - y) */
        for (k = 0; k < K; k++)
            d[k] = (p[k] - y[k]) * w;
        break;
    case MLP_OUT_IDENTITY_HUBER: /* r, clipped to [-e, e] */
        for (k = 0; k < K; k++) {
            const REAL r = p[k] - y[k];
            d[k] = (r > param ? param : (r < -param ? -param : r)) * w;
        }
        break;
    case MLP_OUT_IDENTITY_ABSOLUTE: /* sign(r), 0 at 0 */
        for (k = 0; k < K; k++)
            d[k] = (REAL)((p[k] > y[k]) - (p[k] < y[k])) * w;
        break;
    }
    switch (out) {
    case MLP_OUT_LOGISTIC_BINARY:
        for (k = 0; k < K; k++) {
            if (y[k] != 0)
                loss -= y[k] * LOG(CLIP(p[k]));
            if ((REAL)1 - y[k] != 0)
                loss -= ((REAL)1 - y[k]) * LOG((REAL)1 - CLIP(p[k]));
        }
        break;
    case MLP_OUT_SOFTMAX_MULTI:
        for (k = 0; k < K; k++)
            if (y[k] != 0)
                loss -= y[k] * LOG(CLIP(p[k]));
        break;
    case MLP_OUT_EXP_POISSON:
        for (k = 0; k < K; k++) {
            if (y[k] != 0)
                loss += y[k] * LOG(y[k] / p[k]);
            loss += p[k] - y[k];
        }
        break;
    case MLP_OUT_IDENTITY_HUBER:
        for (k = 0; k < K; k++) {
            const REAL r = p[k] - y[k], a = r < 0 ? -r : r;
            loss += a <= param ? (REAL)0.5 * r * r : param * (a - (REAL)0.5 * param);
        }
        break;
    case MLP_OUT_IDENTITY_ABSOLUTE:
        for (k = 0; k < K; k++)
            loss += p[k] > y[k] ? p[k] - y[k] : y[k] - p[k];
        break;
    case MLP_OUT_HINGE:
    case MLP_OUT_SQUARED_HINGE:
        /* m = max(0, 1 - s z), s = +-1: dloss/dz = -s (hinge), -2 s m (squared) */
        for (k = 0; k < K; k++) {
            const REAL s = y[k] != 0 ? (REAL)1 : (REAL)-1, m = (REAL)1 - s * p[k];
            const int sq = out == MLP_OUT_SQUARED_HINGE;
            d[k] = m > 0 ? -s * (sq ? 2 * m : (REAL)1) * w : (REAL)0;
            loss += m > 0 ? (sq ? m * m : m) : (REAL)0;
        }
        break;
    case MLP_OUT_MULTI_HINGE:
    case MLP_OUT_MULTI_SQUARED_HINGE:
        /* m_k = max(0, 1 + z_k - z_c): dloss/dz_k = q m_k^(q-1) for k != c, and
         * z_c takes minus their sum */
        for (c = 0; c < K - 1 && y[c] == 0; c++)
            ;
        d[c] = 0;
        for (k = 0; k < K; k++) {
            const REAL m = (REAL)1 + p[k] - p[c];
            const int sq = out == MLP_OUT_MULTI_SQUARED_HINGE;
            if (k == c)
                continue;
            d[k] = m > 0 ? (sq ? 2 * m : (REAL)1) * w : (REAL)0;
            d[c] -= d[k];
            loss += m > 0 ? (sq ? m * m : m) : (REAL)0;
        }
        break;
    default:
        for (k = 0; k < K; k++) {
            const REAL r = y[k] - p[k];
            loss += (REAL)0.5 * r * r;
        }
    }
#undef CLIP
    return loss;
}

/* P = out(Z + b) in place; row_loss[n] = sw_n loss_n; dZ = sw_n dloss_n/dz.
 *
 * Why delta = P - Y for the first four pairs: each output activation is the
 * canonical link of its loss. E.g. softmax + cross-entropy: L = -sum_k y_k log p_k
 * with p = softmax(z) gives dL/dz_j = -sum_k y_k (δ_kj - p_j) = p_j - y_j (as
 * sum_k y_k = 1). Logistic + binary CE, identity + squared error and exp +
 * Poisson deviance reduce to the same p - y. The other losses sit on the
 * identity, p = z, and are differentiated directly (loss_delta_row). */
void FN(mlp_output_loss_backward)(REAL *dZ, REAL *Z, double *row_loss, const REAL *b,
                                  const REAL *Y, const REAL *sw, int out, double param,
                                  ptrdiff_t N, ptrdiff_t K)
{
    ptrdiff_t n;
    FN(mlp_output_forward)(Z, b, out, N, K);
    for (n = 0; n < N; n++) {
        const REAL w = sw ? sw[n] : (REAL)1;
        row_loss[n] = (double)w * (double)FN(loss_delta_row)(dZ + n * K, Z + n * K,
                                                             Y + n * K, w, out,
                                                             (REAL)param, K);
    }
}

/* Shared driver of the chunked reductions: n elements in fixed chunks of
 * MLP_REDUCE_CHUNK, partial[c] = CHUNK_CALL(i0, i1, ic) for chunk c = [i0, i1)
 * (ic: where the coefficients end inside it), summed in chunk order into TOTAL;
 * threaded from MIN_N elements, or with n_threads MLP_TEAM shared out over the
 * team of the enclosing parallel region, every thread of which makes the call
 * (and gets the total). */
#define MLP_CHUNKS(TOTAL, CHUNK_CALL, MIN_N)                                         \
    do {                                                                             \
        const ptrdiff_t n_chunks = (n + MLP_REDUCE_CHUNK - 1) / MLP_REDUCE_CHUNK;    \
        ptrdiff_t c;                                                                 \
        MLP_FOR(c, n_chunks, n >= (MIN_N), n_threads, {                              \
            const ptrdiff_t i0 = c * MLP_REDUCE_CHUNK;                               \
            const ptrdiff_t i1 = i0 + MLP_REDUCE_CHUNK < n ? i0 + MLP_REDUCE_CHUNK : n; \
            const ptrdiff_t ic = n_coef < i0 ? i0 : (n_coef > i1 ? i1 : n_coef);     \
            (void)ic;                                                                \
            partial[c] = (double)CHUNK_CALL(i0, i1, ic);                             \
        });                                                                          \
        TOTAL = 0;                                                                   \
        for (c = 0; c < n_chunks; c++)                                               \
            TOTAL += partial[c];                                                     \
    } while (0)

/* grad[0:n] += slot b's [off:off + n], for b = 0 .. n_slots - 1 in turn, slot
 * b at slots + b * stride (slots is read only when n_slots > 0, so it may be
 * NULL then): the row blocks' gradients summed in block order. */
static void FN(add_slots)(REAL *restrict grad, const REAL *restrict slots,
                          ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t off, ptrdiff_t n)
{
    ptrdiff_t b, i;
    for (b = 0; b < n_slots; b++) {
        const REAL *slot = slots + b * stride + off;
        for (i = 0; i < n; i++)
            grad[i] += slot[i];
    }
}

/* 1 / s when it is exact (s a power of two, within 2^+-64), else 0: then x *
 * (1 / s) is x / s to the bit, overflow, underflow, infinities and NaN
 * included (both round the same real number), and a multiplication costs a
 * fraction of a division. Batches of a power-of-two number of rows, unweighted,
 * take it. */
static inline REAL FN(exact_inverse)(REAL s)
{
    int e;
    return frexp((double)s, &e) == 0.5 && e >= -63 && e <= 65 ? (REAL)1 / s : (REAL)0;
}

/* Body of one chunk of an optimiser step over x[0:n] (x = params, grad and the
 * state, already offset to the chunk, which starts at off in the slots): first
 * the slots are added to grad (add_slots) while the chunk is in cache; the
 * finished gradient g is then (grad + alpha * params) / s for the first nc
 * entries (coefficients) and grad / s after (s = sw_sum; multiplied by inv_s
 * when that is exact_inverse's); UPDATE(i, g) updates params[i]. Returns the
 * sum of squares of the updated params[0:nc], kept in MLP_LANES running sums
 * so the loop vectorises with a fixed summation order (no reassociation
 * needed). */
#define MLP_CHUNK_LOOP(UPDATE)                           \
    FN(add_slots)(grad, slots, n_slots, stride, off, n); \
    if (inv_s != 0)                                      \
        MLP_CHUNK_PASS(UPDATE, * inv_s)                  \
    MLP_CHUNK_PASS(UPDATE, / s)

#define MLP_CHUNK_PASS(UPDATE, FINISH)                                   \
    {                                                                    \
        REAL lane[MLP_LANES] = {0}, sq = 0;                              \
        ptrdiff_t i = 0;                                                 \
        int j;                                                           \
        for (; i + MLP_LANES <= nc; i += MLP_LANES)                      \
            for (j = 0; j < MLP_LANES; j++) {                            \
                const REAL g = (grad[i + j] + a * params[i + j]) FINISH; \
                UPDATE(i + j, g);                                        \
                lane[j] += params[i + j] * params[i + j];                \
            }                                                            \
        for (j = 0; i < nc; i++, j++) {                                  \
            const REAL g = (grad[i] + a * params[i]) FINISH;             \
            UPDATE(i, g);                                                \
            lane[j] += params[i] * params[i];                            \
        }                                                                \
        for (; i < n; i++) {                                             \
            const REAL g = grad[i] FINISH;                               \
            UPDATE(i, g);                                                \
        }                                                                \
        for (j = 0; j < MLP_LANES; j++)                                  \
            sq += lane[j];                                               \
        return sq;                                                       \
    }

/* sum_i x[i]^2 over one chunk, in MLP_LANES running sums */
static REAL FN(sum_squares_chunk)(const REAL *restrict x, ptrdiff_t n)
{
    REAL lane[MLP_LANES] = {0}, sq = 0;
    ptrdiff_t i = 0;
    int j;
    for (; i + MLP_LANES <= n; i += MLP_LANES)
        for (j = 0; j < MLP_LANES; j++)
            lane[j] += x[i + j] * x[i + j];
    for (j = 0; i < n; i++, j++)
        lane[j] += x[i] * x[i];
    for (j = 0; j < MLP_LANES; j++)
        sq += lane[j];
    return sq;
}

/* returns sum_i x[i]^2, summed in fixed chunks so the result is thread-count free */
double FN(mlp_sum_squares)(const REAL *x, ptrdiff_t n, double *partial, int n_threads)
{
    const ptrdiff_t n_coef = n; /* MLP_CHUNKS splits at n_coef; nothing to split here */
    double sq;
#define SUM_SQUARES_CALL(i0, i1, ic) FN(sum_squares_chunk)(x + (i0), (i1) - (i0))
    MLP_CHUNKS(sq, SUM_SQUARES_CALL, MLP_OMP_MIN_WORK);
#undef SUM_SQUARES_CALL
    return sq;
}

/* One chunk of mlp_finish_grad: grad <- the slots added, then the finished
 * gradient of MLP_CHUNK_LOOP; params are only read */
static REAL FN(finish_chunk)(const REAL *restrict params, REAL *restrict grad,
                             const REAL *restrict slots, ptrdiff_t n_slots, ptrdiff_t stride,
                             ptrdiff_t off, ptrdiff_t n, ptrdiff_t nc, REAL a, REAL s,
                             REAL inv_s)
{
#define FINISH_UPDATE(i, g) grad[i] = (g);
    MLP_CHUNK_LOOP(FINISH_UPDATE)
#undef FINISH_UPDATE
}

/* grad <- the slots added, then (grad + alpha * params) / sw_sum on the
 * coefficients, grad / sw_sum on the intercepts, chunk by chunk; returns the
 * sum of squares of params[:n_coef], summed in mlp_sum_squares's chunks and
 * lanes (so to the same bits) */
double FN(mlp_finish_grad)(REAL *grad, const REAL *slots, ptrdiff_t n_slots, const REAL *params,
                           double *partial, ptrdiff_t n, ptrdiff_t n_coef, double alpha,
                           double sw_sum, int n_threads)
{
    const REAL a = (REAL)alpha, s = (REAL)sw_sum, inv_s = FN(exact_inverse)(s);
    double sq;
#define FINISH_CALL(i0, i1, ic)                                                           \
    FN(finish_chunk)(params + (i0), grad + (i0), slots, n_slots, n, i0, (i1) - (i0),      \
                     (ic) - (i0), a, s, inv_s)
    MLP_CHUNKS(sq, FINISH_CALL, MLP_OMP_MIN_WORK);
#undef FINISH_CALL
    return sq;
}

/* velocity = momentum * velocity - lr * g;  params += velocity
 * (Nesterov: params += momentum * velocity - lr * g, with the new velocity) */
static REAL FN(sgd_chunk)(REAL *restrict params, REAL *restrict velocity,
                          REAL *restrict grad, const REAL *restrict slots, ptrdiff_t n_slots,
                          ptrdiff_t stride, ptrdiff_t off, ptrdiff_t n, ptrdiff_t nc, REAL a,
                          REAL s, REAL inv_s, REAL r, REAL mu, REAL nest)
{
#define SGD_UPDATE(i, g)                                  \
    {                                                     \
        const REAL u = mu * velocity[i] - r * (g);        \
        velocity[i] = u;                                  \
        params[i] += nest != 0 ? mu * u - r * (g) : u;    \
    }
    MLP_CHUNK_LOOP(SGD_UPDATE)
#undef SGD_UPDATE
}

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  params += -lr m / (sqrt(v) + eps)
 * lr already carries the bias correction sqrt(1 - b2^t) / (1 - b1^t). */
static REAL FN(adam_chunk)(REAL *restrict params, REAL *restrict m, REAL *restrict v,
                           REAL *restrict grad, const REAL *restrict slots, ptrdiff_t n_slots,
                           ptrdiff_t stride, ptrdiff_t off, ptrdiff_t n, ptrdiff_t nc, REAL a,
                           REAL s, REAL inv_s, REAL r, REAL b1, REAL b2, REAL c1,
                           REAL c2, REAL e)
{
#define ADAM_UPDATE(i, g)                                 \
    {                                                     \
        m[i] = b1 * m[i] + c1 * (g);                      \
        v[i] = b2 * v[i] + c2 * ((g) * (g));              \
        params[i] += -r * m[i] / (SQRT(v[i]) + e);        \
    }
    MLP_CHUNK_LOOP(ADAM_UPDATE)
#undef ADAM_UPDATE
}

/* One step of opt's solver (see struct mlp_optimizer); Adam's bias correction
 * lr sqrt(1 - b2^t) / (1 - b1^t) is taken here, with t counting this step
 * (in a team, every thread reads opt->t before the chunks' closing barrier,
 * and the first writes it after). */
double FN(mlp_step)(REAL *params, REAL *grad, const REAL *slots, ptrdiff_t n_slots,
                    double *partial, ptrdiff_t n, ptrdiff_t n_coef, double alpha,
                    double sw_sum, struct mlp_optimizer *opt, int n_threads)
{
    const REAL a = (REAL)alpha, s = (REAL)sw_sum, inv_s = FN(exact_inverse)(s);
    REAL *s1 = (REAL *)opt->state1, *s2 = (REAL *)opt->state2;
    double sq;
    if (opt->solver == MLP_SOLVER_SGD) {
        const REAL r = (REAL)opt->learning_rate, mu = (REAL)opt->momentum;
        const REAL nest = opt->nesterov ? (REAL)1 : (REAL)0;
#define SGD_CALL(i0, i1, ic)                                                              \
    FN(sgd_chunk)(params + (i0), s1 + (i0), grad + (i0), slots, n_slots, n, i0,            \
                  (i1) - (i0), (ic) - (i0), a, s, inv_s, r, mu, nest)
        MLP_CHUNKS(sq, SGD_CALL, MLP_OMP_MIN_WORK);
#undef SGD_CALL
    } else {
        const long t = opt->t + 1;
        const REAL r = (REAL)(opt->learning_rate * sqrt(1 - pow(opt->beta2, (double)t))
                              / (1 - pow(opt->beta1, (double)t)));
        const REAL e = (REAL)opt->epsilon, b1 = (REAL)opt->beta1, b2 = (REAL)opt->beta2;
        const REAL c1 = (REAL)(1 - opt->beta1), c2 = (REAL)(1 - opt->beta2);
#define ADAM_CALL(i0, i1, ic)                                                             \
    FN(adam_chunk)(params + (i0), s1 + (i0), s2 + (i0), grad + (i0), slots, n_slots, n,   \
                   i0, (i1) - (i0), (ic) - (i0), a, s, inv_s, r, b1, b2, c1, c2, e)
        MLP_CHUNKS(sq, ADAM_CALL, MLP_OMP_MIN_WORK);
#undef ADAM_CALL
        if (mlp_team_thread(n_threads) == 0)
            opt->t = t;
    }
    return sq;
}

#undef MLP_CHUNKS
#undef MLP_CHUNK_LOOP
#undef MLP_CHUNK_PASS
#undef FN
#undef REAL
#undef SUF
#undef UINT
#undef EXP_SHIFT
#undef EXP_SHIFT_BITS
#undef EXP_LOG2E
#undef EXP_LN2_HI
#undef EXP_LN2_LO
#undef EXP_MIN
#undef EXP_MAX
#undef EXP_MANT_BITS
#undef EXP_BIAS
#undef EXP_DEGREE
#undef INV_FACTORIAL
#undef INV_ODD
#undef LOG
#undef LOG1P_DEGREE
#undef SIN
#undef COS
#undef COPYSIGN
#undef TANH_SAT
#undef SQRT
#undef REAL_EPS
#undef NCDF_SPLIT_MASK
#undef NCDF_SPLIT_DEGREE
