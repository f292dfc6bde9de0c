"""ONNX export of fitted MLPClassifier and MLPRegressor models.

Needs the optional extra ``pip install "mlpfast[onnx]"`` (onnx and skl2onnx
to export, onnxruntime to run the graphs); ``import mlpfast`` does not import
this module.

:func:`to_onnx` exports one estimator. :func:`register_converters` teaches
skl2onnx both estimators, so that ``skl2onnx.to_onnx`` and
``skl2onnx.convert_sklearn`` export pipelines that hold them.

The graph takes one input, ``X``, and returns what the estimator predicts:

- MLPClassifier: ``label`` (``predict``: ``classes_`` as int64 or strings,
  or the (N, n_labels) int64 0/1 matrix of a multilabel model) and
  ``probabilities`` (``predict_proba``). With ``loss='hinge'`` or
  ``'squared_hinge'`` the second output is ``scores``
  (``decision_function``, shaped (N, 1) for a binary problem).
  skl2onnx's classifier options apply: ``zipmap`` (:func:`to_onnx` sets it
  to False; the margin losses never have a ZipMap; ONNX's ZipMap takes
  float32 only, so a float64 graph needs False or 'columns', as skl2onnx's
  own classifiers) and ``nocl``.
- MLPRegressor: ``variable`` (``predict``), shaped (N, n_outputs), a column
  for a single output as skl2onnx's regressors.

The graph computes in the dtype ``predict`` computes in:
``np.result_type(X.dtype, coefs_ dtype, np.float32)``, float32 or else
float64; its float outputs take the input's float type, as skl2onnx's
converters' do (in :func:`to_onnx`'s graphs both are the dtype of
``coefs_``). A float64 graph uses only operators that onnxruntime's CPU
provider runs in float64: LeakyRelu, Elu, Selu, Softplus, PRelu and Erf
have float kernels only, so a float64 graph writes them out with Where, Exp
and Log, and writes GELU's normal distribution function out with the
engine's own rational approximation.

The graph needs opset 13 or later; skl2onnx's latest tested opset is the
default. GELU is the Gelu operator from opset 20 on, and
``0.5 z (1 + erf(z / sqrt 2))`` before.

Examples
--------
>>> import numpy as np
>>> import onnxruntime as ort
>>> from sklearn.datasets import load_iris
>>> from mlpfast import MLPClassifier
>>> from mlpfast.onnx import to_onnx
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
>>> onx = to_onnx(clf, X[:1])
>>> session = ort.InferenceSession(onx.SerializeToString(),
...                                providers=["CPUExecutionProvider"])
>>> labels, proba = session.run(None, {"X": X})
>>> bool((labels == clf.predict(X)).all())
True
>>> float(np.abs(proba - clf.predict_proba(X)).max()) < 1e-12
True
"""

from typing import NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

try:
    import onnx
    from onnx import TensorProto, numpy_helper
    from skl2onnx import convert_sklearn, get_model_alias, update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
        guess_numpy_type,
    )
    from skl2onnx.common.utils import check_input_and_output_numbers

    # The parser update_registered_converter gives a classifier registered
    # with the zipmap option (label, probabilities, then ZipMap as the
    # options say); skl2onnx has no public name for it.
    from skl2onnx._parse import _parse_sklearn_classifier
except ImportError as exc:
    raise ImportError(
        "mlpfast.onnx needs onnx and skl2onnx (and onnxruntime to run the "
        'graphs): pip install "mlpfast[onnx]"'
    ) from exc

from mlpfast import _engine
from mlpfast._multilayer_perceptron import _MARGIN_LOSSES, MLPClassifier, MLPRegressor

__all__ = ["to_onnx", "register_converters"]

# The oldest opset the graphs are written and tested for.
MIN_OPSET = 13

# SELU's constants and GELU's float64 normal distribution function, as the
# engine computes them (see _engine.NORMAL_TAIL): for a >= 0,
# (1 - Phi(a)) exp(a^2 / 2) = P(a) / Q(a), a clamped to NCDF_AMAX; all the
# coefficients are positive, so summing the terms cannot cancel.
SELU_ALPHA, SELU_SCALE = _engine.SELU_CONSTANTS
NCDF_NUM, NCDF_DEN = (np.array(v) for v in _engine.NORMAL_TAIL[:2])
NCDF_AMAX = float(_engine.NORMAL_TAIL[2])


