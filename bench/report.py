"""Markdown tables of ratios from the benchmark suite's pytest-benchmark JSON.

    python bench/report.py --json bench/results.json
    python bench/report.py --json bench/results.json \\
        --json-1thread bench/results-1thread.json --write-readme

Ratios above 1 in "peer / mlpfast" columns mean mlpfast is faster; in
"mlpfast / floor", 1 is the floor itself. Ratios come from the paired
rounds where the run has them, else from the separate groups' medians.
``--write-readme`` replaces the "Latest results" section of bench/README.md
(between its ``report`` markers) with the same text.
"""

import argparse
import json
import os
import re
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(BENCH_DIR, "README.md")
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
DTYPES = ("float32", "float64")
CASES = ("small", "tanh", "tabular", "regression", "mnist", "wide")
PEERS = ("mlpfast", "sklearn", "torch", "floor")
THREAD_CALLS = ("small-fit", "tabular-fit", "tabular-predict")
# bench_beyond.py's cases: data set and feature
BEYOND = tuple(f"{d}-{f}" for d in ("small", "tabular")
               for f in ("leaky_relu", "gelu", "dropout", "maxout")) + ("mnist-gelu",)
PREDICT_ROWS = 20000  # of the tabular-predict call

# Targets: (case, op, ratio key, "min" or "max", bound, dtypes). "min": the
# ratio must be at least the bound, "max": at most.
TARGETS = [
    *[(c, "fit", "sklearn/mlpfast", "min", 5.0, DTYPES)
      for c in ("small", "tabular", "regression")],
    *[(c, "fit", "sklearn/mlpfast", "min", 3.0, DTYPES) for c in ("mnist", "wide")],
    *[(c, "fit", "torch/mlpfast", "min", 2.0, DTYPES)
      for c in ("small", "tabular", "regression", "mnist", "wide")],
    ("mnist", "fit", "mlpfast/floor", "max", 1.5, ("float32",)),
    ("small", "predict1", "sklearn/mlpfast", "min", 15.0, DTYPES),
    ("mnist", "predict", "mlpfast/floor", "max", 1.3, DTYPES),
    # Threads must not cost time: at most as slow as one thread on an idle
    # machine, at most 1.2x under load (one CPU taken by another process).
    *[(c, "threads", "idle", "max", 1.0, DTYPES) for c in THREAD_CALLS],
    *[(c, "threads", "busy", "max", 1.2, DTYPES) for c in THREAD_CALLS],
    ("mnist", "memory", "peak/data", "max", 1.0, ("float32",)),
    # beyond scikit-learn's model (issue 17)
    *[(c, "beyond", "torch/mlpfast", "min", 3.0, ("float32",))
      for c in BEYOND if not c.startswith("mnist")],
    *[(c, "beyond", "mlpfast/plain", "max", 1.3, DTYPES) for c in BEYOND if "dropout" in c],
    ("mnist-gelu", "beyond", "mlpfast/floor", "max", 1.2, DTYPES),
]


class Run:
    """The entries of one pytest-benchmark JSON, by (op, case, dtype, peer)."""

    def __init__(self, path):
        with open(path) as f:
            self.data = json.load(f)
        self.entries = {}
        for bench in self.data.get("benchmarks", []):
            info = bench.get("extra_info") or {}
            if "op" in info:
                self.entries[info["op"], info["case"], info["dtype"], info["peer"]] = bench

    def median(self, op, case, dtype, peer):
        bench = self.entries.get((op, case, dtype, peer))
        return bench["stats"]["median"] if bench else None

    def info(self, op, case, dtype, peer):
        return (self.entries.get((op, case, dtype, peer)) or {}).get("extra_info", {})

    def ratio(self, op, case, dtype, key):
        """A target's ratio: the paired rounds' median where there are any."""
        if op == "threads":
            return self.info(op, case, dtype, key).get("ratios", {}).get("default/one")
        if op == "memory":
            info = self.info(op, case, dtype, "mlpfast")
            return info["peak_bytes"] / info["data_bytes"] if info else None
        if op == "beyond":
            return self.info(op, case, dtype, "all").get("ratios", {}).get(key)
        paired = {"fit": "paired", "predict1": "paired1", "predict": "paired_predict"}.get(op)
        value = self.info(paired, case, dtype, "all").get("ratios", {}).get(key)
        if value is None:
            num, den = key.split("/")
            a, b = self.median(op, case, dtype, num), self.median(op, case, dtype, den)
            value = a / b if a and b else None
        return value


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def table(header, rows, text_columns=1):
    """Markdown; the first ``text_columns`` columns left-aligned, the rest right."""
    return "\n".join(["| " + " | ".join(header) + " |",
                      "|" + " --- |" * text_columns + " ---: |" * (len(header) - text_columns),
                      *("| " + " | ".join(row) + " |" for row in rows)])


