"""`nqm predict` with the models of what a real sweep measures.

Two choices beside today's model (`nqm.predict`: additive noise, the spectrum's c):

* ``noise="loss-following"``: gradient noise of least squares with Gaussian inputs and label
  noise sigma (`nqm.coupled`),

      c_i(s) = kappa (h_i^2 s_i + h_i S) + sigma^2 h_i,   S = sum_j count_j h_j s_j,  kappa = 1,

  the exact expected loss tuned per batch size (lr, and beta for momentum) by
  `nqm.coupled_tuning`.  The spectrum's c is not used: the noise follows from h, s0 and sigma.
* ``protocol_trials=N``: the simulated sweep of `nqm.first_passage` (Shallue et al. 2019,
  arXiv 1811.03600): per batch size the median over `repeats` simulated sweeps of the best of N
  Sobol trials' first evaluated crossing, with its 16th / 84th percentiles.  Its noise is the
  loss-following c_i(s) above, or with additive noise the spectrum's own c (kappa = 0; for
  c = sigma^2 h this is `CoupledNoise(sigma^2, coupling=False)`).  Randomness: one
  `numpy.random.default_rng(seed)` for all batch sizes, in order.

The kernels (numba) are imported only when the work starts, so that bad input fails fast.

Cost, bounded before any work: the loss-following tuner evaluates up to `max_steps` steps of
every row per trial point (about 40 points per batch size for SGD, 560 for momentum, the
first few at the smallest lr running the whole budget), so rows * max_steps is capped at
MAX_ROW_STEPS; the simulated sweep expands rows into single directions (rows with count > 1
become round(count) directions) and draws a (budget x directions) normal array per round, so
the directions are capped at MAX_DIRECTIONS and that array must fit in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from nqm.checks import check_budget, check_target_below_initial
from nqm.critical import estimate, lower_bound_steps
from nqm.errors import NQMInputError
from nqm.predict import PredictConfig, predict, versions
from nqm.spectrum import Spectrum, check_memory

NOISE_MODELS = ("additive", "loss-following")
LOSS_FOLLOWING_MAX_STEPS = 10**6   # the loss-following tuner's default step budget
MAX_ROW_STEPS = 2 * 10**9          # rows * max_steps of one loss-following evaluation
MAX_DIRECTIONS = 4096              # directions after count expansion in the simulated sweep
C_NOT_USED = ("the spectrum's c is not used by the loss-following model: its noise is "
              "c_i(s) = h_i^2 s_i + h_i sum_j count_j h_j s_j + sigma^2 h_i, from h, s0 and "
              "sigma")


@dataclass(frozen=True)
class Protocol:
    """The simulated sweep: `trials` Sobol trials per batch size over log lr in `lr_range`
    (and log(1 - beta) in [0.01, 1] for momentum), `budget` steps per trial, `repeats`
    simulated sweeps from `numpy.random.default_rng(seed)`."""

    trials: int
    repeats: int = 16
    seed: int = 0
    lr_range: tuple[float, ...] = (1e-3, 3.0)
    budget: int = 40000

    def __post_init__(self):
        for name in ("trials", "repeats"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise NQMInputError(f"{name} (simulated sweep) must be an integer >= 1, got {v}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise NQMInputError(f"seed must be an integer >= 0, got {self.seed}")
        lr = tuple(self.lr_range)
        if len(lr) != 2 or not all(math.isfinite(x) for x in lr) or not 0 < lr[0] < lr[1]:
            raise NQMInputError(f"lr_range must be two numbers LO,HI with 0 < LO < HI, "
                                f"got {','.join(f'{x:g}' for x in lr)}")
        check_budget(self.budget)


@dataclass(frozen=True)
class ModesConfig:
    """`nqm predict` with a noise model and optionally the simulated sweep: `base` holds the
    target, optimizer, batch sizes and step budget; `label_noise` is sigma (loss-following
    only); `protocol` None predicts the expected loss alone."""

    base: PredictConfig = field(default_factory=PredictConfig)
    noise: str = "additive"
    label_noise: float | None = None
    protocol: Protocol | None = None

    def __post_init__(self):
        if self.noise not in NOISE_MODELS:
            raise NQMInputError(f"noise must be one of {', '.join(NOISE_MODELS)}, "
                                f"got '{self.noise}'")
        if self.noise == "additive":
            if self.label_noise is not None:
                raise NQMInputError("label_noise is used only with noise 'loss-following' "
                                    "(the additive model's noise is the spectrum's c)")
        else:
            self._check_loss_following()
        if self.protocol is not None:
            self._check_protocol()

    def _check_loss_following(self):
        b = self.base
        if self.label_noise is None:
            raise NQMInputError("noise 'loss-following' needs label_noise (sigma >= 0)")
        if not (math.isfinite(self.label_noise) and self.label_noise >= 0):
            raise NQMInputError(f"label_noise must be a finite number >= 0, "
                                f"got {self.label_noise}")
        if b.optimizer not in ("sgd", "momentum"):
            raise NQMInputError(f"optimizer {b.optimizer} is not supported by the "
                                f"loss-following model: use sgd or momentum")
        if b.ema:
            raise NQMInputError("ema is not supported by the loss-following model")
        if not b.schedule.is_constant:
            raise NQMInputError(f"schedule {b.schedule.describe()} is not supported by the "
                                f"loss-following model: constant learning rates only")

    def _check_protocol(self):
        b = self.base
        if b.optimizer not in ("sgd", "momentum"):
            raise NQMInputError(f"optimizer {b.optimizer} is not supported by the simulated "
                                f"sweep: use sgd or momentum")
        if b.ema or not b.schedule.is_constant:
            raise NQMInputError("ema and schedules are not supported by the simulated sweep")

    @property
    def plain(self) -> bool:
        """True for today's `nqm predict` (additive noise, no simulated sweep)."""
        return self.noise == "additive" and self.protocol is None

    @property
    def sigma2(self) -> float:
        """sigma^2 of the loss-following model."""
        return float(self.label_noise) ** 2

    def check(self, spectrum: Spectrum) -> None:
        """Refuse, before any work, a target at or above the initial loss and work beyond the
        bounds of the module docstring (one line naming the bound)."""
        if self.noise == "additive":
            self.base.check(spectrum)
        else:
            check_target_below_initial(spectrum, self.base.target)
            work = spectrum.n_rows * self.base.max_steps
            if work > MAX_ROW_STEPS:
                raise NQMInputError(
                    f"the loss-following model would step {spectrum.n_rows} rows up to "
                    f"{self.base.max_steps} times per trial point ({work:.3g} > "
                    f"{MAX_ROW_STEPS:.3g}): use fewer rows (power:...,bins=N) or --max-steps")
        if self.protocol is not None:
            n = n_directions(spectrum)
            if n > MAX_DIRECTIONS:
                raise NQMInputError(
                    f"the simulated sweep steps every direction: this spectrum has {n} after "
                    f"count expansion, more than {MAX_DIRECTIONS}: use a spectrum of fewer "
                    f"directions (power:d=...)")
            check_memory(8.0 * self.protocol.budget * (n + 1),
                         f"the simulated sweep's noise for {n} directions",
                         "use a smaller --budget or fewer directions")


