"""MLPClassifier and MLPRegressor: scikit-learn 1.9's estimators on mlpfast's engine.

Everything here runs once per fit or once per epoch: parameter validation,
label handling, the validation split, stopping rules, verbose output. Each
epoch's batches run in :meth:`mlpfast._engine.Network.run_epoch` without the GIL.
"""

import functools
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.callback import CallbackSupportMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils._param_validation import Interval, Options, StrOptions, make_constraint
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlpfast import _engine
from mlpfast import _config
from mlpfast._config import blas_single_threaded
from mlpfast._persistence import VersionedStateMixin
from mlpfast._stochastic_optimizers import AdamOptimizer, SGDOptimizer

_STOCHASTIC_SOLVERS = ["sgd", "adam"]

# Fewer rows than this are predicted on one thread, with no thread set-up at all
# (BLAS keeps its own threads); more are predicted with BLAS on one thread, as
# in training, so that every row gets the very same products.
_PREDICT_MIN_ROWS_THREADED = 256

# A fit's X of this many values or more is checked for NaN and infinity on the
# fit's threads, smaller X on one: on a busy machine a threaded pass can wait a
# scheduler time slice (milliseconds) for a descheduled thread, which is small
# only beside a fit on that much data.
_FINITE_MIN_VALUES_THREADED = 1 << 22

# Hidden activation name -> kernel code (the engine's table, from the C enum).
ACTIVATION_CODES = _engine.ACTIVATIONS

# The engine's output heads (an output activation fused with its loss), by
# name: out_activation_ for scikit-learn's four, the loss for the others.
OUTPUT_CODES = _engine.OUTPUTS

# The losses with no place in probabilities: their output is a score.
_MARGIN_LOSSES = ("hinge", "squared_hinge")

# activation_params' keys: the activation each one sets, its default (the
# engine's) and the values it takes.
_ACTIVATION_PARAMS = {
    "negative_slope": ("leaky_relu", _engine.ACTIVATION_DEFAULTS["leaky_relu"],
                       Interval(Real, 0, None, closed="left")),
    "alpha": ("elu", _engine.ACTIVATION_DEFAULTS["elu"],
              Interval(Real, 0, None, closed="neither")),
    "omega_0": ("sine", _engine.ACTIVATION_DEFAULTS["sine"],
                Interval(Real, 0, None, closed="neither")),
    "pieces": ("maxout", _engine.ACTIVATION_DEFAULTS["maxout"],
               Interval(Integral, 1, None, closed="left")),
    "prelu_init": ("prelu", _engine.PRELU_SLOPE, Interval(Real, None, None, closed="neither")),
}
_SETTING_OF = {name: key for key, (name, _, _) in _ACTIVATION_PARAMS.items()}

# The fitted weight lists, in the order of the engine's flat parameters
# (slopes_ only with a PReLU layer).
_WEIGHT_LISTS = ("coefs_", "intercepts_", "slopes_")


def _copied(weight_lists):
    """A copy of each array of {name: [array or None, ...]}."""
    return {name: [None if p is None else p.copy() for p in values]
            for name, values in weight_lists.items()}


