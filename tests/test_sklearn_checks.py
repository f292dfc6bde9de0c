"""scikit-learn's own API conformance suite on both estimators.

Oracle: sklearn.utils.estimator_checks (fit/predict contracts, cloning, pickling,
read-only and memory-mapped input, dtype handling, error messages, ...).
"""

from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlpfast import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _expected_failures(estimator):
    """Random dropout and noise are drawn per data row, so a row repeated k
    times is perturbed k ways and is not the row with weight k."""
    if estimator._perturbed():
        reason = "dropout and noise draw per data row; a repeated row draws anew"
        return {"check_sample_weight_equivalence_on_dense_data": reason,
                "check_sample_weight_equivalence_on_sparse_data": reason}
    return {}


# The configurations beyond scikit-learn's model keep its API contracts too.
@parametrize_with_checks(expected_failed_checks=_expected_failures, estimators=[
    MLPClassifier(loss="hinge", activation=["gelu"]),
    MLPClassifier(loss="squared_hinge"),
    MLPRegressor("huber", activation="elu"),
    MLPRegressor("absolute_error"),
    MLPClassifier(dropout=0.2, label_smoothing=0.1),
    MLPRegressor(hidden_noise=0.1, weight_noise=0.01, dropout=0.1),
    MLPClassifier((10, 5), activation=["prelu", "maxout"], activation_params={"pieces": 3}),
    MLPRegressor(activation="sine", activation_params={"omega_0": 2.0}),
])
def test_sklearn_estimator_checks_beyond_sklearn(estimator, check):
    check(estimator)


def test_tags_match_sklearn():
    """Oracle: scikit-learn's own MLP tags."""
    for ours, theirs in ((MLPClassifier(), SkMLPClassifier()),
                         (MLPRegressor(), SkMLPRegressor())):
        assert ours.__sklearn_tags__() == theirs.__sklearn_tags__()
