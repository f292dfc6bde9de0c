"""Saving and loading fitted estimators: the version check on unpickling."""

import warnings

from sklearn.exceptions import InconsistentVersionWarning as _SklearnVersionWarning

from mlpfast._version import __version__


class InconsistentVersionWarning(_SklearnVersionWarning):
    """Warns that an estimator is unpickled with another mlpfast version.

    The estimator's state may not mean the same in another version: refit it,
    or load it with the version that saved it. A pickle (pickle, joblib,
    skops) records the version that wrote it; one from before mlpfast
    recorded it counts as version 'unknown'. A subclass of scikit-learn's
    :class:`sklearn.exceptions.InconsistentVersionWarning`, so one filter
    covers both.

    Parameters
    ----------
    estimator_name : str
        The estimator's class name.
    current_mlpfast_version : str
        The version unpickling it.
    original_mlpfast_version : str
        The version that pickled it.

    Attributes
    ----------
    estimator_name : str
        The estimator's class name.
    current_mlpfast_version : str
        The version unpickling it.
    original_mlpfast_version : str
        The version that pickled it ('unknown' for one from before mlpfast
        recorded it).

    See Also
    --------
    sklearn.exceptions.InconsistentVersionWarning : The warning this one subclasses.

    Examples
    --------
    Turn the warning into an error while loading a model:

    >>> import pickle
    >>> import warnings
    >>> from sklearn.datasets import load_iris
    >>> from mlpfast import InconsistentVersionWarning, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> data = pickle.dumps(MLPClassifier(solver="lbfgs", max_iter=500,
    ...                                   random_state=0).fit(X, y))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InconsistentVersionWarning)
    ...     clf = pickle.loads(data)  # the same version: no warning
    >>> clf.predict(X[:1])
    array([0])
    """

    def __init__(self, *, estimator_name, current_mlpfast_version, original_mlpfast_version):
        super().__init__(estimator_name=estimator_name,
                         current_sklearn_version=current_mlpfast_version,
                         original_sklearn_version=original_mlpfast_version)
        self.current_mlpfast_version = current_mlpfast_version
        self.original_mlpfast_version = original_mlpfast_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from mlpfast version "
            f"{self.original_mlpfast_version} when using version "
            f"{self.current_mlpfast_version}. This might lead to breaking code or invalid "
            "results: refit the estimator with this version, or load it with the one "
            "that saved it.")


class VersionedStateMixin:
    """Records mlpfast's version in an estimator's pickled state (pickle,
    joblib, skops) and warns when it is loaded by another version."""

    def __getstate__(self):
        state = super().__getstate__()
        state["_mlpfast_version"] = __version__
        return state

    def __setstate__(self, state):
        original = state.pop("_mlpfast_version", "unknown")
        if original != __version__:
            warnings.warn(InconsistentVersionWarning(
                estimator_name=type(self).__name__, current_mlpfast_version=__version__,
                original_mlpfast_version=original))
        super().__setstate__(state)
