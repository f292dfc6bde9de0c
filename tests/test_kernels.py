"""The kernel entry points of ``mlpfast._engine`` against plain NumPy references.

Every test names its oracle: a NumPy function written below, in float64, from the
same inputs. Kernels run over dtype x size; the whole-buffer kernels (optimiser
steps, finiteness) also over thread count, with one size below and one above the
OpenMP threshold (``MLP_OMP_MIN_WORK`` = 65536 elements), so both the serial and
the threaded branch are exercised. The layer kernels run on the calling thread
(the engine shares out row blocks, not kernels). Every test runs
once per instruction set the kernels are built for and this CPU runs (baseline and,
on x86-64, AVX2 + FMA: ``isa`` below). The wrappers take
C-contiguous arrays only (the other memory order is rejected, see
``test_bad_shapes_raise``).

Tolerances: ``rtol`` is 1e-5 for float32 and 1e-12 for float64. A result that is a
sum or a difference is compared relative to the magnitude of the terms it combined
(its condition), not to its own value, which cancellation can make arbitrarily small.
"""

import numpy as np
import pytest
from scipy.special import erfc

from _references import (
    ACTIVATIONS,
    ELU,
    DEFAULT_PARAM,
    GELU,
    MAXOUT,
    OUT_BINARY,
    OUT_HUBER,
    OUT_MULTI,
    OUT_POISSON,
    OUTPUTS,
    PRELU,
    SELU,
    SINE,
    SKLEARN_OUTPUTS,
    SOFTPLUS,
    TANH,
    act_backward_ref,
    act_derivative_ref,
    act_ref,
    dropout_mask_ref,
    gaussian_ref,
    key_ref,
    loss_delta_ref,
    loss_terms_ref,
    out_ref,
    pieces,
    prelu_slope_rows_ref,
    targets,
    unit_noise_ref,
)

from mlpfast import _engine


DTYPES = [np.float32, np.float64]
N_THREADS = [1, 2]
# 35 and 67900 elements
SHAPES = [(7, 5), (700, 97)]


@pytest.fixture(autouse=True, params=_engine.kernel_isas())
def isa(request):
    """Run the test with the kernels of one instruction set, then restore the default."""
    default = _engine.kernel_isa()
    _engine.set_kernel_isa(request.param)
    yield request.param
    _engine.set_kernel_isa(default)


