"""`mlpfast-example` / `python -m mlpfast`: the README example fit, with the build configuration."""

import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mlpfast
from mlpfast import MLPClassifier


def main():
    mlpfast.show_config()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    start = time.perf_counter()
    clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=50, random_state=0)
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(f"fit {clf.n_iter_} epochs in {seconds:.2f} s, final loss {clf.loss_:.4f}")
    print(f"test accuracy: {clf.score(X_test, y_test):.3f}")


if __name__ == "__main__":
    main()
