/* mlpfast compute kernels: plain C99, no Python, no BLAS, no allocation.
 *
 * Dimension legend (used in every shape comment below):
 *   N  rows in the block        I  fan-in of a dense layer
 *   O  fan-out of a dense layer K  outputs of the last layer
 * Every matrix is row-major and contiguous.
 *
 * Layer kernels (activations, the output head, gathers, sparse products) run
 * on the calling thread over one block of rows: the engine shares out blocks,
 * never the inside of a kernel. Only whole-buffer kernels (finiteness check,
 * sums of squares, optimiser steps) take n_threads; they reduce in fixed
 * chunks summed in a fixed order, so no result depends on the thread count.
 *
 * Gradient rule: every backward kernel OVERWRITES its outputs; nothing
 * accumulates into caller-zeroed buffers.
 *
 * Each kernel exists for float (_f32) and double (_f64); both are generated
 * from mlpfast_kernels_impl.h.
 */
#ifndef MLPFAST_KERNELS_H
#define MLPFAST_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Hidden activations: the one table of codes (the Python tables are built
 * from it, see mlpfast/_engine.pyx). A parameter c, where there is one, is
 * struct mlp_act's param. */
enum mlp_activation {
    MLP_ACT_IDENTITY = 0,
    MLP_ACT_LOGISTIC = 1,
    MLP_ACT_TANH = 2,
    MLP_ACT_RELU = 3,
    MLP_ACT_LEAKY_RELU = 4, /* z, or c z below 0 (c >= 0) */
    MLP_ACT_ELU = 5,        /* z, or c (exp(z) - 1) below 0 (c > 0) */
    MLP_ACT_SELU = 6,       /* MLP_SELU_SCALE times ELU with MLP_SELU_ALPHA */
    MLP_ACT_SOFTPLUS = 7,   /* log(1 + exp(z)) */
    MLP_ACT_GELU = 8,       /* z Phi(z), Phi the standard normal distribution */
    MLP_ACT_PRELU = 9,      /* z, or s_o z below 0: a learned slope s_o per unit */
    MLP_ACT_SINE = 10,      /* sin(c z) */
    MLP_ACT_MAXOUT = 11,    /* max over j < P of z[j O + o]: P pieces per unit */
    MLP_N_ACTIVATIONS
};
/* The default parameter of each activation that has one (and PReLU's first
 * slopes), as PyTorch's where it has them; SIREN's omega_0 for sine. */
#define MLP_LEAKY_SLOPE 0.01
#define MLP_ELU_ALPHA 1.0
#define MLP_SINE_OMEGA 30.0
#define MLP_MAXOUT_PIECES 2
#define MLP_PRELU_SLOPE 0.25
/* SELU's constants (Klambauer et al. 2017), as PyTorch's */
#define MLP_SELU_ALPHA 1.6732632423543772848170429916717
#define MLP_SELU_SCALE 1.0507009873554804934193349852946
#define MLP_INV_SQRT_2PI 0.39894228040143267793994605993438

/* A hidden layer's activation: its code and settings. Its layer computes
 * pieces * O pre-activations Z for O units: pieces is maxout's, 1 for the
 * others. */
struct mlp_act {
    int code;
    int pieces;
    double param; /* leaky_relu: its slope; elu: alpha; sine: omega_0 */
};

/* Output activation fused with its loss. The hinge losses read Y as 0/1
 * indicators: per output (y = 1 the positive class) or, multi-class, one 1
 * per row (the true class). */
enum mlp_output {
    MLP_OUT_IDENTITY_SQUARED = 0,  /* identity + half squared error         */
    MLP_OUT_LOGISTIC_BINARY = 1,   /* logistic + binary cross-entropy       */
    MLP_OUT_SOFTMAX_MULTI = 2,     /* softmax + categorical cross-entropy   */
    MLP_OUT_EXP_POISSON = 3,       /* exp + half Poisson deviance           */
    MLP_OUT_IDENTITY_HUBER = 4,    /* identity + Huber loss (param: its threshold) */
    MLP_OUT_IDENTITY_ABSOLUTE = 5, /* identity + absolute error             */
    MLP_OUT_HINGE = 6,             /* identity + hinge loss per output      */
    MLP_OUT_SQUARED_HINGE = 7,     /* identity + squared hinge per output   */
    MLP_OUT_MULTI_HINGE = 8,       /* identity + Weston-Watkins multi-class hinge */
    MLP_OUT_MULTI_SQUARED_HINGE = 9, /* the same, its terms squared         */
    MLP_N_OUTPUTS
};

