"""The whole network's loss and gradient (``mlpfast._engine.Network.loss_grad``).

Oracles:
- central finite differences of the same loss, in float64, for every hidden
  activation x output kind, with L2 regularisation and with/without sample weights;
- a direct NumPy forward/backward written with scikit-learn's ``_backprop`` formulas,
  in float32 and float64;
- scikit-learn's own ``BaseMultilayerPerceptron._backprop`` on the same weights.

Parameters are one flat vector: every coefficient matrix (fan_in, fan_out) row-major,
then every intercept (``Network.layout()`` gives the offsets), then PReLU layers'
slopes (``Network.slope_layout()``).
"""

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor

from _references import (
    HIDDEN,
    IDENTITY,
    LOGISTIC,
    OUT_BINARY,
    OUT_MULTI,
    OUT_POISSON,
    OUT_SQUARED,
    OUTPUTS,
    RELU,
    SKLEARN_OUTPUTS,
    TANH,
    act_backward_ref,
    act_ref,
    layer_act,
    loss_delta_ref,
    loss_terms_ref,
    out_ref,
    prelu_slope_rows_ref,
    targets,
)

from mlpfast import _engine


N_SAMPLES = 12
ALPHA = 0.3


# ---------------------------------------------------------------- problem set-up

def make_problem(act, out, dtype, n_outputs=3, weighted=False, seed=0):
    """A network [5, 4, 3, K], its flat parameters, X, targets valid for the output kind
    (_references.targets) and sample weights."""
    rng = np.random.default_rng(seed)
    units = [5, 4, 3, n_outputs]
    net = _engine.Network(units, act, out, dtype, N_SAMPLES, 1)
    params = (0.7 * rng.standard_normal(net.n_params)).astype(dtype)
    X = rng.standard_normal((N_SAMPLES, units[0])).astype(dtype)
    Y = targets(rng, (N_SAMPLES, n_outputs), out).astype(dtype)
    sw = rng.uniform(0.3, 2.5, size=N_SAMPLES).astype(dtype) if weighted else None
    return net, params, X, Y, sw


def loss_grad(net, params, X, Y, sw, squared_mean):
    """Network.loss_grad with the dummy weight vector it wants when sw is None."""
    has_sw = sw is not None
    sw_arg = sw if has_sw else np.ones(1, dtype=params.dtype)
    loss = net.loss_grad(params, X, Y, sw_arg, has_sw, ALPHA, squared_mean)
    return loss, net.grad.copy()


def unpack(net, params):
    """Flat parameters -> (coefs, intercepts) as float64 lists, via Network.layout()."""
    coef_layout, inter_layout = net.layout()
    coefs = [params[s:e].astype(np.float64).reshape(shape) for s, e, shape in coef_layout]
    intercepts = [params[s:e].astype(np.float64) for s, e in inter_layout]
    return coefs, intercepts


def unpack_slopes(net, params):
    """Per hidden layer, its PReLU slopes as float64 (None for other layers)."""
    return [None if where is None else params[where[0]:where[1]].astype(np.float64)
            for where in net.slope_layout()]


# ---------------------------------------------------------------- NumPy reference network







def data_loss_ref(Y, P, w, out, eps, squared_mean):
    """sum_n w_n loss_n / sum(w), as scikit-learn's LOSS_FUNCTIONS for its heads (the
    squared error divides by K too when squared_mean), by loss_terms_ref's formulas."""
    terms = loss_terms_ref(Y, P, out, eps)
    if squared_mean:
        terms = terms / Y.shape[1]
    return (w[:, None] * terms).sum() / w.sum()


