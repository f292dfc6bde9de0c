"""Resident memory stays flat over many small fits and predictions.

Oracle: the process's resident set size (/proc/self/statm) after gc.collect()
and malloc_trim(0): once the allocator has warmed up, rounds that free
everything they allocate leave it where it was; a round that leaks leaves it
higher by the leak.
"""

import ctypes
import gc
import os
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mlpfast import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self/statm")

WARMUP_ROUNDS = 50
ROUNDS = 300
BUDGET = 5_000_000  # bytes of growth allowed over the last ROUNDS - WARMUP_ROUNDS rounds

# Each round allocates afresh, with new values: X (300 x 10 float64, 24 KB),
# its CSR copies (about 18 KB of data and indices each), y, the estimators' weights,
# the engine's per-fit buffers (several 300 x 16 activations, 38 KB each), and
# the predictions. Leaking any one X-sized buffer per round adds
# 250 x 24 KB = 6 MB over the measured rounds, over BUDGET; so does any leak
# of 20 KB or more per round (BUDGET / 250). Every path runs in every round,
# so a leak on one path alone counts 250 times too.
N, D = 300, 10


def _rss():
    """Resident set size in bytes (statm counts pages), after collecting garbage
    and handing the allocator's free pages back to the system: otherwise a
    leak could first fill pages freed by earlier tests without growing it."""
    gc.collect()
    _malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim(pad):
    """glibc's malloc_trim (a no-op where the C library has none)."""
    try:
        ctypes.CDLL(None).malloc_trim(ctypes.c_size_t(pad))
    except AttributeError:
        pass


def _growth(one_round):
    """Resident growth from after WARMUP_ROUNDS rounds to after ROUNDS rounds."""
    for i in range(ROUNDS):
        if i == WARMUP_ROUNDS:
            start = _rss()
        one_round(i)
    return _rss() - start


def _fit_predict_round(i):
    """A dense classifier, a CSR regressor and two calls that raise ValueError."""
    rng = np.random.RandomState(i)
    X = rng.normal(size=(N, D))
    X[rng.uniform(size=X.shape) < 0.5] = 0.0
    y_class = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    y_reg = X @ rng.normal(size=D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = MLPClassifier(hidden_layer_sizes=(16,), max_iter=1, random_state=i).fit(X, y_class)
        dense.predict_proba(X)
        sparse = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", max_iter=1,
                              random_state=i).fit(sp.csr_matrix(X), y_reg)
        sparse.predict(sp.csr_matrix(X))
        X_bad = X.copy()
        X_bad[rng.randint(N), rng.randint(D)] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            MLPClassifier(max_iter=2).fit(X_bad, y_class)
        with pytest.raises(ValueError, match="NaN"):  # found by the fast predict path in C
            dense.predict(X_bad)


def test_memory_is_flat_over_fit_predict_and_error_rounds():
    """Oracle: resident memory, which a leak of 20 KB or more per round would raise by
    more than BUDGET over the measured rounds."""
    assert _growth(_fit_predict_round) < BUDGET


def test_the_measure_sees_a_leak_of_24_kb_per_round():
    """Oracle: a deliberate leak (an array of 24 KB, written, kept every round) shows
    in resident memory as more than BUDGET, so the test above can fail."""
    kept = []
    try:
        assert _growth(lambda i: kept.append(np.full(3072, float(i)))) > BUDGET
    finally:
        kept.clear()
