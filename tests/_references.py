"""NumPy references shared by the kernel and gradient tests (float64, plain loops-free NumPy)."""

import numpy as np

from mlpfast import _engine

# The kernel codes (the engine's tables, from csrc/mlpfast_kernels.h).
ACTIVATIONS = dict(_engine.ACTIVATIONS)
IDENTITY, LOGISTIC, TANH, RELU = (ACTIVATIONS[name]
                                  for name in ("identity", "logistic", "tanh", "relu"))
OUT_SQUARED, OUT_BINARY, OUT_MULTI, OUT_POISSON = (
    _engine.OUTPUTS[name] for name in ("identity", "logistic", "softmax", "exp"))
# scikit-learn's output heads
SKLEARN_OUTPUTS = {"squared": OUT_SQUARED, "binary": OUT_BINARY, "multi": OUT_MULTI,
                   "poisson": OUT_POISSON}
OUT_HUBER, OUT_ABSOLUTE, OUT_HINGE, OUT_SQ_HINGE, OUT_MULTI_HINGE, OUT_MULTI_SQ_HINGE = (
    _engine.OUTPUTS[name] for name in ("huber", "absolute_error", "hinge", "squared_hinge",
                                       "multi_hinge", "multi_squared_hinge"))
# every output head: scikit-learn's, then the losses on the identity
OUTPUTS = {**SKLEARN_OUTPUTS, "huber": OUT_HUBER, "absolute": OUT_ABSOLUTE,
           "hinge": OUT_HINGE, "squared_hinge": OUT_SQ_HINGE,
           "multi_hinge": OUT_MULTI_HINGE, "multi_squared_hinge": OUT_MULTI_SQ_HINGE}
# Huber's threshold: the engine's default (Network's output_param)
HUBER_THRESHOLD = 1.0


LEAKY_RELU, ELU, SELU, SOFTPLUS, GELU, PRELU, SINE, MAXOUT = (
    ACTIVATIONS[name] for name in ("leaky_relu", "elu", "selu", "softplus", "gelu", "prelu",
                                   "sine", "maxout"))
# The settings' defaults the issue names: leaky_relu's slope, elu's alpha,
# sine's omega_0 (SIREN's), maxout's pieces; PReLU's first slopes.
DEFAULT_PARAM = {LEAKY_RELU: 0.01, ELU: 1.0, SINE: 30.0, MAXOUT: 2}
PRELU_SLOPE = 0.25
# Networks of two hidden layers with one activation each, as specs per layer
# (a code, or a (code, param) pair as the engine takes them).
PER_LAYER = {"tanh,gelu": [TANH, GELU], "softplus,leaky_relu": [SOFTPLUS, LEAKY_RELU],
             "selu,logistic": [SELU, LOGISTIC], "relu,elu": [RELU, ELU],
             "prelu,maxout": [PRELU, MAXOUT], "maxout3,sine2": [(MAXOUT, 3), (SINE, 2.0)],
             "leaky0.2,elu0.5": [(LEAKY_RELU, 0.2), (ELU, 0.5)]}
# Every hidden-activation choice the gradient tests cover: one for all layers,
# or one per layer. Sine's default omega_0 of 30 makes finite differences too
# coarse: 2 here (the kernel tests take the default).
HIDDEN = {**ACTIVATIONS, "sine": (SINE, 2.0), **PER_LAYER}
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def spec(act):
    """(code, param) of an activation spec, param its default where not given."""
    code, param = act if isinstance(act, tuple) else (act, None)
    return code, DEFAULT_PARAM.get(code) if param is None else param


def pieces(act):
    """Pre-activations per unit: maxout's pieces, else 1."""
    code, param = spec(act)
    return int(param) if code == MAXOUT else 1


def act_ref(z, act, slope=None):
    """Hidden activation of z, as sklearn.neural_network._base.ACTIVATIONS for
    scikit-learn's four, and as their formulas (and PyTorch's modules) for the
    others (a new array). slope: PReLU's per unit (default PRELU_SLOPE); a
    maxout z has pieces(act) * O columns, piece j of unit o in column j O + o."""
    from scipy.special import erfc

    act, c = spec(act)
    if act == LOGISTIC:
        return 1 / (1 + np.exp(-z))
    if act == TANH:
        return np.tanh(z)
    if act == RELU:
        return np.maximum(z, 0)
    if act == LEAKY_RELU:
        return np.where(z > 0, z, c * z)
    if act == ELU:
        return np.where(z > 0, z, c * np.expm1(np.minimum(z, 0)))
    if act == SELU:
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
    if act == SOFTPLUS:
        return np.logaddexp(0, z)
    if act == GELU:
        return 0.5 * z * erfc(-z / np.sqrt(2))
    if act == PRELU:
        return np.where(z > 0, z, (PRELU_SLOPE if slope is None else slope) * z)
    if act == SINE:
        return np.sin(c * z)
    if act == MAXOUT:
        return z.reshape(z.shape[0], int(c), -1).max(axis=1)
    return z.copy()