def to_onnx(estimator, X_sample, *, target_opset=None):
    """Export a fitted MLPClassifier or MLPRegressor to ONNX.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator.

    X_sample : array-like or sparse matrix of shape (n_samples, n_features)
        Data of the kind the model predicts on; only its number of columns
        is read. The graph's input ``X`` is (None, n_features), float32 for
        a model with float32 ``coefs_`` and float64 for one with float64
        ``coefs_`` (the dtype the model computes in).

    target_opset : int or dict, default=None
        The ONNX opset to write for (13 or later), as skl2onnx takes it;
        None for skl2onnx's latest tested opset.

    Returns
    -------
    onnx.ModelProto
        The graph: input ``X``; outputs ``label`` and ``probabilities``
        (``scores`` for the margin losses) for a classifier, without
        ZipMap; ``variable`` for a regressor (see the module's docstring).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    See Also
    --------
    register_converters : Export pipelines that hold the estimators.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from mlpfast import MLPRegressor
    >>> from mlpfast.onnx import to_onnx
    >>> X = np.linspace(-1, 1, 40).reshape(-1, 2)
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs",
    ...                    random_state=0).fit(X, X.sum(axis=1))
    >>> onx = to_onnx(reg, X)
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> pred = session.run(None, {"X": X})[0]
    >>> pred.shape
    (20, 1)
    >>> float(np.abs(pred.ravel() - reg.predict(X)).max()) < 1e-12
    True
    """
    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        raise TypeError(
            "to_onnx exports mlpfast's MLPClassifier and MLPRegressor; got "
            f"{type(estimator).__name__}. For a pipeline, call "
            "register_converters() and then skl2onnx.to_onnx.")
    check_is_fitted(estimator)
    shape = X_sample.shape if hasattr(X_sample, "shape") else np.shape(X_sample)
    if len(shape) != 2 or shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X_sample must be 2-D with the {estimator.n_features_in_} features the "
            f"model was fitted on; got shape {tuple(shape)}.")
    register_converters()
    tensor_type = _tensor_type(estimator.coefs_[0].dtype)
    options = {id(estimator): {"zipmap": False}} if isinstance(estimator, MLPClassifier) else None
    return convert_sklearn(
        estimator,
        initial_types=[("X", tensor_type([None, estimator.n_features_in_]))],
        target_opset=target_opset,
        options=options,
    )


def register_converters():
    """Register mlpfast's MLPClassifier and MLPRegressor with skl2onnx.

    Afterwards ``skl2onnx.to_onnx`` and ``skl2onnx.convert_sklearn`` export
    them, on their own or inside pipelines, with skl2onnx's classifier
    options ``zipmap`` (True, False or 'columns') and ``nocl``. Calling it
    again changes nothing.

    See Also
    --------
    to_onnx : Export one estimator.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> import skl2onnx
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from mlpfast import MLPClassifier
    >>> from mlpfast.onnx import register_converters
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), MLPClassifier(
    ...     solver="lbfgs", max_iter=500, random_state=0)).fit(X, y)
    >>> register_converters()
    >>> onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> labels, proba = session.run(None, {"X": X})
    >>> bool((labels == pipe.predict(X)).all())
    True
    """
    update_registered_converter(
        MLPClassifier,
        "MlpfastMLPClassifier",
        _classifier_shapes,
        _convert_classifier,
        parser=_parse_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(
        MLPRegressor, "MlpfastMLPRegressor", _regressor_shapes, _convert_regressor)


# ---------------------------------------------------------------- skl2onnx's hooks


def _parse_classifier(scope, model, inputs, custom_parsers=None):
    """The classifier's outputs: skl2onnx's label and probabilities (and
    ZipMap) for the log-loss; label and scores, never zipped, for the
    margin losses, whose scores are no probabilities."""
    check_is_fitted(model)
    if model.loss not in _MARGIN_LOSSES:
        return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)
    operator = scope.declare_local_operator(get_model_alias(type(model)), model)
    operator.inputs = inputs
    # the types are set by _classifier_shapes
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    operator.outputs.append(scope.declare_local_variable("scores", FloatTensorType()))
    return operator.outputs