def machine(run):
    data = run.data
    info = data.get("machine_info", {})
    extra = info.get("mlpfast_bench", {})
    cpu = info.get("cpu", {}).get("brand_raw") or info.get("processor") or "?"
    flags = ", ".join(extra.get("cpu_flags", []))
    versions = dict(extra.get("versions", {}))
    mlpfast = versions.pop("mlpfast", "?")
    lines = [f"- {cpu}, {extra.get('cpu_count', '?')} CPUs ({flags}); Python "
             f"{info.get('python_version', '?')}, "
             + ", ".join(f"{k} {v}" for k, v in versions.items())]
    config = extra.get("mlpfast_config")
    env = extra.get("env") or {}
    if isinstance(config, dict):
        blas = config.get("blas") or {}
        lines.append(f"- mlpfast {mlpfast}: {config.get('n_threads')} OpenMP threads, kernels "
                     f"{config.get('kernels')}, {blas.get('internal_api')} "
                     f"{blas.get('version')} ({blas.get('architecture')}); "
                     + (", ".join(f"{k}={v}" for k, v in env.items())
                        or "no thread or BLAS variables set"))
    commit = data.get("commit_info", {})
    lines.append(f"- run {data.get('datetime', '?')[:16]}, commit "
                 f"{str(commit.get('id', '?'))[:7]}{' (dirty)' if commit.get('dirty') else ''}")
    return "\n".join(lines)


def missed(case, op, key, dtype, value):
    """Whether ``value`` misses a target of TARGETS (False when there is none)."""
    for t_case, t_op, t_key, kind, bound, dtypes in TARGETS:
        if (t_case, t_op, t_key) == (case, op, key) and dtype in dtypes and value is not None:
            return value < bound if kind == "min" else value > bound
    return False


def pair(fmt, values, marks=(False, False)):
    """'float32 / float64' cell; missed targets in bold."""
    if all(v is None for v in values):
        return "-"
    return " / ".join(f"**{fmt(v)}**" if m else fmt(v) for v, m in zip(values, marks))


def ratios(run, run1=None):
    rows = []
    keys = ("sklearn/mlpfast", "torch/mlpfast", "mlpfast/floor")
    for case, op in [(c, "fit") for c in CASES] + [("small", "predict1"), ("mnist", "predict")]:
        mine = [run.median(op, case, d, "mlpfast") for d in DTYPES]
        if all(m is None for m in mine):
            continue
        n = run.info(op, case, DTYPES[0], "mlpfast").get("n_rows")
        name = f"{case} fit" if op == "fit" else f"{case} predict, {n} row{'s' * (n != 1)}"
        row = [name, pair(fmt_time, mine)]
        for key in keys:
            values = [run.ratio(op, case, d, key) for d in DTYPES]
            row.append(pair(fmt_ratio, values,
                            [missed(case, op, key, d, v) for d, v in zip(DTYPES, values)]))
        if run1 is not None:
            one = [run1.median(op, case, d, "mlpfast") for d in DTYPES]
            row.append(pair(fmt_ratio, [a / b if a and b else None for a, b in zip(one, mine)]))
        rows.append(row)
    if not rows:
        return None
    header = ["case", "mlpfast", "sklearn / mlpfast", "torch / mlpfast", "mlpfast / floor"]
    if run1 is not None:
        header.append("mlpfast time at 1 thread / default")
    return table(header, rows)


