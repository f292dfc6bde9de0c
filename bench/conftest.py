"""pytest setup for the mlpfast benchmark suite.

Run from the repository root::

    pytest bench/ --benchmark-only --benchmark-json=bench/results.json

pytest only collects ``test_*.py`` by default; the hook below makes it collect the
``bench_*.py`` modules of this directory as well, so no ini option is needed.
(``-o python_files=bench_*.py`` on the command line does the same thing; the hook
steps aside when a file is already collected that way, so nothing runs twice.)
"""

import io
import os
import platform

import pytest


def pytest_collect_file(file_path, parent):
    if not (file_path.name.startswith("bench_") and file_path.suffix == ".py"):
        return None
    # pytest's own collector already takes files named on the command line and
    # files matching ``python_files``; collecting them here too would run them twice.
    if parent.session.isinitpath(file_path):
        return None
    if any(file_path.match(pattern) for pattern in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(flags & {"avx", "avx2", "fma", "avx512f"})
    except OSError:
        pass
    return []


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what a figure depends on: library versions, BLAS/OpenMP threads, CPU."""
    import numpy
    import scipy
    import sklearn
    import sklearn.neural_network  # noqa: F401  (loads sklearn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    versions = {
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:  # the optional peer of bench_peers.py
        import torch

        versions["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        versions["torch"] = "not installed"
    mlpfast_config = None
    try:
        import mlpfast

        versions["mlpfast"] = getattr(mlpfast, "__version__", "unknown")
    except Exception as exc:  # reported, not fatal: the mlpfast benchmarks fail on their own
        versions["mlpfast"] = f"import failed: {exc!r}"
    else:
        try:
            mlpfast_config = mlpfast.show_config(file=io.StringIO())
        except Exception as exc:
            mlpfast_config = f"show_config failed: {exc!r}"

    machine_info["mlpfast_bench"] = {
        "versions": versions,
        "mlpfast_config": mlpfast_config,
        "threadpools": [
            {key: info.get(key) for key in
             ("user_api", "internal_api", "prefix", "version", "num_threads",
              "architecture", "threading_layer", "filepath")}
            for info in threadpool_info()
        ],
        "cpu_count": os.cpu_count(),
        "cpu_flags": _cpu_flags(),
        "platform": platform.platform(),
        "env": {key: os.environ[key] for key in
                ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                 "MKL_NUM_THREADS")
                if key in os.environ},
    }