def _classifier_shapes(operator):
    """Types the classifier's outputs: the label, then probabilities or scores."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    est = operator.raw_operator
    _check_input(operator)
    n_rows = operator.inputs[0].get_first_dimension()
    labels = _label_table(est, operator.scope_inst)
    label_type = Int64TensorType if labels.dtype.kind == "i" else StringTensorType
    y_type = est._label_binarizer.y_type_
    if y_type == "multilabel-indicator":
        operator.outputs[0].type = Int64TensorType([n_rows, est.n_outputs_])
    else:
        operator.outputs[0].type = label_type([n_rows])
    two_columns = y_type == "binary" and est.loss not in _MARGIN_LOSSES
    operator.outputs[1].type = _output_type(operator.inputs[0].type)(
        [n_rows, 2 if two_columns else est.n_outputs_])


def _regressor_shapes(operator):
    """Types the regressor's output, (N, n_outputs)."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    est = operator.raw_operator
    _check_input(operator)
    operator.outputs[0].type = _output_type(operator.inputs[0].type)(
        [operator.inputs[0].get_first_dimension(), est.n_outputs_])


def _check_input(operator):
    """Checks that the estimator is fitted and, where the input's width is
    known, that it is the fitted width."""
    est = operator.raw_operator
    check_is_fitted(est)
    shape = operator.inputs[0].type.shape
    if shape is not None and len(shape) == 2 and isinstance(shape[1], int) \
            and shape[1] != est.n_features_in_:
        raise ValueError(
            f"{type(est).__name__} was fitted on {est.n_features_in_} features; its "
            f"ONNX input has {shape[1]}.")


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    g = _Graph(scope, container, _compute_dtype(est, operator.inputs[0].type))
    label, second = operator.outputs
    P = _forward(g, est, g.input(operator.inputs[0]))
    y_type = est._label_binarizer.y_type_
    margin = est.loss in _MARGIN_LOSSES
    if y_type == "multiclass":
        # the first largest output, as numpy's argmax
        index = g.op("ArgMax", [P], axis=1, keepdims=0, select_last_index=0)
        g.op("Gather", [g.const(_label_table(est, scope), dtype=None), index], axis=0,
             output=label.full_name)
        g.output(P, second)
        return
    # one output per label: a probability says yes above 0.5, a margin score above 0
    positive = g.op("Cast", [g.op("Greater", [P, g.const(0.0 if margin else 0.5)])],
                    to=TensorProto.INT64)
    if y_type == "multilabel-indicator":
        g.output(positive, label)
        g.output(P, second)
        return
    # binary: the one output says the second class
    index = g.op("Reshape", [positive, g.const(np.array([-1]), dtype=None)])
    g.op("Gather", [g.const(_label_table(est, scope), dtype=None), index], axis=0,
         output=label.full_name)
    if margin:
        g.output(P, second)
    else:
        # predict_proba's columns 1 - p and p
        g.output(g.op("Concat", [g.op("Sub", [g.const(1.0), P]), P], axis=1), second)


def _convert_regressor(scope, operator, container):
    est = operator.raw_operator
    g = _Graph(scope, container, _compute_dtype(est, operator.inputs[0].type))
    g.output(_forward(g, est, g.input(operator.inputs[0])), operator.outputs[0])


# ---------------------------------------------------------------- the network


class _Layer(NamedTuple):
    """What a hidden layer's activation reads besides Z."""

    units: int
    settings: dict  # activation_params with the defaults filled in
    slopes: object  # PReLU's fitted slopes_[i], else None


def _forward(g, est, X):
    """The output layer's activations (N, n_outputs), as predict's forward pass."""
    names = est._activation_names()
    settings = est._activation_settings()
    pieces = est._layer_pieces()
    slopes = getattr(est, "slopes_", None) or [None] * len(names)
    A = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        # Z = A @ W + b
        Z = g.op("Gemm", [A, g.const(W), g.const(b)])
        if i == len(names):
            return _OUTPUTS[est.out_activation_](g, Z)
        units = W.shape[1] // pieces[i]
        A = _ACTIVATIONS[names[i]](g, Z, _Layer(units, settings, slopes[i]))


def _identity(g, Z, layer=None):
    return Z


def _sigmoid(g, Z, layer=None):
    return g.op("Sigmoid", [Z])