def numpy_loss_grad(net, params, X, Y, sw, act, out, squared_mean):
    """Loss and flat gradient of the network, in float64, by scikit-learn's _backprop:

    loss = L(Y, P) + 0.5 * alpha * sum ||W||^2 / sw_sum
    delta_last = sw * dloss/dz (sw * (P - Y) for scikit-learn's heads);  delta_{l-1} = (delta_l @ W_l.T) * act'(A_l)
    coef grad = (A.T @ delta + alpha * W) / sw_sum;  intercept grad = delta.sum(0) / sw_sum
    and a PReLU layer's slope grad = (dA * min(z, 0)).sum(0) / sw_sum (no penalty)
    """
    coefs, intercepts = unpack(net, params)
    slopes = unpack_slopes(net, params)
    n = X.shape[0]
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    sw_sum = w.sum()
    activations, pre = [X.astype(np.float64)], [None]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = activations[-1] @ W + b
        pre.append(z)
        activations.append(out_ref(z, out) if i == len(coefs) - 1
                           else act_ref(z, layer_act(act, i), slopes[i]))
    P = activations[-1]
    Y64 = Y.astype(np.float64)
    loss = data_loss_ref(Y64, P, w, out, np.finfo(params.dtype).eps, squared_mean)
    loss += 0.5 * ALPHA * sum(np.sum(W**2) for W in coefs) / sw_sum

    coef_grads, intercept_grads = [None] * len(coefs), [None] * len(coefs)
    slope_grads = [None] * len(slopes)
    delta = w[:, None] * loss_delta_ref(Y64, P, out)
    for i in range(len(coefs) - 1, -1, -1):
        coef_grads[i] = (activations[i].T @ delta + ALPHA * coefs[i]) / sw_sum
        intercept_grads[i] = delta.sum(axis=0) / sw_sum
        if i > 0:
            dA = delta @ coefs[i].T
            if slopes[i - 1] is not None:
                slope_grads[i - 1] = prelu_slope_rows_ref(dA, pre[i]).sum(axis=0) / sw_sum
            delta = act_backward_ref(dA, pre[i], activations[i], layer_act(act, i - 1),
                                     slopes[i - 1])
    grad = np.concatenate([g.ravel() for g in coef_grads + intercept_grads
                           + [g for g in slope_grads if g is not None]])
    return loss, grad


def test_activation_specs_are_a_code_a_pair_or_a_list():
    """A tuple is one (code, param) pair, never a list of per-layer codes: a
    pair for an activation without a parameter, a longer tuple or a
    non-finite parameter raise ValueError (oracle: the rule); a list gives one
    spec per layer."""
    for bad in [(RELU, TANH), (RELU, TANH, TANH), (_engine.ACTIVATIONS["maxout"], np.inf)]:
        with pytest.raises(ValueError):
            _engine.Network([4, 3, 3, 2], bad, OUT_MULTI, np.float64, 8, 1)
    net = _engine.Network([4, 3, 3, 2], [RELU, TANH], OUT_MULTI, np.float64, 8, 1)
    assert [code for code, _ in net.activation] == [RELU, TANH]


# ---------------------------------------------------------------- finite differences

def central_differences(f, params, h=1e-6):
    """(f(p + h e_i) - f(p - h e_i)) / 2h for every coordinate i."""
    fd = np.empty(params.size)
    for i in range(params.size):
        step = np.zeros_like(params)
        step[i] = h
        fd[i] = (f(params + step) - f(params - step)) / (2 * h)
    return fd


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("out", OUTPUTS.values(), ids=OUTPUTS.keys())
@pytest.mark.parametrize("act", HIDDEN.values(), ids=HIDDEN.keys())
def test_gradient_matches_finite_differences(act, out, weighted):
    """net.grad after loss_grad equals central finite differences of the loss it
    returns (float64, h = 1e-6, two hidden layers, K = 3, alpha > 0).

    squared_mean=False here: scikit-learn's gradient of the squared loss is that of
    the un-averaged 1/2 sum_k (y - p)^2, the reported loss is not (see
    test_squared_mean_scales_loss_only). Random inputs keep relu off its kink.
    """
    net, params, X, Y, sw = make_problem(act, out, np.float64, weighted=weighted)
    _, grad = loss_grad(net, params, X, Y, sw, squared_mean=False)
    fd = central_differences(lambda p: loss_grad(net, p, X, Y, sw, False)[0], params)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("act", HIDDEN.values(), ids=HIDDEN.keys())
def test_squared_gradient_matches_finite_differences_single_output(act, weighted):
    """With one output, the loss scikit-learn reports for the squared error
    (squared_mean=True, 0.5 * mean over outputs) is the one its gradient differentiates:
    oracle central finite differences of that loss."""
    net, params, X, Y, sw = make_problem(act, OUT_SQUARED, np.float64, n_outputs=1,
                                         weighted=weighted)
    _, grad = loss_grad(net, params, X, Y, sw, squared_mean=True)
    fd = central_differences(lambda p: loss_grad(net, p, X, Y, sw, True)[0], params)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
