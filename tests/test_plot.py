"""LossCurveDisplay against the fitted estimator it draws.

Oracle throughout: the estimator's own fitted attributes (loss_curve_,
n_iter_, validation_scores_, best_validation_score_, best_loss_), for
mlpfast's estimators and for scikit-learn's, whose attribute names mlpfast
copies; for errors, scikit-learn's NotFittedError and ImportError.
"""

import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.preprocessing import scale  # noqa: E402

import mlpfast  # noqa: E402
from mlpfast._plot import LossCurveDisplay  # noqa: E402

# Small and quick; tol=0 with a short patience stops a few epochs after the
# lowest loss, so "best" is not simply "last".
STOPS_EARLY = dict(hidden_layer_sizes=(8,), learning_rate_init=0.1, tol=0.0,
                   n_iter_no_change=3, max_iter=60, random_state=0)
EARLY_STOPPING = dict(hidden_layer_sizes=(8,), learning_rate_init=0.05, early_stopping=True,
                      n_iter_no_change=3, max_iter=200, random_state=0)
MODULES = pytest.mark.parametrize("module", [mlpfast, sk], ids=["mlpfast", "sklearn"])


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return scale(X), y


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _first_epoch_of(curve, value):
    """Epoch (from 1) at which ``curve`` first equals ``value``."""
    return int(np.flatnonzero(np.asarray(curve) == value)[0]) + 1


@MODULES
@pytest.mark.parametrize("estimator, solver", [("MLPClassifier", "adam"),
                                               ("MLPRegressor", "sgd")])
def test_loss_line_is_the_loss_curve(iris, module, estimator, solver):
    """Oracle: the estimator's loss_curve_ against epochs 1..n_iter_."""
    X, y = iris
    est = _fit(getattr(module, estimator)(solver=solver, hidden_layer_sizes=(8,),
                                          max_iter=15, random_state=0), X, y)

    display = LossCurveDisplay.from_estimator(est)

    np.testing.assert_array_equal(display.line_.get_xdata(), np.arange(1, est.n_iter_ + 1))
    np.testing.assert_array_equal(display.line_.get_ydata(), est.loss_curve_)
    assert display.line_.axes is display.ax_
    assert display.ax_.get_xlabel() == "Epoch"
    assert display.ax_.get_ylabel() == "Training loss"


@MODULES
def test_early_stopping_draws_validation_on_twin_axis(iris, module):
    """Oracle: validation_scores_ and best_validation_score_ of the estimator."""
    X, y = iris
    est = _fit(module.MLPClassifier(**EARLY_STOPPING), X, y)
    best = _first_epoch_of(est.validation_scores_, est.best_validation_score_)
    assert best < est.n_iter_  # else the marker check below proves little

    display = LossCurveDisplay.from_estimator(est)

    score_ax = display.validation_line_.axes
    assert score_ax is not display.ax_
    assert score_ax.get_shared_x_axes().joined(score_ax, display.ax_)
    assert score_ax.get_ylabel() == "Validation score"
    np.testing.assert_array_equal(display.validation_line_.get_xdata(),
                                  np.arange(1, est.n_iter_ + 1))
    np.testing.assert_array_equal(display.validation_line_.get_ydata(),
                                  est.validation_scores_)
    assert display.best_epoch == best
    np.testing.assert_array_equal(display.best_epoch_line_.get_xdata(), [best, best])
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == ["Training loss", "Validation score", f"Best epoch ({best})"]


@MODULES
def test_without_early_stopping_marks_lowest_loss(iris, module):
    """Oracle: best_loss_ of the estimator, located in its loss_curve_."""
    X, y = iris
    est = _fit(module.MLPClassifier(**STOPS_EARLY), X, y)
    best = _first_epoch_of(est.loss_curve_, est.best_loss_)
    assert best < est.n_iter_  # else the marker check below proves little

    display = LossCurveDisplay.from_estimator(est)

    assert display.validation_line_ is None
    assert display.figure_.axes == [display.ax_]  # no twin axis
    assert display.best_epoch == best
    np.testing.assert_array_equal(display.best_epoch_line_.get_xdata(), [best, best])


