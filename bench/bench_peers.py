"""More peers for the cases of ``bench_fit.py``: PyTorch, the GEMM floor, one-row predict.

For each case and dtype of ``bench_fit.CASES`` (same data, network, batch size,
epochs), in the same pytest-benchmark group ``<case>-<dtype>-fit`` as mlpfast and
scikit-learn:

* ``torch``: a plain ``torch.nn.Sequential`` of ``Linear``/``ReLU`` (``Tanh`` for the
  ``tanh`` case) on the CPU trained
  with ``torch.optim.Adam`` (lr 1e-3, betas (0.9, 0.999), eps 1e-8), softmax
  cross-entropy (MSE for the regression case), the same batch size and epochs,
  a new permutation each epoch, the dtype of X, ``torch.set_num_threads`` = the
  OpenMP thread count. scikit-learn's L2 term adds ``alpha * W / n_batch`` to the
  gradient of the weights only: the torch peer gives the weights (not the biases)
  ``weight_decay = alpha / batch_size``, which is the same except on the last,
  shorter batch of an epoch. Weights and biases start Glorot-uniform like
  scikit-learn's (bound ``sqrt(6 / (fan_in + fan_out))``). Skipped when torch is
  not installed. Validated: its mean training loss over the last epoch (as
  scikit-learn's ``loss_curve_``, half the MSE for regression, without the small L2
  term) must be within 20% of scikit-learn's ``loss_curve_[-1]``, on the
  validation fit and on the last timed fit.
* ``floor``: numpy (same dtype, numpy's BLAS at its thread count) doing only the
  matrix products of the same epochs: per batch and layer ``A @ W``, ``A.T @ D``
  and, for every layer but the first, ``D @ W.T``, into preallocated outputs, on
  batches gathered before timing; no activations, losses or updates.

Predict, group ``<case>-<dtype>-predict1`` (the ``small`` case): the median time of
``predict`` on one row, mlpfast against scikit-learn, with the validated models of
``bench_fit``; group ``<case>-<dtype>-paired1`` runs the two in paired rounds
(the target's figure). Group ``<case>-<dtype>-predict`` (the ``mnist`` case) gets a
``floor`` peer: the forward products alone on all 20000 rows.
"""

import os
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose

import bench_fit
from bench_fit import CASES, DTYPES, SEED, data, fitted, require_valid, settle

ALPHA = 1e-4  # scikit-learn's default L2 penalty, which the estimators use
TORCH_LOSS_RTOL = 0.20
PREDICT1_CASES = ("small",)
PREDICT1_ROUNDS = 1000
PREDICT_FLOOR_CASES = ("mnist",)


def _params(cases=None):
    return [
        pytest.param(case_name, dtype, id=f"{case_name}-{dtype}")
        for case_name in (cases or CASES)
        for dtype in DTYPES
    ]


def n_threads():
    """The OpenMP thread count mlpfast uses (what torch is given)."""
    try:
        import io

        import mlpfast

        n = mlpfast.show_config(file=io.StringIO()).get("n_threads")
        if n:
            return int(n)
    except Exception:  # noqa: BLE001
        pass
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() else os.cpu_count()


def _label(benchmark, op, case, dtype, impl, X, rounds, **extra):
    bench_fit._label(benchmark, op, case, dtype, impl, X, rounds)
    benchmark.extra_info.update(extra)


# ---------------------------------------------------------------- torch


