"""What the benchmark modules share: the cases, their data, the peers and the checks.

Validate, then time: every benchmark checks its peer's result against the
reference (``require_valid``) before timing it, and checks the last timed
result again afterwards.
"""

import copy
import functools
import io
import os
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from mlpfast import _engine

SEED = 0
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Case:
    name: str
    hidden_layer_sizes: tuple
    batch_size: int
    epochs: int
    rounds: int  # separate rounds of mlpfast and the floor; sklearn and torch get half
    paired_rounds: int
    regression: bool = False  # MLPRegressor instead of MLPClassifier
    activation: str = "relu"
    dropout: float = 0.0  # mlpfast and torch only (bench_beyond.py)


# The data (``_data64``) and the estimators' parameters must not change:
# figures stay comparable from run to run only if the work does.
CASES = {c.name: c for c in (
    Case("small", (100,), batch_size=200, epochs=10, rounds=20, paired_rounds=15),
    Case("tanh", (100,), batch_size=200, epochs=10, rounds=20, paired_rounds=15,
         activation="tanh"),
    Case("tabular", (64, 64), batch_size=128, epochs=1, rounds=10, paired_rounds=9),
    Case("regression", (128,), batch_size=200, epochs=3, rounds=10, paired_rounds=9,
         regression=True),
    Case("mnist", (256, 256), batch_size=256, epochs=2, rounds=5, paired_rounds=7),
    Case("wide", (512, 512), batch_size=512, epochs=1, rounds=5, paired_rounds=7),
)}


def case_params(cases=None, dtypes=DTYPES, peers=None):
    """pytest parameters (case, dtype[, peer]) with ids like ``small-float32-mlpfast``."""
    import pytest

    return [
        pytest.param(c, d, *([p] if peers else []), id="-".join([c, d] + ([p] if peers else [])))
        for c in (cases or CASES) for d in dtypes for p in (peers or [None])
    ]


# ---------------------------------------------------------------- data


@functools.cache
def _data64(case_name):
    from sklearn.datasets import load_digits, make_classification, make_regression
    from sklearn.preprocessing import StandardScaler

    if case_name in ("small", "tanh"):
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    elif case_name in ("mnist", "wide"):
        X, y = make_classification(n_samples=20000, n_features=784, n_informative=50,
                                   n_redundant=0, n_classes=10, random_state=SEED)
        X = StandardScaler().fit_transform(X)
    elif case_name == "tabular":
        X, y = make_classification(n_samples=40000, n_features=54, n_informative=20,
                                   n_redundant=0, n_classes=7, random_state=SEED)
        X = StandardScaler().fit_transform(X)
    elif case_name == "regression":
        X, y = make_regression(n_samples=20000, n_features=100, n_informative=30,
                               noise=10.0, random_state=SEED)
        X = StandardScaler().fit_transform(X)
        y = (y - y.mean()) / y.std()
    else:
        raise KeyError(case_name)
    return np.ascontiguousarray(X, dtype=np.float64), y


