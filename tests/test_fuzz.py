"""Random small problems, fitted by mlpfast and by scikit-learn, must agree.

Oracle: sklearn.neural_network's MLPClassifier / MLPRegressor, called the same
way (same parameters, same random_state, same calls in the same order, on
copies of the same arrays). Hypothesis draws the problem and the calls; both
estimators either raise the same exception type at the same call, or both
succeed and give the same predictions, probabilities and training curves.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import neural_network as sk

import mlpfast

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

TASKS = ["binary", "multiclass", "multilabel", "regression", "regression2"]
SOLVERS = ["sgd", "adam", "lbfgs"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
N_TEST = 9


@st.composite
def cases(draw):
    """One fuzz case: the problem, the estimator's parameters, the calls."""
    task = draw(st.sampled_from(TASKS))
    solver = draw(st.sampled_from(SOLVERS))
    n_samples = draw(st.integers(5, 80))
    params = dict(
        hidden_layer_sizes=tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        solver=solver,
        alpha=draw(st.sampled_from([1e-4, 0.0, 0.1])),
        batch_size=draw(st.one_of(st.just("auto"), st.integers(1, 100))),
        learning_rate_init=draw(st.sampled_from([1e-3, 1e-2, 0.1])),
        max_iter=draw(st.integers(1, 6)),
        shuffle=draw(st.booleans()),
        tol=draw(st.sampled_from([1e-4, 0.0])),
        n_iter_no_change=draw(st.sampled_from([10, 2])),
        early_stopping=draw(st.sampled_from([False, False, True])),
        warm_start=draw(st.booleans()),
        random_state=draw(st.integers(0, 2**16)),
    )
    if solver == "sgd":
        params.update(
            learning_rate=draw(st.sampled_from(["constant", "invscaling", "adaptive"])),
            momentum=draw(st.sampled_from([0.9, 0.0])),
            nesterovs_momentum=draw(st.booleans()),
        )
    if task.startswith("regression"):
        params["loss"] = draw(st.sampled_from(["squared_error", "poisson"]))
    # Each call: fit or partial_fit (sgd and adam; lbfgs regressors too, as
    # in scikit-learn 1.9), on all rows or a random subset, in the case's
    # dtype or the other float dtype (warm starts and partial_fit keep the
    # dtype of the first fit in scikit-learn).
    calls = ["fit"] if solver == "lbfgs" and task not in ("regression", "regression2") \
        else ["fit", "partial_fit"]
    step = st.tuples(st.sampled_from(calls),
                     st.sampled_from(["all", "subset"]),
                     st.sampled_from(["same", "same", "same", "other"]))
    steps = [(draw(st.sampled_from(calls)), draw(st.sampled_from(["all", "subset"])), "same")]
    steps += draw(st.lists(step, max_size=3))
    return dict(
        task=task,
        n_samples=n_samples,
        n_features=draw(st.integers(1, 6)),
        n_outputs=draw(st.integers(3, 4)) if task in ("multiclass", "multilabel") else 2,
        string_labels=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float64, np.float32])),
        sparse=draw(st.booleans()),
        # None; all positive; or each weight zero with this probability (with
        # few rows, or batch_size 1, whole batches, even all rows, get zero weight).
        weights=draw(st.sampled_from([None, 0.0, 0.2, 0.5, 0.9])),
        predict_dtype=draw(st.sampled_from(["same", "same", "other", "longdouble"])),
        params=params,
        steps=steps,
        data_seed=draw(st.integers(0, 2**16)),
    )


def _other(dtype):
    return np.float32 if dtype == np.float64 else np.float64


def _as(X, dtype, sparse):
    X = X.astype(dtype)
    return sp.csr_matrix(X) if sparse else X


