"""NumPy references shared by the kernel and gradient tests (float64, plain loops-free NumPy)."""

import numpy as np

from mlpfast import _engine

# The kernel codes (the engine's tables, from csrc/mlpfast_kernels.h).
ACTIVATIONS = dict(_engine.ACTIVATIONS)
IDENTITY, LOGISTIC, TANH, RELU = (ACTIVATIONS[name]
                                  for name in ("identity", "logistic", "tanh", "relu"))
OUT_SQUARED, OUT_BINARY, OUT_MULTI, OUT_POISSON = (
    _engine.OUTPUTS[name] for name in ("identity", "logistic", "softmax", "exp"))
OUTPUTS = {"squared": OUT_SQUARED, "binary": OUT_BINARY, "multi": OUT_MULTI,
           "poisson": OUT_POISSON}


LEAKY_RELU, ELU, SELU, SOFTPLUS, GELU = (
    ACTIVATIONS[name] for name in ("leaky_relu", "elu", "selu", "softplus", "gelu"))
# Networks of two hidden layers with one activation each, as codes per layer.
PER_LAYER = {"tanh,gelu": [TANH, GELU], "softplus,leaky_relu": [SOFTPLUS, LEAKY_RELU],
             "selu,logistic": [SELU, LOGISTIC], "relu,elu": [RELU, ELU]}
# Every hidden-activation choice the gradient tests cover: one for all layers,
# or one per layer.
HIDDEN = {**ACTIVATIONS, **PER_LAYER}
LEAKY_SLOPE = 0.01
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def act_ref(z, act):
    """Hidden activation of z, as sklearn.neural_network._base.ACTIVATIONS for
    scikit-learn's four, and as their formulas (and PyTorch's modules) for the
    others (a new array)."""
    from scipy.special import erfc

    if act == LOGISTIC:
        return 1 / (1 + np.exp(-z))
    if act == TANH:
        return np.tanh(z)
    if act == RELU:
        return np.maximum(z, 0)
    if act == LEAKY_RELU:
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if act == ELU:
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if act == SELU:
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))
    if act == SOFTPLUS:
        return np.logaddexp(0, z)
    if act == GELU:
        return 0.5 * z * erfc(-z / np.sqrt(2))
    return z.copy()


def act_derivative_ref(z, a, act):
    """act'(z), given z and a = act(z): written through a where the kernel
    writes it so (the derivative of softplus and gelu needs z)."""
    if act == LOGISTIC:
        return a * (1 - a)
    if act == TANH:
        return 1 - a**2
    if act == RELU:
        return (a > 0).astype(np.float64)
    if act == LEAKY_RELU:
        return np.where(a > 0, 1.0, LEAKY_SLOPE)
    if act == ELU:
        return np.where(a > 0, 1.0, a + 1)
    if act == SELU:
        return np.where(a > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA)
    if act == SOFTPLUS:
        return 1 / (1 + np.exp(-z))
    if act == GELU:
        from scipy.special import erfc

        return 0.5 * erfc(-z / np.sqrt(2)) + z * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
    return np.ones_like(a)


def out_ref(z, out):
    """Output activation of z: identity, logistic, row softmax or exp (a new array)."""
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