@functools.cache
def data(case_name, dtype):
    """(X, y), read-only so that no peer can change them between rounds."""
    X, y = _data64(case_name)
    X = np.ascontiguousarray(X, dtype=dtype)
    if CASES[case_name].regression:
        y = np.ascontiguousarray(y, dtype=dtype)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def n_steps(case_name):
    """Optimiser steps of one fit: batches per epoch times epochs."""
    case = CASES[case_name]
    return case.epochs * -(-len(_data64(case_name)[1]) // case.batch_size)


# ---------------------------------------------------------------- estimators


def make_estimator(peer, case):
    if peer == "mlpfast":
        import mlpfast as module
    else:
        import sklearn.neural_network as module
    cls = module.MLPRegressor if case.regression else module.MLPClassifier
    beyond = {"dropout": case.dropout} if case.dropout else {}
    # tol=0 and a large n_iter_no_change: every epoch runs, in both libraries.
    return cls(hidden_layer_sizes=case.hidden_layer_sizes, activation=case.activation,
               solver="adam", batch_size=case.batch_size, max_iter=case.epochs, tol=0.0,
               n_iter_no_change=10_000, shuffle=True, early_stopping=False,
               random_state=SEED, **beyond)


def fit(peer, case, X, y):
    """One timed fit of mlpfast or scikit-learn: build the estimator and train it."""
    est = make_estimator(peer, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


@functools.cache
def fitted(peer, case_name, dtype):
    """The validation fit, shared by every benchmark of the session."""
    return fit(peer, CASES[case_name], *data(case_name, dtype))


def outputs(est, X):
    """(predict_proba, predict) of a classifier, (predict, None) of a regressor
    (its targets are standardised, so the same absolute bounds fit both)."""
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X), est.predict(X)
    return est.predict(X), None


def n_threads():
    """mlpfast's OpenMP thread count, which the torch peer is given too."""
    import mlpfast

    return int(mlpfast.show_config(file=io.StringIO())["n_threads"])


# ---------------------------------------------------------------- settling

# A thread pool keeps its workers spinning for a while after its work (numpy's
# OpenBLAS, torch's and scikit-learn's OpenMP): on two cores that would take
# CPU from whichever peer runs next. So on an otherwise idle machine each timed
# call starts once the other threads of this process have been still for
# SETTLE_WINDOW. It waits on this process only, never on other processes, and
# the under-load benchmarks do not settle at all.
SETTLE_WINDOW = 0.05
SETTLE_TIMEOUT = 1.0


def _other_threads_ticks():
    me = str(threading.get_native_id())
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if tid != me:
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread has ended
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def settle():
    if not os.path.isdir("/proc/self/task"):
        time.sleep(SETTLE_TIMEOUT / 4)
        return
    before, deadline = _other_threads_ticks(), time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(SETTLE_WINDOW)
        now = _other_threads_ticks()
        if now == before:
            return
        before = now


# ---------------------------------------------------------------- paired rounds

# The VM's speed drifts over seconds to minutes, so ratios between benchmarks
# run minutes apart move with it. Paired rounds run every peer once per round,
# back to back, the order rotating from round to round, take the ratio within
# each round and report the median over rounds.


def paired_rounds(benchmark, peers, rounds, before_each=None, warmup=False):
    """Time ``peers`` ({name: callable}) in paired rounds; returns
    ({name: [seconds per round]}, {name: the last round's result})."""
    names = list(peers)
    times = {name: [] for name in names}
    last = {}

    def one_round():
        k = len(times[names[0]]) % len(names)
        for name in names[k:] + names[:k]:
            if before_each:
                before_each()
            t0 = time.perf_counter()
            last[name] = peers[name]()
            times[name].append(time.perf_counter() - t0)

    if warmup:
        one_round()
        for t in times.values():
            t.clear()
    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    return times, last


def median_ratio(num, den):
    return float(np.median(np.asarray(num) / np.asarray(den)))


# ---------------------------------------------------------------- checks

# float64 is checked tightly against scikit-learn's fit from the same seed.
LOSS_RTOL = {"float64": 1e-6, "float32": 1e-3}
SAME_WEIGHTS_ATOL = {"float64": 1e-10, "float32": 1e-5}
END_TO_END_ATOL = 1e-6  # float64
# float32 cannot match scikit-learn's float32 fit value for value on every BLAS
# kernel set: rounding differs with the kernels' summation order and training
# amplifies it step by step. So a float32 fit is checked against its float64
# twin (mlpfast's own float64 fit from the same seed, itself checked against
# scikit-learn): the loss curve to LOSS_RTOL (a mean over an epoch's samples,
# where the drift averages out), the outputs by their root-mean-square
# difference, allowed to grow by F32_DRIFT_PER_STEP per optimiser step as the
# drift does. The allowance is several times the drift these cases show on
# OpenBLAS's kernel sets, and far below what a wrong gradient or weight gives.
# Predict itself is checked row by row (same weights, below).
F32_DRIFT_PER_STEP = 2e-4
# Predict is isolated by scikit-learn's float64 forward pass on the model's own
# weights. In float32 a product of K <= 785 terms rounds by about sqrt(K) units
# of 2**-24 relative, whatever the summation order; 1e-5 leaves ample room for
# that over two or three layers.


def check_ran_all_epochs(est, case, dtype):
    n = len(_data64(case.name)[1])
    assert est.n_iter_ == case.epochs, f"n_iter_={est.n_iter_}, expected {case.epochs}"
    assert est.t_ == case.epochs * n, f"t_={est.t_}"
    assert len(est.loss_curve_) == case.epochs and np.all(np.isfinite(est.loss_curve_))
    for w in (*est.coefs_, *est.intercepts_):
        assert w.dtype == np.dtype(dtype), f"parameters in {w.dtype}, X in {dtype}"


def check_labels(labels, ref_labels, ref_proba, atol):
    """Labels equal, except where the reference's two best classes are within
    ``2 * atol`` (an output error within ``atol`` may swap them)."""
    differ = np.asarray(labels) != ref_labels
    if differ.any():
        top2 = np.sort(ref_proba, axis=1)[:, -2:]
        bad = differ & (top2[:, 1] - top2[:, 0] > 2 * atol)
        assert not bad.any(), (f"{bad.sum()} of {len(differ)} labels differ away from a "
                               f"near-tie (rows {np.flatnonzero(bad)[:10].tolist()})")


@functools.cache
def same_weights_reference(case_name, dtype):
    """scikit-learn's float64 outputs on X with mlpfast's fitted weights."""
    est = fitted("mlpfast", case_name, dtype)
    ref = copy.deepcopy(fitted("sklearn", case_name, "float64"))
    ref.coefs_ = [np.array(w, dtype=np.float64) for w in est.coefs_]
    ref.intercepts_ = [np.array(b, dtype=np.float64) for b in est.intercepts_]
    return outputs(ref, np.asarray(data(case_name, dtype)[0], dtype=np.float64))


def check_predict(values, case_name, dtype, rows=slice(None)):
    """What mlpfast's model of (case, dtype) predicted for X[rows] is right."""
    proba, labels = same_weights_reference(case_name, dtype)
    atol = SAME_WEIGHTS_ATOL[dtype]
    if CASES[case_name].regression:
        assert_allclose(values, proba[rows], rtol=0, atol=atol)
    else:
        check_labels(values, labels[rows], proba[rows], atol)


def check_same_fit(est, peer, case_name, dtype):
    """A timed fit repeated the validated one (fits are deterministic given the seed)."""
    check_ran_all_epochs(est, CASES[case_name], dtype)
    assert_allclose(est.loss_curve_, fitted(peer, case_name, dtype).loss_curve_,
                    rtol=LOSS_RTOL[dtype], err_msg="timed fit differs from the validated fit")


def validate(peer, case_name, dtype):
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    ref = fitted("sklearn", case_name, dtype)
    check_ran_all_epochs(ref, case, dtype)
    if peer == "sklearn":
        return
    assert peer == "mlpfast", peer
    est = fitted("mlpfast", case_name, dtype)
    check_ran_all_epochs(est, case, dtype)
    assert [w.shape for w in est.coefs_] == [w.shape for w in ref.coefs_]
    if not case.regression:
        assert_array_equal(est.classes_, ref.classes_)
    proba, labels = outputs(est, X)
    assert proba.dtype == np.dtype(dtype), f"outputs in {proba.dtype}"

    # predict alone: the model's own weights through scikit-learn's forward pass
    same_proba, _ = same_weights_reference(case_name, dtype)
    assert_allclose(proba, same_proba, rtol=0, atol=SAME_WEIGHTS_ATOL[dtype],
                    err_msg="outputs differ from scikit-learn's on the same weights")
    check_predict(proba if case.regression else labels, case_name, dtype)

    if dtype == "float64":  # the whole fit against scikit-learn's
        assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=LOSS_RTOL[dtype],
                        err_msg="loss_curve_ differs from scikit-learn's")
        ref_proba, ref_labels = outputs(ref, X)
        assert_allclose(proba, ref_proba, rtol=0, atol=END_TO_END_ATOL,
                        err_msg="outputs differ from scikit-learn's fit")
        if not case.regression:
            check_labels(labels, ref_labels, ref_proba, END_TO_END_ATOL)
    else:  # against the float64 twin, to float32's drift
        require_valid("mlpfast", case_name, "float64")
        twin = fitted("mlpfast", case_name, "float64")
        assert_allclose(est.loss_curve_, twin.loss_curve_, rtol=LOSS_RTOL[dtype],
                        err_msg="loss_curve_ differs from the float64 fit's")
        twin_proba, _ = outputs(twin, np.asarray(X, dtype=np.float64))
        rms = float(np.sqrt(np.mean((proba - twin_proba) ** 2)))
        bound = F32_DRIFT_PER_STEP * n_steps(case_name)
        assert rms <= bound, f"outputs {rms:.3g} RMS from the float64 fit's (> {bound:.3g})"


