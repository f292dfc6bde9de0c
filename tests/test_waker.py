"""The waker threads (csrc/mlpfast_wake.h): they use CPU only while held, never
change a result, and start again in a forked child. Oracles: the kernel's CPU
accounting of the threads (/proc), the wakers' own counters, and the same fit
with waking off."""

import glob
import multiprocessing
import os
import sys
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

import mlpfast
from mlpfast import MLPClassifier, _engine

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc and the wakers' thread names")


def _waker_cpu_seconds():
    """CPU seconds the mlpfast-waker threads of this process have used."""
    ticks = 0
    for task in glob.glob("/proc/self/task/*"):
        try:
            with open(os.path.join(task, "comm")) as f:
                name = f.read().strip()
            with open(os.path.join(task, "stat")) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        if name == "mlpfast-waker":
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def waking_on():
    previous = _engine.set_wake_enabled(True)
    yield
    _engine.set_wake_enabled(previous)


def _spun_once(before, timeout=2.0):
    """Waits until a spin started after `before` (wake_stats) has ended; returns
    the stats then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = _engine.wake_stats()
        if stats["spins"] > before["spins"] and stats["spin_seconds"] > before["spin_seconds"]:
            return stats
        time.sleep(0.01)
    raise AssertionError(f"no spin ended within {timeout} s: {stats}")


@linux_only
@pytest.mark.parametrize("release", [True, False])
def test_a_hold_wakes_a_waker_for_its_time_at_most(waking_on, release):
    """A hold wakes a waker; its spin ends by the hold's time (or sooner: when
    released, or when another thread has run on its CPU) and then the waker
    uses no CPU."""
    seconds = 0.1
    before = _engine.wake_stats()
    assert _engine.wake_hold(2, seconds)
    try:
        if release:  # once the waker runs (a hold released before has no spin)
            deadline = time.monotonic() + 1.0
            while (_engine.wake_stats()["spins"] == before["spins"]
                   and time.monotonic() < deadline):
                time.sleep(0.001)
        else:
            time.sleep(seconds + 0.15)  # past its time
    finally:
        _engine.wake_release()
    after = _spun_once(before)
    assert after["helpers"] >= 1 and after["holds"] == before["holds"]
    assert after["spins"] == before["spins"] + 1
    assert after["spin_seconds"] - before["spin_seconds"] <= seconds + 0.05
    start = _waker_cpu_seconds()
    time.sleep(0.3)
    assert _waker_cpu_seconds() - start <= 0.03  # asleep


def test_waking_off_takes_no_hold(waking_on):
    _engine.set_wake_enabled(False)
    assert not _engine.wake_hold(2, 1.0)
    assert _engine.set_wake_enabled(True) is False
    assert not _engine.wake_hold(1, 1.0)  # a one-thread team needs nobody woken


def test_releases_never_go_below_zero(waking_on):
    holds = _engine.wake_stats()["holds"]
    for _ in range(3):
        _engine.wake_release()
    assert _engine.wake_stats()["holds"] == max(0, holds - 3)


def _child_stats():
    after_fork = _engine.wake_stats()
    took = _engine.wake_hold(2, 5.0)
    time.sleep(0.2)
    held = _engine.wake_stats()
    _engine.wake_release()
    return after_fork, took, held


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork")
def test_a_forked_child_starts_its_own_wakers(waking_on):
    assert _engine.wake_hold(2, 5.0)  # the parent has a waker, held
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            after_fork, took, held = pool.apply(_child_stats)
    finally:
        _engine.wake_release()
    assert after_fork["helpers"] == 0 and after_fork["holds"] == 0
    assert took and held["helpers"] == 1 and held["holds"] == 1
    assert held["taken"] == after_fork["taken"] + 1
    assert held["spins"] > after_fork["spins"]


def test_fits_are_the_same_with_waking_on_and_off_and_concurrent(waking_on):
    """Four fits at once in Python threads, with waking on; each equals the same
    fit with waking off, and no hold is left behind."""
    X, y = load_digits(return_X_y=True)
    X = X / 16

    def fit():
        return MLPClassifier(hidden_layer_sizes=(50,), max_iter=3, random_state=0).fit(X, y)

    with threadpool_limits(limits=2, user_api="openmp"):
        _engine.set_wake_enabled(False)
        reference = fit()
        _engine.set_wake_enabled(True)
        taken = _engine.wake_stats()["taken"]
        two_threads = mlpfast._config.effective_n_threads() >= 2
    fits = [None] * 4

    def run(i):
        # OpenMP's thread limit is per thread: each sets its own
        with threadpool_limits(limits=2, user_api="openmp"):
            fits[i] = fit()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for est in fits:
        for a, b in zip(est.coefs_ + est.intercepts_,
                        reference.coefs_ + reference.intercepts_):
            np.testing.assert_array_equal(a, b)
    assert _engine.wake_stats()["holds"] == 0
    assert _engine.wake_stats()["taken"] == taken + (4 if two_threads else 0)


def test_only_short_epochs_wake_the_other_cpus():
    """The rule of _threads_to_wake: one epoch's forward multiply-adds (rows x
    the products of a row through the hidden layers and one output) at most
    _WAKE_MAX_MACS; inputs without a 2-D shape never wake."""
    from mlpfast._multilayer_perceptron import _WAKE_MAX_MACS

    n_threads = mlpfast._config.effective_n_threads()
    est = MLPClassifier(hidden_layer_sizes=(100, 10))
    per_row = 64 * 100 + 100 * 10 + 10 * 1
    rows = _WAKE_MAX_MACS // per_row
    assert est._threads_to_wake(np.empty((rows, 64))) == n_threads
    assert est._threads_to_wake(np.empty((rows + 1, 64))) == 1
    assert MLPClassifier(hidden_layer_sizes=100)._threads_to_wake(np.empty((10, 64))) == n_threads
    assert est._threads_to_wake([[0.0] * 64] * 10) == 1


def test_a_threaded_prediction_of_a_few_rows_wakes_the_other_cpus(waking_on):
    """Oracles: the wakers' spin counter, and the same prediction with waking off."""
    X, y = load_digits(return_X_y=True)
    est = MLPClassifier(hidden_layer_sizes=(50,), max_iter=2, random_state=0).fit(X / 16, y)
    with threadpool_limits(limits=2, user_api="openmp"):
        _engine.set_wake_enabled(False)
        reference = est.predict_proba(X / 16)
        _engine.set_wake_enabled(True)
        taken = _engine.wake_stats()["taken"]
        got = est.predict_proba(X / 16)
        two_threads = mlpfast._config.effective_n_threads() >= 2
    np.testing.assert_array_equal(got, reference)
    assert _engine.wake_stats()["taken"] == taken + (1 if two_threads else 0)


