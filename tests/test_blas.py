"""The engine's BLAS: scipy-openblas32's OpenBLAS, opened privately.

Oracles: the dynamic linker (``dladdr`` names the library a function comes
from) and threadpoolctl's records of the loaded libraries. Each check runs in a
fresh interpreter, so that the order of imports is the one a user gets:
mlpfast first, then whatever else loads scipy's BLAS.
"""

import json
import os
import subprocess
import sys

import mlpfast

_PROBE = r"""
import ctypes, json, os
import mlpfast
from mlpfast import _engine


class DlInfo(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]


def global_library(symbol):
    # the library that the process's global namespace (where a library loaded
    # later looks first) resolves symbol to, or None
    process = ctypes.CDLL(None)
    try:
        address = ctypes.cast(getattr(process, symbol), ctypes.c_void_p)
    except AttributeError:
        return None
    info = DlInfo()
    assert process.dladdr(address, ctypes.byref(info))
    return os.path.realpath(info.fname.decode())


blas = mlpfast.show_config(file=open(os.devnull, "w"))["blas"]
print(json.dumps({
    "engine": _engine.BLAS_LIBRARY,
    "global": [global_library(s) for s in ("scipy_sgemm_", "scipy_dgemm_", "scipy_cblas_sgemm")],
    "shown": os.path.realpath(blas["filepath"]),
    "shown_threads": blas["num_threads"],
}))
"""


def _probe(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(mlpfast.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    run = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=path), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_engines_blas_stays_out_of_the_global_namespace(tmp_path):
    """After `import mlpfast`, the functions of the engine's OpenBLAS, named as
    those of scipy's copy, are not in the process's global namespace, where
    scipy's modules loaded afterwards would find them first and compute with
    them instead of with scipy's own BLAS."""
    found = _probe(tmp_path)
    assert os.path.basename(found["engine"]).startswith("libscipy_openblas")
    assert found["engine"] not in found["global"]


def test_show_config_names_the_engines_blas_on_one_thread(tmp_path):
    """show_config's BLAS is the library the engine loaded, which runs on the
    calling thread (the engine's own threads share out the work)."""
    found = _probe(tmp_path)
    assert found["shown"] == found["engine"]
    assert found["shown_threads"] == 1
