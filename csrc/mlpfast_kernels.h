/* mlpfast compute kernels: plain C99, no Python, no BLAS, no allocation.
 *
 * Dimension legend (used in every shape comment below):
 *   N  rows in the batch        I  fan-in of a dense layer
 *   O  fan-out of a dense layer K  outputs of the last layer
 * Every matrix is row-major and contiguous.
 *
 * Gradient rule: every backward kernel OVERWRITES its gradient outputs
 * (dZ, db, ...); nothing accumulates into caller-zeroed buffers.
 *
 * Determinism: no kernel's result depends on the thread count. Reductions
 * either run along one thread (column sums are split by column blocks) or
 * go through fixed-size chunks summed in a fixed order.
 *
 * Each kernel exists for float (_f32) and double (_f64); both are generated
 * from mlpfast_kernels_impl.h.
 */
#ifndef MLPFAST_KERNELS_H
#define MLPFAST_KERNELS_H

#include <stddef.h>

/* Hidden activations. The order is the table index used by the Python layer. */
enum mlp_activation {
    MLP_ACT_IDENTITY = 0,
    MLP_ACT_LOGISTIC = 1,
    MLP_ACT_TANH = 2,
    MLP_ACT_RELU = 3
};

/* Output activation fused with its loss. */
enum mlp_output {
    MLP_OUT_IDENTITY_SQUARED = 0, /* identity + half squared error      */
    MLP_OUT_LOGISTIC_BINARY = 1,  /* logistic + binary cross-entropy    */
    MLP_OUT_SOFTMAX_MULTI = 2,    /* softmax + categorical cross-entropy */
    MLP_OUT_EXP_POISSON = 3       /* exp + half Poisson deviance         */
};

/* Rows per chunk of the deterministic chunked reductions. */
#define MLP_REDUCE_CHUNK 4096

/* Instruction sets the kernels are compiled for, chosen at run time. */
enum mlp_isa {
    MLP_ISA_BASELINE = 0, /* the compiler's default target (x86-64: SSE2) */
    MLP_ISA_AVX2 = 1      /* x86-64 with AVX2 and FMA                     */
};

/* 1 when this build has `isa` and this CPU runs it, else 0. */
int mlp_isa_supported(int isa);
/* Dispatch every kernel to `isa`; returns 0, or -1 (and changes nothing) when
 * unsupported. Results do not depend on the choice. Not thread-safe: call it
 * before any kernel runs. */
int mlp_set_isa(int isa);
/* The instruction set in use (MLP_ISA_BASELINE until mlp_set_isa). */
int mlp_get_isa(void);

/* Returns 1 when the kernels were compiled with OpenMP, else 0. */
int mlp_openmp_enabled(void);
/* omp_get_max_threads() (OMP_NUM_THREADS, omp_set_num_threads), or 1 without OpenMP. */
int mlp_max_threads(void);
/* Monotonic wall clock in seconds (for periodic interrupt checks). */
double mlp_monotonic_seconds(void);
/* An OpenMP barrier for the enclosing parallel region (Cython's prange loops in
 * one `parallel` block end without one); nothing without OpenMP. */
void mlp_omp_barrier(void);

