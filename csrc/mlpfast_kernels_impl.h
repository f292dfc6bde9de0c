/* Kernel bodies, written once and included (by mlpfast_kernels_dtypes.h) for
 * each (dtype, instruction set) pair, with the dtype parameters REAL / SUF /
 * UINT / EXP_* / LOG / COPYSIGN / TANH_SAT / SQRT / REAL_EPS defined for float or double, and
 * ISA naming the instruction set; the parameters are #undef'd at the end.
 * Every kernel here is name_SUF_ISA; mlpfast_dispatch_impl.h defines the
 * public name_SUF. No include guard on purpose. */

#define FN(name) MLP_CAT(MLP_CAT(name, SUF), ISA)

/* The reduction exp and tanh share: x (in [EXP_MIN, EXP_MAX]) = k ln2 + r with
 * |r| <= ln2 / 2 (ln 2 in two parts, so k * LN2_HI is exact); returns
 * exp(r) - 1 = r (1 + r / 2 + ...) by Horner on the Taylor terms and sets
 * *scale = 2^k, written into the exponent bits. */
static inline REAL FN(expm1_reduced)(REAL x, REAL *scale)
{
    const REAL t = x * EXP_LOG2E + EXP_SHIFT;
    const REAL kf = t - EXP_SHIFT;
    const REAL r = (x - kf * EXP_LN2_HI) - kf * EXP_LN2_LO;
    REAL q = (REAL)mlp_inv_factorial[EXP_DEGREE];
    UINT bits;
    int n;
    for (n = EXP_DEGREE - 1; n >= 1; n--)
        q = q * r + (REAL)mlp_inv_factorial[n];
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - EXP_SHIFT_BITS + EXP_BIAS) << EXP_MANT_BITS; /* 2^k */
    memcpy(scale, &bits, sizeof *scale);
    return q * r;
}

/* exp(x), written out so that loops over it vectorise (libm's exp is an opaque
 * call): x = k ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln 2),
 * exp(r) by Horner on its Taylor series, 2^k put straight into the exponent
 * bits (k read off the bits of x / ln2 + SHIFT, so no float-to-int conversion).
 * The Taylor coefficients 1/n! are mlp_inv_factorial (mlpfast_kernels.c).
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

/* out[N,D] = X[idx[n], :]. The rows are scattered over X, which is often
 * larger than the caches, so each copy of a short row would wait on memory:
 * rows shorter than MLP_GATHER_AHEAD bytes have the row about that many bytes
 * ahead prefetched meanwhile (longer rows stream well enough by themselves). */
void FN(mlp_gather_rows)(REAL *out, const REAL *X, const ptrdiff_t *idx,
                         ptrdiff_t N, ptrdiff_t D, int n_threads)
{
    const ptrdiff_t row = D * (ptrdiff_t)sizeof(REAL);
    const ptrdiff_t ahead = row < MLP_GATHER_AHEAD ? MLP_GATHER_AHEAD / row : N;
    ptrdiff_t n;
    MLP_FOR(n, N, N * D >= MLP_OMP_MIN_WORK, n_threads, {
        if (n + ahead < N)
            mlp_prefetch(X + idx[n + ahead] * D, row);
        memcpy(out + n * D, X + idx[n] * D, (size_t)row);
    });
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
#pragma omp parallel for schedule(static) num_threads(n_threads) reduction(| : bad)
    for (c = 0; c < n_chunks; c++) {
        const ptrdiff_t i0 = c * MLP_FINITE_CHUNK;
        const ptrdiff_t i1 = i0 + MLP_FINITE_CHUNK < n ? i0 + MLP_FINITE_CHUNK : n;
        bad |= !FN(all_finite_range)(x + i0, i1 - i0);
    }
    return !bad;
}

/* Z[N,O] = X[rows] @ W[I,O], X in CSR form (data, indices, indptr);
 * batch row n is X's row rows[n], or row0 + n when rows is NULL. */
