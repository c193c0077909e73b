"""What a training run needs besides the workload: optimizer, learning rates, momentum, budget,
learning-rate decay.  One frozen `TrainConfig` serves the population trainer
(`empirical.population`, one learning rate and momentum per trial) and the plain torch.optim
loop (`empirical.plain`, one trial), so both resolve defaults the same way.

Updates (PyTorch's conventions; lr_t = lr * m_t, m_t = 1 for `constant`, and for `linear`
m_t = 1 - (1 - final) (t - 1) / (budget - 1), falling from 1 at step 1 to `final` at the budget):
    sgd        p <- p - lr_t g
    momentum   b <- beta b + g;             p <- p - lr_t b
    nesterov   b <- beta b + g;             p <- p - lr_t (g + beta b)
    adam       m <- beta m + (1 - beta) g;  v <- beta2 v + (1 - beta2) g^2;
               p <- p - lr_t (m / (1 - beta^t)) / (sqrt(v / (1 - beta2^t)) + eps)
beta = `momentum` (Adam's beta1); when not given it is DEFAULT_MOMENTUM = 0.9 for momentum,
Nesterov and Adam (torch.optim.Adam's default beta1); plain SGD has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
DECAYS = ("constant", "linear")
DEFAULT_MOMENTUM = 0.9


def _floats(name: str, values) -> tuple[float, ...]:
    """`values` (a number or a sequence) as a tuple of floats; ValueError naming `name`."""
    seq = values if isinstance(values, Sequence) else [values]
    try:
        out = tuple(float(v) for v in seq)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a list of numbers, got {values!r}") \
            from None
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings of one or more trials (`lr` and `momentum`: one entry per trial, or
    one number for all).  `budget` None means the workload's own budget; `final` is the
    fraction of the learning rate left at the budget under `linear` decay."""

    optimizer: str
    lr: tuple[float, ...] | float
    momentum: tuple[float, ...] | float | None = None
    beta2: float = 0.999
    eps: float = 1e-8
    budget: int | None = None
    decay: str = "constant"
    final: float = 0.0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got '{self.optimizer}'")
        lr = _floats("lr", self.lr)
        bad = next((x for x in lr if not (math.isfinite(x) and x > 0)), None)
        if bad is not None:
            raise ValueError(f"lr must be finite and > 0, got {bad}")
        object.__setattr__(self, "lr", lr)
        if self.momentum is not None:
            mom = _floats("momentum", self.momentum)
            if len(mom) == 1:
                mom = mom * len(lr)
            if len(mom) != len(lr):
                raise ValueError(f"momentum must have one entry per lr ({len(lr)}), "
                                 f"got {len(mom)}")
            bad = next((x for x in mom if not 0.0 <= x < 1.0), None)
            if bad is not None:
                raise ValueError(f"momentum must be in [0, 1), got {bad}")
            object.__setattr__(self, "momentum", mom)
        if not 0.0 <= self.beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be finite and > 0, got {self.eps}")
        if self.budget is not None and (int(self.budget) != self.budget or self.budget < 1):
            raise ValueError(f"budget must be an integer >= 1 or None, got {self.budget}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be 'constant' or 'linear', got '{self.decay}'")
        if not (math.isfinite(self.final) and self.final >= 0):
            raise ValueError(f"final must be finite and >= 0, got {self.final}")

    @property
    def trials(self) -> int:
        """The number of trials P = len(lr)."""
        return len(self.lr)

    @property
    def betas(self) -> tuple[float, ...]:
        """beta per trial: `momentum`, or DEFAULT_MOMENTUM where not given (0 for plain SGD)."""
        if self.momentum is not None and self.optimizer != "sgd":
            return self.momentum
        return (0.0 if self.optimizer == "sgd" else DEFAULT_MOMENTUM,) * self.trials

    def lr_factor(self, t: int, budget: int) -> float:
        """m_t at step t (1-based) of a run of `budget` steps (see the module docstring)."""
        if self.decay == "constant":
            return 1.0
        return 1.0 - (1.0 - self.final) * (t - 1) / max(budget - 1, 1)

    def one(self, trial: int) -> TrainConfig:
        """The configuration of trial `trial` alone."""
        mom = None if self.momentum is None else self.momentum[trial]
        return TrainConfig(self.optimizer, self.lr[trial], mom, self.beta2, self.eps,
                           self.budget, self.decay, self.final)
