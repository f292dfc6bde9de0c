"""Paired A/B of one bench case's mlpfast fit: another commit against this checkout.

This machine's speed drifts between slow and fast periods within minutes, so
two builds timed one after the other can differ by more than any change
between them. Here each build runs in a worker process of its own (the other
commit built in a temporary git worktree; this checkout as built in place),
both workers load the case's data once, and the fits alternate: in pair i the
base fits first when i is even, second when it is odd, each after a settle,
while the other worker waits on its pipe. Prints the medians and the median
of the per-pair ratios base/this (above 1: this checkout is faster), with
their range. A development tool for the "development A/B" figures of commit
messages and notes; it asserts nothing. Run from the repository root, after
``python setup.py build_ext --inplace``::

    python bench/ab_fit.py <commit> <case> <dtype> [pairs]
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)

# One worker: mlpfast from `root`, the cases from this checkout's bench/. Reads
# "fit" lines and answers each with the seconds of one settled fit.
# Before each fit the worker waits until the whole machine has idled
# (bench_fit.settle_machine): the other worker's OpenMP threads spin for a
# while after its fit.
WORKER = """
import sys, time, warnings
root, bench, case_name, dtype = sys.argv[1:5]
sys.path[:0] = [root, bench]
import mlpfast
from bench_fit import CASES, data, make_estimator, settle_machine
assert mlpfast.__file__.startswith(root), mlpfast.__file__
warnings.simplefilter("ignore")

X, y = data(case_name, dtype)
make_estimator("mlpfast", CASES[case_name]).fit(X, y)  # first-call costs
print("ready", flush=True)
for line in sys.stdin:
    settle_machine()
    est = make_estimator("mlpfast", CASES[case_name])
    start = time.perf_counter()
    est.fit(X, y)
    print(time.perf_counter() - start, flush=True)
"""


class Worker:
    def __init__(self, root, case_name, dtype):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, root, BENCH, case_name, dtype],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker for {root} did not start")

    def fit(self):
        self.proc.stdin.write("fit\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def build(commit, where):
    """A worktree of `commit` at `where`, its extension built in place."""
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", where, commit],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=where,
                   check=True, capture_output=True)


def main(argv):
    if len(argv) not in (3, 4):
        raise SystemExit("usage: python bench/ab_fit.py <commit> <case> <dtype> [pairs]")
    commit, case_name, dtype = argv[:3]
    pairs = int(argv[3]) if len(argv) > 3 else 12
    with tempfile.TemporaryDirectory() as tmp:
        base_root = os.path.join(tmp, "base")
        build(commit, base_root)
        try:
            base, this = Worker(base_root, case_name, dtype), Worker(REPO, case_name, dtype)
            times = []
            for i in range(pairs):
                if i % 2 == 0:
                    b = base.fit()
                    t = this.fit()
                else:
                    t = this.fit()
                    b = base.fit()
                times.append((b, t))
            base.close()
            this.close()
        finally:
            subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", base_root],
                           capture_output=True)
    times = np.array(times)
    ratio = times[:, 0] / times[:, 1]
    print(f"{case_name} {dtype}, {pairs} pairs: {commit} {np.median(times[:, 0]) * 1e3:.1f} ms, "
          f"this checkout {np.median(times[:, 1]) * 1e3:.1f} ms; {commit} / this per pair: "
          f"median {np.median(ratio):.3f}, range {ratio.min():.2f}-{ratio.max():.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
