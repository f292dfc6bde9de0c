"""Fit and predict time of mlpfast against scikit-learn, peers in the same session.

Every case is run in float32 and float64. For each (case, dtype) four benchmarks
run back to back and land in two pytest-benchmark groups:

* ``<case>-<dtype>-fit``: ``MLPClassifier(...).fit(X, y)`` of mlpfast and of
  ``sklearn.neural_network``, identical parameters, a fixed number of epochs
  (``tol=0`` and a large ``n_iter_no_change`` so neither stops early);
* ``<case>-<dtype>-predict``: ``predict(X)`` on the training X of the two models
  fitted above.

Validate, then time: before an mlpfast benchmark is timed, mlpfast's fit is checked
against scikit-learn's fit from the same ``random_state``: same number of epochs,
dtype preserved, ``loss_curve_`` equal to rtol 1e-6 in float64 / 1e-3 in float32;
predict_proba equal to scikit-learn's forward pass on mlpfast's own weights (atol
1e-10 / 1e-5) and close to scikit-learn's fitted model (atol 1e-6 / 5e-2); labels
equal to both except on near-ties. After timing, the result of the last timed call
is checked again. A failed check fails the benchmark (it is not timed).

Run from the repository root (``bench/conftest.py`` makes pytest collect this file)::

    pytest bench/ --benchmark-only --benchmark-json=bench/results.json
    python bench/report.py --json bench/results.json
"""

import copy
import dataclasses
import functools
import os
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

IMPLS = ("mlpfast", "sklearn")
DTYPES = ("float32", "float64")
SEED = 0

# loss_curve_ agreement asked of mlpfast's fit (relative), by dtype.
LOSS_RTOL = {"float64": 1e-6, "float32": 1e-3}
# predict_proba of mlpfast against scikit-learn's forward pass on mlpfast's own
# fitted weights (absolute), by dtype: this isolates predict.
SAME_WEIGHTS_ATOL = {"float64": 1e-10, "float32": 1e-5}
# predict_proba of mlpfast's fit against scikit-learn's fit (absolute), by dtype.
# float32 training is not reproducible to better than this even for scikit-learn
# itself: on the mnist case, scikit-learn's float32 fit with 1 BLAS thread and
# with 2 differ by 2.3e-2 in predict_proba and in 114 of 20000 labels (mlpfast's
# results do not depend on the thread count).
END_TO_END_ATOL = {"float64": 1e-6, "float32": 5e-2}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    hidden_layer_sizes: tuple
    batch_size: int
    epochs: int
    fit_rounds: dict  # impl -> rounds
    predict_rounds: int  # 0: no predict benchmark for this case
    regression: bool = False  # MLPRegressor instead of MLPClassifier
    activation: str = "relu"  # of the hidden layers


_SMALL = Case(
    name="small",
    description="load_digits 1797x64 (X/16), 10 classes",
    hidden_layer_sizes=(100,),
    batch_size=200,
    epochs=10,
    fit_rounds={"mlpfast": 30, "sklearn": 20, "torch": 20, "floor": 30},
    predict_rounds=100,
)

CASES = {
    "small": _SMALL,
    "tanh": dataclasses.replace(
        _SMALL,
        name="tanh",
        description="the small case with activation='tanh'",
        predict_rounds=0,
        activation="tanh",
    ),
    "mnist": Case(
        name="mnist",
        description="make_classification 20000x784, 10 classes, 50 informative, standardised",
        hidden_layer_sizes=(256, 256),
        batch_size=256,
        epochs=2,
        fit_rounds={"mlpfast": 7, "sklearn": 5, "torch": 5, "floor": 7},
        predict_rounds=15,
    ),
    "tabular": Case(
        name="tabular",
        description="make_classification 40000x54, 7 classes, 20 informative, standardised",
        hidden_layer_sizes=(64, 64),
        batch_size=128,
        # 1 epoch: after 2, float32 fits of mlpfast and scikit-learn drift apart by
        # 0.051 in predict_proba on one row of 40000 (above END_TO_END_ATOL).
        epochs=1,
        fit_rounds={"mlpfast": 10, "sklearn": 7, "torch": 7, "floor": 10},
        predict_rounds=0,
    ),
    "wide": Case(
        name="wide",
        description="make_classification 20000x784, 10 classes, 50 informative, standardised",
        hidden_layer_sizes=(512, 512),
        batch_size=512,
        epochs=1,
        fit_rounds={"mlpfast": 7, "sklearn": 5, "torch": 5, "floor": 7},
        predict_rounds=0,
    ),
    "regression": Case(
        name="regression",
        description="make_regression 20000x100, 1 target, 30 informative, noise 10, X and y standardised",
        hidden_layer_sizes=(128,),
        batch_size=200,
        epochs=3,
        fit_rounds={"mlpfast": 7, "sklearn": 5, "torch": 5, "floor": 7},
        predict_rounds=0,
        regression=True,
    ),
}


