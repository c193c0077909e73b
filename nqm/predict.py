"""The `nqm predict` pipeline: tuned steps-to-target per batch size and critical batch sizes."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

import nqm
from nqm.checks import (
    DEFAULT_MAX_STEPS,
    check_batch_sizes,
    check_budget,
    check_target,
    check_target_below_initial,
)
from nqm.critical import estimate, lower_bound_steps
from nqm.optimizer import check_kind, check_precond
from nqm.schedule import Schedule
from nqm.search_space import SearchSpace
from nqm.spectrum import Spectrum, check_memory, working_bytes_per_row
from nqm.threads import check_threads


@dataclass(frozen=True)
class PredictConfig:
    """What `predict` tunes: the target loss, optimizer (with H^-p preconditioning `precond`,
    iterate averaging `ema`, learning-rate `schedule`), the batch sizes, the step budget, the
    metaparameter search space and the thread count; checked on construction (NQMInputError
    naming the field)."""

    target: float = 0.01
    optimizer: str = "sgd"
    precond: float = 0.0
    ema: bool = False
    schedule: Schedule = field(default_factory=Schedule)
    batch_sizes: tuple[int, ...] = tuple(2**i for i in range(21))
    max_steps: int = DEFAULT_MAX_STEPS
    space: SearchSpace = field(default_factory=SearchSpace)
    threads: int | None = None   # None: `nqm.threads.choose_threads`

    def __post_init__(self):
        check_target(self.target)
        check_budget(self.max_steps)
        check_kind(self.optimizer)
        check_precond(self.precond)
        check_batch_sizes(self.batch_sizes)
        check_threads(self.threads)

    @property
    def state_size(self) -> int:
        """Numbers per direction in the iteration: theta, + velocity, + average."""
        return (1 if self.optimizer == "sgd" else 2) + bool(self.ema)

    def check(self, spectrum: Spectrum) -> None:
        """Refuse, before any tuning, a target the spectrum starts at or below and a spectrum
        whose working arrays would not fit in memory."""
        check_target_below_initial(spectrum, self.target)
        name = self.optimizer + (" + EMA" if self.ema else "")
        check_memory(spectrum.n_rows * working_bytes_per_row(self.state_size),
                     f"tuning {name} on {spectrum.n_rows} spectrum rows",
                     "use fewer rows: power:...,bins=N or a binned spectrum file")


DEFAULT_TARGET = 0.01   # Zhang et al.'s target for their default model


def implied_target(spectrum: Spectrum) -> tuple[float, str | None]:
    """The target when none is given: for a measured spectrum whose metadata carry the
    train-loss rule f = (l_T - l_floor)/(l_0 - l_floor), T = f * L0 with L0 the spectrum's
    initial loss (and a sentence saying so); otherwise DEFAULT_TARGET."""
    f = spectrum.meta.get("target_fraction")
    if isinstance(f, int | float) and 0 < f < 1:
        l0 = spectrum.initial_loss()
        return f * l0, (f"target {f * l0:.4g} from the measurement's train-loss rule: "
                        f"f = {f:.4g} of the spectrum's initial loss {l0:.4g}")
    return DEFAULT_TARGET, None


def versions() -> dict:
    """Versions of what computed a record (read from package metadata: imports nothing)."""
    from importlib.metadata import version

    return {"nqm": nqm.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": version("scipy"), "numba": version("numba")}


def predict(spectrum: Spectrum, config: PredictConfig,
            progress: Callable[[int], None] | None = None) -> dict:
    """Tune every batch size and assemble the JSON record of `nqm predict --json`."""
    from nqm.tuning import tune

    start = time.perf_counter()
    config.check(spectrum)
    sched = None if config.schedule.is_constant else config.schedule
    points = tune(spectrum, config.optimizer, config.batch_sizes, config.target,
                  precond=config.precond, ema=config.ema, schedule=sched,
                  max_steps=config.max_steps, space=config.space, progress=progress,
                  threads=config.threads)
    est = estimate([p.batch_size for p in points], [p.steps for p in points])
    crit, s_min, e_min = dict(est.values), est.s_min, est.e_min
    b_noise, b_simple = spectrum.noise_scales()
    crit.update({"b_noise": b_noise, "b_simple": b_simple})
    rows = []
    for p in points:
        rows.append({
            "batch_size": p.batch_size, "steps": p.steps, "reached": p.reached, "lr": p.lr,
            "momentum": p.momentum, "ema": p.ema, "at_edge": p.at_edge, "edges": list(p.edges),
            "lr_limit": p.lr_limit, "horizon": p.horizon,
            "lower_bound": lower_bound_steps(spectrum.h, spectrum.c, spectrum.count,
                                             config.target, p.batch_size),
        })
    return {
        "target": config.target, "optimizer": config.optimizer, "precond": config.precond,
        "ema_tuned": config.ema, "schedule": config.schedule.describe(),
        "max_steps": config.max_steps, "points": rows, "critical_batch_size": crit,
        "s_min": s_min, "e_min": e_min, "critical_batch_size_flags": est.flags(),
        "spectrum": {"rows": spectrum.n_rows, "dimension": spectrum.dimension,
                     "initial_loss": spectrum.initial_loss(), **spectrum.meta},
        "search_space": asdict(config.space),
        "lower_bound_formula": "sum(count*c/h) / (2*target*B)  (Cramer-Rao, ignores s0)",
        "critical_batch_size_definitions": {
            "mccandlish": "B_crit = E_min/S_min of the fit S = S_min + E_min/B "
                          "(relative least squares)",
            "overhead_20pct": "B where S*B exceeds perfect scaling from the smallest B by 20%",
            "b_noise": "tr(H Sigma) / E[G'HG] at theta_0",
            "b_simple": "tr(Sigma) / E|G|^2 at theta_0",
        },
        "versions": versions(), "elapsed_s": time.perf_counter() - start,
    }
