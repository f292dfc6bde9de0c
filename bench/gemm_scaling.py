"""How much a second thread adds to numpy's matrix products on this machine.

Prints GMAC/s (multiply-adds per second) of ``np.matmul`` at 1 and 2 BLAS
threads for a large square product and for the products of one ``mnist``
batch (bench_fit.py), float32 and float64. On a machine whose second CPU adds
little to a compute-bound product, no threading scheme brings mlpfast far
below the GEMM floor.

Then, for the big cases, the products of a whole fit split in row blocks as
mlpfast's row-parallel pass splits them (FitBlocks: half of each batch per
thread, forward, then each layer's weight gradient and the delta before it),
with a 1-thread BLAS: one thread's blocks alone, and both threads' at once.
That is what the fit's passes would cost if they were these products and
nothing else; bench/profile_fit.py times it in each round next to the fit.
Run: ``python bench/gemm_scaling.py``.
"""

import os
import sys
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fit import CASES, data  # noqa: E402
from bench_peers import _n_out  # noqa: E402

SHAPES = [(2048, 2048, 2048), (256, 784, 256), (784, 256, 256), (256, 256, 784),
          (256, 256, 256)]  # (M, K, N): C[M, N] = A[M, K] @ B[K, N]


def gmacs(A, B, C, rounds=5):
    """Best of `rounds` timings of C = A @ B, each over at least 3 calls and about
    2e9 multiply-adds or more."""
    (M, K), N = A.shape, B.shape[1]
    reps = max(3, int(2e9 / (M * K * N)))
    np.matmul(A, B, out=C)
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            np.matmul(A, B, out=C)
        best = min(best, (time.perf_counter() - start) / reps)
    return M * K * N / best / 1e9


class BlockProducts:
    """The products of one block of `rows` rows through a network of `units`
    (input width first), as the engine's _block_pass runs them: A[l] = in @ W[l]
    forward; backward from the last layer, G[l] = in.T @ D[l], then
    D[l - 1] = D[l] @ W[l].T. Operands are random (no activations: the rates
    do not depend on the values); the weights may be shared between blocks."""

    def __init__(self, units, rows, weights, rng):
        dtype = weights[0].dtype
        self.W = weights
        self.X = rng.standard_normal((rows, units[0])).astype(dtype)
        self.A = [np.empty((rows, u), dtype) for u in units[1:]]
        self.D = [rng.standard_normal((rows, u)).astype(dtype) for u in units[1:]]
        self.G = [np.empty_like(w) for w in weights]
        L = len(weights)
        self.macs = rows * (sum(units[l] * units[l + 1] for l in range(L)) * 2
                            + sum(units[l] * units[l + 1] for l in range(1, L)))

    def run(self):
        L = len(self.W)
        for l in range(L):
            np.matmul(self.X if l == 0 else self.A[l - 1], self.W[l], out=self.A[l])
        for l in range(L - 1, -1, -1):
            np.matmul((self.X if l == 0 else self.A[l - 1]).T, self.D[l], out=self.G[l])
            if l > 0:
                np.matmul(self.D[l], self.W[l].T, out=self.D[l - 1])


class FitBlocks:
    """The products of every row block of a fit of a bench case, split as the
    engine's row-parallel pass splits each batch on two CPUs: batch rows
    [n * b // 2, n * (b + 1) // 2) to thread b (the last, shorter batch too).
    ``run`` times them on `threads` Python threads started together (1 or 2:
    with 1, only the first thread's blocks), BLAS at one thread; numpy drops
    the GIL in each product, and Python's microsecond or so per product stays
    under 1% of the big cases' blocks (millions of multiply-adds)."""

    def __init__(self, case, n_samples, units, dtype, rng=None):
        rng = rng or np.random.default_rng(0)
        weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
                   for a, b in zip(units[:-1], units[1:])]
        self.epochs = case.epochs
        self.n_full, last = divmod(n_samples, case.batch_size)
        self.blocks = []  # per thread: (block of a full batch, of the last one or None)
        for b in range(2):
            full = (case.batch_size * (b + 1) // 2) - (case.batch_size * b // 2)
            part = (last * (b + 1) // 2) - (last * b // 2)
            self.blocks.append((BlockProducts(units, full, weights, rng),
                                BlockProducts(units, part, weights, rng) if part else None))

    def macs(self, threads=2):
        """Multiply-adds of the blocks of the first `threads` threads."""
        return self.epochs * sum(self.n_full * full.macs + (part.macs if part else 0)
                                 for full, part in self.blocks[:threads])

    def _thread(self, b):
        full, part = self.blocks[b]
        for _ in range(self.epochs):
            for _ in range(self.n_full):
                full.run()
            if part is not None:
                part.run()

    def run(self, threads=2):
        """Wall seconds of the blocks of the first `threads` threads, run at once."""
        start = threading.Barrier(threads + 1)

        def work(b):
            start.wait()
            self._thread(b)

        pool = [threading.Thread(target=work, args=(b,)) for b in range(threads)]
        for t in pool:
            t.start()
        with threadpool_limits(1, user_api="blas"):
            start.wait()
            t0 = time.perf_counter()
            for t in pool:
                t.join()
            return time.perf_counter() - t0


def fit_blocks(case_name, dtype):
    """FitBlocks of a bench case's network on its data's shape."""
    X, _ = data(case_name, dtype)
    case = CASES[case_name]
    units = [X.shape[1], *case.hidden_layer_sizes, _n_out(case_name)]
    return FitBlocks(case, X.shape[0], units, np.dtype(dtype))


def row_blocks(case_names=("mnist", "wide"), rounds=5):
    print()
    print("| case | dtype | fit's blocks, 1 thread alone | 2 threads at once | 2 / 1 "
          "| multiply-adds per second, 2 threads |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in case_names:
        for dtype in ("float32", "float64"):
            blocks = fit_blocks(name, dtype)
            blocks.blocks[0][0].run()  # first-call costs out of the rounds
            # alternate: the machine's slow and fast periods fall on both alike
            times = np.array([(blocks.run(1), blocks.run(2)) for _ in range(rounds)])
            alone, both = np.median(times, axis=0)
            print(f"| {name} | {dtype} | {alone * 1e3:.0f} ms | {both * 1e3:.0f} ms | "
                  f"{(blocks.macs() / both) / (blocks.macs(1) / alone):.2f}x | "
                  f"{blocks.macs() / both / 1e9:.1f} G |")


def main():
    rng = np.random.default_rng(0)
    print("| dtype | M x K x N | 1 thread GMAC/s | 2 threads GMAC/s | 2 / 1 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for dtype in (np.float32, np.float64):
        for M, K, N in SHAPES:
            A = rng.standard_normal((M, K)).astype(dtype)
            B = rng.standard_normal((K, N)).astype(dtype)
            C = np.empty((M, N), dtype)
            rates = []
            for threads in (1, 2):
                with threadpool_limits(threads, user_api="blas"):
                    rates.append(gmacs(A, B, C))
            print(f"| {np.dtype(dtype).name} | {M} x {K} x {N} | {rates[0]:.1f} | "
                  f"{rates[1]:.1f} | {rates[1] / rates[0]:.2f}x |")


if __name__ == "__main__":
    main()
    row_blocks()
