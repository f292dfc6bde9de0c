"""Bad input gets the same exception, with the same message, as scikit-learn.

Oracle: scikit-learn's MLPClassifier / MLPRegressor called the same way.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import load_iris
from sklearn.utils._param_validation import InvalidParameterError

import mlpfast

X, y = load_iris(return_X_y=True)

CASES = {
    "nan in X": lambda m: m.MLPClassifier(max_iter=2).fit(np.where(X > 7, np.nan, X), y),
    "inf in X": lambda m: m.MLPClassifier(max_iter=2).fit(np.where(X > 7, np.inf, X), y),
    "nan in y": lambda m: m.MLPRegressor(max_iter=2).fit(X, np.where(y > 1, np.nan, y)),
    "inf in float32 X, regressor": lambda m: m.MLPRegressor(max_iter=2).fit(
        np.where(X > 7, -np.inf, X).astype(np.float32), y),
    "nan in Fortran-ordered X": lambda m: m.MLPClassifier(max_iter=2).fit(
        np.asfortranarray(np.where(X > 7, np.nan, X)), y),
    "nan in X, partial_fit": lambda m: m.MLPClassifier().partial_fit(
        np.where(X > 7, np.nan, X), y, classes=np.unique(y)),
    "nan in X, second partial_fit": lambda m: m.MLPClassifier().partial_fit(
        X, y, classes=np.unique(y)).partial_fit(np.where(X > 7, np.nan, X), y),
    "empty X": lambda m: m.MLPClassifier(max_iter=2).fit(X[:0], y[:0]),
    "1-D X": lambda m: m.MLPClassifier(max_iter=2).fit(X[:, 0], y),
    "3-D X": lambda m: m.MLPClassifier(max_iter=2).fit(X[:, :, None], y),
    "sample_weight length": lambda m: m.MLPClassifier(max_iter=2).fit(
        X, y, sample_weight=np.ones(3)),
    "partial_fit early_stopping": lambda m: m.MLPClassifier(early_stopping=True).partial_fit(
        X, y, classes=[0, 1, 2]),
    "partial_fit unseen label": lambda m: m.MLPClassifier().partial_fit(
        X[y < 2], y[y < 2], classes=[0, 1]).partial_fit(X, y),
    "partial_fit without classes": lambda m: m.MLPClassifier().partial_fit(X, y),
    "predict wrong width": lambda m: m.MLPClassifier(max_iter=2).fit(X, y).predict(X[:, :2]),
    "predict before fit": lambda m: m.MLPRegressor().predict(X),
    # the fast predict path finds these in C, then scikit-learn's check raises
    "nan in predict X": lambda m: m.MLPClassifier(max_iter=2).fit(X, y).predict(
        np.where(X > 7, np.nan, X)),
    "inf in predict_proba X, float32": lambda m: m.MLPClassifier(max_iter=2).fit(X, y)
    .predict_proba(np.where(X > 7, -np.inf, X).astype(np.float32)),
    "nan in one-row regressor predict": lambda m: m.MLPRegressor(max_iter=2).fit(X, y).predict(
        np.where(X[:1] > 0, np.nan, X[:1])),
    "lbfgs classifier partial_fit": lambda m: m.MLPClassifier(solver="lbfgs").partial_fit(X, y),
    "validation set too small": lambda m: m.MLPClassifier(
        early_stopping=True, validation_fraction=0.01).fit(X[:30], y[:30]),
    "warm_start new classes": lambda m: m.MLPClassifier(warm_start=True, max_iter=2).fit(
        X[y < 2], y[y < 2]).fit(X, y),
    "invalid hidden_layer_sizes": lambda m: m.MLPClassifier(hidden_layer_sizes=(5, 0)).fit(X, y),
    "invalid solver": lambda m: m.MLPRegressor(solver="newton").fit(X, y),
    "negative alpha": lambda m: m.MLPRegressor(alpha=-1.0).fit(X, y),
    "momentum above 1": lambda m: m.MLPClassifier(momentum=1.5).fit(X, y),
    "beta_1 of 1": lambda m: m.MLPClassifier(beta_1=1.0).fit(X, y),
    "n_iter_no_change 0": lambda m: m.MLPClassifier(n_iter_no_change=0).fit(X, y),
}

# Sample weights that sum to zero, over the data or over one mini-batch.
_SIGNED = np.where(np.arange(len(y)) % 2, 1.0, -1.0)
_ONE_ZERO = np.where(np.arange(len(y)) == 7, 0.0, 1.0)
_EVEN_ZERO = np.where(np.arange(len(y)) % 2, 1.0, 0.0)
for _solver in ("adam", "sgd", "lbfgs"):
    CASES[f"weights summing to zero, {_solver}"] = (
        lambda m, s=_solver: m.MLPClassifier(solver=s, max_iter=3).fit(X, y, sample_weight=_SIGNED))
for _solver in ("adam", "sgd"):
    CASES[f"a zero-weight batch of one row, {_solver}"] = (
        lambda m, s=_solver: m.MLPClassifier(solver=s, batch_size=1, max_iter=3).fit(
            X, y, sample_weight=_ONE_ZERO))
    CASES[f"zero-weight batches, early stopping, {_solver}"] = (
        lambda m, s=_solver: m.MLPRegressor(solver=s, batch_size=2, early_stopping=True,
                                            max_iter=3).fit(X, y, sample_weight=_EVEN_ZERO))
    CASES[f"a zero-weight batch in partial_fit, {_solver}"] = (
        lambda m, s=_solver: m.MLPRegressor(solver=s, batch_size=10, shuffle=False).partial_fit(
            X[:30], y[:30], sample_weight=(np.arange(30) >= 10).astype(float)))


# Not in CASES: the message lists mlpfast's own options (see the test below).
_DIFFERENT = {
    "invalid activation": lambda m: m.MLPClassifier(activation="softmax").fit(X, y),
    "invalid loss": lambda m: m.MLPRegressor(loss="quantile").fit(X, y),
}


def _outcome(module, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            {**CASES, **_DIFFERENT}[case](module)
        except Exception as error:  # noqa: BLE001 - the type is what is compared
            return type(error), str(error)
    return None, None


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error_as_sklearn(case):
    """Oracle: the exception type and message scikit-learn raises for the same call."""
    theirs = _outcome(sk, case)
    assert theirs[0] is not None, "scikit-learn accepted this case; it is not a bad input"
    ours = _outcome(mlpfast, case)
    assert ours[0] is theirs[0]
    assert _normalised(ours[1]) == _normalised(theirs[1])


def _normalised(message):
    """The message with memory addresses dropped and {set, literals} sorted
    (their printed order follows string hashing, not the code)."""
    message = re.sub(r"0x[0-9a-f]+", "", message)
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
                  message)


def test_invalid_parameter_is_invalid_parameter_error():
    """Oracle: scikit-learn's InvalidParameterError (a ValueError and a TypeError)."""
    with pytest.raises(InvalidParameterError, match="activation"):
        mlpfast.MLPClassifier(activation="softmax").fit(X, y)


