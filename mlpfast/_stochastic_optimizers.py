"""Stochastic optimisers over mlpfast's flat parameter buffer.

The update itself runs in compiled code (``mlp_sgd_step`` / ``mlp_adam_step``),
once per batch inside :meth:`mlpfast._engine.Network.run_epoch`. These objects
hold the per-fit state (velocity, moments, step count) and the per-epoch logic
of scikit-learn's optimisers: learning-rate schedules and the adaptive stop.

The protocol the estimator uses:

- ``solver_code``: which compiled step runs;
- ``epoch_args()``: the keyword arguments of ``Network.run_epoch`` for one epoch;
- ``steps_done(n)``: called after an epoch that made ``n`` updates;
- ``iteration_ends(time_step)``: per-epoch schedule, ``time_step`` = samples seen;
- ``trigger_stopping(msg, verbose)``: True when training should stop.
"""

import numpy as np

from mlpfast._engine import SOLVERS


class _BaseOptimizer:
    """State shared by every optimiser: the flat buffers and the step count."""

    solver_code = None

    def __init__(self, n_params, dtype, learning_rate_init):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self._state1 = np.zeros(n_params, dtype=dtype)
        self._state2 = np.zeros(1, dtype=dtype)

    def matches(self, n_params, dtype):
        """True when the state fits a parameter buffer of this size and dtype."""
        return self._state1.shape[0] == n_params and self._state1.dtype == dtype

    def epoch_args(self):
        return dict(
            solver=self.solver_code,
            state1=self._state1,
            state2=self._state2,
            learning_rate=self.learning_rate,
            momentum=0.0,
            nesterov=False,
            beta_1=0.0,
            beta_2=0.0,
            epsilon=1.0,
            adam_t=0,
        )

    def steps_done(self, n_steps):
        """Record ``n_steps`` compiled updates."""

    def iteration_ends(self, time_step):
        """Per-epoch schedule hook; ``time_step`` is the number of samples seen."""

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDOptimizer(_BaseOptimizer):
    """SGD with momentum / Nesterov momentum and scikit-learn's learning-rate schedules.

    velocity = momentum * velocity - learning_rate * grad; params += velocity
    """

    solver_code = SOLVERS["sgd"]

    def __init__(
        self,
        n_params,
        dtype,
        learning_rate_init=0.1,
        lr_schedule="constant",
        momentum=0.9,
        nesterov=True,
        power_t=0.5,
    ):
        super().__init__(n_params, dtype, learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    @property
    def velocity(self):
        return self._state1

    def epoch_args(self):
        args = super().epoch_args()
        args.update(momentum=self.momentum, nesterov=bool(self.nesterov))
        return args

    def iteration_ends(self, time_step):
        # effective_learning_rate = learning_rate_init / (t + 1) ** power_t
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_BaseOptimizer):
    """Adam (Kingma & Ba, 2014) with scikit-learn's bias correction folded into the rate.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    params -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    """

    solver_code = SOLVERS["adam"]

    def __init__(
        self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
        epsilon=1e-8,
    ):
        super().__init__(n_params, dtype, learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self._state2 = np.zeros(n_params, dtype=dtype)

    @property
    def ms(self):
        return self._state1

    @property
    def vs(self):
        return self._state2

    def epoch_args(self):
        args = super().epoch_args()
        args.update(
            learning_rate=float(self.learning_rate_init),
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            adam_t=self.t,
        )
        return args

    def steps_done(self, n_steps):
        self.t += n_steps