def test_squared_mean_scales_loss_only(weighted):
    """squared_mean divides the data term of the loss by K and leaves the L2 term and
    the gradient alone. Oracle: the squared_mean=False call on the same inputs."""
    net, params, X, Y, sw = make_problem(TANH, OUT_SQUARED, np.float64, n_outputs=3,
                                         weighted=weighted)
    sw_sum = N_SAMPLES if sw is None else sw.sum()
    l2 = 0.5 * ALPHA * np.sum(params[:net.n_coef] ** 2) / sw_sum
    loss_sum, grad_sum = loss_grad(net, params, X, Y, sw, squared_mean=False)
    loss_mean, grad_mean = loss_grad(net, params, X, Y, sw, squared_mean=True)
    np.testing.assert_allclose(loss_mean - l2, (loss_sum - l2) / 3, rtol=1e-12)
    assert np.array_equal(grad_mean, grad_sum)


# ---------------------------------------------------------------- NumPy forward/backward

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("out", OUTPUTS.values(), ids=OUTPUTS.keys())
@pytest.mark.parametrize("act", HIDDEN.values(), ids=HIDDEN.keys())
def test_loss_grad_matches_numpy_backprop(act, out, weighted, dtype):
    """Loss and gradient equal numpy_loss_grad (scikit-learn's _backprop formulas in
    float64 from the same, possibly float32, parameters and data).

    The gradient is compared relative to its largest entry: float32 sums over rows
    can cancel to entries far below the rounding of the terms they add up.
    """
    squared_mean = out == OUT_SQUARED
    net, params, X, Y, sw = make_problem(act, out, dtype, weighted=weighted, seed=1)
    loss, grad = loss_grad(net, params, X, Y, sw, squared_mean)
    assert grad.dtype == dtype
    expected_loss, expected_grad = numpy_loss_grad(net, params, X, Y, sw, act, out,
                                                   squared_mean)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, expected_loss, rtol=rtol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol,
                               atol=rtol * np.abs(expected_grad).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("units, n, capacity", [
    ([64, 256, 128, 10], 128, 128),
    ([64, 256, 128, 10], 127, 127),
    ([100, 128, 64, 10], 130, 400),
    ([300, 600, 128, 10], 400, 400),
    ([200, 400, 10], 256, 256),
    ([5, 3, 2], 1, 7),
], ids=["two-blocks", "uneven-blocks", "short-batch", "tiles", "shared-tiles", "one-row"])
@pytest.mark.parametrize("act", [TANH, HIDDEN["prelu,maxout"]], ids=["tanh", "prelu,maxout"])
def test_loss_grad_with_threads(units, n, capacity, dtype, act):
    """The threaded pass: row blocks through the forward and delta passes, each
    block's weight-gradient tiles into its gradient slot, the slots summed; or
    (for the 258K-weight network, its slots limited to nothing) the tiles of
    the whole batch (six row ranges of its first layer, then its bias
    gradient). Shared out over 1 to 4 threads; in the network with an
    80K-weight layer (two 128-row blocks, three tiles of its first layer), a
    thread out of blocks takes tiles of another's. Loss and gradient equal
    numpy_loss_grad, and every thread count gives bitwise equal results
    (oracle: the one-thread run, which does the same blocks and tiles in turn).
    A PReLU layer's slopes and a maxout layer's pieces go through the same
    blocks and tiles."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, units[0])).astype(dtype)
    Y = np.eye(units[-1])[rng.integers(0, units[-1], size=n)].astype(dtype)
    sw = rng.uniform(0.3, 2.5, size=n).astype(dtype)
    results = []
    for n_threads in (1, 2, 3, 4):
        layers = act[:len(units) - 2] if isinstance(act, list) else act
        net = _engine.Network(units, layers, OUT_MULTI, dtype, capacity, n_threads,
                              slot_values=0 if units[0] == 300 else 1 << 23)
        params = (0.1 * np.random.default_rng(4).standard_normal(net.n_params)).astype(dtype)
        results.append(loss_grad(net, params, X, Y, sw, False))
    expected_loss, expected_grad = numpy_loss_grad(net, params, X, Y, sw, layers, OUT_MULTI,
                                                   False)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0][0], expected_loss, rtol=rtol)
    np.testing.assert_allclose(results[0][1], expected_grad, rtol=rtol,
                               atol=rtol * np.abs(expected_grad).max())
    for other in results[1:]:
        assert results[0][0] == other[0]
        np.testing.assert_array_equal(results[0][1], other[1])
    assert net.block_grads == (units[0] != 300)
    assert net.share_tiles == (units[0] == 200)


def test_loss_grad_overwrites_gradient():
    """A second call leaves the same gradient, not the sum of both (the gradient rule:
    backward kernels overwrite). Oracle: the first call."""
    net, params, X, Y, sw = make_problem(RELU, OUT_MULTI, np.float64, weighted=True)
    first = loss_grad(net, params, X, Y, sw, False)
    second = loss_grad(net, params, X, Y, sw, False)
    assert first[0] == second[0]
    assert np.array_equal(first[1], second[1])


def test_loss_grad_fewer_rows_than_capacity():
    """A batch shorter than the network's capacity uses only its own rows.
    Oracle: numpy_loss_grad on those rows."""
    net, params, X, Y, sw = make_problem(LOGISTIC, OUT_BINARY, np.float64, weighted=True)
    loss_grad(net, params, X, Y, sw, False)  # fill every buffer row first
    loss, grad = loss_grad(net, params, X[:5], Y[:5], sw[:5], False)
    expected_loss, expected_grad = numpy_loss_grad(net, params, X[:5], Y[:5], sw[:5],
                                                   LOGISTIC, OUT_BINARY, False)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- scikit-learn's _backprop

SKLEARN_NAMES = {IDENTITY: "identity", LOGISTIC: "logistic", TANH: "tanh", RELU: "relu"}


def sklearn_backprop(net, params, X, Y, sw, act, out):
    """Loss and flat gradient from scikit-learn's BaseMultilayerPerceptron._backprop,
    on an estimator whose fitted attributes are set to these weights."""
    if out == OUT_SQUARED:
        est, out_name = MLPRegressor(loss="squared_error"), "identity"
    elif out == OUT_POISSON:
        est, out_name = MLPRegressor(loss="poisson"), "exp"
    else:
        est = MLPClassifier()
        out_name = "logistic" if out == OUT_BINARY else "softmax"
    est.set_params(activation=SKLEARN_NAMES[act], alpha=ALPHA)
    coefs, intercepts = unpack(net, params)
    est.coefs_, est.intercepts_ = coefs, intercepts
    est.n_layers_ = len(coefs) + 1
    est.out_activation_ = out_name
    L = len(coefs)
    activations = [X.astype(np.float64)] + [None] * L
    loss, coef_grads, intercept_grads = est._backprop(
        X.astype(np.float64), Y.astype(np.float64),
        None if sw is None else sw.astype(np.float64),
        activations, [None] * L, [None] * L, [None] * L)
    return loss, np.concatenate([g.ravel() for g in coef_grads + intercept_grads])


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("out", SKLEARN_OUTPUTS.values(), ids=SKLEARN_OUTPUTS.keys())
@pytest.mark.parametrize("act", SKLEARN_NAMES, ids=SKLEARN_NAMES.values())
def test_loss_grad_matches_sklearn_backprop(act, out, weighted):
    """Float64 loss and gradient equal scikit-learn's own _backprop on the same weights
    (squared_mean=True for the squared error, as scikit-learn's squared_loss)."""
    net, params, X, Y, sw = make_problem(act, out, np.float64, weighted=weighted, seed=2)
    loss, grad = loss_grad(net, params, X, Y, sw, squared_mean=out == OUT_SQUARED)
    expected_loss, expected_grad = sklearn_backprop(net, params, X, Y, sw, act, out)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12,
                               atol=1e-12 * np.abs(expected_grad).max())


