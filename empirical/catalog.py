"""What each built-in workload is, declared without building it (no torch, no data): its
metric, the target the metric must reach (<=) and the step budget.  `nqm workloads` prints
this table; `empirical.workloads` builds every workload with these values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkloadInfo:
    """A built-in workload's metric name, target (the metric must reach <= it), budget."""

    metric_name: str
    target: float
    budget: int


CATALOG: dict[str, WorkloadInfo] = {
    "linreg": WorkloadInfo("excess loss", 0.02, 20000),
    "logreg-digits": WorkloadInfo("validation error", 0.06, 3000),
    "mlp-digits": WorkloadInfo("validation error", 0.04, 3000),
    "cnn-digits": WorkloadInfo("validation error", 0.03, 3000),
    "charlm": WorkloadInfo("validation cross-entropy", 2.0, 4000),
}

# the user's own data (`--data`, `--model`, `--target`): step budget and models
CUSTOM_BUDGET = 3000
CUSTOM_MODELS = ("linear", "logreg", "mlp")

WORKLOADS = (*CATALOG, "custom")