def n_directions(spectrum: Spectrum) -> int:
    """Directions of the simulated sweep: sum over rows of max(round(count), 1)."""
    return int(np.sum(np.maximum(np.rint(spectrum.count), 1)))


def tune_config(config: ModesConfig):
    """The loss-following tuner's `CoupledTuneConfig` (its default search)."""
    from nqm.coupled_tuning import CoupledTuneConfig

    b = config.base
    return CoupledTuneConfig(b.target, b.optimizer, b.precond, b.batch_sizes, b.max_steps)


def protocol_config(config: ModesConfig):
    """`nqm.first_passage`'s `ProtocolConfig` of the simulated sweep."""
    from nqm.first_passage import ProtocolConfig

    b, p = config.base, config.protocol
    return ProtocolConfig(b.target, b.optimizer, b.precond, b.batch_sizes, n_trials=p.trials,
                          lr_range=tuple(p.lr_range), budget=p.budget, repeats=p.repeats)


def protocol_noise(config: ModesConfig):
    """The simulated sweep's noise: loss-following with sigma^2, or the spectrum's c."""
    from nqm.coupled import CoupledNoise
    from nqm.spectrum_noise import SpectrumNoise

    if config.noise == "loss-following":
        return CoupledNoise(config.sigma2, coupling=True)
    return SpectrumNoise()


def coupled_scales(spectrum: Spectrum, sigma2: float) -> tuple[float, float]:
    """(B_noise, B_simple) at the initial point with the loss-following noise c_i(s0)."""
    w, h, s0 = spectrum.count, spectrum.h, spectrum.s0
    c0 = h**2 * s0 + h * float(np.sum(w * h * s0)) + sigma2 * h
    return Spectrum(h, c0, s0, w).noise_scales()


def _critical(points: list[dict]) -> dict:
    est = estimate([p["batch_size"] for p in points], [p["steps"] for p in points])
    return {"critical_batch_size": dict(est.values), "s_min": est.s_min, "e_min": est.e_min,
            "critical_batch_size_flags": est.flags()}