def _tanh(g, Z, layer):
    return g.op("Tanh", [Z])


def _relu(g, Z, layer):
    return g.op("Relu", [Z])


def _leaky_relu(g, Z, layer):
    slope = layer.settings["negative_slope"]
    if g.float64:
        return _above_zero_or(g, Z, g.op("Mul", [Z, g.const(slope)]))
    return g.op("LeakyRelu", [Z], alpha=float(slope))


def _elu(g, Z, layer):
    alpha = layer.settings["alpha"]
    if g.float64:
        return _above_zero_or(g, Z, g.op("Mul", [_expm1(g, Z), g.const(alpha)]))
    return g.op("Elu", [Z], alpha=float(alpha))


def _selu(g, Z, layer):
    if g.float64:
        below = g.op("Mul", [_expm1(g, Z), g.const(SELU_ALPHA)])
        return g.op("Mul", [_above_zero_or(g, Z, below), g.const(SELU_SCALE)])
    return g.op("Selu", [Z], alpha=SELU_ALPHA, gamma=SELU_SCALE)


def _softplus(g, Z, layer):
    if g.float64:
        # max(z, 0) + log(1 + exp(-|z|)), which never overflows
        tail = g.op("Exp", [g.op("Neg", [g.op("Abs", [Z])])])
        return g.op("Add", [g.op("Relu", [Z]), g.op("Log", [g.op("Add", [tail, g.const(1.0)])])])
    return g.op("Softplus", [Z])


def _gelu(g, Z, layer):
    if g.float64:
        return g.op("Mul", [Z, _normal_cdf_f64(g, Z, layer.units)])
    if g.opset >= 20:
        return g.op("Gelu", [Z], approximate="none")
    # z Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
    erf = g.op("Erf", [g.op("Mul", [Z, g.const(np.sqrt(0.5))])])
    return g.op("Mul", [g.op("Mul", [Z, g.const(0.5)]), g.op("Add", [erf, g.const(1.0)])])


def _prelu(g, Z, layer):
    slopes = g.const(layer.slopes)
    if g.float64:
        return _above_zero_or(g, Z, g.op("Mul", [Z, slopes]))
    return g.op("PRelu", [Z, slopes])


def _sine(g, Z, layer):
    return g.op("Sin", [g.op("Mul", [Z, g.const(layer.settings["omega_0"])])])


def _maxout(g, Z, layer):
    # piece j of unit o is column j * units + o: (N, pieces * units) ->
    # (N, pieces, units), the largest over the pieces (a 0 keeps N)
    pieces = layer.settings["pieces"]
    shape = g.const(np.array([0, pieces, layer.units]), dtype=None)
    Z3 = g.op("Reshape", [Z, shape])
    if g.opset >= 18:
        return g.op("ReduceMax", [Z3, g.const(np.array([1]), dtype=None)], keepdims=0)
    return g.op("ReduceMax", [Z3], axes=[1], keepdims=0)


def _above_zero_or(g, Z, below):
    """z where z > 0, else ``below``."""
    return g.op("Where", [g.op("Greater", [Z, g.const(0.0)]), Z, below])


def _expm1(g, Z):
    """exp(z) - 1 (ONNX has no expm1; the difference is below 1e-16 absolute)."""
    return g.op("Sub", [g.op("Exp", [Z]), g.const(1.0)])


def _normal_cdf_f64(g, Z, units):
    """Phi(z) as the engine's float64 kernel: with a = min(|z|, NCDF_AMAX),
    the tail 1 - Phi(a) = exp(-a^2 / 2) P(a) / Q(a); Phi(z) is the tail for
    z < 0 and 1 minus it otherwise."""
    a = g.op("Min", [g.op("Abs", [Z]), g.const(NCDF_AMAX)])
    gauss = g.op("Exp", [g.op("Mul", [g.op("Mul", [a, a]), g.const(-0.5)])])
    # the powers a^0 .. a^degree in a last axis: (N, units, degree + 1)
    column = g.op("Reshape", [a, g.const(np.array([0, units, 1]), dtype=None)])
    powers = g.op("Pow", [column, g.const(np.arange(len(NCDF_DEN)))])
    num = g.op("MatMul", [powers, g.const(np.append(NCDF_NUM, 0.0))])
    den = g.op("MatMul", [powers, g.const(NCDF_DEN)])
    tail = g.op("Mul", [gauss, g.op("Div", [num, den])])
    upper = g.op("Sub", [g.const(1.0), tail])
    return g.op("Where", [g.op("Less", [Z, g.const(0.0)]), tail, upper])


