"""`mlpfast-example` / `python -m mlpfast`: scikit-learn's MLPClassifier and mlpfast's side by side.

Prints the build configuration (`mlpfast.show_config()`), then fits scikit-learn's
`MLPClassifier` and mlpfast's with the same parameters and seed on the digits data, and
prints each one's fit time, the speed-up, and that the two models are the same: the same
`n_iter_`, the same predictions on the test set, weights equal to rounding.
"""

import argparse
import sys
import textwrap
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

import mlpfast

# The README's hidden layer. Early stopping (on a held-out tenth of the training rows, after
# 10 epochs without improvement) ends the fit well before max_iter, so neither estimator
# warns that it has not converged. With batches of 100 rows (not the default 200)
# scikit-learn's matrix products stay on OpenBLAS's one-thread path, so its fit time does
# not hang on a second CPU being free.
PARAMS = {"hidden_layer_sizes": (100,), "batch_size": 100, "learning_rate_init": 0.01,
          "early_stopping": True, "max_iter": 200, "random_state": 0}
# The largest difference of coefs_ and intercepts_ that still counts as the same model.
WEIGHTS_ATOL = 1e-9
ESTIMATORS = {"sklearn.neural_network.MLPClassifier": SklearnMLPClassifier,
              "mlpfast.MLPClassifier": mlpfast.MLPClassifier}


def _parser():
    params = ", ".join(f"{name}={value!r}" for name, value in PARAMS.items())
    parser = argparse.ArgumentParser(
        prog="mlpfast-example",
        description="Print mlpfast's build configuration, then fit scikit-learn's "
                    "MLPClassifier and mlpfast's on the digits data with the same parameters "
                    f"({params}) and show each one's fit time, the speed-up, and that both "
                    "give the same model: the same n_iter_, the same test predictions, "
                    "weights equal to rounding. Exits with 1 if the models differ.")
    parser.add_argument("--no-config", action="store_true",
                        help="do not print the build configuration first")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="fit each estimator N times, in turn, and report its fastest fit, "
                             "which leaves out the first fit's one-off costs (default: 3)")
    return parser


def _timed_fits(estimator_classes, X, y, repeat):
    """Fit each class repeat times, in turn; the last fits and each one's fastest time."""
    models, seconds = {}, {name: float("inf") for name in estimator_classes}
    for _ in range(repeat):
        for name, cls in estimator_classes.items():
            start = time.perf_counter()
            models[name] = cls(**PARAMS).fit(X, y)
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    return models, seconds


def main(argv=None):
    """Compare scikit-learn's MLPClassifier and mlpfast's on the digits data.

    Parameters
    ----------
    argv : list of str, default=None
        The command-line arguments, without the program name; None reads
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 when both estimators give the same model, 1 otherwise.

    Examples
    --------
    >>> from mlpfast.__main__ import main
    >>> main(["--no-config"])  # doctest: +SKIP
    digits: 1347 training rows, 450 test rows; both estimators with
    ...
    identical: same n_iter_, same predictions on all 450 test rows
    max |difference| of coefs_ and intercepts_: 1.7e-15
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if not args.no_config:
        mlpfast.show_config()
        print()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    models, seconds = _timed_fits(ESTIMATORS, X_train, y_train, args.repeat)
    sk, mf = models.values()
    sk_seconds, mf_seconds = seconds.values()

    print(f"digits: {len(X_train)} training rows, {len(X_test)} test rows; both estimators with")
    print(textwrap.fill(", ".join(f"{name}={value!r}" for name, value in PARAMS.items()),
                        width=88, initial_indent="  ", subsequent_indent="  "))
    print()
    width = max(map(len, ESTIMATORS))
    print(f"{'':{width}}  {'fit (s)':>8}  {'n_iter_':>7}  {'test accuracy':>13}")
    for name, model in models.items():
        print(f"{name:{width}}  {seconds[name]:8.3f}  {model.n_iter_:7d}  "
              f"{model.score(X_test, y_test):13.3f}")
    print()
    print(f"speed-up: {sk_seconds / mf_seconds:.1f}x (fit times: the fastest of {args.repeat})")

    weights_diff = max(np.max(np.abs(a - b)) for a, b in
                       zip(sk.coefs_ + sk.intercepts_, mf.coefs_ + mf.intercepts_))
    n_differ = int(np.sum(sk.predict(X_test) != mf.predict(X_test)))
    same = sk.n_iter_ == mf.n_iter_ and n_differ == 0 and weights_diff <= WEIGHTS_ATOL
    n_iter = ("same n_iter_" if sk.n_iter_ == mf.n_iter_
              else f"n_iter_ {sk.n_iter_} vs {mf.n_iter_}")
    predictions = (f"same predictions on all {len(X_test)} test rows" if n_differ == 0
                   else f"{n_differ} of {len(X_test)} test predictions differ")
    print(f"{'identical' if same else 'DIFFERENT'}: {n_iter}, {predictions}")
    print(f"max |difference| of coefs_ and intercepts_: {weights_diff:.1e}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