class BaseMultilayerPerceptron(VersionedStateMixin, CallbackSupportMixin, BaseEstimator, ABC):
    """Shared machinery of MLPClassifier and MLPRegressor (not for direct use)."""

    # The HTML repr links each estimator to its page of mlpfast's documentation.
    _doc_link_module = "mlpfast"
    _doc_link_template = (
        "https://mlpfast.readthedocs.io/en/latest/generated/"
        "{estimator_module}.{estimator_name}.html")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATION_CODES)), list],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), list],
        "input_noise": [Interval(Real, 0, None, closed="left")],
        "hidden_noise": [Interval(Real, 0, None, closed="left")],
        "weight_noise": [Interval(Real, 0, None, closed="left")],
        "activation_params": [dict, None],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        dropout,
        input_noise,
        hidden_noise,
        weight_noise,
        activation_params,
    ):
        self.activation = activation
        self.activation_params = activation_params
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.input_noise = input_noise
        self.hidden_noise = hidden_noise
        self.weight_noise = weight_noise

    # ------------------------------------------------------------ parameters

    def _validate_params(self):
        """scikit-learn's parameter validation, with each class's constraint
        objects built once rather than in every fit (scikit-learn rebuilds them
        and reads the ``__init__`` signature each time: 0.35-0.5 ms of a 9 ms
        fit). A value that none of its constraints admits goes to
        scikit-learn's own validation, which raises its error."""
        for name, constraints in _constraint_objects(type(self)):
            value = getattr(self, name)
            if not any(constraint.is_satisfied_by(value) for constraint in constraints):
                super()._validate_params()
                return

    def _weight_lists(self):
        """The fitted weight lists by attribute name, in the engine's order:
        coefs_, intercepts_, then (with a PReLU layer) slopes_."""
        return {name: getattr(self, name) for name in _WEIGHT_LISTS if hasattr(self, name)}

    def _weights(self):
        """The fitted parameters in the engine's order (_weight_lists)."""
        return [p for values in self._weight_lists().values() for p in values
                if p is not None]

    def _pack_params(self, dtype):
        """One flat buffer of _weights(); coefs_, intercepts_ and slopes_ become
        views of it."""
        params = np.concatenate(
            [np.ravel(p).astype(dtype, copy=False) for p in self._weights()])
        self._unpack(params)
        return params

    def _split(self, params):
        """Slices of the flat buffer ``params`` shaped as _weight_lists()."""
        start, split = 0, {}
        for name, values in self._weight_lists().items():
            split[name] = []
            for p in values:
                split[name].append(
                    None if p is None else params[start:start + p.size].reshape(p.shape))
                start += 0 if p is None else p.size
        return split

    def _unpack(self, params):
        """Point coefs_, intercepts_ and slopes_ at slices of the flat buffer
        ``params`` (the lists themselves are kept)."""
        for name, values in self._split(params).items():
            getattr(self, name)[:] = values

    def _weights_at(self, params):
        """The fitted weights at ``params``, copied: what a callback's
        fitted_estimator needs (the rest of the fitted state is the estimator's)."""
        return _copied(self._split(params))

    def _network(self, layer_units, dtype, capacity, X):
        output_code, _, output_param = self._output_head()
        dropout, noise = self._layer_perturbations(len(layer_units) - 1)
        if (dropout[0] or noise[0]) and isinstance(X, tuple):
            raise ValueError(
                "Dropout and noise on the input layer need dense X; got a sparse "
                "matrix. Densify X, or perturb the hidden layers only.")
        return _engine.Network(
            layer_units,
            self._activation_codes(),
            output_code,
            dtype,
            capacity,
            _config.effective_n_threads(),
            dense_input=not isinstance(X, tuple),
            output_param=output_param,
            dropout=dropout,
            noise=noise,
            weight_noise=float(self.weight_noise),
        )

    def _layer_perturbations(self, n_layers):
        """The dropout rate and the noise deviation of each layer's input
        (X first), from dropout, input_noise and hidden_noise."""
        if isinstance(self.dropout, list):
            dropout = self.dropout
            if len(dropout) != n_layers or not all(
                    isinstance(p, Real) and 0 <= p < 1 for p in dropout):
                raise ValueError(
                    "dropout must be a rate in [0, 1), or a list of one rate per layer's "
                    f"input, the input layer first ({n_layers} here); got {dropout!r}.")
        else:
            dropout = [0.0] + [self.dropout] * (n_layers - 1)
        noise = [self.input_noise] + [self.hidden_noise] * (n_layers - 1)
        return [float(p) for p in dropout], [float(s) for s in noise]

    def _perturbed(self):
        """True when training draws random perturbations (dropout or noise)."""
        dropout = self.dropout if isinstance(self.dropout, list) else [self.dropout]
        return bool(any(dropout) or self.input_noise or self.hidden_noise
                    or self.weight_noise)

    def _output_head(self):
        """The head a fit trains: (the engine's output code, whether the loss
        is a mean over the outputs, the loss's parameter). scikit-learn's
        squared error is half the mean over outputs (its gradient that of the
        sum, as scikit-learn's); the other losses sum over them."""
        name = self._head_name()
        expected = name if name in ("identity", "logistic", "softmax", "exp") else "identity"
        if self.out_activation_ != expected:
            raise ValueError(
                f"loss={self.loss!r} needs the output activation {expected!r}, but this "
                f"model has {self.out_activation_!r}: the loss changed since the last "
                "fit, which warm_start and partial_fit do not allow.")
        return OUTPUT_CODES[name], name == "identity", float(
            getattr(self, "huber_epsilon", 1.0))

    # ------------------------------------------------------------ prediction

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X, computed by the compiled forward pass."""
        X_given = X
        plain = _is_float_matrix(X) and self._is_plain_array(X)
        if check_input and not plain:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        coef_dtype = self.coefs_[0].dtype
        # np.result_type(X.dtype, coef_dtype, np.float32), without its microseconds
        # in the usual case (coefs are float32 or float64). A wider float, such
        # as np.longdouble, is computed in float64 (the engine's widest) and
        # returned in its own dtype, as scikit-learn returns it.
        out_dtype = coef_dtype if X.dtype == coef_dtype else np.result_type(
            X.dtype, coef_dtype, np.float32)
        dtype = out_dtype if out_dtype == np.float32 else np.dtype(np.float64)
        if plain:
            X, csr = _engine_array(X, dtype), None
        else:
            X, csr = _engine_input(X, dtype)
        coefs = [_engine_array(c, dtype) for c in self.coefs_]
        intercepts = [_engine_array(b, dtype) for b in self.intercepts_]
        slopes = getattr(self, "slopes_", None)
        if slopes is not None:
            slopes = [None if s is None else _engine_array(s, dtype) for s in slopes]
        args = (
            coefs,
            intercepts,
            X,
            self._activation_codes(),
            OUTPUT_CODES[self.out_activation_],
        )
        n_rows = X.shape[0] if csr is None else csr[2].shape[0] - 1
        # A plain array is checked for NaN and infinity by the engine, in C.
        check_finite = check_input and plain
        if n_rows < _PREDICT_MIN_ROWS_THREADED:
            P = _engine.forward(*args, 1, csr=csr, check_finite=check_finite,
                                slopes=slopes)
        else:
            with blas_single_threaded():
                P = _engine.forward(*args, _config.effective_n_threads(), csr=csr,
                                    check_finite=check_finite, slopes=slopes)
        if P is None:
            # X holds NaN or infinity: scikit-learn's validation raises its error.
            X = validate_data(self, X_given, accept_sparse=["csr", "csc"], reset=False)
            return self._forward_pass_fast(X, check_input=False)
        return P if P.dtype == out_dtype else P.astype(out_dtype)

    def _check_is_fitted(self):
        """check_is_fitted(self), minus its microseconds when the model is fitted."""
        if not hasattr(self, "coefs_"):
            check_is_fitted(self)

    def _is_plain_array(self, X):
        """True for a float matrix (_is_float_matrix) that validate_data would
        pass through unchanged if its values are finite (which the engine
        checks): a row or more, the fitted width, on a model fitted without
        feature names. Anything else, including every case that must raise or
        warn for another reason, takes scikit-learn's full validation. (Its
        byte order does not matter: the engine's input conversion makes any
        X native.)"""
        return (
            X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        )

    # ------------------------------------------------------------ fitting

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)

        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self.loss in _MARGIN_LOSSES:
            self.out_activation_ = "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        self.coefs_ = []
        self.intercepts_ = []
        names = self._activation_names()
        feeds = names + names[-1:] if names else [self.activation]
        pieces = self._layer_pieces() + [1]
        for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            coef_init, intercept_init = self._init_coef(fan_in, fan_out, dtype, feeds[i],
                                                        pieces[i], first=i == 0)
            self.coefs_.append(coef_init)
            self.intercepts_.append(intercept_init)
        if "prelu" in names:
            init = self._activation_settings()["prelu_init"]
            self.slopes_ = [np.full(units, init, dtype=dtype) if name == "prelu" else None
                            for name, units in zip(names, layer_units[1:-1])]
        elif hasattr(self, "slopes_"):
            del self.slopes_
        self._keep_best()

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _weigh_classes(self, labels, sample_weight, incremental):
        """The sample weights a fit trains with: the classifier's class_weight
        folds into them; the regressor has none."""
        return sample_weight

    def _smooth_targets(self, Y):
        """The targets a fit trains with (the classifier's label smoothing)."""
        return Y

    def _activation_names(self):
        """The activation of each hidden layer, by name."""
        n_hidden = len(self._hidden_layer_list())
        if isinstance(self.activation, str):
            return [self.activation] * n_hidden
        if len(self.activation) != n_hidden or not all(
                isinstance(a, str) and a in ACTIVATION_CODES for a in self.activation):
            raise ValueError(
                "activation must be one name, or a list of one name per hidden layer "
                f"({n_hidden} here), each among {sorted(ACTIVATION_CODES)}; got "
                f"{self.activation!r}.")
        return list(self.activation)

    def _activation_settings(self):
        """activation_params, checked, with every key's default filled in."""
        given = {} if self.activation_params is None else self.activation_params
        unknown = sorted(set(given) - set(_ACTIVATION_PARAMS), key=str)
        if unknown:
            raise ValueError(
                f"activation_params got unknown keys {unknown}; it takes "
                f"{sorted(_ACTIVATION_PARAMS)}.")
        settings = {}
        for key, (_, default, constraint) in _ACTIVATION_PARAMS.items():
            value = given.get(key, default)
            if (isinstance(value, bool) or not constraint.is_satisfied_by(value)
                    or not np.isfinite(value)):
                raise ValueError(
                    f"activation_params[{key!r}] must be {constraint}; got {value!r}.")
            settings[key] = value
        return settings

    def _activation_codes(self):
        """The engine's spec of each hidden layer's activation: its code, or
        (code, param) for one with a parameter."""
        if self.activation_params is None:  # the defaults, which the engine fills in
            if isinstance(self.activation, str):
                return ACTIVATION_CODES[self.activation]
            return [ACTIVATION_CODES[a] for a in self._activation_names()]
        settings = self._activation_settings()
        return [(ACTIVATION_CODES[a], settings[_SETTING_OF[a]])
                if a in _engine.ACTIVATION_DEFAULTS else ACTIVATION_CODES[a]
                for a in self._activation_names()]

    def _layer_pieces(self):
        """Each hidden layer's pre-activations per unit: maxout's pieces, else 1."""
        pieces = self._activation_settings()["pieces"]
        return [pieces if a == "maxout" else 1 for a in self._activation_names()]

    def _init_coef(self, fan_in, fan_out, dtype, activation, pieces=1, first=False):
        # Glorot & Bengio (2010) uniform init; factor 2 for the logistic
        # activation of the layer the weights feed (the last hidden layer's for
        # the output layer, as scikit-learn's one activation); a maxout layer
        # draws each of its pieces so. The weights feeding a sine layer, and
        # the output layer after one, take SIREN's (Sitzmann et al. 2020):
        # within 1 / fan_in on X, sqrt(6 / fan_in) / omega_0 after, with
        # intercepts within 1 / sqrt(fan_in).
        factor = 2.0 if activation == "logistic" else 6.0
        coef_bound = intercept_bound = np.sqrt(factor / (fan_in + fan_out))
        if activation == "sine":
            omega = self._activation_settings()["omega_0"]
            coef_bound = 1 / fan_in if first else np.sqrt(6 / fan_in) / omega
            intercept_bound = 1 / np.sqrt(fan_in)
        # Drawn in this order (coef, then intercept, layer by layer), as scikit-learn.
        coef_init = self._random_state.uniform(-coef_bound, coef_bound,
                                               (fan_in, pieces * fan_out))
        intercept_init = self._random_state.uniform(-intercept_bound, intercept_bound,
                                                    pieces * fan_out)
        return coef_init.astype(dtype, copy=False), intercept_init.astype(dtype, copy=False)

    def _hidden_layer_list(self):
        """hidden_layer_sizes as a list (an int stands for one layer)."""
        sizes = self.hidden_layer_sizes
        return list(sizes) if hasattr(sizes, "__iter__") else [sizes]

    def _fit(self, X, y, sample_weight=None, incremental=False):
        if self.solver == "lbfgs" and self._perturbed():
            raise ValueError(
                "dropout and noise need a stochastic solver ('sgd' or 'adam'): "
                "L-BFGS needs the same loss at every evaluation.")
        X_given, y_given, sw_given = X, y, sample_weight
        X, y, sample_weight, layer_units, dtype = self._prepare_fit(
            X, y, sample_weight, incremental)
        # a stochastic fit's subtasks are its epochs; L-BFGS's its iterations,
        # and one more that scipy never runs (see _fit_lbfgs)
        stochastic = self.solver in _STOCHASTIC_SOLVERS
        callbacks = _FitCallbacks(
            self, X_given, y_given, sw_given,
            max_subtasks=(1 if incremental else self.max_iter) if stochastic
            else self.max_iter + 1)
        with blas_single_threaded():
            if stochastic:
                self._fit_stochastic(X, y, sample_weight, layer_units, incremental, dtype,
                                     callbacks)
            else:
                self._fit_lbfgs(X, y, sample_weight, layer_units, dtype, callbacks)

        if not all(np.isfinite(w).all() for w in self._weights()):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        callbacks.fit_end()
        return self

    def _prepare_fit(self, X, y, sample_weight, incremental):
        """Everything a fit does before it trains: the checks, X and y
        validated (y 2-D), the sample weights with the class weights folded
        in, the starting weights of a first fit; returns those with the layer
        sizes and the training dtype."""
        hidden_layer_sizes = self._hidden_layer_list()
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        self._activation_names()  # a list must name one activation per layer
        self._activation_settings()
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )

        labels = y
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        # warm_start and partial_fit train in the dtype of the model they go on
        # training, as scikit-learn's do; X is converted to it once, on its way
        # to the engine
        dtype = X.dtype if first_pass else self.coefs_[0].dtype
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._weigh_classes(labels, sample_weight, incremental)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if not first_pass and y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} outputs, but this {type(self).__name__} was "
                f"fitted with {self.n_outputs_}."
            )
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]

        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, dtype)
        else:
            self._check_same_layers(layer_units)
        return X, y, sample_weight, layer_units, dtype

    def _check_same_layers(self, layer_units):
        """warm_start and partial_fit go on with the weights of the last fit:
        the layers must still have their sizes, maxout's pieces and PReLU's
        slopes."""
        pieces = self._layer_pieces() + [1]
        shapes = [(fan_in, p * fan_out) for fan_in, fan_out, p
                  in zip(layer_units[:-1], layer_units[1:], pieces)]
        if [c.shape for c in self.coefs_] != shapes:
            raise ValueError(
                "The network's layer sizes changed since the last fit; "
                "warm_start and partial_fit need the same hidden_layer_sizes "
                "(and maxout's pieces).")
        prelu = [name == "prelu" for name in self._activation_names()]
        slopes = getattr(self, "slopes_", None) or [None] * len(prelu)
        if [s is not None for s in slopes] != prelu:
            raise ValueError(
                "The hidden layers' PReLU activations changed since the last fit, "
                "which warm_start and partial_fit do not allow: their slopes are "
                "fitted weights.")

    def _engine_arrays(self, X, y, sample_weight, dtype):
        """X as the engine takes it, C-contiguous Y and weights in the training dtype
        (one conversion at most)."""
        X, csr = _engine_input(X, dtype)
        X = X if csr is None else csr
        Y = self._smooth_targets(_engine_array(y, dtype))
        if sample_weight is None:
            return X, Y, np.ones(1, dtype=dtype), False
        return X, Y, _engine_array(sample_weight, dtype), True

    def _fit_lbfgs(self, X, y, sample_weight, layer_units, dtype, callbacks):
        # scipy's L-BFGS-B works in float64 but hands the function the parameters
        # in the dtype of the starting point: as in scikit-learn, the loss and
        # gradient are computed in the training dtype (coefs_ views of the point
        # being evaluated, also if the fit is interrupted); the result is float64.
        X, Y, sw, has_sw = self._engine_arrays(X, y, sample_weight, dtype)
        params = self._pack_params(dtype)
        network = self._network(layer_units, dtype, Y.shape[0], X)
        squared_mean = self._output_head()[1]
        alpha = float(self.alpha)

        def loss_grad(packed):
            params[:] = packed
            loss = network.loss_grad(params, X, Y, sw, has_sw, alpha, squared_mean)
            return loss, network.grad.copy()

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if _scipy_takes_iprint():
            options["iprint"] = iprint
        # scipy calls back at the end of each iteration: that iteration's task
        # ends and the next one's begins, so one begun task is left at the end
        callbacks.task_begin("lbfgs-iter", lambda: self._weights_at(params))
        stopped = []

        def iteration_done(xk):
            weights = functools.partial(self._weights_at, np.asarray(xk, dtype=dtype))
            if callbacks.task_end(weights):
                stopped.append(True)
                raise StopIteration
            callbacks.task_begin("lbfgs-iter", weights)

        opt_res = scipy.optimize.minimize(
            loss_grad, params.copy(), method="L-BFGS-B", jac=True, options=options,
            callback=iteration_done if callbacks.active else None,
        )
        if not stopped:
            callbacks.task_end(None)  # the task scipy never ran
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        else:
            self.n_iter_ = opt_res.nit
        self.loss_ = opt_res.fun
        self._unpack(opt_res.x)

    def _fit_stochastic(self, X, y, sample_weight, layer_units, incremental, dtype,
                        callbacks):
        params = self._pack_params(dtype)
        n_params = params.shape[0]
        if (
            not incremental
            or not hasattr(self, "_optimizer")
            or not self._optimizer.matches(n_params, dtype)
        ):
            if self.solver == "sgd":
                self._optimizer = SGDOptimizer(
                    n_params,
                    dtype,
                    self.learning_rate_init,
                    self.learning_rate,
                    self.momentum,
                    self.nesterovs_momentum,
                    self.power_t,
                )
            elif self.solver == "adam":
                self._optimizer = AdamOptimizer(
                    n_params,
                    dtype,
                    self.learning_rate_init,
                    self.beta_1,
                    self.beta_2,
                    self.epsilon,
                )

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # stratified split for single-output (binary) classification only
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            split = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, y_val = split[:4]
            sample_weight_train, sample_weight_val = (
                (None, None) if sample_weight is None else split[4:]
            )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)

        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        X_train, Y_train, sw_train, has_sw = self._engine_arrays(
            X_train, y_train, sample_weight_train, dtype
        )
        network = self._network(layer_units, dtype, batch_size, X_train)
        squared_mean = self._output_head()[1]

        # dropout's and the noise's random numbers: keyed by a seed from
        # random_state (drawn only for them, so scikit-learn's draws stay as
        # they are) and by t_, which no two epochs share
        noise_seed = (self._random_state.randint(np.iinfo(np.int64).max)
                      if self._perturbed() else 0)

        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                if self.shuffle:
                    # Same draws as scikit-learn's utils.shuffle(sample_idx): the
                    # previous order, permuted by a shuffled arange (its resample
                    # without the validation that costs milliseconds per fit).
                    perm = np.arange(n_samples, dtype=np.intp)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                callbacks.task_begin("epoch", lambda: self._weights_at(params))
                try:
                    accumulated_loss = network.run_epoch(
                        params,
                        X_train,
                        Y_train,
                        sw_train,
                        has_sw,
                        sample_idx,
                        bool(self.shuffle),
                        batch_size,
                        alpha=float(self.alpha),
                        squared_mean=squared_mean,
                        noise_key=_engine.noise_key(noise_seed, self.t_),
                        **self._optimizer.epoch_args(),
                    )
                finally:
                    # also after Ctrl-C: Adam's step count must match the weights
                    self._optimizer.steps_done(network.last_epoch_steps)

                self.n_iter_ += 1
                self.loss_ = accumulated_loss / n_samples

                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                self._update_no_improvement_count(
                    early_stopping, X_val, y_val, sample_weight_val
                )

                self._optimizer.iteration_ends(self.t_)

                if callbacks.task_end(lambda: self._weights_at(params)):
                    break  # a callback asked to stop

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than "
                            "tol=%f for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f"
                            " for %d consecutive epochs."
                            % (self.tol, self.n_iter_no_change)
                        )

                    is_stopping = self._optimizer.trigger_stopping(msg, self.verbose)
                    if is_stopping:
                        break
                    else:
                        self._no_improvement_count = 0

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet."
                        % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            for name, values in self._best_weights.items():
                setattr(self, name, values)

    def _keep_best(self):
        """Copies of the weights, for early stopping to restore."""
        self._best_weights = _copied(self._weight_lists())

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sample_weight)

            self.validation_scores_.append(val_score)

            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]

            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0

            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._keep_best()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Trains for up to ``max_iter`` epochs (or L-BFGS iterations) from new
        weights, or from the last fit's with ``warm_start=True``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data: float32 data trains in float32, anything else in
            float64 (a warm start goes on in the dtype of the model it
            continues).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights. The loss is their weighted mean, and ``alpha``'s
            L2 term is divided by their sum. None weighs every sample 1.

        Returns
        -------
        self : object
            Returns a trained MLP model.

        Raises
        ------
        ValueError
            If the solver produced non-finite weights (the data may need
            scaling), or for parameters that do not go together (dropout or
            noise with ``solver='lbfgs'``, ``label_smoothing`` with a hinge
            loss, a ``warm_start`` with other layer sizes).

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            If the solver stopped at ``max_iter`` without converging.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", max_iter=500, random_state=0)
        >>> clf.fit(X, y)
        MLPClassifier(max_iter=500, random_state=0, solver='lbfgs')
        >>> [w.shape for w in clf.coefs_]
        [(4, 100), (100, 3)]
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def _score_with_function(self, X, y, sample_weight, score_function):
        """score_function(y, predict(X)) on already validated X; NaN for non-finite predictions."""
        y_pred = self._predict(X, check_input=False)

        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan

        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _FitCallbacks:
    """A fit's scikit-learn callback hooks (sklearn.callback): the fit is the
    root task and each epoch, or L-BFGS iteration, one of its subtasks; called
    between epochs, never per batch. Nothing is done when the estimator has no
    callbacks, its own or a meta-estimator's.

    ``weights`` arguments give the fitted weights at that point (lazily: a
    callable), from which the callbacks' ``fitted_estimator`` is made."""

    def __init__(self, estimator, X, y, sample_weight, max_subtasks):
        self.estimator = estimator
        self.active = bool(getattr(estimator, "_skl_callbacks", None)) or hasattr(
            estimator, "_parent_callback_ctx")
        if not self.active:
            return
        self.data = dict(X=X, y=y, metadata=None if sample_weight is None
                         else {"sample_weight": sample_weight})
        self.root = estimator._init_callback_context(max_subtasks=max_subtasks)
        self.root.call_on_fit_task_begin(estimator=estimator, **self.data)
        self.task = None
        self.task_open = False

    def task_begin(self, name, weights):
        if self.active:
            self.task = self.root.subcontext(task_name=name)
            self.task_open = True
            self.task.call_on_fit_task_begin(
                estimator=self.estimator, reconstruction_attributes=weights, **self.data)

    def task_end(self, weights):
        """Ends the task begun last; True when a callback asks to stop. No
        weights: a task that did not run (no data is passed)."""
        if not self.active:
            return False
        data = self.data if weights is not None else {}
        self.task_open = False
        return self.task.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=weights, **data)

    def fit_end(self):
        if self.active:
            if self.task_open:  # an epoch interrupted by Ctrl-C: it did not finish
                self.task_end(None)
            self.root.call_on_fit_task_end(
                estimator=self.estimator, reconstruction_attributes={}, **self.data)


