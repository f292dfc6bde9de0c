# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# Design: mlpfast has three layers.
#   1. csrc/mlpfast_kernels.{h,c}: C99 kernels (activations, fused output losses,
#      optimiser steps, row gathers), float and double, OpenMP over rows.
#   2. this module: owns the training buffers, calls BLAS ?gemm through
#      scipy.linalg.cython_blas for every matrix product, and runs a whole epoch
#      (batch gather, forward, loss, backward, optimiser step) under `nogil`.
#   3. mlpfast/_multilayer_perceptron.py: the scikit-learn estimators
#      (validation, labels, early stopping, verbose output), once per epoch.
#
# Parameters live in one flat buffer laid out as scikit-learn's `_pack`:
# every coefficient matrix (fan_in, fan_out) row-major, then every intercept.

from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport pow, sqrt
from libc.stdlib cimport malloc, free
from scipy.linalg.cython_blas cimport sgemm, dgemm

cimport mlpfast._ckernels as k

import numpy as np

ctypedef fused floating:
    float
    double

# How often (seconds) the nogil epoch loop takes the GIL to look for Ctrl-C.
cdef double SIGNAL_CHECK_SECONDS = 0.05

cdef enum:
    _SGD = 0
    _ADAM = 1

SOLVER_SGD = _SGD
SOLVER_ADAM = _ADAM


# Instruction sets of the element-wise kernels; the best available is used.
_KERNEL_ISAS = {"baseline": k.MLP_ISA_BASELINE, "avx2": k.MLP_ISA_AVX2}


def kernel_isas():
    """Instruction sets this build and this CPU can run the kernels with."""
    return [name for name, code in _KERNEL_ISAS.items() if k.mlp_isa_supported(code)]


def kernel_isa():
    """The instruction set the kernels run with now."""
    code = k.mlp_get_isa()
    return next(name for name, c in _KERNEL_ISAS.items() if c == code)


def set_kernel_isa(str name):
    """Run the kernels with instruction set ``name`` (results do not change).

    Not thread-safe; for tests and benchmarks.
    """
    if name not in _KERNEL_ISAS or k.mlp_set_isa(_KERNEL_ISAS[name]) != 0:
        raise ValueError(f"kernel ISA {name!r} is not available; have {kernel_isas()}")


set_kernel_isa(max(kernel_isas(), key=_KERNEL_ISAS.get))


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(k.mlp_openmp_enabled())


def openmp_max_threads():
    """OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl); 1 without OpenMP."""
    return k.mlp_max_threads()


def wake_hold(int n_threads, double seconds):
    """Holds the other CPUs awake for a team of n_threads (see
    csrc/mlpfast_wake.h); True when a hold was taken, which wake_release
    then gives back."""
    return bool(k.mlp_wake_hold(n_threads, seconds))


def wake_release():
    """Gives back a hold of wake_hold."""
    k.mlp_wake_release()


def set_wake_enabled(bint enabled):
    """Turns the waker threads on or off for later holds (results do not
    change); returns the previous setting. For tests and benchmarks."""
    return bool(k.mlp_wake_set_enabled(enabled))


def wake_stats():
    """The waker threads started, the holds taken and those outstanding, the
    spins so far and the seconds the ended ones lasted."""
    cdef int helpers
    cdef long taken, holds, spins
    cdef double spin_seconds
    k.mlp_wake_stats(&helpers, &taken, &holds, &spins, &spin_seconds)
    return {"helpers": helpers, "taken": taken, "holds": holds, "spins": spins,
            "spin_seconds": spin_seconds}


def _check_activation(int activation):
    if activation not in (k.MLP_ACT_IDENTITY, k.MLP_ACT_LOGISTIC, k.MLP_ACT_TANH,
                          k.MLP_ACT_RELU):
        raise ValueError(f"unknown activation code {activation}")


def _check_output(int output):
    if output not in (k.MLP_OUT_IDENTITY_SQUARED, k.MLP_OUT_LOGISTIC_BINARY,
                      k.MLP_OUT_SOFTMAX_MULTI, k.MLP_OUT_EXP_POISSON):
        raise ValueError(f"unknown output code {output}")


# ---------------------------------------------------------------- BLAS, row-major
# BLAS is column-major; a row-major (M, N) matrix is its column-major transpose,
# so C = A @ B is computed as C^T = B^T A^T.

cdef inline void _gemm(char ta, char tb, int m, int n, int kk, const floating *a, int lda,
                       const floating *b, int ldb, floating *c, int ldc,
                       floating beta=0) noexcept nogil:
    # c = op(a) @ op(b) + beta * c (column-major)
    cdef floating one = 1
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &kk, &one, <float *>a, &lda, <float *>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &kk, &one, <double *>a, &lda, <double *>b, &ldb, &beta, c, &ldc)


