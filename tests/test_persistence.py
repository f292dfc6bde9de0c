"""Saving and loading fitted estimators: skops.io with mlpfast's trusted
types, and the version check on unpickling.

Oracles: the original estimator's predictions; skops.io's own refusal of
types it was not told to trust; scikit-learn's InconsistentVersionWarning
(mlpfast's is a subclass of it).
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import InconsistentVersionWarning as SklearnVersionWarning

import mlpfast
from mlpfast import MLPClassifier, MLPRegressor

ESTIMATORS = {
    "adam": lambda: MLPClassifier((5,), max_iter=5, random_state=0),
    "sgd-prelu": lambda: MLPRegressor(hidden_layer_sizes=(5, 4), solver="sgd",
                                      activation=["prelu", "maxout"], max_iter=5,
                                      random_state=0),
    "lbfgs-hinge": lambda: MLPClassifier((5,), solver="lbfgs", loss="hinge", max_iter=5,
                                         random_state=0),
}


def _fitted(name):
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ESTIMATORS[name]().fit(X, y), X


@pytest.mark.parametrize("name", ESTIMATORS)
def test_skops_loads_with_the_trusted_types(name, tmp_path):
    """skops.io refuses the file by default (its UntrustedTypesFoundException)
    and loads it with trusted=mlpfast.SKOPS_TRUSTED_TYPES, predicting as the
    original; every type skops flags is in the list."""
    sio = pytest.importorskip("skops.io")
    est, X = _fitted(name)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    assert set(sio.get_untrusted_types(file=path)) <= set(mlpfast.SKOPS_TRUSTED_TYPES)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    loaded = sio.load(path, trusted=mlpfast.SKOPS_TRUSTED_TYPES)
    assert type(loaded) is type(est)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_unpickling_with_another_version_warns(monkeypatch):
    """A pickle from another mlpfast version (the version recorded when
    pickled differs from the one loading it) warns with mlpfast's
    InconsistentVersionWarning, which scikit-learn's filter catches too; the
    same version is silent."""
    est, X = _fitted("adam")
    data = pickle.dumps(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = pickle.loads(data)
    np.testing.assert_array_equal(same.predict(X), est.predict(X))

    monkeypatch.setattr(mlpfast._persistence, "__version__", "9.9.9")
    with pytest.warns(SklearnVersionWarning) as record:
        pickle.loads(data)
    warning = record[0].message
    assert isinstance(warning, mlpfast.InconsistentVersionWarning)
    assert (warning.original_mlpfast_version, warning.current_mlpfast_version) == (
        mlpfast.__version__, "9.9.9")
    assert "MLPClassifier from mlpfast version" in str(warning)
