"""Print the mlpfast benchmark as one table per case and dtype.

Either runs the benchmark suite (``python -m pytest bench/ --benchmark-only``) and
reads the JSON it writes, or reads a pytest-benchmark JSON given with ``--json``::

    python bench/report.py                              # run, then report
    python bench/report.py --json bench/results.json    # report a saved run

Each table gives the median time of mlpfast and of scikit-learn for ``fit`` and
``predict`` and the ratio sklearn / mlpfast (above 1: mlpfast is faster) of the
medians, and of the minima (steadier on a shared, noisy machine). The
tables are Markdown, so they can be pasted into bench/README.md as they are.
"""

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
IMPLS = ("mlpfast", "sklearn")
OPS = ("fit", "predict")


def run_benchmarks(json_path, pytest_args):
    """Run the suite from the repository root; return pytest's exit code."""
    cmd = [sys.executable, "-m", "pytest", os.path.relpath(BENCH_DIR, REPO_ROOT),
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
    lines = [f"#### {case}, {dtype}", ""]
    description = _describe(ops)
    if description:
        lines += [description, ""]
    lines += [
        "| op | mlpfast median | sklearn median | sklearn / mlpfast, medians "
        "| sklearn / mlpfast, minima | rounds (mlpfast, sklearn) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in OPS:
        impls = ops.get(op, {})
        stats = {impl: impls[impl]["stats"] if impl in impls else None for impl in IMPLS}
        median = {impl: s and s["median"] for impl, s in stats.items()}
        minimum = {impl: s and s["min"] for impl, s in stats.items()}
        rounds = ", ".join(str(s["rounds"]) if s else "-" for s in stats.values())
        lines.append(f"| {op} | {fmt_time(median['mlpfast'])} | {fmt_time(median['sklearn'])} "
                     f"| {fmt_ratio(median)} | {fmt_ratio(minimum)} | {rounds} |")
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
    lines.append(f"- python {machine.get('python_version', '?')}, "
                 + ", ".join(f"{k} {v}" for k, v in extra.get("versions", {}).items()))
    config = extra.get("mlpfast_config")
    if isinstance(config, dict):
        blas = config.get("blas") or {}
        lines.append(f"- mlpfast: OpenMP {'on' if config.get('openmp') else 'off'}, "
                     f"{config.get('n_threads')} threads; its show_config() names BLAS "
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
    for (case, dtype), ops in tables.items():
        print()
        print(format_table(case, dtype, ops))
    if status:
        print(f"\npytest exited with {status}: a benchmark failed (see above); "
              "its figures are missing from the tables.", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
