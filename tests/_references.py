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


def act_ref(z, act):
    """Hidden activation of z, as sklearn.neural_network._base.ACTIVATIONS (a new array)."""
    if act == LOGISTIC:
        return 1 / (1 + np.exp(-z))
    if act == TANH:
        return np.tanh(z)
    if act == RELU:
        return np.maximum(z, 0)
    return z.copy()


def act_derivative_ref(a, act):
    """act'(z) written through the activation's output a = act(z)."""
    if act == LOGISTIC:
        return a * (1 - a)
    if act == TANH:
        return 1 - a**2
    if act == RELU:
        return (a > 0).astype(np.float64)
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
