# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# Design: mlpfast has three layers.
#   1. csrc/mlpfast_kernels.{h,c}: C99 kernels, float and double: each layer's
#      forward and backward (activations, the output head fused with its loss),
#      row gathers, sparse products, optimiser steps.
#   2. this module: owns the buffers, calls BLAS ?gemm (the engine's own
#      OpenBLAS, _load_blas) for every dense product, and runs a whole epoch
#      (batch gather, forward, loss, backward, optimiser step) under `nogil`.
#   3. mlpfast/_multilayer_perceptron.py: the scikit-learn estimators
#      (validation, labels, early stopping, verbose output), once per epoch.
#
# A network is a list of layers: dense (BLAS, its bias added by the next
# kernel), hidden activation, and last the output head with its loss. One
# forward (_forward_block) serves training, loss_grad and prediction; one
# backward (_backward_block, then Network._grads) serves training and loss_grad.
#
# Parallel work is cut by the problem alone, never by the thread or CPU count:
#   - rows in blocks (_block_rows, _n_blocks); a block goes through the whole
#     forward pass and the backward pass of its deltas on one thread;
#   - weight gradients in tiles of rows of each dW (Network._make_tiles):
#     each block's into a gradient slot of its own, the slots summed in block
#     order; a big block's tiles may be taken by any thread once its deltas
#     are done, so a thread out of blocks helps one that is behind (on a
#     machine where other programs hold a core, one thread often is). A network
#     whose slots would be too large (SLOT_VALUES) has none: every block's
#     deltas first, then the tiles, each the product of the whole batch;
#   - optimiser steps and reductions in fixed chunks summed in a fixed order;
#     a batch's step is shared out by the team of its pass, in the same
#     parallel region (MLP_TEAM), so a batch opens one region.
# Any thread may run any block or tile, so every thread count computes the
# very same BLAS calls and kernels: results are bit-identical.
#
# Parameters live in one flat buffer laid out as scikit-learn's `_pack`:
# every coefficient matrix (fan_in, fan_out) row-major, then every intercept;
# then PReLU layers' slopes, which take no L2 penalty.

from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from posix.dlfcn cimport dlerror, dlopen, dlsym, RTLD_LOCAL, RTLD_NOW

cimport mlpfast._ckernels as k

import importlib.util
import os
import warnings

import numpy as np

ctypedef fused floating:
    float
    double

# How often (seconds) the nogil epoch loop takes the GIL to look for Ctrl-C.
cdef double SIGNAL_CHECK_SECONDS = 0.05

# The kernel codes, from the C enums (csrc/mlpfast_kernels.h): the one table.
ACTIVATIONS = {"identity": k.MLP_ACT_IDENTITY, "logistic": k.MLP_ACT_LOGISTIC,
               "tanh": k.MLP_ACT_TANH, "relu": k.MLP_ACT_RELU,
               "leaky_relu": k.MLP_ACT_LEAKY_RELU, "elu": k.MLP_ACT_ELU,
               "selu": k.MLP_ACT_SELU, "softplus": k.MLP_ACT_SOFTPLUS,
               "gelu": k.MLP_ACT_GELU, "prelu": k.MLP_ACT_PRELU, "sine": k.MLP_ACT_SINE,
               "maxout": k.MLP_ACT_MAXOUT}
# The activations with a parameter, and its default: leaky_relu's slope, elu's
# alpha, sine's omega_0, maxout's pieces per unit.
ACTIVATION_DEFAULTS = {"leaky_relu": k.MLP_LEAKY_SLOPE, "elu": k.MLP_ELU_ALPHA,
                       "sine": k.MLP_SINE_OMEGA, "maxout": k.MLP_MAXOUT_PIECES}
# PReLU's slopes before training.
PRELU_SLOPE = k.MLP_PRELU_SLOPE
# SELU's (alpha, scale).
SELU_CONSTANTS = (k.MLP_SELU_ALPHA, k.MLP_SELU_SCALE)


def _normal_tail_table():
    cdef const double *num
    cdef const double *den
    cdef double amax
    cdef int degree = k.mlp_normal_tail_table(&num, &den, &amax)
    return ([num[i] for i in range(degree + 1)], [den[i] for i in range(degree + 2)], amax)


# GELU's float64 normal distribution function, for exporters that compute it
# elsewhere (mlpfast.onnx): (P, Q, amax) with, for a >= 0,
# (1 - Phi(a)) exp(a^2 / 2) = P(a) / Q(a), a clamped to amax; the coefficients
# are of a^0, a^1, ...
NORMAL_TAIL = _normal_tail_table()
# The output heads: the four canonical pairs by their output activation, the
# losses on the identity by the loss.
OUTPUTS = {"identity": k.MLP_OUT_IDENTITY_SQUARED, "logistic": k.MLP_OUT_LOGISTIC_BINARY,
           "softmax": k.MLP_OUT_SOFTMAX_MULTI, "exp": k.MLP_OUT_EXP_POISSON,
           "huber": k.MLP_OUT_IDENTITY_HUBER, "absolute_error": k.MLP_OUT_IDENTITY_ABSOLUTE,
           "hinge": k.MLP_OUT_HINGE, "squared_hinge": k.MLP_OUT_SQUARED_HINGE,
           "multi_hinge": k.MLP_OUT_MULTI_HINGE,
           "multi_squared_hinge": k.MLP_OUT_MULTI_SQUARED_HINGE}
SOLVERS = {"sgd": k.MLP_SOLVER_SGD, "adam": k.MLP_SOLVER_ADAM}
assert len(ACTIVATIONS) == k.MLP_N_ACTIVATIONS and len(OUTPUTS) == k.MLP_N_OUTPUTS

# Instruction sets of the element-wise kernels; the best available is used.
_KERNEL_ISAS = {"baseline": k.MLP_ISA_BASELINE, "avx2": k.MLP_ISA_AVX2,
                "avx512": k.MLP_ISA_AVX512}


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


def _best_isa(cap):
    """The best instruction set available, or with cap (MLPFAST_KERNELS, read
    at import) the best up to that one: the kernels then run as on a CPU
    without the sets above it, as ATEN_CPU_CAPABILITY makes PyTorch's."""
    have = kernel_isas()
    cap = (cap or "").strip().lower()
    if cap in _KERNEL_ISAS:
        have = [name for name in have if _KERNEL_ISAS[name] <= _KERNEL_ISAS[cap]]
    elif cap:
        warnings.warn(f"MLPFAST_KERNELS={cap!r} names none of {list(_KERNEL_ISAS)}; ignored",
                      RuntimeWarning, stacklevel=2)
    return max(have, key=_KERNEL_ISAS.get)


set_kernel_isa(_best_isa(os.environ.get("MLPFAST_KERNELS")))


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(k.mlp_openmp_enabled())


def openmp_max_threads():
    """OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl);
    1 without OpenMP or in a process created by fork (see in_forked_child)."""
    return k.mlp_max_threads()


def in_forked_child():
    """True in a process created by fork() from one whose kernels had run on
    more than one thread: its kernels run on one thread, since OpenMP's threads
    do not survive fork. Always False without OpenMP."""
    return bool(k.mlp_in_forked_child())


if k.mlp_watch_fork() != 0:
    raise ImportError("mlpfast: could not register its fork handler (pthread_atfork)")


def _check_code(int code, table, str what):
    if code not in table.values():
        raise ValueError(f"unknown {what} code {code}")


_PARAM_CODES = {ACTIVATIONS[name]: value for name, value in ACTIVATION_DEFAULTS.items()}


def _hidden_specs(activation, Py_ssize_t n_hidden):
    """Each hidden layer's (code, param): ``activation`` is one spec for all
    layers or a list of one per layer, a spec being a code or a (code, param)
    pair; param defaults to ACTIVATION_DEFAULTS (0 where there is none)."""
    if not isinstance(activation, (int, tuple, list)):
        raise TypeError("activation must be a code, a (code, param) pair or a list of them")
    specs = list(activation) if isinstance(activation, list) else [activation] * n_hidden
    if len(specs) != n_hidden:
        raise ValueError(f"{len(specs)} activation codes for {n_hidden} hidden layers")
    out = []
    for spec in specs:
        if isinstance(spec, tuple) and len(spec) != 2:
            raise ValueError(f"an activation spec is a code or a (code, param) pair, got {spec}")
        code, param = spec if isinstance(spec, tuple) else (spec, None)
        _check_code(code, ACTIVATIONS, "activation")
        if param is not None and code not in _PARAM_CODES:
            raise ValueError(f"activation code {code} takes no parameter, got {param}")
        if param is None:
            param = _PARAM_CODES.get(code, 0)
        param = float(param)
        if not np.isfinite(param):
            raise ValueError(f"activation parameters must be finite, got {param}")
        if code == k.MLP_ACT_MAXOUT and not (param >= 1 and param == int(param)):
            raise ValueError(f"maxout needs a whole number of pieces >= 1, got {param}")
        if code == k.MLP_ACT_LEAKY_RELU and not param >= 0:
            raise ValueError(f"leaky_relu's slope must be >= 0, got {param}")
        if code == k.MLP_ACT_ELU and not param > 0:
            raise ValueError(f"elu's alpha must be > 0, got {param}")
        out.append((code, param))
    return out


cdef inline Py_ssize_t _pieces(tuple spec):
    # the pre-activations per unit of a layer with this (code, param)
    return int(spec[1]) if spec[0] == k.MLP_ACT_MAXOUT else 1


cdef k.mlp_act _act_struct(tuple spec):
    # the kernels' mlp_act of one (code, param)
    cdef k.mlp_act act
    act.code = spec[0]
    act.param = spec[1]
    act.pieces = _pieces(spec)
    return act


cdef k.mlp_act *_act_array(list specs) except NULL:
    # malloc'd mlp_act structs for Net.act (one entry at least); the caller frees it
    cdef k.mlp_act *act = <k.mlp_act *>malloc(max(1, len(specs)) * sizeof(k.mlp_act))
    cdef Py_ssize_t l
    if act == NULL:
        raise MemoryError()
    for l in range(len(specs)):
        act[l] = _act_struct(specs[l])
    return act


# ---------------------------------------------------------------- BLAS
# The engine's BLAS is its own OpenBLAS, scipy-openblas32's, rather than
# whichever copy the installed scipy bundles: older ones pack float32 matrices
# for the GEMM kernel one element at a time on AVX-512 CPUs, an eighth of a
# big float32 fit's time. It is opened privately (RTLD_LOCAL): importing its
# package would put its functions, named as those of scipy's copy, in the
# global namespace, where scipy modules loaded later would take them for
# scipy's own. It runs on the calling thread (_config.blas_single_threaded
# keeps it so during fits, whatever threadpoolctl is told): the engine's
# threads share out the work.

