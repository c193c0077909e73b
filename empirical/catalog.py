"""What each built-in workload is, declared without building it (no torch, no data): its
metric, the target the metric must reach (<=) and the step budget.  `nqm workloads` prints
this table; `empirical.workloads` builds every workload with these values."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkloadInfo:
    """A built-in workload's metric, target, step budget and the floor of its training loss
    (the loss no parameters can go below: linreg's label noise 1/2 sigma^2, sigma = 0.5)."""

    metric_name: str
    target: float
    budget: int
    loss_floor: float = 0.0


CATALOG: dict[str, WorkloadInfo] = {
    "linreg": WorkloadInfo("excess loss", 0.02, 20000, loss_floor=0.125),
    "logreg-digits": WorkloadInfo("validation error", 0.06, 3000),
    "mlp-digits": WorkloadInfo("validation error", 0.04, 3000),
    "cnn-digits": WorkloadInfo("validation error", 0.03, 3000),
    "charlm": WorkloadInfo("validation cross-entropy", 2.0, 4000),
}

# the user's own data (`--data`, `--model`, `--target`): step budget and models
CUSTOM_BUDGET = 3000
CUSTOM_MODELS = ("linear", "logreg", "mlp")

WORKLOADS = (*CATALOG, "custom")

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def is_user_workload(name: str) -> bool:
    """Whether `name` names the user's own workload (`empirical.user_workload`): a path
    ending in .py or a dotted module name."""
    return name.endswith(".py") or _DOTTED.fullmatch(name) is not None
