"""fit: mlpfast against scikit-learn, PyTorch (when installed) and the GEMM floor.

* ``test_fit[<case>-<dtype>-<peer>]``: each peer in its own benchmark, grouped
  by case and dtype (what ``--benchmark-compare`` compares across commits);
* ``test_fit_paired[<case>-<dtype>]``: all peers in paired rounds (see
  ``common.paired_rounds``); the per-round ratios are the report's figures;
* ``test_fit_memory[mnist-float32-<peer>]``: the peak memory one fit allocates,
  against the size of its training data.
"""

import gc
import tracemalloc

import numpy as np
import pytest

from common import (CASES, GemmFloor, case_params, check_same_fit, check_torch_loss, data,
                    fit, median_ratio, paired_rounds, require_valid, settle, torch_peer)

PEERS = ("mlpfast", "sklearn", "torch", "floor")


def label(benchmark, op, case_name, dtype, peer, **extra):
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    benchmark.group = f"{op} {case_name} {dtype}"
    benchmark.extra_info.update(
        op=op, case=case_name, dtype=dtype, peer=peer, n_samples=X.shape[0],
        n_features=X.shape[1], hidden_layer_sizes=list(case.hidden_layer_sizes),
        batch_size=case.batch_size, epochs=case.epochs, **extra)


def fit_peer(peer, case_name, dtype):
    """The validated ``() -> result`` of one peer's fit, or a skip without torch."""
    if peer == "floor":
        return GemmFloor(case_name, dtype).fit
    if peer == "torch":
        run = torch_peer(case_name, dtype)
        if run is None:
            pytest.skip("torch is not installed")
        return run
    require_valid(peer, case_name, dtype)
    X, y = data(case_name, dtype)
    return lambda: fit(peer, CASES[case_name], X, y)


def check_result(peer, result, case_name, dtype):
    if peer in ("mlpfast", "sklearn"):
        check_same_fit(result, peer, case_name, dtype)
    elif peer == "torch":
        check_torch_loss(result, case_name, dtype)


@pytest.mark.parametrize("case_name, dtype, peer", case_params(peers=PEERS))
def test_fit(benchmark, case_name, dtype, peer):
    case = CASES[case_name]
    rounds = case.rounds if peer in ("mlpfast", "floor") else max(3, case.rounds // 2)
    label(benchmark, "fit", case_name, dtype, peer, rounds=rounds)
    run = fit_peer(peer, case_name, dtype)
    result = benchmark.pedantic(run, setup=settle, rounds=rounds, iterations=1)
    check_result(peer, result, case_name, dtype)


@pytest.mark.parametrize("case_name, dtype", case_params())
def test_fit_paired(benchmark, case_name, dtype):
    """Every peer once per round, each settled first; the validation fits
    were their warm-up."""
    rounds = CASES[case_name].paired_rounds
    label(benchmark, "paired", case_name, dtype, "all", rounds=rounds)
    peers = {}
    for peer in PEERS:
        try:
            peers[peer] = fit_peer(peer, case_name, dtype)
        except pytest.skip.Exception:
            pass
    times, last = paired_rounds(benchmark, peers, rounds, before_each=settle)
    for peer, result in last.items():
        check_result(peer, result, case_name, dtype)
    mine = times["mlpfast"]
    ratios = {f"{p}/mlpfast": median_ratio(times[p], mine) for p in ("sklearn", "torch")
              if p in times}
    ratios["mlpfast/floor"] = median_ratio(mine, times["floor"])
    benchmark.extra_info.update(times=times, ratios=ratios)


def traced_fit(peer, case, X, y):
    """(estimator, peak bytes allocated during the fit above what was allocated
    before). numpy reports its buffers to tracemalloc, and every large buffer of
    either library's fit is a numpy array."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        est = fit(peer, case, X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return est, peak - base


@pytest.mark.parametrize("case_name, dtype, peer",
                         case_params(["mnist"], ["float32"], ["mlpfast", "sklearn"]))
def test_fit_memory(benchmark, case_name, dtype, peer):
    """C-contiguous float32 data must be used in place: a fit that copied it
    would allocate more than the data's own size. Timed: the traced fit."""
    X, y = data(case_name, dtype)
    require_valid(peer, case_name, dtype)
    est, peak = benchmark.pedantic(traced_fit, args=(peer, CASES[case_name], X, y),
                                   setup=settle, rounds=1, iterations=1)
    check_same_fit(est, peer, case_name, dtype)
    label(benchmark, "memory", case_name, dtype, peer, data_bytes=X.nbytes, peak_bytes=peak)
    assert np.isfinite(peak) and peak > 0
