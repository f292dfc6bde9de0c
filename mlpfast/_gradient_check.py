"""check_gradient: the engine's analytic gradient against finite differences."""

import copy

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state



def check_gradient(estimator, X, y, *, sample_weight=None, n_checks=100, step=1e-6,
                   random_state=0):
    """Compare the engine's gradient of the training loss with central differences.

    The loss is the one ``fit`` minimises (the output loss, weighted by
    ``sample_weight`` and the classifier's ``class_weight``, plus the L2
    penalty ``alpha``), at the estimator's weights when it is fitted, else at
    the weights a fit would start from. Everything is computed in float64, and
    the estimator is left as it was.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted or not, in any configuration: any activation, loss,
        ``activation_params`` or ``class_weight``.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data the loss is computed on.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The targets, as ``fit`` takes them.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, as ``fit`` takes them; None weighs every sample 1.
    n_checks : int, default=100
        How many parameters (drawn at random; all of them when there are
        fewer) are perturbed, each by ``+step`` and ``-step``.
    step : float, default=1e-6
        The finite-difference step.
    random_state : int, RandomState instance or None, default=0
        Draws the parameters checked. (An unfitted estimator starts from the
        weights its own ``random_state`` gives.)

    Returns
    -------
    error : float
        The worst relative error ``|g - d| / max(|g|, |d|, 1e-3 G)`` over the
        checked parameters, g the analytic and d the finite-difference
        derivative, G the largest ``|g|`` checked (the floor keeps rounding in
        derivatives near 0 from counting). A few 1e-6 or less means the two
        agree; a wrong derivative shows as 1e-2 or more.

    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier.
    MLPRegressor : Multi-layer perceptron regressor.

    Notes
    -----
    The parameters are the fitted weights in the engine's order: ``coefs_``,
    ``intercepts_``, then the PReLU layers' ``slopes_``. The loss is
    deterministic: dropout and the noises, which only perturb training, are
    left out. A finite difference that straddles a kink (ReLU at 0, a tie
    between maxout's pieces, a hinge's corner) disagrees with the derivative
    on either side of it; with random data and a small ``step`` that is rare.

    Examples
    --------
    >>> import numpy as np
    >>> from mlpfast import MLPClassifier, check_gradient
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.normal(size=(60, 4)), rng.randint(3, size=60)
    >>> est = MLPClassifier((8, 6), activation=["gelu", "elu"], random_state=0)
    >>> check_gradient(est, X, y) < 1e-5
    True
    """
    if hasattr(estimator, "coefs_"):
        # a copy goes on from the fitted weights, as a warm start would
        est = copy.deepcopy(estimator).set_params(warm_start=True)
    else:
        est = clone(estimator)
    X, y, sample_weight, layer_units, _ = est._prepare_fit(X, y, sample_weight,
                                                           incremental=False)
    params = np.concatenate([np.ravel(p) for p in est._weights()]).astype(np.float64)

    X, Y, sw, has_sw = est._engine_arrays(X, y, sample_weight, np.float64)
    network = est._network(layer_units, np.float64, Y.shape[0], X)
    squared_mean = est._output_head()[1]

    def loss(p):
        return network.loss_grad(p, X, Y, sw, has_sw, float(est.alpha), squared_mean)

    grad = _analytic(loss, network, params)
    rng = check_random_state(random_state)
    checked = (np.arange(params.size) if params.size <= n_checks
               else rng.choice(params.size, n_checks, replace=False))
    fd = np.empty(len(checked))
    for j, i in enumerate(checked):
        p = params.copy()
        p[i] += step
        up = loss(p)
        p[i] = params[i] - step
        fd[j] = (up - loss(p)) / (2 * step)
    g = grad[checked]
    # a floor keeps the rounding of the differences of derivatives near 0 from
    # counting as error
    scale = np.maximum(np.maximum(np.abs(g), np.abs(fd)), 1e-3 * np.abs(g).max())
    with np.errstate(invalid="ignore"):
        error = np.where(scale > 0, np.abs(g - fd) / scale, 0.0)
    return float(error.max())


def _analytic(loss, network, params):
    """The engine's gradient at params (Network.loss_grad leaves it in grad)."""
    loss(params)
    return network.grad.copy()