# ---------------------------------------------------------------- data


@functools.cache
def _data64(case_name):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.preprocessing import StandardScaler

    if case_name in ("small", "tanh"):  # the same data, the hidden activation differs
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    elif case_name in ("mnist", "wide"):
        # The same data: the two cases differ by the network and the batch size.
        X, y = make_classification(
            n_samples=20000,
            n_features=784,
            n_informative=50,
            n_redundant=0,
            n_classes=10,
            random_state=SEED,
        )
        X = StandardScaler().fit_transform(X)
    elif case_name == "tabular":
        X, y = make_classification(
            n_samples=40000,
            n_features=54,
            n_informative=20,
            n_redundant=0,
            n_classes=7,
            random_state=SEED,
        )
        X = StandardScaler().fit_transform(X)
    elif case_name == "regression":
        X, y = make_regression(
            n_samples=20000, n_features=100, n_informative=30, noise=10.0,
            random_state=SEED,
        )
        X = StandardScaler().fit_transform(X)
        y = (y - y.mean()) / y.std()
    else:
        raise KeyError(case_name)
    return np.ascontiguousarray(X, dtype=np.float64), y


@functools.cache
def data(case_name, dtype):
    X, y = _data64(case_name)
    X = np.ascontiguousarray(X, dtype=dtype)
    X.setflags(write=False)
    if CASES[case_name].regression:
        y = np.ascontiguousarray(y, dtype=dtype)
        y.setflags(write=False)  # neither estimator may modify it between rounds
    return X, y


# ---------------------------------------------------------------- estimators


def estimator_class(impl, regression=False):
    if impl == "mlpfast":
        import mlpfast as module
    elif impl == "sklearn":
        import sklearn.neural_network as module
    else:
        raise KeyError(impl)
    return module.MLPRegressor if regression else module.MLPClassifier


def make_estimator(impl, case):
    return estimator_class(impl, case.regression)(
        hidden_layer_sizes=case.hidden_layer_sizes,
        activation=case.activation,
        solver="adam",
        batch_size=case.batch_size,
        max_iter=case.epochs,
        tol=0.0,
        n_iter_no_change=10_000,
        shuffle=True,
        early_stopping=False,
        random_state=SEED,
    )


# ---------------------------------------------------------------- quiet start

# A BLAS thread pool keeps its workers spinning after a product: numpy's OpenBLAS
# workers burn about 0.12 s of CPU after one threaded matmul, and lowering the
# thread count (threadpoolctl) does not stop them. On 2 cores that takes half the
# machine from whichever peer runs next (measured: a float32 MNIST-shaped epoch
# of mlpfast right after the GEMM floor took 238-266 ms instead of 187-205 ms).
# Every timed fit therefore starts once the other threads of the process are idle.
SETTLE_TIMEOUT = 1.0  # seconds
SETTLE_WINDOW = 0.05  # seconds without CPU use by another thread


def _other_threads_cpu_ticks():
    """CPU time (clock ticks) used so far by the threads of this process other
    than the calling one, or None where /proc is not available."""
    me = str(threading.get_native_id())
    total = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            if tid == me:
                continue
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
    except OSError:
        return None
    return total