def _is_float_matrix(X):
    """True for a 2-D aligned ndarray (not a subclass) of float32 or float64:
    what the fit and predict paths may hand to the engine without scikit-learn's
    conversion, each under conditions of its own besides."""
    return (type(X) is np.ndarray and X.ndim == 2 and X.dtype.char in "fd"
            and X.flags.aligned)


def _validate_fit_data(estimator, X, y, **params):
    """``validate_data(estimator, X, y, **params)``, where params ask for
    float64 or float32 X and multi-output y. For a native-endian float ndarray
    X in C or Fortran order (which validation passes through unconverted), the
    NaN/infinity check of X is the engine's single vectorised pass instead of
    numpy's sum over X (milliseconds per fit on large X). It runs first: X with
    NaN or infinity takes scikit-learn's full validation, which raises its own
    error before it changes the estimator. When y is a plain ndarray too (see
    _plain_target), neither array needs more than that, and validate_data
    with ``skip_check_array`` does the rest (feature names, n_features_in_).
    The check is threaded for large X only (_FINITE_MIN_VALUES_THREADED)."""
    if not (
        _is_float_matrix(X)
        and X.dtype.isnative
        and (X.flags.c_contiguous or X.flags.f_contiguous)
    ) or not _engine.all_finite(X.ravel(order="K"), _finite_check_threads(X.size)):
        return validate_data(estimator, X, y, **params)
    if _plain_target(X, y):
        return validate_data(estimator, X, y, skip_check_array=True, reset=params["reset"])
    return validate_data(estimator, X, y, ensure_all_finite=False, **params)


