"""Print the mlpfast benchmark as one table per case and dtype.

Either runs the benchmark suite (``pytest bench/ --benchmark-only``) and
reads the JSON it writes, or reads a pytest-benchmark JSON given with ``--json``::

    python bench/report.py                              # run, then report
    python bench/report.py --json bench/results.json    # report a saved run

    python bench/report.py --json bench/results.json \
        --json-1thread bench/results-1thread.json        # and the thread comparison

It prints one summary table per dtype: for each case the ratios of the median fit
times sklearn / mlpfast and torch / mlpfast (above 1: mlpfast is faster) and
mlpfast / floor (the GEMM floor: numpy doing only the matrix products; 1 is the
best possible), then the predict rows (one row at a time; all rows at once, with
the floor of the forward products). Then the targets of issue 4, passed or
not; for each missed fit target, the time it asks of mlpfast and the rate of
matrix products that time implies, against the machine's peak rate
(``test_gemm_peak``) in the same run; and, with ``--json-1thread``, the same
tables for that run and the speed-up of each peer from one thread to the
default. ``--details`` adds one table per case and dtype
with every peer's median and the ratios of the minima too. The tables are Markdown,
so they can be pasted into bench/README.md as they are.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
IMPLS = ("mlpfast", "sklearn", "torch", "floor")
OPS = ("fit", "predict", "predict1")  # timed ops; "memory" entries have their own table
DTYPES = ("float32", "float64")


def run_benchmarks(json_path, pytest_args):
    """Run the suite from the repository root; return pytest's exit code.

    ``-P`` keeps the checkout's unbuilt ``mlpfast/`` from shadowing the installed
    package (``python -m`` would put the working directory first on sys.path)."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    cmd = [sys.executable, *safe_path, "-m", "pytest", os.path.relpath(BENCH_DIR, REPO_ROOT),
           "--benchmark-only", f"--benchmark-json={os.path.abspath(json_path)}",
           *pytest_args]
    print("$", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, cwd=REPO_ROOT)


def _entry_key(bench):
    """(case, dtype, op, impl) of one pytest-benchmark entry."""
    info = bench.get("extra_info") or {}
    if all(k in info for k in ("case", "dtype", "op", "impl")):
        return info["case"], info["dtype"], info["op"], info["impl"]
    # Fallback for entries without extra_info: group "<case>-<dtype>-<op>",
    # name "test_<op>[<case>-<dtype>-<impl>]".
    case, dtype, op = bench["group"].rsplit("-", 2)
    impl = bench["name"].rsplit("-", 1)[1].rstrip("]")
    return case, dtype, op, impl


def collect(benchmarks):
    """{(case, dtype): {op: {impl: benchmark entry}}}, in the order they ran."""
    tables = defaultdict(lambda: defaultdict(dict))
    for bench in benchmarks:
        case, dtype, op, impl = _entry_key(bench)
        tables[case, dtype][op][impl] = bench
    return tables


def fmt_time(seconds):
    if seconds is None:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_ratio(seconds):
    """sklearn / mlpfast, from {impl: seconds or None}."""
    if not (seconds["mlpfast"] and seconds["sklearn"]):
        return "n/a"
    return f"{seconds['sklearn'] / seconds['mlpfast']:.2f}x"


def _describe(ops):
    """One line about the case, from the first entry's extra_info."""
    for impls in ops.values():
        for bench in impls.values():
            info = bench.get("extra_info") or {}
            if "description" in info:
                hidden = tuple(info["hidden_layer_sizes"])
                return (f"{info['description']}; hidden {hidden}, "
                        f"batch_size={info['batch_size']}, solver='{info['solver']}', "
                        f"{info['epochs']} epochs")
    return ""


