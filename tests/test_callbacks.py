"""scikit-learn's callback API (sklearn.callback) on mlpfast's estimators.

A fit is the root task; each epoch (sgd, adam) or L-BFGS iteration is one of
its subtasks. Oracles: fits of the same estimator stopped by max_iter (the
same trajectory, so the model a callback sees after epoch k is the model of
max_iter=k), scikit-learn's own ScoringMonitor and ProgressBar, and the
estimator's own score.
"""

import warnings

import numpy as np
import pytest
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from mlpfast import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


class Recorder:
    """Records every hook call; asks to stop at the end of subtask `stop_at`."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.calls = []
        self.models = []

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context):
        self.calls.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("end", context.task_name, context.task_id))
        if context.parent is not None and fitted_estimator is not None:
            self.models.append(fitted_estimator)
        return context.parent is not None and context.task_id == self.stop_at


class PropagatedRecorder(Recorder):
    """A Recorder that meta-estimators pass on to the estimators they fit."""

    max_propagation_depth = None


def _fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _subtasks(calls, kind):
    return [c[2] for c in calls if c[0] == kind and c[1] != "fit"]


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_each_epoch_is_a_task_and_sees_the_model_of_that_epoch(iris, solver):
    """setup, the fit task, one task per epoch (ids 0..n-1), teardown; the
    fitted_estimator at the end of epoch k is the model of max_iter=k + 1
    (oracle: that fit), bit for bit."""
    X, y = iris
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=5, random_state=0)
    recorder = Recorder()
    est = _fit_quietly(MLPClassifier(**params).set_callbacks(recorder), X, y)
    assert recorder.calls[:2] == [("setup", "fit"), ("begin", "fit", 0)]
    assert recorder.calls[-2:] == [("end", "fit", 0), ("teardown", "fit")]
    assert _subtasks(recorder.calls, "begin") == list(range(5))
    assert _subtasks(recorder.calls, "end") == list(range(5))
    for k in (0, 2, 4):
        shorter = _fit_quietly(MLPClassifier(**{**params, "max_iter": k + 1}), X, y)
        for got, expected in zip(recorder.models[k].coefs_, shorter.coefs_):
            np.testing.assert_array_equal(got, expected)
    for got, expected in zip(recorder.models[-1].intercepts_, est.intercepts_):
        np.testing.assert_array_equal(got, expected)


def test_a_callback_stops_the_fit_after_an_epoch(iris):
    """A callback returning True at the end of epoch 2 stops the fit there,
    with no ConvergenceWarning. Oracle: the fit with max_iter=3 (the same
    weights and loss curve)."""
    X, y = iris
    params = dict(hidden_layer_sizes=(6,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = MLPClassifier(max_iter=50, **params).set_callbacks(
            Recorder(stop_at=2)).fit(X, y)
    reference = _fit_quietly(MLPClassifier(max_iter=3, **params), X, y)
    assert stopped.n_iter_ == 3
    assert stopped.loss_curve_ == reference.loss_curve_
    for got, expected in zip(stopped.coefs_, reference.coefs_):
        np.testing.assert_array_equal(got, expected)


def test_lbfgs_iterations_are_tasks_and_can_stop(iris):
    """L-BFGS: one task per iteration, the last begun task (one scipy never
    runs) ended without a model; stopping at iteration 3 leaves n_iter_ = 4
    and the weights the callback saw then (oracle: its fitted_estimator)."""
    X, y = iris
    recorder = Recorder()
    est = _fit_quietly(MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=15,
                                    random_state=0).set_callbacks(recorder), X, y)
    assert _subtasks(recorder.calls, "end") == list(range(est.n_iter_ + 1))
    assert len(recorder.models) == est.n_iter_

    recorder = Recorder(stop_at=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=200,
                           random_state=0).set_callbacks(recorder).fit(X, y)
    assert est.n_iter_ == 4 and len(recorder.models) == 4
    for got, expected in zip(est.coefs_, recorder.models[-1].coefs_):
        np.testing.assert_array_equal(got, expected)


class Interrupter(Recorder):
    """Stands in for Ctrl-C during epoch 2."""

    def on_fit_task_begin(self, estimator, context):
        super().on_fit_task_begin(estimator, context)
        if context.task_name == "epoch" and context.task_id == 2:
            raise KeyboardInterrupt


def test_every_task_begun_ends_after_ctrl_c_and_none_before_validation(iris):
    """Ctrl-C in an epoch: the fit stops with scikit-learn's warning and the
    interrupted epoch's task still ends, before the fit's; a fit refused by
    validation calls no task hook at all. Oracle: the hooks' pairing rule."""
    X, y = iris
    recorder = Interrupter()
    with pytest.warns(UserWarning, match="interrupted"):
        MLPClassifier((6,), max_iter=10, random_state=0).set_callbacks(recorder).fit(X, y)
    assert _subtasks(recorder.calls, "begin") == _subtasks(recorder.calls, "end") == [0, 1, 2]
    assert recorder.calls[-2:] == [("end", "fit", 0), ("teardown", "fit")]

    recorder = Recorder()
    with pytest.raises(ValueError, match="pieces"):
        MLPClassifier((6,), activation="maxout", activation_params={"pieces": 0}).set_callbacks(
            recorder).fit(X, y)
    assert not [c for c in recorder.calls if c[0] in ("begin", "end")]


def test_partial_fit_is_one_epoch_task(iris):
    """partial_fit runs one epoch: one subtask (oracle: the rule)."""
    X, y = iris
    recorder = Recorder()
    MLPClassifier((6,), random_state=0).set_callbacks(recorder).partial_fit(
        X, y, classes=np.unique(y))
    assert _subtasks(recorder.calls, "end") == [0]


def test_scoring_monitor_logs_a_score_per_epoch(iris):
    """scikit-learn's ScoringMonitor logs the fit and each epoch; the last
    epoch's accuracy is the fitted model's (oracle: est.score)."""
    X, y = iris
    monitor = ScoringMonitor(scoring="accuracy")
    est = _fit_quietly(MLPClassifier((6,), max_iter=4, random_state=0).set_callbacks(monitor),
                       X, y)
    rows = monitor.get_logs().data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert [row["task_id"] for row in epochs] == [0, 1, 2, 3]
    assert epochs[-1]["accuracy"] == est.score(X, y)


def test_callbacks_propagate_from_a_grid_search(iris):
    """GridSearchCV passes auto-propagated callbacks on: every fit of the
    search reports its epochs (oracle: n_candidates x n_splits fits and the
    refit, of max_iter epochs each), and scikit-learn's ProgressBar runs through it."""
    pytest.importorskip("rich")
    X, y = iris
    recorder = PropagatedRecorder()
    search = GridSearchCV(MLPClassifier((4,), max_iter=3, random_state=0),
                          {"alpha": [1e-4, 1e-2]}, cv=2)
    _fit_quietly(search.set_callbacks(recorder), X, y)
    epochs = [c for c in recorder.calls if c[0] == "end" and c[1] == "epoch"]
    assert len(epochs) == (2 * 2 + 1) * 3  # 2 candidates x 2 splits, the refit; 3 epochs

    search = GridSearchCV(MLPClassifier((4,), max_iter=3, random_state=0),
                          {"alpha": [1e-4, 1e-2]}, cv=2)
    _fit_quietly(search.set_callbacks(ProgressBar(max_propagation_depth=None)), X, y)
    assert search.best_estimator_.n_iter_ == 3