def _finite_check_threads(n_values):
    """Threads for the NaN/infinity check of a fit's X of n_values values."""
    if n_values < _FINITE_MIN_VALUES_THREADED:
        return 1
    return _engine.share_threads(_config.effective_n_threads())


def _plain_target(X, y):
    """True when check_X_y(X, y, multi_output=True), given X that is known to
    be finite float, would return X and y unchanged and say nothing: X has a
    row and a column; y is an ndarray of bools, integers or finite floats with
    X's rows, one dimension or two with a column or more."""
    return (
        type(y) is np.ndarray
        and X.shape[0] > 0
        and X.shape[1] > 0
        and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] > 0))
        and y.shape[0] == X.shape[0]
        and y.dtype.kind in "biuf"
        and (y.dtype.kind != "f" or bool(np.isfinite(y).all()))
    )


@functools.lru_cache(maxsize=64)
def _constraint_objects(cls):
    """``(name, constraint objects)`` for each ``__init__`` parameter of cls
    that ``validate_parameter_constraints`` checks, in ``get_params`` order."""
    table = cls._parameter_constraints
    return tuple(
        (name, tuple(make_constraint(c) for c in table[name]))
        for name in cls._get_param_names()
        if name in table and table[name] != "no_validation"
    )


def _fit_label_binarizer(y):
    """``LabelBinarizer().fit(y)`` and, when known, each label's index in its
    ``classes_`` (else None). A 1-D integer or bool array is fitted directly:
    such a target is binary with at most two distinct labels and multiclass
    otherwise, and its sorted labels are np.unique(y) (the binarizer's
    type_of_target and unique_labels cost about a millisecond)."""
    binarizer = LabelBinarizer()
    if not (type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "biu"):
        return binarizer.fit(y), None
    codes = _counted_labels(y)
    if codes is None:
        binarizer.classes_, index = np.unique(y), None
    else:
        binarizer.classes_, index = codes
    binarizer.y_type_ = "multiclass" if len(binarizer.classes_) > 2 else "binary"
    binarizer.sparse_input_ = False
    return binarizer, index