def beyond(run):
    """bench_beyond.py's table: the features scikit-learn lacks."""
    rows = []
    keys = ("torch/mlpfast", "mlpfast/plain", "mlpfast/floor")
    for case in BEYOND:
        mine = [run.ratio("beyond", case, d, "mlpfast") for d in DTYPES]
        if all(m is None for m in mine):
            continue
        row = [case.replace("-", " "), pair(fmt_time, mine)]
        for key in keys:
            values = [run.ratio("beyond", case, d, key) for d in DTYPES]
            row.append(pair(fmt_ratio, values, [missed(case, "beyond", key, d, v)
                                                for d, v in zip(DTYPES, values)]))
        rows.append(row)
    if not rows:
        return None
    return table(["beyond scikit-learn", "mlpfast", "torch / mlpfast",
                  "mlpfast / same without dropout", "mlpfast / floor"], rows)


def threads(run):
    rows = []
    for call in THREAD_CALLS:
        cells = []
        for load in ("idle", "pauses", "busy"):
            values = [run.ratio("threads", call, d, load) for d in DTYPES]
            cells.append(pair(fmt_ratio, values, [missed(call, "threads", load, d, v)
                                                  for d, v in zip(DTYPES, values)]))
        if cells != ["-"] * len(cells):
            rows.append([call.replace("-", " ") + (f", {PREDICT_ROWS} rows"
                                                   if call.endswith("predict") else "")] + cells)
    if not rows:
        return None
    return table(["mlpfast default threads / 1 thread", "idle",
                  "pauses (a CPU taken 3 ms about every 100 ms)",
                  "busy (one CPU taken by a busy loop)"], rows)


def memory(run):
    """One line: each peer's peak allocation during a fit, against its data."""
    parts = []
    for (op, case, dtype, peer), bench in run.entries.items():
        if op == "memory":
            info = bench["extra_info"]
            value = info["peak_bytes"] / info["data_bytes"]
            bad = peer == "mlpfast" and missed(case, op, "peak/data", dtype, value)
            mark = "**" if bad else ""
            parts.append(f"{peer} {info['peak_bytes'] / 2**20:.1f} MiB ({mark}{value:.2f}x{mark} "
                         f"the {info['data_bytes'] / 2**20:.1f} MiB of {case} {dtype} data)")
    return "Peak memory allocated during a fit: " + ", ".join(parts) + "." if parts else None


def targets(run):
    """Every target of TARGETS the run measured: (row, met)."""
    rows = []
    for case, op, key, kind, bound, dtypes in TARGETS:
        for dtype in dtypes:
            value = run.ratio(op, case, dtype, key)
            if value is not None:
                what = {"threads": f"{case.replace('-', ' ')} {key}: default / 1 thread",
                        "memory": f"{case} fit: peak allocated / data"}.get(
                            op, f"{case} {op}: {key}")
                met = not missed(case, op, key, dtype, value)
                rows.append(([f"{what} {'>=' if kind == 'min' else '<='} {bound:g}", dtype,
                              fmt_ratio(value), "yes" if met else "**no**"], met))
    return rows


def report(run, run1=None, all_targets=True):
    """The tables; with ``all_targets`` every target's row, else only a count."""
    rows = targets(run)
    met = sum(m for _, m in rows)
    parts = [machine(run),
             "Each cell: float32 / float64. mlpfast: its median time; ratios: the "
             "median of the paired rounds' per-round ratios (peer / mlpfast above 1: "
             f"mlpfast is faster). Targets (bench/report.py) met: {met} of {len(rows)}; "
             "bold: missed.",
             ratios(run, run1), beyond(run), threads(run), memory(run)]
    if all_targets and rows:
        parts.append(table(["target", "dtype", "measured", "met"], [r for r, _ in rows], 2))
    return "\n\n".join(p for p in parts if p)


def write_readme(text, path=README):
    with open(path) as f:
        readme = f.read()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section")
    with open(path, "w") as f:
        f.write(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", readme))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, help="pytest-benchmark JSON of the suite")
    parser.add_argument("--json-1thread", help="the same suite run at one thread")
    parser.add_argument("--write-readme", nargs="?", const=README, metavar="PATH",
                        help="also write the tables into PATH's report section "
                             "(default: bench/README.md)")
    args = parser.parse_args(argv)
    run = Run(args.json)
    if not run.entries:
        print(f"no benchmarks of this suite in {args.json}", file=sys.stderr)
        return 1
    run1 = Run(args.json_1thread) if args.json_1thread else None
    print(report(run, run1))
    if args.write_readme:
        write_readme(report(run, run1, all_targets=False), args.write_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