void FN(mlp_csr_matmul)(REAL *Z, const REAL *data, const ptrdiff_t *indices,
                        const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                        ptrdiff_t N, const REAL *W, ptrdiff_t O, int n_threads)
{
    ptrdiff_t n;
    MLP_FOR(n, N, N * O >= MLP_OMP_MIN_WORK, n_threads, {
        const ptrdiff_t r = rows ? rows[n] : row0 + n;
        REAL *z = Z + n * O;
        ptrdiff_t p, o;
        for (o = 0; o < O; o++)
            z[o] = 0;
        for (p = indptr[r]; p < indptr[r + 1]; p++) {
            const REAL x = data[p];
            const REAL *w = W + indices[p] * O;
            for (o = 0; o < O; o++)
                z[o] += x * w[o];
        }
    });
}

/* dW[I,O] = X[rows].T @ D[N,O] (overwrites dW), X in CSR form as above.
 * Threads take column blocks and walk the non-zeros in row order, so every
 * dW[i,o] is summed in the same order whatever the number of threads. */
void FN(mlp_csr_matmul_tn)(REAL *dW, const REAL *data, const ptrdiff_t *indices,
                           const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                           ptrdiff_t N, const REAL *D, ptrdiff_t I, ptrdiff_t O,
                           int n_threads)
{
    const int n_blocks = mlp_column_blocks(I * O, O, n_threads);
    int blk;
    MLP_FOR(blk, n_blocks, n_blocks > 1, n_threads, {
        const ptrdiff_t o0 = O * blk / n_blocks, o1 = O * (blk + 1) / n_blocks;
        ptrdiff_t n, i, p, o;
        for (i = 0; i < I; i++)
            for (o = o0; o < o1; o++)
                dW[i * O + o] = 0;
        for (n = 0; n < N; n++) {
            const ptrdiff_t r = rows ? rows[n] : row0 + n;
            const REAL *d = D + n * O;
            for (p = indptr[r]; p < indptr[r + 1]; p++) {
                const REAL x = data[p];
                REAL *g = dW + indices[p] * O;
                for (o = o0; o < o1; o++)
                    g[o] += x * d[o];
            }
        }
    });
}

/* z[O] <- act(z + b), one row */
static void FN(bias_act_row)(REAL *z, const REAL *b, int act, ptrdiff_t O)
{
    ptrdiff_t o;
    switch (act) {
    case MLP_ACT_LOGISTIC:
        for (o = 0; o < O; o++)
            z[o] = (REAL)1 / ((REAL)1 + FN(exp)(-(z[o] + b[o])));
        break;
    case MLP_ACT_TANH:
        for (o = 0; o < O; o++)
            z[o] = FN(tanh)(z[o] + b[o]);
        break;
    case MLP_ACT_RELU:
        for (o = 0; o < O; o++) {
            REAL t = z[o] + b[o];
            z[o] = t > 0 ? t : 0;
        }
        break;
    default: /* identity */
        for (o = 0; o < O; o++)
            z[o] += b[o];
    }
}

/* Z[N,O] <- act(Z + b) */
void FN(mlp_bias_act_forward)(REAL *Z, const REAL *b, int act, ptrdiff_t N,
                              ptrdiff_t O, int n_threads)
{
    ptrdiff_t n;
    MLP_FOR(n, N, N * O >= MLP_OMP_MIN_WORK, n_threads,
            { FN(bias_act_row)(Z + n * O, b, act, O); });
}

/* columns [o0, o1) of dZ[N,O] <- dZ * act'(A), and db[o0:o1] = their sums over n */
static void FN(act_backward_columns)(REAL *dZ, REAL *db, const REAL *A, int act,
                                     ptrdiff_t N, ptrdiff_t O, ptrdiff_t o0, ptrdiff_t o1)
{
    ptrdiff_t n, o;
    for (o = o0; o < o1; o++)
        db[o] = 0;
    for (n = 0; n < N; n++) {
        REAL *d = dZ + n * O;
        const REAL *a = A + n * O;
        switch (act) {
        case MLP_ACT_LOGISTIC: /* s' = s (1 - s) */
            for (o = o0; o < o1; o++)
                d[o] = d[o] * a[o] * ((REAL)1 - a[o]);
            break;
        case MLP_ACT_TANH: /* tanh' = 1 - tanh^2 */
            for (o = o0; o < o1; o++)
                d[o] *= (REAL)1 - a[o] * a[o];
            break;
        case MLP_ACT_RELU: /* relu' = [relu > 0] */
            for (o = o0; o < o1; o++)
                d[o] = a[o] == 0 ? (REAL)0 : d[o];
            break;
        default:
            break;
        }
        for (o = o0; o < o1; o++)
            db[o] += d[o];
    }
}