enum mlp_solver { MLP_SOLVER_SGD = 0, MLP_SOLVER_ADAM = 1 };

/* An optimiser: its hyper-parameters and state, one struct for every solver.
 * state1 is SGD's velocity or Adam's first moment, state2 Adam's second
 * (arrays of the parameters' dtype and length). */
struct mlp_optimizer {
    int solver;
    double learning_rate; /* SGD: this epoch's rate; Adam: learning_rate_init */
    double momentum;      /* SGD */
    int nesterov;         /* SGD */
    double beta1, beta2, epsilon; /* Adam */
    long t;               /* Adam: steps taken so far */
    void *state1, *state2;
};

/* n_threads of a call that every thread of the enclosing parallel region
 * makes, sharing its work out among them (mlp_sum_squares, mlp_finish_grad,
 * mlp_step, mlp_add_noise). */
#define MLP_TEAM (-1)

/* Elements per chunk of the deterministic chunked reductions. */
#define MLP_REDUCE_CHUNK 4096

/* Instruction sets the kernels are compiled for, chosen at run time. */
enum mlp_isa {
    MLP_ISA_BASELINE = 0, /* the compiler's default target (x86-64: SSE2) */
    MLP_ISA_AVX2 = 1,     /* x86-64 with AVX2 and FMA                     */
    MLP_ISA_AVX512 = 2    /* and AVX-512 F, DQ, BW and VL (x86-64-v4's)   */
};

/* 1 when this build has `isa` and this CPU runs it, else 0. */
int mlp_isa_supported(int isa);
/* Dispatch every kernel to `isa`; returns 0, or -1 (and changes nothing) when
 * unsupported. Results do not depend on the choice. Not thread-safe: call it
 * before any kernel runs. */
int mlp_set_isa(int isa);
/* The instruction set in use (MLP_ISA_BASELINE until mlp_set_isa). */
int mlp_get_isa(void);

/* 1 when the activation's backward reads Z (mlp_act_forward's Z, kept apart
 * from A in training), else 0: it needs the pre-activation, or (gelu and
 * softplus) forward leaves the derivative there. */
int mlp_act_keeps_z(int act);

/* The float64 table of FN(normal_cdf_gelu_d) (mlpfast_normal_impl.h), for code that
 * computes the same function elsewhere (mlpfast.onnx): for a >= 0,
 * (1 - Phi(a)) exp(a^2 / 2) = P(a) / Q(a), a clamped to *amax; P's coefficients
 * (of a^0, a^1, ...) in num, Q's in den. Returns P's degree (Q's is one more). */
int mlp_normal_tail_table(const double **num, const double **den, double *amax);

/* The key of one place (a data row, a layer, an index) under `key`: the
 * counter-based random numbers of the perturbation kernels are functions of
 * such keys alone. */
uint64_t mlp_key(uint64_t key, uint64_t place);

/* Adds delta to the count of engine calls under way in this process (atomic)
 * and returns the new count; mlp_calls_active reads it. */
int mlp_calls_change(int delta);
int mlp_calls_active(void);

/* Registers (once) the fork handler that makes the forked child of a process
 * that ran a team of threads run on one thread; 0 on success.
 * mlp_in_forked_child returns 1 in such a child. Every parallel region takes
 * its thread count through mlp_team, which records a team of more than one. */
int mlp_watch_fork(void);
int mlp_in_forked_child(void);
int mlp_team(int n_threads);
/* Returns 1 when the kernels were compiled with OpenMP, else 0. */
int mlp_openmp_enabled(void);
/* omp_get_max_threads() (OMP_NUM_THREADS, omp_set_num_threads), or 1 without
 * OpenMP or in a forked child. */
int mlp_max_threads(void);
/* Monotonic wall clock in seconds. */
double mlp_monotonic_seconds(void);
/* An OpenMP barrier for the enclosing parallel region (Cython's prange loops in
 * one `parallel` block end without one); nothing without OpenMP. */