def test_given_axes_are_used_and_kwargs_reach_the_loss_line(iris):
    """Oracle: the Axes and Figure passed in, and the keyword arguments given."""
    X, y = iris
    est = _fit(mlpfast.MLPClassifier(**EARLY_STOPPING), X, y)
    fig, ax = plt.subplots()

    display = LossCurveDisplay.from_estimator(est, ax=ax, name="tiny net", color="tab:red",
                                              label="loss")

    assert display.ax_ is ax
    assert display.figure_ is fig
    assert plt.get_fignums() == [fig.number]
    assert display.line_.get_color() == "tab:red"
    assert display.line_.get_label() == "loss"
    assert ax.get_legend().get_title().get_text() == "tiny net"


@pytest.mark.parametrize("color", ["C0", "C1", "tab:orange"])
def test_the_score_line_never_takes_the_loss_lines_colour(iris, color):
    """Oracle: matplotlib's same_color on the two lines' colours, whatever
    colour of the cycle the loss line is given."""
    from matplotlib.colors import same_color

    X, y = iris
    est = _fit(mlpfast.MLPClassifier(**EARLY_STOPPING), X, y)
    display = LossCurveDisplay.from_estimator(est, color=color)
    assert not same_color(display.validation_line_.get_color(), display.line_.get_color())


def test_no_axes_creates_a_figure_and_the_class_name_titles_the_legend(iris):
    """Oracle: matplotlib's figure registry and the estimator's class name."""
    X, y = iris
    est = _fit(mlpfast.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
               X, y)

    display = LossCurveDisplay.from_estimator(est)

    assert plt.get_fignums() == [display.figure_.number]
    assert display.ax_.figure is display.figure_
    assert display.ax_.get_legend().get_title().get_text() == "MLPRegressor"


def test_constructor_data_without_optional_curves():
    """Oracle: the data given to the constructor."""
    display = LossCurveDisplay(loss_curve=[0.9, 0.5, 0.4])

    assert display.plot() is display
    np.testing.assert_array_equal(display.line_.get_ydata(), [0.9, 0.5, 0.4])
    assert display.validation_line_ is None
    assert display.best_epoch_line_ is None
    assert display.ax_.get_legend().get_title().get_text() == ""


@MODULES
def test_unfitted_estimator_raises_not_fitted_error(module):
    """Oracle: scikit-learn's NotFittedError, as check_is_fitted raises it."""
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(module.MLPClassifier())


@MODULES
@pytest.mark.parametrize("first_solver", [None, "adam"], ids=["lbfgs", "adam-then-lbfgs"])
def test_lbfgs_estimator_raises_value_error(iris, module, first_solver):
    """Oracle: the solver the estimator was last fitted with (lbfgs records no
    loss curve; a refit with it leaves the earlier fit's curve behind)."""
    X, y = iris
    est = module.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    if first_solver is not None:
        _fit(est.set_params(solver=first_solver), X, y)
    _fit(est.set_params(solver="lbfgs"), X, y)

    with pytest.raises(ValueError, match="solver='lbfgs'"):
        LossCurveDisplay.from_estimator(est)


def test_missing_matplotlib_raises_import_error(iris, monkeypatch):
    """Oracle: scikit-learn's check_matplotlib_support message."""
    X, y = iris
    est = _fit(mlpfast.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
               X, y)
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    with pytest.raises(ImportError, match="LossCurveDisplay.from_estimator requires matplotlib"):
        LossCurveDisplay.from_estimator(est)
    with pytest.raises(ImportError, match="LossCurveDisplay.plot requires matplotlib"):
        LossCurveDisplay(loss_curve=[1.0]).plot()