/* dZ[N,O] <- dZ * act'(A);  db[O] = sum_n dZ.
 * Threads take column blocks and sweep the rows in order, so each db[o] is
 * summed in row order whatever the number of threads. */
void FN(mlp_act_backward)(REAL *dZ, REAL *db, const REAL *A, int act,
                          ptrdiff_t N, ptrdiff_t O, int n_threads)
{
    const int n_blocks = mlp_column_blocks(N * O, O, n_threads);
    int blk;
    MLP_FOR(blk, n_blocks, n_blocks > 1, n_threads, {
        FN(act_backward_columns)(dZ, db, A, act, N, O, O * blk / n_blocks,
                                 O * (blk + 1) / n_blocks);
    });
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
void FN(mlp_output_forward)(REAL *Z, const REAL *b, int out, ptrdiff_t N,
                            ptrdiff_t K, int n_threads)
{
    const ptrdiff_t n_blocks = (N + MLP_OUT_BLOCK - 1) / MLP_OUT_BLOCK;
    ptrdiff_t blk;
    MLP_FOR(blk, n_blocks, N * K >= MLP_OMP_MIN_WORK, n_threads, {
        const ptrdiff_t n0 = blk * MLP_OUT_BLOCK;
        const ptrdiff_t n1 = n0 + MLP_OUT_BLOCK < N ? n0 + MLP_OUT_BLOCK : N;
        FN(output_block)(Z + n0 * K, b, out, n1 - n0, K);
    });
}

/* One row of mlp_output_loss_backward: d[K] = w (p - y); returns loss_n, its
 * terms summed over k in order (logs only where they count). */
static REAL FN(loss_delta_row)(REAL *d, const REAL *p, const REAL *y, REAL w, int out,
                               ptrdiff_t K)
{
    const REAL lo = REAL_EPS, hi = (REAL)1 - REAL_EPS;
    REAL loss = 0;
    ptrdiff_t k;
    for (k = 0; k < K; k++)
        d[k] = (p[k] - y[k]) * w;
#define CLIP(v) ((v) < lo ? lo : ((v) > hi ? hi : (v)))
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
    default:
        for (k = 0; k < K; k++) {
            const REAL r = y[k] - p[k];
            loss += (REAL)0.5 * r * r;
        }
    }
#undef CLIP
    return loss;
}

/* P = out(Z + b) in place; row_loss[n] = sw_n loss_n; dZ = sw_n (P - Y); db = sum_n dZ.
 *
 * Why delta = P - Y for every pair: each output activation is the canonical
 * link of its loss. E.g. softmax + cross-entropy: L = -sum_k y_k log p_k with
 * p = softmax(z) gives dL/dz_j = -sum_k y_k (δ_kj - p_j) = p_j - y_j (as sum_k y_k = 1).
 * Logistic + binary CE, identity + squared error and exp + Poisson deviance
 * reduce to the same p - y. */
double FN(mlp_output_loss_backward)(REAL *dZ, REAL *db, REAL *Z, double *row_loss,
                                    const REAL *b, const REAL *Y, const REAL *sw,
                                    int out, ptrdiff_t N, ptrdiff_t K, int n_threads)
{
    ptrdiff_t n, k;
    double total = 0;
    FN(mlp_output_forward)(Z, b, out, N, K, n_threads);
    MLP_FOR(n, N, N * K >= MLP_OMP_MIN_WORK, n_threads, {
        const REAL w = sw ? sw[n] : (REAL)1;
        row_loss[n] = (double)w * (double)FN(loss_delta_row)(dZ + n * K, Z + n * K,
                                                             Y + n * K, w, out, K);
    });
    for (n = 0; n < N; n++)
        total += row_loss[n];
    for (k = 0; k < K; k++)
        db[k] = 0;
    for (n = 0; n < N; n++)
        for (k = 0; k < K; k++)
            db[k] += dZ[n * K + k];
    return total;
}

