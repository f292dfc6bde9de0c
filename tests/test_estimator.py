"""MLPClassifier / MLPRegressor against scikit-learn's own estimators.

Oracle throughout: sklearn.neural_network's estimator fitted on the same data
with the same parameters (and so the same random draws), or, where stated,
from the same starting weights.
"""

import contextlib
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController, threadpool_limits

import mlpfast
from mlpfast import MLPClassifier, MLPRegressor, _engine

# Long enough to compare trajectories, short enough for CI.
EPOCHS = 20
NO_STOP = dict(tol=0.0, n_iter_no_change=10_000)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, random_state=0)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=600, n_features=12, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return train_test_split(X, y, random_state=0)


def _fit_pair(ours, theirs, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    return ours, theirs


def _assert_same_params(ours, theirs, rtol):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_epoch_from_identical_weights_matches_sklearn(digits, solver, dtype):
    """Oracle: sklearn's estimator, one epoch from the same hand-set starting weights."""
    X_train, _, y_train, _ = digits
    X = X_train.astype(dtype)
    rng = np.random.RandomState(42)
    params = dict(hidden_layer_sizes=(32, 16), solver=solver, max_iter=1, shuffle=False,
                  warm_start=True, learning_rate_init=0.01, random_state=0, **NO_STOP)
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    _fit_pair(ours, theirs, X, y_train)  # sets up classes_ and shapes
    for model in (ours, theirs):
        model.coefs_ = [rng.uniform(-0.3, 0.3, c.shape).astype(dtype) for c in theirs.coefs_]
        model.intercepts_ = [rng.uniform(-0.3, 0.3, b.shape).astype(dtype)
                             for b in theirs.intercepts_]
        rng = np.random.RandomState(42)
    _fit_pair(ours, theirs, X, y_train)
    _assert_same_params(ours, theirs, rtol=1e-10 if dtype == np.float64 else 2e-5)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-10 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize(
    "solver, activation, extra",
    [
        ("adam", "relu", {}),
        ("adam", "tanh", {"alpha": 1e-2}),
        ("sgd", "logistic", {"learning_rate_init": 0.1}),
        ("sgd", "relu", {"learning_rate": "invscaling", "learning_rate_init": 0.05,
                         "nesterovs_momentum": False}),
        ("sgd", "identity", {"momentum": 0.0, "learning_rate_init": 0.01}),
        ("lbfgs", "tanh", {}),
        ("lbfgs", "relu", {"alpha": 1e-3}),
    ],
)
def test_same_seed_same_trajectory_classifier(digits, solver, activation, extra):
    """Oracle: sklearn's MLPClassifier with the same random_state, EPOCHS epochs, float64."""
    X_train, X_test, y_train, _ = digits
    params = dict(hidden_layer_sizes=(40,), solver=solver, activation=activation,
                  max_iter=EPOCHS, random_state=3, **NO_STOP, **extra)
    ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params),
                             X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
        assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    _assert_same_params(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_same_seed_same_trajectory_regressor(regression, solver, loss):
    """Oracle: sklearn's MLPRegressor with the same random_state, float64."""
    X_train, _, y_train, _ = regression
    y = np.exp(y_train / 2) if loss == "poisson" else y_train
    params = dict(hidden_layer_sizes=(20, 10), solver=solver, loss=loss, max_iter=EPOCHS,
                  random_state=1, learning_rate_init=1e-3 if solver == "sgd" else 1e-3,
                  **NO_STOP)
    ours, theirs = _fit_pair(MLPRegressor(**params), sk.MLPRegressor(**params), X_train, y)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    _assert_same_params(ours, theirs, rtol=1e-6)


def test_multioutput_regression_and_sample_weight_match_sklearn(regression):
    """Oracle: sklearn's MLPRegressor on two outputs with sample weights."""
    X_train, _, y_train, _ = regression
    Y = np.column_stack([y_train, -0.5 * y_train + 0.1])
    sw = np.random.RandomState(0).uniform(0.1, 2.0, X_train.shape[0])
    params = dict(hidden_layer_sizes=(16,), max_iter=EPOCHS, random_state=0, **NO_STOP)
    ours, theirs = MLPRegressor(**params), sk.MLPRegressor(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X_train, Y, sample_weight=sw)
        theirs.fit(X_train, Y, sample_weight=sw)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    _assert_same_params(ours, theirs, rtol=1e-6)


def test_binary_and_multilabel_match_sklearn(iris):
    """Oracle: sklearn's MLPClassifier on a binary and a multilabel target."""
    X_train, X_test, y_train, _ = iris
    y_binary = (y_train == 2).astype(int)
    y_multilabel = np.column_stack([y_train == 0, y_train == 2, y_train > 0]).astype(int)
    params = dict(hidden_layer_sizes=(10,), max_iter=EPOCHS, random_state=0,
                  learning_rate_init=0.01, **NO_STOP)
    for y in (y_binary, y_multilabel):
        ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params),
                                 X_train, y)
        assert ours.out_activation_ == theirs.out_activation_ == "logistic"
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
        np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
        np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test),
                                   rtol=1e-6)


@pytest.mark.parametrize("dataset, estimator", [
    ("digits", "classifier"), ("iris", "classifier"), ("regression", "regressor"),
])
def test_score_within_0_01_of_sklearn(request, dataset, estimator):
    """Oracle: sklearn's test accuracy / R^2 with default parameters (converged fits)."""
    X_train, X_test, y_train, y_test = request.getfixturevalue(dataset)
    ours_cls, their_cls = ((MLPClassifier, sk.MLPClassifier) if estimator == "classifier"
                           else (MLPRegressor, sk.MLPRegressor))
    params = dict(max_iter=300, random_state=0)
    ours, theirs = _fit_pair(ours_cls(**params), their_cls(**params), X_train, y_train)
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.01
    assert ours.score(X_test, y_test) > (0.9 if estimator == "classifier" else 0.8)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_float32_training(digits, solver):
    """Oracle: sklearn's dtype rules (float32 kept by sgd/adam; lbfgs computes in
    float32 and ends in float64) and its predictions on the same float32 data."""
    X_train, X_test, y_train, _ = digits
    X32, T32 = X_train.astype(np.float32), X_test.astype(np.float32)
    params = dict(hidden_layer_sizes=(30,), solver=solver, max_iter=10, random_state=0)
    ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params), X32, y_train)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        assert a.dtype == b.dtype
    assert ours.predict_proba(T32).dtype == theirs.predict_proba(T32).dtype
    np.testing.assert_allclose(ours.predict_proba(T32), theirs.predict_proba(T32),
                               atol=2e-3)


def test_warm_start_and_partial_fit_match_sklearn(digits):
    """Oracle: sklearn's warm_start continuation and partial_fit sequence."""
    X_train, _, y_train, _ = digits
    params = dict(hidden_layer_sizes=(20,), max_iter=3, random_state=0, warm_start=True,
                  **NO_STOP)
    ours, theirs = MLPClassifier(**params), sk.MLPClassifier(**params)
    for _ in range(3):
        _fit_pair(ours, theirs, X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_ == 3
    assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)

    classes = np.unique(y_train)
    ours, theirs = MLPClassifier(random_state=0), sk.MLPClassifier(random_state=0)
    for start in range(0, 600, 200):
        batch = slice(start, start + 200)
        ours.partial_fit(X_train[batch], y_train[batch], classes=classes)
        theirs.partial_fit(X_train[batch], y_train[batch], classes=classes)
    assert ours.n_iter_ == theirs.n_iter_ == 1
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    _assert_same_params(ours, theirs, rtol=1e-6)


def test_early_stopping_matches_sklearn(digits):
    """Oracle: sklearn's validation split, validation scores and restored best weights."""
    X_train, _, y_train, _ = digits
    params = dict(hidden_layer_sizes=(20,), early_stopping=True, max_iter=40,
                  n_iter_no_change=3, random_state=0)
    ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params),
                             X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    _assert_same_params(ours, theirs, rtol=1e-6)


