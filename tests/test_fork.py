"""mlpfast in processes created by fork, after the parent ran threaded kernels.

Each case runs in a fresh Python process with a timeout, since a failure is a
hang (GNU OpenMP's threads do not survive fork). Oracle: the parent's own fit
and predictions, bit for bit.
"""

import os
import subprocess
import sys

import pytest

import mlpfast

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform"),
    pytest.mark.skipif(not mlpfast._engine.openmp_enabled(), reason="built without OpenMP"),
]

_SCRIPT = r"""
import hashlib, multiprocessing, os, sys, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("ignore", ConvergenceWarning)
from mlpfast import MLPClassifier, _config, _engine

case = sys.argv[1]
rng = np.random.RandomState(0)
X = rng.randn(3000, 20)
y = (X[:, 0] > 0).astype(int)
X_test = rng.randn(5000, 20)

def fit():
    return MLPClassifier((64,), max_iter=5, random_state=0).fit(X, y)

def digest(*arrays):
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()

def model_digest(m):
    return digest(*m.coefs_, *m.intercepts_)

def in_child(work, forked="1", threads="1"):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            out = f"{int(_engine.in_forked_child())} {_config.effective_n_threads()} {work()}"
        except BaseException as exc:
            out = f"error {exc!r}"
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    assert os.waitpid(pid, 0)[1] == 0
    assert out.split()[:2] == [forked, threads], out
    return out.split()[2]

assert _config.effective_n_threads() == 2
if case == "untouched":
    # A parent that ran no team of threads (a forkserver, a master that only
    # imported mlpfast): its children keep theirs.
    child = in_child(lambda: model_digest(fit()), forked="0", threads="2")
    assert child == model_digest(fit())
    print("ok")
    sys.exit()

# The parent runs a two-thread team for sure (a threaded kernel of 2^20
# values), then fits and predicts as users do.
_engine.all_finite(np.zeros(1 << 20), 2)
model = fit()
proba = model.predict_proba(X_test)

def predict_chunk(rows):
    return model.predict_proba(X_test[rows])

if case == "fit":
    assert in_child(lambda: model_digest(fit())) == model_digest(model)
elif case == "predict":
    assert in_child(lambda: digest(model.predict_proba(X_test))) == digest(proba)
elif case == "pool":
    chunks = np.array_split(np.arange(len(X_test)), 4)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(predict_chunk, chunks)
    assert digest(np.vstack(parts)) == digest(proba)
elif case == "parent":
    in_child(lambda: model_digest(fit()))
    in_child(lambda: digest(model.predict_proba(X_test)))
    assert not _engine.in_forked_child() and _config.effective_n_threads() == 2
    assert model_digest(fit()) == model_digest(model)
    assert digest(model.predict_proba(X_test)) == digest(proba)
print("ok")
"""


@pytest.mark.parametrize("case", ["fit", "predict", "pool", "parent", "untouched"])
def test_works_after_fork(case, tmp_path):
    """fit: a fit in a forked child gives the parent's model. predict: a
    child's prediction of 5000 rows is the parent's. pool: a fork-context
    multiprocessing Pool's workers predict with the parent's model. parent:
    the parent goes on fitting and predicting on two threads after its
    children exit. untouched: the child of a parent that ran no threads fits
    on two threads, the same model. Two OpenMP threads even on a one-CPU
    machine."""
    env = dict(os.environ, OMP_NUM_THREADS="2",
               PYTHONPATH=os.path.dirname(os.path.dirname(mlpfast.__file__)))
    try:
        out = subprocess.run([sys.executable, "-c", _SCRIPT, case], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the process hung after fork")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "ok"