def format_table(case, dtype, ops):
    """Every peer's median for each op, and the ratios peer / mlpfast of the medians
    (and of the minima, in brackets)."""
    lines = [f"#### {case}, {dtype}", ""]
    description = _describe(ops)
    if description:
        lines += [description, ""]
    present = [i for i in IMPLS if any(i in impls for impls in ops.values())]
    lines += [
        "| op | " + " | ".join(f"{i} median" for i in present) + " | "
        + " | ".join(f"{i} / mlpfast" for i in present if i != "mlpfast") + " | rounds |",
        "| --- |" + " ---: |" * (2 * len(present)),
    ]
    for op in OPS:
        impls = ops.get(op)
        if not impls:
            continue
        stats = {i: impls[i]["stats"] if i in impls else None for i in present}
        cells = [fmt_time(s and s["median"]) for s in stats.values()]
        for i in present:
            if i == "mlpfast":
                continue
            med = ratio(stats[i] and stats[i]["median"], stats["mlpfast"] and stats["mlpfast"]["median"])
            mn = ratio(stats[i] and stats[i]["min"], stats["mlpfast"] and stats["mlpfast"]["min"])
            cells.append(f"{med} ({mn})" if med != "n/a" else "n/a")
        rounds = ", ".join(str(s["rounds"]) if s else "-" for s in stats.values())
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {rounds} |")
    return "\n".join(lines)


def ratio(a, b):
    if not (a and b):
        return "n/a"
    return f"{a / b:.2f}x"


def median(tables, case, dtype, op, impl):
    # .get: tables are defaultdicts, a look-up must not add an entry.
    bench = tables.get((case, dtype), {}).get(op, {}).get(impl)
    return bench["stats"]["median"] if bench else None


def _n_rows(tables, case, dtype, op):
    for bench in tables.get((case, dtype), {}).get(op, {}).values():
        return (bench.get("extra_info") or {}).get("n_samples")
    return None