def _counted_labels(y):
    """``(np.unique(y), np.searchsorted(np.unique(y), y))`` for a 1-D integer or
    bool array whose labels span fewer values than max(1024, len(y)), by
    counting them (a sort of 40000 labels and the search cost about a
    millisecond, the count a tenth of that); None for other labels."""
    if y.shape[0] == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    if hi - lo >= max(1024, y.shape[0]) or lo < -(2**62) or hi >= 2**62:
        return None
    offset = y.astype(np.intp) - lo
    present = np.bincount(offset, minlength=hi - lo + 1) > 0
    classes = (np.flatnonzero(present) + lo).astype(y.dtype)
    return classes, (np.cumsum(present) - 1)[offset]


def _engine_array(a, dtype):
    """a as the engine reads it: C-contiguous, of dtype, and aligned (a view of
    a byte buffer may start at any byte; C reads a double only at an address
    that is a multiple of 8)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.aligned else a.copy()


def _engine_input(X, dtype):
    """(dense X as _engine_array gives it, None), or for sparse X an empty
    (0, n_features) array and the CSR arrays (data, intp indices, intp
    indptr): the engine multiplies the sparse rows directly and never
    densifies X."""
    if not sp.issparse(X):
        return _engine_array(X, dtype), None
    X = X.tocsr()
    csr = (
        _engine_array(X.data, dtype),
        _engine_array(X.indices, np.intp),
        _engine_array(X.indptr, np.intp),
    )
    return np.empty((0, X.shape[1]), dtype=dtype), csr


def _scipy_takes_iprint():
    """scipy >= 1.15 deprecates L-BFGS-B's ``iprint``; pass it only to older scipy."""
    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    return (major, minor) < (1, 15)


_SHARED_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of shape(n_layers - 2,), default=(100,)
        The ith element represents the number of neurons in the ith hidden
        layer (an int stands for one hidden layer).

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
            'selu', 'softplus', 'gelu', 'prelu', 'sine', 'maxout'} or list, \
            default='relu'
        Activation function for the hidden layers. scikit-learn's four:

        - 'identity', no-op activation, useful to implement linear bottleneck,
          returns f(x) = x;
        - 'logistic', the logistic sigmoid function, returns
          f(x) = 1 / (1 + exp(-x));
        - 'tanh', the hyperbolic tan function, returns f(x) = tanh(x);
        - 'relu', the rectified linear unit function, returns f(x) = max(0, x).

        Beyond scikit-learn, each with PyTorch's default parameters where it
        has one:

        - 'leaky_relu': x, or s x below 0 (s: ``negative_slope``, 0.01);
        - 'elu': x, or a (exp(x) - 1) below 0 (a: ``alpha``, 1);
        - 'selu': 1.0507 times x, or 1.6733 (exp(x) - 1) below 0;
        - 'softplus': log(1 + exp(x));
        - 'gelu': x Phi(x), Phi the standard normal distribution function
          (the exact GELU, not its tanh approximation; Phi to within a few
          units in the last place);
        - 'prelu': x, or s_j x below 0, with a slope s_j per unit learned with
          the weights (starting at ``prelu_init``, 0.25; no L2 penalty), in
          ``slopes_``;
        - 'sine': sin(w x) (w: ``omega_0``, 30), with SIREN's initialisation
          (Sitzmann et al. 2020): the weights feeding a sine layer, and the
          output layer after one, are drawn within 1 / fan_in on X and
          sqrt(6 / fan_in) / w after, their intercepts within 1 / sqrt(fan_in);
        - 'maxout': the largest of k linear pieces per unit (k: ``pieces``,
          2), each with its own weights and intercept (see ``coefs_``).

        A list gives one activation per hidden layer; the settings in
        parentheses come from ``activation_params``.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization.

        - 'lbfgs' is an optimizer in the family of quasi-Newton methods
          (scipy's L-BFGS-B; the loss and gradient are computed in X's
          dtype, and the fitted parameters are float64).
        - 'sgd' refers to stochastic gradient descent.
        - 'adam' refers to a stochastic gradient-based optimizer proposed by
          Kingma, Diederik, and Jimmy Ba.

        Note: The default solver 'adam' works pretty well on relatively large
        datasets (with thousands of training samples or more) in terms of
        both training time and validation score. For small datasets, however,
        'lbfgs' can converge faster and perform better.

    alpha : float, default=0.0001
        Strength of the L2 regularization term. The L2 regularization term is
        divided by the sample size (the sum of the sample weights) when added
        to the loss.

    batch_size : int or 'auto', default='auto'
        Size of minibatches for stochastic optimizers. If the solver is
        'lbfgs', the estimator will not use minibatch. When set to "auto",
        ``batch_size=min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for weight updates.

        - 'constant' is a constant learning rate given by
          ``learning_rate_init``.
        - 'invscaling' gradually decreases the learning rate at each time
          step ``t`` (the samples seen) using an inverse scaling exponent of
          ``power_t``: ``effective_learning_rate = learning_rate_init /
          pow(t, power_t)``.
        - 'adaptive' keeps the learning rate constant to
          ``learning_rate_init`` as long as training loss keeps decreasing;
          each time ``n_iter_no_change`` epochs fail to decrease the training
          loss by at least ``tol`` (or to increase the validation score by at
          least ``tol`` under ``early_stopping``), the learning rate is
          divided by 5.

        Only used when ``solver='sgd'``.

    learning_rate_init : float, default=0.001
        The initial learning rate used. It controls the step-size in updating
        the weights. Only used when solver='sgd' or 'adam'.

    power_t : float, default=0.5
        The exponent for inverse scaling learning rate, used when
        ``learning_rate='invscaling'``. Only used when solver='sgd'.

    max_iter : int, default=200
        Maximum number of iterations. The solver iterates until convergence
        (determined by ``tol``) or this number of iterations. For stochastic
        solvers ('sgd', 'adam'), this is the number of epochs (how many times
        each data point will be used), not the number of gradient steps.

    shuffle : bool, default=True
        Whether to shuffle samples in each iteration. Only used when
        solver='sgd' or 'adam'.

    random_state : int, RandomState instance, default=None
        Determines random number generation for weights and bias
        initialization, train-test split if early stopping is used, batch
        sampling when solver='sgd' or 'adam', and the draws of ``dropout``
        and the noises. Pass an int for reproducible results across multiple
        function calls. The same seed draws the same numbers as
        scikit-learn's estimator.

    tol : float, default=1e-4
        Tolerance for the optimization. When the loss or score is not
        improving by at least ``tol`` for ``n_iter_no_change`` consecutive
        iterations, unless ``learning_rate`` is set to 'adaptive',
        convergence is considered to be reached and training stops.

    verbose : bool, default=False
        Whether to print progress messages to stdout, as scikit-learn does.

    warm_start : bool, default=False
        When set to True, reuse the solution of the previous call to fit as
        initialization, otherwise, just erase the previous solution.

    momentum : float, default=0.9
        Momentum for gradient descent update. Should be between 0 and 1. Only
        used when solver='sgd'.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum. Only used when solver='sgd' and
        momentum > 0.

    early_stopping : bool, default=False
        Whether to use early stopping to terminate training when validation
        score is not improving. If set to True, it will automatically set
        aside ``validation_fraction`` of training data as validation and
        terminate training when validation score is not improving by at least
        ``tol`` for ``n_iter_no_change`` consecutive epochs; the weights of
        the best epoch are kept. The split is stratified for binary
        classification only (as scikit-learn's code does; multiclass and
        multilabel targets are split at random). If early stopping is False,
        then the training stops when the training loss does not improve by
        more than ``tol`` for ``n_iter_no_change`` consecutive passes over the
        training set. Only effective when solver='sgd' or 'adam'.

    validation_fraction : float, default=0.1
        The proportion of training data to set aside as validation set for
        early stopping. Must be between 0 and 1. Only used if
        early_stopping is True.

    beta_1 : float, default=0.9
        Exponential decay rate for estimates of first moment vector in adam,
        should be in [0, 1). Only used when solver='adam'.

    beta_2 : float, default=0.999
        Exponential decay rate for estimates of second moment vector in adam,
        should be in [0, 1). Only used when solver='adam'.

    epsilon : float, default=1e-8
        Value for numerical stability in adam. Only used when solver='adam'.

    n_iter_no_change : int, default=10
        Maximum number of epochs to not meet ``tol`` improvement. Only
        effective when solver='sgd' or 'adam'.

    max_fun : int, default=15000
        Only used when solver='lbfgs'. Maximum number of loss function calls.
        The solver iterates until convergence (determined by ``tol``), number
        of iterations reaches max_iter, or this number of loss function
        calls.

    dropout : float or list of float, default=0.0
        Inverted dropout in training (never in prediction): each unit of a
        layer's input is zeroed with this probability and the others scaled
        by ``1 / (1 - dropout)``. A float applies to every hidden layer's
        output; a list gives one rate per layer's input, the input layer
        (X) first, so ``len(hidden_layer_sizes) + 1`` rates in [0, 1). The
        masks are drawn from a seed that ``random_state`` gives, the data
        row, the layer and ``t_``: the same seed gives the same model, on
        any number of threads. Needs 'sgd' or 'adam'.

    input_noise : float, default=0.0
        Deviation of Gaussian noise added to X in training (dense X),
        drawn as dropout's masks are. Needs 'sgd' or 'adam'.

    hidden_noise : float, default=0.0
        Deviation of Gaussian noise added to each hidden layer's output in
        training (before its dropout). Needs 'sgd' or 'adam'.

    weight_noise : float, default=0.0
        Deviation of Gaussian noise added to the coefficients (not the
        intercepts) for each mini-batch's forward and backward pass; the
        step then updates the coefficients themselves. Needs 'sgd' or
        'adam'.

    activation_params : dict, default=None
        Settings of the activations, for every layer that has that
        activation: ``negative_slope`` (leaky_relu, >= 0, default 0.01),
        ``alpha`` (elu, > 0, default 1.0), ``prelu_init`` (prelu's first
        slopes, default 0.25), ``omega_0`` (sine, > 0, default 30.0) and
        ``pieces`` (maxout, an integer >= 1, default 2). None: the defaults.