/* Shared driver of the chunked reductions: n elements in fixed chunks of
 * MLP_REDUCE_CHUNK, partial[c] = CHUNK_CALL(i0, i1, ic) for chunk c = [i0, i1)
 * (ic: where the coefficients end inside it), summed in chunk order; threaded
 * from MIN_N elements. */
#define MLP_CHUNKS(CHUNK_CALL, MIN_N)                                                \
    const ptrdiff_t n_chunks = (n + MLP_REDUCE_CHUNK - 1) / MLP_REDUCE_CHUNK;        \
    ptrdiff_t c;                                                                     \
    double total = 0;                                                                \
    MLP_FOR(c, n_chunks, n >= (MIN_N), n_threads, {                                  \
        const ptrdiff_t i0 = c * MLP_REDUCE_CHUNK;                                   \
        const ptrdiff_t i1 = i0 + MLP_REDUCE_CHUNK < n ? i0 + MLP_REDUCE_CHUNK : n;  \
        const ptrdiff_t ic = n_coef < i0 ? i0 : (n_coef > i1 ? i1 : n_coef);         \
        (void)ic;                                                                    \
        partial[c] = (double)CHUNK_CALL(i0, i1, ic);                                 \
    });                                                                              \
    for (c = 0; c < n_chunks; c++)                                                   \
        total += partial[c];                                                         \
    return total;

/* Body of one chunk of an optimiser step over x[0:n] (x = params, grad and the
 * state, already offset to the chunk): the finished gradient g is
 * (grad + alpha * params) / sw_sum for the first nc entries (coefficients) and
 * grad / sw_sum after; UPDATE(i, g) updates params[i]. Returns the sum of
 * squares of the updated params[0:nc], kept in MLP_LANES running sums so the
 * loop vectorises with a fixed summation order (no reassociation needed). */
#define MLP_CHUNK_LOOP(UPDATE)                                     \
    REAL lane[MLP_LANES] = {0}, sq = 0;                            \
    ptrdiff_t i = 0;                                               \
    int j;                                                         \
    for (; i + MLP_LANES <= nc; i += MLP_LANES)                    \
        for (j = 0; j < MLP_LANES; j++) {                          \
            const REAL g = (grad[i + j] + a * params[i + j]) / s;  \
            UPDATE(i + j, g);                                      \
            lane[j] += params[i + j] * params[i + j];              \
        }                                                          \
    for (j = 0; i < nc; i++, j++) {                                \
        const REAL g = (grad[i] + a * params[i]) / s;              \
        UPDATE(i, g);                                              \
        lane[j] += params[i] * params[i];                          \
    }                                                              \
    for (; i < n; i++) {                                           \
        const REAL g = grad[i] / s;                                \
        UPDATE(i, g);                                              \
    }                                                              \
    for (j = 0; j < MLP_LANES; j++)                                \
        sq += lane[j];                                             \
    return sq;

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
#define SUM_SQUARES_CALL(i0, i1, ic) FN(sum_squares_chunk)(x + (i0), (i1) - (i0))
    MLP_CHUNKS(SUM_SQUARES_CALL, MLP_OMP_MIN_WORK)
#undef SUM_SQUARES_CALL
}

/* grad <- (grad + alpha * params) / sw_sum on coefficients, grad / sw_sum on intercepts */
void FN(mlp_finish_grad)(REAL *grad, const REAL *params, ptrdiff_t n, ptrdiff_t n_coef,
                         double alpha, double sw_sum, int n_threads)
{
    const REAL a = (REAL)alpha, s = (REAL)sw_sum;
    ptrdiff_t i;
    MLP_FOR(i, n_coef, n >= MLP_OMP_MIN_WORK, n_threads,
            { grad[i] = (grad[i] + a * params[i]) / s; });
    for (i = n_coef; i < n; i++)
        grad[i] /= s;
}

/* velocity = momentum * velocity - lr * g;  params += velocity
 * (Nesterov: params += momentum * velocity - lr * g, with the new velocity) */
static REAL FN(sgd_chunk)(REAL *restrict params, REAL *restrict velocity,
                          const REAL *restrict grad, ptrdiff_t n, ptrdiff_t nc, REAL a,
                          REAL s, REAL r, REAL mu, REAL nest)
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