def test_sklearn_tools_clone_pickle_pipeline_gridsearch(iris):
    """Oracle: the fitted model's own predictions, and sklearn's meta-estimators."""
    X_train, X_test, y_train, y_test = iris
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0)
    assert clone(model).get_params() == model.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
        restored = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(restored.predict_proba(X_test),
                                      model.predict_proba(X_test))
        restored.set_params(warm_start=True, max_iter=2).fit(X_train, y_train)  # still trains

        theirs = sk.MLPClassifier().get_params()  # mlpfast's own extras left out
        their_model = sk.MLPClassifier(**{k: v for k, v in model.get_params().items()
                                          if k in theirs})
        pipe = make_pipeline(StandardScaler(), clone(model)).fit(X_train, y_train)
        their_pipe = make_pipeline(StandardScaler(), clone(their_model)).fit(X_train, y_train)
        np.testing.assert_array_equal(pipe.predict(X_test), their_pipe.predict(X_test))
        scores = cross_val_score(clone(model), X_train, y_train, cv=3)
        their_scores = cross_val_score(clone(their_model), X_train, y_train, cv=3)
        np.testing.assert_allclose(scores, their_scores, atol=0.01)
        grid = {"alpha": [1e-4, 1e-2]}
        search = GridSearchCV(clone(model), grid, cv=3).fit(X_train, y_train)
        their_search = GridSearchCV(clone(their_model), grid, cv=3).fit(X_train, y_train)
        np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                                   their_search.cv_results_["mean_test_score"], atol=0.01)


def _fits_on_threads(make, X, y, thread_counts, monkeypatch, **fit_params):
    """make() fitted on X, y once per thread count: the count the engine is
    given (above this machine's CPU count too), whatever the CPUs."""
    fits = []
    for n_threads in thread_counts:
        monkeypatch.setattr(mlpfast._config, "effective_n_threads", lambda n=n_threads: n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(make().fit(X, y, **fit_params))
    return fits


def _assert_same_fit(fits):
    for fit in fits[1:]:
        for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fit.coefs_ + fit.intercepts_):
            np.testing.assert_array_equal(a, b)
        if hasattr(fit, "loss_curve_"):
            assert fits[0].loss_curve_ == fit.loss_curve_
        assert fits[0].loss_ == fit.loss_


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_same_model_whatever_the_thread_count(digits, solver, monkeypatch):
    """Oracle: the same fit on one thread (bit-identical models are a design goal),
    against 2, 3 and 4 threads."""
    X_train, _, y_train, _ = digits
    X = np.tile(X_train, (4, 4))
    y = np.tile(y_train, 4)
    params = dict(hidden_layer_sizes=(200,), max_iter=2, batch_size=500, random_state=0,
                  solver=solver)
    _assert_same_fit(_fits_on_threads(lambda: MLPClassifier(**params), X, y, (1, 2, 3, 4),
                                      monkeypatch))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_regression_model_whatever_the_thread_count(dtype, solver, monkeypatch):
    """A shuffled fit with sample weights and a short last batch of 97 rows
    (100-128-1, batch 200). Oracle: the same fit on one thread, against 2 to 4."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1097, 100)).astype(dtype)
    y = (X[:, :5].sum(axis=1) + 0.1 * rng.normal(size=1097)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, size=1097)
    params = dict(hidden_layer_sizes=(128,), max_iter=3, batch_size=200, solver=solver,
                  random_state=0)
    _assert_same_fit(_fits_on_threads(lambda: MLPRegressor(**params), X, y, (1, 2, 3, 4),
                                      monkeypatch, sample_weight=sw))


def test_a_fit_shares_the_threads_with_the_calls_under_way(monkeypatch):
    """A call given 4 threads runs on 4 // (calls under way): 2 beside one
    other call, 1 beside three; a fit beside three others runs every batch on
    one thread, with the same model. Oracles: the rule's arithmetic, and
    Network.max_team, the most threads its batches ran on."""
    monkeypatch.setattr(mlpfast._config, "effective_n_threads", lambda: 4)
    X, y = make_regression(n_samples=600, n_features=20, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=2, batch_size=200, random_state=0)
    alone, _ = _fit_keeping_network(MLPRegressor(**params), X, y)
    assert _engine.calls_active() == 0
    for others, share in ((0, 4), (1, 2), (3, 1)):
        _engine._calls_change(others + 1)  # this call and the others
        try:
            assert _engine.share_threads(4) == share
        finally:
            _engine._calls_change(-others - 1)
    _engine._calls_change(3)
    try:
        shared, network = _fit_keeping_network(MLPRegressor(**params), X, y)
    finally:
        _engine._calls_change(-3)
    assert network.n_threads == 4 and network.max_team == 1
    _assert_same_fit([alone, shared])


_CPU_COUNT_SCRIPT = """
import hashlib, os, sys, warnings
import numpy as np
os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:int(sys.argv[1])]))
from mlpfast import MLPClassifier
import mlpfast
rng = np.random.RandomState(0)
X = rng.normal(size=(3000, 30)).astype(sys.argv[2])
y = (X[:, 0] + X[:, 1] > 0).astype(int)
warnings.simplefilter("ignore")
m = MLPClassifier((64, 32), max_iter=3, random_state=0).fit(X, y)
h = hashlib.sha256()
for a in m.coefs_ + m.intercepts_:
    h.update(a.tobytes())
h.update(m.predict_proba(X).tobytes())
print(mlpfast._config.effective_n_threads(), h.hexdigest())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_model_whatever_the_cpu_count(dtype, tmp_path):
    """A fresh process limited to 1 CPU, and to all of this machine's: the same
    coefficients and predictions, to the bit (oracle: the 1-CPU process). The
    processes import the mlpfast under test, whatever the working directory
    holds (CI's has the unbuilt source tree)."""
    cpus = len(os.sched_getaffinity(0))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mlpfast.__file__)))
    results = []
    for count in sorted({1, cpus}):
        out = subprocess.run([sys.executable, "-c", _CPU_COUNT_SCRIPT, str(count), dtype],
                             capture_output=True, text=True, timeout=120, check=True,
                             cwd=tmp_path, env=env)
        threads, digest = out.stdout.split()
        assert int(threads) <= count
        results.append(digest)
    assert len(set(results)) == 1


_PEAK_SCRIPT = r"""
import sys, warnings
import numpy as np
from mlpfast import MLPClassifier

X = np.empty((60000, 100), sys.argv[1])
for i in range(0, len(X), 5000):  # no float64 temporary of the whole X
    X[i:i + 5000] = np.random.RandomState(i).normal(size=(5000, 100))
y = (X[:, 0] > 0).astype(int)
warnings.simplefilter("ignore")
MLPClassifier((4,), solver="lbfgs", max_iter=2).fit(X[:50], y[:50])  # imports, BLAS set-up

def kib(field):  # this process's memory (getrusage's peak may be its parent's)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from here
start = kib("VmRSS:")
MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
print((kib("VmHWM:") - start) * 1024 / X.nbytes)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_float32_lbfgs_needs_no_more_memory_per_byte_of_data_than_float64(tmp_path):
    """The peak resident memory of an lbfgs fit, above what the process held
    before it, per byte of X: float32's at most float64's (with 10% for the
    fixed costs), so no float64 copy of float32 data is held. Oracle: the
    same fit of float64 data, each in a fresh process."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mlpfast.__file__)))
    ratios = {}
    for dtype in ("float32", "float64"):
        out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, dtype], capture_output=True,
                             text=True, timeout=300, check=True, env=env, cwd=tmp_path)
        ratios[dtype] = float(out.stdout)
    assert ratios["float32"] <= 1.1 * ratios["float64"], ratios