# ---------------------------------------------------------------- prediction pass

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out", OUTPUTS.values(), ids=OUTPUTS.keys())
@pytest.mark.parametrize("act", HIDDEN.values(), ids=HIDDEN.keys())
def test_forward_matches_numpy(act, out, dtype):
    """_engine.forward (the predict pass, blocks of 1024 rows) equals the NumPy forward
    of numpy_loss_grad's network on 2500 rows, in both dtypes."""
    net, params, _, _, _ = make_problem(act, out, dtype, seed=3)
    X = np.random.default_rng(4).standard_normal((2500, 5)).astype(dtype)
    coefs, intercepts = unpack(net, params)
    slopes = unpack_slopes(net, params)
    P = _engine.forward([c.astype(dtype) for c in coefs],
                        [b.astype(dtype) for b in intercepts], X, act, out, 2,
                        slopes=[s if s is None else s.astype(dtype) for s in slopes])
    expected = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = expected @ W + b
        expected = (out_ref(z, out) if i == len(coefs) - 1
                    else act_ref(z, layer_act(act, i), slopes[i]))
    assert P.dtype == dtype and P.shape == expected.shape
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(P, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


# ---------------------------------------------------------------- dropout and noise

PERTURBATIONS = {
    "dropout": dict(dropout=[0.2, 0.3, 0.4]),
    "noise": dict(noise=[0.3, 0.2, 0.1]),
    "weight-noise": dict(weight_noise=0.05),
    "all": dict(dropout=[0.1, 0.5, 0.0], noise=[0.0, 0.2, 0.3], weight_noise=0.02),
}


@pytest.mark.parametrize("shuffled", [False, True], ids=["slices", "shuffled"])
@pytest.mark.parametrize("perturbation", PERTURBATIONS.values(), ids=PERTURBATIONS.keys())
@pytest.mark.parametrize("act", [TANH, RELU, HIDDEN["tanh,gelu"]], ids=["tanh", "relu",
                                                                        "tanh,gelu"])
def test_perturbed_gradient_matches_finite_differences(act, perturbation, shuffled):
    """With dropout and noise the loss is a function of the weights for a fixed
    noise_key (the masks and draws are fixed by the key and the data rows), and
    net.grad is its gradient: oracle central finite differences (float64). A
    different key gives another loss."""
    net, params, X, Y, sw = make_problem(act, OUT_MULTI, np.float64, weighted=True)
    net = _engine.Network([5, 4, 3, 3], act, OUT_MULTI, np.float64, N_SAMPLES, 1,
                          **perturbation)
    net.noise_key = 1234
    _, grad = loss_grad(net, params, X, Y, sw, squared_mean=False)
    fd = central_differences(lambda p: loss_grad(net, p, X, Y, sw, False)[0], params)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)
    first = loss_grad(net, params, X, Y, sw, False)[0]
    net.noise_key = 1235
    assert loss_grad(net, params, X, Y, sw, False)[0] != first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("units, slot_values", [([64, 256, 128, 10], 1 << 23),
                                                ([300, 600, 128, 10], 0)],
                         ids=["slots", "tiles"])
