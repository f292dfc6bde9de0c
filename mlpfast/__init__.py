"""mlpfast: scikit-learn's MLPClassifier and MLPRegressor with a compiled engine.

>>> from mlpfast import MLPClassifier, MLPRegressor, check_gradient, show_config
"""

from mlpfast._version import __version__

import importlib.util as _importlib_util

# Run from a source checkout, `import mlpfast` finds the checkout's package ahead of an
# installed one; without this check, a missing engine reads as a circular import.
if _importlib_util.find_spec("mlpfast._engine") is None:
    raise ImportError(
        f"mlpfast's compiled engine (mlpfast._engine) is not built in {__path__[0]}. In a "
        "source checkout, either install mlpfast with `pip install .` and run it from outside "
        "the checkout, or build the engine in place with `python setup.py build_ext --inplace`.",
        name="mlpfast._engine")
del _importlib_util

from mlpfast._config import show_config
from mlpfast._gradient_check import check_gradient
from mlpfast._multilayer_perceptron import MLPClassifier, MLPRegressor
from mlpfast._persistence import InconsistentVersionWarning
from mlpfast._plot import LossCurveDisplay
from mlpfast._stochastic_optimizers import AdamOptimizer, SGDOptimizer

# The types skops.io may load for mlpfast's estimators (its `trusted=`): the
# estimators and the optimisers a stochastic fit keeps.
SKOPS_TRUSTED_TYPES = [f"{cls.__module__}.{cls.__qualname__}" for cls in
                       (MLPClassifier, MLPRegressor, AdamOptimizer, SGDOptimizer)]
del AdamOptimizer, SGDOptimizer

__all__ = ["MLPClassifier", "MLPRegressor", "LossCurveDisplay", "check_gradient",
           "show_config", "InconsistentVersionWarning", "SKOPS_TRUSTED_TYPES", "__version__"]