def _machine_busy_ticks():
    """Clock ticks every CPU of the machine has spent busy so far (user, nice,
    system, interrupts, steal; /proc/stat), or None where it is not available."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _, _, irq, softirq, steal = map(int, f.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return user + nice + system + irq + softirq + steal


def _wait_still(ticks):
    """Wait (untimed) until ticks() has not moved for ``SETTLE_WINDOW`` seconds,
    at most ``SETTLE_TIMEOUT``; where it is None, sleep ``SETTLE_TIMEOUT / 4``."""
    before = ticks()
    if before is None:
        time.sleep(SETTLE_TIMEOUT / 4)
        return
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW)
        now = ticks()
        if now == before:
            return
        before = now


def settle():
    """Wait until no other thread of this process has used CPU for a while
    (``_wait_still``)."""
    _wait_still(_other_threads_cpu_ticks)


def settle_machine():
    """settle(), after waiting the same way for every CPU of the machine to be
    idle: for timings that alternate between processes, whose OpenMP threads
    spin for a while after their work."""
    _wait_still(_machine_busy_ticks)
    settle()


def fit(impl, case, X, y):
    """One timed unit: build the estimator and fit it for ``case.epochs`` epochs."""
    est = make_estimator(impl, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


@functools.cache
def fitted(impl, case_name, dtype):
    """The validation fit, shared by the fit and predict benchmarks of the session."""
    X, y = data(case_name, dtype)
    return fit(impl, CASES[case_name], X, y)


# ---------------------------------------------------------------- checks


def check_ran_all_epochs(est, case, n_samples, dtype):
    assert est.n_iter_ == case.epochs, f"n_iter_={est.n_iter_}, expected {case.epochs}"
    assert len(est.loss_curve_) == case.epochs
    assert est.t_ == case.epochs * n_samples, f"t_={est.t_}"
    for coef, intercept in zip(est.coefs_, est.intercepts_):
        assert coef.dtype == np.dtype(dtype), f"coefs_ dtype {coef.dtype}, X dtype {dtype}"
        assert intercept.dtype == np.dtype(dtype), f"intercepts_ dtype {intercept.dtype}"
    assert np.all(np.isfinite(est.loss_curve_))


def check_labels(labels, ref_labels, ref_proba, atol):
    """Labels equal, except where the reference's two best classes are within ``2 * atol``
    (so a probability error within ``atol`` may flip them)."""
    labels = np.asarray(labels)
    differ = labels != ref_labels
    if not differ.any():
        return
    top2 = np.sort(ref_proba, axis=1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0]) <= 2 * atol
    bad = differ & ~near_tie
    assert not bad.any(), (
        f"{bad.sum()} of {len(labels)} predicted labels differ from scikit-learn's "
        f"away from a near-tie (first at rows {np.flatnonzero(bad)[:10].tolist()})"
    )


def validate(impl, case_name, dtype):
    """Check ``impl``'s validation fit; raises AssertionError when it is wrong.

    scikit-learn is the reference: it is only checked to have run every epoch in
    ``dtype``. mlpfast is checked against it: its fit by ``loss_curve_``, its
    predict against scikit-learn's forward pass on mlpfast's weights, and both
    end to end against scikit-learn's fit from the same ``random_state``.
    """
    case = CASES[case_name]
    X, y = data(case_name, dtype)
    ref = fitted("sklearn", case_name, dtype)
    check_ran_all_epochs(ref, case, X.shape[0], dtype)
    if impl == "sklearn":
        return

    est = fitted(impl, case_name, dtype)
    check_ran_all_epochs(est, case, X.shape[0], dtype)
    if not case.regression:
        assert_array_equal(est.classes_, ref.classes_)
    assert [c.shape for c in est.coefs_] == [c.shape for c in ref.coefs_]
    assert_allclose(
        est.loss_curve_, ref.loss_curve_, rtol=LOSS_RTOL[dtype],
        err_msg=f"{impl} loss_curve_ differs from scikit-learn's",
    )

    proba, labels = outputs(est, X)
    assert proba.dtype == np.dtype(dtype), f"predict_proba/predict dtype {proba.dtype}"

    oracle_proba, oracle_labels = same_weights_oracle(impl, case_name, dtype)
    assert_allclose(
        proba, oracle_proba, rtol=0, atol=SAME_WEIGHTS_ATOL[dtype],
        err_msg=f"{impl} output differs from scikit-learn's on the same weights",
    )
    ref_proba, ref_labels = outputs(ref, X)
    assert_allclose(
        proba, ref_proba, rtol=0, atol=END_TO_END_ATOL[dtype],
        err_msg=f"{impl} output differs from scikit-learn's fit",
    )
    if not case.regression:
        check_labels(labels, oracle_labels, oracle_proba, SAME_WEIGHTS_ATOL[dtype])
        check_labels(labels, ref_labels, ref_proba, END_TO_END_ATOL[dtype])


def outputs(est, X):
    """(predict_proba, predict) of a classifier; (predict, None) of a regressor
    (the targets of the regression case are standardised, so absolute tolerances
    mean the same thing as for probabilities)."""
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X), est.predict(X)
    return est.predict(X), None


@functools.cache
def same_weights_oracle(impl, case_name, dtype):
    """scikit-learn's outputs on X with ``impl``'s fitted weights (see ``outputs``)."""
    X, _ = data(case_name, dtype)
    est = fitted(impl, case_name, dtype)
    oracle = copy.deepcopy(fitted("sklearn", case_name, dtype))
    oracle.coefs_ = [np.array(c) for c in est.coefs_]
    oracle.intercepts_ = [np.array(b) for b in est.intercepts_]
    return outputs(oracle, X)


@functools.cache
def _validation_error(impl, case_name, dtype):
    """``validate``'s exception or None, once per (impl, case, dtype) and session."""
    try:
        validate(impl, case_name, dtype)
    except Exception as exc:  # noqa: BLE001  (cached so later benchmarks fail the same way)
        return exc
    return None