@functools.cache
def _validation_error(peer, case_name, dtype):
    try:
        validate(peer, case_name, dtype)
    except Exception as exc:  # noqa: BLE001  (kept: later benchmarks fail the same way)
        return exc
    return None


def require_valid(peer, case_name, dtype):
    exc = _validation_error(peer, case_name, dtype)
    if exc is not None:
        raise AssertionError(f"{peer} {case_name} {dtype}: validation failed, "
                             f"not timed: {exc}") from exc


# ---------------------------------------------------------------- torch peer

ALPHA = 1e-4  # scikit-learn's default L2 penalty
TORCH_LOSS_RTOL = 0.20


def _torch_maxout(nn):
    """Maxout of MAXOUT_PIECES pieces a unit, laid out as mlpfast's (piece j of
    unit o in column j O + o)."""
    class Maxout(nn.Module):
        def forward(self, x):
            return x.view(x.shape[0], MAXOUT_PIECES, -1).amax(dim=1)
    return Maxout()


# mlpfast's hidden activations as torch.nn modules (with mlpfast's defaults)
TORCH_ACTIVATIONS = {"relu": lambda nn: nn.ReLU(), "tanh": lambda nn: nn.Tanh(),
                     "leaky_relu": lambda nn: nn.LeakyReLU(0.01), "gelu": lambda nn: nn.GELU(),
                     "maxout": _torch_maxout}