def act_derivative_ref(z, a, act, slope=None):
    """act'(z) of an element-wise activation (all but maxout), given z and
    a = act(z): written through a where the kernel writes it so (softplus,
    gelu, prelu and sine read z)."""
    act, c = spec(act)
    if act == LOGISTIC:
        return a * (1 - a)
    if act == TANH:
        return 1 - a**2
    if act == RELU:
        return (a > 0).astype(np.float64)
    if act == LEAKY_RELU:
        return np.where(a > 0, 1.0, c)
    if act == ELU:
        return np.where(a > 0, 1.0, a + c)
    if act == SELU:
        return np.where(a > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA)
    if act == SOFTPLUS:
        return 1 / (1 + np.exp(-z))
    if act == GELU:
        from scipy.special import erfc

        return 0.5 * erfc(-z / np.sqrt(2)) + z * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
    if act == PRELU:
        return np.where(z > 0, 1.0, PRELU_SLOPE if slope is None else slope)
    if act == SINE:
        return c * np.cos(c * z)
    return np.ones_like(a)


def act_backward_ref(dA, z, a, act, slope=None):
    """dZ = dA * dA/dZ: maxout passes each unit's delta to its largest piece
    (the first of equals), the others multiply by act_derivative_ref."""
    code, c = spec(act)
    if code != MAXOUT:
        return dA * act_derivative_ref(z, a, act, slope)
    n, P = z.shape[0], int(c)
    zp = z.reshape(n, P, -1)
    taken = np.arange(P)[None, :, None] == zp.argmax(axis=1)[:, None, :]
    return (taken * dA[:, None, :]).reshape(z.shape)


def prelu_slope_rows_ref(dA, z):
    """Each row's part of PReLU's slope gradient: dA * min(z, 0)."""
    return dA * np.minimum(z, 0)


def out_ref(z, out):
    """Output activation of z: logistic, row softmax, exp or (for the rest) the
    identity (a new array)."""
    if out == OUT_BINARY:
        return 1 / (1 + np.exp(-z))
    if out == OUT_MULTI:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if out == OUT_POISSON:
        return np.exp(z)
    return z.copy()


def layer_act(act, i):
    """The activation code of hidden layer i: act itself, or act[i] for a list."""
    return act[i] if isinstance(act, list) else act


def targets(rng, shape, out):
    """Targets valid for an output kind: one-hot rows (softmax and the
    multi-class hinges), 0/1 (logistic and the hinges), counts, or reals."""
    n, k = shape
    if out in (OUT_MULTI, OUT_MULTI_HINGE, OUT_MULTI_SQ_HINGE):
        return np.eye(k)[rng.integers(0, k, size=n)]
    if out in (OUT_BINARY, OUT_HINGE, OUT_SQ_HINGE):
        return rng.integers(0, 2, size=shape).astype(np.float64)
    if out == OUT_POISSON:
        return rng.poisson(1.0, size=shape).astype(np.float64)  # includes y = 0
    return rng.standard_normal(shape)


