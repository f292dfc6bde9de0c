"""Thread count and build information."""

import os
import sys
import threading
from contextlib import contextmanager

from mlpfast import _engine


_cpu_counts = {}


def _cpu_count():
    """The CPUs this process may use, as joblib counts them (affinity and
    cgroup CPU quotas), read once per process and affinity mask."""
    key = (os.getpid(), frozenset(os.sched_getaffinity(0))
           if hasattr(os, "sched_getaffinity") else None)
    if key not in _cpu_counts:
        from joblib import cpu_count

        _cpu_counts[key] = max(1, cpu_count())
    return _cpu_counts[key]


def effective_n_threads():
    """OpenMP threads the kernels will use, resolved as scikit-learn's
    ``_openmp_effective_n_threads``: ``omp_get_max_threads()`` when
    ``OMP_NUM_THREADS`` is set, else that capped by the CPUs this process may
    use (affinity and cgroup CPU quotas); ``threadpool_limits(user_api="openmp")``
    is honoured either way. 1 when built without OpenMP."""
    if not _engine.openmp_enabled():
        return 1
    if os.environ.get("OMP_NUM_THREADS"):
        return max(1, _engine.openmp_max_threads())
    return max(1, min(_engine.openmp_max_threads(), _cpu_count()))


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None
_blas_controller = None


@contextmanager
def blas_single_threaded():
    """BLAS on one thread while mlpfast computes (its OpenMP threads split the products).

    Reference-counted, so overlapping fits in several Python threads restore
    BLAS's own thread count only when the last of them ends.
    """
    global _blas_users, _blas_limiter, _blas_controller
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                # Scanning the loaded libraries costs milliseconds: do it once.
                # scipy's BLAS is loaded by then (mlpfast._engine links it).
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController().select(user_api="blas")
            _blas_limiter = _blas_controller.limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _blas_info():
    """threadpoolctl's record of the BLAS behind scipy.linalg.cython_blas."""
    from threadpoolctl import threadpool_info

    import scipy.linalg  # noqa: F401  (loads scipy's BLAS so threadpoolctl sees it)

    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    # scipy's own copy (scipy.libs/ in its wheels), not numpy's libscipy_openblas64_
    scipy_blas = [lib for lib in blas if os.sep + "scipy" in lib.get("filepath", "")]
    return (scipy_blas or blas or [None])[0]


def show_config(file=None):
    """Print and return how this mlpfast was built and will run.

    Parameters
    ----------
    file : file-like, default=None
        Where to print; ``sys.stdout`` when None.

    Returns
    -------
    config : dict
        ``version``, ``openmp`` (compiled with OpenMP), ``n_threads`` (threads
        the kernels will use now), ``kernels`` (the instruction set the
        element-wise kernels run with: ``"avx2"`` or ``"baseline"``), ``blas``
        (threadpoolctl's record of the BLAS used for the matrix products, or None).

    Examples
    --------
    >>> import io, mlpfast
    >>> config = mlpfast.show_config(file=io.StringIO())
    >>> sorted(config)
    ['blas', 'kernels', 'n_threads', 'openmp', 'version']
    """
    from mlpfast import __version__

    blas = _blas_info()
    config = {
        "version": __version__,
        "openmp": _engine.openmp_enabled(),
        "n_threads": effective_n_threads(),
        "kernels": _engine.kernel_isa(),
        "blas": blas,
    }
    out = sys.stdout if file is None else file
    print(f"mlpfast {config['version']}", file=out)
    print(f"  OpenMP:    {'on' if config['openmp'] else 'off (serial kernels)'}", file=out)
    print(f"  threads:   {config['n_threads']}", file=out)
    print(f"  kernels:   {config['kernels']}", file=out)
    if blas is None:
        print("  BLAS:      unknown", file=out)
    else:
        print(
            f"  BLAS:      {blas.get('internal_api')} {blas.get('version')} "
            f"({blas.get('threading_layer')}, {blas.get('num_threads')} threads, "
            f"{blas.get('architecture')})\n             {blas.get('filepath')}",
            file=out,
        )
    return config
