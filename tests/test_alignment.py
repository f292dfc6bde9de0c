"""Arrays that start at an odd byte (views of a byte buffer), as input.

Oracle: the same data in freshly allocated (aligned) arrays. Under the
sanitizer job (tools/sanitize.sh) UBSan also checks that no kernel reads a
misaligned element.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mlpfast import MLPClassifier, MLPRegressor


def _unaligned(a):
    """A C-contiguous copy of a that starts one byte past an aligned address."""
    a = np.ascontiguousarray(a)
    buf = np.empty(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(buf[1:].data, dtype=a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_unaligned_arrays_fit_and_predict_like_aligned_ones(dtype, solver):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 7)).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    sw = rng.uniform(0.5, 2, size=300)
    fits = []
    for make in (np.ascontiguousarray, _unaligned):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(MLPClassifier((16,), solver=solver, max_iter=5, random_state=0)
                        .fit(make(X), make(y), sample_weight=make(sw)))
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)
    for rows in (1, 300):  # the one-row path and the blocked one
        np.testing.assert_array_equal(fits[0].predict_proba(_unaligned(X[:rows])),
                                      fits[0].predict_proba(X[:rows]))


def test_unaligned_sparse_arrays_fit_like_aligned_ones():
    rng = np.random.RandomState(1)
    X = sp.random(200, 30, density=0.2, format="csr", random_state=rng)
    y = rng.normal(size=200)
    X_odd = sp.csr_matrix((_unaligned(X.data), _unaligned(X.indices), _unaligned(X.indptr)),
                          shape=X.shape)
    fits = []
    for data in (X, X_odd):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(data, _unaligned(y)))
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fits[0].predict(X_odd), fits[0].predict(X))


def test_unaligned_array_with_nan_is_refused_as_aligned():
    """Oracle: the error for the same NaN in an aligned array."""
    X = np.random.RandomState(2).normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    X[5, 2] = np.nan
    for make in (np.ascontiguousarray, _unaligned):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            est.predict(make(X))
        with pytest.raises(ValueError, match="Input X contains NaN"):
            MLPClassifier(max_iter=2).fit(make(X), y)