def require_valid(impl, case_name, dtype):
    exc = _validation_error(impl, case_name, dtype)
    if exc is not None:
        raise AssertionError(f"validation failed, not timed: {exc}") from exc


# ---------------------------------------------------------------- benchmarks


def _params(op="fit"):
    # Peers adjacent: for each case and dtype, mlpfast then sklearn.
    return [
        pytest.param(case_name, dtype, impl, id=f"{case_name}-{dtype}-{impl}")
        for case_name, case in CASES.items()
        if op == "fit" or case.predict_rounds
        for dtype in DTYPES
        for impl in IMPLS
    ]


def _label(benchmark, op, case, dtype, impl, X, rounds):
    benchmark.group = f"{case.name}-{dtype}-{op}"
    benchmark.extra_info.update(
        op=op,
        case=case.name,
        dtype=dtype,
        impl=impl,
        description=case.description,
        n_samples=X.shape[0],
        n_features=X.shape[1],
        hidden_layer_sizes=list(case.hidden_layer_sizes),
        batch_size=case.batch_size,
        epochs=case.epochs,
        solver="adam",
        estimator="MLPRegressor" if case.regression else "MLPClassifier",
        rounds=rounds,
    )


@pytest.mark.parametrize("case_name, dtype, impl", _params())
def test_fit(benchmark, case_name, dtype, impl):
    case = CASES[case_name]
    X, y = data(case_name, dtype)
    rounds = case.fit_rounds[impl]
    _label(benchmark, "fit", case, dtype, impl, X, rounds)

    require_valid(impl, case_name, dtype)
    est = benchmark.pedantic(fit, args=(impl, case, X, y), setup=settle, rounds=rounds,
                             iterations=1, warmup_rounds=1)

    # The timed fits did the validated work (fits are deterministic given random_state).
    check_ran_all_epochs(est, case, X.shape[0], dtype)
    assert_allclose(est.loss_curve_, fitted(impl, case_name, dtype).loss_curve_,
                    rtol=LOSS_RTOL[dtype], err_msg="timed fit differs from the validated fit")


@pytest.mark.parametrize("case_name, dtype, impl", _params("predict"))
def test_predict(benchmark, case_name, dtype, impl):
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    rounds = case.predict_rounds
    _label(benchmark, "predict", case, dtype, impl, X, rounds)

    require_valid(impl, case_name, dtype)
    est = fitted(impl, case_name, dtype)
    labels = benchmark.pedantic(est.predict, args=(X,), rounds=rounds, iterations=1,
                                warmup_rounds=1)

    # What the timed calls returned is what was validated.
    if impl == "sklearn":
        assert_array_equal(labels, est.predict(X))
    else:
        oracle_proba, oracle_labels = same_weights_oracle(impl, case_name, dtype)
        if case.regression:
            assert_allclose(labels, oracle_proba, rtol=0, atol=SAME_WEIGHTS_ATOL[dtype])
        else:
            check_labels(labels, oracle_labels, oracle_proba, SAME_WEIGHTS_ATOL[dtype])