"""

# The References both estimators share.
_SHARED_REFERENCES_DOC = """
    Hinton, Geoffrey E. "Connectionist learning procedures."
    Artificial intelligence 40.1 (1989): 185-234.

    Glorot, Xavier, and Yoshua Bengio.
    "Understanding the difficulty of training deep feedforward neural networks."
    International Conference on Artificial Intelligence and Statistics. 2010.

    He, Kaiming, et al. (2015). "Delving deep into rectifiers: Surpassing
    human-level performance on imagenet classification."
    `arXiv:1502.01852 <https://arxiv.org/abs/1502.01852>`__

    Kingma, Diederik, and Jimmy Ba (2014). "Adam: A method for stochastic
    optimization." `arXiv:1412.6980 <https://arxiv.org/abs/1412.6980>`__
"""

# The Notes paragraphs both estimators share.
_SHARED_NOTES_DOC = """
    A fit trains in X's dtype, float32 or float64 (other input is converted
    to float64); ``warm_start`` and ``partial_fit`` go on in the dtype of
    the model they continue. Prediction computes in the wider of X's and
    the model's float types.

    Each epoch's mini-batches run in C kernels and BLAS products, without
    the GIL, on OpenMP threads that share out the rows of a batch. The
    thread count is resolved as scikit-learn's OpenMP estimators resolve
    it (``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits(n,
    user_api="openmp")``, the CPUs the process may use), and the model is
    bit-identical on any number of threads.

    A fit reports to the callbacks of :mod:`sklearn.callback` set with
    ``set_callbacks``: the fit is the root task and each epoch (or L-BFGS
    iteration) a subtask, at whose end a callback sees the model of that
    epoch and may stop the fit. A pickle records mlpfast's version; loading
    it with another version warns with :class:`InconsistentVersionWarning`.
"""

_SHARED_ATTRIBUTES_DOC = """
    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached by the solver throughout fitting. If
        ``early_stopping=True``, this attribute is set to None; refer to the
        ``best_validation_score_`` fitted attribute instead. Only accessible
        when solver='sgd' or 'adam'.

    loss_curve_ : list of shape (`n_iter_`,)
        The ith element in the list represents the loss at the end of the ith
        epoch. Only accessible when solver='sgd' or 'adam'.

    validation_scores_ : list of shape (`n_iter_`,) or None
        The score at each epoch on a held-out validation set (the accuracy
        for the classifier, R2 for the regressor). Only available if
        ``early_stopping=True``, otherwise the attribute is set to None. Only
        accessible when solver='sgd' or 'adam'.

    best_validation_score_ : float or None
        The best validation score that triggered the early stopping. Only
        available if ``early_stopping=True``, otherwise the attribute is set
        to None. Only accessible when solver='sgd' or 'adam'.

    t_ : int
        The number of training samples seen by the solver during fitting
        (the time step of the learning-rate schedules and of the random
        draws of dropout and the noises).

    coefs_ : list of shape (n_layers - 1,)
        The ith element in the list represents the weight matrix
        corresponding to layer i, of shape (fan_in, fan_out). For a maxout
        layer of fan_out units and k pieces it is (fan_in, k * fan_out),
        piece j of unit u in column ``j * fan_out + u``: unit u is the
        largest of ``H @ coefs_[i][:, j * fan_out + u] + intercepts_[i][j *
        fan_out + u]`` over j, H the layer's input.

    intercepts_ : list of shape (n_layers - 1,)
        The ith element in the list represents the bias vector corresponding
        to layer i + 1 (k * fan_out entries for a maxout layer, laid out as
        its ``coefs_`` columns).

    slopes_ : list of shape (n_layers - 2,)
        Only with a 'prelu' hidden layer: ``slopes_[i]`` is the (fan_out,)
        vector of hidden layer i's learned slopes, or None when that layer is
        not PReLU.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit. Defined only when ``X`` has
        feature names that are all strings.

    n_iter_ : int
        The number of iterations the solver has run: epochs for 'sgd' and
        'adam'.

    n_layers_ : int
        Number of layers, the input and output layers included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.
