"""ONNX export (mlpfast.onnx) against the estimators' own predictions.

Oracle throughout: the fitted estimator's own predict, predict_proba or
decision_function (mlpfast's compiled forward pass) on the same X, against
the exported graph run by onnxruntime, after onnx's checker with full shape
inference. Values agree within 1e-5 (float32) or 1e-12 (float64) times
max(1, their largest magnitude); labels agree exactly.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import mlpfast  # noqa: E402
import mlpfast.onnx as mlpfast_onnx  # noqa: E402
from mlpfast import MLPClassifier, MLPRegressor  # noqa: E402
from mlpfast._multilayer_perceptron import ACTIVATION_CODES  # noqa: E402

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
# a few epochs, with steps large enough to move every weight (PReLU's slopes too)
QUICK = dict(max_iter=5, learning_rate_init=0.05, random_state=0)

_rng = np.random.RandomState(0)
X = 2 * _rng.randn(80, 5)
Y_MULTICLASS = np.array(["ant", "bee", "cat"])[_rng.randint(0, 3, 80)]
Y_BINARY = 5 * _rng.randint(0, 2, 80) - 1  # the labels -1 and 4
Y_BINARY_STR = np.array(["no", "yes"])[_rng.randint(0, 2, 80)]
Y_MULTILABEL = _rng.randint(0, 2, (80, 3))
Y_REGRESSION = np.abs(X[:, :2] + 0.5 * X[:, 2:4])  # non-negative, for poisson


def _fit(est, y, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X.astype(dtype), y)


def _run(model, X_in):
    """The graph's outputs (a dict by name) for X_in."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X_in})))


def _assert_close(got, want, dtype):
    want = np.asarray(want)
    assert got.shape == want.shape
    assert got.dtype == np.dtype(dtype)
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) <= TOLERANCE[dtype] * scale


def _assert_classifier_matches(clf, dtype, X_in=None):
    """label == predict; probabilities == predict_proba, or scores ==
    decision_function (a column for a binary problem)."""
    X_in = X.astype(dtype) if X_in is None else X_in
    out = _run(mlpfast_onnx.to_onnx(clf, X_in), X_in)
    np.testing.assert_array_equal(out["label"], clf.predict(X_in))
    if clf.loss == "log_loss":
        assert list(out) == ["label", "probabilities"]
        _assert_close(out["probabilities"], clf.predict_proba(X_in), dtype)
    else:
        assert list(out) == ["label", "scores"]
        scores = clf.decision_function(X_in)
        _assert_close(out["scores"], scores.reshape(len(X_in), -1), dtype)


def _op_types(model):
    return {node.op_type for node in model.graph.node}


def test_every_engine_activation_has_an_exporter():
    """Oracle: the engine's own table of hidden activations."""
    assert set(mlpfast_onnx._ACTIVATIONS) == set(ACTIVATION_CODES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(ACTIVATION_CODES))
def test_hidden_activation_matches_predict_proba(activation, dtype):
    """Oracle: predict and predict_proba of a two-hidden-layer softmax model."""
    clf = _fit(MLPClassifier((8, 6), activation=activation, **QUICK), Y_MULTICLASS, dtype)
    _assert_classifier_matches(clf, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["gelu", "maxout"])
def test_opset_13_matches_predict_proba(activation, dtype):
    """Oracle: predict_proba. Opset 13 has no Gelu operator (float32 GELU is
    written with Erf) and takes ReduceMax's axes as an attribute."""
    clf = _fit(MLPClassifier((8, 6), activation=activation, **QUICK), Y_MULTICLASS, dtype)
    X_in = X.astype(dtype)
    model = mlpfast_onnx.to_onnx(clf, X_in, target_opset=13)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    if activation == "gelu" and dtype == np.float32:
        assert "Erf" in _op_types(model) and "Gelu" not in _op_types(model)
        assert "Gelu" in _op_types(mlpfast_onnx.to_onnx(clf, X_in))
    out = _run(model, X_in)
    np.testing.assert_array_equal(out["label"], clf.predict(X_in))
    _assert_close(out["probabilities"], clf.predict_proba(X_in), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, hidden", [
    (["leaky_relu", "elu", "sine", "maxout", "selu"], (7, 6, 5, 4, 3)),
    (["prelu", "tanh", "prelu"], (7, 6, 5)),
])
def test_per_layer_activations_and_settings_match_predict_proba(activation, hidden, dtype):
    """Oracle: predict_proba, with one activation per layer, every setting of
    activation_params away from its default, and PReLU slopes_ holding None
    for the other layers."""
    settings = dict(negative_slope=0.2, alpha=0.5, omega_0=2.0, pieces=3, prelu_init=-0.1)
    clf = _fit(MLPClassifier(hidden, activation=activation, activation_params=settings,
                             **QUICK), Y_MULTICLASS, dtype)
    _assert_classifier_matches(clf, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, y", [
    ("log_loss", Y_MULTICLASS),
    ("log_loss", Y_BINARY),
    ("log_loss", Y_BINARY_STR),
    ("log_loss", Y_MULTILABEL),
    ("hinge", Y_BINARY_STR),
    ("hinge", Y_MULTICLASS),
    ("squared_hinge", Y_BINARY),
    ("squared_hinge", Y_MULTILABEL),
], ids=["softmax", "logistic-int", "logistic-str", "multilabel", "hinge-binary",
        "hinge-multiclass", "squared-hinge-binary", "squared-hinge-multilabel"])