def _problem(case):
    """The arrays of a case: X, y, sample weights, each call's rows, the test X."""
    rng = np.random.RandomState(case["data_seed"])
    n, d, k = case["n_samples"], case["n_features"], case["n_outputs"]
    X = rng.normal(size=(n, d))
    if case["sparse"]:
        X[rng.uniform(size=X.shape) < 0.4] = 0.0
    score = X @ rng.normal(size=(d, k)) + 0.5 * rng.normal(size=(n, k))
    task = case["task"]
    if task == "binary":
        y = (score[:, 0] > 0).astype(int)
    elif task == "multiclass":
        y = score.argmax(axis=1)
    elif task == "multilabel":
        y = (score > 0).astype(int)
    else:
        y = score[:, 0] if task == "regression" else score[:, :2]
        if case["params"]["loss"] == "poisson":
            y = np.exp(y / 2)
    if case["string_labels"] and task in ("binary", "multiclass"):
        y = np.array(["label_" + str(label) for label in y])
    weights = None
    if case["weights"] is not None:
        weights = rng.uniform(0.1, 3.0, n)
        weights[rng.uniform(size=n) < case["weights"]] = 0.0
    rows = [np.arange(n) if which == "all" else
            np.sort(rng.choice(n, size=rng.randint(1, n + 1), replace=False))
            for _, which, _ in case["steps"]]
    X_test = rng.normal(size=(N_TEST, d))
    return X, y, weights, rows, X_test