def format_summary(tables, dtype, title=""):
    """One table for a dtype: the fit ratios of every case, then the predict rows."""
    cases = list(dict.fromkeys(case for case, d in tables if d == dtype))
    lines = [f"#### {title}{dtype}", "",
             "| case | mlpfast median | sklearn / mlpfast | torch / mlpfast | mlpfast / floor |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for case in cases:
        m = lambda impl, op="fit": median(tables, case, dtype, op, impl)  # noqa: E731
        if m("mlpfast") is None:
            continue
        lines.append(f"| {case} fit | {fmt_time(m('mlpfast'))} | {ratio(m('sklearn'), m('mlpfast'))} "
                     f"| {ratio(m('torch'), m('mlpfast'))} | {ratio(m('mlpfast'), m('floor'))} |")
    for op, what in (("predict1", "predict, 1 row"), ("predict", "predict, {n} rows")):
        for case in cases:
            m = lambda impl: median(tables, case, dtype, op, impl)  # noqa: E731
            if m("mlpfast") is None:
                continue
            label = what.format(n=_n_rows(tables, case, dtype, op))
            lines.append(f"| {case} {label} | {fmt_time(m('mlpfast'))} "
                         f"| {ratio(m('sklearn'), m('mlpfast'))} | - "
                         f"| {ratio(m('mlpfast'), m('floor'))} |")
    return "\n".join(lines)


# The targets of issue 4: (case, op, peer, kind, bound, dtypes).
# kind "speedup": peer / mlpfast >= bound; "floor": mlpfast / floor <= bound.
TARGETS = [
    *[(c, "fit", "sklearn", "speedup", 5.0, DTYPES) for c in ("small", "tabular", "regression")],
    *[(c, "fit", "sklearn", "speedup", 3.0, DTYPES) for c in ("mnist", "wide")],
    *[(c, "fit", "torch", "speedup", 2.0, DTYPES)
      for c in ("small", "mnist", "tabular", "wide", "regression")],
    ("mnist", "fit", "floor", "floor", 1.5, ("float32",)),
    ("small", "predict1", "sklearn", "speedup", 15.0, DTYPES),
    ("mnist", "predict", "floor", "floor", 1.3, DTYPES),
]


def paired(tables, case, dtype, key, op="paired"):
    """The median per-round ratio ``key`` (e.g. "sklearn/mlpfast") of the paired
    benchmark of (case, dtype) (fits; op "paired1": one-row predict), or None."""
    bench = tables.get((case, dtype), {}).get(op, {}).get("all")
    return ((bench or {}).get("extra_info") or {}).get("paired_ratios", {}).get(key)


def format_paired(tables, dtype):
    """The paired-rounds table of a dtype, or None when the run has none."""
    cases = [case for case, d in tables if d == dtype
             and (tables[case, d].get("paired") or tables[case, d].get("paired1"))]
    if not cases:
        return None
    lines = [f"#### Paired rounds, {dtype}", "",
             "| case | sklearn / mlpfast | torch / mlpfast | mlpfast / floor |",
             "| --- | ---: | ---: | ---: |"]
    for case in cases:
        if tables[case, dtype].get("paired"):
            cells = [paired(tables, case, dtype, k)
                     for k in ("sklearn/mlpfast", "torch/mlpfast", "mlpfast/floor")]
            lines.append(f"| {case} fit | " + " | ".join(
                f"{c:.2f}x" if c is not None else "n/a" for c in cells) + " |")
        one = paired(tables, case, dtype, "sklearn/mlpfast", "paired1")
        if one is not None:
            lines.append(f"| {case} predict, 1 row | {one:.2f}x | - | n/a |")
    return "\n".join(lines)


def format_targets(tables):
    """Each target of issue 4, measured by the paired rounds where the run has
    them (fits, one-row predict) and else by the ratio of the separate groups'
    medians."""
    lines = ["| target | dtype | measured | met |", "| --- | --- | ---: | --- |"]
    for case, op, peer, kind, bound, dtypes in TARGETS:
        for dtype in dtypes:
            mine, theirs = (median(tables, case, dtype, op, i) for i in ("mlpfast", peer))
            if kind == "speedup":
                name = f"{case} {op}: {peer} / mlpfast >= {bound:g}"
                value = theirs / mine if mine and theirs else None
                if op in ("fit", "predict1"):
                    value = paired(tables, case, dtype, f"{peer}/mlpfast",
                                   "paired" if op == "fit" else "paired1") or value
                met = value is not None and value >= bound
            else:
                name = f"{case} {op}: mlpfast / floor <= {bound:g}"
                value = mine / theirs if mine and theirs else None
                if op == "fit":
                    value = paired(tables, case, dtype, "mlpfast/floor") or value
                met = value is not None and value <= bound
            lines.append(f"| {name} | {dtype} | "
                         + (f"{value:.2f}x" if value is not None else "n/a")
                         + " | " + ("yes" if met else "**no**" if value is not None else "n/a")
                         + " |")
    # Memory: the float32 C-contiguous training data is used in place, never copied,
    # so what a fit allocates stays below the data's own size.
    for (case, dtype), ops in tables.items():
        bench = ops.get("memory", {}).get("mlpfast")
        if bench:
            info = bench.get("extra_info") or {}
            value = info["peak_traced_bytes"] / info["data_bytes"]
            lines.append(f"| {case} fit: peak allocated / training data < 1 (no copy) | "
                         f"{dtype} | {value:.2f}x | {'yes' if value < 1 else '**no**'} |")
    return "\n".join(lines)


def _peak_rate(tables, dtype):
    """The best matrix-product rate (flop/s) of the run's ``gemm_peak`` rounds."""
    bench = tables.get(("machine", dtype), {}).get("peak", {}).get("numpy")
    if not bench:
        return None
    return bench["extra_info"]["flops"] / bench["stats"]["min"]


def format_reach(tables):
    """For each missed fit target with paired rounds: the mlpfast time it asks
    for (the peer's median paired time / the bound, or the floor's times the
    bound) and the rate of matrix products that time implies (the floor's
    operations over it), against the best rate the machine's products reached
    in the same run. Above 100%, no fit of that network can meet the target
    here, whatever else it does; None when nothing is missed or the run has no
    peak."""
    lines = []
    for case, op, peer, kind, bound, dtypes in TARGETS:
        if op != "fit":
            continue
        for dtype in dtypes:
            bench = tables.get((case, dtype), {}).get("paired", {}).get("all")
            peak = _peak_rate(tables, dtype)
            info = (bench or {}).get("extra_info") or {}
            if not (peak and "floor_flops" in info):
                continue
            mid = {k: statistics.median(v) for k, v in info["paired_times"].items() if v}
            if peer not in mid:
                continue
            key = f"{peer}/mlpfast" if kind == "speedup" else "mlpfast/floor"
            value = info["paired_ratios"][key]
            if (value >= bound) if kind == "speedup" else (value <= bound):
                continue
            need = mid[peer] / bound if kind == "speedup" else mid["floor"] * bound
            flops = info["floor_flops"]
            name = (f"{peer} / mlpfast >= {bound:g}" if kind == "speedup"
                    else f"mlpfast / floor <= {bound:g}")
            lines.append(
                f"| {case}: {name} | {dtype} | {fmt_time(mid['mlpfast'])} "
                f"({flops / mid['mlpfast'] / 1e9:.0f}) | {fmt_time(need)} "
                f"({flops / need / 1e9:.0f}) | {flops / mid['floor'] / 1e9:.0f} "
                f"| {peak / 1e9:.0f} | {flops / need / peak:.0%} |")
    if not lines:
        return None
    return "\n".join([
        "| missed target | dtype | mlpfast (GFLOP/s) | needed (GFLOP/s) "
        "| floor's GFLOP/s | peak GFLOP/s | needed / peak |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *lines,
    ])


def format_wake(tables):
    """The waker threads' benchmark (``test_wake_paired``): medians of settled
    calls with them and without, and of the per-round ratios; None when the run
    has none."""
    rows = []
    for (case, dtype), ops in tables.items():
        bench = ops.get("wake", {}).get("mlpfast")
        if not bench:
            continue
        info = bench["extra_info"]
        for call, value in info["wake_ratios"].items():
            on, off = (statistics.median(info["wake_times"][f"{call} {w}"]) for w in ("on", "off"))
            rows.append(f"| {case} {call} | {dtype} | {fmt_time(on)} | {fmt_time(off)} "
                        f"| {value:.2f}x |")
    if not rows:
        return None
    return "\n".join([
        "| call | dtype | wakers on | wakers off | off / on (per round) |",
        "| --- | --- | ---: | ---: | ---: |",
        *rows,
    ])


def format_memory(tables):
    """Peak memory of one fit per peer (the ``memory`` benchmarks), or None."""
    rows = []
    for (case, dtype), ops in tables.items():
        for impl, bench in ops.get("memory", {}).items():
            info = bench.get("extra_info") or {}
            data_mb = info["data_bytes"] / 2**20
            traced_mb = info["peak_traced_bytes"] / 2**20
            rows.append(f"| {case} | {dtype} | {impl} | {data_mb:.1f} MiB | {traced_mb:.1f} MiB "
                        f"| {traced_mb / data_mb:.2f}x |")
    if not rows:
        return None
    return "\n".join([
        "| case | dtype | peer | training data | peak allocated during fit | / data |",
        "| --- | --- | --- | ---: | ---: | ---: |",
        *rows,
    ])


def format_threads(tables, tables1, n_threads):
    """Speed-up of each peer from 1 thread to the default run, by case and op."""
    lines = [f"| case | op | dtype | mlpfast, 1 thread | mlpfast, {n_threads} threads "
             + "".join(f"| {i} 1 -> {n_threads} " for i in IMPLS) + "|",
             "| --- | --- | --- | ---: | ---: |" + " ---: |" * len(IMPLS)]
    for (case, dtype), ops in tables.items():
        for op in OPS:
            if op not in ops:
                continue
            one = median(tables1, case, dtype, op, "mlpfast")
            many = median(tables, case, dtype, op, "mlpfast")
            cells = [ratio(median(tables1, case, dtype, op, i), median(tables, case, dtype, op, i))
                     for i in IMPLS]
            lines.append(f"| {case} | {op} | {dtype} | {fmt_time(one)} | {fmt_time(many)} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_machine(data):
    machine = data.get("machine_info", {})
    extra = machine.get("mlpfast_bench", {})
    cpu = machine.get("cpu", {})
    lines = []
    brand = cpu.get("brand_raw") or machine.get("processor") or "unknown CPU"
    flags = ", ".join(extra.get("cpu_flags", []))
    lines.append(f"- machine: {brand}, {extra.get('cpu_count', '?')} logical CPUs"
                 + (f" ({flags})" if flags else ""))
    versions = dict(extra.get("versions", {}))
    if "torch" not in versions:  # runs whose conftest did not record it
        for bench in data.get("benchmarks", []):
            info = bench.get("extra_info") or {}
            if "torch_version" in info:
                versions["torch"] = f"{info['torch_version']} ({info.get('torch_threads')} threads)"
                break
    lines.append(f"- python {machine.get('python_version', '?')}, "
                 + ", ".join(f"{k} {v}" for k, v in versions.items()))
    config = extra.get("mlpfast_config")
    if isinstance(config, dict):
        blas = config.get("blas") or {}
        lines.append(f"- mlpfast: OpenMP {'on' if config.get('openmp') else 'off'}, "
                     f"{config.get('n_threads')} threads, kernels "
                     f"{config.get('kernels', 'baseline')}; its show_config() names BLAS "
                     f"{os.path.basename(blas.get('filepath') or '?')}")
    for pool in extra.get("threadpools", []):
        path = pool.get("filepath") or ""
        name = os.path.join(*path.split(os.sep)[-2:]) if path else pool.get("prefix")
        arch = f", {pool['architecture']}" if pool.get("architecture") else ""
        version = f" {pool['version']}" if pool.get("version") else ""
        lines.append(f"- {pool.get('user_api')}: {name}{version}{arch}, "
                     f"{pool.get('num_threads')} threads")
    env = extra.get("env", {})
    lines.append("- environment: " + (", ".join(f"{k}={v}" for k, v in env.items())
                                      if env else "no thread or BLAS variables set"))
    if data.get("datetime"):
        lines.append(f"- run: {data['datetime']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH",
                        help="read this pytest-benchmark JSON instead of running the suite")
    parser.add_argument("--out", metavar="PATH", default=os.path.join(BENCH_DIR, "results.json"),
                        help="where a run writes its JSON (default: bench/results.json)")
    parser.add_argument("--json-1thread", metavar="PATH",
                        help="a saved run with one thread (OMP_NUM_THREADS=1 "
                             "OPENBLAS_NUM_THREADS=1): adds its tables and a thread comparison")
    parser.add_argument("--details", action="store_true",
                        help="also one table per case and dtype with every peer's times")
    parser.add_argument("pytest_args", nargs="*",
                        help="extra arguments for pytest when running, after '--' "
                             "(e.g. -- -k small)")
    args = parser.parse_args(argv)

    status = 0
    path = args.json
    if path is None:
        path = args.out
        status = run_benchmarks(path, args.pytest_args)
        if not os.path.exists(path):
            print(f"pytest exited with {status} and wrote no {path}", file=sys.stderr)
            return status or 1

    with open(path) as f:
        data = json.load(f)
    tables = collect(data.get("benchmarks", []))
    if not tables:
        print(f"no benchmarks in {path}", file=sys.stderr)
        return status or 1

    print(format_machine(data))
    for dtype in DTYPES:
        print()
        print(format_summary(tables, dtype))
    for dtype in DTYPES:
        table = format_paired(tables, dtype)
        if table:
            print()
            print(table)
    print()
    print("#### Targets of issue 4 (default threads)")
    print()
    print(format_targets(tables))
    reach = format_reach(tables)
    if reach:
        print()
        print("#### What the missed fit targets ask for (paired rounds' medians; the rate "
              "of the floor's products in that time, against the machine's peak)")
        print()
        print(reach)
    wake = format_wake(tables)
    if wake:
        print()
        print("#### Waker threads: settled calls with them and without (paired rounds)")
        print()
        print(wake)
    memory = format_memory(tables)
    if memory:
        print()
        print("#### Peak memory of one fit")
        print()
        print(memory)
    if args.json_1thread:
        with open(args.json_1thread) as f:
            data1 = json.load(f)
        tables1 = collect(data1.get("benchmarks", []))
        print()
        print(format_machine(data1))
        for dtype in DTYPES:
            print()
            print(format_summary(tables1, dtype, title="1 thread, "))
        config = (data.get("machine_info", {}).get("mlpfast_bench", {})
                  .get("mlpfast_config"))
        n = config.get("n_threads") if isinstance(config, dict) else None
        print()
        print(f"#### Threads: time at 1 thread / time at {n or 'default'} threads "
              "(above 1: the threads help)")
        print()
        print(format_threads(tables, tables1, n or "N"))
    if args.details:
        for (case, dtype), ops in tables.items():
            print()
            print(format_table(case, dtype, ops))
    if status:
        print(f"\npytest exited with {status}: a benchmark failed (see above); "
              "its figures are missing from the tables.", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