ctypedef void (*sgemm_t)(const char *ta, const char *tb, const int *m, const int *n,
                         const int *k, const float *alpha, const float *a, const int *lda,
                         const float *b, const int *ldb, const float *beta, float *c,
                         const int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(const char *ta, const char *tb, const int *m, const int *n,
                         const int *k, const double *alpha, const double *a, const int *lda,
                         const double *b, const int *ldb, const double *beta, double *c,
                         const int *ldc) noexcept nogil
ctypedef void (*set_threads_t)(int n) noexcept nogil
cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def _find_blas():
    # the file of scipy-openblas32's OpenBLAS, found without importing that
    # package (see above)
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mlpfast needs the scipy-openblas32 package for its BLAS: "
                          "pip install scipy-openblas32")
    lib = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    names = sorted(n for n in os.listdir(lib) if n.startswith("libscipy_openblas")
                   and (n.endswith((".so", ".dylib")) or ".so." in n))
    if not names:
        raise ImportError(f"mlpfast: scipy-openblas32 has no OpenBLAS library in {lib}")
    return os.path.realpath(os.path.join(lib, names[0]))


cdef void *_blas_symbol(void *handle, const char *name, path) except NULL:
    cdef void *f = dlsym(handle, name)
    if f == NULL:
        raise ImportError(f"mlpfast: its BLAS, {path}, has no {name.decode()}")
    return f


cdef _load_blas():
    # opens the engine's BLAS, sets _sgemm and _dgemm, returns its file
    global _sgemm, _dgemm
    path = _find_blas()
    cdef void *handle = dlopen(os.fsencode(path), RTLD_NOW | RTLD_LOCAL)
    if handle == NULL:
        raise ImportError(f"mlpfast: could not load its BLAS: {dlerror().decode()}")
    _sgemm = <sgemm_t>_blas_symbol(handle, b"scipy_sgemm_", path)
    _dgemm = <dgemm_t>_blas_symbol(handle, b"scipy_dgemm_", path)
    (<set_threads_t>_blas_symbol(handle, b"scipy_openblas_set_num_threads", path))(1)
    return path


# The file of the engine's BLAS (its realpath).
BLAS_LIBRARY = _load_blas()


# Row-major products: BLAS is column-major, and a row-major (M, N) matrix is
# its column-major transpose, so C = A @ B is computed as C^T = B^T A^T.

cdef inline void _gemm(char ta, char tb, int m, int n, int kk, const floating *a, int lda,
                       const floating *b, int ldb, floating *c, int ldc) noexcept nogil:
    # c = op(a) @ op(b) (column-major)
    cdef floating one = 1, zero = 0
    if floating is float:
        _sgemm(&ta, &tb, &m, &n, &kk, &one, a, &lda, b, &ldb, &zero, c, &ldc)
    else:
        _dgemm(&ta, &tb, &m, &n, &kk, &one, a, &lda, b, &ldb, &zero, c, &ldc)