def torch_fit(torch, case, Xt, yt, generator_seed=SEED):
    """One timed unit: build the torch model and train it; returns the mean
    training loss of each epoch (scikit-learn's convention)."""
    nn = torch.nn
    dtype = Xt.dtype
    gen = torch.Generator().manual_seed(generator_seed)
    n_out = 1 if case.regression else int(yt.max()) + 1
    sizes = [Xt.shape[1], *case.hidden_layer_sizes, n_out]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid}[
                case.activation]())
    model = nn.Sequential(*layers)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    opt = torch.optim.Adam(
        [{"params": weights, "weight_decay": ALPHA / case.batch_size},
         {"params": biases, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    )
    loss_fn = nn.functional.mse_loss if case.regression else nn.functional.cross_entropy
    n = Xt.shape[0]
    curve = []
    for _ in range(case.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, case.batch_size):
            idx = perm[start:start + case.batch_size]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        mean = total / n
        curve.append(mean / 2 if case.regression else mean)  # sklearn: 0.5 * MSE
    return curve


def _torch_data(torch, case_name, dtype):
    X, y = data(case_name, dtype)
    Xt = torch.tensor(np.array(X))
    if CASES[case_name].regression:
        yt = torch.tensor(np.array(y)).reshape(-1, 1)
    else:
        _, codes = np.unique(y, return_inverse=True)
        yt = torch.tensor(codes, dtype=torch.long)
    return Xt, yt


def check_torch_loss(curve, case_name, dtype):
    ref = fitted("sklearn", case_name, dtype).loss_curve_[-1]
    assert len(curve) == CASES[case_name].epochs
    assert np.isfinite(curve[-1]), f"torch loss {curve[-1]}"
    rel = abs(curve[-1] - ref) / abs(ref)
    assert rel <= TORCH_LOSS_RTOL, (
        f"torch final training loss {curve[-1]:.5g} vs scikit-learn's {ref:.5g}: "
        f"{rel:.1%} apart (> {TORCH_LOSS_RTOL:.0%})")


@pytest.mark.parametrize("case_name, dtype", _params())
def test_fit_torch(benchmark, case_name, dtype):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(n_threads())
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    rounds = case.fit_rounds["torch"]
    _label(benchmark, "fit", case, dtype, "torch", X, rounds,
           torch_version=torch.__version__, torch_threads=torch.get_num_threads())

    Xt, yt = _torch_data(torch, case_name, dtype)
    # Validate, then time.
    curve = torch_fit(torch, case, Xt, yt)
    check_torch_loss(curve, case_name, dtype)
    benchmark.extra_info["torch_loss"] = curve[-1]
    benchmark.extra_info["sklearn_loss"] = fitted("sklearn", case_name, dtype).loss_curve_[-1]
    curve = benchmark.pedantic(torch_fit, args=(torch, case, Xt, yt), setup=settle,
                               rounds=rounds, iterations=1)
    check_torch_loss(curve, case_name, dtype)


# ---------------------------------------------------------------- GEMM floor


class GemmFloor:
    """The matrix products of ``case.epochs`` epochs of minibatch training, alone."""

    def __init__(self, case, X, n_out):
        rng = np.random.default_rng(SEED)
        dtype = X.dtype
        sizes = [X.shape[1], *case.hidden_layer_sizes, n_out]
        self.W = [rng.standard_normal((a, b)).astype(dtype) * 0.05
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.gW = [np.empty_like(w) for w in self.W]
        n = X.shape[0]
        # One epoch's batches, gathered from a permutation before timing.
        perm = rng.permutation(n)
        self.batches = [np.ascontiguousarray(X[perm[s:s + case.batch_size]])
                        for s in range(0, n, case.batch_size)]
        self.epochs = case.epochs
        self.buffers = {}
        for m in {len(b) for b in self.batches}:
            Z = [np.empty((m, b), dtype=dtype) for b in sizes[1:]]
            D = [rng.standard_normal((m, b)).astype(dtype) for b in sizes[1:]]
            dA = [np.empty((m, a), dtype=dtype) for a in sizes[:-1]]
            self.buffers[m] = Z, D, dA

    def products(self, xb):
        Z, D, dA = self.buffers[len(xb)]
        A = xb
        for l, W in enumerate(self.W):  # forward: the next layer takes X @ W as its input
            np.matmul(A, W, out=Z[l])
            A = Z[l]
        for l in range(len(self.W) - 1, -1, -1):  # backward
            A = xb if l == 0 else Z[l - 1]
            np.matmul(A.T, D[l], out=self.gW[l])
            if l > 0:
                np.matmul(D[l], self.W[l].T, out=dA[l])

    def flops(self):
        """Floating-point operations of ``fit``: two per multiply-add of its products."""
        macs = 0
        for xb in self.batches:
            m = len(xb)
            for l, W in enumerate(self.W):
                k, n = W.shape
                macs += m * k * n * (2 if l == 0 else 3)  # A @ W, A.T @ D (and D @ W.T)
        return 2 * macs * self.epochs

    def check(self):
        """Validate: the products are the ones named, in the dtype (one batch)."""
        xb = self.batches[0]
        self.products(xb)
        Z, _, _ = self.buffers[len(xb)]
        float32 = xb.dtype == np.float32
        np.testing.assert_allclose(Z[0], xb.astype(np.float64) @ self.W[0],
                                   rtol=1e-3 if float32 else 1e-10, atol=1e-3)
        assert all(g.dtype == xb.dtype for g in self.gW)

    def fit(self):
        for _ in range(self.epochs):
            for xb in self.batches:
                self.products(xb)
        return self.gW

    def forward(self, X, outs):
        A = X
        for W, out in zip(self.W, outs):
            np.matmul(A, W, out=out)
            A = out
        return A


def _n_out(case_name):
    case = CASES[case_name]
    return 1 if case.regression else len(np.unique(data(case_name, "float64")[1]))


@pytest.mark.parametrize("case_name, dtype", _params())
def test_fit_floor(benchmark, case_name, dtype):
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    rounds = case.fit_rounds["floor"]
    _label(benchmark, "fit", case, dtype, "floor", X, rounds)
    floor = GemmFloor(case, X, _n_out(case_name))
    floor.check()
    benchmark.extra_info["flops"] = floor.flops()
    benchmark.pedantic(floor.fit, setup=settle, rounds=rounds, iterations=1, warmup_rounds=1)


# ---------------------------------------------------------------- GEMM peak

PEAK_SIZE = 2048
PEAK_ROUNDS = 5


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_peak(benchmark, dtype):
    """The machine's matrix-product rate: numpy (its BLAS at its thread count, which
    the floor uses too) multiplying two square matrices of PEAK_SIZE, large enough
    to run at the BLAS's best. The report divides each case's floor operations by
    the time a missed target asks of mlpfast, and compares that rate with this one:
    no fit runs its products faster than this."""
    rng = np.random.default_rng(SEED)
    A, B = (rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(dtype) for _ in range(2))
    C = np.empty_like(A)
    np.matmul(A[:64], B, out=C[:64])
    # check: one row block against a float64 product
    np.testing.assert_allclose(C[:64], A[:64].astype(np.float64) @ B,
                               rtol=1e-3 if dtype == "float32" else 1e-10, atol=1e-2)
    benchmark.group = f"machine-{dtype}-peak"
    benchmark.extra_info.update(op="peak", case="machine", dtype=dtype, impl="numpy",
                                flops=2 * PEAK_SIZE ** 3, rounds=PEAK_ROUNDS)
    benchmark.pedantic(np.matmul, args=(A, B), kwargs={"out": C}, setup=settle,
                       rounds=PEAK_ROUNDS, iterations=1, warmup_rounds=1)


# ---------------------------------------------------------------- predict


@pytest.mark.parametrize("case_name, dtype", _params(PREDICT_FLOOR_CASES))
def test_predict_floor(benchmark, case_name, dtype):
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    rounds = case.predict_rounds
    _label(benchmark, "predict", case, dtype, "floor", X, rounds)
    floor = GemmFloor(case, X, _n_out(case_name))
    # Same shapes as the fitted model's products.
    floor.W = [np.array(c) for c in fitted("sklearn", case_name, dtype).coefs_]
    outs = [np.empty((X.shape[0], w.shape[1]), dtype=dtype) for w in floor.W]
    out = floor.forward(X, outs)
    assert out.shape == (X.shape[0], _n_out(case_name)) and out.dtype == np.dtype(dtype)
    benchmark.pedantic(floor.forward, args=(X, outs), rounds=rounds, iterations=1,
                       warmup_rounds=1)


@pytest.mark.parametrize("case_name, dtype, impl", [
    pytest.param(c, d, i, id=f"{c}-{d}-{i}")
    for c in PREDICT1_CASES for d in DTYPES for i in bench_fit.IMPLS])
def test_predict1(benchmark, case_name, dtype, impl):
    """``predict`` on one row (row i of X in round i), the median of single calls."""
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    _label(benchmark, "predict1", case, dtype, impl, X[:1], PREDICT1_ROUNDS)
    require_valid(impl, case_name, dtype)
    est = fitted(impl, case_name, dtype)
    rows = [X[i:i + 1] for i in range(PREDICT1_ROUNDS)]
    _, want = bench_fit.same_weights_oracle(impl, case_name, dtype)
    for i in range(0, PREDICT1_ROUNDS, 50):  # validate: one row gives that row's label
        assert est.predict(rows[i])[0] == (want[i] if impl != "sklearn" else est.predict(X)[i])
    it = iter(range(10 ** 9))
    got = {}

    def one():
        i = next(it) % PREDICT1_ROUNDS
        got[i] = est.predict(rows[i])[0]

    settle()  # from a quiet process, as every timed fit
    benchmark.pedantic(one, rounds=PREDICT1_ROUNDS, iterations=1, warmup_rounds=5)
    labels = est.predict(X[:PREDICT1_ROUNDS]) if impl == "sklearn" else want
    bad = [i for i, v in got.items() if v != labels[i]]
    assert not bad, f"one-row predict differs at rows {bad[:10]}"


# ---------------------------------------------------------------- peak memory

MEMORY_CASES = ("mnist",)


def peak_memory(func):
    """Peak bytes numpy and Python allocate while func runs, above what was
    allocated before (tracemalloc; numpy reports its data buffers to it, and
    every large buffer of a fit, mlpfast's included, is a numpy array)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.mark.parametrize("case_name, dtype, impl", [
    pytest.param(c, "float32", impl, id=f"{c}-float32-{impl}")
    for c in MEMORY_CASES for impl in bench_fit.IMPLS
])
def test_fit_memory(benchmark, case_name, dtype, impl):
    """Peak memory of one fit (no timing ratio: the 'time' is the measured run's)."""
    case = CASES[case_name]
    X, y = data(case_name, dtype)
    require_valid(impl, case_name, dtype)
    traced = peak_memory(lambda: bench_fit.fit(impl, case, X, y))
    _label(benchmark, "memory", case, dtype, impl, X, 1, data_bytes=X.nbytes,
           peak_traced_bytes=traced)
    est = benchmark.pedantic(bench_fit.fit, args=(impl, case, X, y), rounds=1, iterations=1)
    assert_allclose(est.loss_curve_, fitted(impl, case_name, dtype).loss_curve_,
                    rtol=bench_fit.LOSS_RTOL[dtype], err_msg="measured fit differs from the validated fit")


# ---------------------------------------------------------------- paired rounds

# Each round runs every peer once, back to back, in an order that rotates from
# round to round; a ratio is then taken within each round and the median over
# rounds reported. Peers that ran seconds apart see the same machine, so on a
# VM whose speed drifts between phases these ratios move far less than the ones
# between the separate groups above (whose rounds run minutes apart). Each peer
# starts on a quiet machine (``settle``: the previous peer's spinning BLAS
# workers have gone idle).
PAIRED_ROUNDS = 7


@pytest.mark.parametrize("case_name, dtype", _params())
def test_fit_paired(benchmark, case_name, dtype):
    """All fit peers interleaved round by round; per-round ratios in extra_info."""
    case = CASES[case_name]
    X, y = data(case_name, dtype)
    _label(benchmark, "paired", case, dtype, "all", X, PAIRED_ROUNDS)
    for impl in bench_fit.IMPLS:
        require_valid(impl, case_name, dtype)
    floor = GemmFloor(case, X, _n_out(case_name))
    floor.check()
    peers = {
        "mlpfast": lambda: bench_fit.fit("mlpfast", case, X, y),
        "sklearn": lambda: bench_fit.fit("sklearn", case, X, y),
        "floor": floor.fit,
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(n_threads())
        Xt, yt = _torch_data(torch, case_name, dtype)
        check_torch_loss(torch_fit(torch, case, Xt, yt), case_name, dtype)
        peers["torch"] = lambda: torch_fit(torch, case, Xt, yt)
    names = list(peers)
    times = {name: [] for name in names}
    results = {}

    def one_round():
        start = len(times["mlpfast"]) % len(names)
        for name in names[start:] + names[:start]:
            settle()
            t0 = time.perf_counter()
            results[name] = peers[name]()
            times[name].append(time.perf_counter() - t0)

    one_round()  # warm-up, not kept
    for name in names:
        times[name].clear()
    benchmark.pedantic(one_round, rounds=PAIRED_ROUNDS, iterations=1)

    # What the timed calls returned is what was validated.
    for impl in bench_fit.IMPLS:
        assert_allclose(results[impl].loss_curve_, fitted(impl, case_name, dtype).loss_curve_,
                        rtol=bench_fit.LOSS_RTOL[dtype])
    if "torch" in results:
        check_torch_loss(results["torch"], case_name, dtype)
    mine = np.array(times["mlpfast"])
    ratios = {f"{peer}/mlpfast": float(np.median(np.array(times[peer]) / mine))
              for peer in names if peer not in ("mlpfast", "floor")}
    ratios["mlpfast/floor"] = float(np.median(mine / np.array(times["floor"])))
    benchmark.extra_info["floor_flops"] = floor.flops()
    benchmark.extra_info["paired_times"] = times
    benchmark.extra_info["paired_ratios"] = ratios


# One-row predict in paired rounds: a group of 1000 calls lasts about 10 ms and
# falls whole in one of the VM's modes, so two peers' groups a few seconds apart
# can differ by the mode alone (mlpfast's float32 and float64 groups swapped
# 5.6 and 10.2 us with 9.6 and 6.0 us between two runs). Here each round runs a
# block of consecutive calls of each peer, settled first, the order alternating
# by round; the ratio of the two blocks' median calls is taken within the round.
PREDICT1_PAIRED_ROUNDS = 15
PREDICT1_BLOCK = 100


@pytest.mark.parametrize("case_name, dtype", _params(PREDICT1_CASES))
def test_predict1_paired(benchmark, case_name, dtype):
    """``predict`` on one row, mlpfast and scikit-learn in paired rounds of
    PREDICT1_BLOCK calls each (row i of X in call i); per-round medians and
    ratios in extra_info."""
    case = CASES[case_name]
    X, _ = data(case_name, dtype)
    _label(benchmark, "paired1", case, dtype, "all", X[:1], PREDICT1_PAIRED_ROUNDS)
    peers = ("mlpfast", "sklearn")
    models = {}
    for impl in peers:
        require_valid(impl, case_name, dtype)
        models[impl] = fitted(impl, case_name, dtype)
    rows = [X[i:i + 1] for i in range(PREDICT1_BLOCK)]
    _, want = bench_fit.same_weights_oracle("mlpfast", case_name, dtype)
    labels = {"mlpfast": want[:PREDICT1_BLOCK],
              "sklearn": models["sklearn"].predict(X[:PREDICT1_BLOCK])}
    medians = {impl: [] for impl in peers}

    def block(impl):
        est, calls, got = models[impl], np.empty(PREDICT1_BLOCK), []
        for i, row in enumerate(rows):
            t0 = time.perf_counter()
            got.append(est.predict(row)[0])
            calls[i] = time.perf_counter() - t0
        np.testing.assert_array_equal(got, labels[impl])
        return float(np.median(calls))

    def one_round():
        order = peers if len(medians["mlpfast"]) % 2 == 0 else peers[::-1]
        for impl in order:
            settle()
            medians[impl].append(block(impl))

    one_round()  # warm-up, not kept
    for impl in peers:
        medians[impl].clear()
    benchmark.pedantic(one_round, rounds=PREDICT1_PAIRED_ROUNDS, iterations=1)
    mine = np.array(medians["mlpfast"])
    benchmark.extra_info["paired_times"] = medians
    benchmark.extra_info["paired_ratios"] = {
        "sklearn/mlpfast": float(np.median(np.array(medians["sklearn"]) / mine))}


# ---------------------------------------------------------------- waker threads

WAKE_CASES = ("small",)
WAKE_ROUNDS = 15


@pytest.mark.parametrize("case_name, dtype", _params(WAKE_CASES))
def test_wake_paired(benchmark, case_name, dtype):
    """mlpfast with its waker threads (the default) against the same calls with
    them off (``_engine.set_wake_enabled(False)``), each call settled first, so
    that it starts after the CPUs idle as every timed fit does: per round a fit
    and a ``predict`` of all rows each way, the order alternating by round. The
    per-round ratios off / on (above 1: the wakers help) are in extra_info."""
    from mlpfast import _engine

    case = CASES[case_name]
    X, y = data(case_name, dtype)
    _label(benchmark, "wake", case, dtype, "mlpfast", X, WAKE_ROUNDS)
    require_valid("mlpfast", case_name, dtype)
    model = fitted("mlpfast", case_name, dtype)
    want = model.predict(X)
    calls = {"fit": lambda: bench_fit.fit("mlpfast", case, X, y), "predict": lambda: model.predict(X)}
    times = {f"{call} {way}": [] for call in calls for way in ("on", "off")}
    results = {}

    def one_round():
        ways = ("on", "off") if len(times["fit on"]) % 2 == 0 else ("off", "on")
        try:
            for call, run in calls.items():
                for way in ways:
                    _engine.set_wake_enabled(way == "on")
                    settle()
                    t0 = time.perf_counter()
                    results[call, way] = run()
                    times[f"{call} {way}"].append(time.perf_counter() - t0)
        finally:
            _engine.set_wake_enabled(True)

    benchmark.pedantic(one_round, rounds=WAKE_ROUNDS, iterations=1, warmup_rounds=1)
    for way in ("on", "off"):  # the wakers change no result
        assert_allclose(results["fit", way].loss_curve_,
                        fitted("mlpfast", case_name, dtype).loss_curve_, rtol=0)
        assert (results["predict", way] == want).all()
    benchmark.extra_info["wake_times"] = times
    benchmark.extra_info["wake_ratios"] = {
        call: float(np.median(np.array(times[f"{call} off"]) / np.array(times[f"{call} on"])))
        for call in calls}
