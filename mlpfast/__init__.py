"""mlpfast: scikit-learn's MLPClassifier and MLPRegressor with a compiled engine.

>>> from mlpfast import MLPClassifier, MLPRegressor, check_gradient, show_config
"""

__version__ = "0.1.0"

from mlpfast._config import show_config
from mlpfast._multilayer_perceptron import MLPClassifier, MLPRegressor
from mlpfast._gradient_check import check_gradient

__all__ = ["MLPClassifier", "MLPRegressor", "check_gradient", "show_config", "__version__"]