@pytest.mark.skipif(mlpfast._config.effective_n_threads() < 2, reason="needs two threads")
def test_a_fit_times_its_batches_on_one_thread_and_on_all():
    """The threads-per-batch rule has a cost for both ways (Network.pace_costs:
    seconds per row on one thread and on all, measured or estimated from the
    fits before it, both positive) in a fit of many batches."""
    X, y = make_regression(n_samples=4000, n_features=50, random_state=0)
    est = MLPRegressor(hidden_layer_sizes=(64,), max_iter=2, batch_size=100, random_state=0)
    _, network = _fit_keeping_network(est, X, y)
    assert network.last_epoch_steps == 40
    assert min(network.pace_costs) > 0


@pytest.mark.parametrize("one, many", [(1.0, 0.6), (0.6, 1.0)], ids=["threads", "one"])
def test_the_threads_per_batch_rule_settles_on_the_cheaper_way(one, many):
    """Oracle: the rule's statement (Pace in _engine.pyx): after a trial of
    each way, the cheaper way runs, and the trials of the other cost at most
    about 1 / PACE_PATIENCE (1%) of the time."""
    costs = [(one, many)] * 2000
    ways, _ = _engine._pace_replay(costs)
    cheaper = int(many < one)
    assert sorted(ways[:6]) == [0, 0, 0, 1, 1, 1]
    spent = sum(c[w] for c, w in zip(costs[6:], ways[6:]))
    best = min(one, many) * (len(costs) - 6)
    assert ways[6:].count(cheaper) > ways[6:].count(1 - cheaper)
    assert best <= spent <= 1.02 * best


@pytest.mark.parametrize("slower", [3, 10])
def test_a_lasting_slowdown_of_the_threads_turns_the_choice_within_batches(slower):
    """Oracle: the rule's statement. All threads take 0.6 of one thread's
    time until batch 100, then `slower` times that (other programs now hold
    the CPUs): within ten batches every batch runs on one thread, but for the
    rule's trials of all threads, three batches each, at most two here."""
    costs = [(1.0, 0.6)] * 100 + [(1.0, 0.6 * slower)] * 300
    ways = "".join(map(str, _engine._pace_replay(costs)[0]))
    assert "0" not in ways[10:100]
    trials = re.findall("1+", ways[110:])
    assert trials == ["111"] * len(trials) and len(trials) <= 2, ways


@pytest.mark.parametrize("ratio", [5.0, 0.5])
def test_a_fit_starts_the_way_the_fits_before_it_found_cheaper(ratio):
    """Oracle: the rule's statement. With the prior of recent fits (all
    threads `ratio` times one thread's cost) and costs that agree, a new fit
    tries the cheaper way first and, taking the other's cost from the ratio,
    runs the cheaper way throughout a short fit, never trying the other."""
    ways, _ = _engine._pace_replay([(1.0, ratio)] * 200, ratio)
    assert set(ways) == {int(ratio < 1)}


@pytest.mark.parametrize("prior", [0.0, 0.5])
@pytest.mark.parametrize("stall_every", [3, 5, 10])
def test_a_fit_passes_on_the_ratio_of_mean_costs(stall_every, prior):
    """Oracle: the rule's statement, with the costs replayed. All threads take
    0.6 of one thread's time but for one batch in `stall_every`, which waits 8
    (a time slice of another program). A fit, with no prior or with the fits
    before it having found all threads cheaper, starts with its trials of
    PACE_TRIAL = 3 batches (all threads first; one thread after them when it
    has no prior), then moves from all threads to one once the stalls show.
    The ratio it passes on is that of the mean cost of the batches each way ran
    outside the trials, and above 1: the next fit starts on one thread. The
    smoothed costs, about equal when a fit leaves a way, would say little."""
    costs = [(1.0, 8.0 if i % stall_every == stall_every - 1 else 0.6) for i in range(90)]
    ways, passed_on = _engine._pace_replay(costs, prior)
    trials = 3 if prior else 6
    assert ways[:trials] == [1, 1, 1, 0, 0, 0][:trials]
    after = "".join(map(str, ways[trials:]))
    assert re.fullmatch("1*0+", after), ways
    run = {way: [c[way] for c, w in zip(costs[trials:], ways[trials:]) if w == way]
           for way in (0, 1)}
    if not run[1]:  # all threads only tried
        run[1] = [min(c[1] for c in costs[:3])]
    assert passed_on == pytest.approx(np.mean(run[1]) / np.mean(run[0]))
    assert passed_on > 1


def _fit_keeping_network(est, X, y, **fit_params):
    """est fitted on X, y, and the training network its fit built."""
    networks = []
    build = est._network

    def keep(*args, **kwargs):
        networks.append(build(*args, **kwargs))
        return networks[-1]

    est._network = keep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, **fit_params)
    (network,) = networks
    return est, network


@pytest.mark.skipif(len(_engine.kernel_isas()) < 2, reason="one kernel instruction set only")
@pytest.mark.parametrize("solver, activation", [
    ("adam", "relu"), ("sgd", "relu"), ("sgd", "tanh"), ("adam", "gelu"), ("adam", "softplus"),
    ("adam", "elu")])
def test_same_model_whatever_the_kernel_instruction_set(digits, solver, activation):
    """Oracle: the same fit with the baseline kernels (the AVX2 and AVX-512 builds
    fuse no multiply-adds and sum in the same order, so the models are
    bit-identical), for activations written out in the kernels (exp, tanh, the
    normal distribution, log1p)."""
    X_train, _, y_train, _ = digits
    X = np.tile(X_train, (4, 4))  # kernels above the threading thresholds
    y = np.tile(y_train, 4)
    params = dict(hidden_layer_sizes=(200,), max_iter=2, batch_size=500, solver=solver,
                  activation=activation, random_state=0)
    default = _engine.kernel_isa()
    fits = []
    for isa in _engine.kernel_isas():
        _engine.set_kernel_isa(isa)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fits.append(MLPClassifier(**params).fit(X, y))
        finally:
            _engine.set_kernel_isa(default)
    for fit in fits[1:]:
        for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fit.coefs_ + fit.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert fits[0].loss_curve_ == fit.loss_curve_


@pytest.mark.parametrize("cap", ["baseline", "avx2", "avx512", "AVX2", "no-such-set"])
def test_mlpfast_kernels_caps_the_kernel_instruction_set(cap, tmp_path):
    """MLPFAST_KERNELS, read at import, names the best instruction set the kernels
    may use (in any case); an unknown name is ignored with a warning. Oracle: the
    order baseline < avx2 < avx512 and the sets this CPU has. The process
    imports the mlpfast under test, whatever the working directory holds."""
    order = ["baseline", "avx2", "avx512"]
    have = _engine.kernel_isas()
    allowed = order[:order.index(cap.lower()) + 1] if cap.lower() in order else order
    expected = [isa for isa in order if isa in have and isa in allowed][-1]
    code = "import warnings; warnings.simplefilter('always')\n" \
           "from mlpfast import _engine; print(_engine.kernel_isa())"
    env = dict(os.environ, MLPFAST_KERNELS=cap,
               PYTHONPATH=os.path.dirname(os.path.dirname(mlpfast.__file__)))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True)
    assert run.stdout.split() == [expected]
    assert ("names none of" in run.stderr) == (cap.lower() not in order)


def test_ctrl_c_leaves_a_usable_model():
    """Oracle: scikit-learn's contract: warning, early return, a model that predicts."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20000, 50))
    y = (X[:, 0] > 0).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=500, random_state=0,
                          **NO_STOP)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user."):
            model.fit(X, y)
    finally:
        timer.cancel()
    assert model.n_iter_ < 500
    assert model.predict(X[:10]).shape == (10,)
    # Adam's step count covers the interrupted epoch's completed batches (100 per epoch;
    # the signal may land after the last batch, before the epoch is counted)
    assert model.n_iter_ * 100 <= model._optimizer.t <= (model.n_iter_ + 1) * 100


def test_show_config_reports_the_build():
    """Oracle: the engine's own OpenMP flag, kernel instruction set and thread count."""
    import io

    buffer = io.StringIO()
    config = mlpfast.show_config(file=buffer)
    assert config["openmp"] == mlpfast._engine.openmp_enabled()
    assert config["kernels"] == mlpfast._engine.kernel_isa() in mlpfast._engine.kernel_isas()
    assert config["n_threads"] >= 1
    with threadpool_limits(limits=1, user_api="openmp"):
        assert mlpfast.show_config(file=io.StringIO())["n_threads"] == 1
    assert config["version"] in buffer.getvalue()


