"""fit beyond scikit-learn's model: mlpfast against PyTorch on the same network.

* ``test_beyond_paired[<data>-<feature>-<dtype>]``: mlpfast with the feature
  (leaky_relu, gelu, dropout 0.2 after every hidden layer, maxout with 2
  pieces) and PyTorch's same
  architecture and optimiser, in paired rounds on the ``small`` and
  ``tabular`` data; for dropout also mlpfast without it (the dropout's
  overhead); on ``mnist`` with gelu, mlpfast and the GEMM floor.

scikit-learn has none of these, so each fit is validated on its own: every
epoch ran, the model's predict_proba is a NumPy forward pass of its weights,
and PyTorch's last epoch's loss is within TORCH_LOSS_RTOL of mlpfast's.
"""

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import erfc

from common import (CASES, MAXOUT_PIECES, TORCH_LOSS_RTOL, GemmFloor, check_ran_all_epochs,
                    data, fit, median_ratio, paired_rounds, settle, torch_peer)

FEATURES = {"leaky_relu": {"activation": "leaky_relu"}, "gelu": {"activation": "gelu"},
            "dropout": {"dropout": 0.2}, "maxout": {"activation": "maxout"}}
BEYOND = [(d, f) for d in ("small", "tabular") for f in FEATURES] + [("mnist", "gelu")]

ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0),
               "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
               "gelu": lambda z: 0.5 * z * erfc(-z / np.sqrt(2)),
               # piece j of unit o in column j O + o
               "maxout": lambda z: z.reshape(len(z), MAXOUT_PIECES, -1).max(axis=1)}


def beyond_case(data_name, feature):
    return dataclasses.replace(CASES[data_name], **FEATURES[feature])


def check_mlpfast(est, case, dtype):
    """Every epoch ran, the loss is finite, predict_proba is the NumPy forward
    pass (softmax of the last layer) of the model's weights."""
    check_ran_all_epochs(est, case, dtype)
    X = np.asarray(data(case.name, dtype)[0][:2000], dtype=np.float64)
    h = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W.astype(np.float64) + b
        if i < len(est.coefs_) - 1:
            h = ACTIVATIONS[case.activation](h)
    expected = np.exp(h - h.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert_allclose(est.predict_proba(X.astype(dtype)), expected, rtol=0,
                    atol=1e-5 if dtype == "float32" else 1e-10)


def peers_of(data_name, feature, dtype):
    case = beyond_case(data_name, feature)
    X, y = data(data_name, dtype)
    ours = fit("mlpfast", case, X, y)
    check_mlpfast(ours, case, dtype)
    peers = {"mlpfast": lambda: fit("mlpfast", case, X, y)}

    def check_torch(curve, case_name, dtype):
        assert len(curve) == case.epochs and np.isfinite(curve[-1])
        ref = ours.loss_curve_[-1]
        assert abs(curve[-1] - ref) <= TORCH_LOSS_RTOL * abs(ref), (
            f"torch final loss {curve[-1]:.5g}, mlpfast's {ref:.5g}")

    if data_name == "mnist":
        peers["floor"] = GemmFloor(data_name, dtype).fit
    else:
        run = torch_peer(data_name, dtype, case=case, check=check_torch)
        if run is None:
            pytest.skip("torch is not installed")
        peers["torch"] = run
    if case.dropout:
        plain = dataclasses.replace(case, dropout=0.0)
        peers["plain"] = lambda: fit("mlpfast", plain, X, y)
    return case, peers


@pytest.mark.parametrize("data_name, feature, dtype", [
    pytest.param(d, f, t, id=f"{d}-{f}-{t}") for d, f in BEYOND for t in ("float32", "float64")])
def test_beyond_paired(benchmark, data_name, feature, dtype):
    case, peers = peers_of(data_name, feature, dtype)
    rounds = case.paired_rounds
    X, _ = data(data_name, dtype)
    benchmark.group = f"beyond {data_name} {feature} {dtype}"
    benchmark.extra_info.update(
        op="beyond", case=f"{data_name}-{feature}", dtype=dtype, peer="all", rounds=rounds,
        n_samples=X.shape[0], n_features=X.shape[1],
        hidden_layer_sizes=list(case.hidden_layer_sizes), batch_size=case.batch_size,
        epochs=case.epochs)
    times, last = paired_rounds(benchmark, peers, rounds, before_each=settle)
    check_ran_all_epochs(last["mlpfast"], case, dtype)
    mine = times["mlpfast"]
    ratios = {"mlpfast": float(np.median(mine))}
    if "torch" in times:
        ratios["torch/mlpfast"] = median_ratio(times["torch"], mine)
    if "plain" in times:
        ratios["mlpfast/plain"] = median_ratio(mine, times["plain"])
    if "floor" in times:
        ratios["mlpfast/floor"] = median_ratio(mine, times["floor"])
    benchmark.extra_info.update(times=times, ratios=ratios)