void mlp_omp_barrier(void);
/* Work shared out by claims, for threads of one region: mlp_claim returns
 * *counter and adds 1 to it (atomic); mlp_publish sets *flag to 1 after every
 * write made before it, and mlp_await returns once it is 1, with those writes
 * visible. */
int mlp_claim(int *counter);
void mlp_publish(int *flag);
void mlp_await(const int *flag);

#define MLP_DECLARE(REAL, SUF)                                                   \
    int mlp_all_finite_##SUF(const REAL *x, ptrdiff_t n, int n_threads);         \
    void mlp_gather_rows_##SUF(REAL *out, const REAL *X, const ptrdiff_t *idx,   \
                               ptrdiff_t N, ptrdiff_t D);                        \
    void mlp_csr_matmul_##SUF(REAL *Z, const REAL *data, const ptrdiff_t *indices, \
                              const ptrdiff_t *indptr, const ptrdiff_t *rows,    \
                              ptrdiff_t row0, ptrdiff_t N, const REAL *W,        \
                              ptrdiff_t O);                                      \
    void mlp_csr_matmul_tn_##SUF(REAL *dW, const REAL *data,                     \
                                 const ptrdiff_t *indices, const ptrdiff_t *indptr, \
                                 const ptrdiff_t *rows, ptrdiff_t row0, ptrdiff_t N, \
                                 const REAL *D, ptrdiff_t O, ptrdiff_t i0,       \
                                 ptrdiff_t i1);                                  \
    void mlp_act_forward_##SUF(REAL *A, REAL *Z, const REAL *b, const REAL *slope, \
                               const struct mlp_act *act, ptrdiff_t N, ptrdiff_t O); \
    void mlp_act_backward_##SUF(REAL *dZ, REAL *dS, const REAL *dA, const REAL *Z, \
                                const REAL *A, const REAL *slope,                \
                                const struct mlp_act *act, ptrdiff_t N, ptrdiff_t O); \
    void mlp_perturb_forward_##SUF(REAL *H, const REAL *A, const ptrdiff_t *rows, \
                                   ptrdiff_t row0, uint64_t key, double p,       \
                                   double sigma, ptrdiff_t N, ptrdiff_t O);      \
    void mlp_perturb_backward_##SUF(REAL *dA, const ptrdiff_t *rows, ptrdiff_t row0, \
                                    uint64_t key, double p, ptrdiff_t N,         \
                                    ptrdiff_t O);                                \
    void mlp_add_noise_##SUF(REAL *out, const REAL *x, ptrdiff_t n, uint64_t key,  \
                             double sigma, int n_threads);                       \
    void mlp_column_sums_##SUF(REAL *s, const REAL *X, ptrdiff_t N, ptrdiff_t O); \
    void mlp_output_forward_##SUF(REAL *Z, const REAL *b, int out,               \
                                  ptrdiff_t N, ptrdiff_t K);                     \
    void mlp_output_loss_backward_##SUF(REAL *dZ, REAL *Z, double *row_loss,     \
                                        const REAL *b, const REAL *Y,            \
                                        const REAL *sw, int out, double param,   \
                                        ptrdiff_t N, ptrdiff_t K);               \
    double mlp_sum_squares_##SUF(const REAL *x, ptrdiff_t n, double *partial,    \
                                 int n_threads);                                 \
    double mlp_finish_grad_##SUF(REAL *grad, const REAL *slots, ptrdiff_t n_slots, \
                                 const REAL *params, double *partial, ptrdiff_t n, \
                                 ptrdiff_t n_coef, double alpha, double sw_sum,  \
                                 int n_threads);                                 \
    double mlp_step_##SUF(REAL *params, REAL *grad, const REAL *slots,           \
                          ptrdiff_t n_slots, double *partial, ptrdiff_t n,       \
                          ptrdiff_t n_coef, double alpha, double sw_sum,         \
                          struct mlp_optimizer *opt, int n_threads);

MLP_DECLARE(float, f32)
MLP_DECLARE(double, f64)

#undef MLP_DECLARE