def loss_following(spectrum: Spectrum, config: ModesConfig,
                   progress: Callable[[int], None] | None = None) -> dict:
    """The loss-following expected-loss prediction, shaped like `nqm.predict.predict`'s."""
    from nqm.coupled import CoupledNoise
    from nqm.coupled_tuning import tune_one

    noise, tcfg = CoupledNoise(config.sigma2, coupling=True), tune_config(config)
    floor = noise.additive(spectrum)       # c_i(s) >= sigma^2 h_i: the bound's noise
    rows = []
    for b in config.base.batch_sizes:
        p = tune_one(spectrum, noise, tcfg, int(b))
        p.update({"ema": None, "horizon": None,
                  "lower_bound": lower_bound_steps(spectrum.h, floor, spectrum.count,
                                                   config.base.target, p["batch_size"])})
        rows.append(p)
        if progress:
            progress(1)
    crit = _critical(rows)
    b_noise, b_simple = coupled_scales(spectrum, config.sigma2)
    crit["critical_batch_size"].update({"b_noise": b_noise, "b_simple": b_simple})
    return {"points": rows, **crit, "search_space": asdict(tcfg)}


def simulated_sweep(spectrum: Spectrum, config: ModesConfig,
                    progress: Callable[[int], None] | None = None) -> dict:
    """The simulated sweep's record: `first_passage` per batch size, one generator in order
    (the same numbers as one call over all batch sizes)."""
    from nqm.first_passage import first_passage

    start = time.perf_counter()
    pcfg, noise = protocol_config(config), protocol_noise(config)
    rng = np.random.default_rng(config.protocol.seed)
    rows = []
    for b in config.base.batch_sizes:
        rows += first_passage(spectrum, noise, replace(pcfg, batch_sizes=(int(b),)), rng)
        if progress:
            progress(1)
    return {"points": rows, **_critical(rows), "noise": config.noise,
            "directions": n_directions(spectrum), **asdict(config.protocol),
            "one_minus_beta_range": list(pcfg.one_minus_beta_range),
            "max_widen": pcfg.max_widen, "eval_ratio": pcfg.eval_ratio,
            "statistic": "median over repeats of the best trial's first evaluated step at or "
                         "below the target; steps_q16/q84 its 16th/84th percentiles",
            "elapsed_s": time.perf_counter() - start}


def predict_modes(spectrum: Spectrum, config: ModesConfig,
                  progress: Callable[[int], None] | None = None) -> dict:
    """The record of `nqm predict --noise ... [--protocol-trials N]`: today's record for the
    plain case; otherwise the expected-loss prediction of the chosen noise model plus, with
    a protocol, the simulated sweep under `protocol` (progress: one unit per batch size and
    model)."""
    start = time.perf_counter()
    config.check(spectrum)
    if config.noise == "additive":
        record = predict(spectrum, config.base, progress=progress)
    else:
        record = _loss_following_record(spectrum, config, progress)
    if config.plain:
        return record
    record["noise"] = {"model": config.noise}
    if config.noise == "additive":
        record["noise"]["note"] = ("additive noise: the spectrum's c (the simulated sweep "
                                   "with kappa = 0)")
    else:
        record["noise"].update({"label_noise": config.label_noise, "sigma2": config.sigma2,
                                "kappa": 1.0, "spectrum_c_used": False, "note": C_NOT_USED})
    if config.protocol is not None:
        record["protocol"] = simulated_sweep(spectrum, config, progress)
    record["elapsed_s"] = time.perf_counter() - start
    return record


def _loss_following_record(spectrum: Spectrum, config: ModesConfig, progress) -> dict:
    b = config.base
    return {"target": b.target, "optimizer": b.optimizer, "precond": b.precond,
            "ema_tuned": False, "schedule": b.schedule.describe(), "max_steps": b.max_steps,
            **loss_following(spectrum, config, progress),
            "spectrum": {"rows": spectrum.n_rows, "dimension": spectrum.dimension,
                         "initial_loss": spectrum.initial_loss(), **spectrum.meta},
            "lower_bound_formula": "sum(count*sigma^2) / (2*target*B)  (Cramer-Rao with "
                                   "the noise floor c = sigma^2 h, ignores s0)",
            "critical_batch_size_definitions": {
                "mccandlish": "B_crit = E_min/S_min of the fit S = S_min + E_min/B "
                              "(relative least squares)",
                "overhead_20pct": "B where S*B exceeds perfect scaling from the smallest B "
                                  "by 20%",
                "b_noise": "tr(H Sigma) / E[G'HG] at theta_0, Sigma with c_i(s0)",
                "b_simple": "tr(Sigma) / E|G|^2 at theta_0, Sigma with c_i(s0)"},
            "versions": versions()}