"""


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    """Multi-layer perceptron classifier with a compiled engine.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters, attributes and, for a given ``random_state``, the same
    training trajectory; each epoch runs in compiled code without the GIL.
    The model minimises the log-loss (or, beyond scikit-learn, a hinge loss)
    with lbfgs, sgd or adam.

    Parameters
    ----------
{parameters}
    loss : {'log_loss', 'hinge', 'squared_hinge'}, default='log_loss'
        The loss. 'log_loss' (scikit-learn's only one) puts a logistic
        (binary, multilabel) or softmax (multi-class) output on the
        cross-entropy. The hinge losses make the output layer an SVM head on
        an identity output, with :meth:`decision_function` in place of
        ``predict_proba``: per output (binary, multilabel) ``max(0, 1 - s
        z)`` with ``s = +1`` for the positive class and -1 else; multi-class,
        Weston and Watkins' ``sum over k != c of max(0, 1 + z_k - z_c)`` for
        the true class ``c`` (PyTorch's ``MultiMarginLoss`` times the number
        of classes). 'squared_hinge' squares each term.

    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (as
        scikit-learn's other classifiers, through
        :func:`sklearn.utils.class_weight.compute_sample_weight`): a dict
        ``{class_label: weight}``, a list of such dicts (one per output) for
        multilabel y, or 'balanced' for ``n_samples / (n_classes *
        np.bincount(y))`` over the y of each fit. None (scikit-learn's MLP)
        weighs every class 1. 'balanced' needs all of y at once, so
        ``partial_fit`` refuses it.

    label_smoothing : float, default=0.0
        Smooths the targets of the cross-entropy: ``y (1 - e) + e / K``, with
        ``K`` the classes of a softmax output and 2 for each logistic output
        (binary, multilabel). ``loss='log_loss'`` only.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
{attributes}
    See Also
    --------
    MLPRegressor : Multi-layer perceptron regressor.
    LossCurveDisplay : Training loss and validation score per epoch.
    check_gradient : The engine's gradient against finite differences.
    sklearn.neural_network.MLPClassifier : The estimator this one replaces.

    Notes
    -----
    MLPClassifier trains iteratively since at each time step the partial
    derivatives of the loss function with respect to the model parameters
    are computed to update the parameters. It can also have a
    regularization term added to the loss function that shrinks model
    parameters to prevent overfitting. This implementation works with data
    represented as dense numpy arrays or sparse scipy matrices (CSR, CSC) of
    floating point values.

    With ``loss='log_loss'``, scikit-learn's activations and no class
    weights, label smoothing, dropout or noise (the defaults), the model is
    scikit-learn's: the same ``random_state`` draws the same initial
    weights, batches and validation split, and training follows the same
    trajectory, to rounding.

{notes}
    References
    ----------
{references}
    Weston, Jason, and Chris Watkins (1999). "Support vector machines for
    multi-class pattern recognition." European Symposium on Artificial
    Neural Networks.

    Examples
    --------
    scikit-learn's own example gives scikit-learn's numbers:

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.model_selection import train_test_split
    >>> from mlpfast import MLPClassifier
    >>> X, y = make_classification(n_samples=100, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y,
    ...                                                     random_state=1)
    >>> clf = MLPClassifier(random_state=1, max_iter=300).fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:1]).round(3)
    array([[0.038, 0.962]])
    >>> clf.predict(X_test[:5, :])
    array([1, 0, 1, 0, 1])
    >>> clf.score(X_test, y_test)
    0.88

    Beyond scikit-learn: a GELU and a maxout layer, dropout and label
    smoothing (the loss stops improving after 112 epochs, and the fit stops):

    >>> clf = MLPClassifier((32, 16), activation=["gelu", "maxout"], dropout=0.1,
    ...                     label_smoothing=0.05, max_iter=500, random_state=1)
    >>> clf.fit(X_train, y_train).n_iter_
    112
    >>> clf.score(X_test, y_test)
    0.92
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        loss="log_loss",
        class_weight=None,
        dropout=0.0,
        input_noise=0.0,
        hidden_noise=0.0,
        weight_noise=0.0,
        activation_params=None,
        label_smoothing=0.0,
    ):
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            input_noise=input_noise,
            hidden_noise=hidden_noise,
            weight_noise=weight_noise,
            activation_params=activation_params,
        )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"log_loss", *_MARGIN_LOSSES})],
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _smooth_targets(self, Y):
        # y (1 - e) + e / K over the K classes of a softmax row, and over the
        # two of each logistic output
        e = self.label_smoothing
        if not e:
            return Y
        if self.loss != "log_loss":
            raise ValueError(
                f"label_smoothing needs loss='log_loss'; loss={self.loss!r} reads the "
                "targets as classes.")
        k = Y.shape[1] if self.out_activation_ == "softmax" else 2
        return (Y * (1 - e) + e / k).astype(Y.dtype, copy=False)

    def _head_name(self):
        if self.loss == "log_loss":
            return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"
        multi = "multi_" if self._label_binarizer.y_type_ == "multiclass" else ""
        return multi + self.loss

    def _weigh_classes(self, labels, sample_weight, incremental):
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs all of y at once: partial_fit does "
                "not support it. Pass a dict of class weights instead.")
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        weights = compute_sample_weight(self.class_weight, labels)
        return weights if sample_weight is None else weights * sample_weight

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_fit_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # A new fit (or the first) learns the labels; warm_start must see the same
        # classes again; partial_fit may see a subset of the classes it was given.
        index = None
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer, index = _fit_label_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )

        return X, self._binarize(y, index)

    def _binarize(self, y, index=None):
        """``_label_binarizer.transform(y)`` as bool (so that float32 training data
        is never upcast by the targets); for 1-D binary and multiclass labels,
        computed directly: the binarizer re-checks the target type at a cost of
        milliseconds per fit. y's labels are known to be in ``classes_`` here;
        ``index``, when given, holds each label's index in ``classes_``."""
        binarizer = self._label_binarizer
        classes = binarizer.classes_
        if not (
            type(y) is np.ndarray
            and y.ndim == 1
            and y.dtype.kind in "biuSU"
            and binarizer.y_type_ in ("binary", "multiclass")
            and len(classes) >= 2
            and not binarizer.sparse_output
        ):
            return binarizer.transform(y).astype(bool)
        if index is None:
            index = np.searchsorted(classes, y)
        if len(classes) == 2:  # one column, true for the second class
            return (index == 1).reshape(-1, 1)
        Y = np.zeros((y.shape[0], len(classes)), dtype=bool)
        Y[np.arange(y.shape[0]), index] = True
        return Y

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes: for each sample the most probable class
            (the highest score under a hinge loss), or for multilabel y a 0/1
            row with the labels whose probability exceeds 0.5 (whose score
            exceeds 0).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
        >>> clf.predict(X[[0, 50, 100]])
        array([0, 1, 2])
        """
        self._check_is_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        """predict, with the input check optional (the validation set is checked once)."""
        y_pred = self._forward_pass_fast(X, check_input=check_input)

        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if self.out_activation_ == "identity" and self._label_binarizer.y_type_ != "multiclass":
            # a margin loss's scores: an output is positive above 0
            y_pred = (y_pred > 0).astype(y_pred.dtype)

        return self._labels_from_output(y_pred)

    def _check_margin(self):
        if self.loss not in _MARGIN_LOSSES:
            raise AttributeError(
                f"decision_function is available with loss='hinge' or 'squared_hinge', "
                f"not loss={self.loss!r} (use predict_proba)")
        return True

    def _check_proba(self):
        if self.loss != "log_loss":
            raise AttributeError(
                f"probability estimates are not available for loss={self.loss!r} "
                "(use decision_function)")
        return True

    @available_if(_check_margin)
    def decision_function(self, X):
        """Scores of the margin losses: the output layer, before any threshold.

        Available with ``loss='hinge'`` or ``'squared_hinge'``, which have
        no probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            One score per sample for a binary problem (the second class above
            0), else one per class or label: the predicted class is the
            highest score, a label is predicted where its score exceeds 0.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.preprocessing import StandardScaler
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> svm = MLPClassifier((16,), loss="hinge", solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> scores = svm.decision_function(X[[0, 50, 100]])
        >>> scores.shape
        (3, 3)
        >>> scores.argmax(axis=1)
        array([0, 1, 2])
        >>> hasattr(svm, "predict_proba")
        False
        """
        self._check_is_fitted()
        scores = self._forward_pass_fast(X)
        return scores.ravel() if self.n_outputs_ == 1 else scores

    def _labels_from_output(self, y_pred):
        """LabelBinarizer.inverse_transform for the usual targets, without its
        per-call overhead: the first argmax for multiclass, p > 0.5 for binary."""
        binarizer = self._label_binarizer
        classes = binarizer.classes_
        if not getattr(binarizer, "sparse_input_", False) and not binarizer.sparse_output:
            if binarizer.y_type_ == "multiclass" and y_pred.ndim == 2:
                # the method, not np.argmax: its dispatch costs more than the
                # argmax of one row
                return classes[y_pred.argmax(axis=1)]
            if binarizer.y_type_ == "binary" and y_pred.ndim == 1 and classes.shape[0] == 2:
                return classes[(y_pred > 0.5).astype(np.intp)]
        return binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        One epoch of the stochastic solver over ``X``, in mini-batches of
        ``batch_size``, going on from the weights and the optimizer's state
        of the previous call. Available with ``solver='sgd'`` or ``'adam'``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit. Required on the first call
            (except for multilabel targets); ignored afterwards.

        Returns
        -------
        self : object
            Trained MLP model.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier((16,), random_state=0)
        >>> for rows in np.array_split(np.arange(150), 3):
        ...     clf = clf.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        >>> clf.t_
        150
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        """Natural log of :meth:`predict_proba`.

        Available with ``loss='log_loss'`` (the default).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, columns ordered as ``classes_``.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.preprocessing import StandardScaler
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> clf = MLPClassifier((8,), max_iter=2000, random_state=0).fit(X, y)
        >>> clf.predict_log_proba(X[:2]).round(2)
        array([[-0.01, -4.54, -6.26],
               [-0.02, -4.09, -6.21]])
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Class probabilities from the compiled forward pass.

        Available with ``loss='log_loss'`` (the default).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            One row per sample, columns ordered as ``classes_``; a binary
            problem gives the two columns ``1 - p`` and ``p``. For multilabel
            y, each column is one label's probability.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.preprocessing import StandardScaler
        >>> from mlpfast import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> clf = MLPClassifier((8,), max_iter=2000, random_state=0).fit(X, y)
        >>> clf.classes_
        array([0, 1, 2])
        >>> clf.predict_proba(X[:2]).round(3)
        array([[0.987, 0.011, 0.002],
               [0.981, 0.017, 0.002]])
        """
        self._check_is_fitted()
        y_pred = self._forward_pass_fast(X)

        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()

        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        else:
            return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multi-layer perceptron regressor with a compiled engine.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`:
    the same parameters, attributes and, for a given ``random_state``, the same
    training trajectory; each epoch runs in compiled code without the GIL.
    The model minimises the squared error (or the Poisson deviance, or,
    beyond scikit-learn, the Huber loss or the absolute error) with lbfgs,
    sgd or adam.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'huber', 'absolute_error'}, \
            default='squared_error'
        The loss, on an identity output unless stated: half the squared
        error (averaged over the outputs, as scikit-learn's); half the
        Poisson deviance with a log link (an exp output; targets must be
        non-negative); the Huber loss, ``r**2 / 2`` for a residual ``|r| <=
        huber_epsilon`` and ``huber_epsilon * (|r| - huber_epsilon / 2)``
        beyond (PyTorch's ``HuberLoss``); or the absolute error ``|r|``. The
        last two are summed over the outputs. scikit-learn's MLP has the
        first two.
{parameters}
    huber_epsilon : float, default=1.0
        The Huber loss's threshold between its quadratic and linear parts
        (> 0); used by ``loss='huber'`` only. (Named so because ``epsilon``
        is Adam's.)

    Attributes
    ----------
{attributes}
    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier.
    LossCurveDisplay : Training loss and validation score per epoch.
    check_gradient : The engine's gradient against finite differences.
    sklearn.neural_network.MLPRegressor : The estimator this one replaces.

    Notes
    -----
    MLPRegressor trains iteratively since at each time step the partial
    derivatives of the loss function with respect to the model parameters
    are computed to update the parameters. It can also have a
    regularization term added to the loss function that shrinks model
    parameters to prevent overfitting. This implementation works with data
    represented as dense numpy arrays or sparse scipy matrices (CSR, CSC) of
    floating point values.

    With ``loss='squared_error'`` or ``'poisson'``, scikit-learn's
    activations and no dropout or noise (the defaults), the model is
    scikit-learn's: the same ``random_state`` draws the same initial
    weights, batches and validation split, and training follows the same
    trajectory, to rounding.

{notes}
    References
    ----------
{references}
    Huber, Peter J. (1964). "Robust estimation of a location parameter."
    The Annals of Mathematical Statistics 35.1: 73-101.

    Examples
    --------
    scikit-learn's own example gives scikit-learn's numbers:

    >>> from sklearn.datasets import make_regression
    >>> from sklearn.model_selection import train_test_split
    >>> from mlpfast import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y,
    ...                                                     random_state=1)
    >>> regr = MLPRegressor(random_state=1, max_iter=2000, tol=0.1)
    >>> regr.fit(X_train, y_train)
    MLPRegressor(max_iter=2000, random_state=1, tol=0.1)
    >>> regr.predict(X_test[:2]).round(2)
    array([  28.98, -290.75])
    >>> round(regr.score(X_test, y_test), 3)
    0.984

    Beyond scikit-learn: the Huber loss, fitted with L-BFGS:

    >>> regr = MLPRegressor(loss="huber", solver="lbfgs", max_iter=2000, random_state=1)
    >>> round(regr.fit(X_train, y_train).score(X_test, y_test), 3)
    0.996
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "huber", "absolute_error"})],
        "huber_epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    # loss -> the engine's output head
    _HEADS = {"squared_error": "identity", "poisson": "exp", "huber": "huber",
              "absolute_error": "absolute_error"}

    def _head_name(self):
        return self._HEADS[self.loss]

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        huber_epsilon=1.0,
        dropout=0.0,
        input_noise=0.0,
        hidden_noise=0.0,
        weight_noise=0.0,
        activation_params=None,
    ):
        self.huber_epsilon = huber_epsilon
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            input_noise=input_noise,
            hidden_noise=hidden_noise,
            weight_noise=weight_noise,
            activation_params=activation_params,
        )

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values, one column per output (1-D for a single
            output).

        Examples
        --------
        >>> import numpy as np
        >>> from mlpfast import MLPRegressor
        >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=1000,
        ...                    random_state=0).fit(X, X.ravel() ** 2)
        >>> reg.predict([[0.5]]).round(2)
        array([0.25])
        """
        self._check_is_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        """predict, with the input check optional (the validation set is checked once)."""
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_fit_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "loss='poisson' requires non-negative targets y; got a minimum of "
                f"{np.min(y)}."
            )
        return X, y

    # scikit-learn 1.9's MLPRegressor tests the method object, not its result,
    # so partial_fit stays available (and runs a full lbfgs fit) for
    # solver="lbfgs"; kept as is for a faithful drop-in.
    @available_if(lambda est: est._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        One epoch of the stochastic solver over ``X``, in mini-batches of
        ``batch_size``, going on from the weights and the optimizer's state
        of the previous call. (As in scikit-learn, with ``solver='lbfgs'``
        the method exists and runs a whole L-BFGS fit.)

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.

        Examples
        --------
        >>> import numpy as np
        >>> from mlpfast import MLPRegressor
        >>> X = np.linspace(-1, 1, 60).reshape(-1, 1)
        >>> reg = MLPRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> for rows in np.array_split(np.arange(60), 3):
        ...     reg = reg.partial_fit(X[rows], X[rows].ravel())
        >>> reg.t_
        60
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


for _estimator in (MLPClassifier, MLPRegressor):
    if _estimator.__doc__ is not None:  # None under python -OO
        _estimator.__doc__ = _estimator.__doc__.replace(
            "{parameters}", _SHARED_PARAMETERS_DOC
        ).replace("{attributes}", _SHARED_ATTRIBUTES_DOC).replace(
            "{notes}", _SHARED_NOTES_DOC.strip("\n") + "\n").replace(
            "{references}", _SHARED_REFERENCES_DOC.strip("\n") + "\n")