def test_invalid_parameters_raise_like_sklearn(iris):
    """Oracle: the error type sklearn raises for the same bad parameter."""
    X_train, _, y_train, _ = iris
    for bad in (dict(hidden_layer_sizes=(0,)), dict(activation="softmax"),
                dict(solver="newton"), dict(alpha=-1.0), dict(batch_size=0),
                dict(momentum=1.5), dict(beta_1=1.0)):
        with pytest.raises(Exception) as theirs:
            sk.MLPClassifier(**bad).fit(X_train, y_train)
        with pytest.raises(type(theirs.value)):
            MLPClassifier(**bad).fit(X_train, y_train)
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X_train, -np.abs(y_train) - 1.0)


@pytest.mark.parametrize("labels", ["binary", "multiclass"])
def test_string_labels_predict_like_sklearn(iris, labels):
    """Oracle: sklearn's predictions (LabelBinarizer.inverse_transform) on string labels."""
    X_train, X_test, y_train, _ = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[y_train] if labels == "multiclass" else np.where(y_train == 2, "yes", "no")
    params = dict(hidden_layer_sizes=(10,), max_iter=EPOCHS, random_state=0)
    ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params), X_train, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
    np.testing.assert_array_equal(ours.predict(X_test[:1]), theirs.predict(X_test[:1]))


def test_feature_names_and_predict_input_checks_like_sklearn(iris):
    """Oracle: sklearn's warnings and errors for inputs the fast predict path must not take."""
    pd = pytest.importorskip("pandas")
    X_train, X_test, y_train, _ = iris
    frame = pd.DataFrame(X_train, columns=["a", "b", "c", "d"])
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    ours, theirs = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params), frame, y_train)
    np.testing.assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        ours.predict(X_test)
    bad = X_test.copy()
    bad[0, 0] = np.nan
    model = _fit_pair(MLPClassifier(**params), sk.MLPClassifier(**params), X_train, y_train)[0]
    for wrong in (bad, X_test[:, :3], X_test[:0]):
        with pytest.raises(ValueError):
            model.predict(wrong)


@pytest.mark.parametrize("params", [
    dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=2, tol=0.5, max_iter=12),
    dict(solver="adam", early_stopping=True, n_iter_no_change=2, max_iter=12),
    dict(solver="adam", n_iter_no_change=np.inf, max_iter=4),
])
def test_verbose_output_matches_sklearn(digits, capsys, params):
    """Oracle: the lines sklearn prints (iterations, validation scores, stop and
    learning-rate messages) for the same fit."""
    X_train, _, y_train, _ = digits
    common = dict(hidden_layer_sizes=(15,), random_state=0, verbose=True)
    outputs = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**common, **params).fit(X_train, y_train)
        outputs.append(capsys.readouterr().out)
    assert "Iteration 1, loss = " in outputs[1]
    ours, theirs = (out.splitlines() for out in outputs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        # the same line; float fields may differ in the last printed digit at most
        assert re.sub(r"\d", "#", a) == re.sub(r"\d", "#", b)
        if a.startswith("Iteration"):
            assert float(a.split("= ")[1]) == pytest.approx(float(b.split("= ")[1]), rel=1e-6)


def test_sample_weight_routing_in_grid_search(iris):
    """Oracle: sklearn's GridSearchCV with metadata routing and its own MLPClassifier."""
    import sklearn

    X_train, _, y_train, _ = iris
    sw = np.random.RandomState(0).uniform(0.5, 2.0, X_train.shape[0])
    results = []
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for cls in (MLPClassifier, sk.MLPClassifier):
            model = cls(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
            model.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
            search = GridSearchCV(model, {"alpha": [1e-4, 1e-1]}, cv=3)
            search.fit(X_train, y_train, sample_weight=sw)
            results.append(search.cv_results_["mean_test_score"])
    np.testing.assert_allclose(results[0], results[1], atol=1e-12)


def test_sample_weight_changes_the_fit_like_sklearn(iris):
    """Oracle: sklearn's partial_fit and score with sample weights."""
    X_train, X_test, y_train, y_test = iris
    sw = np.random.RandomState(1).uniform(0.1, 3.0, X_train.shape[0])
    models = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        model = cls(hidden_layer_sizes=(8,), random_state=0)
        for _ in range(3):
            model.partial_fit(X_train, y_train, sample_weight=sw, classes=[0, 1, 2])
        models.append(model)
    ours, theirs = models
    _assert_same_params(ours, theirs, rtol=1e-6)
    w = np.linspace(0.5, 1.5, X_test.shape[0])
    assert ours.score(X_test, y_test, sample_weight=w) == theirs.score(X_test, y_test,
                                                                       sample_weight=w)


@pytest.mark.parametrize("cls_name", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_early_stopping_trajectory_over_20_epochs(digits, regression, cls_name, solver):
    """Oracle: sklearn's estimator with early_stopping=True, same seed, EPOCHS epochs
    (validation split, shuffles and validation scores all follow the same draws)."""
    X_train, _, y_train, _ = digits if cls_name == "MLPClassifier" else regression
    params = dict(hidden_layer_sizes=(24,), solver=solver, early_stopping=True,
                  validation_fraction=0.2, max_iter=EPOCHS, random_state=7,
                  learning_rate_init=0.01 if solver == "sgd" else 0.001, **NO_STOP)
    ours_cls, their_cls = globals()[cls_name], getattr(sk, cls_name)
    ours, theirs = _fit_pair(ours_cls(**params), their_cls(**params), X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_ == EPOCHS
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                               rtol=1e-6)
    _assert_same_params(ours, theirs, rtol=1e-6)


def test_convergence_warning_like_sklearn(iris):
    """Oracle: sklearn's ConvergenceWarning text when max_iter is reached."""
    X_train, _, y_train, _ = iris
    messages = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        with pytest.warns(ConvergenceWarning) as record:
            cls(max_iter=3, random_state=0).fit(X_train, y_train)
        messages.append([str(w.message) for w in record if w.category is ConvergenceWarning])
    assert messages[0] == messages[1]


def test_lbfgs_max_fun_and_integer_input_like_sklearn(digits):
    """Oracle: sklearn's lbfgs stopped by max_fun (same iterations, loss and warning),
    and its float64 training on integer input."""
    X_train, _, y_train, _ = digits
    X_int = np.rint(X_train * 16).astype(np.int64)
    params = dict(hidden_layer_sizes=(20,), solver="lbfgs", max_fun=15, random_state=0)
    results = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        with pytest.warns(ConvergenceWarning) as record:
            model = cls(**params).fit(X_int, y_train)
        results.append((model, [str(w.message) for w in record
                                if w.category is ConvergenceWarning]))
    (ours, our_warnings), (theirs, their_warnings) = results
    assert our_warnings == their_warnings
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float64
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)


def _blas_sensitive_fit(i):
    """The i-th of a few seeded fits whose results change in the last bits when
    BLAS runs on more threads than one: lbfgs with 18000 parameters (scipy's
    L-BFGS-B takes dot products of them), and float32 adam with 400 input
    features (threaded products add in another order)."""
    rng = np.random.RandomState(i)
    X = rng.normal(size=(600, 400))
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    if i % 2:
        X = X.astype(np.float32)
    params = (dict(solver="adam", batch_size=300, max_iter=3) if i % 2 else
              dict(solver="lbfgs", max_iter=8))
    return MLPClassifier((45,), random_state=i, **params).fit(X, y)


def _mlpfast_blas_threads():
    return [lib.get_num_threads() for lib in mlpfast._config._mlpfast_blas(
        ThreadpoolController().select(user_api="blas").lib_controllers)]


def _same_fit(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_,
                                                    b.coefs_ + b.intercepts_))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_blas_sensitive_fits_are_sensitive(monkeypatch):
    """The control of the tests below: with BLAS on 4 threads and mlpfast's
    one-thread limit taken away, the fits differ from the limited ones, so
    those tests can fail."""
    limited = [_blas_sensitive_fit(i) for i in (0, 1)]
    monkeypatch.setattr(mlpfast._multilayer_perceptron, "blas_single_threaded",
                        contextlib.nullcontext)
    with threadpool_limits(4, user_api="blas"):
        free = [_blas_sensitive_fit(i) for i in (0, 1)]
    assert not all(_same_fit(a, b) for a, b in zip(limited, free))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("i", [0, 1])
def test_same_model_in_any_python_thread_and_whatever_blas_threads(i):
    """The same fit in the main thread, in a worker thread, and each with BLAS
    limited to one thread by the caller, with BLAS on 4 threads otherwise: bit
    for bit (oracle: the main-thread fit). BLAS's thread count is back as it
    was after each."""
    with threadpool_limits(4, user_api="blas"):
        before = _mlpfast_blas_threads()
        fits = [_blas_sensitive_fit(i)]
        with threadpool_limits(1, user_api="blas"):
            fits.append(_blas_sensitive_fit(i))
        for limit in (None, 1):
            box = []

            def work():
                with threadpool_limits(limit, user_api="blas"):
                    box.append(_blas_sensitive_fit(i))
                    box.append(_mlpfast_blas_threads())

            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
            fits.append(box[0])
            assert box[1] == (before if limit is None else [1] * len(before))
        _assert_same_fit(fits)
        assert _mlpfast_blas_threads() == before


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fits_in_threads_at_once_give_the_same_models():
    """Ten fits at once in Python threads (as joblib's threading backend runs
    them; the engine releases the GIL, so they overlap), with BLAS on 4
    threads. Oracle: the same fits one after the other, bit for bit, and their
    predictions."""
    from concurrent.futures import ThreadPoolExecutor

    with threadpool_limits(4, user_api="blas"):
        before = _mlpfast_blas_threads()
        alone = [_blas_sensitive_fit(i) for i in range(10)]
        with ThreadPoolExecutor(10) as pool:
            together = list(pool.map(_blas_sensitive_fit, range(10)))
        X = np.random.RandomState(10).normal(size=(500, 400))
        for a, b in zip(alone, together):
            _assert_same_fit([a, b])
            np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
        assert _engine.calls_active() == 0
        assert _mlpfast_blas_threads() == before


@pytest.mark.parametrize(
    "classes, y",
    [
        ([0, 1], [1, 0, 0, 1]),
        ([3, 7, 9], [9, 3, 7, 7]),
        ([3, 7, 9], [7, 3, 3]),  # a partial_fit batch with a subset of the classes
        (["a", "b", "c", "d"], ["d", "a", "c", "b", "a"]),
        ([False, True], [True, True, False]),
    ],
)
def test_label_binarizing_matches_label_binarizer(classes, y):
    """Oracle: scikit-learn's LabelBinarizer.transform on the same classes."""
    from sklearn.preprocessing import LabelBinarizer

    model = MLPClassifier()
    model._label_binarizer = LabelBinarizer().fit(np.array(classes))
    y = np.array(y)
    expected = model._label_binarizer.transform(y).astype(bool)
    got = model._binarize(y)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)