#define MLP_DECLARE(REAL, SUF)                                                   \
    int mlp_all_finite_##SUF(const REAL *x, ptrdiff_t n, int n_threads);         \
    void mlp_gather_rows_##SUF(REAL *out, const REAL *X, const ptrdiff_t *idx,   \
                               ptrdiff_t N, ptrdiff_t D, int n_threads);         \
    void mlp_csr_matmul_##SUF(REAL *Z, const REAL *data, const ptrdiff_t *indices, \
                              const ptrdiff_t *indptr, const ptrdiff_t *rows,    \
                              ptrdiff_t row0, ptrdiff_t N, const REAL *W,        \
                              ptrdiff_t O, int n_threads);                       \
    void mlp_csr_matmul_tn_##SUF(REAL *dW, const REAL *data,                     \
                                 const ptrdiff_t *indices, const ptrdiff_t *indptr, \
                                 const ptrdiff_t *rows, ptrdiff_t row0,          \
                                 ptrdiff_t N, const REAL *D, ptrdiff_t I,        \
                                 ptrdiff_t O, int n_threads);                    \
    void mlp_bias_act_forward_##SUF(REAL *Z, const REAL *b, int act,             \
                                    ptrdiff_t N, ptrdiff_t O, int n_threads);    \
    void mlp_act_backward_##SUF(REAL *dZ, REAL *db, const REAL *A, int act,      \
                                ptrdiff_t N, ptrdiff_t O, int n_threads);        \
    void mlp_output_forward_##SUF(REAL *Z, const REAL *b, int out,               \
                                  ptrdiff_t N, ptrdiff_t K, int n_threads);      \
    double mlp_output_loss_backward_##SUF(                                       \
        REAL *dZ, REAL *db, REAL *Z, double *row_loss, const REAL *b,           \
        const REAL *Y, const REAL *sw, int out, ptrdiff_t N, ptrdiff_t K,        \
        int n_threads);                                                          \
    double mlp_sum_squares_##SUF(const REAL *x, ptrdiff_t n, double *partial,    \
                                 int n_threads);                                 \
    double mlp_sgd_step_##SUF(REAL *params, REAL *velocity, const REAL *grad,    \
                              double *partial, ptrdiff_t n, ptrdiff_t n_coef,    \
                              double alpha, double sw_sum, double lr,            \
                              double momentum, int nesterov, int n_threads);     \
    double mlp_adam_step_##SUF(REAL *params, REAL *m, REAL *v, const REAL *grad, \
                               double *partial, ptrdiff_t n, ptrdiff_t n_coef,   \
                               double alpha, double sw_sum, double lr,           \
                               double beta1, double beta2, double eps,           \
                               int n_threads);                                   \
    void mlp_finish_grad_##SUF(REAL *grad, const REAL *params, ptrdiff_t n,      \
                               ptrdiff_t n_coef, double alpha, double sw_sum,    \
                               int n_threads);                                   \
    void mlp_evict_for_step_##SUF(const REAL *params, ptrdiff_t n, int n_threads);

MLP_DECLARE(float, f32)
MLP_DECLARE(double, f64)

#undef MLP_DECLARE

/* Kernel contracts (shown for _f64; _f32 is the same with float):
 *
 * mlp_all_finite:           returns 1 when no x[i] is NaN or infinite, else 0
 * mlp_gather_rows:          out[N,D] = X[idx[n], :]
 * mlp_csr_matmul:           Z[N,O] = X[rows] @ W[I,O] for a CSR X (data, indices, indptr);
 *                           batch row n is X row rows[n], or row0 + n if rows is NULL.
 * mlp_csr_matmul_tn:        dW[I,O] = X[rows].T @ D[N,O] for the same CSR rows.
 * mlp_bias_act_forward:     Z[N,O] <- act(Z + b)                    (in place)
 * mlp_act_backward:         dZ[N,O] <- dZ * act'(A);  db[O] = sum_n dZ
 *                           A is the activation's forward OUTPUT.
 * mlp_output_forward:       Z[N,K] <- out(Z + b)   (prediction, no loss)
 * mlp_output_loss_backward: Z[N,K] <- P = out(Z + b);  row_loss[N] = sw_n * loss_n;
 *                           dZ[N,K] = sw_n * (P - Y);  db[K] = sum_n dZ;
 *                           returns sum_n row_loss[n] (summed in row order).
 *                           sw may be NULL (all weights 1). loss_n is, per row:
 *                             squared:  1/2 sum_k (y - p)^2
 *                             binary:   -sum_k [y log p + (1-y) log(1-p)], p clipped to [eps, 1-eps]
 *                             multi:    -sum_k y log p, p clipped to [eps, 1-eps]
 *                             poisson:  sum_k [y log(y/p) - y + p]
 * mlp_sum_squares:          returns sum_i x[i]^2 (partial: ceil(n/CHUNK) doubles)
 * mlp_finish_grad:          grad[i] <- (grad[i] + alpha*params[i]) / sw_sum for i < n_coef,
 *                           grad[i] / sw_sum otherwise (coefs first, intercepts last).
 * mlp_sgd_step / mlp_adam_step: one optimiser update over the flat buffer;
 *                           the raw gradient is finished as in mlp_finish_grad on the fly.
 *                           Return the sum of squares of the UPDATED params[:n_coef]
 *                           (the L2 term of the next batch), via `partial`.
 * mlp_evict_for_step:       called by every thread of an OpenMP team (a no-op outside
 *                           one) just before an optimiser step on params[:n] with
 *                           n_threads: drops the parameters from every CPU's caches,
 *                           each chunk by a thread other than the one that will step
 *                           it. Changes no value. Why: the step writes parameters
 *                           that every thread of the pass before it has read, and
 *                           on some machines (threads on different L3 caches: EPYC
 *                           core complexes, or VMs placed on them) a write to a line
 *                           another core holds costs many times a plain write.
 *                           After the eviction the step reads them back from memory
 *                           instead. _engine.pyx measures when it pays.
 */

#endif /* MLPFAST_KERNELS_H */
