"""Where an mlpfast fit of a bench case spends its time, against the GEMM floor.

For each round, after a settle: the case's GEMM floor (bench_peers.GemmFloor, the
matrix products of the same epochs alone), then an mlpfast fit whose training
network times itself (``Network.pass_seconds`` / ``step_seconds``). Prints per
round and as medians over the rounds:

* passes: forward and backward passes (products, kernels, the batch gathers,
  the sum of the gradient groups);
* steps: the rest of each batch: its weight sum and loss, then the optimiser
  step (Adam), which is nearly all of it;
* rest: everything else in ``fit`` (validation, set-up, shuffles, Python);

each in ms and as a multiple of the floor of the same round. For the big
cases (mnist, wide) each round also times the fit's own products alone, split
in row blocks as the engine's row-parallel pass splits them
(gemm_scaling.FitBlocks), and prints the passes as a multiple of that. This is
the profile the speed targets are argued from (bench/README.md); it is not a
benchmark and asserts nothing. Run from the repository root::

    python bench/profile_fit.py mnist float32 [rounds]
"""

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_fit import CASES, DTYPES, data, make_estimator, settle  # noqa: E402
from bench_peers import GemmFloor, _n_out  # noqa: E402
from gemm_scaling import fit_blocks  # noqa: E402

# Cases whose row blocks are big enough for FitBlocks' Python threads to time
BLOCK_CASES = ("mnist", "wide")


def _timed_fit(case, X, y):
    """One mlpfast fit of the case; returns (wall, passes, steps) in seconds.
    The estimator builds its training network through ``_network``; the
    wrapper keeps a handle on it to read its timers after the fit."""
    est = make_estimator("mlpfast", case)
    networks = []
    build = est._network

    def keep(*args, **kwargs):
        network = build(*args, **kwargs)
        networks.append(network)
        return network

    est._network = keep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X, y)
        wall = time.perf_counter() - start
    return (wall, sum(n.pass_seconds for n in networks),
            sum(n.step_seconds for n in networks))


def main(argv):
    if len(argv) not in (2, 3) or argv[0] not in CASES or argv[1] not in DTYPES:
        raise SystemExit(f"usage: python bench/profile_fit.py {{{','.join(CASES)}}} "
                         f"{{{','.join(DTYPES)}}} [rounds]")
    case_name, dtype = argv[0], argv[1]
    rounds = int(argv[2]) if len(argv) > 2 else 7
    case = CASES[case_name]
    X, y = data(case_name, dtype)
    floor = GemmFloor(case, X, _n_out(case_name))
    floor.fit()
    _timed_fit(case, X, y)  # warm-up: first-call costs out of the rounds
    blocks = fit_blocks(case_name, dtype) if case_name in BLOCK_CASES else None
    rows = []
    print(f"{case_name} {dtype}, {case.epochs} epoch(s), ms (x floor)")
    for _ in range(rounds):
        settle()
        start = time.perf_counter()
        floor.fit()
        f = time.perf_counter() - start
        b = np.nan
        if blocks is not None:
            settle()
            b = blocks.run()
        settle()
        wall, passes, steps = _timed_fit(case, X, y)
        rows.append((f, wall, passes, steps, wall - passes - steps, b))
        print(_line(rows[-1]))
    print("median " + _line(np.median(np.array(rows), axis=0)))


def _line(row):
    f, wall, passes, steps, rest, blocks = row
    parts = [f"floor {f * 1e3:.1f}", f"fit {wall * 1e3:.1f} ({wall / f:.2f}x)"]
    parts += [f"{name} {t * 1e3:.1f} ({t / f:.2f}x)"
              for name, t in (("passes", passes), ("steps", steps), ("rest", rest))]
    if not np.isnan(blocks):
        parts.append(f"blocks {blocks * 1e3:.1f} (passes {passes / blocks:.2f}x)")
    return "  ".join(parts)


if __name__ == "__main__":
    main(sys.argv[1:])
