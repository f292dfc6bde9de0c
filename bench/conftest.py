"""pytest set-up of the benchmark suite: collect ``bench_*.py``, record the machine.

    pytest bench/ --benchmark-only --benchmark-json=bench/results.json
"""

import io
import os
import platform

import pytest


def pytest_collect_file(file_path, parent):
    """Collect this directory's ``bench_*.py`` without an ini option, once:
    files pytest collects anyway (named on the command line, or matching
    ``python_files``) are left to it."""
    if not (file_path.name.startswith("bench_") and file_path.suffix == ".py"):
        return None
    if parent.session.isinitpath(file_path) or any(
            file_path.match(p) for p in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_benchmark_update_machine_info(config, machine_info):
    """What a figure depends on: versions, thread pools, CPU flags, environment."""
    import numpy
    import scipy
    import sklearn
    import sklearn.neural_network  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    versions = {"numpy": numpy.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__}
    try:
        import torch

        versions["torch"] = f"{torch.__version__} ({torch.backends.cpu.get_cpu_capability()})"
    except ImportError:
        versions["torch"] = "not installed"
    try:
        import mlpfast

        versions["mlpfast"] = mlpfast.__version__
        config_ = mlpfast.show_config(file=io.StringIO())
    except Exception as exc:  # noqa: BLE001  (the mlpfast benchmarks fail on their own)
        config_ = f"import failed: {exc!r}"
    flags = []
    try:
        with open("/proc/cpuinfo") as f:
            flags = sorted(set(next(line for line in f if line.startswith("flags"))
                               .split(":", 1)[1].split()) & {"avx", "avx2", "fma", "avx512f"})
    except (OSError, StopIteration):
        pass
    machine_info["mlpfast_bench"] = {
        "versions": versions,
        "mlpfast_config": config_,
        "threadpools": [{k: info.get(k) for k in ("user_api", "internal_api", "version",
                                                    "num_threads", "architecture", "filepath")}
                        for info in threadpool_info()],
        "cpu_count": os.cpu_count(),
        "cpu_flags": flags,
        "platform": platform.platform(),
        "env": {k: v for k, v in os.environ.items()
                if k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                         "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                         "ONEDNN_MAX_CPU_ISA", "MLPFAST_KERNELS")},
    }