@pytest.mark.parametrize("case, options, sklearns, also", [
    ("invalid activation", sorted(mlpfast._engine.ACTIVATIONS),
     {"identity", "logistic", "tanh", "relu"}, " or an instance of 'list'"),
    ("invalid loss", sorted(mlpfast.MLPRegressor._parameter_constraints["loss"][0].options),
     {"squared_error", "poisson"}, ""),
])
def test_invalid_option_names_scikit_learns_options_and_mlpfasts(case, options, sklearns,
                                                                  also):
    """mlpfast takes more activations (and a list of one per layer) and more
    losses than scikit-learn, so its message for an unknown one lists more
    options. Oracle: scikit-learn's message with that set of options, and
    scikit-learn's own among them."""
    theirs = _outcome(sk, case)
    ours = _outcome(mlpfast, case)
    assert ours[0] is theirs[0] is InvalidParameterError
    assert set(options) >= sklearns
    expected = re.sub(r"\{[^{}]*\}", "{" + ", ".join(repr(o) for o in options) + "}", theirs[1])
    expected = expected.replace("}. Got", "}" + also + ". Got")
    assert _normalised(ours[1]) == _normalised(expected)


def test_poisson_negative_target_is_a_clear_error():
    """Oracle: the Poisson deviance is undefined for y < 0 (scikit-learn lets the loss go NaN)."""
    with pytest.raises(ValueError, match="non-negative"):
        mlpfast.MLPRegressor(loss="poisson").fit(X, y - 1.0)


