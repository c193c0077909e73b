"""The `nqm fit` pipeline: S_min, E_min and the critical batch sizes of measured steps.

S(B) = S_min + E_min / B (McCandlish et al. 2018, arXiv 1812.06162, eq. 2.11) is fitted on
relative residuals; B_crit = E_min / S_min, the 20%-overhead batch size and residual-bootstrap
intervals come from `nqm.critical.estimate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nqm.critical import estimate
from nqm.errors import NQMInputError


@dataclass(frozen=True)
class FitConfig:
    """Options of `fit`: the bootstrap's resamples (0: no interval) and seed."""

    bootstrap: int = 1000   # residual-bootstrap resamples
    seed: int = 0           # of the bootstrap

    def __post_init__(self):
        if int(self.bootstrap) != self.bootstrap or self.bootstrap < 0:
            raise NQMInputError(f"bootstrap must be an integer >= 0, got {self.bootstrap}")


def fit(batch_sizes, steps, config: FitConfig) -> dict:
    """The record of `nqm fit --json` for steps S (None: not reached) at batch sizes B."""
    est = estimate(batch_sizes, steps, n_resamples=config.bootstrap, seed=config.seed)
    if est.s_min is None:
        raise NQMInputError("need reached steps at two or more batch sizes")
    return {"points": [{"batch_size": bb, "steps": ss, "reached": ss is not None}
                       for bb, ss in zip(batch_sizes, steps)],
            "critical_batch_size": dict(est.values), "s_min": est.s_min, "e_min": est.e_min,
            "confidence_95": est.interval, "critical_batch_size_flags": est.flags(),
            "bootstrap": {"resamples": config.bootstrap, "seed": config.seed,
                          "method": "residual (relative residuals)"}}