def test_a_hold_wakes_as_many_wakers_as_its_team_needs(waking_on):
    """With three wakers started, a two-thread team's hold sets one spinning."""
    assert _engine.wake_hold(4, 0.2)
    _engine.wake_release()
    time.sleep(0.05)
    before = _engine.wake_stats()
    assert before["helpers"] >= 3
    assert _engine.wake_hold(2, 0.2)
    time.sleep(0.05)
    _engine.wake_release()
    time.sleep(0.05)
    assert _engine.wake_stats()["spins"] == before["spins"] + 1


@linux_only
def test_a_waker_stops_once_another_thread_has_run_on_its_cpu(waking_on):
    """Every CPU busy with a spinning process: the waker's first yield gives its
    CPU away, and its spin ends long before the hold's time."""
    n = len(os.sched_getaffinity(0))
    busy = [multiprocessing.get_context("spawn").Process(target=_spin_forever)
            for _ in range(n)]
    for p in busy:
        p.start()
    try:
        time.sleep(0.3)  # they are running
        before = _engine.wake_stats()
        assert _engine.wake_hold(2, 0.5)
        try:
            after = _spun_once(before, timeout=0.45)
        finally:
            _engine.wake_release()
    finally:
        for p in busy:
            p.kill()
            p.join()
    assert after["spin_seconds"] - before["spin_seconds"] < 0.25


def _spin_forever():
    while True:
        pass


def test_a_prediction_inside_a_held_block_takes_no_hold_of_its_own(waking_on):
    """What early stopping does: predict (threaded, few rows) inside a fit's
    cpus_awake block. Oracle: the holds-taken counter."""
    X, y = load_digits(return_X_y=True)
    est = MLPClassifier(hidden_layer_sizes=(50,), max_iter=2, random_state=0).fit(X / 16, y)
    with threadpool_limits(limits=2, user_api="openmp"):
        taken = _engine.wake_stats()["taken"]
        with mlpfast._config.cpus_awake(2):
            est.predict(X / 16)
            est.predict(X / 16)
    assert _engine.wake_stats()["taken"] == taken + 1


@pytest.mark.skipif(sys.platform == "win32", reason="no waker threads without POSIX threads")
def test_mlpfast_wake_0_turns_the_wakers_off(tmp_path):
    import subprocess

    code = "from mlpfast import _engine; print(_engine.wake_hold(2, 0.01))"
    # the mlpfast under test (not a source tree in the working directory)
    where = os.path.dirname(os.path.dirname(os.path.abspath(mlpfast.__file__)))
    env = dict(os.environ, PYTHONPATH=where)
    outputs = [subprocess.run([sys.executable, "-c", code], env=dict(env, MLPFAST_WAKE=value),
                              cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.strip()
               for value in ("0", "1")]
    assert outputs == ["False", "True"]
