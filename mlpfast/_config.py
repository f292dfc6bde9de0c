"""Thread count and build information."""

import os
import sys
import threading
from contextlib import contextmanager

from mlpfast import _engine


def _cpu_count():
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# Products are split by the machine's CPU count, not by the thread count, so
# results do not depend on how many threads run them.
_engine.set_max_blocks(_cpu_count())


def effective_n_threads():
    """OpenMP threads the kernels will use, resolved as scikit-learn does for its
    OpenMP estimators: ``omp_get_max_threads()`` (so ``OMP_NUM_THREADS`` and
    ``threadpoolctl.threadpool_limits(user_api="openmp")`` are honoured), capped
    by the CPUs available; 1 when built without OpenMP."""
    if not _engine.openmp_enabled():
        return 1
    return max(1, min(_engine.openmp_max_threads(), _cpu_count()))


# How long a hold of the waker threads lasts at most (seconds). A waker stops
# sooner when another thread has run on its CPU (the team's worker, awake) or
# when the call that took the hold ends; within this time the small fits that
# hold them reach their first two threaded regions.
_WAKE_SECONDS = 0.01


# Threads inside a cpus_awake block: a nested block (the validation scores
# that early stopping predicts during a fit) takes no hold of its own.
_awake = threading.local()

# MLPFAST_WAKE=0 turns the waker threads off for the process.
if os.environ.get("MLPFAST_WAKE", "1").strip() == "0":
    _engine.set_wake_enabled(False)


@contextmanager
def cpus_awake(n_threads):
    """The other CPUs kept awake (csrc/mlpfast_wake.h) while the block starts
    threaded kernels on n_threads OpenMP threads, so that its first OpenMP
    regions do not wait for a halted CPU. Measured on the benchmarks' 2-vCPU
    VM (development C program, 30 trials each way, 0.2 s idle before each):
    the first two-thread region and the one after it took 7.77 and 4.05 ms
    (medians) without, 0.12 and 0.06 ms with a waker started 0 or 2 ms
    before. No effect on results."""
    depth = getattr(_awake, "depth", 0)
    held = depth == 0 and n_threads > 1 and _engine.wake_hold(n_threads, _WAKE_SECONDS)
    _awake.depth = depth + 1
    try:
        yield
    finally:
        _awake.depth = depth
        if held:
            _engine.wake_release()


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
