"""predict: one row at a time (``small``) and 20000 rows at once (``mnist``).

* ``test_predict1[small-<dtype>-<peer>]``: the median of single one-row calls,
  a different row each call;
* ``test_predict1_paired[small-<dtype>]``: mlpfast and scikit-learn in paired
  rounds, each a block of one-row calls; the ratio of the blocks' median calls
  per round, its median over rounds (one block lasts a few milliseconds, short
  enough to fall in one of the VM's speed phases whole);
* ``test_predict[mnist-<dtype>-<peer>]``: all rows at once, with the floor of
  the forward products alone in numpy; ``test_predict_paired[mnist-<dtype>]``:
  the same peers in paired rounds, each call settled first.

The models are the validated fits of ``common.fitted``.
"""

import time

import numpy as np
import pytest

from common import (case_params, check_predict, data, fitted, median_ratio, paired_rounds,
                    require_valid, settle)

ROWS_1 = 1000  # single-row calls of test_predict1
BLOCK = 100  # calls per peer and round of test_predict1_paired
PAIRED_ROUNDS_1 = 15
ROUNDS_LARGE = 10
LARGE_PEERS = ("mlpfast", "sklearn", "floor")


def label(benchmark, op, case_name, dtype, peer, n_rows, rounds):
    benchmark.group = f"{op} {case_name} {dtype}"
    benchmark.extra_info.update(op=op, case=case_name, dtype=dtype, peer=peer,
                                n_rows=n_rows, rounds=rounds)


def model(peer, case_name, dtype):
    require_valid(peer, case_name, dtype)
    return fitted(peer, case_name, dtype)


def check(peer, labels, case_name, dtype, rows):
    if peer == "mlpfast":
        check_predict(labels, case_name, dtype, rows)
    else:  # scikit-learn is the reference: the same as its own predict of all rows
        np.testing.assert_array_equal(labels, fitted(peer, case_name, dtype).predict(
            data(case_name, dtype)[0])[rows])


@pytest.mark.parametrize("case_name, dtype, peer",
                         case_params(["small"], peers=["mlpfast", "sklearn"]))
def test_predict1(benchmark, case_name, dtype, peer):
    label(benchmark, "predict1", case_name, dtype, peer, 1, ROWS_1)
    est = model(peer, case_name, dtype)
    X, _ = data(case_name, dtype)
    rows = [X[i:i + 1] for i in range(ROWS_1)]
    got = []

    def one():
        got.append(est.predict(rows[len(got) % ROWS_1])[0])

    settle()
    benchmark.pedantic(one, rounds=ROWS_1, iterations=1, warmup_rounds=5)
    check(peer, got, case_name, dtype, np.arange(len(got)) % ROWS_1)


@pytest.mark.parametrize("case_name, dtype", case_params(["small"]))
def test_predict1_paired(benchmark, case_name, dtype):
    label(benchmark, "paired1", case_name, dtype, "all", 1, PAIRED_ROUNDS_1)
    X, _ = data(case_name, dtype)
    rows = [X[i:i + 1] for i in range(BLOCK)]
    models = {peer: model(peer, case_name, dtype) for peer in ("mlpfast", "sklearn")}
    medians = {peer: [] for peer in models}
    labels = {}

    def one_round():
        order = list(models) if len(medians["mlpfast"]) % 2 == 0 else list(models)[::-1]
        for peer in order:
            settle()
            calls, got = np.empty(BLOCK), []
            for i, row in enumerate(rows):
                t0 = time.perf_counter()
                got.append(models[peer].predict(row)[0])
                calls[i] = time.perf_counter() - t0
            medians[peer].append(float(np.median(calls)))
            labels[peer] = got

    one_round()  # warm-up
    for m in medians.values():
        m.clear()
    benchmark.pedantic(one_round, rounds=PAIRED_ROUNDS_1, iterations=1)
    for peer, got in labels.items():
        check(peer, got, case_name, dtype, slice(0, BLOCK))
    benchmark.extra_info.update(times=medians, ratios={
        "sklearn/mlpfast": median_ratio(medians["sklearn"], medians["mlpfast"])})


def forward_floor(case_name, dtype):
    """The forward products alone, in numpy, with the fitted model's shapes."""
    X, _ = data(case_name, dtype)
    W = [np.array(w) for w in fitted("sklearn", case_name, dtype).coefs_]
    outs = [np.empty((X.shape[0], w.shape[1]), dtype=dtype) for w in W]

    def run():
        A = X
        for w, out in zip(W, outs):
            np.matmul(A, w, out=out)
            A = out
        return A

    np.testing.assert_allclose(run()[:5], np.linalg.multi_dot(
        [X[:5].astype(np.float64)] + [w.astype(np.float64) for w in W]),
        rtol=1e-3 if dtype == "float32" else 1e-10, atol=1e-3)
    return run


def large_peer(peer, case_name, dtype):
    X, _ = data(case_name, dtype)
    if peer == "floor":
        return forward_floor(case_name, dtype)
    est = model(peer, case_name, dtype)
    return lambda: est.predict(X)


@pytest.mark.parametrize("case_name, dtype, peer", case_params(["mnist"], peers=LARGE_PEERS))
def test_predict(benchmark, case_name, dtype, peer):
    X, _ = data(case_name, dtype)
    label(benchmark, "predict", case_name, dtype, peer, X.shape[0], ROUNDS_LARGE)
    run = large_peer(peer, case_name, dtype)
    settle()
    result = benchmark.pedantic(run, rounds=ROUNDS_LARGE, iterations=1, warmup_rounds=1)
    if peer != "floor":
        check(peer, result, case_name, dtype, slice(None))


@pytest.mark.parametrize("case_name, dtype", case_params(["mnist"]))
def test_predict_paired(benchmark, case_name, dtype):
    X, _ = data(case_name, dtype)
    label(benchmark, "paired_predict", case_name, dtype, "all", X.shape[0], ROUNDS_LARGE)
    peers = {peer: large_peer(peer, case_name, dtype) for peer in LARGE_PEERS}
    times, last = paired_rounds(benchmark, peers, ROUNDS_LARGE, before_each=settle,
                                warmup=True)
    for peer in ("mlpfast", "sklearn"):
        check(peer, last[peer], case_name, dtype, slice(None))
    benchmark.extra_info.update(times=times, ratios={
        "sklearn/mlpfast": median_ratio(times["sklearn"], times["mlpfast"]),
        "mlpfast/floor": median_ratio(times["mlpfast"], times["floor"])})