cdef inline void _mm(floating *C, const floating *A, const floating *B,
                     Py_ssize_t M, Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    # C[M,N] = A[M,K] @ B[K,N]
    _gemm(c'N', c'N', <int>N, <int>M, <int>K, B, <int>N, A, <int>K, C, <int>N)


cdef inline void _mm_nt(floating *C, const floating *A, const floating *B,
                        Py_ssize_t M, Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    # C[M,N] = A[M,K] @ B[N,K].T
    _gemm(c'T', c'N', <int>N, <int>M, <int>K, B, <int>K, A, <int>K, C, <int>N)


cdef inline void _mm_tn(floating *C, const floating *A, const floating *B, Py_ssize_t lda,
                        Py_ssize_t M, Py_ssize_t K, Py_ssize_t N) noexcept nogil:
    # C[M,N] = A[K,M].T @ B[K,N], the rows of A lda apart (a column slice of a wider
    # matrix)
    _gemm(c'N', c'T', <int>N, <int>M, <int>K, B, <int>N, A, <int>lda, C, <int>N)


# ---------------------------------------------------------------- kernel dispatch

cdef inline void _act_forward(floating *A, floating *Z, const floating *b,
                              const floating *slope, const k.mlp_act *act, Py_ssize_t N,
                              Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_act_forward_f32(A, Z, b, slope, act, N, O)
    else:
        k.mlp_act_forward_f64(A, Z, b, slope, act, N, O)


cdef inline void _act_backward(floating *dZ, floating *dS, const floating *dA,
                               const floating *Z, const floating *A, const floating *slope,
                               const k.mlp_act *act, Py_ssize_t N,
                               Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_act_backward_f32(dZ, dS, dA, Z, A, slope, act, N, O)
    else:
        k.mlp_act_backward_f64(dZ, dS, dA, Z, A, slope, act, N, O)


cdef inline void _perturb_forward(floating *H, const floating *A, const Py_ssize_t *rows,
                                  Py_ssize_t row0, uint64_t key, double p, double sigma,
                                  Py_ssize_t N, Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_perturb_forward_f32(H, A, rows, row0, key, p, sigma, N, O)
    else:
        k.mlp_perturb_forward_f64(H, A, rows, row0, key, p, sigma, N, O)


cdef inline void _perturb_backward(floating *dA, const Py_ssize_t *rows, Py_ssize_t row0,
                                   uint64_t key, double p, Py_ssize_t N,
                                   Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_perturb_backward_f32(dA, rows, row0, key, p, N, O)
    else:
        k.mlp_perturb_backward_f64(dA, rows, row0, key, p, N, O)


cdef inline void _add_noise(floating *out, const floating *x, Py_ssize_t n, uint64_t key,
                            double sigma, int nt) noexcept nogil:
    if floating is float:
        k.mlp_add_noise_f32(out, x, n, key, sigma, nt)
    else:
        k.mlp_add_noise_f64(out, x, n, key, sigma, nt)


cdef inline void _column_sums(floating *s, const floating *X, Py_ssize_t N,
                              Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_column_sums_f32(s, X, N, O)
    else:
        k.mlp_column_sums_f64(s, X, N, O)


cdef inline void _output_forward(floating *Z, const floating *b, int out, Py_ssize_t N,
                                 Py_ssize_t K) noexcept nogil:
    if floating is float:
        k.mlp_output_forward_f32(Z, b, out, N, K)
    else:
        k.mlp_output_forward_f64(Z, b, out, N, K)


cdef inline void _output_loss_backward(floating *dZ, floating *Z, double *row_loss,
                                       const floating *b, const floating *Y,
                                       const floating *sw, int out, double param,
                                       Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    if floating is float:
        k.mlp_output_loss_backward_f32(dZ, Z, row_loss, b, Y, sw, out, param, N, K)
    else:
        k.mlp_output_loss_backward_f64(dZ, Z, row_loss, b, Y, sw, out, param, N, K)


cdef inline bint _all_finite(const floating *x, Py_ssize_t n, int nt) noexcept nogil:
    if floating is float:
        return k.mlp_all_finite_f32(x, n, nt)
    else:
        return k.mlp_all_finite_f64(x, n, nt)


cdef inline void _gather_rows(floating *out, const floating *X, const Py_ssize_t *idx,
                              Py_ssize_t N, Py_ssize_t D) noexcept nogil:
    if floating is float:
        k.mlp_gather_rows_f32(out, X, idx, N, D)
    else:
        k.mlp_gather_rows_f64(out, X, idx, N, D)


cdef inline double _sum_squares(const floating *x, Py_ssize_t n, double *partial,
                                int nt) noexcept nogil:
    if floating is float:
        return k.mlp_sum_squares_f32(x, n, partial, nt)
    else:
        return k.mlp_sum_squares_f64(x, n, partial, nt)


cdef inline double _finish_grad(floating *grad, const floating *slots, Py_ssize_t n_slots,
                                const floating *params, double *partial, Py_ssize_t n,
                                Py_ssize_t n_coef, double alpha, double sw_sum,
                                int nt) noexcept nogil:
    if floating is float:
        return k.mlp_finish_grad_f32(grad, slots, n_slots, params, partial, n, n_coef, alpha,
                                     sw_sum, nt)
    else:
        return k.mlp_finish_grad_f64(grad, slots, n_slots, params, partial, n, n_coef, alpha,
                                     sw_sum, nt)


cdef inline double _step(floating *params, floating *grad, const floating *slots,
                         Py_ssize_t n_slots, double *partial, Py_ssize_t n, Py_ssize_t n_coef,
                         double alpha, double sw_sum, k.mlp_optimizer *opt,
                         int nt) noexcept nogil:
    if floating is float:
        return k.mlp_step_f32(params, grad, slots, n_slots, partial, n, n_coef, alpha, sw_sum,
                              opt, nt)
    else:
        return k.mlp_step_f64(params, grad, slots, n_slots, partial, n, n_coef, alpha, sw_sum,
                              opt, nt)


cdef inline void _csr_matmul(floating *Z, const CSR *csr, const Py_ssize_t *rows,
                             Py_ssize_t row0, Py_ssize_t N, const floating *W,
                             Py_ssize_t O) noexcept nogil:
    if floating is float:
        k.mlp_csr_matmul_f32(Z, <const float *>csr.data, csr.indices, csr.indptr, rows, row0,
                             N, W, O)
    else:
        k.mlp_csr_matmul_f64(Z, <const double *>csr.data, csr.indices, csr.indptr, rows,
                             row0, N, W, O)


cdef inline void _csr_matmul_tn(floating *dW, const CSR *csr, const Py_ssize_t *rows,
                                Py_ssize_t row0, Py_ssize_t N, const floating *D,
                                Py_ssize_t O, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    if floating is float:
        k.mlp_csr_matmul_tn_f32(dW, <const float *>csr.data, csr.indices, csr.indptr, rows,
                                row0, N, D, O, i0, i1)
    else:
        k.mlp_csr_matmul_tn_f64(dW, <const double *>csr.data, csr.indices, csr.indptr, rows,
                                row0, N, D, O, i0, i1)


# ---------------------------------------------------------------- work division

# Rows per training block: enough for BLAS to run near its rate on a block's
# products (each packs the layer's weights again, which a big layer pays for
# with more rows: BLOCK_ROWS, doubled for a widest layer of more than
# BIG_LAYER_WEIGHTS weights and again above 4 times that), few enough that a
# batch of the usual sizes (200 to 512) makes several blocks. A prediction
# keeps no backward buffers: bigger blocks.
cdef Py_ssize_t BLOCK_ROWS = 64
cdef Py_ssize_t BIG_LAYER_WEIGHTS = 1 << 16
cdef Py_ssize_t PREDICT_BLOCK_ROWS = 256
# A weight gradient is cut in tiles of its rows (the layer's inputs) of about
# this many weights, at most MAX_TILES per layer (each tile reads the layer's
# deltas again), each a multiple of TILE_ROWS rows but the last; a tile keeps
# every column, along which BLAS vectorises.
cdef Py_ssize_t TILE_WEIGHTS = 32768
cdef Py_ssize_t MAX_TILES = 16
cdef Py_ssize_t TILE_ROWS = 16
# Gradient slots (one per row block but the first) when they hold at most this
# many values in all (32 MiB of float32): a block's products are its own and
# run at BLAS's rate, where narrow tiles do not, and summing the slots costs
# little beside the products (the optimiser step sums them, chunk by chunk,
# while it has the chunk in cache).
cdef Py_ssize_t SLOT_VALUES = 1 << 23


def _block_rows(weights):
    """Rows per training block of a network with these weights per layer."""
    widest = max(weights)
    if widest > 4 * BIG_LAYER_WEIGHTS:
        return 4 * BLOCK_ROWS
    return 2 * BLOCK_ROWS if widest > BIG_LAYER_WEIGHTS else BLOCK_ROWS


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n, Py_ssize_t rows) noexcept nogil:
    # blocks of about `rows` rows of an n-row batch; block b is rows
    # [n * b // nb, n * (b + 1) // nb)
    return max(1, (n + rows - 1) // rows)


# Threads per batch. Results never depend on the thread count, so a fit times
# its batches per row on all its threads and on one, and runs the cheaper: on a
# machine where other programs hold the cores, a team that waits for a
# descheduled thread at every batch costs more than one thread alone. Each way
# is measured by a trial of PACE_TRIAL batches in a row, taking the fastest
# (the first of a run on all threads may wait for idle CPUs to wake, which
# later ones do not); then the cheaper way runs, its cost smoothed, and the
# other is tried again once the batches since the last trial have taken
# PACE_PATIENCE times what a trial is expected to lose, so trials cost at most
# about 1 / PACE_PATIENCE of the time.
#
# A new fit starts from what the fits before it found, while that is recent
# (PACE_PRIOR_SECONDS): the ratio of a batch's cost on all threads to its cost
# on one. It tries the cheaper way first and estimates the other's cost from
# the ratio, so that a machine under load is not paid for again by every short
# fit of a search. A fit that ran or tried both ways passes on the ratio of
# each way's mean cost over the batches it ran outside trials (a way only
# tried: its trial's), not of the smoothed costs, which are about equal when a
# fit has just left a way for the other.
cdef struct Pace:
    double cost[2]   # seconds per row: [one thread, n_threads]; 0: not yet
    double since     # seconds of batches since the last trial
    double ratio     # the prior cost[1] / cost[0]; 0: none
    int measured     # bit m: cost[m] was measured, not estimated
    int trial        # the way on trial, -1: none
    int trial_left   # batches left in the trial
    double trial_min # its fastest batch so far, seconds per row
    double run_seconds[2]  # the batches run each way outside trials: seconds
    double run_rows[2]     # and rows
cdef int PACE_TRIAL = 3
cdef double PACE_PATIENCE = 100
cdef double PACE_WEIGHT = 0.25   # of a new sample in the smoothed cost
cdef double PACE_PRIOR_SECONDS = 1
cdef double PACE_PRIOR_RATIO = 0
cdef double PACE_PRIOR_TIME = 0


cdef inline void _pace_init(Pace *p, double ratio) noexcept nogil:
    p.cost[0] = 0
    p.cost[1] = 0
    p.since = 0
    p.ratio = ratio
    p.measured = 0
    p.trial = -1
    p.trial_left = 0
    p.trial_min = 0
    p.run_seconds[0] = p.run_seconds[1] = 0
    p.run_rows[0] = p.run_rows[1] = 0


cdef inline int _pace_choose(Pace *p, Py_ssize_t rows) noexcept nogil:
    # 1: run the next batch of `rows` rows on all threads, 0: on one
    cdef int best, way = -1
    if p.trial >= 0:
        return p.trial
    if p.cost[0] == 0 and p.cost[1] == 0:
        way = 0 if p.ratio > 1 else 1
    elif p.cost[0] == 0 or p.cost[1] == 0:
        way = 0 if p.cost[0] == 0 else 1
    else:
        best = 0 if p.cost[0] < p.cost[1] else 1
        if p.since < PACE_PATIENCE * PACE_TRIAL * (p.cost[1 - best] - p.cost[best]) * rows:
            return best
        way = 1 - best
    p.trial = way
    p.trial_left = PACE_TRIAL
    p.trial_min = 0
    return way


cdef inline void _pace_note(Pace *p, int way, double seconds, Py_ssize_t rows) noexcept nogil:
    # a batch of `rows` rows took `seconds` on all threads (way 1) or one
    cdef double s = seconds / rows
    if way == p.trial:
        p.trial_min = s if p.trial_min == 0 else min(p.trial_min, s)
        p.trial_left -= 1
        if p.trial_left == 0:
            p.cost[way] = p.trial_min
            p.measured |= 1 << way
            p.trial = -1
            p.since = 0
            if p.cost[1 - way] == 0 and p.ratio > 0:
                p.cost[1 - way] = p.cost[way] * (p.ratio if way == 0 else 1 / p.ratio)
    else:
        p.run_seconds[way] += seconds
        p.run_rows[way] += rows
        if p.cost[way] == 0:
            p.cost[way] = s
        else:
            p.cost[way] += PACE_WEIGHT * (s - p.cost[way])
            p.since += seconds


cdef inline int _pace_threads(Pace *p, int n_threads, Py_ssize_t rows) noexcept nogil:
    # the threads for the next batch of `rows` rows of a call given n_threads:
    # its share of them (_share) when the Pace chooses all threads, else 1
    if n_threads < 2 or not _pace_choose(p, rows):
        return 1
    return _share(n_threads)


cdef double _pace_prior() noexcept:
    # the ratio for a new fit's Pace (called with the GIL)
    if k.mlp_monotonic_seconds() - PACE_PRIOR_TIME < PACE_PRIOR_SECONDS:
        return PACE_PRIOR_RATIO
    return 0


cdef inline double _pace_ratio(const Pace *p) noexcept nogil:
    # the ratio a fit passes on (see Pace), 0 unless it ran or tried both ways
    cdef double mean[2]
    cdef int way
    for way in range(2):
        if p.run_rows[way] > 0:
            mean[way] = p.run_seconds[way] / p.run_rows[way]
        elif p.measured & (1 << way):
            mean[way] = p.cost[way]
        else:
            return 0
    return mean[1] / mean[0]


cdef void _pace_share(const Pace *p) noexcept:
    # a fit's ratio, for the fits after it (called with the GIL)
    global PACE_PRIOR_RATIO, PACE_PRIOR_TIME
    cdef double ratio = _pace_ratio(p)
    if ratio > 0:
        PACE_PRIOR_RATIO = ratio
        PACE_PRIOR_TIME = k.mlp_monotonic_seconds()


def _pace_replay(costs, double ratio=0):
    """The ways (1: all threads, 0: one) a new Pace with prior ratio picks for
    batches of one row whose cost would be costs[i] = (seconds on one thread,
    seconds on all), and the ratio it passes on (0: none): the threads-per-batch
    rule without a clock, for tests."""
    cdef Pace p
    cdef int way
    _pace_init(&p, ratio)
    ways = []
    for one, many in costs:
        way = _pace_choose(&p, 1)
        _pace_note(&p, way, many if way else one, 1)
        ways.append(way)
    return ways, _pace_ratio(&p)


# Engine calls under way in this process (fits and predictions in several
# Python threads, as joblib's threading backend runs them) share the CPUs: each
# batch or prediction runs on its call's threads divided by the calls under
# way, so that together they do not oversubscribe the CPUs.
cdef inline int _share(int n_threads) noexcept nogil:
    return max(1, n_threads // max(1, k.mlp_calls_active()))


def calls_active():
    """Engine calls under way in this process (see _share)."""
    return k.mlp_calls_active()


def _calls_change(int delta):
    """Counts delta more calls under way (tests stand in for other calls)."""
    return k.mlp_calls_change(delta)


def share_threads(int n_threads):
    """The threads one call given n_threads runs on now (see _share)."""
    return _share(n_threads)


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


# The shape and parameters of a network: what a pass reads.
cdef struct Net:
    Py_ssize_t n_layers
    Py_ssize_t *units    # n_layers + 1 widths: X's, each hidden layer's units, the outputs
    Py_ssize_t *width    # per layer: its pre-activations Z (W's columns), units[l + 1]
                         # times its activation's pieces
    const k.mlp_act *act # per hidden layer (n_layers - 1): its activation
    const void **slope   # per hidden layer: PReLU's slopes (units[l + 1]), else NULL
    int out
    double out_param     # the output loss's parameter (Huber's threshold)
    const void **W       # per layer: coefficients (units[l], width[l])
    const void **b       # per layer: intercepts (width[l],)
    # Training only (NULL in prediction): per layer, the dropout rate and the
    # Gaussian noise's deviation of its input (layer 0's: X), drawn from
    # _layer_key(net, l)
    const double *drop
    const double *noise
    uint64_t key


# The input of a pass: dense rows, or a CSR matrix's rows.
cdef struct Input:
    const void *X        # dense: row 0 of the pass; NULL: csr
    CSR csr
    const Py_ssize_t *rows   # csr: the pass's rows of X, or NULL for rows row0...
    Py_ssize_t row0


# The places of the layers' keys under a pass's key: far from the batch
# offsets that key the weight noise.
cdef uint64_t LAYER_PLACE = <uint64_t>-1


cdef inline uint64_t _layer_key(const Net *net, Py_ssize_t l) noexcept nogil:
    # the key of layer l's dropout and noise in this pass
    return k.mlp_key(net.key, LAYER_PLACE - l)


cdef inline bint _perturbed(const Net *net, Py_ssize_t l) noexcept nogil:
    # whether layer l's input is perturbed (dropout or noise) in this pass
    return net.drop != NULL and (net.drop[l] > 0 or net.noise[l] > 0)


cdef inline void _perturb_block(const Net *net, floating *H, const floating *A,
                                const Input *inp, Py_ssize_t l, Py_ssize_t r0,
                                Py_ssize_t m) noexcept nogil:
    # H = perturbed A for rows [r0, r0 + m) of the pass, layer l's input
    _perturb_forward(H, A, inp.rows + r0 if inp.rows != NULL else NULL, inp.row0 + r0,
                     _layer_key(net, l), net.drop[l], net.noise[l], m,
                     net.units[l])


cdef void _forward_block(const Net *net, floating **Z, floating **A, floating **H,
                         const Input *inp, Py_ssize_t r0, Py_ssize_t m,
                         floating *out) noexcept nogil:
    """Rows [r0, r0 + m) of a pass: Z[l] = H[l-1] @ W[l]; A[l] = act(Z[l] + b[l])
    through the hidden layers (Z, A, H: per-layer buffers, row r0 first), H[l]
    the next layer's input: A[l] perturbed in training (_perturbed; its own
    buffer), else A[l] itself; and the last layer's product, without its
    bias, into out (the head finishes it). A perturbed X is the caller's."""
    cdef Py_ssize_t L = net.n_layers, l
    cdef Py_ssize_t *u = net.units
    cdef Py_ssize_t *w = net.width
    cdef floating *dst
    for l in range(L):
        dst = out if l == L - 1 else Z[l] + r0 * w[l]
        if l > 0:
            # Z[l] = H[l-1] @ W[l]
            _mm(dst, H[l - 1] + r0 * u[l], <const floating *>net.W[l], m, u[l], w[l])
        elif inp.X != NULL:
            _mm(dst, <const floating *>inp.X + r0 * u[0], <const floating *>net.W[0], m, u[0], w[0])
        else:
            _csr_matmul(dst, &inp.csr, inp.rows + r0 if inp.rows != NULL else NULL,
                        inp.row0 + r0, m, <const floating *>net.W[0], w[0])
        if l < L - 1:
            _act_forward(A[l] + r0 * u[l + 1], dst, <const floating *>net.b[l],
                         <const floating *>net.slope[l], &net.act[l], m, u[l + 1])
            if _perturbed(net, l + 1):
                _perturb_block(net, H[l] + r0 * u[l + 1], A[l] + r0 * u[l + 1], inp, l + 1,
                               r0, m)


cdef void _backward_block(const Net *net, floating **Z, floating **A, floating **D,
                          floating **E, floating **S, const Input *inp, Py_ssize_t r0,
                          Py_ssize_t m) noexcept nogil:
    """Rows [r0, r0 + m): the deltas of every hidden layer from the output's,
    D[l-1] = (D[l] @ W[l].T) * dH[l-1]/dA[l-1] * dA[l-1]/dZ[l-1], the middle
    factor dropout's mask (1 without dropout). The first product goes to
    E[l-1] (D[l-1] itself but for maxout, whose D is wider); a PReLU layer's
    rows of its slopes' gradient go to S[l-1] (NULL for the others)."""
    cdef Py_ssize_t l
    cdef Py_ssize_t *u = net.units
    cdef Py_ssize_t *w = net.width
    cdef floating *dA
    cdef floating *dS
    for l in range(net.n_layers - 1, 0, -1):
        dA = E[l - 1] + r0 * u[l]
        dS = S[l - 1] + r0 * u[l] if S[l - 1] != NULL else NULL
        _mm_nt(dA, D[l] + r0 * w[l], <const floating *>net.W[l], m, w[l], u[l])
        if net.drop != NULL and net.drop[l] > 0:
            _perturb_backward(dA, inp.rows + r0 if inp.rows != NULL else NULL, inp.row0 + r0,
                              _layer_key(net, l), net.drop[l], m, u[l])
        _act_backward(D[l - 1] + r0 * w[l - 1], dS, dA, Z[l - 1] + r0 * w[l - 1],
                      A[l - 1] + r0 * u[l], <const floating *>net.slope[l - 1],
                      &net.act[l - 1], m, u[l])


# ---------------------------------------------------------------- the network

cdef class Network:
    """Training buffers and layout of one MLP, allocated once per fit.

    Parameters
    ----------
    layer_units : list of int
        ``[n_features, *hidden_layer_sizes, n_outputs]``.
    activation : int, tuple or list
        The hidden layers' activation: a code (``ACTIVATIONS``) or a
        ``(code, param)`` pair (see ``ACTIVATION_DEFAULTS``: maxout's param is
        its pieces per unit); or a list of one per hidden layer. A maxout
        layer of O units has P O pre-activations, W's columns ``j O + o``
        being unit o's piece j; a PReLU layer's slopes follow the intercepts
        in the parameters (see slope_layout).
    output : int
        Fused output activation + loss code (``OUTPUTS``).
    dtype : numpy dtype
        float32 or float64; every buffer and the parameters share it.
    capacity : int
        The most rows one forward/backward pass handles (the batch size).
    n_threads : int
        The most OpenMP threads a pass uses.
    dense_input : bool, default=True
        False when X will be CSR: then no dense batch buffer is allocated
        (a (batch, n_features) buffer could be huge for sparse data).
    slot_values : int, default=SLOT_VALUES
        The most values the blocks' gradient slots may hold; beyond, the
        weight gradients come in tiles.
    output_param : float, default=1.0
        The output loss's parameter: Huber's threshold (> 0); the other
        losses have none.
    dropout, noise : sequence of float, default=None
        Per layer (n_layers of them, the first X's), the dropout rate in
        [0, 1) and the deviation (>= 0) of the Gaussian noise added to the
        layer's input in training passes (run_epoch, loss_grad), never in
        prediction. None: none.
    weight_noise : float, default=0
        The deviation of the Gaussian noise added to the coefficients
        (not the intercepts) for each batch's forward and backward pass; the
        step updates the coefficients without it.

    The random numbers come from ``noise_key`` (run_epoch sets it per epoch)
    and the place they are used: the data row and the layer, or the batch's
    first row and the weight's index. A model is then the same on any number
    of threads and in any batch division of the work.
    """
    cdef readonly Py_ssize_t n_layers, n_params, n_coef, capacity, n_features, n_outputs
    cdef readonly Py_ssize_t n_tiles, block_rows
    # True: each block's gradient goes to a slot of its own (the first block's
    # to grad), the slots summed in block order; False: tiles of the whole batch
    cdef readonly bint block_grads
    # With slots, whether a thread out of blocks takes tiles of another block:
    # only where a block's gradient is big (a layer of more than
    # BIG_LAYER_WEIGHTS weights); below, reading the rows another thread has
    # in its cache costs the helper more than the wait it saves
    cdef readonly bint share_tiles
    cdef readonly int output, n_threads
    cdef readonly tuple activation
    cdef readonly bint dense_input
    # Optimiser steps made by the last run_epoch so far (read it after Ctrl-C).
    cdef readonly long last_epoch_steps
    # The most threads a batch of this network has run on.
    cdef readonly int max_team
    cdef readonly object dtype
    cdef readonly object grad
    cdef Net net
    cdef Py_ssize_t *coef_off
    cdef Py_ssize_t *inter_off
    cdef void **Z
    cdef void **A
    cdef void **D
    cdef void **H
    cdef void **E        # per layer: maxout's delta of its units (else D's buffer)
    cdef void **S        # per layer: PReLU's rows of its slopes' gradient, else NULL
    cdef Py_ssize_t *slope_off   # per layer: its slopes' offset in the params, or -1
    cdef readonly tuple dropout, noise
    cdef readonly double weight_noise
    cdef void *wbuf
    # tile t: rows [tile_lo[t], tile_hi[t]) of layer tile_layer[t]'s weight
    # gradient, or its bias gradient (lo = -1)
    cdef Py_ssize_t *tile_layer
    cdef Py_ssize_t *tile_lo
    cdef Py_ssize_t *tile_hi
    # per block of a pass with slots: its tiles claimed so far, and whether
    # its deltas are done (share_tiles)
    cdef int *next_tile
    cdef int *deltas_done
    cdef void *xbuf
    cdef void *ybuf
    cdef void *swbuf
    cdef void *grad_ptr
    cdef void *slots
    cdef double *row_loss
    cdef double *partial
    cdef Pace pace
    cdef list _owned

    def __cinit__(self):
        self.net.units = NULL
        self.net.width = NULL
        self.net.slope = NULL
        self.slope_off = NULL
        self.E = NULL
        self.S = NULL
        self.net.act = NULL
        self.net.W = NULL
        self.net.b = NULL
        self.coef_off = NULL
        self.inter_off = NULL
        self.Z = NULL
        self.A = NULL
        self.D = NULL
        self.H = NULL
        self.net.drop = NULL
        self.net.noise = NULL
        self.net.key = 0
        self.tile_layer = NULL
        self.tile_lo = NULL
        self.tile_hi = NULL

    def __init__(self, layer_units, activation, int output, dtype,
                 Py_ssize_t capacity, int n_threads, bint dense_input=True,
                 Py_ssize_t slot_values=SLOT_VALUES, double output_param=1.0,
                 dropout=None, noise=None, double weight_noise=0):
        cdef Py_ssize_t l, off = 0, L = len(layer_units) - 1
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"Network dtype must be float32 or float64, got {self.dtype}")
        _check_code(output, OUTPUTS, "output")
        if L < 1 or min(layer_units) < 1 or capacity < 1:
            raise ValueError("layer_units needs at least two positive sizes")
        specs = _hidden_specs(activation, L - 1)
        self.n_layers = L
        self.activation = tuple(specs)
        self.output = output
        self.capacity = capacity
        self.n_threads = max(1, n_threads)
        self.n_features = layer_units[0]
        self.n_outputs = layer_units[L]
        self.dense_input = dense_input
        self.net.n_layers = L
        self.net.act = _act_array(specs)
        self.net.out = output
        self.net.out_param = output_param
        if output == k.MLP_OUT_IDENTITY_HUBER and not output_param > 0:
            raise ValueError(f"Huber's threshold must be > 0, got {output_param}")
        self.net.units = <Py_ssize_t *>malloc((L + 1) * sizeof(Py_ssize_t))
        self.net.W = <const void **>malloc(L * sizeof(void *))
        self.net.b = <const void **>malloc(L * sizeof(void *))
        self.coef_off = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
        self.inter_off = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
        self.Z = <void **>malloc(L * sizeof(void *))
        self.A = <void **>malloc(L * sizeof(void *))
        self.D = <void **>malloc(L * sizeof(void *))
        self.H = <void **>malloc(L * sizeof(void *))
        self.E = <void **>malloc(L * sizeof(void *))
        self.S = <void **>malloc(L * sizeof(void *))
        self.net.width = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
        self.net.slope = <const void **>malloc(L * sizeof(void *))
        self.slope_off = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
        if not (self.net.units and self.net.W and self.net.b and self.coef_off
                and self.inter_off and self.Z and self.A and self.D and self.H and self.E
                and self.S and self.net.width and self.net.slope and self.slope_off):
            raise MemoryError()
        for l in range(L + 1):
            self.net.units[l] = layer_units[l]
        widths = [layer_units[l + 1] * (_pieces(specs[l]) if l < L - 1 else 1)
                  for l in range(L)]
        for l in range(L):
            self.net.width[l] = widths[l]
            self.coef_off[l] = off
            off += layer_units[l] * widths[l]
        self.n_coef = off
        for l in range(L):
            self.inter_off[l] = off
            off += widths[l]
        for l in range(L):
            self.slope_off[l] = -1
            self.net.slope[l] = NULL
            if l < L - 1 and specs[l][0] == k.MLP_ACT_PRELU:
                self.slope_off[l] = off
                off += layer_units[l + 1]
        self.n_params = off

        self._owned = []
        self.dropout = tuple(float(v) for v in (dropout if dropout is not None else [0] * L))
        self.noise = tuple(float(v) for v in (noise if noise is not None else [0] * L))
        if len(self.dropout) != L or len(self.noise) != L:
            raise ValueError(f"dropout and noise need one value per layer ({L})")
        if not all(0 <= v < 1 for v in self.dropout) or not all(v >= 0 for v in self.noise):
            raise ValueError("dropout rates must be in [0, 1) and noise deviations >= 0")
        if not weight_noise >= 0:
            raise ValueError("weight_noise must be >= 0")
        if (self.dropout[0] > 0 or self.noise[0] > 0) and not dense_input:
            raise ValueError("dropout and noise on X need dense X")
        self.weight_noise = weight_noise
        if any(self.dropout) or any(self.noise):
            self.net.drop = <const double *>self._pointer(np.array(self.dropout))
            self.net.noise = <const double *>self._pointer(np.array(self.noise))
        self.wbuf = self._buffer(self.n_coef if weight_noise > 0 else 1)
        for l in range(L):
            hidden = l < L - 1
            self.Z[l] = self._buffer(capacity * widths[l])
            self.A[l] = (self._buffer(capacity * layer_units[l + 1])
                         if hidden and k.mlp_act_keeps_z(specs[l][0]) else self.Z[l])
            self.H[l] = (self._buffer(capacity * layer_units[l + 1])
                         if hidden and _perturbed(&self.net, l + 1) else self.A[l])
            self.D[l] = self._buffer(capacity * widths[l])
            self.E[l] = (self._buffer(capacity * layer_units[l + 1])
                         if widths[l] != layer_units[l + 1] else self.D[l])
            self.S[l] = (self._buffer(capacity * layer_units[l + 1])
                         if self.slope_off[l] >= 0 else NULL)
        self.xbuf = self._buffer(capacity * self.n_features if dense_input else 1)
        self.ybuf = self._buffer(capacity * self.n_outputs)
        self.swbuf = self._buffer(capacity)
        self.grad = np.zeros(self.n_params, dtype=self.dtype)
        self.grad_ptr = self._pointer(self.grad)
        self.row_loss = <double *>self._pointer(np.zeros(capacity, dtype=np.float64))
        self.partial = <double *>self._pointer(
            np.zeros(self.n_params // k.MLP_REDUCE_CHUNK + 1, dtype=np.float64))
        self.block_rows = _block_rows([layer_units[l] * widths[l] for l in range(L)])
        n_slots = _n_blocks(capacity, self.block_rows) - 1
        self.block_grads = n_slots * self.n_params <= slot_values
        self.share_tiles = self.block_grads and self.block_rows > BLOCK_ROWS
        self.slots = self._buffer(n_slots * self.n_params if self.block_grads else 1)
        self._make_tiles(layer_units, widths)
        self.next_tile = <int *>self._pointer(np.zeros(n_slots + 1, dtype=np.intc))
        self.deltas_done = <int *>self._pointer(np.zeros(n_slots + 1, dtype=np.intc))
        _pace_init(&self.pace, _pace_prior())

    def _make_tiles(self, units, widths):
        """The weight-gradient tiles (see tile_layer): per layer, the rows of
        dW in up to MAX_TILES tiles of about TILE_WEIGHTS weights, then its
        bias (and slopes') gradient. Fixed by the sizes; each block's tiles
        go to its slot, or without slots each tile is over the whole batch."""
        tiles = []
        for l in range(self.n_layers):
            fan_in, fan_out = units[l], widths[l]
            groups = -(-fan_in // TILE_ROWS)
            n = max(1, min(-(-fan_in * fan_out // TILE_WEIGHTS), MAX_TILES, groups))
            edges = [min(fan_in, TILE_ROWS * (groups * j // n)) for j in range(n + 1)]
            tiles += [(l, lo, hi) for lo, hi in zip(edges[:n], edges[1:])]
            if n > 1:  # else the one tile takes the bias gradient too (see _grads)
                tiles.append((l, -1, -1))
        self.n_tiles = len(tiles)
        self.tile_layer = <Py_ssize_t *>malloc(self.n_tiles * sizeof(Py_ssize_t))
        self.tile_lo = <Py_ssize_t *>malloc(self.n_tiles * sizeof(Py_ssize_t))
        self.tile_hi = <Py_ssize_t *>malloc(self.n_tiles * sizeof(Py_ssize_t))
        if not (self.tile_layer and self.tile_lo and self.tile_hi):
            raise MemoryError()
        for t, (l, lo, hi) in enumerate(tiles):
            self.tile_layer[t] = l
            self.tile_lo[t] = lo
            self.tile_hi[t] = hi

    def __dealloc__(self):
        free(self.net.units)
        free(<void *>self.net.act)
        free(<void *>self.net.W)
        free(<void *>self.net.b)
        free(self.coef_off)
        free(self.inter_off)
        free(self.Z)
        free(self.A)
        free(self.D)
        free(self.H)
        free(self.E)
        free(self.S)
        free(self.net.width)
        free(<void *>self.net.slope)
        free(self.slope_off)
        free(self.tile_layer)
        free(self.tile_lo)
        free(self.tile_hi)

    cdef void *_pointer(self, arr) except NULL:
        cdef Py_ssize_t address = arr.ctypes.data
        self._owned.append(arr)
        return <void *>address

    cdef void *_buffer(self, Py_ssize_t size) except NULL:
        return self._pointer(np.zeros(max(size, 1), dtype=self.dtype))

    def layout(self):
        """[(coef_start, coef_end, (fan_in, fan_out)), ...], [(start, end), ...]:
        fan_out counts a maxout layer's pieces."""
        u = [self.net.units[l] for l in range(self.n_layers + 1)]
        w = [self.net.width[l] for l in range(self.n_layers)]
        coefs = [(self.coef_off[l], self.coef_off[l] + u[l] * w[l], (u[l], w[l]))
                 for l in range(self.n_layers)]
        inters = [(self.inter_off[l], self.inter_off[l] + w[l]) for l in range(self.n_layers)]
        return coefs, inters

    def slope_layout(self):
        """Per hidden layer, (start, end) of its PReLU slopes in the params, or None."""
        return [(self.slope_off[l], self.slope_off[l] + self.net.units[l + 1])
                if self.slope_off[l] >= 0 else None for l in range(self.n_layers - 1)]

    @property
    def noise_key(self):
        """The key of the training passes' random numbers (see the class)."""
        return self.net.key

    @noise_key.setter
    def noise_key(self, key):
        self.net.key = <uint64_t>key

    @property
    def pace_costs(self):
        """Smoothed seconds per row of the batches on one thread and on all
        threads (0: not measured yet)."""
        return (self.pace.cost[0], self.pace.cost[1])

    def loss_grad(self, floating[::1] params, X, const floating[:, ::1] Y,
                  const floating[::1] sw, bint has_sw, double alpha, bint squared_mean):
        """Full-batch loss; the finished gradient is left in ``self.grad``.

        X is a C-contiguous 2-D array, or a CSR matrix as ``(data, indices, indptr)``
        with intp indices. loss = L(Y, f(X)) + alpha / 2 * ||coefs||^2 / sum(sw),
        as scikit-learn's _backprop.
        """
        cdef Input inp
        self._input(params, X, Y, sw, has_sw, &inp)
        cdef Py_ssize_t n = Y.shape[0]
        cdef double raw, sq, sw_sum, t0
        cdef int nt
        if n > self.capacity:
            raise ValueError(f"{n} rows exceed the network capacity {self.capacity}")
        k.mlp_calls_change(1)
        try:
            with nogil:
                # one call, one batch of the threads-per-batch rule (see Pace)
                nt = _pace_threads(&self.pace, self.n_threads, n)
                t0 = k.mlp_monotonic_seconds()
                sw_sum = _weight_sum(&sw[0] if has_sw else NULL, NULL, 0, n)
                _check_weight_sum(sw_sum)
                raw = self._pass(&params[0], &inp, &Y[0, 0], &sw[0] if has_sw else NULL, n,
                                 NULL, nt, alpha, sw_sum, NULL, &sq)
                if self.n_threads > 1:
                    _pace_note(&self.pace, nt > 1, k.mlp_monotonic_seconds() - t0, n)
        finally:
            k.mlp_calls_change(-1)
        _pace_share(&self.pace)
        self.max_team = max(self.max_team, nt)
        return self._batch_loss(raw, sq, sw_sum, alpha, squared_mean)

    cdef inline double _batch_loss(self, double raw, double sq, double sw_sum, double alpha,
                                   bint squared_mean) noexcept nogil:
        if squared_mean:
            raw /= self.n_outputs
        return raw / sw_sum + 0.5 * alpha * sq / sw_sum

    cdef int _input(self, floating[::1] params, X, const floating[:, ::1] Y,
                    const floating[::1] sw, bint has_sw, Input *inp) except -1:
        """Check the arguments; point inp at X (row 0 of a dense X, or the CSR
        arrays with no rows yet) and the network at params."""
        cdef const floating[:, ::1] dense
        cdef const floating[::1] data
        cdef const Py_ssize_t[::1] indices
        cdef const Py_ssize_t[::1] indptr
        cdef Py_ssize_t n_rows, l
        if params.shape[0] != self.n_params:
            raise ValueError(f"params has {params.shape[0]} entries, expected {self.n_params}")
        if np.dtype(self.dtype).itemsize != sizeof(floating):
            raise TypeError(f"arrays must have the network's dtype {self.dtype}")
        if Y.shape[1] != self.n_outputs:
            raise ValueError("Y does not match the network's output size")
        if isinstance(X, tuple):
            if self.dense_input:
                raise ValueError("this Network was built for dense input (dense_input=True)")
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
        inp.rows = NULL
        inp.row0 = 0
        if isinstance(X, tuple):
            inp.X = NULL
            inp.csr.data = &data[0] if data.shape[0] else NULL
            inp.csr.indices = &indices[0] if indices.shape[0] else NULL
            inp.csr.indptr = &indptr[0]
        else:
            inp.X = &dense[0, 0]
        for l in range(self.n_layers):
            self.net.W[l] = &params[self.coef_off[l]]
            self.net.b[l] = &params[self.inter_off[l]]
            if self.slope_off[l] >= 0:
                self.net.slope[l] = &params[self.slope_off[l]]
        return 0

    cdef double _pass(self, floating *params, const Input *src, const floating *Y,
                      const floating *sw, Py_ssize_t n, const Py_ssize_t *rows, int nt,
                      double alpha, double sw_sum, k.mlp_optimizer *opt,
                      double *sq) noexcept nogil:
        """Forward and backward pass over a batch of n rows, raw loss returned,
        then the gradient finished (_finish): opt's step on params, or with opt
        NULL the finished gradient left in self.grad; sq: _finish's sum of
        squares. The batch is rows ``rows[:n]`` of the input, Y and sw
        (gathered, in batch order, into the batch buffers), or when rows is
        NULL rows ``src.row0:src.row0 + n`` (used in place); sw NULL:
        unweighted; sw_sum: the batch's weights summed (_weight_sum).

        First every row block's forward and delta pass, each followed (with
        slots) by its weight-gradient tiles, which a thread out of blocks may
        share (share_tiles); without slots, once every block is done, the
        tiles of the whole batch. Then _finish. All shared out over nt threads
        in one parallel region."""
        cdef Py_ssize_t nb = _n_blocks(n, self.block_rows), blk, t, i
        cdef double team_sq
        cdef Py_ssize_t n_tiles = 0 if self.block_grads else self.n_tiles
        cdef Py_ssize_t n_slots = nb - 1 if self.block_grads else 0  # the blocks' but the first
        cdef Input inp = src[0]
        cdef const floating *Yb = Y + src.row0 * self.n_outputs
        cdef const floating *swb = NULL
        cdef double raw = 0
        cdef Py_ssize_t l
        if self.weight_noise > 0:
            # W~ = W + noise, this batch's (keyed by its first row); the step
            # updates W
            _add_noise(<floating *>self.wbuf, params, self.n_coef,
                       k.mlp_key(self.net.key, src.row0), self.weight_noise, nt)
            for l in range(self.n_layers):
                self.net.W[l] = <floating *>self.wbuf + self.coef_off[l]
        if sw != NULL:
            swb = sw + src.row0
        if rows != NULL:
            inp.rows = rows
            if inp.X != NULL:
                inp.X = self.xbuf
            Yb = <floating *>self.ybuf
            if sw != NULL:
                swb = <floating *>self.swbuf
        elif inp.X != NULL:
            # X perturbed: its perturbed copy in xbuf (see _train_block)
            if _perturbed(&self.net, 0):
                inp.X = self.xbuf
            else:
                inp.X = <const floating *>src.X + src.row0 * self.n_features
        team_sq = 0  # each thread's own copy in the region
        for blk in range(nb):
            self.next_tile[blk] = 0
            self.deltas_done[blk] = 0
        if nt > 1:
            with parallel(num_threads=k.mlp_team(nt)):
                for blk in prange(nb, schedule="dynamic"):
                    self._train_block(src, &inp, Y, sw, Yb, swb, n, blk, nb)
                    if self.share_tiles:
                        k.mlp_publish(&self.deltas_done[blk])
                    if self.block_grads:
                        self._block_tiles(&inp, <floating *>self.grad_ptr, n, blk, nb)
                if self.share_tiles:
                    # out of blocks (prange ends without a barrier)
                    self._share_blocks(&inp, <floating *>self.grad_ptr, n, nb)
                elif n_tiles:
                    k.mlp_omp_barrier()  # every block is done
                    for t in prange(n_tiles, schedule="dynamic"):
                        self._tile(&inp, <floating *>self.grad_ptr, n, t)
                k.mlp_omp_barrier()  # the gradient is whole
                team_sq = self._finish(params, n_slots, alpha, sw_sum, opt, k.MLP_TEAM)
                if threadid() == 0:
                    sq[0] = team_sq
        else:
            for blk in range(nb):
                self._train_block(src, &inp, Y, sw, Yb, swb, n, blk, nb)
                if self.block_grads:
                    self._block_tiles(&inp, <floating *>self.grad_ptr, n, blk, nb)
            for t in range(n_tiles):
                self._tile(&inp, <floating *>self.grad_ptr, n, t)
            sq[0] = self._finish(params, n_slots, alpha, sw_sum, opt, 1)
        for i in range(n):
            raw += self.row_loss[i]
        return raw

    cdef void _train_block(self, const Input *src, const Input *inp, const floating *Y,
                           const floating *sw, const floating *Yb, const floating *swb,
                           Py_ssize_t n, Py_ssize_t blk, Py_ssize_t nb) noexcept nogil:
        """Block blk of nb of _pass's batch: its rows gathered (when the batch
        is shuffled), forward, loss and output delta, hidden deltas."""
        cdef Py_ssize_t r0 = n * blk // nb, m = n * (blk + 1) // nb - r0
        cdef Py_ssize_t d = self.n_features, K = self.n_outputs, L = self.n_layers
        cdef const floating *sw_block = NULL
        cdef const floating *x
        if swb != NULL:
            sw_block = swb + r0
        if inp.rows != NULL:
            if inp.X != NULL:
                _gather_rows(<floating *>self.xbuf + r0 * d, <const floating *>src.X,
                             inp.rows + r0, m, d)
            _gather_rows(<floating *>self.ybuf + r0 * K, Y, inp.rows + r0, m, K)
            if sw != NULL:
                _gather_rows(<floating *>self.swbuf + r0, sw, inp.rows + r0, m, 1)
        if _perturbed(&self.net, 0):
            # X's rows perturbed into xbuf: the gathered rows in place, or X's own
            x = <const floating *>self.xbuf + r0 * d
            if inp.rows == NULL:
                x = <const floating *>src.X + (src.row0 + r0) * d
            _perturb_block(&self.net, <floating *>self.xbuf + r0 * d, x, inp, 0, r0, m)
        _forward_block(&self.net, <floating **>self.Z, <floating **>self.A,
                       <floating **>self.H, inp, r0, m, <floating *>self.Z[L - 1] + r0 * K)
        # P = out(Z + b); D = sw * dloss/dZ (sw * (P - Y) for the canonical pairs)
        _output_loss_backward(<floating *>self.D[L - 1] + r0 * K,
                              <floating *>self.Z[L - 1] + r0 * K, self.row_loss + r0,
                              <const floating *>self.net.b[L - 1], Yb + r0 * K,
                              sw_block, self.output, self.net.out_param, m, K)
        _backward_block(&self.net, <floating **>self.Z, <floating **>self.A,
                        <floating **>self.D, <floating **>self.E, <floating **>self.S, inp,
                        r0, m)

    cdef void _block_tiles(self, const Input *inp, floating *grad, Py_ssize_t n,
                           Py_ssize_t blk, Py_ssize_t nb) noexcept nogil:
        # the weight-gradient tiles of block blk (of nb of an n-row pass) not
        # yet claimed, one claim at a time, into its slot (block 0's: grad)
        cdef Py_ssize_t r0 = n * blk // nb, m = n * (blk + 1) // nb - r0, t
        cdef floating *g = grad
        if blk > 0:
            g = <floating *>self.slots + (blk - 1) * self.n_params
        t = k.mlp_claim(&self.next_tile[blk])
        while t < self.n_tiles:
            self._grads(inp, g, self.tile_layer[t], self.tile_lo[t], self.tile_hi[t], r0, m)
            t = k.mlp_claim(&self.next_tile[blk])

    cdef void _share_blocks(self, const Input *inp, floating *grad, Py_ssize_t n,
                            Py_ssize_t nb) noexcept nogil:
        # a thread out of blocks: every block's tiles left, in block order, each
        # once its deltas are done (every block is claimed by then, so they
        # will be)
        cdef Py_ssize_t blk
        for blk in range(nb):
            k.mlp_await(&self.deltas_done[blk])
            self._block_tiles(inp, grad, n, blk, nb)

    cdef inline double _finish(self, floating *params, Py_ssize_t n_slots, double alpha,
                               double sw_sum, k.mlp_optimizer *opt, int nt) noexcept nogil:
        # a pass's raw gradient, with its first n_slots slots, finished: opt's
        # step, or with opt NULL the finished gradient left in self.grad; returns
        # the sum of squares of the coefficients, updated (step) or not
        cdef floating *grad = <floating *>self.grad_ptr
        cdef const floating *slots = <floating *>self.slots
        if opt != NULL:
            return _step(params, grad, slots, n_slots, self.partial, self.n_params,
                         self.n_coef, alpha, sw_sum, opt, nt)
        return _finish_grad(grad, slots, n_slots, params, self.partial, self.n_params,
                            self.n_coef, alpha, sw_sum, nt)

    cdef inline void _tile(self, const Input *inp, floating *grad, Py_ssize_t n,
                           Py_ssize_t t) noexcept nogil:
        # weight-gradient tile t (see tile_layer) over the pass's n rows, into grad
        self._grads(inp, grad, self.tile_layer[t], self.tile_lo[t], self.tile_hi[t], 0, n)

    cdef void _grads(self, const Input *inp, floating *g, Py_ssize_t l, Py_ssize_t lo,
                     Py_ssize_t hi, Py_ssize_t r0, Py_ssize_t m) noexcept nogil:
        """Rows [r0, r0 + m)'s part of layer l's gradient into g (a flat
        gradient): dW[l][lo:hi], and the bias (and PReLU slopes') gradient
        with all of dW's rows (lo = 0, hi = fan-in); lo = -1: those alone."""
        cdef Py_ssize_t *u = self.net.units
        cdef Py_ssize_t w = self.net.width[l]
        cdef const floating *a
        cdef floating *Dl = <floating *>self.D[l] + r0 * w
        if lo < 0 or hi - lo == u[l]:
            # db[l] = D[l].sum(axis=0); ds[l] = S[l].sum(axis=0)
            _column_sums(g + self.inter_off[l], Dl, m, w)
            if self.slope_off[l] >= 0:
                _column_sums(g + self.slope_off[l], <floating *>self.S[l] + r0 * u[l + 1], m,
                             u[l + 1])
        if lo < 0:
            return
        if l == 0 and inp.X == NULL:
            # dW[0][lo:hi] = X[:, lo:hi].T @ D[0]
            _csr_matmul_tn(g + self.coef_off[0], &inp.csr,
                           inp.rows + r0 if inp.rows != NULL else NULL, inp.row0 + r0, m,
                           Dl, w, lo, hi)
        else:
            # dW[l][lo:hi] = H[l-1][:, lo:hi].T @ D[l]  (H[-1]: X)
            a = <const floating *>inp.X if l == 0 else <floating *>self.H[l - 1]
            _mm_tn(g + self.coef_off[l] + lo * w, a + r0 * u[l] + lo, Dl, u[l], hi - lo, m, w)

    def run_epoch(self, floating[::1] params, X, const floating[:, ::1] Y,
                  const floating[::1] sw, bint has_sw, const Py_ssize_t[::1] order,
                  bint shuffled, Py_ssize_t batch_size, double alpha, bint squared_mean,
                  int solver, floating[::1] state1, floating[::1] state2,
                  double learning_rate, double momentum=0, bint nesterov=False,
                  double beta_1=0, double beta_2=0, double epsilon=1, long adam_t=0,
                  noise_key=None):
        """One epoch of mini-batch training, entirely without the GIL.

        X is a C-contiguous 2-D array, or a CSR matrix as ``(data, indices,
        indptr)`` with intp indices (its batches are never densified). Batches
        are ``order[i:i + batch_size]`` when ``shuffled``, else contiguous
        slices of X. The optimiser is ``solver`` (``SOLVERS``) with its state
        arrays and hyper-parameters, Adam having taken ``adam_t`` steps so far.
        Returns the sum over batches of batch_loss * batch_rows, what
        scikit-learn accumulates into ``loss_``; the optimiser steps made are
        in ``last_epoch_steps`` (kept up to date, so also after Ctrl-C).
        ``noise_key``, when given, becomes the key of the epoch's dropout and
        noise (see the class).
        """
        cdef Input inp
        self._input(params, X, Y, sw, has_sw, &inp)
        if noise_key is not None:
            self.noise_key = noise_key
        cdef Py_ssize_t n = Y.shape[0], start
        cdef floating *p = &params[0]
        cdef double acc = 0
        cdef k.mlp_optimizer opt
        if batch_size < 1 or batch_size > self.capacity:
            raise ValueError(f"batch_size must be in [1, {self.capacity}], got {batch_size}")
        if shuffled and order.shape[0] != n:
            raise ValueError("order must hold one index per row")
        _check_code(solver, SOLVERS, "solver")
        if state1.shape[0] != self.n_params or (solver == k.MLP_SOLVER_ADAM
                                                and state2.shape[0] != self.n_params):
            raise ValueError("optimiser state does not match the parameters")
        if shuffled:
            for start in range(n):
                if order[start] < 0 or order[start] >= n:
                    raise IndexError("order holds an index out of range")
        opt = _optimizer(solver, state1, state2, learning_rate, momentum, nesterov, beta_1,
                         beta_2, epsilon, adam_t)
        self.last_epoch_steps = 0
        k.mlp_calls_change(1)
        try:
            self._epoch(p, &inp, &Y[0, 0], &sw[0] if has_sw else NULL, n,
                        &order[0] if shuffled else NULL, batch_size, alpha, squared_mean,
                        &opt, &acc)
        finally:
            k.mlp_calls_change(-1)
            _pace_share(&self.pace)
        return acc

    cdef int _epoch(self, floating *p, Input *inp, const floating *Y, const floating *sw,
                    Py_ssize_t n, const Py_ssize_t *order, Py_ssize_t batch_size,
                    double alpha, bint squared_mean, k.mlp_optimizer *opt,
                    double *acc) except -1:
        """run_epoch's batches, without the GIL but to look for Ctrl-C."""
        cdef Py_ssize_t start, m
        cdef const Py_ssize_t *rows
        cdef double raw, sq, next_sq, sw_sum, last_check, t0, now
        cdef long steps = 0
        cdef int nt
        with nogil:
            last_check = k.mlp_monotonic_seconds()
            sq = _sum_squares(p, self.n_coef, self.partial, 1)  # once an epoch
            start = 0
            while start < n:
                m = min(batch_size, n - start)
                rows = NULL
                if order != NULL:
                    rows = order + start
                inp.row0 = start
                nt = _pace_threads(&self.pace, self.n_threads, m)
                self.max_team = max(self.max_team, nt)
                t0 = k.mlp_monotonic_seconds()
                sw_sum = _weight_sum(sw, rows, start, m)
                _check_weight_sum(sw_sum)
                raw = self._pass(p, inp, Y, sw, m, rows, nt, alpha, sw_sum, opt, &next_sq)
                acc[0] += self._batch_loss(raw, sq, sw_sum, alpha, squared_mean) * m
                sq = next_sq
                now = k.mlp_monotonic_seconds()
                if self.n_threads > 1:
                    _pace_note(&self.pace, nt > 1, now - t0, m)
                steps += 1
                self.last_epoch_steps = steps
                start += m
                if now - last_check > SIGNAL_CHECK_SECONDS:
                    with gil:
                        PyErr_CheckSignals()
                    last_check = k.mlp_monotonic_seconds()
        return 0


cdef k.mlp_optimizer _optimizer(int solver, floating[::1] state1, floating[::1] state2,
                               double learning_rate, double momentum, bint nesterov,
                               double beta_1, double beta_2, double epsilon, long adam_t):
    # the optimiser struct of run_epoch's and optimizer_step's arguments
    cdef k.mlp_optimizer opt
    opt.solver = solver
    opt.learning_rate = learning_rate
    opt.momentum = momentum
    opt.nesterov = nesterov
    opt.beta1 = beta_1
    opt.beta2 = beta_2
    opt.epsilon = epsilon
    opt.t = adam_t
    opt.state1 = &state1[0]
    opt.state2 = &state2[0]
    return opt


cdef inline int _check_weight_sum(double sw_sum) except -1 nogil:
    # scikit-learn's losses average with np.average, which refuses such a
    # batch before any step is taken
    if sw_sum == 0:
        with gil:
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return 0


cdef inline double _weight_sum(const floating *sw, const Py_ssize_t *rows, Py_ssize_t row0,
                               Py_ssize_t n) noexcept nogil:
    # the weights of a batch's rows summed in batch order: rows[:n] of sw, or
    # with rows NULL rows row0:row0 + n; n with sw NULL (unweighted)
    cdef Py_ssize_t i
    cdef double s = 0
    if sw == NULL:
        return <double>n
    for i in range(n):
        s += sw[rows[i] if rows != NULL else row0 + i]
    return s


# ---------------------------------------------------------------- prediction

# Predictions keep a Pace (see run_epoch's) per network shape and dtype, the
# PREDICT_PACES last used, in this process.
cdef class _Pace:
    cdef Pace pace

_PREDICT_PACES = {}
cdef Py_ssize_t PREDICT_PACES = 64


cdef _Pace _predict_pace(key):
    cdef _Pace p = _PREDICT_PACES.pop(key, None)
    if p is None:
        p = _Pace()
        _pace_init(&p.pace, 0)
        if len(_PREDICT_PACES) >= PREDICT_PACES:
            del _PREDICT_PACES[next(iter(_PREDICT_PACES))]
    _PREDICT_PACES[key] = p  # the last used, last
    return p


def forward(list coefs, list intercepts, const floating[:, ::1] X, activation, int output,
            int n_threads, csr=None, bint check_finite=False, slopes=None):
    """Output-layer activations for X: ``out(... act(X @ W0 + b0) ... @ WL + bL)``.

    ``activation`` is as Network's. ``coefs[l]`` are C-contiguous (fan_in,
    fan_out) arrays (a maxout layer's fan_out counts its pieces),
    ``intercepts[l]`` contiguous vectors and ``slopes[l]`` a PReLU layer's
    slopes (one list entry per hidden layer, None for the others), all of
    X's dtype. For a sparse X pass
    ``csr=(data, indices, indptr)`` (intp indices) and, as X, an empty
    ``(0, n_features)`` array that fixes the dtype and width. With
    ``check_finite``, returns None (computing nothing) when a dense X holds
    NaN or infinity. Row blocks are shared out over up to n_threads threads.
    """
    cdef Py_ssize_t L = len(coefs), l, n = X.shape[0], width = 1, nb = 0, blk
    cdef bint finite
    cdef const floating[::1] xdata
    cdef const Py_ssize_t[::1] xindices
    cdef const Py_ssize_t[::1] xindptr
    cdef Input inp
    cdef Net net
    cdef const floating[:, ::1] wv
    cdef const floating[::1] bv
    cdef const floating[::1] sv
    cdef floating[:, ::1] P
    cdef floating *scratch = NULL
    cdef void **bufs = NULL
    cdef int nt = 1
    cdef double t0
    cdef _Pace pace = None
    dtype = np.float32 if floating is float else np.float64
    _check_code(output, OUTPUTS, "output")
    if L < 1 or len(intercepts) != L:
        raise ValueError("forward needs matching, non-empty coefs and intercepts")
    specs = _hidden_specs(activation, L - 1)
    slopes = [None] * (L - 1) if slopes is None else list(slopes)
    if len(slopes) != L - 1:
        raise ValueError(f"slopes needs one entry per hidden layer ({L - 1})")
    net.n_layers = L
    net.act = _act_array(specs)
    net.out = output
    net.drop = NULL  # a prediction is never perturbed
    net.noise = NULL
    net.units = <Py_ssize_t *>malloc((L + 1) * sizeof(Py_ssize_t))
    net.width = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
    net.W = <const void **>malloc(L * sizeof(void *))
    net.b = <const void **>malloc(L * sizeof(void *))
    net.slope = <const void **>malloc(L * sizeof(void *))
    try:
        if not (net.units and net.width and net.W and net.b and net.slope):
            raise MemoryError()
        net.units[0] = X.shape[1]
        inp.rows = NULL
        inp.row0 = 0
        inp.X = NULL
        if csr is None and n:
            inp.X = &X[0, 0]
        if csr is not None:
            if n != 0:
                raise ValueError("with csr, X must be an empty (0, n_features) array")
            xdata, xindices, xindptr = _csr_arrays(csr, net.units[0])
            n = xindptr.shape[0] - 1
            inp.csr.data = &xdata[0] if xdata.shape[0] else NULL
            inp.csr.indices = &xindices[0] if xindices.shape[0] else NULL
            inp.csr.indptr = &xindptr[0]
        for l in range(L):
            wv = coefs[l]
            bv = intercepts[l]
            pieces = _pieces(specs[l]) if l < L - 1 else 1
            if (wv.shape[0] != net.units[l] or bv.shape[0] != wv.shape[1]
                    or wv.shape[1] % pieces):
                raise ValueError(f"layer {l} has shape {(wv.shape[0], wv.shape[1])}, "
                                 f"expected fan_in {net.units[l]} and {pieces} pieces a unit")
            net.width[l] = wv.shape[1]
            net.units[l + 1] = wv.shape[1] // pieces
            net.W[l] = &wv[0, 0]
            net.b[l] = &bv[0]
            net.slope[l] = NULL
            if l < L - 1 and specs[l][0] == k.MLP_ACT_PRELU:
                if slopes[l] is None:
                    raise ValueError(f"hidden layer {l} is PReLU: it needs its slopes")
                sv = slopes[l]
                if sv.shape[0] != net.units[l + 1]:
                    raise ValueError(f"hidden layer {l} needs {net.units[l + 1]} slopes")
                net.slope[l] = &sv[0]
            if l < L - 1:
                # in place, Z's width (a maxout layer's A is narrower)
                width = max(width, net.width[l])
        out = np.empty((n, net.units[L]), dtype=dtype)
        P = out
        if n == 0:
            return out
        nb = _n_blocks(n, PREDICT_BLOCK_ROWS)
        k.mlp_calls_change(1)
        if nb > 1 and n_threads > 1:
            pace = _predict_pace((floating is double, tuple(specs), output,
                                  tuple(net.units[l] for l in range(L + 1))))
            nt = min(_pace_threads(&pace.pace, n_threads, n), nb)
        t0 = k.mlp_monotonic_seconds()
        if check_finite and csr is None:
            with nogil:
                finite = _all_finite(&X[0, 0], n * net.units[0], nt)
            if not finite:
                return None
        # per thread: two scratch blocks the hidden layers alternate between
        # (in place: a prediction keeps no pre-activation), and L pointers
        bufs = <void **>malloc(nt * L * sizeof(void *))
        scratch = <floating *>malloc(nt * 2 * min(n, PREDICT_BLOCK_ROWS) * width * sizeof(floating))
        if scratch == NULL or bufs == NULL:
            raise MemoryError()
        for blk in range(nt):
            for l in range(L):
                bufs[blk * L + l] = scratch + (2 * blk + l % 2) * min(n, PREDICT_BLOCK_ROWS) * width
        with nogil:
            if nt > 1:
                for blk in prange(nb, num_threads=k.mlp_team(nt), schedule="dynamic"):
                    _predict_block(&net, bufs + threadid() * L, &inp, &P[0, 0], n, blk, nb)
            else:
                for blk in range(nb):
                    _predict_block(&net, bufs, &inp, &P[0, 0], n, blk, nb)
            t0 = k.mlp_monotonic_seconds() - t0
        if pace is not None:  # under the GIL: a Pace for every caller of this shape
            _pace_note(&pace.pace, nt > 1, t0, n)
        return out
    finally:
        if nb:
            k.mlp_calls_change(-1)
        free(scratch)
        free(bufs)
        free(net.units)
        free(net.width)
        free(<void *>net.act)
        free(<void *>net.W)
        free(<void *>net.b)
        free(<void *>net.slope)


cdef void _predict_block(const Net *net, void **bufs, const Input *inp, floating *P,
                         Py_ssize_t n, Py_ssize_t blk, Py_ssize_t nb) noexcept nogil:
    # rows [r0, r0 + m) of P = out(forward(X) + b[-1]); the scratch bufs hold one block
    cdef Py_ssize_t r0 = n * blk // nb, m = n * (blk + 1) // nb - r0
    cdef Py_ssize_t K = net.units[net.n_layers]
    cdef Input block = inp[0]
    if block.X != NULL:
        block.X = <const floating *>inp.X + r0 * net.units[0]
    else:
        block.row0 = r0
    _forward_block(net, <floating **>bufs, <floating **>bufs, <floating **>bufs, &block, 0, m,
                   P + r0 * K)
    _output_forward(P + r0 * K, <const floating *>net.b[net.n_layers - 1], net.out, m, K)


# ---------------------------------------------------------------- kernel entry points
# Thin wrappers over single kernels, used by the tests against NumPy references.

cdef k.mlp_act _one_act(activation):
    # the mlp_act of one spec (a code or a (code, param) pair)
    return _act_struct(
        _hidden_specs(activation if isinstance(activation, tuple) else int(activation), 1)[0])


cdef const floating *_slope_pointer(slope, Py_ssize_t O, const floating *like) except? NULL:
    # PReLU's slopes (O of them, the dtype of `like`), or NULL when None
    cdef const floating[::1] sv
    if slope is None:
        return NULL
    sv = slope
    if sv.shape[0] != O:
        raise ValueError("slope must have one entry per unit")
    return &sv[0]


def act_forward(floating[:, ::1] A, floating[:, ::1] Z, const floating[::1] b, activation,
                slope=None):
    """Z <- Z + b;  A = act(Z) (A may be Z); activation a code or (code, param),
    slope PReLU's slopes."""
    cdef k.mlp_act act = _one_act(activation)
    cdef const floating *sp = _slope_pointer(slope, A.shape[1], &A[0, 0])
    if (b.shape[0] != Z.shape[1] or A.shape[0] != Z.shape[0]
            or Z.shape[1] != act.pieces * A.shape[1]):
        raise ValueError("A, Z and b shapes do not match")
    if act.code == k.MLP_ACT_PRELU and sp == NULL:
        raise ValueError("prelu needs its slopes")
    with nogil:
        _act_forward(&A[0, 0], &Z[0, 0], &b[0], sp, &act, A.shape[0], A.shape[1])


def act_backward(floating[:, ::1] dZ, const floating[:, ::1] dA, const floating[:, ::1] Z,
                 const floating[:, ::1] A, activation, slope=None, dS=None):
    """dZ = dA * dA/dZ, A = act(Z) (dZ may be dA but for maxout); PReLU: also
    dS = dA * min(Z, 0)."""
    cdef k.mlp_act act = _one_act(activation)
    cdef const floating *sp = _slope_pointer(slope, A.shape[1], &A[0, 0])
    cdef floating[:, ::1] dSv
    cdef floating *dsp = NULL
    shape = (A.shape[0], A.shape[1])
    wide = (A.shape[0], act.pieces * A.shape[1])
    if shape != (dA.shape[0], dA.shape[1]) or wide != (Z.shape[0], Z.shape[1]) \
            or wide != (dZ.shape[0], dZ.shape[1]):
        raise ValueError("dZ, dA, Z and A shapes do not match")
    if act.code == k.MLP_ACT_PRELU:
        if sp == NULL or dS is None:
            raise ValueError("prelu needs its slopes and dS")
        dSv = dS
        if (dSv.shape[0], dSv.shape[1]) != shape:
            raise ValueError("dS must have A's shape")
        dsp = &dSv[0, 0]
    with nogil:
        _act_backward(&dZ[0, 0], dsp, &dA[0, 0], &Z[0, 0], &A[0, 0], sp, &act, dZ.shape[0],
                      A.shape[1])


def noise_key(seed, place):
    """mlp_key(seed, place): the key of a place under a key (64-bit integers)."""
    return k.mlp_key(<uint64_t>seed, <uint64_t>place)


cdef const Py_ssize_t *_rows_pointer(rows, Py_ssize_t n) except? NULL:
    # the data rows (intp, n of them) of a perturbation wrapper, or NULL when None
    cdef const Py_ssize_t[::1] rv
    if rows is None:
        return NULL
    rv = rows
    if rv.shape[0] != n:
        raise ValueError("rows must have one entry per row")
    return &rv[0]


def perturb_forward(floating[:, ::1] H, const floating[:, ::1] A, rows, Py_ssize_t row0,
                    key, double p, double sigma):
    """H = (A + sigma G) * M / (1 - p), drawn for data rows ``rows`` (intp), or
    row0 + n when rows is None (H may be A)."""
    cdef const Py_ssize_t *rp = _rows_pointer(rows, A.shape[0])
    cdef uint64_t kk = key
    if H.shape[0] != A.shape[0] or H.shape[1] != A.shape[1]:
        raise ValueError("H and A shapes do not match")
    if not (0 <= p < 1 and sigma >= 0):
        raise ValueError("p must be in [0, 1) and sigma >= 0")
    with nogil:
        _perturb_forward(&H[0, 0], &A[0, 0], rp, row0, kk, p, sigma, A.shape[0], A.shape[1])


def perturb_backward(floating[:, ::1] dA, rows, Py_ssize_t row0, key, double p):
    """dA *= M / (1 - p), M perturb_forward's mask for the same rows and key."""
    cdef const Py_ssize_t *rp = _rows_pointer(rows, dA.shape[0])
    cdef uint64_t kk = key
    if not 0 <= p < 1:
        raise ValueError("p must be in [0, 1)")
    with nogil:
        _perturb_backward(&dA[0, 0], rp, row0, kk, p, dA.shape[0], dA.shape[1])


def add_noise(floating[::1] out, const floating[::1] x, key, double sigma, int n_threads=1):
    """out = x + sigma G, G_i drawn from noise_key(key, i)."""
    cdef uint64_t kk = key
    if out.shape[0] != x.shape[0]:
        raise ValueError("out and x must have the same length")
    with nogil:
        _add_noise(&out[0], &x[0], x.shape[0], kk, sigma, n_threads)


def column_sums(floating[::1] s, const floating[:, ::1] X):
    """s = X.sum(axis=0), summed in row order."""
    if s.shape[0] != X.shape[1]:
        raise ValueError("s must have one entry per column of X")
    with nogil:
        _column_sums(&s[0], &X[0, 0], X.shape[0], X.shape[1])


def output_forward(floating[:, ::1] Z, const floating[::1] b, int output):
    """Z <- out(Z + b) in place."""
    _check_code(output, OUTPUTS, "output")
    if b.shape[0] != Z.shape[1]:
        raise ValueError("b must have one entry per column of Z")
    with nogil:
        _output_forward(&Z[0, 0], &b[0], output, Z.shape[0], Z.shape[1])


def output_loss_backward(floating[:, ::1] dZ, floating[:, ::1] Z, double[::1] row_loss,
                         const floating[::1] b, const floating[:, ::1] Y, sw, int output,
                         double param=1.0):
    """Z <- P = out(Z + b); dZ = sw dloss/dz; row_loss = sw * loss (param:
    Huber's threshold)."""
    cdef const floating[::1] swv
    cdef const floating *swp = NULL
    _check_code(output, OUTPUTS, "output")
    if sw is not None:
        swv = sw
        if swv.shape[0] != Z.shape[0]:
            raise ValueError("sw must have one entry per row")
        swp = &swv[0]
    if (dZ.shape[0] != Z.shape[0] or dZ.shape[1] != Z.shape[1] or Y.shape[0] != Z.shape[0]
            or Y.shape[1] != Z.shape[1] or b.shape[0] != Z.shape[1]
            or row_loss.shape[0] != Z.shape[0]):
        raise ValueError("array shapes do not match")
    with nogil:
        _output_loss_backward(&dZ[0, 0], &Z[0, 0], &row_loss[0], &b[0], &Y[0, 0], swp,
                              output, param, Z.shape[0], Z.shape[1])


def all_finite(const floating[::1] x, int n_threads=1):
    """True when x holds no NaN and no infinity."""
    cdef bint ok = True
    if x.shape[0]:
        with nogil:
            ok = _all_finite(&x[0], x.shape[0], n_threads)
    return bool(ok)


def gather_rows(floating[:, ::1] out, const floating[:, ::1] X, const Py_ssize_t[::1] idx):
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t i
    if out.shape[0] != idx.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("out must be (len(idx), X.shape[1])")
    for i in range(idx.shape[0]):
        if idx[i] < 0 or idx[i] >= X.shape[0]:
            raise IndexError("idx holds an index out of range")
    with nogil:
        _gather_rows(&out[0, 0], &X[0, 0], &idx[0], idx.shape[0], X.shape[1])


def optimizer_step(int solver, floating[::1] params, floating[::1] state1, floating[::1] state2,
                   floating[::1] grad, Py_ssize_t n_coef, double alpha, double sw_sum,
                   double learning_rate, double momentum, bint nesterov, double beta_1,
                   double beta_2, double epsilon, long adam_t, int n_threads, slots=None,
                   bint team=False):
    """One SGD or Adam step on the flat buffer, Adam's being its step adam_t + 1;
    returns the sum of squares of the updated params[:n_coef]. slots, a
    (n_slots, len(params)) array, are added to grad first, in their order.
    team: the step is made by every thread of a region of n_threads threads,
    as a training pass makes it (else the step opens a region of its own
    when it is big enough)."""
    cdef Py_ssize_t n = params.shape[0], n_slots = 0
    cdef const floating[:, ::1] sv
    cdef const floating *sp = NULL
    cdef double[::1] partial = np.zeros(n // k.MLP_REDUCE_CHUNK + 1)
    cdef double sq = 0, team_sq = 0
    cdef double *first = &sq
    cdef k.mlp_optimizer opt
    _check_code(solver, SOLVERS, "solver")
    if grad.shape[0] != n or state1.shape[0] != n or (solver == k.MLP_SOLVER_ADAM
                                                     and state2.shape[0] != n):
        raise ValueError("params, grad and optimiser state must have the same length")
    if not 0 <= n_coef <= n:
        raise ValueError("n_coef must be in [0, len(params)]")
    if slots is not None:
        sv = slots
        if sv.shape[1] != n:
            raise ValueError("slots must have len(params) columns")
        n_slots = sv.shape[0]
        if n_slots:
            sp = &sv[0, 0]
    opt = _optimizer(solver, state1, state2, learning_rate, momentum, nesterov, beta_1,
                     beta_2, epsilon, adam_t)
    with nogil:
        if team and n_threads > 1:
            with parallel(num_threads=k.mlp_team(n_threads)):
                team_sq = _step(&params[0], &grad[0], sp, n_slots, &partial[0], n, n_coef,
                                alpha, sw_sum, &opt, k.MLP_TEAM)
                if threadid() == 0:
                    first[0] = team_sq
        else:
            sq = _step(&params[0], &grad[0], sp, n_slots, &partial[0], n, n_coef, alpha,
                       sw_sum, &opt, n_threads)
    return sq
