"""The `nqm simulate` pipeline: the exact expected loss curve of one configuration.

E[L_k] = (1/2) sum_i count_i h_i E[theta_{k,i}^2] is propagated exactly by the per-direction
second-moment recursion of Zhang et al. 2019 (arXiv 1907.04164, eq. 4-6; `nqm.dynamics`);
optionally beside a Monte Carlo mean of sampled runs, the first step with E[L_k] <= target and,
for a stable constant learning rate, the steady state E[L_inf].
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nqm.checks import check_batch_size
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig
from nqm.schedule import Schedule
from nqm.spectrum import Spectrum, check_memory, working_bytes_per_row


@dataclass(frozen=True)
class SimulateConfig:
    """One configuration to simulate (`simulate`), validated field by field."""

    optimizer: OptimizerConfig
    batch_size: float
    n_steps: int
    schedule: Schedule = field(default_factory=Schedule)
    horizon: int | None = None       # schedule horizon (None: n_steps)
    target: float | None = None      # also the first step with E[L_k] <= target
    mc_runs: int = 0                 # also the mean of this many sampled runs
    seed: int = 0                    # of the Monte Carlo runs: np.random.default_rng(seed)
    points: int = 2000               # steps reported (log-spaced when fewer than all; 0 = all)

    def __post_init__(self):
        check_batch_size(self.batch_size)
        for name in ("n_steps", "mc_runs"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise NQMInputError(f"{name} must be an integer >= 0, got {getattr(self, name)}")

    def check(self, spectrum: Spectrum) -> None:
        """Refuse a spectrum whose working arrays (and Lyapunov solve) would not fit in memory."""
        m = (1 if self.optimizer.kind == "sgd" else 2) + (self.optimizer.ema is not None)
        check_memory(spectrum.n_rows * (working_bytes_per_row(m) + 24 * m**4),
                     f"simulating {self.optimizer.kind} on {spectrum.n_rows} spectrum rows",
                     "use fewer rows: power:...,bins=N or a binned spectrum file")


def report_steps(n_steps: int, points: int) -> list[int]:
    """Every step 0..n_steps, or about `points` log-spaced ones (always 0 and n_steps)."""
    if points <= 0 or n_steps + 1 <= points:
        return list(range(n_steps + 1))
    ks = np.unique(np.round(np.geomspace(1, n_steps + 1, points)).astype(int) - 1)
    return sorted(set(ks.tolist()) | {0, n_steps})


def display_steps(ks: list[int], n_steps: int, lines: int = 12) -> list[int]:
    """About `lines` log-spaced steps for the printed table, each one of the computed `ks`
    (the computed step nearest each log-spaced step)."""
    show = set()
    for k in report_steps(n_steps, lines):
        i = bisect.bisect_left(ks, k)
        near = [ks[j] for j in (i - 1, i) if 0 <= j < len(ks)]
        show.add(min(near, key=lambda x: abs(x - k)))
    return sorted(show)


def simulate(spectrum: Spectrum, config: SimulateConfig,
             warn: Callable[[str], None] | None = None) -> dict:
    """The record of `nqm simulate --json`: `steps`, `loss` (E[L_k] at those steps; inf/nan
    where it diverges), and `steps_to_target`, `mc_*`, `steady_state` when they apply.
    `warn` hears that the learning rate is beyond the stability limit."""
    from nqm.closed_form import Modes  # the kernels, once the input is known to be good
    from nqm.dynamics import expected_loss, monte_carlo
    from nqm.steps import steps_to_target

    config.check(spectrum)
    opt, sched, n = config.optimizer, config.schedule, config.n_steps
    ks = report_steps(n, config.points)
    loss = expected_loss(spectrum, opt, config.batch_size, ks, sched, config.horizon)
    result = {"steps": ks, "loss": loss.tolist(), "batch_size": config.batch_size,
              "config": opt.__dict__, "schedule": sched.describe(), "target": config.target}
    modes = Modes.build(spectrum, opt) if sched.is_constant else None
    stable = modes.stable if modes is not None else None
    if stable is False and warn is not None:
        warn("warning: this learning rate is beyond the stability limit; the loss diverges")
    if config.target is not None:
        r = steps_to_target(spectrum, opt, config.batch_size, config.target, max_steps=max(n, 1),
                            schedule=None if sched.is_constant else sched,
                            horizon=config.horizon or n)[0]
        result["steps_to_target"] = r.steps
    if config.mc_runs:
        mean, se = monte_carlo(spectrum, opt, config.batch_size, n, config.mc_runs,
                               np.random.default_rng(config.seed), sched, config.horizon)
        result.update({"mc_steps": ks, "mc_mean": mean[ks].tolist(), "mc_se": se[ks].tolist(),
                       "mc_runs": config.mc_runs, "seed": config.seed})
    if sched.is_constant and stable:
        result["steady_state"] = modes.steady_state(config.batch_size)
    return result