MAXOUT_PIECES = int(_engine.ACTIVATION_DEFAULTS["maxout"])  # mlpfast's default


def torch_fit(torch, case, Xt, yt):
    """Build and train the torch model scikit-learn's would be; returns the mean
    training loss of each epoch, as scikit-learn's loss_curve_ (half the MSE
    for regression, without the L2 term)."""
    nn = torch.nn
    gen = torch.Generator().manual_seed(SEED)
    sizes = [Xt.shape[1], *case.hidden_layer_sizes, 1 if case.regression else int(yt.max()) + 1]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        pieces = MAXOUT_PIECES if case.activation == "maxout" and i < len(sizes) - 2 else 1
        lin = nn.Linear(fan_in, pieces * fan_out, dtype=Xt.dtype)
        bound = (6.0 / (fan_in + fan_out)) ** 0.5  # Glorot uniform, as scikit-learn
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers += [lin, TORCH_ACTIVATIONS[case.activation](nn)]
        if case.dropout:
            layers.append(nn.Dropout(case.dropout))
    model = nn.Sequential(*layers[:-2 if case.dropout else -1])
    params = dict(model.named_parameters())
    # scikit-learn adds alpha * W / batch to the weights' gradient, not the biases'.
    opt = torch.optim.Adam(
        [{"params": [p for k, p in params.items() if k.endswith("weight")],
          "weight_decay": ALPHA / case.batch_size},
         {"params": [p for k, p in params.items() if k.endswith("bias")], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.functional.mse_loss if case.regression else nn.functional.cross_entropy
    n, curve = Xt.shape[0], []
    for _ in range(case.epochs):
        perm, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n, case.batch_size):
            idx = perm[start:start + case.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        curve.append(total / n / (2 if case.regression else 1))
    return curve


def torch_peer(case_name, dtype, case=None, check=None):
    """A validated ``() -> loss curve`` torch fit of the case (``case``: one of
    the data set ``case_name``'s, by default its own, checked by ``check``,
    by default check_torch_loss), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(n_threads())
    X, y = data(case_name, dtype)
    Xt = torch.tensor(np.array(X))
    if CASES[case_name].regression:
        yt = torch.tensor(np.array(y)).reshape(-1, 1)
    else:
        yt = torch.tensor(np.unique(y, return_inverse=True)[1], dtype=torch.long)
    run = functools.partial(torch_fit, torch, case or CASES[case_name], Xt, yt)
    (check or check_torch_loss)(run(), case_name, dtype)
    return run


def check_torch_loss(curve, case_name, dtype):
    """torch's last epoch's loss within TORCH_LOSS_RTOL of scikit-learn's: the
    same training, up to the order of the batches and the last, shorter batch."""
    ref = fitted("sklearn", case_name, dtype).loss_curve_[-1]
    assert len(curve) == CASES[case_name].epochs and np.isfinite(curve[-1])
    assert abs(curve[-1] - ref) <= TORCH_LOSS_RTOL * abs(ref), (
        f"torch final loss {curve[-1]:.5g}, scikit-learn's {ref:.5g}")


# ---------------------------------------------------------------- GEMM floor


class GemmFloor:
    """The matrix products of the case's fit alone, in numpy (its BLAS at its
    thread count): per batch and layer A @ W, A.T @ D and, but for the first
    layer, D @ W.T, into preallocated outputs, on batches gathered beforehand.
    No activation, loss or update: no fit can take less time on this BLAS."""

    def __init__(self, case_name, dtype):
        case = CASES[case_name]
        X, y = data(case_name, dtype)
        rng = np.random.default_rng(SEED)
        n_out = 1 if case.regression else len(np.unique(y))
        sizes = [X.shape[1], *case.hidden_layer_sizes, n_out]
        self.W = [(rng.standard_normal((a, b)) * 0.05).astype(dtype)
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.gW = [np.empty_like(w) for w in self.W]
        perm = rng.permutation(X.shape[0])
        self.batches = [np.ascontiguousarray(X[perm[s:s + case.batch_size]])
                        for s in range(0, X.shape[0], case.batch_size)]
        self.epochs = case.epochs
        self.buffers = {m: ([np.empty((m, b), dtype) for b in sizes[1:]],
                            [rng.standard_normal((m, b)).astype(dtype) for b in sizes[1:]],
                            [np.empty((m, a), dtype) for a in sizes[:-1]])
                        for m in {len(b) for b in self.batches}}
        self.check()

    def products(self, xb):
        Z, D, dA = self.buffers[len(xb)]
        A = xb
        for l, W in enumerate(self.W):
            np.matmul(A, W, out=Z[l])
            A = Z[l]
        for l in range(len(self.W) - 1, -1, -1):
            np.matmul(xb.T if l == 0 else Z[l - 1].T, D[l], out=self.gW[l])
            if l > 0:
                np.matmul(D[l], self.W[l].T, out=dA[l])

    def check(self):
        xb = self.batches[0]
        self.products(xb)
        rtol = 1e-3 if xb.dtype == np.float32 else 1e-10
        assert_allclose(self.buffers[len(xb)][0][0], xb.astype(np.float64) @ self.W[0],
                        rtol=rtol, atol=1e-3)

    def fit(self):
        for _ in range(self.epochs):
            for xb in self.batches:
                self.products(xb)
        return self.gW