_LABEL_CASES = {
    "binary": ([1, 0, 0, 1], [np.int64, np.int32, np.int8, np.uint8, np.uint64, bool]),
    "multiclass": ([9, 3, 7, 7, 3], [np.int64, np.int32, np.int8, np.uint8, np.uint64]),
    "one-class": ([5, 5, 5], [np.int64, np.uint8]),
    "bool": ([True, False, True], [bool, np.int8]),
    "int8-extremes": ([-128, 127, 0, -128], [np.int8, np.int64]),
    "wide-span": ([3, 4_000_000_000, 3, 17], [np.int64, np.uint64]),
}


@pytest.mark.parametrize(
    "y, dtype",
    [(y, dtype) for y, dtypes in _LABEL_CASES.values() for dtype in dtypes],
    ids=[f"{name}-{np.dtype(dtype).name}" for name, (_, dtypes) in _LABEL_CASES.items()
         for dtype in dtypes],
)
def test_label_binarizer_fit_matches_label_binarizer(y, dtype):
    """Oracle: scikit-learn's LabelBinarizer().fit on the same labels, and
    np.searchsorted of the labels in its classes_ for the indices returned."""
    from sklearn.preprocessing import LabelBinarizer

    from mlpfast._multilayer_perceptron import _fit_label_binarizer

    y = np.array(y).astype(dtype)
    expected = LabelBinarizer().fit(y)
    got, index = _fit_label_binarizer(y)
    assert got.y_type_ == expected.y_type_
    assert got.sparse_input_ == expected.sparse_input_
    assert got.classes_.dtype == expected.classes_.dtype
    np.testing.assert_array_equal(got.classes_, expected.classes_)
    np.testing.assert_array_equal(got.transform(y), expected.transform(y))
    if index is not None:
        np.testing.assert_array_equal(index, np.searchsorted(expected.classes_, y))
    if y.dtype.kind in "iu" and int(y.max()) - int(y.min()) < 1024:
        assert index is not None  # the counted path ran