def _outcome(module, case):
    """Run the case's calls on `module`'s estimator: ("raised", call, type) or
    ("ok", results)."""
    X, y, weights, rows, X_test = _problem(case)
    dtype = case["dtype"]
    regressor = case["task"].startswith("regression")
    est = (module.MLPRegressor if regressor else module.MLPClassifier)(**case["params"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, ((call, _, which_dtype), idx) in enumerate(zip(case["steps"], rows)):
            X_call = _as(X[idx], dtype if which_dtype == "same" else _other(dtype),
                         case["sparse"])
            kwargs = {} if weights is None else {"sample_weight": weights[idx]}
            if call == "partial_fit" and not regressor and i == 0:
                kwargs["classes"] = np.unique(y) if y.ndim == 1 else np.arange(y.shape[1])
            try:
                getattr(est, call)(X_call, y[idx].copy(), **kwargs)
            except Exception as error:  # noqa: BLE001 - the type is what is compared
                return ("raised", f"call {i}: {call}", type(error))
        if case["predict_dtype"] == "longdouble":
            T = X_test.astype(np.longdouble)
        else:
            T = _as(X_test, dtype if case["predict_dtype"] == "same" else _other(dtype),
                    case["sparse"])
        results = {}
        try:
            results["predict"] = est.predict(T)
            if not regressor:
                results["predict_proba"] = est.predict_proba(T)
        except Exception as error:  # noqa: BLE001
            return ("raised", "predict", type(error))
    results["coef_dtype"] = est.coefs_[0].dtype
    results["n_iter_"] = est.n_iter_
    results["loss_curve_"] = getattr(est, "loss_curve_", None)
    results["validation_scores_"] = getattr(est, "validation_scores_", None)
    return ("ok", results)


def _relative_gap(a, b):
    """Largest difference between two runs' curves and outputs, relative to b
    (with a floor of 1e-3 of b's largest magnitude, as the atol below)."""
    gap = 0.0
    for name in ("loss_curve_", "validation_scores_", "predict_proba", "predict"):
        if name == "predict" and "predict_proba" in b:
            continue  # labels
        x, y = a.get(name), b.get(name)
        if x is None or y is None or np.shape(x) != np.shape(y) or len(y) == 0:
            continue
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        floor = 1e-3 * max(1.0, np.abs(y).max())
        gap = max(gap, (np.abs(x - y) / np.maximum(np.abs(y), floor)).max())
    return gap


def _assert_same(ours, theirs, rtol, exact_labels, same_n_iter=True):
    """Both runs succeeded; compare what they left behind to relative tolerance
    rtol; labels exactly, or else everywhere but where scikit-learn's own
    decision is within rtol of a tie (top-two probabilities, or a multilabel
    probability and 0.5)."""
    assert ours["coef_dtype"] == theirs["coef_dtype"]
    if same_n_iter:
        assert ours["n_iter_"] == theirs["n_iter_"]
    for curve in ("loss_curve_", "validation_scores_"):
        assert (ours[curve] is None) == (theirs[curve] is None), curve
        if theirs[curve] is not None:
            assert len(ours[curve]) == len(theirs[curve]), curve
            np.testing.assert_allclose(ours[curve], theirs[curve], rtol=rtol, err_msg=curve)
    for output in ("predict", "predict_proba"):
        if output in theirs:
            assert ours[output].dtype == theirs[output].dtype, output
            assert ours[output].shape == theirs[output].shape, output
    if "predict_proba" not in theirs:  # regressor
        scale = max(1.0, np.abs(theirs["predict"]).max())
        np.testing.assert_allclose(ours["predict"], theirs["predict"], rtol=rtol,
                                   atol=rtol * 1e-3 * scale)
        return
    proba = theirs["predict_proba"].astype(np.float64)
    np.testing.assert_allclose(ours["predict_proba"], proba, rtol=rtol, atol=rtol * 1e-3)
    same = ours["predict"] == theirs["predict"]
    if exact_labels:
        assert same.all()
        return
    if proba.shape[1] > 1 and theirs["predict"].ndim == 1:  # multiclass or binary
        top2 = np.sort(proba, axis=1)[:, -2:]
        near_tie = (top2[:, 1] - top2[:, 0]) < 2 * rtol
    else:
        near_tie = np.abs(proba - 0.5) < rtol
        if theirs["predict"].ndim == 1:
            near_tie = near_tie[:, 0]
    assert (same | near_tie).all()


def _float64_twin(case):
    """The same case with every array in float64."""
    steps = [(call, rows, "same") for call, rows, _ in case["steps"]]
    return dict(case, dtype=np.float64, steps=steps, predict_dtype="same")


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_random_problem_matches_sklearn(case):
    """Oracle: scikit-learn's estimator on the same random problem and calls."""
    theirs = _outcome(sk, case)
    ours = _outcome(mlpfast, case)
    if theirs[0] == "raised" or ours[0] == "raised":
        assert ours == theirs
        return
    # scikit-learn computes activations and gradients in the dtype of each
    # call's X (even for lbfgs, and after a first fit in the other dtype).
    dtypes = {case["dtype"] if which == "same" else _other(case["dtype"])
              for _, _, which in case["steps"]}
    if dtypes == {np.float64}:
        # Every intermediate agrees to rounding: curves, probabilities and
        # regression outputs to rtol 1e-6, labels exactly.
        _assert_same(ours[1], theirs[1], rtol=1e-6, exact_labels=True)
        return
    # float32: sums in another order differ in their last bits, which over
    # these few epochs of sgd or adam stays well below rtol 1e-3; a wrong
    # float32 path, batch or update rule moves losses and outputs by far more.
    # Small errors are the float64 draws' to catch.
    rtol, same_n_iter = 1e-3, True
    if case["params"]["solver"] == "lbfgs":
        # L-BFGS's line searches can amplify float32 rounding a thousandfold on
        # ill-conditioned draws (few effective samples, zero weights). How much
        # is measured by scikit-learn's own float32 run against its float64 run
        # of the same case; ten times that is allowed where it exceeds 1e-3.
        twin = _outcome(sk, _float64_twin(case))
        if twin[0] == "ok":
            rtol = max(rtol, 10 * _relative_gap(twin[1], theirs[1]))
        # beyond 1e-2 the comparison would check little: such a draw is dropped
        assume(rtol <= 1e-2)
        # SciPy stops L-BFGS early when the loss stops falling by more than
        # about 1e-9 relative, which float32 rounding alone decides.
        same_n_iter = False
    _assert_same(ours[1], theirs[1], rtol=rtol, exact_labels=False, same_n_iter=same_n_iter)