# Hidden activation name -> its graph builder (every activation the engine has).
_ACTIVATIONS = {
    "identity": _identity,
    "logistic": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
    "softplus": _softplus,
    "gelu": _gelu,
    "prelu": _prelu,
    "sine": _sine,
    "maxout": _maxout,
}

# out_activation_ -> its graph builder
_OUTPUTS = {
    "identity": _identity,
    "logistic": _sigmoid,
    "softmax": lambda g, Z: g.op("Softmax", [Z], axis=1),
    "exp": lambda g, Z: g.op("Exp", [Z]),
}


# ---------------------------------------------------------------- helpers


class _Graph:
    """skl2onnx's scope and container, with the dtype the graph computes in:
    adds nodes and constants under names unique in the model."""

    def __init__(self, scope, container, dtype):
        self.scope = scope
        self.container = container
        self.dtype = np.dtype(dtype)
        self.float64 = self.dtype == np.float64
        self.opset = container.target_opset_onnx
        if self.opset is not None and self.opset < MIN_OPSET:
            raise ValueError(
                f"mlpfast's ONNX export needs opset {MIN_OPSET} or later; got "
                f"target_opset={self.opset}.")

    def input(self, variable):
        """The input variable's name, cast to the graph's dtype if need be."""
        if guess_numpy_type(variable.type) == self.dtype:
            return variable.full_name
        return self.op("Cast", [variable.full_name], to=_onnx_type(self.dtype))

    def output(self, name, variable):
        """Writes name into the output variable, cast to its declared type: a
        float output takes the input's float type, as skl2onnx's converters."""
        dtype = guess_numpy_type(variable.type)
        if dtype == np.int64 or dtype == self.dtype:
            self.op("Identity", [name], output=variable.full_name)
        else:
            self.op("Cast", [name], output=variable.full_name, to=_onnx_type(dtype))

    def const(self, value, dtype="graph"):
        """An initializer holding value, in the graph's dtype unless dtype is None
        (then value's own: int64 indices and shapes, strings)."""
        value = np.asarray(value, dtype=self.dtype if dtype == "graph" else None)
        name = self.scope.get_unique_variable_name("c")
        if value.dtype.kind in "US":
            self.container.add_initializer(
                name, TensorProto.STRING, list(value.shape),
                [s.encode("utf-8") for s in value.astype(str).ravel()])
        else:
            if value.dtype.kind == "i":
                value = value.astype(np.int64)
            self.container.add_initializer(
                name, _onnx_type(value.dtype), list(value.shape),
                numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type, inputs, output=None, **attrs):
        """Adds one node; returns its output's name (``output``, or a new one)."""
        if output is None:
            output = self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(
            op_type, inputs, [output], name=self.scope.get_unique_operator_name(op_type),
            **attrs)
        return output


def _compute_dtype(est, input_type):
    """predict's dtype: np.result_type(X, coefs_, float32), float32 or float64."""
    dtype = np.result_type(guess_numpy_type(input_type), est.coefs_[0].dtype, np.float32)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _output_type(input_type):
    """The type of a float output: the input's, float32 for a non-float input
    (skl2onnx's rule)."""
    return DoubleTensorType if isinstance(input_type, DoubleTensorType) else FloatTensorType


def _tensor_type(dtype):
    return FloatTensorType if np.dtype(dtype) == np.float32 else DoubleTensorType


def _onnx_type(dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _label_table(est, scope):
    """The labels the graph outputs, by class index, as skl2onnx's
    classifiers: classes_ as int64 (integer, bool and integral float labels)
    or strings; the indices themselves under the option nocl."""
    classes = np.asarray(est.classes_)
    if scope.get_options(est, dict(nocl=False))["nocl"]:
        return np.arange(len(classes), dtype=np.int64)
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if not np.array_equal(classes, np.round(classes)):
            raise ValueError(
                "ONNX export takes integer or string class labels (float labels "
                f"are exported as integers, as skl2onnx's); got {classes!r}.")
        return classes.astype(np.int64)
    return classes.astype(str)
