"""The main job, `python -m mlpfast` (the `mlpfast-example` script).

Oracle: scikit-learn's MLPClassifier. The script compares mlpfast's fit with it; here it
is fitted again, in this process, with the script's parameters, and gives the n_iter_
and test accuracy the script must print for it. Python's warnings, turned into errors
(`-W error`), must not fire.
"""

import os
import re
import subprocess
import sys
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import mlpfast
from mlpfast.__main__ import PARAMS, main


def _run_main_job(tmp_path):
    # From a directory outside the checkout, and with the mlpfast this process imported
    # (the in-place build, or the installed package) first on the path: from the checkout,
    # `-m mlpfast` would find its source tree, built or not.
    root = os.path.dirname(os.path.dirname(os.path.abspath(mlpfast.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-W", "error", "-m", "mlpfast"],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=path),
                          capture_output=True, text=True, timeout=120)


def _sklearn_digits_fit():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    # One BLAS thread, for a quick fit on a busy machine; at 3 decimals the accuracy
    # does not depend on it.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("error")
        clf = MLPClassifier(**PARAMS).fit(X_train, y_train)
    return clf.n_iter_, clf.score(X_test, y_test)


def test_main_job_shows_both_estimators_give_the_same_model_without_warnings(tmp_path):
    run = _run_main_job(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    out = run.stdout
    assert out.startswith(f"mlpfast {mlpfast.__version__}\n")  # show_config() first
    rows = {}
    for name in ("sklearn.neural_network.MLPClassifier", "mlpfast.MLPClassifier"):
        match = re.search(rf"^{re.escape(name)} +([\d.]+) +(\d+) +([\d.]+)$", out, re.M)
        assert match, out
        rows[name] = match.groups()
    assert re.search(r"^speed-up: [\d.]+x", out, re.M), out
    assert "identical: same n_iter_, same predictions on all 450 test rows\n" in out
    diff = re.search(r"^max \|difference\| of coefs_ and intercepts_: (\S+)$", out, re.M)
    assert diff and float(diff.group(1)) <= 1e-9, out

    n_iter, accuracy = _sklearn_digits_fit()
    assert n_iter < PARAMS["max_iter"]
    for name in rows:
        assert rows[name][1:] == (str(n_iter), f"{accuracy:.3f}"), out


def test_help_prints_usage_and_fits_nothing(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("usage: mlpfast-example")
    assert "--no-config" in out and "--repeat" in out
    assert "speed-up:" not in out and "identical:" not in out