cdef inline void _mm(floating *C, const floating *A, const floating *B,
                     Py_ssize_t M, Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    # C[M,N] = A[M,K] @ B[K,N]
    _gemm(c'N', c'N', <int>N, <int>M, <int>K, B, <int>N, A, <int>K, C, <int>N)


cdef inline void _mm_tn(floating *C, const floating *A, const floating *B,
                        Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                        bint accumulate=False) noexcept nogil:
    # C[M,N] = A[K,M].T @ B[K,N]  (accumulate: C += ...)
    _gemm(c'N', c'T', <int>N, <int>M, <int>K, B, <int>N, A, <int>M, C, <int>N,
          1 if accumulate else 0)


cdef inline void _mm_nt(floating *C, const floating *A, const floating *B,
                        Py_ssize_t M, Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    # C[M,N] = A[M,K] @ B[N,K].T
    _gemm(c'T', c'N', <int>N, <int>M, <int>K, B, <int>K, A, <int>K, C, <int>N)


# Threaded products. During fit and predict BLAS runs on one thread (the
# estimator limits it with threadpoolctl) and the OpenMP threads share out each
# product in row blocks (column blocks for weight gradients): one thread pool,
# no oversubscription. The blocks depend on the matrix sizes and on the CPUs
# of the machine, never on the thread count, so every thread count makes the
# very same BLAS calls and gets bit-identical results.

# A product is split in at most this many blocks (the machine's CPU count,
# set once at import by mlpfast._config) ...
cdef Py_ssize_t MAX_BLOCKS = 1
# ... of at least this many rows (columns) each ...
cdef Py_ssize_t MIN_BLOCK = 32
# ... and only when it has this many multiply-adds. Measured on bench/'s cases
# (2 cores): a float64 product pays for the second thread from about 0.5M
# multiply-adds, a float32 one only from about 4M (lower thresholds made the
# float32 cases slower).
cdef Py_ssize_t PAR_MIN_MACS_F32 = 1 << 22
cdef Py_ssize_t PAR_MIN_MACS_F64 = 1 << 19


def set_max_blocks(Py_ssize_t n):
    """Most blocks one product is split into, and the gradient groups of a
    row-parallel batch; set once, to the CPU count, at import. Returns the
    previous value."""
    global MAX_BLOCKS
    previous, MAX_BLOCKS = MAX_BLOCKS, max(1, n)
    return previous


cdef inline Py_ssize_t _n_blocks(Py_ssize_t split, Py_ssize_t macs,
                                 bint is_double) noexcept nogil:
    if macs < (PAR_MIN_MACS_F64 if is_double else PAR_MIN_MACS_F32):
        return 1
    return max(1, min(split // MIN_BLOCK, MAX_BLOCKS))


# The _par products below take one block (and a single thread) outside any
# OpenMP region: even a one-thread region costs libgomp a futex system call at
# each of its two barriers, about 0.4 us each on this machine, which a
# one-row prediction pays per layer (see MLP_FOR in csrc/mlpfast_kernels.c).

cdef void _mm_par(floating *C, const floating *A, const floating *B, Py_ssize_t M,
                  Py_ssize_t K, Py_ssize_t N, int nt, bint b_transposed=False) noexcept nogil:
    # C[M,N] = A[M,K] @ B[K,N]  (b_transposed: A[M,K] @ B[N,K].T), in row blocks of C
    cdef Py_ssize_t n_blocks = _n_blocks(M, M * K * N, floating is double), blk
    if n_blocks == 1 or nt < 2:  # the same blocks: results do not depend on nt
        for blk in range(n_blocks):
            _mm_row_block(C, A, B, M, K, N, blk, n_blocks, b_transposed)
        return
    for blk in prange(n_blocks, num_threads=min(nt, n_blocks), schedule="static"):
        _mm_row_block(C, A, B, M, K, N, blk, n_blocks, b_transposed)


cdef inline void _mm_row_block(floating *C, const floating *A, const floating *B,
                               Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t blk,
                               Py_ssize_t n_blocks, bint b_transposed) noexcept nogil:
    # row block blk of n_blocks of _mm_par's product
    cdef Py_ssize_t r0 = M * blk // n_blocks, r1 = M * (blk + 1) // n_blocks
    if b_transposed:
        _mm_nt(C + r0 * N, A + r0 * K, B, r1 - r0, K, N)
    else:
        _mm(C + r0 * N, A + r0 * K, B, r1 - r0, K, N)


cdef void _mm_tn_par(floating *C, const floating *A, const floating *B, Py_ssize_t M,
                     Py_ssize_t K, Py_ssize_t N, int nt) noexcept nogil:
    # C[M,N] = A[K,M].T @ B[K,N], in blocks of C's rows when N < M, else of its
    # columns: each block packs the whole of the other operand, so the smaller
    # one is the one repeated (B[K,N] for row blocks, A[K,M] for column blocks).
    cdef bint by_rows = N < M
    cdef Py_ssize_t n_blocks = _n_blocks(M if by_rows else N, M * K * N,
                                     floating is double), blk
    if n_blocks == 1 or nt < 2:  # the same blocks: results do not depend on nt
        for blk in range(n_blocks):
            _mm_tn_block(C, A, B, M, K, N, blk, n_blocks, by_rows)
        return
    for blk in prange(n_blocks, num_threads=min(nt, n_blocks), schedule="static"):
        _mm_tn_block(C, A, B, M, K, N, blk, n_blocks, by_rows)


cdef inline void _mm_tn_block(floating *C, const floating *A, const floating *B,
                              Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t blk,
                              Py_ssize_t n_blocks, bint by_rows) noexcept nogil:
    # block blk of n_blocks of _mm_tn_par's product
    cdef int m = <int>M, kk = <int>K, ld = <int>N
    cdef Py_ssize_t c0, c1
    if by_rows:
        c0 = M * blk // n_blocks
        c1 = M * (blk + 1) // n_blocks
        # C[c0:c1, :] = A[:, c0:c1].T @ B; column-major: C_blk^T = B^T A_blk
        _gemm(c'N', c'T', ld, <int>(c1 - c0), kk, B, ld, A + c0, m, C + c0 * N, ld)
    else:
        c0 = N * blk // n_blocks
        c1 = N * (blk + 1) // n_blocks
        # C[:, c0:c1] = A.T @ B[:, c0:c1]; column-major: C_blk^T = B_blk^T A
        _gemm(c'N', c'T', <int>(c1 - c0), m, kk, B + c0, ld, A, m, C + c0, ld)


# The two products of a backward step through a hidden layer, dW[l] = A.T @ D[l]
# and D[l-1] = D[l] @ W[l].T, are independent and make the same number of
# multiply-adds (n * fan_in * fan_out). From this many multiply-adds each, they
# run side by side, one whole product per thread (every thread count makes the
# same two unsplit BLAS calls), instead of each being split in blocks that all
# pack the shared operand again. Measured (bench/ cases, two builds alternated in
# one process, 2 cores): MNIST-shaped float32/float64 and tabular float64 fits
# 2-5% faster; pairing float32 products of 0.5M multiply-adds (tabular) gained
# nothing measurable, hence the higher float32 threshold.
cdef Py_ssize_t PAIR_MIN_MACS_F32 = 1 << 20
cdef Py_ssize_t PAIR_MIN_MACS_F64 = 1 << 17


cdef inline bint _pairs(Py_ssize_t macs, bint is_double) noexcept nogil:
    return MAX_BLOCKS > 1 and macs >= (PAIR_MIN_MACS_F64 if is_double else PAIR_MIN_MACS_F32)


cdef void _backward_pair(floating *dW, floating *D_prev, const floating *A, const floating *D,
                         const floating *W, Py_ssize_t n, Py_ssize_t fan_in, Py_ssize_t fan_out,
                         int nt) noexcept nogil:
    # dW[fan_in, fan_out] = A[n, fan_in].T @ D[n, fan_out]  and
    # D_prev[n, fan_in] = D[n, fan_out] @ W[fan_in, fan_out].T, one per thread
    cdef Py_ssize_t which
    if nt < 2:
        _mm_tn(dW, A, D, fan_in, n, fan_out)
        _mm_nt(D_prev, D, W, n, fan_out, fan_in)
        return
    for which in prange(2, num_threads=2, schedule="static"):
        if which == 0:
            _mm_tn(dW, A, D, fan_in, n, fan_out)
        else:
            _mm_nt(D_prev, D, W, n, fan_out, fan_in)


# A network trains row-parallel instead, unless it is big for the CPU count
# (below): the batch is cut in blocks of
# rows, and each thread takes its blocks through the whole pass (gathering the
# block's rows, the products of those rows, the kernels on one thread). The
# blocks fall in one group per CPU, each group's blocks filling one gradient
# buffer in turn; then, in the same OpenMP region, the groups' weight and bias
# gradients are summed in group order. One region per batch (the optimiser step
# is another) instead of one per product and kernel, and all of the batch's work
# shared out, where split products leave the small products and most kernels on
# one thread. The blocks
# depend on the batch size, the layer sizes and the CPU count, never on the
# thread count (one thread runs the same blocks in turn). Measured (bench/
# cases, two builds alternated in one process, 2 cores): small, tabular and
# regression fits 11-33% faster in both dtypes; the MNIST-shaped network (268K
# coefficients) gained nothing measurable then. Later, in the VM's slow periods
# (the vCPUs on cores that share no cache, bench/README), it gained much: where
# split products make each thread read rows of the activations and deltas that
# the other wrote, a row-parallel thread keeps to its own rows. Development
# A/B, settled fits alternated in one process, medians: `mnist` float32 421
# against 611 ms and 424 against 606 ms in two runs (the fast fits 334-372
# against 354-390 ms), float64 788 against 831 ms; `wide` float32 469 against
# 527 ms, float64 881 against 911 ms. Row-parallel when the coefficients are at
# most ROW_PAR_MAX_COEFS, or when the groups' gradient buffers (one per CPU
# but the first, each the size of the parameters) hold at most
# ROW_PAR_MAX_EXTRA values in all ...
cdef Py_ssize_t ROW_PAR_MAX_COEFS = 1 << 16
cdef Py_ssize_t ROW_PAR_MAX_EXTRA = 1 << 22
# ... with blocks of at least this many rows.
cdef Py_ssize_t ROW_BLOCK_MIN = 32
# More blocks (a multiple of MAX_BLOCKS, on machines with more than one CPU) when
# that keeps every product of a block within this many multiply-adds: OpenBLAS's
# SkylakeX-class builds multiply the forward and weight-gradient products of
# such blocks with their small-matrix kernels, which skip packing the operands
# and zeroing C (the D @ W.T products, transposed first operand, stay packed).
# Measured (two builds alternated in one process, 2 cores): the regression
# case (100-128-1, batch 200: 4 blocks of 50 rows, not 2 of 100) fits 18-19%
# faster in float32, and float64 0-2% (within the noise).
cdef Py_ssize_t SMALL_GEMM_MACS = 1000000
# At most this many blocks per CPU (the gain was measured at 2 blocks per CPU
# only; past that the products get short and the calls many).
cdef Py_ssize_t SMALL_GEMM_ROUNDS = 4
# The groups' gradients are summed in chunks of this many parameters.
cdef Py_ssize_t SUM_CHUNK = 1024

# Before the optimiser step of a row-parallel batch on two or more threads, the
# region may evict the parameters from the caches (mlp_evict_for_step): the step
# then reads them back from memory instead of writing lines that the other
# threads hold, having read them in the pass. Where threads sit on different L3
# caches that is much cheaper; elsewhere it costs a little. So each network
# measures: it keeps a running mean of its steps' seconds without eviction and
# of its steps' plus the eviction's (the calling thread's) with it, each new
# sample clipped to twice the mean so that one interrupted step does not flip
# the choice; it takes the cheaper, and every EVICT_EXPLORE-th batch the other,
# to notice when the machine changes. Results never depend on it. Measured on
# this 2-vCPU EPYC VM (bench/ cases, development A/B, "auto" against none in
# alternate fits, medians): in one of the VM's slow periods, fits of
# regression took 73 against 114 ms (float64) and 50 against 81 ms (float32),
# tabular 50 against 74 ms and 35 against 55 ms, small 16 against 20 ms and 14
# against 23 ms; in a fast period regression float64 58 against 62 ms. The
# eviction took 1-4 us a batch. Since the MNIST-shaped and wide networks train
# row-parallel too (ROW_PAR_MAX_EXTRA) they measure the same way: "auto"
# against never, 424 against 450 ms (`mnist` float32) and 468 against 487 ms
# (`wide` float32; development A/B, 6 fits each). Not for the split products:
# evicting their parameters in a region of their own before every step made
# the MNIST-shaped fits faster in a slow period (float32 375 against 476 ms)
# but slower in a fast one (427 against 373 ms, the cost falling in the passes
# after it, which the step timing does not see), and the wide float32 fit
# slower in both.
cdef int EVICT_AUTO = 0
cdef int EVICT_ALWAYS = 1
cdef int EVICT_NEVER = 2
cdef int EVICT_POLICY = EVICT_AUTO
_EVICT_POLICIES = {"auto": EVICT_AUTO, "always": EVICT_ALWAYS, "never": EVICT_NEVER}
cdef long EVICT_EXPLORE = 16
cdef double EVICT_WEIGHT = 0.25  # of a new sample in the running mean


def set_evict_policy(str name):
    """When the row-parallel pass evicts the parameters before the step: "auto"
    (measured, the default), "always" or "never". Results do not change. Not
    thread-safe; for tests and benchmarks. Returns the previous policy."""
    global EVICT_POLICY
    if name not in _EVICT_POLICIES:
        raise ValueError(f"evict policy must be one of {sorted(_EVICT_POLICIES)}, got {name!r}")
    previous = next(key for key, code in _EVICT_POLICIES.items() if code == EVICT_POLICY)
    EVICT_POLICY = _EVICT_POLICIES[name]
    return previous


cdef Py_ssize_t _row_blocks(Py_ssize_t rows, Py_ssize_t macs_per_row):
    """Row blocks of a batch of `rows` rows: MAX_BLOCKS (fewer for a short
    batch), or the fewest multiple of it, up to SMALL_GEMM_ROUNDS times, whose
    blocks keep their products within SMALL_GEMM_MACS with at least
    ROW_BLOCK_MIN rows each."""
    cdef Py_ssize_t blocks = max(1, min(MAX_BLOCKS, rows // ROW_BLOCK_MIN))
    cdef Py_ssize_t per_round = MAX_BLOCKS * (SMALL_GEMM_MACS // macs_per_row)
    cdef Py_ssize_t more
    if MAX_BLOCKS < 2 or blocks < MAX_BLOCKS or rows <= per_round or per_round == 0:
        return blocks
    more = MAX_BLOCKS * ((rows + per_round - 1) // per_round)
    if more > SMALL_GEMM_ROUNDS * MAX_BLOCKS or rows // more < ROW_BLOCK_MIN:
        return blocks
    return more


cdef inline void _add_blocks(floating *grad, const floating *others, Py_ssize_t P,
                             Py_ssize_t n_others, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    # grad[i0:i1] += others[b * P + i0:b * P + i1] for b = 0, 1, ... in turn
    cdef Py_ssize_t b, i
    cdef const floating *part
    for b in range(n_others):
        part = others + b * P
        for i in range(i0, i1):
            grad[i] += part[i]


# ---------------------------------------------------------------- kernel dispatch

cdef inline void _bias_act_forward(floating *Z, const floating *b, int act, Py_ssize_t N,
                                   Py_ssize_t O, int nt) noexcept nogil:
    if floating is float:
        k.mlp_bias_act_forward_f32(Z, b, act, N, O, nt)
    else:
        k.mlp_bias_act_forward_f64(Z, b, act, N, O, nt)


cdef inline void _act_backward(floating *dZ, floating *db, const floating *A, int act,
                               Py_ssize_t N, Py_ssize_t O, int nt) noexcept nogil:
    if floating is float:
        k.mlp_act_backward_f32(dZ, db, A, act, N, O, nt)
    else:
        k.mlp_act_backward_f64(dZ, db, A, act, N, O, nt)


cdef inline void _output_forward(floating *Z, const floating *b, int out, Py_ssize_t N,
                                 Py_ssize_t K, int nt) noexcept nogil:
    if floating is float:
        k.mlp_output_forward_f32(Z, b, out, N, K, nt)
    else:
        k.mlp_output_forward_f64(Z, b, out, N, K, nt)


cdef inline double _output_loss_backward(floating *dZ, floating *db, floating *Z,
                                         double *row_loss, const floating *b,
                                         const floating *Y, const floating *sw, int out,
                                         Py_ssize_t N, Py_ssize_t K, int nt) noexcept nogil:
    if floating is float:
        return k.mlp_output_loss_backward_f32(dZ, db, Z, row_loss, b, Y, sw, out, N, K, nt)
    else:
        return k.mlp_output_loss_backward_f64(dZ, db, Z, row_loss, b, Y, sw, out, N, K, nt)


cdef inline bint _all_finite(const floating *x, Py_ssize_t n, int nt) noexcept nogil:
    if floating is float:
        return k.mlp_all_finite_f32(x, n, nt)
    else:
        return k.mlp_all_finite_f64(x, n, nt)


cdef inline void _gather_rows(floating *out, const floating *X, const Py_ssize_t *idx,
                              Py_ssize_t N, Py_ssize_t D, int nt) noexcept nogil:
    if floating is float:
        k.mlp_gather_rows_f32(out, X, idx, N, D, nt)
    else:
        k.mlp_gather_rows_f64(out, X, idx, N, D, nt)


cdef inline double _sum_squares(const floating *x, Py_ssize_t n, double *partial,
                                int nt) noexcept nogil:
    if floating is float:
        return k.mlp_sum_squares_f32(x, n, partial, nt)
    else:
        return k.mlp_sum_squares_f64(x, n, partial, nt)


cdef inline void _finish_grad(floating *grad, const floating *params, Py_ssize_t n,
                              Py_ssize_t n_coef, double alpha, double sw_sum,
                              int nt) noexcept nogil:
    if floating is float:
        k.mlp_finish_grad_f32(grad, params, n, n_coef, alpha, sw_sum, nt)
    else:
        k.mlp_finish_grad_f64(grad, params, n, n_coef, alpha, sw_sum, nt)


cdef inline void _evict_for_step(const floating *params, Py_ssize_t n, int nt) noexcept nogil:
    if floating is float:
        k.mlp_evict_for_step_f32(params, n, nt)
    else:
        k.mlp_evict_for_step_f64(params, n, nt)


cdef inline void _csr_matmul(floating *Z, const floating *data, const Py_ssize_t *indices,
                             const Py_ssize_t *indptr, const Py_ssize_t *rows,
                             Py_ssize_t row0, Py_ssize_t N, const floating *W, Py_ssize_t O,
                             int nt) noexcept nogil:
    if floating is float:
        k.mlp_csr_matmul_f32(Z, data, indices, indptr, rows, row0, N, W, O, nt)
    else:
        k.mlp_csr_matmul_f64(Z, data, indices, indptr, rows, row0, N, W, O, nt)


cdef inline void _csr_matmul_tn(floating *dW, const floating *data, const Py_ssize_t *indices,
                                const Py_ssize_t *indptr, const Py_ssize_t *rows,
                                Py_ssize_t row0, Py_ssize_t N, const floating *D,
                                Py_ssize_t I, Py_ssize_t O, int nt) noexcept nogil:
    if floating is float:
        k.mlp_csr_matmul_tn_f32(dW, data, indices, indptr, rows, row0, N, D, I, O, nt)
    else:
        k.mlp_csr_matmul_tn_f64(dW, data, indices, indptr, rows, row0, N, D, I, O, nt)


# A CSR input matrix (scipy's data / indices / indptr, indices as intp).
cdef struct CSR:
    const void *data
    const Py_ssize_t *indices
    const Py_ssize_t *indptr


def _csr_arrays(X, Py_ssize_t n_features):
    """(data, indices, indptr) of a CSR input tuple, checked once per call."""
    data, indices, indptr = X
    if (indptr.shape[0] < 2 or indices.shape[0] != data.shape[0]
            or indptr[indptr.shape[0] - 1] > data.shape[0]):
        raise ValueError("malformed CSR input")
    if indices.shape[0] and (indices.min() < 0 or indices.max() >= n_features):
        raise ValueError("CSR column index out of range")
    if np.any(np.diff(indptr) < 0) or indptr[0] < 0:
        raise ValueError("CSR indptr must be non-decreasing")
    return data, indices, indptr


# ---------------------------------------------------------------- the network

cdef class Network:
    """Training buffers and layout of one MLP, allocated once per fit.

    Parameters
    ----------
    layer_units : list of int
        ``[n_features, *hidden_layer_sizes, n_outputs]``.
    activation : int
        Hidden activation code (``MLP_ACT_*``).
    output : int
        Fused output activation + loss code (``MLP_OUT_*``).
    dtype : numpy dtype
        float32 or float64; every buffer and the parameters share it.
    capacity : int
        The most rows one forward/backward pass handles (the batch size).
    n_threads : int
        OpenMP threads for the element-wise kernels.
    dense_input : bool, default=True
        False when X will be CSR: then no dense batch buffer is allocated
        (a (batch, n_features) buffer could be huge for sparse data).
    """
    cdef readonly Py_ssize_t n_layers, n_params, n_coef, capacity, n_features, n_outputs
    cdef readonly int activation, output, n_threads
    cdef readonly bint dense_input
    # Optimiser steps made by the last run_epoch so far (read it after Ctrl-C).
    cdef readonly long last_epoch_steps
    # Wall seconds that run_epoch spent in forward/backward passes (products,
    # kernels, gathers, the sum of the gradient groups, evictions before the
    # step) and in the rest of each batch (its weight sum and loss, then the
    # optimiser step), summed over every call (bench/profile_fit.py reads them).
    cdef readonly double pass_seconds, step_seconds
    cdef readonly object dtype
    cdef Py_ssize_t *units
    cdef Py_ssize_t *coef_off
    cdef Py_ssize_t *inter_off
    cdef void **A
    cdef void **D
    cdef void *xbuf
    cdef void *ybuf
    cdef void *swbuf
    cdef void *grad_ptr
    cdef double *row_loss
    cdef double *partial
    # Row-parallel pass: most blocks per batch (1: off) and gradient groups (see
    # _forward_backward_rows), the gradients of groups 1.. (group 0 writes
    # self.grad), each group's bias gradients of its blocks after the first,
    # and each block's raw loss.
    cdef readonly Py_ssize_t row_blocks, row_groups
    # Eviction before the step (see EVICT_POLICY): the running means of a step's
    # seconds without it and of a step's and the eviction's with it (0: none
    # yet), the batches it was decided for, those evicted (summed over every
    # run_epoch call), and the calling thread's seconds in the last eviction.
    cdef double evict_cost[2]
    cdef long evict_decided
    cdef readonly long evicted_batches
    cdef double evict_seconds
    cdef void *block_grad
    cdef void *block_bias
    cdef double *block_raw
    cdef list _owned
    cdef readonly object grad
    cdef CSR csr

    def __cinit__(self):
        self.units = NULL
        self.coef_off = NULL
        self.inter_off = NULL
        self.A = NULL
        self.D = NULL

    def __init__(self, layer_units, int activation, int output, dtype,
                 Py_ssize_t capacity, int n_threads, bint dense_input=True):
        cdef Py_ssize_t l, off = 0
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"Network dtype must be float32 or float64, got {self.dtype}")
        _check_activation(activation)
        _check_output(output)
        self.n_layers = len(layer_units) - 1
        if self.n_layers < 1 or min(layer_units) < 1 or capacity < 1:
            raise ValueError("layer_units needs at least two positive sizes")
        self.activation = activation
        self.output = output
        self.capacity = capacity
        self.n_threads = max(1, n_threads)
        self.n_features = layer_units[0]
        self.n_outputs = layer_units[self.n_layers]
        self.units = <Py_ssize_t *>malloc((self.n_layers + 1) * sizeof(Py_ssize_t))
        self.coef_off = <Py_ssize_t *>malloc(self.n_layers * sizeof(Py_ssize_t))
        self.inter_off = <Py_ssize_t *>malloc(self.n_layers * sizeof(Py_ssize_t))
        self.A = <void **>malloc(self.n_layers * sizeof(void *))
        self.D = <void **>malloc(self.n_layers * sizeof(void *))
        if not (self.units and self.coef_off and self.inter_off and self.A and self.D):
            raise MemoryError()
        for l in range(self.n_layers + 1):
            self.units[l] = layer_units[l]
        for l in range(self.n_layers):
            self.coef_off[l] = off
            off += self.units[l] * self.units[l + 1]
        self.n_coef = off
        for l in range(self.n_layers):
            self.inter_off[l] = off
            off += self.units[l + 1]
        self.n_params = off

        self._owned = []
        for l in range(self.n_layers):
            self.A[l] = self._buffer(capacity * self.units[l + 1])
            self.D[l] = self._buffer(capacity * self.units[l + 1])
        self.dense_input = dense_input
        self.xbuf = self._buffer(capacity * self.n_features if dense_input else 1)
        self.ybuf = self._buffer(capacity * self.n_outputs)
        self.swbuf = self._buffer(capacity)
        self.grad = np.zeros(self.n_params, dtype=self.dtype)
        self.grad_ptr = self._pointer(self.grad)
        self.row_loss = <double *>self._pointer(np.zeros(capacity, dtype=np.float64))
        self.partial = <double *>self._pointer(
            np.zeros(self.n_params // k.MLP_REDUCE_CHUNK + 1, dtype=np.float64))
        self.evict_cost[0] = 0
        self.evict_cost[1] = 0
        self.evict_decided = 0
        self.evicted_batches = 0
        self.evict_seconds = 0
        self.row_blocks = 1
        if dense_input and (self.n_coef <= ROW_PAR_MAX_COEFS
                            or self.n_coef * (MAX_BLOCKS - 1) <= ROW_PAR_MAX_EXTRA):
            self.row_blocks = _row_blocks(capacity, max(
                [self.units[l] * self.units[l + 1] for l in range(self.n_layers)]))
        self.row_groups = min(self.row_blocks, MAX_BLOCKS)
        self.block_grad = self._buffer((self.row_groups - 1) * self.n_params)
        self.block_bias = self._buffer(self.row_groups * (self.n_params - self.n_coef)
                                       if self.row_blocks > self.row_groups else 1)
        self.block_raw = <double *>self._pointer(np.zeros(self.row_blocks, dtype=np.float64))

    def __dealloc__(self):
        free(self.units)
        free(self.coef_off)
        free(self.inter_off)
        free(self.A)
        free(self.D)

    cdef void *_pointer(self, arr) except NULL:
        cdef Py_ssize_t address = arr.ctypes.data
        self._owned.append(arr)
        return <void *>address

    cdef void *_buffer(self, Py_ssize_t size) except NULL:
        return self._pointer(np.zeros(max(size, 1), dtype=self.dtype))

    @property
    def evict_costs(self):
        """The running means of a step's seconds without eviction and of a step's
        and the eviction's with it; 0 where none was measured."""
        return (self.evict_cost[0], self.evict_cost[1])

    def layout(self):
        """[(coef_start, coef_end, (fan_in, fan_out)), ...], [(start, end), ...]."""
        coefs = [(self.coef_off[l], self.coef_off[l] + self.units[l] * self.units[l + 1],
                  (self.units[l], self.units[l + 1])) for l in range(self.n_layers)]
        inters = [(self.inter_off[l], self.inter_off[l] + self.units[l + 1])
                  for l in range(self.n_layers)]
        return coefs, inters

    def loss_grad(self, floating[::1] params, X, const floating[:, ::1] Y,
                  const floating[::1] sw, bint has_sw, double alpha, bint squared_mean):
        """Full-batch loss; the finished gradient is left in ``self.grad``.

        X is a C-contiguous 2-D array, or a CSR matrix as ``(data, indices, indptr)``
        with intp indices. loss = L(Y, f(X)) + alpha / 2 * ||coefs||^2 / sum(sw),
        as scikit-learn's _backprop.
        """
        cdef const floating *xp = self._input(params, X, Y, sw, has_sw)
        cdef Py_ssize_t n = Y.shape[0]
        cdef double raw, sq, sw_sum
        if n > self.capacity:
            raise ValueError(f"{n} rows exceed the network capacity {self.capacity}")
        with nogil:
            sw_sum = _weight_sum(&sw[0], n, has_sw)
            raw = self._forward_backward(&params[0], xp, &Y[0, 0],
                                         &sw[0] if has_sw else NULL, n, NULL, 0, False)
            sq = _sum_squares(&params[0], self.n_coef, self.partial, self.n_threads)
            _finish_grad(<floating *>self.grad_ptr, &params[0], self.n_params, self.n_coef,
                         alpha, sw_sum, self.n_threads)
        return self._batch_loss(raw, sq, sw_sum, alpha, squared_mean)

    cdef inline double _batch_loss(self, double raw, double sq, double sw_sum, double alpha,
                                   bint squared_mean) noexcept nogil:
        if squared_mean:
            raw /= self.n_outputs
        return raw / sw_sum + 0.5 * alpha * sq / sw_sum

    cdef const floating *_input(self, floating[::1] params, X, const floating[:, ::1] Y,
                                const floating[::1] sw, bint has_sw) except? NULL:
        """Check the arguments; return X's data pointer, or NULL for a CSR X
        (then held in self.csr)."""
        cdef const floating[:, ::1] dense
        cdef const floating[::1] data
        cdef const Py_ssize_t[::1] indices
        cdef const Py_ssize_t[::1] indptr
        cdef Py_ssize_t n_rows
        if params.shape[0] != self.n_params:
            raise ValueError(f"params has {params.shape[0]} entries, expected {self.n_params}")
        if np.dtype(self.dtype).itemsize != sizeof(floating):
            raise TypeError(f"arrays must have the network's dtype {self.dtype}")
        if Y.shape[1] != self.n_outputs:
            raise ValueError("Y does not match the network's output size")
        if isinstance(X, tuple):
            data, indices, indptr = _csr_arrays(X, self.n_features)
            n_rows = indptr.shape[0] - 1
        else:
            if not self.dense_input:
                raise ValueError("this Network was built for CSR input (dense_input=False)")
            dense = X
            if dense.shape[1] != self.n_features:
                raise ValueError("X does not match the network's input size")
            n_rows = dense.shape[0]
        if n_rows != Y.shape[0] or n_rows < 1:
            raise ValueError("X and Y need the same, positive, number of rows")
        if has_sw and sw.shape[0] != n_rows:
            raise ValueError("sample_weight must have one entry per row")
        if sw.shape[0] < 1:
            raise ValueError("sw needs at least one entry (pass a dummy when has_sw is False)")
        if isinstance(X, tuple):
            self.csr.data = &data[0] if data.shape[0] else NULL
            self.csr.indices = &indices[0] if indices.shape[0] else NULL
            self.csr.indptr = &indptr[0]
            return NULL
        return &dense[0, 0]

    cdef void _batch_rows(self, const floating *X, const floating *Y, const floating *sw,
                          const Py_ssize_t *rows, Py_ssize_t row0, Py_ssize_t r0,
                          Py_ssize_t m, int nt, const floating **Xb, const floating **Yb,
                          const floating **swb) noexcept nogil:
        """Rows [r0, r0 + m) of the batch (see _forward_backward): gathered on nt
        threads into the same rows of the batch buffers when rows is given, else
        pointers into X, Y and sw. Xb is NULL for a CSR X, swb NULL when sw is."""
        cdef Py_ssize_t d = self.n_features, K = self.n_outputs
        Xb[0] = NULL
        swb[0] = NULL
        if rows != NULL:
            if X != NULL:
                Xb[0] = <floating *>self.xbuf + r0 * d
                _gather_rows(<floating *>Xb[0], X, rows + r0, m, d, nt)
            Yb[0] = <floating *>self.ybuf + r0 * K
            _gather_rows(<floating *>Yb[0], Y, rows + r0, m, K, nt)
            if sw != NULL:
                swb[0] = <floating *>self.swbuf + r0
                _gather_rows(<floating *>swb[0], sw, rows + r0, m, 1, nt)
        else:
            if X != NULL:
                Xb[0] = X + (row0 + r0) * d
            Yb[0] = Y + (row0 + r0) * K
            if sw != NULL:
                swb[0] = sw + row0 + r0

    cdef double _forward_backward(self, floating *params, const floating *X,
                                  const floating *Y, const floating *sw, Py_ssize_t n,
                                  const Py_ssize_t *rows, Py_ssize_t row0,
                                  bint evict) noexcept nogil:
        """Forward and backward pass over a batch of n rows; raw gradient into
        self.grad, raw loss returned.

        The batch is rows ``rows[:n]`` (gathered into the batch buffers, in
        batch order, where run_epoch reads the weights back from swbuf), or
        when rows is NULL rows ``row0:row0 + n`` (used in place), of X, Y and
        sw (NULL: unweighted); X NULL means the CSR matrix in self.csr. With
        evict, a threaded row-parallel pass ends by evicting the parameters
        (see EVICT_POLICY)."""
        cdef Py_ssize_t L = self.n_layers, l
        cdef floating *grad = <floating *>self.grad_ptr
        cdef const floating *inp
        cdef const floating *Xb
        cdef const floating *Yb
        cdef const floating *swb
        cdef double raw
        cdef Py_ssize_t n_blocks = min(self.row_blocks, n // ROW_BLOCK_MIN)
        if n_blocks > self.row_groups:
            n_blocks -= n_blocks % self.row_groups  # groups of equal block counts
        if X != NULL and n_blocks > 1:
            return self._forward_backward_rows(params, X, Y, sw, n, rows, row0, n_blocks,
                                               evict)
        self._batch_rows(X, Y, sw, rows, row0, 0, n, self.n_threads, &Xb, &Yb, &swb)
        for l in range(L):
            inp = Xb if l == 0 else <floating *>self.A[l - 1]
            # A[l] = inp @ W[l]
            if inp == NULL:
                _csr_matmul(<floating *>self.A[l], <const floating *>self.csr.data,
                            self.csr.indices, self.csr.indptr, rows, row0, n,
                            params + self.coef_off[l], self.units[l + 1], self.n_threads)
            else:
                _mm_par(<floating *>self.A[l], inp, params + self.coef_off[l],
                        n, self.units[l], self.units[l + 1], self.n_threads)
            if l < L - 1:
                # A[l] = act(A[l] + b[l])
                _bias_act_forward(<floating *>self.A[l], params + self.inter_off[l],
                                  self.activation, n, self.units[l + 1], self.n_threads)
        # P = out(A + b); D = sw * (P - Y); db = sum(D, axis=0)
        raw = _output_loss_backward(<floating *>self.D[L - 1], grad + self.inter_off[L - 1],
                                    <floating *>self.A[L - 1], self.row_loss,
                                    params + self.inter_off[L - 1], Yb, swb, self.output,
                                    n, self.units[L], self.n_threads)
        for l in range(L - 1, -1, -1):
            inp = Xb if l == 0 else <floating *>self.A[l - 1]
            if l > 0 and _pairs(n * self.units[l] * self.units[l + 1], floating is double):
                # dW[l] = inp.T @ D[l] beside D[l-1] = D[l] @ W[l].T
                _backward_pair(grad + self.coef_off[l], <floating *>self.D[l - 1], inp,
                               <floating *>self.D[l], params + self.coef_off[l], n,
                               self.units[l], self.units[l + 1], self.n_threads)
                # D[l-1] *= act'(A[l-1]);  db[l-1] = sum(D[l-1], axis=0)
                _act_backward(<floating *>self.D[l - 1], grad + self.inter_off[l - 1],
                              <floating *>self.A[l - 1], self.activation, n,
                              self.units[l], self.n_threads)
                continue
            # dW[l] = inp.T @ D[l]
            if inp == NULL:
                _csr_matmul_tn(grad + self.coef_off[l], <const floating *>self.csr.data,
                               self.csr.indices, self.csr.indptr, rows, row0, n,
                               <floating *>self.D[l], self.units[l], self.units[l + 1],
                               self.n_threads)
            else:
                _mm_tn_par(grad + self.coef_off[l], inp, <floating *>self.D[l],
                           self.units[l], n, self.units[l + 1], self.n_threads)
            if l > 0:
                # D[l-1] = (D[l] @ W[l].T) * act'(A[l-1]);  db[l-1] = sum(D[l-1], axis=0)
                _mm_par(<floating *>self.D[l - 1], <floating *>self.D[l],
                        params + self.coef_off[l], n, self.units[l + 1], self.units[l],
                        self.n_threads, b_transposed=True)
                _act_backward(<floating *>self.D[l - 1], grad + self.inter_off[l - 1],
                              <floating *>self.A[l - 1], self.activation, n,
                              self.units[l], self.n_threads)
        return raw

    cdef double _forward_backward_rows(self, floating *params, const floating *X,
                                       const floating *Y, const floating *sw, Py_ssize_t n,
                                       const Py_ssize_t *rows, Py_ssize_t row0,
                                       Py_ssize_t n_blocks, bint evict) noexcept nogil:
        """_forward_backward of a dense batch, row-parallel: block b takes batch
        rows [n * b // n_blocks, n * (b + 1) // n_blocks) (and gathers them itself).
        The blocks fall in G = min(row_groups, n_blocks) groups of consecutive
        blocks, one gradient buffer each, which a group's blocks fill in turn (the
        first overwrites it, the others add to it); grad = the groups' gradients
        summed in group order; with evict (and two or more threads) the
        parameters are then evicted for the step."""
        cdef floating *grad = <floating *>self.grad_ptr
        cdef floating *others = <floating *>self.block_grad
        cdef Py_ssize_t P = self.n_params, G = min(self.row_groups, n_blocks), grp, blk, c
        cdef Py_ssize_t n_chunks = (P + SUM_CHUNK - 1) // SUM_CHUNK
        cdef int nt = <int>min(<Py_ssize_t>self.n_threads, G)
        cdef double raw = 0
        if nt > 1:
            # one region: the groups, a barrier (Cython ends a prange inside
            # `parallel` without one), then the sum
            with parallel(num_threads=nt):
                for grp in prange(G, schedule="static"):
                    self._group_pass(params, X, Y, sw, rows, row0, n, grp, G, n_blocks)
                k.mlp_omp_barrier()
                for c in prange(n_chunks, schedule="static"):
                    _add_blocks(grad, others, P, G - 1, c * SUM_CHUNK,
                                min((c + 1) * SUM_CHUNK, P))
                if evict:  # every group's pass has read them (the barrier above)
                    self._evict_timed(params)
        else:
            for grp in range(G):
                self._group_pass(params, X, Y, sw, rows, row0, n, grp, G, n_blocks)
            _add_blocks(grad, others, P, G - 1, 0, P)
        for blk in range(n_blocks):
            raw += self.block_raw[blk]
        return raw

    cdef void _evict_timed(self, const floating *params) noexcept nogil:
        """This thread's share of _evict_for_step; the calling thread of the
        region (thread 0) keeps its seconds in evict_seconds."""
        cdef double start = k.mlp_monotonic_seconds()
        _evict_for_step(params, self.n_params, self.n_threads)
        if threadid() == 0:
            self.evict_seconds = k.mlp_monotonic_seconds() - start

    cdef void _group_pass(self, floating *params, const floating *X, const floating *Y,
                          const floating *sw, const Py_ssize_t *rows, Py_ssize_t row0,
                          Py_ssize_t n, Py_ssize_t grp, Py_ssize_t G,
                          Py_ssize_t n_blocks) noexcept nogil:
        """Blocks [grp * n_blocks // G, (grp + 1) * n_blocks // G) in turn, on the
        calling thread, into group grp's gradient: self.grad (group 0) or its part
        of self.block_grad; each block's raw loss into block_raw."""
        cdef Py_ssize_t P = self.n_params, nc = self.n_coef, first = grp * n_blocks // G
        cdef Py_ssize_t last = (grp + 1) * n_blocks // G, blk
        cdef floating *g = <floating *>self.grad_ptr
        cdef floating *bias = NULL
        if grp > 0:
            g = <floating *>self.block_grad + (grp - 1) * P
        if last - first > 1:  # then row_blocks > row_groups: block_bias is allocated
            bias = <floating *>self.block_bias + grp * (P - nc)
        for blk in range(first, last):
            self.block_raw[blk] = self._block_pass(params, X, Y, sw, rows, row0, n, blk,
                                                   n_blocks, g, bias if blk > first else NULL)
            if blk > first:
                _add_blocks(g + nc, bias, P - nc, 1, 0, P - nc)

    cdef inline floating *_bias_grad(self, floating *g, floating *bias,
                                     Py_ssize_t l) noexcept nogil:
        # where _block_pass puts layer l's bias gradient
        if bias == NULL:
            return g + self.inter_off[l]
        return bias + (self.inter_off[l] - self.n_coef)

    cdef double _block_pass(self, floating *params, const floating *X, const floating *Y,
                            const floating *sw, const Py_ssize_t *rows, Py_ssize_t row0,
                            Py_ssize_t n, Py_ssize_t blk, Py_ssize_t n_blocks, floating *g,
                            floating *bias) noexcept nogil:
        """Forward and backward pass of block blk of the batch (see
        _forward_backward_rows) on the calling thread; its raw gradient into g,
        or when bias is given its weight gradients added to g's and its bias
        gradients into bias; its raw loss returned."""
        cdef Py_ssize_t L = self.n_layers, l
        cdef Py_ssize_t r0 = n * blk // n_blocks, m = n * (blk + 1) // n_blocks - r0
        cdef Py_ssize_t *u = self.units
        cdef const floating *Xb
        cdef const floating *Yb
        cdef const floating *swb
        cdef const floating *inp
        cdef floating *Z
        cdef floating *Dl
        cdef floating *Dp
        cdef double raw
        self._batch_rows(X, Y, sw, rows, row0, r0, m, 1, &Xb, &Yb, &swb)
        for l in range(L):
            inp = Xb if l == 0 else <floating *>self.A[l - 1] + r0 * u[l]
            Z = <floating *>self.A[l] + r0 * u[l + 1]
            _mm(Z, inp, params + self.coef_off[l], m, u[l], u[l + 1])
            if l < L - 1:
                _bias_act_forward(Z, params + self.inter_off[l], self.activation, m,
                                  u[l + 1], 1)
        raw = _output_loss_backward(<floating *>self.D[L - 1] + r0 * u[L],
                                    self._bias_grad(g, bias, L - 1),
                                    <floating *>self.A[L - 1] + r0 * u[L], self.row_loss + r0,
                                    params + self.inter_off[L - 1], Yb, swb, self.output, m,
                                    u[L], 1)
        for l in range(L - 1, -1, -1):
            inp = Xb if l == 0 else <floating *>self.A[l - 1] + r0 * u[l]
            Dl = <floating *>self.D[l] + r0 * u[l + 1]
            _mm_tn(g + self.coef_off[l], inp, Dl, u[l], m, u[l + 1], bias != NULL)
            if l > 0:
                Dp = <floating *>self.D[l - 1] + r0 * u[l]
                _mm_nt(Dp, Dl, params + self.coef_off[l], m, u[l + 1], u[l])
                _act_backward(Dp, self._bias_grad(g, bias, l - 1),
                              <floating *>self.A[l - 1] + r0 * u[l], self.activation, m,
                              u[l], 1)
        return raw

    def run_epoch(self, floating[::1] params, X, const floating[:, ::1] Y, const floating[::1] sw, bint has_sw,
                  const Py_ssize_t[::1] order, bint shuffled, Py_ssize_t batch_size,
                  int solver, floating[::1] state1, floating[::1] state2,
                  double alpha, double learning_rate, double momentum, bint nesterov,
                  double beta_1, double beta_2, double epsilon, long adam_t,
                  bint squared_mean):
        """One epoch of mini-batch training, entirely without the GIL.

        X is a C-contiguous 2-D array, or a CSR matrix as ``(data, indices,
        indptr)`` with intp indices (its batches are never densified). Batches
        are ``order[i:i + batch_size]`` when ``shuffled``, else contiguous
        slices of X. Returns the sum over batches of batch_loss * batch_rows,
        what scikit-learn accumulates into ``loss_``; the optimiser steps made
        are in ``last_epoch_steps`` (kept up to date, so also after Ctrl-C).
        """
        cdef const floating *xp = self._input(params, X, Y, sw, has_sw)
        cdef Py_ssize_t n = Y.shape[0], start, m
        cdef const Py_ssize_t *rows
        cdef const floating *swb
        cdef floating *p = &params[0]
        cdef double raw, sq, sw_sum, lr, acc = 0, last_check, t_pass, t_step, now
        cdef long steps = 0, t
        cdef bint evict = False
        # eviction applies to threaded row-parallel passes only
        cdef bint may_evict = (xp != NULL and self.row_blocks > 1
                               and min(<Py_ssize_t>self.n_threads, self.row_groups) > 1)
        if batch_size < 1 or batch_size > self.capacity:
            raise ValueError(f"batch_size must be in [1, {self.capacity}], got {batch_size}")
        if shuffled and order.shape[0] != n:
            raise ValueError("order must hold one index per row")
        if state1.shape[0] != self.n_params or (solver == _ADAM
                                                and state2.shape[0] != self.n_params):
            raise ValueError("optimiser state does not match the parameters")
        if solver not in (_SGD, _ADAM):
            raise ValueError(f"unknown solver code {solver}")
        if shuffled:
            for start in range(n):
                if order[start] < 0 or order[start] >= n:
                    raise IndexError("order holds an index out of range")
        self.last_epoch_steps = 0
        with nogil:
            last_check = k.mlp_monotonic_seconds()
            sq = _sum_squares(p, self.n_coef, self.partial, self.n_threads)
            start = 0
            while start < n:
                m = min(batch_size, n - start)
                rows = &order[start] if shuffled else NULL
                if may_evict:
                    evict = self._choose_evict()
                    self.evicted_batches += evict
                    self.evict_seconds = 0
                t_pass = k.mlp_monotonic_seconds()
                raw = self._forward_backward(p, xp, &Y[0, 0], &sw[0] if has_sw else NULL, m,
                                             rows, start, evict)
                t_step = k.mlp_monotonic_seconds()
                self.pass_seconds += t_step - t_pass
                # the batch's weights: gathered into swbuf by the pass when shuffled
                swb = NULL
                if has_sw:
                    swb = <const floating *>self.swbuf if shuffled else &sw[start]
                sw_sum = _weight_sum(swb, m, has_sw)
                acc += self._batch_loss(raw, sq, sw_sum, alpha, squared_mean) * m
                if solver == _SGD:
                    sq = _sgd_step(p, &state1[0], <floating *>self.grad_ptr, self.partial,
                                   self.n_params, self.n_coef, alpha, sw_sum, learning_rate,
                                   momentum, nesterov, self.n_threads)
                else:
                    t = adam_t + steps + 1
                    lr = learning_rate * sqrt(1 - pow(beta_2, t)) / (1 - pow(beta_1, t))
                    sq = _adam_step(p, &state1[0], &state2[0], <floating *>self.grad_ptr,
                                    self.partial, self.n_params, self.n_coef, alpha, sw_sum,
                                    lr, beta_1, beta_2, epsilon, self.n_threads)
                now = k.mlp_monotonic_seconds()
                self.step_seconds += now - t_step
                if may_evict:
                    self._note_evict_cost(evict, now - t_step)
                steps += 1
                self.last_epoch_steps = steps
                start += m
                if now - last_check > SIGNAL_CHECK_SECONDS:
                    with gil:
                        PyErr_CheckSignals()
                    last_check = k.mlp_monotonic_seconds()
        return acc

    cdef inline bint _choose_evict(self) noexcept nogil:
        """Whether this batch's pass evicts the parameters (see EVICT_POLICY)."""
        cdef bint cheaper
        if EVICT_POLICY != EVICT_AUTO:
            return EVICT_POLICY == EVICT_ALWAYS
        self.evict_decided += 1
        if self.evict_cost[0] == 0 or self.evict_cost[1] == 0:
            cheaper = self.evict_cost[0] != 0  # measure the one not measured yet
        else:
            cheaper = self.evict_cost[1] < self.evict_cost[0]
            if self.evict_decided % EVICT_EXPLORE == 0:
                cheaper = not cheaper
        return cheaper

    cdef inline void _note_evict_cost(self, bint evicted, double step_seconds) noexcept nogil:
        """Adds a batch's step time (and eviction time) to the running means."""
        cdef double *mean = &self.evict_cost[1 if evicted else 0]
        cdef double cost = step_seconds + self.evict_seconds
        if mean[0] == 0:
            mean[0] = cost
        else:
            mean[0] += EVICT_WEIGHT * (min(cost, 2 * mean[0]) - mean[0])


cdef inline double _weight_sum(const floating *sw, Py_ssize_t n, bint has_sw) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s = 0
    if not has_sw:
        return <double>n
    for i in range(n):
        s += sw[i]
    return s


cdef inline double _sgd_step(floating *params, floating *velocity, const floating *grad,
                             double *partial, Py_ssize_t n, Py_ssize_t n_coef, double alpha,
                             double sw_sum, double lr, double momentum, bint nesterov,
                             int nt) noexcept nogil:
    if floating is float:
        return k.mlp_sgd_step_f32(params, velocity, grad, partial, n, n_coef, alpha, sw_sum,
                                  lr, momentum, nesterov, nt)
    else:
        return k.mlp_sgd_step_f64(params, velocity, grad, partial, n, n_coef, alpha, sw_sum,
                                  lr, momentum, nesterov, nt)


cdef inline double _adam_step(floating *params, floating *m, floating *v, const floating *grad,
                              double *partial, Py_ssize_t n, Py_ssize_t n_coef, double alpha,
                              double sw_sum, double lr, double beta1, double beta2, double eps,
                              int nt) noexcept nogil:
    if floating is float:
        return k.mlp_adam_step_f32(params, m, v, grad, partial, n, n_coef, alpha, sw_sum, lr,
                                   beta1, beta2, eps, nt)
    else:
        return k.mlp_adam_step_f64(params, m, v, grad, partial, n, n_coef, alpha, sw_sum, lr,
                                   beta1, beta2, eps, nt)


# ---------------------------------------------------------------- prediction

# Rows per block of the prediction pass: each block's activations stay in cache.
cdef Py_ssize_t PREDICT_BLOCK_ROWS = 4096


def forward(list coefs, list intercepts, const floating[:, ::1] X, int activation, int output,
            int n_threads, csr=None, bint check_finite=False):
    """Output-layer activations for X: ``out(... act(X @ W0 + b0) ... @ WL + bL)``.

    ``coefs[l]`` are C-contiguous (fan_in, fan_out) arrays and ``intercepts[l]``
    contiguous vectors, all of X's dtype. For a sparse X pass
    ``csr=(data, indices, indptr)`` (intp indices) and, as X, an empty
    ``(0, n_features)`` array that fixes the dtype and width. With
    ``check_finite``, returns None (computing nothing) when a dense X holds
    NaN or infinity.
    """
    cdef Py_ssize_t L = len(coefs), l, n = X.shape[0], start, m, width = 1
    cdef bint finite
    cdef const floating[::1] xdata
    cdef const Py_ssize_t[::1] xindices
    cdef const Py_ssize_t[::1] xindptr
    cdef CSR sparse
    cdef Py_ssize_t *units = NULL
    cdef const floating **W = NULL
    cdef const floating **b = NULL
    cdef floating *buf0
    cdef floating *buf1
    cdef floating *cur
    cdef floating *nxt
    cdef const floating[:, ::1] wv
    cdef const floating[::1] bv
    cdef floating[:, ::1] P
    cdef floating *scratch = NULL
    dtype = np.float32 if floating is float else np.float64
    _check_activation(activation)
    _check_output(output)
    if L < 1 or len(intercepts) != L:
        raise ValueError("forward needs matching, non-empty coefs and intercepts")
    units = <Py_ssize_t *>malloc((L + 1) * sizeof(Py_ssize_t))
    W = <const floating **>malloc(L * sizeof(floating *))
    b = <const floating **>malloc(L * sizeof(floating *))
    try:
        if not (units and W and b):
            raise MemoryError()
        units[0] = X.shape[1]
        if csr is not None:
            if n != 0:
                raise ValueError("with csr, X must be an empty (0, n_features) array")
            xdata, xindices, xindptr = _csr_arrays(csr, units[0])
            n = xindptr.shape[0] - 1
            sparse.data = &xdata[0] if xdata.shape[0] else NULL
            sparse.indices = &xindices[0] if xindices.shape[0] else NULL
            sparse.indptr = &xindptr[0]
        for l in range(L):
            wv = coefs[l]
            bv = intercepts[l]
            if wv.shape[0] != units[l] or bv.shape[0] != wv.shape[1]:
                raise ValueError(f"layer {l} has shape {(wv.shape[0], wv.shape[1])}, "
                                 f"expected fan_in {units[l]}")
            units[l + 1] = wv.shape[1]
            W[l] = &wv[0, 0]
            b[l] = &bv[0]
            if l < L - 1:
                width = max(width, units[l + 1])
        if check_finite and csr is None and n:
            with nogil:
                finite = _all_finite(&X[0, 0], n * units[0], n_threads)
            if not finite:
                return None
        out = np.empty((n, units[L]), dtype=dtype)
        P = out
        if n == 0:
            return out
        scratch = <floating *>malloc(2 * min(n, PREDICT_BLOCK_ROWS) * width * sizeof(floating))
        if scratch == NULL:
            raise MemoryError()
        buf0 = scratch
        buf1 = buf0 + min(n, PREDICT_BLOCK_ROWS) * width
        with nogil:
            start = 0
            while start < n:
                m = min(PREDICT_BLOCK_ROWS, n - start)
                cur = NULL if csr is not None else <floating *>&X[start, 0]
                for l in range(L):
                    nxt = &P[start, 0] if l == L - 1 else (buf0 if l % 2 == 0 else buf1)
                    # nxt = cur @ W[l]
                    if cur == NULL:
                        _csr_matmul(nxt, <const floating *>sparse.data, sparse.indices,
                                    sparse.indptr, NULL, start, m, W[l], units[l + 1],
                                    n_threads)
                    else:
                        _mm_par(nxt, cur, W[l], m, units[l], units[l + 1], n_threads)
                    if l < L - 1:
                        _bias_act_forward(nxt, b[l], activation, m, units[l + 1], n_threads)
                    else:
                        _output_forward(nxt, b[l], output, m, units[l + 1], n_threads)
                    cur = nxt
                start += m
        return out
    finally:
        free(scratch)
        free(units)
        free(W)
        free(b)


# ---------------------------------------------------------------- kernel entry points
# Thin wrappers over single kernels, used by the tests against NumPy references.

def bias_act_forward(floating[:, ::1] Z, const floating[::1] b, int activation, int n_threads):
    """Z <- act(Z + b) in place."""
    _check_activation(activation)
    if b.shape[0] != Z.shape[1]:
        raise ValueError("b must have one entry per column of Z")
    with nogil:
        _bias_act_forward(&Z[0, 0], &b[0], activation, Z.shape[0], Z.shape[1], n_threads)


def act_backward(floating[:, ::1] dZ, floating[::1] db, const floating[:, ::1] A,
                 int activation, int n_threads):
    """dZ <- dZ * act'(A) in place; db <- dZ.sum(axis=0)."""
    _check_activation(activation)
    if A.shape[0] != dZ.shape[0] or A.shape[1] != dZ.shape[1] or db.shape[0] != dZ.shape[1]:
        raise ValueError("dZ, db and A shapes do not match")
    with nogil:
        _act_backward(&dZ[0, 0], &db[0], &A[0, 0], activation, dZ.shape[0], dZ.shape[1],
                      n_threads)


def output_forward(floating[:, ::1] Z, const floating[::1] b, int output, int n_threads):
    """Z <- out(Z + b) in place."""
    _check_output(output)
    if b.shape[0] != Z.shape[1]:
        raise ValueError("b must have one entry per column of Z")
    with nogil:
        _output_forward(&Z[0, 0], &b[0], output, Z.shape[0], Z.shape[1], n_threads)


def output_loss_backward(floating[:, ::1] dZ, floating[::1] db, floating[:, ::1] Z,
                         double[::1] row_loss, const floating[::1] b,
                         const floating[:, ::1] Y, sw, int output, int n_threads):
    """Z <- P = out(Z + b); dZ = sw (P - Y); db = dZ.sum(0); returns sum of sw * loss."""
    cdef const floating[::1] swv
    cdef const floating *swp = NULL
    cdef double total
    _check_output(output)
    if sw is not None:
        swv = sw
        if swv.shape[0] != Z.shape[0]:
            raise ValueError("sw must have one entry per row")
        swp = &swv[0]
    if (dZ.shape[0] != Z.shape[0] or dZ.shape[1] != Z.shape[1] or Y.shape[0] != Z.shape[0]
            or Y.shape[1] != Z.shape[1] or b.shape[0] != Z.shape[1]
            or db.shape[0] != Z.shape[1] or row_loss.shape[0] != Z.shape[0]):
        raise ValueError("array shapes do not match")
    with nogil:
        total = _output_loss_backward(&dZ[0, 0], &db[0], &Z[0, 0], &row_loss[0], &b[0],
                                      &Y[0, 0], swp, output, Z.shape[0], Z.shape[1],
                                      n_threads)
    return total


def all_finite(const floating[::1] x, int n_threads=1):
    """True when x holds no NaN and no infinity."""
    cdef bint ok = True
    if x.shape[0]:
        with nogil:
            ok = _all_finite(&x[0], x.shape[0], n_threads)
    return bool(ok)


def gather_rows(floating[:, ::1] out, const floating[:, ::1] X, const Py_ssize_t[::1] idx,
                int n_threads):
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t i
    if out.shape[0] != idx.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("out must be (len(idx), X.shape[1])")
    for i in range(idx.shape[0]):
        if idx[i] < 0 or idx[i] >= X.shape[0]:
            raise IndexError("idx holds an index out of range")
    with nogil:
        _gather_rows(&out[0, 0], &X[0, 0], &idx[0], idx.shape[0], X.shape[1], n_threads)


def optimizer_step(int solver, floating[::1] params, floating[::1] state1, floating[::1] state2,
                   const floating[::1] grad, Py_ssize_t n_coef, double alpha, double sw_sum,
                   double learning_rate, double momentum, bint nesterov, double beta_1,
                   double beta_2, double epsilon, int n_threads):
    """One SGD or Adam step on the flat buffer (learning_rate already bias-corrected
    for Adam); returns the sum of squares of the updated params[:n_coef]."""
    cdef Py_ssize_t n = params.shape[0]
    cdef double[::1] partial = np.zeros(n // k.MLP_REDUCE_CHUNK + 1)
    cdef double sq
    if grad.shape[0] != n or state1.shape[0] != n or (solver == _ADAM
                                                     and state2.shape[0] != n):
        raise ValueError("params, grad and optimiser state must have the same length")
    if not 0 <= n_coef <= n:
        raise ValueError("n_coef must be in [0, len(params)]")
    if solver not in (_SGD, _ADAM):
        raise ValueError(f"unknown solver code {solver}")
    with nogil:
        if solver == _SGD:
            sq = _sgd_step(&params[0], &state1[0], &grad[0], &partial[0], n, n_coef, alpha,
                           sw_sum, learning_rate, momentum, nesterov, n_threads)
        else:
            sq = _adam_step(&params[0], &state1[0], &state2[0], &grad[0], &partial[0], n,
                            n_coef, alpha, sw_sum, learning_rate, beta_1, beta_2, epsilon,
                            n_threads)
    return sq
