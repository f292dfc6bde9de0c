"""mlpfast on a dask cluster: GridSearchCV under joblib's dask backend,
dask-ml's Incremental, and the OpenMP threads of a worker.

One LocalCluster of two worker processes serves the module. Oracles: the same
search, or the same partial_fit calls, run in this process (the model does not
depend on the thread count, so the results must be equal bit for bit); for the
threads, the worker's own thread count and the nanny's configuration.
"""

import contextlib
import logging
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("dask")
pytest.importorskip("distributed")
pytest.importorskip("dask_ml")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from dask.distributed import Client, LocalCluster, get_task_stream  # noqa: E402
from dask_ml.wrappers import Incremental  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from mlpfast import MLPClassifier, _config, _engine  # noqa: E402


def _restore_environ(saved):
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


@contextlib.contextmanager
def _local_cluster(**kwargs):
    """A LocalCluster of worker processes and a Client on it.

    The nannies run in this process and, before they spawn the workers, set
    their ``distributed.nanny.pre-spawn-environ`` (OMP_NUM_THREADS=1, ...) in
    its environment, where the next cluster's nannies would read it ahead of
    their configuration: put the environment back once the workers are up.
    """
    saved = dict(os.environ)
    with LocalCluster(processes=True, silence_logs=logging.ERROR,
                      dashboard_address=":0", **kwargs) as cluster:
        _restore_environ(saved)
        with Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def client():
    with _local_cluster(n_workers=2, threads_per_worker=1) as client:
        yield client


def _ran_on(tasks, client):
    return {task["worker"] for task in tasks.data} <= set(client.nthreads())


def test_grid_search_under_dask_backend(client):
    """The README's search, its fits on the workers, gives the same results.

    Oracle: the same GridSearchCV run sequentially in this process: identical
    scores for every split and candidate, and the same best_params_; and the
    output the README shows for it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 epochs, on purpose
        X, y = load_digits(return_X_y=True)
        search = GridSearchCV(MLPClassifier(max_iter=20, random_state=0),
                              {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]})
        with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            search.fit(X / 16, y)
        oracle = clone(search).fit(X / 16, y)

    assert tasks.data and _ran_on(tasks, client)
    for key in oracle.cv_results_:
        if key.endswith("_test_score"):
            np.testing.assert_array_equal(search.cv_results_[key], oracle.cv_results_[key],
                                          err_msg=key)
    assert search.best_params_ == oracle.best_params_
    # and what the README says it prints
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")) as f:
        readme = f.read()
    assert f"`{search.best_params_} {search.best_score_:.3f}`" in readme


def test_incremental_partial_fit_over_blocks(client):
    """dask-ml's Incremental calls partial_fit on each block, on the workers.

    Oracle: the same partial_fit calls on the same blocks, as NumPy arrays, in
    order, in this process: identical coefs_, intercepts_ and predictions.
    """
    rng = np.random.RandomState(0)
    X = rng.randn(1000, 10)
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    blocks = 250
    X_dask = da.from_array(X, chunks=(blocks, 10))
    y_dask = da.from_array(y, chunks=blocks)
    assert X_dask.numblocks[0] == 4

    model = Incremental(MLPClassifier((16,), random_state=0), scoring="accuracy",
                        shuffle_blocks=False)
    with get_task_stream(client) as tasks:
        model.fit(X_dask, y_dask, classes=[0, 1, 2])
    oracle = MLPClassifier((16,), random_state=0)
    for start in range(0, len(X), blocks):
        oracle.partial_fit(X[start:start + blocks], y[start:start + blocks], classes=[0, 1, 2])

    assert tasks.data and _ran_on(tasks, client)
    fitted = model.estimator_
    assert fitted.t_ == oracle.t_ == len(X)
    for got, expected in zip(fitted.coefs_ + fitted.intercepts_,
                             oracle.coefs_ + oracle.intercepts_):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.predict(X_dask).compute(), oracle.predict(X))
    assert model.score(X_dask, y_dask) == oracle.score(X, y)


def _threads(client):
    """Per worker: its thread count, OMP_NUM_THREADS, and mlpfast's threads."""
    env = client.run(os.getenv, "OMP_NUM_THREADS")
    effective = client.run(_config.effective_n_threads)
    omp = client.run(_engine.openmp_max_threads)
    return {address: (n, env[address], effective[address], omp[address])
            for address, n in client.nthreads().items()}


@pytest.mark.skipif("OMP_NUM_THREADS" in os.environ,
                    reason="OMP_NUM_THREADS in the environment overrides the nanny's default")
def test_worker_runs_one_thread_per_task_by_default(client):
    """The nanny starts each worker with OMP_NUM_THREADS=1: one thread per fit.

    Oracle: each worker's own thread count (threads_per_worker=1 here) and the
    default of ``distributed.nanny.pre-spawn-environ``.
    """
    assert str(dask.config.get("distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS")) == "1"
    threads = _threads(client)
    assert len(threads) == 2
    assert all(t == (1, "1", 1, 1) for t in threads.values()), threads


@pytest.mark.skipif(not _engine.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("threads_per_worker, how, expected", [
    (2, None, (2, "1", 1, 1)),  # two fits at a time, each on one thread
    (1, "config", (1, "2", 2, 2)),  # one fit at a time, on two threads
    (1, "environ", (1, "2", 2, 2)),  # the same, from the environment
])
def test_worker_threads_follow_omp_num_threads(threads_per_worker, how, expected, monkeypatch):
    """A worker's fits run on OMP_NUM_THREADS threads, whatever its thread
    count: 1, unless ``distributed.nanny.pre-spawn-environ`` says otherwise or
    OMP_NUM_THREADS is set where the nanny starts (it overrides that setting).

    Oracle: the worker's threads_per_worker and the OMP_NUM_THREADS it is given.
    """
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = {}
    if how == "config":
        config["distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS"] = 2
    elif how == "environ":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with dask.config.set(config), _local_cluster(
            n_workers=1, threads_per_worker=threads_per_worker) as client:
        threads = _threads(client)
    assert list(threads.values()) == [expected], threads