def test_perturbed_epoch_is_the_same_on_any_thread_count(units, slot_values, dtype):
    """An epoch of shuffled Adam batches with dropout on every layer's input,
    noise and weight noise: bit-identical parameters and loss on 1 to 4
    threads (oracle: the one-thread run); without the perturbations, another
    result."""
    rng = np.random.default_rng(5)
    n = 300
    X = rng.standard_normal((n, units[0])).astype(dtype)
    Y = np.eye(units[-1])[rng.integers(0, units[-1], size=n)].astype(dtype)
    order = rng.permutation(n).astype(np.intp)
    results = []
    for n_threads, perturb in [(1, True), (2, True), (3, True), (4, True), (1, False)]:
        kwargs = dict(dropout=[0.2, 0.5, 0.5], noise=[0.1, 0.1, 0.0], weight_noise=0.01)
        net = _engine.Network(units, RELU, OUT_MULTI, dtype, 128, n_threads,
                              slot_values=slot_values, **(kwargs if perturb else {}))
        params = (0.05 * np.random.default_rng(6).standard_normal(net.n_params)).astype(dtype)
        m, v = np.zeros_like(params), np.zeros_like(params)
        loss = net.run_epoch(params, X, Y, np.ones(1, dtype), False, order, True, 128, 1e-4,
                             False, _engine.SOLVERS["adam"], m, v, 1e-3, beta_1=0.9,
                             beta_2=0.999, epsilon=1e-8, noise_key=77)
        results.append((loss, params))
    for loss, params in results[1:4]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(params, results[0][1])
    assert results[4][0] != results[0][0]