def loss_terms_ref(Y, P, out, eps, threshold=HUBER_THRESHOLD):
    """Per-element loss terms (N, K) of the header's formulas; each row sums to loss_n.

    squared 1/2 (y - p)^2; binary -[y log p + (1-y) log(1-p)] and multi -y log p with p
    clipped to [eps, 1 - eps]; Poisson y log(y/p) - y + p (just p where y = 0); Huber
    r^2 / 2 inside the threshold e (``threshold``), e (|r| - e / 2) outside; |r|; hinge
    max(0, 1 - s p)^q with s = 2y - 1; multi-class hinge max(0, 1 + p_k - p_c)^q
    for k other than the true class c (Weston and Watkins; PyTorch's
    MultiMarginLoss times K).
    """
    from scipy.special import xlogy

    Pc = np.clip(P, eps, 1 - eps)
    if out == OUT_BINARY:
        return -(xlogy(Y, Pc) + xlogy(1 - Y, 1 - Pc))
    if out == OUT_MULTI:
        return -xlogy(Y, Pc)
    if out == OUT_POISSON:
        return xlogy(Y, Y / P) - Y + P
    r = P - Y
    if out == OUT_HUBER:
        e = threshold
        return np.where(np.abs(r) <= e, 0.5 * r**2, e * (np.abs(r) - 0.5 * e))
    if out == OUT_ABSOLUTE:
        return np.abs(r)
    q = 2 if out in (OUT_SQ_HINGE, OUT_MULTI_SQ_HINGE) else 1
    if out in (OUT_HINGE, OUT_SQ_HINGE):
        return np.maximum(0, 1 - (2 * Y - 1) * P) ** q
    if out in (OUT_MULTI_HINGE, OUT_MULTI_SQ_HINGE):
        true = (P * Y).sum(axis=1, keepdims=True)
        return np.where(Y == 1, 0, np.maximum(0, 1 + P - true) ** q)
    return 0.5 * r**2


def loss_delta_ref(Y, P, out, threshold=HUBER_THRESHOLD):
    """d loss_n / d z of each output's pre-activation z (unweighted): P - Y for
    scikit-learn's four heads (each output activation the canonical link of
    its loss), the derivative of loss_terms_ref's formula for the others."""
    r = P - Y
    if out == OUT_HUBER:
        return np.clip(r, -threshold, threshold)
    if out == OUT_ABSOLUTE:
        return np.sign(r)
    q = 2 if out in (OUT_SQ_HINGE, OUT_MULTI_SQ_HINGE) else 1
    if out in (OUT_HINGE, OUT_SQ_HINGE):
        s = 2 * Y - 1
        m = np.maximum(0, 1 - s * P)
        return -s * q * m ** (q - 1) * (m > 0)
    if out in (OUT_MULTI_HINGE, OUT_MULTI_SQ_HINGE):
        true = (P * Y).sum(axis=1, keepdims=True)
        m = np.where(Y == 1, 0, np.maximum(0, 1 + P - true))
        d = q * m ** (q - 1) * (m > 0)
        return d - Y * d.sum(axis=1, keepdims=True)
    return r


# ---------------------------------------------------------------- counter-based random numbers
# The engine's generator (csrc/mlpfast_kernels.c) in NumPy's wrapping uint64 and
# uint32 arithmetic: splitmix64's finaliser, lowbias32, and the keys built on them.

GOLDEN64, GOLDEN32 = 0x9E3779B97F4A7C15, 0x9E3779B9


def mix64_ref(x):
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hash32_ref(x):
    x = np.asarray(x, dtype=np.uint32)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x7FEB352D)
        x = x ^ (x >> np.uint32(15))
        x = x * np.uint32(0x846CA68B)
        return x ^ (x >> np.uint32(16))


def key_ref(key, place):
    """mlp_key(key, place) for arrays of places."""
    with np.errstate(over="ignore"):
        return mix64_ref(np.uint64(key) ^ mix64_ref(np.asarray(place, dtype=np.uint64)
                                                    + np.uint64(GOLDEN64)))


def dropout_mask_ref(key, rows, n_units, p):
    """The kept (True) units of each data row under mlp_perturb_forward's key."""
    lo = (key_ref(key, rows) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        bits = hash32_ref(lo[:, None] + np.arange(n_units, dtype=np.uint32) * np.uint32(GOLDEN32))
    return bits >= np.uint32(int(p * 2**32)) if p > 0 else np.ones(bits.shape, bool)


def gaussian_ref(bits):
    """Box and Muller's standard normal number of 64 random bits, as the engine's."""
    bits = np.asarray(bits, dtype=np.uint64)
    u1 = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
    u2 = (bits >> np.uint64(32)).astype(np.float64) * 2.0**-32
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def unit_noise_ref(key, rows, n_units):
    """The standard normal draw of each (data row, unit) under a layer's key."""
    rk = key_ref(key, rows)
    with np.errstate(over="ignore"):
        places = rk[:, None] + (np.arange(1, n_units + 1, dtype=np.uint64)
                                * np.uint64(GOLDEN64))
    return gaussian_ref(mix64_ref(places))
