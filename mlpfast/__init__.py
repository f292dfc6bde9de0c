"""mlpfast: scikit-learn's MLPClassifier and MLPRegressor with a compiled engine.

>>> from mlpfast import MLPClassifier, MLPRegressor, show_config
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that finish a region early spin while they wait for the next
# one; when another process holds a core, spinning starves the very thread
# being waited for and an epoch can take 100x longer. libgomp reads its wait
# policy once, when it loads, which is when mlpfast._engine is imported: ask
# for passive waiting unless the user chose a policy, and leave the
# environment as it was afterwards.
_policy_was_set = "OMP_WAIT_POLICY" in _os.environ
if not _policy_was_set:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from mlpfast import _engine  # noqa: F401
finally:
    if not _policy_was_set:
        del _os.environ["OMP_WAIT_POLICY"]

from mlpfast._config import show_config
from mlpfast._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "show_config", "__version__"]