def rtol_for(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def assert_close(got, expected, dtype, scale=0.0):
    """|got - expected| <= rtol * (|expected| + scale), elementwise.

    ``scale`` is the magnitude of the terms that were summed or subtracted to form
    ``expected`` (scalar or broadcastable array); 0 makes this a pure relative check.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    err = np.abs(got - expected)
    bound = rtol_for(dtype) * (np.abs(expected) + scale)
    bad = ~(err <= bound)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err / np.maximum(bound, 1e-300), 0)),
                                 err.shape)
        raise AssertionError(
            f"{bad.sum()} of {bad.size} entries off (dtype {np.dtype(dtype).name}); worst at "
            f"{worst}: got {got[worst]!r}, expected {expected[worst]!r}, "
            f"error {err[worst]:.3g} > bound {np.broadcast_to(bound, err.shape)[worst]:.3g}")


# ---------------------------------------------------------------- NumPy references





def act_derivative_scale(z, a, act):
    """Magnitude of the terms act_derivative_ref adds: tanh's 1 - a^2 cancels as
    |a| -> 1 (scikit-learn's float32 `1 - Z**2` rounds exactly like the kernel),
    and so do elu's a + 1 and selu's a + scale alpha as z -> -inf."""
    if act == TANH:
        return 1 + a**2
    if act in (ELU, SELU):
        return np.abs(a) + np.abs(act_derivative_ref(z, a, act))
    if act == GELU:  # Phi(z) + z phi(z): the two cancel for z < 0
        return 0.5 * erfc(-z / np.sqrt(2)) + np.abs(z) * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
    if act == SINE:  # c cos(c z): c z rounded to the dtype first
        return DEFAULT_PARAM[SINE] * (1 + np.abs(DEFAULT_PARAM[SINE] * z))
    return np.abs(act_derivative_ref(z, a, act))


def act_forward_scale(z, act, dtype):
    """The magnitude act_forward's result is compared to besides its own: below
    the smallest normal number (gelu's left tail) an absolute bound; sine's
    argument c z, rounded to the dtype before the sine."""
    tiny = np.finfo(dtype).tiny / rtol_for(dtype)
    return tiny + (np.abs(DEFAULT_PARAM[SINE] * z) if act == SINE else 0)


# (activation, in place): every activation computes forward in place too (a
# prediction does), and backward but maxout, whose delta is wider than its
# units'
ACT_IN_PLACE = [pytest.param(act, in_place, id=f"{name}-{'in place' if in_place else 'apart'}")
                for name, act in ACTIVATIONS.items() for in_place in (True, False)]
ACT_IN_PLACE_BACKWARD = [p for p in ACT_IN_PLACE if p.values != (MAXOUT, True)]
# Apart, forward leaves these activations' derivative in Z, not the pre-activation.
DERIVATIVE_KEPT = (GELU, SOFTPLUS)


def act_inputs(rng, shape, act, dtype, spread):
    """Z with pieces(act) columns per unit of `shape` and, for PReLU, slopes of
    both signs (else None)."""
    n, o = shape
    Z = (spread * rng.standard_normal((n, pieces(act) * o))).astype(dtype)
    slope = rng.uniform(-0.5, 1.5, o).astype(dtype) if act == PRELU else None
    return Z, slope




# ---------------------------------------------------------------- gather_rows

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gather_rows(dtype, shape):
    """out = X[idx] with repeated, unordered indices; oracle: NumPy fancy indexing."""
    rng = np.random.default_rng(0)
    n, d = shape
    X = rng.standard_normal((n + 11, d)).astype(dtype)
    idx = rng.integers(0, n + 11, size=n).astype(np.intp)
    idx[: min(3, n)] = idx[0]
    out = np.full((n, d), np.nan, dtype=dtype)
    _engine.gather_rows(out, X, idx)
    assert np.array_equal(out, X[idx])


@pytest.mark.parametrize("bad", [-1, 5])
def test_gather_rows_rejects_out_of_range_index(bad):
    """An index outside [0, len(X)) raises IndexError before any row is copied."""
    X = np.zeros((5, 3))
    out = np.full((2, 3), 7.0)
    with pytest.raises(IndexError):
        _engine.gather_rows(out, X, np.array([0, bad], dtype=np.intp))
    assert np.all(out == 7.0)


# ---------------------------------------------------------------- hidden activations

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act, in_place", ACT_IN_PLACE)
def test_act_forward(dtype, in_place, shape, act):
    """Z <- Z + b; A = act(Z), in place (A over Z's first rows: a maxout layer's
    units are fewer than its pieces) or apart; oracle: act_ref in float64 of Z + b."""
    rng = np.random.default_rng(1)
    Z, slope = act_inputs(rng, shape, act, dtype, 3)
    b = rng.standard_normal(Z.shape[1]).astype(dtype)
    # Z + b rounded to the kernel's dtype, as the kernel adds before activating.
    pre = Z + b
    pre64 = pre.astype(np.float64)
    expected = act_ref(pre64, act, None if slope is None else slope.astype(np.float64))
    A = Z.reshape(-1)[:Z.shape[0] * shape[1]].reshape(shape) if in_place else np.full(
        shape, np.nan, dtype=dtype)
    _engine.act_forward(A, Z, b, act, slope=slope)
    assert_close(A, expected, dtype, scale=act_forward_scale(pre64, act, dtype))
    if in_place:
        return
    if act in DERIVATIVE_KEPT:  # what backward reads: the derivative (gelu's underflows)
        tiny = np.finfo(dtype).tiny / rtol_for(dtype)
        assert_close(Z, act_derivative_ref(pre64, expected, act), dtype,
                     scale=tiny + act_derivative_scale(pre64, expected, act))
    else:  # the pre-activation, kept
        assert np.array_equal(Z, pre)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act, in_place", ACT_IN_PLACE_BACKWARD)
def test_act_backward(dtype, in_place, shape, act):
    """dZ = dA * dA/dZ with A = act(Z), from what act_forward left in Z; oracle:
    act_backward_ref, and for PReLU prelu_slope_rows_ref for the slope's part dS.

    A is an activation's output (relu's has exact zeros, where the gradient stops).
    """
    rng = np.random.default_rng(2)
    Z, slope = act_inputs(rng, shape, act, dtype, 2)
    slope64 = None if slope is None else slope.astype(np.float64)
    A = act_ref(Z.astype(np.float64), act, slope64).astype(dtype)
    dA = rng.standard_normal(shape).astype(dtype)
    A_before = A.copy()
    A64, dA64 = A.astype(np.float64), dA.astype(np.float64)
    Z64 = Z.astype(np.float64)
    expected = act_backward_ref(dA64, Z64, A64, act, slope64)
    dZ = dA if in_place else np.full(Z.shape, np.nan, dtype=dtype)
    dS = np.full(shape, np.nan, dtype=dtype) if act == PRELU else None
    Zk = Z.copy()  # what forward leaves in Z for backward
    _engine.act_forward(np.empty_like(A), Zk, np.zeros(Z.shape[1], dtype), act, slope=slope)
    _engine.act_backward(dZ, dA, Zk, A, act, slope=slope, dS=dS)
    if act == MAXOUT:
        assert np.array_equal(dZ, expected)  # a copy of each delta, or 0
    else:
        scale = np.abs(dA64) * act_derivative_scale(Z64, A64, act)
        assert_close(dZ, expected, dtype, scale=scale)
    if act == PRELU:
        assert_close(dS, prelu_slope_rows_ref(dA64, Z64), dtype)
    assert np.array_equal(A, A_before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_column_sums(dtype, shape):
    """s = X.sum(axis=0), s overwritten, summed in row order; oracle: a float64
    NumPy sum (and, bitwise, a row-by-row running sum in the dtype)."""
    rng = np.random.default_rng(9)
    X = rng.standard_normal(shape).astype(dtype)
    s = np.full(shape[1], 1e30, dtype=dtype)  # the kernel overwrites, never accumulates
    _engine.column_sums(s, X)
    assert_close(s, X.astype(np.float64).sum(axis=0), dtype,
                 scale=np.abs(X.astype(np.float64)).sum(axis=0))
    running = np.zeros(shape[1], dtype=dtype)
    for row in X:
        running += row
    assert np.array_equal(s, running)


# ---------------------------------------------------------------- output layer

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("out", OUTPUTS.values(), ids=OUTPUTS.keys())
def test_output_forward(dtype, shape, out):
    """Z <- out(Z + b); oracle: out_ref (stable row softmax) in float64 of Z + b."""
    rng = np.random.default_rng(3)
    Z = (2 * rng.standard_normal(shape)).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    expected = out_ref((Z + b).astype(np.float64), out)
    _engine.output_forward(Z, b, out)
    assert_close(Z, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("out", OUTPUTS.values(), ids=OUTPUTS.keys())
def test_output_loss_backward(dtype, shape, weighted, out):
    """Fused output activation, loss and delta; oracle: out_ref, loss_terms_ref
    and loss_delta_ref.

    Z <- P = out(Z + b); row_loss = sw * loss_n; dZ = sw * dloss_n/dz (P - Y for
    scikit-learn's heads). With sw=None every weight is 1. The losses with kinks
    (Huber, absolute, hinges) are referred to the kernel's own P, checked
    first, so that a rounding of P across a kink cannot flip a derivative.
    """
    rng = np.random.default_rng(4)
    n, k = shape
    Z = (2 * rng.standard_normal(shape)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    Y = targets(rng, shape, out).astype(dtype)
    sw = rng.uniform(0.2, 3.0, size=n).astype(dtype) if weighted else None
    w = sw.astype(np.float64) if weighted else np.ones(n)
    Y64 = Y.astype(np.float64)

    P = out_ref((Z + b).astype(np.float64), out)
    dZ = np.full(shape, np.nan, dtype=dtype)
    row_loss = np.full(n, np.nan)
    _engine.output_loss_backward(dZ, Z, row_loss, b, Y, sw, out)
    assert_close(Z, P, dtype)

    if out not in SKLEARN_OUTPUTS.values():
        P = Z.astype(np.float64)
    terms = w[:, None] * loss_terms_ref(Y64, P, out, np.finfo(dtype).eps)
    delta = w[:, None] * loss_delta_ref(Y64, P, out)
    assert_close(dZ, delta, dtype, scale=w[:, None] * (np.abs(P) + np.abs(Y64)))
    assert_close(row_loss, terms.sum(axis=1), dtype, scale=np.abs(terms).sum(axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out", [OUT_BINARY, OUT_MULTI], ids=["binary", "multi"])
def test_output_loss_backward_clips_probabilities(dtype, out):
    """Logits of +-1000 give P of exactly 0 and 1; the loss stays finite because p is
    clipped to [eps, 1 - eps] (eps = np.finfo(dtype).eps, as scikit-learn's log_loss)
    while the delta uses the unclipped P. Oracle: loss_terms_ref."""
    Z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, -1000.0]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)  # wrong with certainty
    b = np.zeros(3, dtype=dtype)
    eps = np.finfo(dtype).eps
    with np.errstate(over="ignore"):  # exp(1000) = inf gives logistic 0, as intended
        P = out_ref(Z.astype(np.float64), out)
    assert P.min() == 0 and P.max() == 1  # the case clipping exists for
    terms = loss_terms_ref(Y.astype(np.float64), P, out, eps)
    dZ = np.empty_like(Z)
    row_loss = np.empty(2)
    _engine.output_loss_backward(dZ, Z, row_loss, b, Y, None, out)
    assert np.isfinite(row_loss).all()
    assert row_loss.min() >= -np.log(eps)
    assert_close(row_loss, terms.sum(axis=1), dtype, scale=np.abs(terms).sum(axis=1))
    assert_close(dZ, P - Y, dtype)


# ---------------------------------------------------------------- optimiser steps

def finished_grad_ref(grad, params, n_coef, alpha, sw_sum):
    """(grad + alpha * params) / sw_sum on the coefficients, grad / sw_sum on the rest."""
    g = grad.copy()
    g[:n_coef] += alpha * params[:n_coef]
    return g / sw_sum


def sgd_ref(params, velocity, grad, lr, momentum, nesterov):
    """SGDOptimizer._get_updates of sklearn/neural_network/_stochastic_optimizers.py."""
    updates = momentum * velocity - lr * grad
    velocity = updates
    if nesterov:
        updates = momentum * velocity - lr * grad
    return params + updates, velocity


def adam_ref(params, ms, vs, grad, t, lr_init, beta_1, beta_2, epsilon):
    """AdamOptimizer._get_updates of sklearn/neural_network/_stochastic_optimizers.py."""
    ms = beta_1 * ms + (1 - beta_1) * grad
    vs = beta_2 * vs + (1 - beta_2) * (grad**2)
    learning_rate = lr_init * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    updates = -learning_rate * ms / (np.sqrt(vs) + epsilon)
    return params + updates, ms, vs


SGD, ADAM = _engine.SOLVERS["sgd"], _engine.SOLVERS["adam"]
OPTIMIZERS = {"sgd": (SGD, False), "sgd-nesterov": (SGD, True), "adam": (ADAM, False)}
# (n, n_coef): below the threshold; above it, over 8 reduction chunks with n_coef
# ending inside a chunk.
OPT_SIZES = [(35, 28), (70000, 69000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
@pytest.mark.parametrize("size", OPT_SIZES, ids=["small", "large"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_optimizer_step(dtype, n_threads, size, optimizer):
    """Three consecutive steps with fresh raw gradients; oracle: sgd_ref / adam_ref
    (scikit-learn's update rules) on finished_grad_ref, in float64.

    Checks the parameters, the optimiser state carried between steps, and the return
    value: the sum of squares of the updated params[:n_coef].
    """
    solver, nesterov = optimizer
    n, n_coef = size
    alpha, sw_sum, lr, momentum = 0.3, 7.5, 0.1, 0.9
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8
    rng = np.random.default_rng(5)
    params = rng.standard_normal(n).astype(dtype)
    state1 = np.zeros(n, dtype=dtype)
    state2 = np.zeros(n, dtype=dtype)
    p_ref, s1_ref, s2_ref = (a.astype(np.float64) for a in (params, state1, state2))
    for t in range(1, 4):
        grad = (5 * rng.standard_normal(n)).astype(dtype)
        g = finished_grad_ref(grad.astype(np.float64), p_ref, n_coef, alpha, sw_sum)
        if solver == SGD:
            p_ref, s1_ref = sgd_ref(p_ref, s1_ref, g, lr, momentum, nesterov)
        else:
            p_ref, s1_ref, s2_ref = adam_ref(p_ref, s1_ref, s2_ref, g, t, lr,
                                             beta_1, beta_2, epsilon)
        grad_before = grad.copy()
        # Adam's step t, having taken t - 1 (its bias correction is the kernel's)
        sq = _engine.optimizer_step(solver, params, state1, state2, grad, n_coef, alpha,
                                    sw_sum, lr, momentum, nesterov, beta_1, beta_2,
                                    epsilon, t - 1, n_threads)
        assert np.array_equal(grad, grad_before)
        assert_close(params, p_ref, dtype, scale=np.abs(p_ref).max())
        assert_close(state1, s1_ref, dtype, scale=np.abs(s1_ref).max())
        if solver == ADAM:
            assert_close(state2, s2_ref, dtype, scale=np.abs(s2_ref).max())
        assert_close(sq, np.sum(p_ref[:n_coef] ** 2), dtype)
    if solver == SGD:
        assert np.all(state2 == 0)  # SGD leaves the second state alone


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
@pytest.mark.parametrize("n", [1000, 3 * 65536 + 5])
@pytest.mark.parametrize("solver", [SGD, ADAM])
def test_optimizer_step_sums_the_slots_first(dtype, n_threads, n, solver):
    """A step given the row blocks' gradient slots is the step on their sum:
    oracle, the same step on grad + slot 0 + slot 1 + ... added in that order in
    NumPy, bit for bit; grad is left holding that sum."""
    rng = np.random.default_rng(13)
    grad = rng.standard_normal(n).astype(dtype)
    slots = rng.standard_normal((3, n)).astype(dtype)
    summed = grad.copy()
    for slot in slots:
        summed += slot
    params = rng.standard_normal(n).astype(dtype)
    results = []
    for g, sl in ((grad, slots), (summed.copy(), None)):
        p, s1, s2 = params.copy(), np.zeros(n, dtype), np.zeros(n, dtype)
        sq = _engine.optimizer_step(solver, p, s1, s2, g, n - 10, 0.3, 7.5, 0.1, 0.9, False,
                                    0.9, 0.999, 1e-8, 0, n_threads, slots=sl)
        results.append((p, s1, s2, sq))
    assert np.array_equal(grad, summed)
    for got, expected in zip(*results):
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sw_sum", [1.0, 7.0, 200.0, 256.0, 1797.0, 0.3, 2.0**-30, 2.0**50,
                                    2.0**64, 2.0**65])
def test_optimizer_step_divides_exactly(dtype, sw_sum):
    """The finished gradient is grad / sw_sum correctly rounded, as scikit-learn's
    division (a guard for any faster division; a power of two up to 2**64 is
    multiplied by its inverse, 2**65 is divided). Seen through one SGD step from rest
    (lr 1, no momentum, alpha 0): velocity = 0 * 0 - 1 * g bitwise. Oracle: the
    same formula in numpy, in the same dtype. The gradients span every binade but
    the extremes (2**-59 to 2**58 in float32, 2**-899 to 2**898 in float64). The
    last 100 elements are intercepts (grad / sw_sum, where the coefficients take
    (grad + alpha * params) / sw_sum), the last 11 of them zeros, subnormals,
    extreme values, infinities and NaN. sw_sum ranges from 2**-30 to 2**50."""
    finfo = np.finfo(dtype)
    top = 59 if dtype == np.float32 else 899
    rng = np.random.default_rng(11)
    n = 3 * 4096
    grad = (rng.choice([-1, 1], n) * rng.uniform(1, 2, n)
            * 2.0 ** rng.integers(-top, top, n)).astype(dtype)
    specials = [0.0, -0.0, finfo.smallest_subnormal, -3 * finfo.smallest_subnormal,
                finfo.tiny, 2.0 ** (-top - 10), -(2.0 ** (top + 10)), finfo.max,
                np.inf, -np.inf, np.nan]
    grad[-len(specials):] = np.array(specials).astype(dtype)
    params = np.ones(n, dtype)
    velocity = np.zeros(n, dtype)
    s = dtype(sw_sum)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = dtype(0) * velocity - dtype(1) * (grad / s)
    _engine.optimizer_step(SGD, params, velocity, np.zeros(n, dtype), grad,
                           n - 100, 0.0, sw_sum, 1.0, 0.0, False, 0.9, 0.999, 1e-8, 0, 1)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(velocity), nan)
    assert np.array_equal(velocity[~nan].view(f"u{finfo.bits // 8}"),
                          expected[~nan].view(f"u{finfo.bits // 8}"))


# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("n", [5_000, 100_000])
def test_optimizer_step_thread_count_invariant(dtype, optimizer, n):
    """The returned sum of squares and the updated buffers are bitwise equal for 1
    thread, 2 threads in the step's own region (100,000 values) and 2 and 3 threads of
    a training pass's region sharing the step out (a team), over one or many
    reduction chunks (oracle: the single-threaded run)."""
    solver, nesterov = optimizer
    rng = np.random.default_rng(8)
    params0 = rng.standard_normal(n).astype(dtype)
    grad = rng.standard_normal(n).astype(dtype)
    results = []
    for n_threads, team in ((1, False), (2, False), (2, True), (3, True)):
        params = params0.copy()
        state1 = np.full(n, 0.01, dtype=dtype)
        state2 = np.full(n, 0.02, dtype=dtype)
        sq = _engine.optimizer_step(solver, params, state1, state2, grad, n - 500, 0.3, 3.0,
                                    0.01, 0.9, nesterov, 0.9, 0.999, 1e-8, 5, n_threads,
                                    team=team)
        results.append((sq, params, state1, state2))
    for other in results[1:]:
        for one, two in zip(results[0], other):
            assert np.array_equal(one, two)


# ---------------------------------------------------------------- argument checks

def _bad_calls():
    """(id, call) pairs, each a wrapper called with arrays it must refuse."""
    f = np.float64
    Z = np.zeros((4, 3))
    b3, b2 = np.zeros(3), np.zeros(2)
    p = np.zeros(10)

    def step(solver, params=p, s1=p, s2=p, grad=p, n_coef=8):
        return _engine.optimizer_step(solver, params.copy(), s1.copy(), s2.copy(), grad,
                                      n_coef, 0.1, 1.0, 0.1, 0.9, False, 0.9, 0.999, 1e-8, 0, 1)

    return [
        ("act_forward b", lambda: _engine.act_forward(Z.copy(), Z.copy(), b2, TANH)),
        ("act_forward A", lambda: _engine.act_forward(np.zeros((4, 2)), Z.copy(), b3, TANH)),
        ("act_forward F-order Z",
         lambda: _engine.act_forward(Z.copy(), np.asfortranarray(Z), b3, TANH)),
        ("act_forward mixed dtype",
         lambda: _engine.act_forward(Z.copy(), Z.astype(np.float32), b3, TANH)),
        ("act_backward A", lambda: _engine.act_backward(Z.copy(), Z, Z, np.zeros((4, 2)), TANH)),
        ("act_backward A rows",
         lambda: _engine.act_backward(Z.copy(), Z, Z, np.zeros((5, 3)), TANH)),
        ("act_backward dA", lambda: _engine.act_backward(Z.copy(), np.zeros((4, 2)), Z, Z, TANH)),
        ("act_backward Z", lambda: _engine.act_backward(Z.copy(), Z, np.zeros((3, 3)), Z, TANH)),
        ("column_sums s", lambda: _engine.column_sums(b2.copy(), Z)),
        ("output_forward b", lambda: _engine.output_forward(Z.copy(), b2, OUT_MULTI)),
        ("output_forward F-order Z",
         lambda: _engine.output_forward(np.asfortranarray(Z), b3, OUT_MULTI)),
        ("output_loss_backward sw", lambda: _engine.output_loss_backward(
            Z.copy(), Z.copy(), np.zeros(4), b3, Z, np.ones(3), OUT_MULTI)),
        ("output_loss_backward Y", lambda: _engine.output_loss_backward(
            Z.copy(), Z.copy(), np.zeros(4), b3, np.zeros((4, 2)), None, 0)),
        ("output_loss_backward dZ", lambda: _engine.output_loss_backward(
            np.zeros((3, 3)), Z.copy(), np.zeros(4), b3, Z, None, 0)),
        ("output_loss_backward b", lambda: _engine.output_loss_backward(
            Z.copy(), Z.copy(), np.zeros(4), b2, Z, None, 0)),
        ("output_loss_backward row_loss", lambda: _engine.output_loss_backward(
            Z.copy(), Z.copy(), np.zeros(3), b3, Z, None, 0)),
        ("gather_rows out rows", lambda: _engine.gather_rows(
            np.zeros((3, 3)), Z, np.array([0, 1], dtype=np.intp))),
        ("gather_rows out cols", lambda: _engine.gather_rows(
            np.zeros((2, 2)), Z, np.array([0, 1], dtype=np.intp))),
        ("optimizer_step grad", lambda: step(SGD, grad=np.zeros(9, dtype=f))),
        ("optimizer_step state1", lambda: step(SGD, s1=np.zeros(9, dtype=f))),
        ("optimizer_step adam state2", lambda: step(ADAM, s2=np.zeros(9, dtype=f))),
        ("optimizer_step n_coef > n", lambda: step(SGD, n_coef=11)),
        ("optimizer_step n_coef < 0", lambda: step(ADAM, n_coef=-1)),
    ]


BAD_CALLS = _bad_calls()


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[i for i, _ in BAD_CALLS])
def test_bad_shapes_raise(call):
    """Mismatched shapes, the wrong memory order or mixed dtypes raise ValueError
    (the wrappers check before any kernel runs)."""
    with pytest.raises(ValueError):
        call()


def test_optimizer_step_rejects_unknown_solver():
    """A solver code other than SOLVERS' raises ValueError, as Network.run_epoch
    does, instead of silently taking one of the two branches (the state2 length
    check only applies to Adam, so an unchecked code that runs Adam could write
    past a short state2)."""
    n = 10
    unknown = max(_engine.SOLVERS.values()) + 1
    params = np.ones(n)
    with pytest.raises(ValueError):
        _engine.optimizer_step(unknown, params, np.zeros(n), np.zeros(n), np.ones(n), n, 0.1,
                               1.0, 0.1, 0.9, False, 0.9, 0.999, 1e-8, 0, 1)


# ---------------------------------------------------------------- all_finite


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("size", [1, 15, 16, 17, 1000])
def test_all_finite(dtype, bad, size):
    """Oracle: np.isfinite(x).all(), with the bad value at every lane position."""
    rng = np.random.default_rng(size)
    base = (rng.standard_normal(size) * 1e30).astype(dtype)  # large but finite
    positions = [None] if bad is None else range(min(size, 40))
    for pos in positions:
        x = base.copy()
        if pos is not None:
            x[pos] = bad
        assert _engine.all_finite(x) == bool(np.isfinite(x).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_all_finite_threaded(dtype, n_threads):
    """The check split over threads in chunks of 65536 elements (five chunks, the
    last one short): a NaN or infinity in any chunk, at its edges or inside, is
    found. Oracle: np.isfinite(x).all()."""
    chunk = 65536
    base = np.random.default_rng(7).standard_normal(4 * chunk + 123).astype(dtype)
    assert _engine.all_finite(base, n_threads)
    for pos in [0, chunk - 1, chunk, 2 * chunk + 5, 4 * chunk, base.size - 1]:
        for bad in (np.nan, -np.inf):
            x = base.copy()
            x[pos] = bad
            assert not np.isfinite(x).all()
            assert not _engine.all_finite(x, n_threads)


# ---------------------------------------------------------------- exp


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_within_two_ulp(dtype):
    """Oracle: np.exp in long double, rounded to dtype; the error is counted in
    units in the last place of dtype. The kernels' exp is reached through the
    Poisson output (Z <- exp(Z + 0))."""
    info = np.finfo(dtype)
    lo, hi = (-87.3, 88.3) if dtype == np.float32 else (-708.0, 709.0)
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 200001), rng.uniform(-1, 1, 100000),
                        [0.0, -0.0, lo, hi, np.log(2), -np.log(2)]]).astype(dtype)
    got = x.reshape(-1, 1).copy()
    _engine.output_forward(got, np.zeros(1, dtype), OUT_POISSON)
    expected = np.exp(x.astype(np.longdouble)).astype(dtype)
    ulps = np.abs(got[:, 0].astype(np.longdouble) - expected) / np.spacing(expected)
    assert ulps.max() <= 2, (ulps.max(), x[np.argmax(ulps)])
    assert got[np.flatnonzero(x == 0), 0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_edges(dtype):
    """Oracle: the documented edges: 0 below the smallest normal result (no
    subnormals), +inf above the largest exactly represented exponent, NaN for NaN,
    and exp(-inf) = 0, exp(inf) = inf as np.exp."""
    lo, hi = (-87.3, 88.3) if dtype == np.float32 else (-708.0, 709.0)
    x = np.array([-np.inf, lo - 1, 2 * lo, np.nan, hi + 0.5, np.inf], dtype=dtype)
    got = x.reshape(-1, 1).copy()
    _engine.output_forward(got, np.zeros(1, dtype), OUT_POISSON)
    np.testing.assert_array_equal(got[:, 0], [0, 0, 0, np.nan, np.inf, np.inf])


# ---------------------------------------------------------------- tanh


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_within_three_ulp(dtype):
    """Oracle: np.tanh in long double, rounded to dtype; the error is counted in
    units in the last place of dtype. The kernels' tanh is reached through the
    hidden activation (Z <- tanh(Z + 0)); the grid crosses the points where the
    reduction's k changes and where tanh rounds to +-1, and tiny arguments."""
    rng = np.random.default_rng(0)
    tiny = 10.0 ** rng.uniform(-30, 0, 20000) * rng.choice([-1, 1], 20000)
    x = np.concatenate([np.linspace(-25, 25, 200001), rng.uniform(-1, 1, 100000), tiny,
                        [0.0, 9.0, 9.01, 19.0, 19.1, np.log(2) / 2]]).astype(dtype)
    got = x.reshape(-1, 1).copy()
    _engine.act_forward(got, got, np.zeros(1, dtype), TANH)
    expected = np.tanh(x.astype(np.longdouble)).astype(dtype)
    spacing = np.spacing(np.abs(expected)).astype(np.longdouble)
    ulps = np.abs(got[:, 0].astype(np.longdouble) - expected) / spacing
    assert ulps.max() <= 3, (ulps.max(), x[np.argmax(ulps)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_edges(dtype):
    """Oracle: np.tanh's values at the edges: +-1 at +-inf and far out, NaN for
    NaN, -0 for -0 (b = -0 keeps the sum -0), the smallest subnormal unchanged."""
    smallest = np.finfo(dtype).smallest_subnormal
    x = np.array([-np.inf, -1e30, np.nan, 1e30, np.inf, -0.0, smallest], dtype=dtype)
    got = x.reshape(-1, 1).copy()
    _engine.act_forward(got, got, np.full(1, -0.0, dtype), TANH)
    expected = np.tanh(x)
    np.testing.assert_array_equal(got[:, 0], expected)
    assert np.signbit(got[5, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_within_two_ulp(dtype):
    """Oracle: np.logaddexp(0, x) in long double, rounded to dtype; the error is
    counted in units in the last place of dtype. The grid runs from where the
    kernels' exp flushes to 0 to far past where softplus is x, with tiny
    arguments; at the edges, softplus's limits (0 at -inf, inf at inf) and NaN
    for NaN. Both the prediction (in place) and the training pass (which also
    leaves the derivative) are checked."""
    lo = -87.3 if dtype == np.float32 else -708.0
    rng = np.random.default_rng(0)
    tiny = 10.0 ** rng.uniform(-30, 0, 20000) * rng.choice([-1, 1], 20000)
    x = np.concatenate([np.linspace(lo, 60, 200001), rng.uniform(-1, 1, 100000), tiny,
                        [0.0, -0.0]]).astype(dtype)
    got = x.reshape(-1, 1).copy()
    _engine.act_forward(got, got, np.zeros(1, dtype), SOFTPLUS)
    expected = np.logaddexp(np.longdouble(0), x.astype(np.longdouble)).astype(dtype)
    ulps = np.abs(got[:, 0].astype(np.longdouble) - expected) / np.spacing(expected)
    assert ulps.max() <= 2, (ulps.max(), x[np.argmax(ulps)])
    apart = np.empty_like(got)
    _engine.act_forward(apart, x.reshape(-1, 1).copy(), np.zeros(1, dtype), SOFTPLUS)
    np.testing.assert_array_equal(apart, got)
    edges = np.array([-np.inf, np.inf, np.nan], dtype=dtype)
    got = edges.reshape(-1, 1).copy()
    _engine.act_forward(got, got, np.zeros(1, dtype), SOFTPLUS)
    np.testing.assert_array_equal(got[:, 0], [0, np.inf, np.nan])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_over_its_whole_range(dtype):
    """GELU's kernels on a fine grid through both tails (to where Phi rounds
    to 0 and past it), with +-inf and NaN. Oracle: scipy's ndtr for Phi, and
    Phi + z phi for the derivative, in float64; below the smallest normal
    number an absolute bound, and the derivative relative to Phi + |z| phi
    (its terms cancel for z < 0)."""
    from scipy.special import ndtr

    top = 39.0 if dtype == np.float64 else 15.0
    z = np.concatenate([np.linspace(-top, top, 40001), [np.inf, -np.inf, np.nan]])
    Z = z.astype(dtype)[None, :]
    z64 = Z[0, :-3].astype(np.float64)
    A = np.empty_like(Z)
    Zk = Z.copy()
    _engine.act_forward(A, Zk, np.zeros(Z.shape[1], dtype), GELU)
    dZ = np.empty_like(Z)
    _engine.act_backward(dZ, np.ones_like(Z), Zk, A, GELU)
    A_in_place = Z.copy()  # a prediction's forward
    _engine.act_forward(A_in_place, A_in_place, np.zeros(Z.shape[1], dtype), GELU)
    np.testing.assert_array_equal(A_in_place, A)
    phi = np.exp(-z64**2 / 2) / np.sqrt(2 * np.pi)
    tiny = np.finfo(dtype).tiny / rtol_for(dtype)
    assert_close(A[0, :-3], z64 * ndtr(z64), dtype, scale=tiny)
    assert_close(dZ[0, :-3], ndtr(z64) + z64 * phi, dtype,
                 scale=tiny + ndtr(z64) + np.abs(z64) * phi)
    assert A[0, -3] == np.inf and list(dZ[0, -3:-1]) == [1, 0]
    assert np.isnan(A[0, -1]) and np.isnan(dZ[0, -1])


_TORCH_MODULES = {"leaky_relu": ("LeakyReLU", {"negative_slope": 0.01}), "elu": ("ELU", {}),
                  "selu": ("SELU", {}), "softplus": ("Softplus", {}), "gelu": ("GELU", {}),
                  "prelu": ("PReLU", {"num_parameters": 7})}


@pytest.mark.parametrize("name", sorted(_TORCH_MODULES))
def test_activations_beyond_sklearn_match_pytorch(name):
    """Second oracle, where PyTorch is installed: torch.nn's module of the same
    name (default parameters; PReLU's slopes of both signs) and its autograd
    gradient, in float64; for PReLU also the slopes' gradient (dS summed over
    the rows)."""
    torch = pytest.importorskip("torch")
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(11)
    Z = 4 * rng.standard_normal((50, 7))
    dA = rng.standard_normal(Z.shape)
    slope = rng.uniform(-0.5, 1.5, 7) if act == PRELU else None
    module_name, kwargs = _TORCH_MODULES[name]
    z = torch.tensor(Z, requires_grad=True)
    module = getattr(torch.nn, module_name)(**kwargs).double()
    if slope is not None:
        module.weight.data = torch.tensor(slope)
    a = module(z)
    a.backward(torch.tensor(dA))
    A = np.empty_like(Z)
    Zk = Z.copy()
    _engine.act_forward(A, Zk, np.zeros(Z.shape[1]), act, slope=slope)
    dZ = np.empty_like(Z)
    dS = np.empty_like(Z) if slope is not None else None
    _engine.act_backward(dZ, dA, Zk, A, act, slope=slope, dS=dS)
    np.testing.assert_allclose(A, a.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dZ, z.grad.numpy(), rtol=1e-12, atol=1e-15)
    if slope is not None:
        np.testing.assert_allclose(dS.sum(axis=0), module.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_loss_backward_huber_threshold(dtype):
    """Huber's threshold comes from `param`; oracle: loss_terms_ref and
    loss_delta_ref with the same threshold, residuals on both sides of it."""
    rng = np.random.default_rng(12)
    Z = (2 * rng.standard_normal((40, 3))).astype(dtype)
    Y = rng.standard_normal((40, 3)).astype(dtype)
    b = np.zeros(3, dtype=dtype)
    P = Z.astype(np.float64)
    r = np.abs(P - Y)
    assert (r < 0.3).any() and (r > 0.3).any()
    dZ = np.empty_like(Z)
    row_loss = np.empty(40)
    _engine.output_loss_backward(dZ, Z, row_loss, b, Y, None, OUT_HUBER, 0.3)
    terms = loss_terms_ref(Y.astype(np.float64), P, OUT_HUBER, 0, threshold=0.3)
    assert_close(row_loss, terms.sum(axis=1), dtype, scale=terms.sum(axis=1))
    assert_close(dZ, loss_delta_ref(Y.astype(np.float64), P, OUT_HUBER, threshold=0.3),
                 dtype)


# loss name -> (torch.nn module, its arguments, our loss as a multiple of its sum)
_TORCH_LOSSES = {
    "huber": ("HuberLoss", {"delta": 1.0}, 1),
    "absolute_error": ("L1Loss", {}, 1),
    "multi_hinge": ("MultiMarginLoss", {"p": 1}, 5),  # torch divides by K = 5
    "multi_squared_hinge": ("MultiMarginLoss", {"p": 2}, 5),
}


@pytest.mark.parametrize("name", sorted(_TORCH_LOSSES))
def test_losses_beyond_sklearn_match_pytorch(name):
    """Second oracle, where PyTorch is installed: torch.nn's loss of the same
    definition (reduction 'sum') and its autograd gradient, on float64 outputs of
    5 columns (the true class as an index for the multi-class hinges)."""
    torch = pytest.importorskip("torch")
    out = _engine.OUTPUTS[name]
    rng = np.random.default_rng(13)
    Z = 2 * rng.standard_normal((60, 5))
    module_name, kwargs, factor = _TORCH_LOSSES[name]
    z = torch.tensor(Z, requires_grad=True)
    if module_name == "MultiMarginLoss":
        labels = rng.integers(0, 5, size=60)
        Y = np.eye(5)[labels]
        target = torch.tensor(labels)
    else:
        Y = rng.standard_normal(Z.shape)
        target = torch.tensor(Y)
    loss = factor * getattr(torch.nn, module_name)(reduction="sum", **kwargs)(z, target)
    loss.backward()
    dZ = np.empty_like(Z)
    row_loss = np.empty(60)
    _engine.output_loss_backward(dZ, Z.copy(), row_loss, np.zeros(5), Y, None, out, 1.0)
    np.testing.assert_allclose(row_loss.sum(), loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dZ, z.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- dropout and noise

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p, sigma", [(0.3, 0.0), (0.0, 0.5), (0.2, 0.25)],
                         ids=["dropout", "noise", "both"])
@pytest.mark.parametrize("shuffled", [False, True], ids=["row0", "rows"])
def test_perturb_forward_and_backward(dtype, p, sigma, shuffled):
    """H = (A + sigma G) * M / (1 - p) and dA * M / (1 - p). Oracle: the
    engine's generator written in NumPy (tests/_references: splitmix64,
    lowbias32, Box-Muller), bit for bit in its masks, and the NumPy formula
    in float64; each data row draws the same whether its block row comes
    from ``rows`` or from ``row0``."""
    rng = np.random.default_rng(14)
    A = rng.standard_normal((700, 97)).astype(dtype)
    rows = rng.permutation(5000)[:700].astype(np.intp) if shuffled else None
    data_rows = rows if shuffled else np.arange(40, 740)
    key = 0x1234_5678_9ABC_DEF0
    H = np.empty_like(A)
    _engine.perturb_forward(H, A, rows, 40, key, p, sigma)

    keep = dropout_mask_ref(key, data_rows, 97, p)
    expected = (A.astype(np.float64) + sigma * unit_noise_ref(key, data_rows, 97)) * keep / (1 - p)
    assert np.array_equal(H != 0, keep)
    assert_close(H, expected, dtype, scale=np.abs(A) + sigma * 5)
    dA = rng.standard_normal(A.shape).astype(dtype)
    expected_dA = dA.astype(np.float64) * keep / (1 - p)
    _engine.perturb_backward(dA, rows, 40, key, p)
    assert_close(dA, expected_dA, dtype)
    in_place = A.copy()
    _engine.perturb_forward(in_place, in_place, None if rows is None else rows.copy(), 40,
                            key, p, sigma)
    assert np.array_equal(in_place, H)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_rate_and_noise_moments_are_within_statistical_bounds(p):
    """Oracle: the binomial distribution of the dropped count (5 standard
    deviations) over 200000 units, and for the noise a Kolmogorov-Smirnov
    test against the standard normal, its mean and deviation within 5 standard
    errors; rows and keys that differ draw differently."""
    from scipy import stats

    A = np.ones((2000, 100))
    H = np.empty_like(A)
    _engine.perturb_forward(H, A, None, 0, 99, p, 0.0)
    dropped = np.count_nonzero(H == 0)
    n = A.size
    assert abs(dropped - p * n) < 5 * np.sqrt(n * p * (1 - p))
    np.testing.assert_array_equal(H[H != 0], 1 / (1 - p))
    other = np.empty_like(A)
    _engine.perturb_forward(other, A, None, 0, 100, p, 0.0)
    assert not np.array_equal(other, H)
    assert not np.array_equal(H[:1000], H[1000:])

    G = np.empty_like(A)
    _engine.perturb_forward(G, np.zeros_like(A), None, 0, 7 + int(10 * p), 0.0, 1.0)
    g = G.ravel()
    assert stats.kstest(g, "norm").pvalue > 1e-4
    assert abs(g.mean()) < 5 / np.sqrt(n)
    assert abs(g.std() - 1) < 5 / np.sqrt(2 * n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
def test_add_noise(dtype, n_threads):
    """out = x + sigma G_i, G_i from mlp_key(key, i); oracle: the NumPy
    generator (tests/_references.gaussian_ref), and bit-identical results on
    1 and 2 threads over 200000 entries (the threaded branch)."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal(200_000).astype(dtype)
    out = np.empty_like(x)
    _engine.add_noise(out, x, 31, 0.1, n_threads)
    expected = x.astype(np.float64) + 0.1 * gaussian_ref(key_ref(31, np.arange(x.size)))
    assert_close(out, expected, dtype, scale=np.abs(x) + 0.5)
    one = np.empty_like(x)
    _engine.add_noise(one, x, 31, 0.1, 1)
    assert np.array_equal(out, one)


def test_noise_key_matches_the_reference():
    """Oracle: tests/_references.key_ref."""
    for key, place in [(0, 0), (1, 2**63), (2**64 - 1, 12345)]:
        assert _engine.noise_key(key, place) == int(key_ref(key, place))