def test_classifier_head_matches_its_predictions(loss, y, dtype):
    """Oracle: predict, and predict_proba (log_loss) or decision_function
    (the margin losses), for each output head and kind of label."""
    clf = _fit(MLPClassifier((6,), activation="tanh", loss=loss, **QUICK), y, dtype)
    _assert_classifier_matches(clf, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, n_outputs", [
    ("squared_error", 1), ("squared_error", 2), ("huber", 1), ("absolute_error", 2),
    ("poisson", 1),
])
def test_regressor_head_matches_predict(loss, n_outputs, dtype):
    """Oracle: predict, as an (N, n_outputs) column block (skl2onnx's shape)."""
    y = Y_REGRESSION[:, 0] if n_outputs == 1 else Y_REGRESSION
    reg = _fit(MLPRegressor(loss=loss, hidden_layer_sizes=(6,), activation="elu", **QUICK),
               y, dtype)
    X_in = X.astype(dtype)
    out = _run(mlpfast_onnx.to_onnx(reg, X_in), X_in)
    assert list(out) == ["variable"]
    _assert_close(out["variable"], reg.predict(X_in).reshape(len(X_in), n_outputs), dtype)


@pytest.mark.parametrize("dtype, zipmap, loss", [
    (np.float32, True, "log_loss"),
    (np.float32, False, "log_loss"),
    (np.float64, False, "log_loss"),
    (np.float32, True, "hinge"),
])
def test_pipeline_converts_through_skl2onnx(dtype, zipmap, loss):
    """Oracle: the pipeline's predict, and predict_proba or decision_function
    (StandardScaler, then MLPClassifier), converted by
    skl2onnx.convert_sklearn after register_converters(); with ZipMap, one
    {class: probability} per row (a margin loss's scores are never zipped)."""
    pipe = make_pipeline(StandardScaler(), MLPClassifier((6,), loss=loss, **QUICK))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X.astype(dtype) + 3, Y_MULTICLASS)
    mlpfast_onnx.register_converters()
    tensor_type = FloatTensorType if dtype == np.float32 else DoubleTensorType
    model = skl2onnx.convert_sklearn(pipe, initial_types=[("X", tensor_type([None, 5]))],
                                     options={MLPClassifier: {"zipmap": zipmap}})
    X_in = X.astype(dtype) + 3
    labels, values = _run(model, X_in).values()
    np.testing.assert_array_equal(labels, pipe.predict(X_in))
    if loss != "log_loss":
        _assert_close(values, pipe.decision_function(X_in), dtype)
        return
    if zipmap:
        values = np.array([[row[c] for c in pipe.classes_] for row in values], dtype=dtype)
    _assert_close(values, pipe.predict_proba(X_in), dtype)


def test_input_dtype_other_than_the_models_computes_as_predict():
    """Oracle: predict_proba, which computes a float32 model on float64 X in
    float64 (and a float64 model on float32 X too). The graph does the same,
    and returns the input's float type, as skl2onnx's converters."""
    mlpfast_onnx.register_converters()
    clf32 = _fit(MLPClassifier((6,), activation="gelu", **QUICK), Y_MULTICLASS, np.float32)
    out = _run(skl2onnx.to_onnx(clf32, X, options={"zipmap": False}), X)
    np.testing.assert_array_equal(out["label"], clf32.predict(X))
    _assert_close(out["probabilities"], clf32.predict_proba(X), np.float64)

    clf64 = _fit(MLPClassifier((6,), activation="gelu", **QUICK), Y_MULTICLASS, np.float64)
    X32 = X.astype(np.float32)
    out = _run(skl2onnx.to_onnx(clf64, X32, options={"zipmap": False}), X32)
    np.testing.assert_array_equal(out["label"], clf64.predict(X32))
    _assert_close(out["probabilities"], clf64.predict_proba(X32).astype(np.float32),
                  np.float32)


def test_the_normal_tail_table_has_positive_coefficients():
    """The GELU graph sums the table's terms as they come, which cannot
    cancel only if every coefficient is positive (oracle: that rule)."""
    assert mlpfast_onnx.NCDF_NUM.min() > 0 and mlpfast_onnx.NCDF_DEN.min() > 0
    assert mlpfast_onnx.NCDF_AMAX > 37  # past where Phi underflows in float64


def test_unfitted_model_and_bad_arguments_raise_clear_errors():
    """Oracle: scikit-learn's NotFittedError for an unfitted estimator, on
    its own and through skl2onnx; ValueError for X_sample of another width
    and for an opset older than 13."""
    with pytest.raises(NotFittedError):
        mlpfast_onnx.to_onnx(MLPClassifier(), X)
    mlpfast_onnx.register_converters()
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(MLPRegressor(), X)
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(MLPClassifier(loss="hinge"), X)
    reg = _fit(MLPRegressor(hidden_layer_sizes=(4,), **QUICK), Y_REGRESSION, np.float64)
    with pytest.raises(ValueError, match="5 features"):
        mlpfast_onnx.to_onnx(reg, X[:, :3])
    with pytest.raises(ValueError, match="opset 13"):
        mlpfast_onnx.to_onnx(reg, X, target_opset=12)


def test_mlpfast_imports_without_onnx(tmp_path):
    """Oracle: a fresh interpreter in which onnx cannot be imported: mlpfast
    imports and fits; mlpfast.onnx raises ImportError naming the extra. (It
    runs outside the checkout, whose own mlpfast/ has no engine unless built
    in place: the mlpfast these tests import is the one it gets.)"""
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import numpy as np, mlpfast\n"
        "mlpfast.MLPRegressor(hidden_layer_sizes=(2,), max_iter=1).fit(np.eye(3), [0, 1, 2])\n"
        "try:\n"
        "    import mlpfast.onnx\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(mlpfast.__file__))}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "mlpfast[onnx]"' in result.stdout
