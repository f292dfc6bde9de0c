"""How much a second thread adds to numpy's matrix products on this machine.

Prints GMAC/s (multiply-adds per second) of ``np.matmul`` at 1 and 2 BLAS
threads for a large square product and for the products of one ``mnist``
batch (bench_fit.py), float32 and float64. On a machine whose second CPU adds
little to a compute-bound product, no threading scheme brings mlpfast far
below the GEMM floor. Run: ``python bench/gemm_scaling.py``.
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

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
