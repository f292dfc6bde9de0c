"""LossCurveDisplay: the training curve of an MLP fitted with 'sgd' or 'adam'.

Follows scikit-learn's Display conventions: the constructor stores data,
``from_estimator`` reads it from a fitted estimator, ``plot`` draws it and
keeps the matplotlib artists as attributes ending in ``_``. matplotlib is
optional and imported only when something is drawn.
"""

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.validation import check_is_fitted


class LossCurveDisplay:
    """Training loss (and validation score) per epoch of a multi-layer perceptron.

    Use :meth:`LossCurveDisplay.from_estimator` to read the curves from a
    fitted ``MLPClassifier`` or ``MLPRegressor`` (mlpfast's or
    scikit-learn's). All parameters are stored as attributes.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training loss at the end of each epoch; epoch ``i`` (from 1) is
        ``loss_curve[i - 1]``.

    validation_scores : array-like of shape (n_epochs,), default=None
        Score on the held-out validation set at the end of each epoch, as
        recorded under ``early_stopping=True``. None: not drawn.

    best_epoch : int, default=None
        Epoch (counted from 1) to mark, such as the one whose weights early
        stopping kept. None: not marked.

    estimator_name : str, default=None
        Name used as the legend's title. None: no title.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training loss.

    validation_line_ : matplotlib Line2D or None
        The validation score, on a second y axis; None without
        ``validation_scores``.

    best_epoch_line_ : matplotlib Line2D or None
        Vertical line at ``best_epoch``; None without ``best_epoch``.

    ax_ : matplotlib Axes
        Axes holding the loss (the validation score is on ``ax_``'s twin).

    figure_ : matplotlib Figure
        Figure holding ``ax_``.

    See Also
    --------
    LossCurveDisplay.from_estimator : Plot the curves of a fitted estimator.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlpfast import LossCurveDisplay, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(early_stopping=True, max_iter=300, random_state=0).fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(clf)
    >>> display.line_.get_xdata()[:3]
    array([1, 2, 3])
    """

    def __init__(self, *, loss_curve, validation_scores=None, best_epoch=None,
                 estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.best_epoch = best_epoch
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **kwargs):
        """Plot the training curves of a fitted MLP.

        The marked epoch is the one with the best validation score under
        early stopping (its weights are the ones the estimator kept), else
        the one with the lowest training loss (``best_loss_``).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            Fitted with ``solver='sgd'`` or ``solver='adam'``; mlpfast's or
            scikit-learn's.

        ax : matplotlib Axes, default=None
            Axes to draw on. None: a new figure and axes.

        name : str, default=None
            Legend title. None: the estimator's class name.

        **kwargs : dict
            Passed to matplotlib's ``plot`` for the loss line.

        Returns
        -------
        display : LossCurveDisplay
            Holds the curves and the artists drawn.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``estimator`` is not fitted.
        ValueError
            If ``estimator`` was fitted with ``solver='lbfgs'``, which records
            no loss curve.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from mlpfast import LossCurveDisplay, MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(max_iter=1000, random_state=0).fit(X, y)
        >>> display = LossCurveDisplay.from_estimator(clf)
        >>> display.validation_line_ is None
        True
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        # A refit with lbfgs leaves an earlier fit's loss_curve_ behind, so the
        # solver decides, not the attribute alone.
        solver = getattr(estimator, "solver", None)
        if solver == "lbfgs" or not hasattr(estimator, "loss_curve_"):
            raise ValueError(
                f"{cls.__name__} needs the loss_curve_ that only the 'sgd' and "
                f"'adam' solvers record; this estimator was fitted with "
                f"solver={solver!r}."
            )

        loss_curve = np.asarray(estimator.loss_curve_)
        validation_scores = getattr(estimator, "validation_scores_", None)
        if validation_scores is not None:
            validation_scores = np.asarray(validation_scores)
            # The first epoch reaching best_validation_score_: the one whose
            # weights early stopping restored.
            best_epoch = int(np.argmax(validation_scores)) + 1
        else:
            # The first epoch reaching best_loss_.
            best_epoch = int(np.argmin(loss_curve)) + 1

        display = cls(
            loss_curve=loss_curve,
            validation_scores=validation_scores,
            best_epoch=best_epoch,
            estimator_name=estimator.__class__.__name__ if name is None else name,
        )
        return display.plot(ax=ax, name=name, **kwargs)

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the training loss per epoch, the validation score and the best epoch.

        The loss goes on ``ax`` (left y axis), the validation score, when
        present, on a twin axis (right y axis), and the best epoch, when
        set, as a dashed vertical line. Epochs are numbered from 1.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on. None: a new figure and axes.

        name : str, default=None
            Legend title. None: ``estimator_name``.

        **kwargs : dict
            Passed to matplotlib's ``plot`` for the loss line (its default
            ``label`` is ``"Training loss"``).

        Returns
        -------
        display : LossCurveDisplay
            ``self``, with ``line_``, ``validation_line_``,
            ``best_epoch_line_``, ``ax_`` and ``figure_`` set.

        Examples
        --------
        >>> from mlpfast import LossCurveDisplay
        >>> display = LossCurveDisplay(loss_curve=[1.0, 0.6, 0.5], best_epoch=3)
        >>> display = display.plot(color="tab:green")
        >>> display.line_.get_ydata()
        array([1. , 0.6, 0.5])
        """
        check_matplotlib_support(f"{self.__class__.__name__}.plot")
        import matplotlib.pyplot as plt
        from matplotlib.colors import same_color
        from matplotlib.ticker import MaxNLocator

        if ax is None:
            _, ax = plt.subplots()
        if name is None:
            name = self.estimator_name

        loss_curve = np.asarray(self.loss_curve)
        kwargs.setdefault("label", "Training loss")
        (self.line_,) = ax.plot(np.arange(1, loss_curve.size + 1), loss_curve, **kwargs)
        ax.set(xlabel="Epoch", ylabel="Training loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        lines = [self.line_]

        self.validation_line_ = None
        if self.validation_scores is not None:
            scores = np.asarray(self.validation_scores)
            score_ax = ax.twinx()
            # A twin axis restarts the colour cycle: the score takes the
            # cycle's first colour that is not the loss line's.
            cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", [])
            color = next((c for c in cycle if not same_color(c, self.line_.get_color())),
                         "black")
            (self.validation_line_,) = score_ax.plot(
                np.arange(1, scores.size + 1), scores, color=color,
                linestyle="-.", label="Validation score",
            )
            score_ax.set_ylabel("Validation score")
            # Keep ax (and so the legend) above its twin, see-through.
            ax.set_zorder(score_ax.get_zorder() + 1)
            ax.patch.set_visible(False)
            lines.append(self.validation_line_)

        self.best_epoch_line_ = None
        if self.best_epoch is not None:
            self.best_epoch_line_ = ax.axvline(
                self.best_epoch, color="black", linestyle="--", alpha=0.6,
                label=f"Best epoch ({self.best_epoch})",
            )
            lines.append(self.best_epoch_line_)

        # One legend for both y axes.
        ax.legend(lines, [line.get_label() for line in lines], title=name)

        self.ax_ = ax
        self.figure_ = ax.figure
        return self
