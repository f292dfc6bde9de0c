"""Sparse (CSR / CSC) input: the first layer multiplies the sparse rows directly.

Oracles: the engine's own dense path on X.toarray() (kernel level), and
scikit-learn's estimator on the same sparse matrix (estimator level).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning

from mlpfast import MLPClassifier, MLPRegressor, _engine
from mlpfast._multilayer_perceptron import _engine_input


def _sparse_problem(dtype, n=300, d=40, density=0.15, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    X = X.astype(dtype)
    row_sums = np.asarray(X.sum(axis=1)).ravel()
    y = (row_sums > np.median(row_sums)).astype(int)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("output", [0, 2])
@pytest.mark.parametrize("hidden", [70, 800], ids=["slots", "tiles"])
def test_loss_grad_sparse_equals_dense(dtype, n_threads, output, hidden):
    """Oracle: Network.loss_grad on the dense copy of the same rows, for a
    network whose blocks' gradients are summed (slots) and one whose slots are
    limited to nothing, so that its gradients come in row tiles of the whole
    batch (tiles); either way the first layer's tiles take X's columns in
    ranges."""
    X, _ = _sparse_problem(dtype, n=200, d=300, density=0.05)
    rng = np.random.RandomState(1)
    K = 3
    Y = np.eye(K, dtype=dtype)[rng.randint(0, K, X.shape[0])] if output == 2 else \
        rng.normal(size=(X.shape[0], K)).astype(dtype)
    units = [X.shape[1], hidden, K]
    results = []
    for data in (np.ascontiguousarray(X.toarray()), _engine_input(X, dtype)[1]):
        net = _engine.Network(units, 3, output, dtype, X.shape[0], n_threads,
                              dense_input=not isinstance(data, tuple),
                              slot_values=0 if hidden == 800 else 1 << 23)
        params = np.random.RandomState(2).uniform(-0.2, 0.2, net.n_params).astype(dtype)
        loss = net.loss_grad(params, data, Y, np.ones(1, dtype), False, 1e-3, False)
        results.append((loss, net.grad.copy()))
    assert net.block_grads == (hidden == 70)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=rtol)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=rtol,
                               atol=rtol * np.abs(results[0][1]).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_sparse_equals_dense(dtype):
    """Oracle: the compiled forward pass on the dense copy (more rows than one block)."""
    X, _ = _sparse_problem(dtype, n=5000, d=60)
    rng = np.random.RandomState(0)
    coefs = [rng.normal(size=(60, 20)).astype(dtype), rng.normal(size=(20, 4)).astype(dtype)]
    intercepts = [rng.normal(size=20).astype(dtype), rng.normal(size=4).astype(dtype)]
    dense = _engine.forward(coefs, intercepts, np.ascontiguousarray(X.toarray()), 2, 2, 2)
    empty, csr = _engine_input(X, dtype)
    sparse = _engine.forward(coefs, intercepts, empty, 2, 2, 2, csr=csr)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_sparse_fit_matches_sklearn(fmt, solver):
    """Oracle: scikit-learn's MLPClassifier on the same sparse matrix and seed."""
    X, y = _sparse_problem(np.float64)
    X = X.asformat(fmt)
    params = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=20, random_state=0,
                  tol=0.0, n_iter_no_change=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X, y)
        theirs = sk.MLPClassifier(**params).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)


def test_sparse_input_is_never_densified():
    """Oracle: memory. Densifying this X would take 160 GB; a fit and a predict
    that multiply the sparse rows directly need a few MB."""
    rng = np.random.RandomState(0)
    n, d = 20_000, 1_000_000
    nnz = 40_000
    X = sp.csr_matrix((rng.uniform(size=nnz), (rng.randint(0, n, nnz), rng.randint(0, d, nnz))),
                      shape=(n, d))
    y = rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(2,), max_iter=1, batch_size=5000,
                             random_state=0).fit(X, y)
    assert model.predict(X[:100]).shape == (100,)