def test_regressor_partial_fit_with_lbfgs_is_available_like_sklearn():
    """Oracle: scikit-learn 1.9 exposes MLPRegressor.partial_fit for every solver."""
    ours = mlpfast.MLPRegressor(solver="lbfgs", max_iter=5, random_state=0)
    theirs = sk.MLPRegressor(solver="lbfgs", max_iter=5, random_state=0)
    assert hasattr(ours, "partial_fit") == hasattr(theirs, "partial_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)


@pytest.mark.parametrize("fitted_first", [False, True], ids=["new", "fitted"])
def test_fit_failing_on_nan_leaves_the_estimator_as_sklearn_does(fitted_first):
    """Oracle: scikit-learn's estimator after the same failed fit (NaN in a
    3-feature X): still unfitted if it was (predict raises NotFittedError), else
    still predicting with the model it had."""
    bad = np.ascontiguousarray(np.where(X > 7, np.nan, X)[:, :3])
    outcomes = {}
    for module in (sk, mlpfast):
        est = module.MLPClassifier(max_iter=2, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = est.fit(X, y).predict(X) if fitted_first else None
            with pytest.raises(ValueError, match="NaN"):
                est.fit(bad, y)
            try:
                after = est.predict(X)
            except Exception as error:  # noqa: BLE001 - the type is what is compared
                outcomes[module.__name__] = type(error)
            else:
                np.testing.assert_array_equal(after, before)
                outcomes[module.__name__] = "same predictions as before"
    assert outcomes[mlpfast.__name__] == outcomes[sk.__name__]


# Values on both sides of each parameter's constraints: bounds, NaN and
# infinity, bools and numpy scalars where numbers are expected, wrong types.
_PARAMETER_VALUES = {
    "hidden_layer_sizes": [(5,), [3, 2], 4, 0, -1, np.array([2]), "5", None, 2.0, True],
    "activation": ["relu", "tanh", "softmax", None, 1],
    "solver": ["adam", "sgd", "lbfgs", "newton"],
    "alpha": [0, 0.0, 1e-4, -1e-9, np.nan, np.inf, np.float32(0.5), True, "0.1"],
    "batch_size": ["auto", 1, 0, 200, np.int64(3), 2.0, "all", None, True],
    "learning_rate": ["constant", "adaptive", "fast"],
    "learning_rate_init": [0.0, 1e-3, -1.0, np.inf, np.nan, 1],
    "power_t": [0.0, 0.5, -0.1, np.inf],
    "max_iter": [1, 0, 10, np.int32(5), 1.5, np.inf, False],
    "shuffle": [True, False, np.bool_(True), 1, None],
    "random_state": [None, 0, 2**32 - 1, 2**32, -1, np.random.RandomState(0),
                     np.random.default_rng(0), 1.0],
    "tol": [0.0, 1e-4, -1e-4, np.nan],
    "verbose": [False, True, 0, 3, -1, np.bool_(False), 1.0],
    "warm_start": [False, "yes"],
    "momentum": [0.0, 0.9, 1.0, 1.1, -0.1, 1],
    "nesterovs_momentum": [True, 0],
    "early_stopping": [False, None],
    "validation_fraction": [0.0, 0.1, 1.0, 1, -0.1],
    "beta_1": [0.0, 0.9, 1.0, np.nan],
    "beta_2": [0.999, 1.0, -0.5],
    "epsilon": [1e-8, 0.0, 0, np.inf, -1e-8],
    "n_iter_no_change": [10, 0, np.inf, -np.inf, 2.5, np.float64(np.inf)],
    "max_fun": [15000, 0, 1.0],
    "loss": ["squared_error", "poisson", "absolute_error", "log_loss"],
}


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("name", sorted(_PARAMETER_VALUES))
def test_parameter_validation_matches_sklearn(estimator, name):
    """Oracle: scikit-learn's validate_parameter_constraints on the same
    parameters: mlpfast's _validate_params (constraint objects built once per
    class) raises where it raises, with the same message, and only there."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    cls = getattr(mlpfast, estimator)
    for value in _PARAMETER_VALUES[name]:
        est = cls()
        if name not in est.get_params():
            continue
        est.set_params(**{name: value})
        outcomes = []
        for validate in (
            est._validate_params,
            lambda: validate_parameter_constraints(
                cls._parameter_constraints, est.get_params(deep=False), cls.__name__),
        ):
            try:
                validate()
                outcomes.append(None)
            except InvalidParameterError as error:
                outcomes.append(_normalised(str(error)))
        assert outcomes[0] == outcomes[1], (name, value)


_N = X.shape[0]
_FIT_INPUTS = {
    "int y": (X, y),
    "bool y": (X, y == 1),
    "uint8 y": (X, y.astype(np.uint8)),
    "float32 X, float y": (X.astype(np.float32), y.astype(float)),
    "Fortran X": (np.asfortranarray(X), y),
    "float16 y": (X, y.astype(np.float16)),
    "2-column y": (X, np.c_[y, y]),
    "1-column y": (X, y[:, None]),
    "0-column y": (X, np.empty((_N, 0))),
    "3-D y": (X, y[:, None, None]),
    "0-D y": (X, np.array(1.0)),
    "y with NaN": (X, np.where(y > 1, np.nan, y)),
    "y with infinity": (X, np.where(y > 1, np.inf, y)),
    "short y": (X, y[:-1]),
    "list y": (X, list(y)),
    "string y": (X, y.astype(str)),
    "object y": (X, y.astype(object)),
    "complex y": (X, y.astype(complex)),
    "big-endian X": (X.astype(">f8"), y),
    "big-endian y": (X, y.astype(">f8")),
    "empty X": (X[:0], y[:0]),
    "0-column X": (X[:, :0], y),
    "int X": (X.astype(np.int64), y),
}


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("fitted_with_names", [False, True], ids=["new", "named"])
@pytest.mark.parametrize("reset", [True, False], ids=["fit", "partial_fit"])
@pytest.mark.parametrize("case", sorted(_FIT_INPUTS))
def test_fit_input_validation_matches_validate_data(estimator, fitted_with_names, reset, case):
    """Oracle: scikit-learn's validate_data with the fit's arguments: the same
    arrays back (values, dtype, shape), the same n_features_in_ and feature
    names afterwards, the same error or warnings (reset=False: a partial_fit
    after a fit on a 4-column DataFrame, or on a new estimator)."""
    import pandas as pd
    from sklearn.utils.validation import validate_data

    from mlpfast._multilayer_perceptron import _validate_fit_data

    Xc, yc = _FIT_INPUTS[case]
    params = dict(accept_sparse=["csr", "csc"], multi_output=True,
                  dtype=(np.float64, np.float32), reset=reset)
    if estimator == "MLPRegressor":
        params["y_numeric"] = True
    results = []
    for validate in (_validate_fit_data, validate_data):
        est = getattr(mlpfast, estimator)()
        if fitted_with_names:  # what a fit on a DataFrame leaves behind
            validate_data(est, pd.DataFrame(X, columns=list("abcd")), y)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                Xv, yv = validate(est, Xc, yc, **params)
                outcome = (np.asarray(Xv).tolist(), Xv.dtype, np.asarray(yv).tolist(), yv.dtype)
            except (ValueError, TypeError) as error:
                outcome = (type(error), _normalised(str(error)))
        results.append((outcome, getattr(est, "n_features_in_", None),
                        hasattr(est, "feature_names_in_"),
                        [str(w.message) for w in caught]))
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("where", [0, 70000, -1], ids=["first", "second-chunk", "last"])
def test_large_x_checked_on_threads_raises_as_validate_data(monkeypatch, dtype, bad, where):
    """Oracle: scikit-learn's validate_data. X at or above the size from which
    the fit's NaN/infinity check is threaded (lowered here, so that a small X
    spans several of the check's chunks) gets validate_data's error wherever
    the bad value lies, and finite X passes the check."""
    from threadpoolctl import threadpool_limits
    from sklearn.utils.validation import validate_data

    from mlpfast import _multilayer_perceptron as M

    monkeypatch.setattr(M, "_FINITE_MIN_VALUES_THREADED", 1)
    Xl = np.random.default_rng(0).standard_normal((4000, 50)).astype(dtype)
    yl = np.arange(4000) % 3
    params = dict(multi_output=True, dtype=(np.float64, np.float32), reset=True)
    with threadpool_limits(2, user_api="openmp"):
        Xv, _ = M._validate_fit_data(mlpfast.MLPClassifier(), Xl, yl, **params)
        np.testing.assert_array_equal(Xv, Xl)
        Xl.reshape(-1)[where] = bad
        with pytest.raises(ValueError) as expected:
            validate_data(mlpfast.MLPClassifier(), Xl, yl, **params)
        with pytest.raises(ValueError) as ours:
            M._validate_fit_data(mlpfast.MLPClassifier(), Xl, yl, **params)
    assert str(ours.value) == str(expected.value)


def test_big_endian_data_fits_and_predicts_like_native():
    """Oracle: scikit-learn converts big-endian X to native floats, so the fit
    on it equals the fit on the native copy, and so do predictions from it."""
    models = [mlpfast.MLPClassifier(max_iter=3, random_state=0) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models[0].fit(X.astype(">f8"), y)
        models[1].fit(X, y)
    for ours, native in zip(models[0].coefs_, models[1].coefs_):
        np.testing.assert_array_equal(ours, native)
    for dtype in (">f8", ">f4"):
        np.testing.assert_array_equal(models[1].predict_proba(X.astype(dtype)),
                                      models[1].predict_proba(X.astype(dtype[1:])))
    X_bad = X.astype(">f8")
    X_bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        models[1].predict(X_bad)
