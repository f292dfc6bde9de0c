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
_blas_saved = None  # the BLAS thread counts to put back when the last user ends
_blas_libs = None  # threadpoolctl's controllers of the loaded BLAS libraries


def _is_engine_blas(lib):
    """Whether a threadpoolctl controller is of the engine's BLAS."""
    return os.path.realpath(lib.filepath) == _engine.BLAS_LIBRARY


def _mlpfast_blas(libs):
    """The libraries, of threadpoolctl's BLAS controllers, that mlpfast
    computes with: the engine's own OpenBLAS (_engine.BLAS_LIBRARY), and the
    BLAS of scipy.linalg.cython_blas, which scipy's L-BFGS-B uses: scipy's own
    copy (scipy.libs/ in its wheels) when it has one, not numpy's
    libscipy_openblas64_; else every other BLAS loaded."""
    ours = [lib for lib in libs if _is_engine_blas(lib)]
    others = [lib for lib in libs if lib not in ours]
    return ours + ([lib for lib in others if os.sep + "scipy" in lib.filepath] or others)


def _set_blas_threads(counts):
    # threadpoolctl >= 3.8 lets one Python thread at a time set OpenBLAS's
    # process-wide thread count, and ignores the others without a word. mlpfast
    # keeps one count for the whole process under _blas_lock, so the thread
    # that changes it takes that role for the change and then gives it up.
    import threadpoolctl

    release = getattr(getattr(threadpoolctl, "OpenBLASController", None),
                      "clear_controlling_thread", None)
    for lib, n in zip(_blas_libs, counts):
        if release is not None:
            release(force=True)
        lib.set_num_threads(n)
    if release is not None:
        release(force=True)


@contextmanager
def blas_single_threaded():
    """BLAS on one thread while mlpfast computes, whichever Python thread calls.

    Every product then runs the same sequence of operations (a threaded BLAS
    splits some products differently, and its results differ in the last bits),
    and mlpfast's own OpenMP threads share out the blocks. Reference-counted
    for the whole process: overlapping calls in several Python threads put
    BLAS's own thread count back only when the last of them ends.
    """
    global _blas_users, _blas_saved, _blas_libs
    with _blas_lock:
        if _blas_users == 0:
            if _blas_libs is None:
                # Scanning the loaded libraries costs milliseconds: do it once.
                import scipy.linalg  # noqa: F401  (loads scipy's BLAS, for L-BFGS-B)
                from threadpoolctl import ThreadpoolController

                _blas_libs = _mlpfast_blas(
                    ThreadpoolController().select(user_api="blas").lib_controllers)
            _blas_saved = [lib.get_num_threads() for lib in _blas_libs]
            _set_blas_threads([1] * len(_blas_libs))
        _blas_users += 1
    pid = os.getpid()
    try:
        yield
    finally:
        with _blas_lock:
            if os.getpid() == pid:  # else a fork in between reset the count
                _blas_users -= 1
                if _blas_users == 0:
                    _set_blas_threads(_blas_saved)


def _after_fork_in_child():
    # The fork may have come while other threads held the lock or ran fits;
    # they do not exist in the child, which starts afresh, with BLAS's own
    # thread count.
    global _blas_lock, _blas_users
    _blas_lock = threading.Lock()
    if _blas_users > 0:
        _blas_users = 0
        _set_blas_threads(_blas_saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas_info():
    """threadpoolctl's record of the engine's BLAS (_engine.BLAS_LIBRARY)."""
    from threadpoolctl import ThreadpoolController

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return next((lib.info() for lib in libs if _is_engine_blas(lib)), None)


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

    See Also
    --------
    threadpoolctl.threadpool_limits : Limit the OpenMP threads (``user_api="openmp"``).

    Notes
    -----
    ``mlpfast-example`` and ``python -m mlpfast`` print it before their
    example fit. ``n_threads`` is resolved as in scikit-learn's OpenMP
    estimators: ``OMP_NUM_THREADS`` and ``threadpool_limits(n,
    user_api="openmp")`` are honoured, and without ``OMP_NUM_THREADS`` the
    count is capped by the CPUs this process may use. It is 1 for a build
    without OpenMP.

    Examples
    --------
    >>> import io, mlpfast
    >>> config = mlpfast.show_config(file=io.StringIO())
    >>> sorted(config)
    ['blas', 'kernels', 'n_threads', 'openmp', 'version']
    """
    from mlpfast._version import __version__

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