/* Kernel contracts (shown for _f64; _f32 is the same with float):
 *
 * mlp_all_finite:           returns 1 when no x[i] is NaN or infinite, else 0
 * mlp_gather_rows:          out[N,D] = X[idx[n], :]
 * mlp_csr_matmul:           Z[N,O] = X[rows] @ W[I,O] for a CSR X (data, indices, indptr);
 *                           block row n is X's row rows[n], or row0 + n when rows is NULL
 * mlp_csr_matmul_tn:        dW[i0:i1] = X[rows][:, i0:i1].T @ D[N,O] for the same CSR rows
 * mlp_act_forward:          Z[N,PO] <- Z + b;  A[N,O] = act(Z)   (P = act->pieces;
 *                           A may be Z: in place, a prediction's); slope[O]: PReLU's
 *                           slopes (else unread). Apart (training), gelu and softplus
 *                           then leave dA/dZ in Z instead: it shares their terms.
 * mlp_act_backward:         dZ[N,PO] = dA[N,O] * dA/dZ, written with A = act(Z) where
 *                           that is cheaper; Z, forward's (apart), is read only when
 *                           mlp_act_keeps_z.
 *                           dZ may be dA when P is 1. PReLU: also dS[N,O] = dA * min(Z, 0),
 *                           each row's part of the slopes' gradient (else dS unread).
 * mlp_perturb_forward:      H[N,O] = (A + sigma G) * M / (1 - p) (H may be A): dropout of
 *                           rate p (M 0 with probability p, else 1) after Gaussian noise
 *                           G, both drawn from mlp_key(key, data row of each block row)
 *                           (rows[n], or row0 + n when rows is NULL)
 * mlp_perturb_backward:     dA[N,O] <- dA * M / (1 - p), the same M
 * mlp_add_noise:            out[i] = x[i] + sigma G_i, G_i drawn from mlp_key(key, i)
 * mlp_column_sums:          s[O] = sum_n X[n, :], summed in row order
 * mlp_output_forward:       Z[N,K] <- out(Z + b)   (prediction, no loss)
 * mlp_output_loss_backward: Z[N,K] <- P = out(Z + b);  row_loss[N] = sw_n * loss_n;
 *                           dZ[N,K] = sw_n * dloss_n/dz (P - Y for the first four).
 *                           sw may be NULL (all weights 1). loss_n is, per row, with
 *                           r = p - y, s = 2y - 1 and c the row's true class:
 *                             squared:  1/2 sum_k r^2
 *                             binary:   -sum_k [y log p + (1-y) log(1-p)], p clipped to [eps, 1-eps]
 *                             multi:    -sum_k y log p, p clipped to [eps, 1-eps]
 *                             poisson:  sum_k [y log(y/p) - y + p]
 *                             huber:    sum_k r^2 / 2 where |r| <= e, e (|r| - e/2) beyond
 *                                       (e = param > 0)
 *                             absolute: sum_k |r|
 *                             hinge:    sum_k max(0, 1 - s z)^q        (q = 1, or 2 squared)
 *                             multi hinge: sum_{k != c} max(0, 1 + z_k - z_c)^q
 * mlp_sum_squares:          returns sum_i x[i]^2 (partial: ceil(n/CHUNK) doubles)
 * mlp_finish_grad:          grad[i] <- (grad[i] + alpha*params[i]) / sw_sum for i < n_coef,
 *                           grad[i] / sw_sum otherwise (coefs first, intercepts last),
 *                           grad first summed with the n_slots gradients at slots
 *                           (each n long, one after the other; NULL when n_slots is 0)
 *                           in their order: the row blocks' parts of one gradient.
 *                           Returns the sum of squares of params[:n_coef] (the L2 term).
 * mlp_step:                 one update of opt's solver over the flat buffer, the raw
 *                           gradient (with its slots) finished as in mlp_finish_grad
 *                           on the fly, left summed but unfinished in grad; Adam's
 *                           step count opt->t advances by one and its bias correction
 *                           lr sqrt(1 - b2^t) / (1 - b1^t) is taken here. Returns the
 *                           sum of squares of the UPDATED params[:n_coef] (the L2 term
 *                           of the next batch), via `partial`.
 */

#endif /* MLPFAST_KERNELS_H */