def _peak_traced_bytes(func):
    """Peak bytes allocated through Python's allocators (numpy's included) while
    func runs, above what was allocated before."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.mark.parametrize(
    "dtype, order, copies",
    [(np.float32, "C", 0), (np.float64, "C", 0), (np.float64, "F", 1), (np.int64, "C", 1)],
    ids=["float32-C", "float64-C", "float64-F", "int64"],
)
def test_fit_copies_training_data_at_most_once(dtype, order, copies):
    """Oracle: tracemalloc's count of the bytes numpy allocates during fit. Input the
    engine can read as it is (C-contiguous float) is never copied; input that needs
    a dtype or order conversion is converted once (into float64, as scikit-learn does)."""
    rng = np.random.RandomState(0)
    X = np.asarray(rng.normal(size=(10000, 400)) * 3, dtype=dtype, order=order)
    y = (X[:, 0] > 0).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1, random_state=0, **NO_STOP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        peak = _peak_traced_bytes(lambda: model.fit(X, y))
    converted = X.size * (4 if dtype == np.float32 else 8)
    # Everything but the data (weights, Adam state, one batch of inputs and
    # activations, shuffled indices) is well under a quarter of it here.
    assert copies * converted <= peak < (copies + 0.25) * converted, (peak, converted)


def _iris():
    return load_iris(return_X_y=True)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_warm_start_and_partial_fit_keep_the_models_dtype(solver):
    """Oracle: scikit-learn's estimator, which goes on training in the dtype of
    its first fit whatever the dtype of X in later calls (lbfgs fits end in
    float64), and to the same losses, to float32 precision."""
    X, y = _iris()
    for first, later in ((np.float32, np.float64), (np.float64, np.float32)):
        results = []
        for module in (sk, mlpfast):
            warm = module.MLPClassifier((8,), solver=solver, max_iter=5, random_state=0,
                                        warm_start=True)
            part = module.MLPClassifier((8,), max_iter=5, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warm.fit(X.astype(first), y).fit(X.astype(later), y)
                part.partial_fit(X.astype(first), y, classes=np.unique(y))
                part.partial_fit(X.astype(later), y)
            results.append((warm, part))
        for theirs, ours in zip(*results):
            assert [c.dtype for c in ours.coefs_ + ours.intercepts_] == [
                c.dtype for c in theirs.coefs_ + theirs.intercepts_]
            np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-5)


def test_interrupted_float32_lbfgs_keeps_float32_coefficients(monkeypatch):
    """Ctrl-C in an lbfgs fit of float32 X. Oracle: scikit-learn's estimator,
    interrupted at the same evaluation, is left with float32 coefs_ (views of
    the point scipy's L-BFGS-B passed last) that predict."""
    X, y = _iris()
    import scipy.optimize

    minimize = scipy.optimize.minimize

    def interrupted(fun, x0, **kwargs):
        calls = []

        def fun_then_interrupt(x, *args):  # scikit-learn passes args
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return fun(x, *args)

        return minimize(fun_then_interrupt, x0, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", interrupted)
    X32 = X.astype(np.float32)
    for module in (sk, mlpfast):
        est = module.MLPClassifier((8,), solver="lbfgs", random_state=0)
        with pytest.raises(KeyboardInterrupt):
            est.fit(X32, y)
        assert [c.dtype for c in est.coefs_] == [np.float32, np.float32], module
        assert set(est.predict(X32)) <= set(np.unique(y))


def test_longdouble_X_predicts_in_float64_and_answers_in_long_double():
    """Oracles: the same model's predictions from the float64 copy of X (the
    engine computes in float32 or float64), and scikit-learn's, which it
    computes and returns in long double: the same dtype, the same labels and
    values equal to float64 precision."""
    X, y = _iris()
    est = MLPClassifier(max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        theirs = sk.MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    X_long = X.astype(np.longdouble)
    assert est.predict_proba(X_long).dtype == theirs.predict_proba(X_long).dtype
    np.testing.assert_array_equal(est.predict_proba(X_long), est.predict_proba(X))
    np.testing.assert_array_equal(est.predict(X_long), theirs.predict(X_long))
    np.testing.assert_allclose(est.predict_proba(X_long), theirs.predict_proba(X_long),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation, settings", [
    ("leaky_relu", None), ("elu", None), ("selu", None), ("softplus", None), ("gelu", None),
    ("prelu", None), ("sine", None), ("maxout", None), (["gelu", "tanh"], None),
    (["logistic", "softplus"], None), (["maxout", "prelu"], {"pieces": 3, "prelu_init": 0.1}),
    (["leaky_relu", "elu"], {"negative_slope": 0.2, "alpha": 0.5}),
    (["sine", "relu"], {"omega_0": 5.0}),
], ids=lambda v: str(v).replace(" ", ""))
def test_activations_beyond_sklearn_train_and_predict(digits, activation, settings, dtype,
                                                      monkeypatch):
    """A 2-hidden-layer classifier with each activation scikit-learn lacks, or
    one per layer, with default or given activation_params. Oracles: a NumPy
    forward pass (tests/_references.act_ref) of the fitted weights (PReLU's
    slopes_ too) for predict_proba; the training loss falls; the same fit on
    1 and 3 threads, bit for bit."""
    X_train, X_test, y_train, _ = digits
    X_train, X_test = X_train[:600].astype(dtype), X_test.astype(dtype)
    fits = _fits_on_threads(
        lambda: MLPClassifier((24, 16), activation=activation, max_iter=15, batch_size=50,
                              random_state=0, activation_params=settings, **NO_STOP),
        X_train, y_train[:600], (1, 3), monkeypatch)
    _assert_same_fit(fits)
    est = fits[0]
    assert est.coefs_[0].dtype == dtype
    assert est.loss_curve_[-1] < 0.9 * est.loss_curve_[0]
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(est.predict_proba(X_test), _numpy_proba(est, X_test), rtol=rtol,
                               atol=rtol)


@pytest.mark.parametrize("name", ["relu", "logistic", "gelu"])
def test_a_list_of_one_activation_is_that_activation(digits, name):
    """activation=[name, name] is activation=name: the same initial weights
    (Glorot's factor follows each layer's activation) and the same fit, bit
    for bit; clone keeps the list. Oracle: the fit with the name."""
    X_train, _, y_train, _ = digits
    params = dict(hidden_layer_sizes=(20, 10), max_iter=3, random_state=0, **NO_STOP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPClassifier(activation=name, **params).fit(X_train, y_train)
        listed = MLPClassifier(activation=[name, name], **params)
        assert clone(listed).get_params()["activation"] == [name, name]
        listed.fit(X_train, y_train)
    _assert_same_fit([one, listed])


@pytest.mark.parametrize("activation", [["relu"], ["relu", "tanh", "gelu"], ["relu", "swish"],
                                        ["relu", 1]])
def test_an_activation_list_must_name_one_known_activation_per_layer(activation):
    """A clear ValueError before anything is fitted (oracle: the rule that the
    list has one known name per hidden layer, here two)."""
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier((4, 3), activation=activation)
    with pytest.raises(ValueError, match="one name per hidden layer"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


def test_prelu_slopes_are_fitted_weights_without_penalty():
    """PReLU's slopes_ start at prelu_init and are trained with the weights
    but take no L2 penalty. Oracles: lbfgs's final loss_ is the NumPy loss of
    the fitted weights with the penalty on coefs_ alone (_numpy_loss); the
    slopes moved; a NumPy forward pass with them gives predict; an
    early-stopped fit keeps the slopes of its best epoch (oracle: the fit
    stopped at that epoch by max_iter)."""
    X, y = make_regression(200, 5, noise=5, random_state=0)
    y = y / y.std()
    est = MLPRegressor(hidden_layer_sizes=(6, 5), activation=["prelu", "tanh"], solver="lbfgs",
                       alpha=0.5, max_iter=300, random_state=0,
                       activation_params={"prelu_init": 0.1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.slopes_[1] is None and est.slopes_[0].shape == (6,)
    assert not np.allclose(est.slopes_[0], 0.1)
    np.testing.assert_allclose(est.loss_, _numpy_loss(est, X, y[:, None], "identity"),
                               rtol=1e-10)
    np.testing.assert_allclose(est.predict(X), _numpy_scores(est, X)[:, 0], rtol=1e-10)

    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=(6,), activation="prelu", random_state=0)
    stopped = MLPClassifier(early_stopping=True, max_iter=40, n_iter_no_change=3,
                            **params).fit(X, y)
    best = int(np.argmax(stopped.validation_scores_)) + 1
    assert best < stopped.n_iter_  # else the check below proves little
    # oracle: the same fit stopped by max_iter at the best epoch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = MLPClassifier(early_stopping=True, max_iter=best, n_iter_no_change=10**6,
                                  **params).fit(X, y)
    np.testing.assert_array_equal(stopped.slopes_[0], reference.slopes_[0])
    np.testing.assert_array_equal(stopped.coefs_[0], reference.coefs_[0])


def test_sine_layers_start_from_sirens_initialisation():
    """activation='sine' draws the weights as SIREN (Sitzmann et al. 2020):
    the first layer within 1 / fan_in, the later ones (the output layer
    included) within sqrt(6 / fan_in) / omega_0, intercepts within
    1 / sqrt(fan_in), in scikit-learn's order of draws. Oracle: the same
    uniform draws from numpy's RandomState with those bounds."""
    X, y = load_iris(return_X_y=True)
    est = MLPRegressor(hidden_layer_sizes=(7, 5), activation="sine",
                       activation_params={"omega_0": 4.0}, random_state=3)
    est._prepare_fit(X, y, None, incremental=False)
    rng = np.random.RandomState(3)
    for i, (fan_in, fan_out) in enumerate([(4, 7), (7, 5), (5, 1)]):
        bound = 1 / fan_in if i == 0 else np.sqrt(6 / fan_in) / 4.0
        np.testing.assert_array_equal(est.coefs_[i], rng.uniform(-bound, bound, (fan_in, fan_out)))
        bias = 1 / np.sqrt(fan_in)
        np.testing.assert_array_equal(est.intercepts_[i], rng.uniform(-bias, bias, fan_out))


def test_maxout_coefs_hold_the_pieces():
    """A maxout layer of u units and k pieces has (fan_in, k u) coefs_ and
    k u intercepts_, piece j of unit o in column j u + o. Oracle: each unit is
    the largest of its pieces' products, computed column by column in NumPy."""
    X, y = load_iris(return_X_y=True)
    est = MLPRegressor(hidden_layer_sizes=(5,), activation="maxout",
                       activation_params={"pieces": 3}, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.coefs_[0].shape == (4, 15) and est.intercepts_[0].shape == (15,)
    z = X @ est.coefs_[0] + est.intercepts_[0]
    hidden = np.array([[max(z[n, j * 5 + o] for j in range(3)) for o in range(5)]
                       for n in range(len(X))])
    np.testing.assert_allclose(est.predict(X), hidden @ est.coefs_[1][:, 0] + est.intercepts_[1],
                               rtol=1e-12)


@pytest.mark.parametrize("settings, match", [
    ({"slope": 0.1}, "unknown keys \\['slope'\\]"),
    ({"pieces": 0}, "'pieces'\\] must be an int in the range \\[1, inf\\)"),
    ({"pieces": 2.5}, "'pieces'"),
    ({"negative_slope": -0.1}, "'negative_slope'\\] must be a float in the range \\[0.0, "),
    ({"alpha": 0.0}, "'alpha'\\] must be a float in the range \\(0.0, inf\\)"),
    ({"omega_0": float("inf")}, "'omega_0'"),
    ({"prelu_init": float("nan")}, "'prelu_init'"),
])
def test_activation_params_errors(settings, match):
    """A clear ValueError before anything is fitted, naming the key and what
    it takes (scikit-learn's Interval wording)."""
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier((4,), activation="maxout", activation_params=settings)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


def test_warm_start_keeps_maxout_pieces_and_prelu_layers():
    """warm_start goes on from the fitted weights: changing maxout's pieces or
    a layer to or from PReLU raises a ValueError saying so (oracle: the rule);
    the same settings go on training."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((4, 3), activation=["maxout", "prelu"], max_iter=2,
                            warm_start=True, random_state=0).fit(X, y)
        est.fit(X, y)
        assert est.n_iter_ == 2
        with pytest.raises(ValueError, match="maxout's pieces"):
            est.set_params(activation_params={"pieces": 3}).fit(X, y)
        est.set_params(activation_params=None)
        with pytest.raises(ValueError, match="PReLU activations changed"):
            est.set_params(activation=["maxout", "relu"]).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("class_weight", [{0: 3.0, 2: 0.5}, "balanced"])
def test_class_weight_is_scikit_learns_sample_weight(class_weight, solver):
    """Oracle: scikit-learn's MLPClassifier fitted with sample_weight =
    compute_sample_weight(class_weight, y) times the caller's weights, as
    scikit-learn's other classifiers combine them: the same trajectory."""
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = load_iris(return_X_y=True)
    y = np.where(np.arange(len(y)) % 3 == 0, 0, y)  # unbalanced classes
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=20, random_state=0)
    ours, theirs = MLPClassifier(class_weight=class_weight, **params), sk.MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=sw)
        theirs.fit(X, y, sample_weight=compute_sample_weight(class_weight, y) * sw)
    _assert_same_params(ours, theirs, rtol=1e-9)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-10)


def test_class_weight_errors():
    """Clear errors: an unknown class (scikit-learn's compute_class_weight's
    ValueError), 'balanced' in partial_fit, a weight of the wrong type
    (InvalidParameterError, scikit-learn's constraint message)."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="not in class_weight"):
        MLPClassifier(max_iter=2, class_weight={7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(InvalidParameterError, match="class_weight"):
        MLPClassifier(class_weight=3).fit(X, y)



# activation_params' key of each activation with a parameter
_SETTINGS = {"leaky_relu": "negative_slope", "elu": "alpha", "sine": "omega_0",
             "maxout": "pieces"}


def _numpy_scores(est, X):
    """The output layer before its activation, by a NumPy forward pass of the
    fitted weights (tests/_references.act_ref for the hidden layers, with
    activation_params and PReLU's slopes_)."""
    from _references import ACTIVATIONS, act_ref

    n_hidden = len(est.coefs_) - 1
    names = est.activation if isinstance(est.activation, list) else [est.activation] * n_hidden
    settings = est.activation_params or {}
    slopes = getattr(est, "slopes_", [None] * n_hidden)
    h = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W.astype(np.float64) + b
        if i < n_hidden:
            act = (ACTIVATIONS[names[i]], settings.get(_SETTINGS.get(names[i])))
            h = act_ref(h, act, None if slopes[i] is None else slopes[i].astype(np.float64))
    return h


def _numpy_proba(est, X):
    """A softmax classifier's predict_proba, by _numpy_scores."""
    scores = _numpy_scores(est, X)
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True)


def _numpy_loss(est, X, Y, head):
    """The loss fit reports, at the fitted weights: the mean over rows of
    tests/_references.loss_terms_ref summed over the outputs, plus the L2 term."""
    from _references import loss_terms_ref

    terms = loss_terms_ref(Y, _numpy_scores(est, X), _engine.OUTPUTS[head], 0,
                           threshold=getattr(est, "huber_epsilon", 1.0))
    l2 = 0.5 * est.alpha * sum(np.sum(W.astype(np.float64) ** 2) for W in est.coefs_)
    return (terms.sum() + l2) / len(X)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_hinge_losses_train_an_svm_head(loss, target, monkeypatch):
    """Oracles: lbfgs's final loss_ is the NumPy hinge loss (Weston-Watkins for
    multi-class) of the fitted weights; decision_function is their NumPy
    forward pass, and predict its argmax or sign; the same adam fit on 1 and
    3 threads, bit for bit; predict_proba is not there (AttributeError, as
    SGDClassifier's), and log_loss has no decision_function."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if target == "binary":
        y, Y = (y == 2).astype(int), (y == 2)[:, None].astype(float)
    elif target == "multiclass":
        Y = np.eye(3)[y]
    else:
        y = np.column_stack([y == 2, y == 0, X[:, 0] > 0]).astype(int)
        Y = y.astype(float)
    head = ("multi_" if target == "multiclass" else "") + loss
    est = MLPClassifier((10,), activation="tanh", loss=loss, solver="lbfgs", random_state=0,
                        max_iter=300, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.out_activation_ == "identity"
    np.testing.assert_allclose(est.loss_, _numpy_loss(est, X, Y, head), rtol=1e-10)
    scores = est.decision_function(X)
    expected = _numpy_scores(est, X)
    np.testing.assert_allclose(scores, expected.ravel() if target == "binary" else expected,
                               rtol=1e-10, atol=1e-12)
    if target == "multiclass":
        np.testing.assert_array_equal(est.predict(X), est.classes_[expected.argmax(axis=1)])
    else:
        np.testing.assert_array_equal(est.predict(X), (scores > 0).astype(int))
    assert est.score(X, y) > 0.9
    assert not hasattr(est, "predict_proba") and not hasattr(est, "predict_log_proba")
    with pytest.raises(AttributeError, match="predict_proba") as info:
        est.predict_proba(X)
    assert "loss='" + loss + "'" in str(info.value.__cause__)
    assert not hasattr(MLPClassifier(), "decision_function")

    fits = _fits_on_threads(
        lambda: MLPClassifier((10,), loss=loss, batch_size=32, max_iter=5, random_state=0),
        X, y, (1, 3), monkeypatch)
    _assert_same_fit(fits)


@pytest.mark.parametrize("loss", ["huber", "absolute_error"])
def test_robust_regression_losses(loss, monkeypatch):
    """Oracles: lbfgs's final loss_ is the NumPy Huber or absolute loss (summed
    over the 2 outputs) of the fitted weights, with huber_epsilon as Huber's
    threshold; the same adam fit on 1 and 3 threads, bit for bit; and on data
    with gross outliers the robust loss predicts the clean targets better than
    the squared error does."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 4))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5, 0.0], np.sin(X[:, 0]) + X[:, 1]])
    Y_dirty = Y.copy()
    Y_dirty[::10] += rng.normal(0, 40, size=(40, 2))
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0, max_iter=500,
                  alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(loss, huber_epsilon=0.7, **params).fit(X, Y_dirty)
        squared = MLPRegressor("squared_error", **params).fit(X, Y_dirty)
    np.testing.assert_allclose(est.loss_, _numpy_loss(est, X, Y_dirty, loss), rtol=1e-10)
    np.testing.assert_allclose(est.predict(X), _numpy_scores(est, X), rtol=1e-10, atol=1e-12)
    clean = slice(1, None, 10)
    assert (np.abs(est.predict(X[clean]) - Y[clean]).mean()
            < 0.5 * np.abs(squared.predict(X[clean]) - Y[clean]).mean())

    fits = _fits_on_threads(
        lambda: MLPRegressor(loss, hidden_layer_sizes=(10,), batch_size=32, max_iter=5,
                             random_state=0),
        X, Y_dirty, (1, 3), monkeypatch)
    _assert_same_fit(fits)


def test_loss_errors():
    """Clear errors: a loss the estimator lacks and a Huber threshold <= 0
    (InvalidParameterError, scikit-learn's constraint messages), and a loss
    changed under warm_start (ValueError naming both)."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = load_iris(return_X_y=True)
    with pytest.raises(InvalidParameterError, match="'loss' parameter of MLPClassifier"):
        MLPClassifier(loss="huber").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="hinge").fit(X, y)
    for bad in (0.0, -1.0):
        with pytest.raises(InvalidParameterError, match="huber_epsilon"):
            MLPRegressor("huber", huber_epsilon=bad).fit(X, y)
    est = MLPClassifier(max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        with pytest.raises(ValueError, match="loss='hinge' needs the output activation"):
            est.set_params(loss="hinge").fit(X, y)


PERTURBED = {
    "dropout": dict(dropout=0.2),
    "dropout-per-layer": dict(dropout=[0.1, 0.3, 0.5]),
    "noise": dict(input_noise=0.1, hidden_noise=0.2),
    "weight-noise": dict(weight_noise=0.01),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("perturbation", PERTURBED.values(), ids=PERTURBED.keys())
def test_dropout_and_noise_fit_the_same_model_on_any_thread_count(digits, perturbation,
                                                                  dtype, monkeypatch):
    """Oracles: the same fit on 1 and 3 threads, bit for bit; a refit with the
    same seed reproduces it and another seed does not; predict applies no
    perturbation (predict_proba is the NumPy forward pass of the fitted
    weights, and the same twice); all-zero rates are the unperturbed fit."""
    X_train, X_test, y_train, _ = digits
    X_train, X_test, y_train = X_train[:500].astype(dtype), X_test.astype(dtype), y_train[:500]

    def make(seed=0, **extra):
        return MLPClassifier((32, 16), max_iter=4, batch_size=50, random_state=seed,
                             **NO_STOP, **{**perturbation, **extra})

    fits = _fits_on_threads(make, X_train, y_train, (1, 3), monkeypatch)
    _assert_same_fit(fits)
    est = fits[0]
    again, other = _fits_on_threads(lambda: make(), X_train, y_train, (2,), monkeypatch)[0], \
        _fits_on_threads(lambda: make(seed=1), X_train, y_train, (2,), monkeypatch)[0]
    _assert_same_fit([est, again])
    assert not np.array_equal(est.coefs_[0], other.coefs_[0])
    plain = _fits_on_threads(lambda: MLPClassifier((32, 16), max_iter=4, batch_size=50,
                                                   random_state=0, **NO_STOP),
                             X_train, y_train, (1,), monkeypatch)[0]
    assert not np.array_equal(est.coefs_[0], plain.coefs_[0])
    zeros = _fits_on_threads(lambda: make(dropout=[0.0, 0.0, 0.0], input_noise=0.0,
                                          hidden_noise=0.0, weight_noise=0.0),
                             X_train, y_train, (1,), monkeypatch)[0]
    _assert_same_fit([plain, zeros])

    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(est.predict_proba(X_test), _numpy_proba(est, X_test), rtol=rtol,
                               atol=rtol)
    np.testing.assert_array_equal(est.predict_proba(X_test), est.predict_proba(X_test))


def test_dropout_regularises_an_overfitting_network():
    """Dropout's purpose, as a property that can fail: a wide network on 150
    noisy training rows fits them less closely with dropout 0.5 (higher
    training loss at the end, oracle the same fit without dropout) on the
    same seed and epochs."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = dict(hidden_layer_sizes=(256,), max_iter=60, batch_size=16, random_state=0,
                  **NO_STOP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**params).fit(X[:150], y[:150])
        dropped = MLPClassifier(dropout=0.5, **params).fit(X[:150], y[:150])
    assert plain.score(X[:150], y[:150]) == 1.0
    assert dropped.loss_curve_[-1] > 2 * plain.loss_curve_[-1]
    assert dropped.score(X[150:], y[150:]) > 0.75


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_label_smoothing_trains_on_smoothed_targets(solver, target):
    """Oracle: the NumPy cross-entropy (tests/_references.loss_terms_ref) of
    the fitted weights against the smoothed targets y (1 - e) + e / K (K
    the classes of a softmax, 2 for a logistic output) is the loss_ the fit
    reports (lbfgs: at the final weights); e = 0 is the plain fit."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if target == "binary":
        y = (y == 2).astype(int)
        Y, head = 0.8 * (y == 1)[:, None] + 0.1, "logistic"
    else:
        Y, head = 0.8 * np.eye(3)[y] + 0.2 / 3, "softmax"
    params = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(label_smoothing=0.2, **params).fit(X, y)
        plain = MLPClassifier(**params).fit(X, y)
        zero = MLPClassifier(label_smoothing=0.0, **params).fit(X, y)
    _assert_same_fit([plain, zero])
    if solver == "lbfgs":
        from _references import out_ref

        P = out_ref(_numpy_scores(est, X), _engine.OUTPUTS[head])
        eps = np.finfo(np.float64).eps
        Pc = np.clip(P, eps, 1 - eps)
        terms = -(Y * np.log(Pc) + ((1 - Y) * np.log(1 - Pc) if head == "logistic" else 0))
        l2 = 0.5 * est.alpha * sum(np.sum(W**2) for W in est.coefs_)
        np.testing.assert_allclose(est.loss_, (terms.sum() + l2) / len(X), rtol=1e-10)
    assert est.loss_ > plain.loss_


def test_dropout_and_noise_errors():
    """Clear errors: rates outside [0, 1) and negative deviations
    (InvalidParameterError, scikit-learn's constraint messages); a dropout
    list of the wrong length; lbfgs, whose line search needs one loss; input
    perturbation of sparse X; label smoothing with a hinge loss."""
    import scipy.sparse as sp
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = load_iris(return_X_y=True)
    for bad in (dict(dropout=1.0), dict(dropout=-0.1), dict(input_noise=-1.0),
                dict(hidden_noise=-0.5), dict(weight_noise=-1e-3), dict(label_smoothing=1.0)):
        name = next(iter(bad))
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            MLPClassifier(**bad).fit(X, y)
    for bad in ([0.1, 0.2, 0.3], [0.1], [0.1, 1.0]):
        with pytest.raises(ValueError, match="one rate per layer's input"):
            MLPClassifier((5,), dropout=bad).fit(X, y)
    with pytest.raises(ValueError, match="stochastic solver"):
        MLPRegressor(solver="lbfgs", dropout=0.1).fit(X, y)
    with pytest.raises(ValueError, match="need dense X"):
        MLPClassifier(input_noise=0.1, max_iter=2).fit(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="label_smoothing needs loss='log_loss'"):
        MLPClassifier(loss="hinge", label_smoothing=0.1).fit(X, y)
