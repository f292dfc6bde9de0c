"""mlpfast.check_gradient: the engine's gradient against central differences."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import mlpfast
from mlpfast import MLPClassifier, MLPRegressor, check_gradient

RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 4))
Y_CLASS = RNG.randint(3, size=60)
Y_REG = X[:, 0] - X[:, 1] ** 2
SW = RNG.uniform(0.2, 2, size=60)

CONFIGS = {
    "gelu,elu classifier": (MLPClassifier((8, 6), activation=["gelu", "elu"]), Y_CLASS, {}),
    "selu regressor, alpha": (MLPRegressor(hidden_layer_sizes=(7,), activation="selu",
                                           alpha=0.5), Y_REG, {}),
    "softplus poisson": (MLPRegressor(loss="poisson", hidden_layer_sizes=(5, 5),
                                      activation="softplus"), np.exp(Y_REG / 4), {}),
    "leaky_relu, class_weight, weights": (
        MLPClassifier((6,), activation="leaky_relu", class_weight="balanced"), Y_CLASS,
        {"sample_weight": SW}),
    "tanh multilabel": (MLPClassifier((5,), activation="tanh"),
                        np.c_[Y_CLASS == 1, Y_CLASS == 2].astype(int), {}),
    "hinge, hidden dropout and noise": (
        MLPClassifier((8, 6), activation="tanh", loss="hinge", dropout=0.3, hidden_noise=0.2,
                      weight_noise=0.05), Y_CLASS, {}),
    "squared hinge multilabel": (MLPClassifier((5,), activation="gelu", loss="squared_hinge"),
                                 np.c_[Y_CLASS == 1, Y_CLASS == 2].astype(int), {}),
    "huber": (MLPRegressor("huber", hidden_layer_sizes=(6,), activation="elu",
                           huber_epsilon=0.3), Y_REG, {}),
    "absolute error, label-free noise": (
        MLPRegressor("absolute_error", hidden_layer_sizes=(6,), activation="tanh",
                     hidden_noise=0.1), Y_REG, {}),
    "label smoothing": (MLPClassifier((6,), activation="tanh", label_smoothing=0.1),
                        Y_CLASS, {}),
}


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("fitted", [False, True], ids=["initial", "fitted"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_engine_gradient_agrees_with_finite_differences(name, fitted, sparse):
    """Oracle: central finite differences of the same loss, which check_gradient
    computes; and the estimator is left as it was."""
    est, y, fit_params = CONFIGS[name]
    est = est.set_params(random_state=0, max_iter=5)
    data = sp.csr_matrix(X) if sparse else X
    if fitted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(data, y, **fit_params)
        before = [c.copy() for c in est.coefs_]
    assert check_gradient(est, data, y, **fit_params) < 1e-5
    if fitted:
        for a, b in zip(before, est.coefs_):
            np.testing.assert_array_equal(a, b)
    else:
        assert not hasattr(est, "coefs_")


def test_a_wrong_gradient_is_reported(monkeypatch):
    """The control: an analytic gradient 1% off shows as an error of 0.5% or
    more (oracle: |1.01 g - g| / max(|1.01 g|, |g|) = 0.0099)."""
    analytic = mlpfast._gradient_check._analytic
    monkeypatch.setattr(mlpfast._gradient_check, "_analytic",
                        lambda *args: 1.01 * analytic(*args))
    est = MLPClassifier((8,), random_state=0)
    assert check_gradient(est, X, Y_CLASS) > 5e-3