double FN(mlp_sgd_step)(REAL *params, REAL *velocity, const REAL *grad, double *partial,
                        ptrdiff_t n, ptrdiff_t n_coef, double alpha, double sw_sum,
                        double lr, double momentum, int nesterov, int n_threads)
{
    const REAL a = (REAL)alpha, s = (REAL)sw_sum, r = (REAL)lr, mu = (REAL)momentum;
    const REAL nest = nesterov ? (REAL)1 : (REAL)0;
#define SGD_CALL(i0, i1, ic)                                                          \
    FN(sgd_chunk)(params + (i0), velocity + (i0), grad + (i0), (i1) - (i0), (ic) - (i0), \
                  a, s, r, mu, nest)
    MLP_CHUNKS(SGD_CALL, STEP_MIN_N)
#undef SGD_CALL
}

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  params += -lr m / (sqrt(v) + eps)
 * lr already carries the bias correction sqrt(1 - b2^t) / (1 - b1^t). */
static REAL FN(adam_chunk)(REAL *restrict params, REAL *restrict m, REAL *restrict v,
                           const REAL *restrict grad, ptrdiff_t n, ptrdiff_t nc, REAL a,
                           REAL s, REAL r, REAL b1, REAL b2, REAL c1, REAL c2, REAL e)
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

double FN(mlp_adam_step)(REAL *params, REAL *m, REAL *v, const REAL *grad, double *partial,
                         ptrdiff_t n, ptrdiff_t n_coef, double alpha, double sw_sum,
                         double lr, double beta1, double beta2, double eps, int n_threads)
{
    const REAL a = (REAL)alpha, s = (REAL)sw_sum, r = (REAL)lr, e = (REAL)eps;
    const REAL b1 = (REAL)beta1, b2 = (REAL)beta2;
    const REAL c1 = (REAL)(1 - beta1), c2 = (REAL)(1 - beta2);
#define ADAM_CALL(i0, i1, ic)                                                         \
    FN(adam_chunk)(params + (i0), m + (i0), v + (i0), grad + (i0), (i1) - (i0),       \
                   (ic) - (i0), a, s, r, b1, b2, c1, c2, e)
    MLP_CHUNKS(ADAM_CALL, STEP_MIN_N)
#undef ADAM_CALL
}

/* Called by each thread of an OpenMP team ahead of an optimiser step on
 * params[0:n] with n_threads: the caller evicts the chunks that the step's
 * static schedule (MLP_CHUNKS: MLP_FOR's, one contiguous run of chunks per
 * thread) gives to the next thread of the team, so every chunk is evicted once,
 * by a thread that does not step it. Nothing outside a team of two or more. */
void FN(mlp_evict_for_step)(const REAL *params, ptrdiff_t n, int n_threads)
{
#ifdef _OPENMP
    const int team = omp_get_num_threads();
    const int stepper = (omp_get_thread_num() + 1) % team;
    const int steppers = n >= STEP_MIN_N && n_threads > 1 ? n_threads : 1;
    const ptrdiff_t n_chunks = (n + MLP_REDUCE_CHUNK - 1) / MLP_REDUCE_CHUNK;
    const ptrdiff_t per = n_chunks / steppers, extra = n_chunks % steppers;
    ptrdiff_t i0, i1;
    if (team < 2 || stepper >= steppers)
        return;
    i0 = (stepper * per + (stepper < extra ? stepper : extra)) * MLP_REDUCE_CHUNK;
    i1 = i0 + (per + (stepper < extra ? 1 : 0)) * MLP_REDUCE_CHUNK;
    if (i1 > n)
        i1 = n;
    if (i0 < i1)
        mlp_evict(params + i0, (i1 - i0) * (ptrdiff_t)sizeof(REAL));
#else
    (void)params;
    (void)n;
    (void)n_threads;
#endif
}

#undef MLP_CHUNKS
#undef MLP_CHUNK_LOOP
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
#undef LOG
#undef COPYSIGN
#undef TANH_SAT
#undef SQRT
#undef REAL_EPS
#undef STEP_MIN_N
