"""Calibrate the NQM of a measured spectrum against a measured sweep, and judge it against the
null model.

The NQM's step counts have two free scalars (theory notes, section 5; Zhang et al. 2019):
L(k) = D(k) + N(k)/B with D linear in s0 and N linear in c, so scaling (s0, c, target) together
changes no step count, and c -> kappa c is exactly B -> B / kappa.  The calibrated model is the
measured spectrum with

    target = f * L0,   L0 = 1/2 sum_i count_i h_i s0_i (the spectrum's initial loss),
    c      -> kappa * c,

its learning rate (and momentum) tuned per batch size as everywhere in `nqm`.

Fit (objective: least squares in log steps over the fit batch sizes):
    min_{f, kappa}  sum_{B in fit}  (log S_nqm(B; f, kappa) - log S_measured(B))^2
within F_BOUNDS and KAPPA_BOUNDS.  With two fit batch sizes B_s < B_l it has (to the integer
resolution of steps) a zero: S_nqm falls with f and grows with kappa, and at B_l (large B,
little noise) mostly through f, at B_s (small B) through kappa, so alternating one-dimensional
root finding (`fit`) solves it to LOG_TOL in log f and log kappa.
With one fit batch size only f is fitted, and kappa = kappa0: 1 (the measured noise), or with
`CalibrateConfig.noise_scale` = "loss-matched" the measured noise in the quadratic's loss units,
kappa0 = L0 / (ell_0 - ell_floor) (`nqm.noise_units`); the zero-run prediction (no fit) takes the
same kappa0 (the path model: each segment's noise in its own loss units, in every mode).
A fitted value that cannot meet its point inside its bounds stays on the bound and is flagged.
The NQM's step budget is BUDGET_FACTOR times the largest measured step count over the fitted
and the transfer sweeps, so that every sweep can be met.  The tuner's search, and with it where
the root finding stops inside the integer resolution of the steps, depends a little on the
budget: logreg-digits SGD fitted alone gives f = 0.1675, kappa = 0.401, and with its momentum
sweep as transfer f = 0.1698, kappa = 0.413, the predicted steps differing by at most one
(B_crit 51.5 and 52.2).  A record is reproduced with the same transfer sweeps.

What is predicted (`CalibrateConfig.predict`): "expected" (the default) is the first step where
the expected loss E L(k) <= target, as everywhere in `nqm`; "first-passage" is what a sweep
measures, the best of N trials' first evaluated crossing, approximated by the first evaluated
step where the q-quantile of one run's loss is <= target, lr (and beta) tuned for it
(`nqm.passage_quantile`; q = `quantile`, or from the sweep's trials per batch size by
`nqm.passage_quantile.quantile_for_trials`).

The path model (`CalibrateConfig.path`, `nqm.path`, `nqm.path_model`): instead of one
quadratic, a chain of the quadratics measured at checkpoints of the reference run, each carrying
the loss between consecutive checkpoints; f is the last segment's fraction and kappa scales
every segment's noise; L0 is then the last segment's initial loss.  The mean-field Adam
(`--proxy adam=adam`) runs on the path too (`nqm.adam_path`).

Null model (McCandlish et al. 2018): the hyperbola S(B) = S_min + E_min / B through the same fit
points (two points determine it; with one there is none).  Errors are judged only on batch sizes
not used in the fit: the worst max(pred/meas, meas/pred).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scipy.optimize import brentq

from nqm.critical import estimate
from nqm.errors import NQMInputError
from nqm.noise_line import NoiseLine
from nqm.noise_log import NoiseLog, judge_tracked
from nqm.noise_units import (
    base_noise_scale,
    check_noise_scale,
    loss_drop_of,
    loss_matched_path,
    segment_scales,
)
from nqm.path import LossPath
from nqm.spectrum import Spectrum
from nqm.sweep_data import DEFAULT_PROXY, SweepData

F_BOUNDS = (1e-10, 1.0)
KAPPA_BOUNDS = (1e-4, 1e4)
LOG_TOL = 1e-3        # root finding stops within this in log f and log kappa
BUDGET_FACTOR = 100   # the NQM's step budget: this many times the largest measured step count
LOSS_BUDGET_FACTOR = 10  # ... with loss-following noise or mean-field Adam (each step costs
                         # O(rows) there, with no closed form)
FEW_TRIALS = 16       # fewer trials per batch size than this: the measured minimum is noisy
METRIC_FAR = 2.0      # spectrum checkpoint metric this factor or more from the sweep target
FIT_MISS = 1.1        # a fit point predicted this factor or more off: the fit did not meet it
PREDICTIONS = ("expected", "first-passage")


@dataclass(frozen=True)
class CalibrateConfig:
    """Options of `calibrate`.

    fit_on: "ends" (smallest and largest reached batch size), "smallest", explicit batch sizes
    (one or two), or "none" (no fit: the zero-run prediction with the train-loss rule's f and
    kappa = kappa0 of `noise_scale`).  proxy: sweep optimizer -> (NQM optimizer, exponent p).
    noise_line: None for the constant noise kappa c; a `nqm.noise_line.NoiseLine` for noise
    that follows the loss, kappa c (L + l_noise) / (L_ref + l_noise) (`nqm.loss_model`).
    path: None for the one quadratic of the spectrum; a `nqm.path.LossPath` for the chain of
    quadratics along the reference run (`nqm.path_model`; the spectrum then only names the
    workload and the reference point).  threads: the single quadratic's tuner threads
    (`nqm.tuning.tune`); the path model runs on one, since its search is Python holding the
    GIL (two threads measured no faster).  noise_scale: "measured" or "loss-matched"
    (`nqm.noise_units`): for one quadratic kappa where it is not fitted (one fit batch size,
    or none), 1 or L0 / (ell_0 - ell_floor); for the path model every segment's noise scaled by
    its own rho_j in every mode (kappa, fitted or 1, multiplies that).
    """

    fit_on: str | tuple[int, ...] = "ends"
    proxy: tuple[tuple[str, tuple[str, float]], ...] = tuple(DEFAULT_PROXY.items())
    threads: int | None = None
    predict: str = "expected"
    quantile: float | None = None
    noise_line: NoiseLine | None = None
    path: LossPath | None = None
    noise_scale: str = "measured"

    def __post_init__(self):
        check_noise_scale(self.noise_scale)
        if self.predict not in PREDICTIONS:
            raise NQMInputError(f"predict must be one of {', '.join(PREDICTIONS)}, "
                                f"got {self.predict!r}")
        if self.quantile is not None and not 0.0 < self.quantile < 1.0:
            raise NQMInputError(f"quantile must be in (0, 1), got {self.quantile}")
        if isinstance(self.fit_on, str):
            if self.fit_on not in ("ends", "smallest", "none"):
                raise NQMInputError(f"fit_on must be 'ends', 'smallest', 'none' or batch sizes, "
                                    f"got {self.fit_on!r}")
        elif not 1 <= len(self.fit_on) <= 2 or any(int(b) != b or b < 1 for b in self.fit_on):
            raise NQMInputError(f"fit_on takes one or two batch sizes >= 1, got {self.fit_on}")
        elif len(set(self.fit_on)) < len(self.fit_on):
            raise NQMInputError(f"fit_on names batch size {self.fit_on[0]} twice")
        if self.noise_line is not None and self.predict != "expected":
            raise NQMInputError("loss-following noise predicts the expected loss only "
                                "(predict='expected')")
        if self.noise_line is not None and not isinstance(self.noise_line, NoiseLine):
            raise NQMInputError(f"noise_line must be a NoiseLine or None, got "
                                f"{type(self.noise_line).__name__}")
        if self.path is not None and not isinstance(self.path, LossPath):
            raise NQMInputError(f"path must be a LossPath or None, got "
                                f"{type(self.path).__name__}")
        if self.path is not None and (self.predict != "expected" or self.noise_line is not None):
            raise NQMInputError("the path model predicts the expected loss with constant noise "
                                "only (predict='expected', noise_line=None)")

    def model(self, spectrum: Spectrum, kind: str, precond: float, max_steps: int,
              passage=None):
        """The tuned NQM of `kind`: constant noise (its expected loss, or with `passage` what
        the sweep measures), the noise line's, or the path's."""
        if self.path is not None and kind == "adam":
            from nqm.adam_path import AdamPathModel

            return AdamPathModel(self.path, max_steps)
        if self.path is not None:
            from nqm.path_model import PathModel

            return PathModel(self.path, kind, precond, max_steps)
        if self.noise_line is None:
            return _Model(spectrum, kind, precond, max_steps, self.threads, passage)
        from nqm.loss_model import LossFollowingModel

        return LossFollowingModel(spectrum, kind, precond, max_steps, self.noise_line)

    def nqm_optimizer(self, optimizer: str) -> tuple[str, float]:
        """(kind, p) of the NQM optimizer standing in for the sweep's `optimizer`."""
        proxy = dict(self.proxy)
        if optimizer not in proxy:
            raise NQMInputError(f"no NQM counterpart for optimizer '{optimizer}' "
                                f"(give one with --proxy {optimizer}=sgd|momentum|adam|precond:P)")
        return proxy[optimizer]


@dataclass(frozen=True)
class Fitted:
    """The fitted scalars, which bounds they sit on, and the step counts at the fit points."""

    fraction: float
    kappa: float
    at_bound: tuple[str, ...]
    fit_steps: dict = field(default_factory=dict)


def parse_fit_on(text: str) -> str | tuple[int, ...]:
    """'ends' | 'smallest' | 'none' | 'B1[,B2]' (the --fit-on option)."""
    text = text.strip()
    if text in ("ends", "smallest", "none"):
        return text
    try:
        sizes = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise NQMInputError(f"bad --fit-on '{text}': give ends, smallest, none or B1[,B2]") \
            from None
    return CalibrateConfig(fit_on=sizes).fit_on


def fit_batch_sizes(sweep: SweepData, fit_on) -> tuple[int, ...]:
    """The batch sizes the scalars are fitted on (each must have reached the target)."""
    reached = [p.batch_size for p in sweep.reached]
    if fit_on == "ends":
        return (reached[0], reached[-1])
    if fit_on == "smallest":
        return (reached[0],)
    if fit_on == "none":
        return ()
    sizes = tuple(sorted({int(b) for b in fit_on}))
    for b in sizes:
        if sweep.point(b).steps is None:
            raise NQMInputError(f"fit batch size {b} did not reach the target in {sweep.source}")
    return sizes


class _Model:
    """Tuned NQM steps of one optimizer on the spectrum with (f, kappa), memoised."""

    def __init__(self, spectrum: Spectrum, kind: str, precond: float, max_steps: int,
                 threads: int | None, passage=None):
        self.spectrum, self.kind, self.precond = spectrum, kind, precond
        self.max_steps, self.threads, self.passage = max_steps, threads, passage
        self.l0 = spectrum.initial_loss()
        self._memo: dict = {}
        self._passage_table = None

    def points(self, fraction: float, kappa: float, batch_sizes) -> list:
        from nqm.tuning import tune

        key = (round(math.log(fraction), 9), round(math.log(kappa), 9), tuple(batch_sizes))
        if key not in self._memo:
            if self.passage is not None:
                self._memo[key] = self._table().tune(fraction * self.l0, batch_sizes, kappa,
                                                     self.passage.quantile)
                return self._memo[key]
            s = self.spectrum
            scaled = Spectrum(h=s.h, c=kappa * s.c, s0=s.s0, count=s.count, meta=s.meta)
            if self.kind == "adam":
                from nqm.adam_tuning import tune_adam

                self._memo[key] = tune_adam(scaled, list(batch_sizes), fraction * self.l0,
                                            max_steps=self.max_steps)
            else:
                self._memo[key] = tune(scaled, self.kind, list(batch_sizes),
                                       fraction * self.l0, precond=self.precond,
                                       max_steps=self.max_steps, threads=self.threads)
        return self._memo[key]

    def _table(self):
        """The first-passage predictor's moments on this spectrum, computed once (to the next
        power of ten of the step budget, so that the calibration's modes share one table)."""
        if self._passage_table is None:
            from nqm.passage_quantile import table_for

            budget = 10 ** math.ceil(math.log10(self.max_steps))
            self._passage_table = table_for(self.spectrum, self.kind, self.precond, budget,
                                            self.passage)
        return self._passage_table

    def curve_sizes(self, sizes) -> tuple[int, ...]:
        """The batch sizes of the plotted curve (`curve_batch_sizes`)."""
        return curve_batch_sizes(sizes)

    def log_steps(self, fraction: float, kappa: float, batch_size: int) -> float:
        """The fit's objective at one batch size (`log_steps_of`)."""
        return log_steps_of(self.points(fraction, kappa, (batch_size,))[0], self.max_steps)


def log_steps_of(point, max_steps: int) -> float:
    """The fit's objective at a tuned point: log of its steps (0.5 for none), log of 10 x the
    budget where the target is not reached (so the fit is pulled towards reaching it)."""
    return math.log(point.steps if point.steps else 0.5) if point.reached else \
        math.log(10.0 * max_steps)


def _solve(fn, lo: float, hi: float, tol: float = LOG_TOL) -> tuple[float, str | None]:
    """A root of the monotone fn on [lo, hi] (log space), or the bound nearest one."""
    flo, fhi = fn(lo), fn(hi)
    if flo == 0.0:
        return lo, None
    if fhi == 0.0:
        return hi, None
    if (flo > 0) == (fhi > 0):
        return (lo, "lower") if abs(flo) < abs(fhi) else (hi, "upper")
    return brentq(fn, lo, hi, xtol=tol / 10), None


def fit(model: _Model, sweep: SweepData, fit_on: tuple[int, ...], kappa0: float = 1.0) -> Fitted:
    """(f, kappa) of the module docstring; kappa = kappa0 when fitting on one batch size.

    Two batch sizes B_s < B_l: nested one-dimensional root finding.  For each log f the noise
    scale kappa(f) that meets S(B_s) is found; then log f is solved so that (f, kappa(f)) also
    meets S(B_l).  (Alternating the two one-dimensional fits converges slowly along the narrow
    valley that momentum's step counts leave.)"""
    target = {b: math.log(sweep.point(b).steps) for b in fit_on}
    fx = tuple(math.log(v) for v in F_BOUNDS)
    fy = tuple(math.log(v) for v in KAPPA_BOUNDS)
    b_s, b_l = fit_on[0], fit_on[-1]
    tol = getattr(model, "LOG_TOL", LOG_TOL)
    if len(fit_on) == 1:
        x, edge_f = _solve(lambda u: model.log_steps(math.exp(u), kappa0, b_s) - target[b_s],
                           *fx, tol)
        y, edge_k = math.log(kappa0), None
    else:
        inner: dict = {}

        def kappa_of(u):
            if u not in inner:
                inner[u] = _solve(lambda v: model.log_steps(math.exp(u), math.exp(v), b_s)
                                  - target[b_s], *fy, tol)
            return inner[u]

        x, edge_f = _solve(lambda u: model.log_steps(math.exp(u), math.exp(kappa_of(u)[0]), b_l)
                           - target[b_l], *fx, tol)
        y, edge_k = kappa_of(x)
    at_bound = tuple(f"{name} at {edge} bound" for name, edge in
                     (("target_fraction", edge_f), ("noise_scale", edge_k)) if edge)
    steps = {b: math.exp(model.log_steps(math.exp(x), math.exp(y), b)) for b in fit_on}
    return Fitted(math.exp(x), math.exp(y), at_bound, steps)


def null_model(sweep: SweepData, fit_on: tuple[int, ...]) -> tuple[float, float] | None:
    """(S_min, E_min) of the hyperbola S_min + E_min / B through the two fit points."""
    if len(fit_on) != 2:
        return None
    (b1, b2), (s1, s2) = fit_on, [sweep.point(b).steps for b in fit_on]
    e_min = (s1 - s2) / (1.0 / b1 - 1.0 / b2)
    return s1 - e_min / b1, e_min


def _ratio(pred, meas) -> float | None:
    """max(pred/meas, meas/pred); None when either is missing (the callers list those)."""
    if meas is None or pred is None:
        return None
    return max(pred / meas, meas / pred)


def _effective_lr(lr, beta, averaged: bool = False) -> float | None:
    """lr / (1 - beta): heavy ball's step in the long run (SGD: lr itself); lr itself where
    the momentum is an average (`averaged`: Adam's m = beta1 m + (1 - beta1) g)."""
    return None if lr is None else lr / (1.0 - (0.0 if averaged else (beta or 0.0)))


def _worst(values) -> float | None:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _crit(batch_sizes, steps) -> dict:
    est = estimate(batch_sizes, steps)
    return {**dict(est.values), "s_min": est.s_min, "e_min": est.e_min,
            "extrapolated": list(est.extrapolated), "not_determined": dict(est.not_determined)}


def predict_sweep(model: _Model, fitted: Fitted, sweep: SweepData, fit_on, null) -> dict:
    """Per-point predictions (NQM and null), errors off the fit points, critical batch sizes."""
    sizes = [p.batch_size for p in sweep.points]
    tuned = {t.batch_size: t for t in model.points(fitted.fraction, fitted.kappa, sizes)}
    averaged = getattr(model, "kind", None) == "adam"   # both sides' lr then is Adam's
    rows = []
    for p in sweep.points:
        t = tuned[p.batch_size]
        pred_null = None if null is None else max(null[0] + null[1] / p.batch_size, 1.0)
        rows.append({"batch_size": p.batch_size, "measured": p.steps,
                     "predicted": t.steps if t.reached else None, "null_model": pred_null,
                     "used_in_fit": p.batch_size in fit_on, "lr_measured": p.lr,
                     "lr_predicted": t.lr, "momentum_measured": p.momentum,
                     "momentum_predicted": t.momentum,
                     "lr_effective_measured": _effective_lr(p.lr, p.momentum, averaged),
                     "lr_effective_predicted": _effective_lr(t.lr, t.momentum, averaged),
                     "trials": p.trials, "widened": p.widened,
                     "error_nqm": _ratio(t.steps if t.reached else None, p.steps),
                     "error_null": None if null is None else _ratio(pred_null, p.steps)})
    held_out = [r for r in rows if not r["used_in_fit"] and r["measured"] is not None]
    curve_b = model.curve_sizes(sizes)
    curve = [{"batch_size": t.batch_size, "steps": t.steps if t.reached else None,
              "lr": t.lr, "momentum": t.momentum}
             for t in model.points(fitted.fraction, fitted.kappa, curve_b)]
    crit_null = None
    if null is not None:
        crit_null = _crit(sizes, [r["null_model"] for r in rows])
        crit_null["mccandlish"] = (null[1] / null[0] if null[0] > 0 and null[1] > 0 else None)
    return {"points": rows, "curve": curve,
            "critical_batch_size": {"measured": _crit(sizes, [p.steps for p in sweep.points]),
                                    "predicted": _crit(sizes, [r["predicted"] for r in rows]),
                                    "null_model": crit_null},
            "error": {"nqm_worst": _worst(r["error_nqm"] for r in held_out),
                      "null_worst": None if null is None else
                      _worst(r["error_null"] for r in held_out),
                      "held_out_batch_sizes": [r["batch_size"] for r in held_out],
                      "nqm_unreached": [r["batch_size"] for r in held_out
                                        if r["predicted"] is None]}}


def curve_batch_sizes(sizes) -> tuple[int, ...]:
    """Every power of two from half the smallest to twice the largest batch size (for plots)."""
    lo = max(int(math.log2(min(sizes))) - 1, 0)
    hi = int(math.ceil(math.log2(max(sizes)))) + 1
    return tuple(2**k for k in range(lo, hi + 1))


def closer(error: dict) -> str | None:
    """Which model predicted the held-out batch sizes better ('nqm', 'null', 'tie')."""
    a, b = error["nqm_worst"], error["null_worst"]
    if error.get("nqm_unreached"):
        return "null" if b is not None else None
    if a is None or b is None:
        return None
    return "tie" if math.isclose(a, b, rel_tol=1e-9) else ("nqm" if a < b else "null")


def sweep_warnings(sweep: SweepData, spectrum: Spectrum) -> list[str]:
    """What makes this comparison less trustworthy than it looks."""
    out = []
    metric = spectrum.meta.get("metric")
    if isinstance(metric, int | float) and metric > 0 and not (
            1 / METRIC_FAR < metric / sweep.target < METRIC_FAR):
        out.append(f"the spectrum was measured where the metric is {metric:.4g}, far from the "
                   f"sweep's target {sweep.target:g}: measure it where the reference run meets "
                   f"the sweep's target")
    for p in sweep.points:
        if p.trials and p.trials < FEW_TRIALS:
            out.append(f"{sweep.optimizer} B = {p.batch_size}: {p.trials} trials (< {FEW_TRIALS}); "
                       f"its best step count is noisy")
        if p.widened:
            out.append(f"{sweep.optimizer} B = {p.batch_size}: the lr range was widened")
    return out


def sweep_trials(sweep: SweepData) -> int:
    """The sweep's trials per batch size (the median over its batch sizes)."""
    from statistics import median_low

    return int(median_low([p.trials for p in sweep.points if p.trials] or [0]))


def passage_config(config: CalibrateConfig, sweep: SweepData):
    """The first-passage predictor's settings for this sweep (None: predict the expected loss).
    The quantile is `config.quantile` or the rule for the sweep's trials per batch size."""
    if config.predict != "first-passage":
        return None
    from nqm.passage_quantile import PassageConfig, quantile_for_trials

    q = config.quantile if config.quantile is not None else \
        quantile_for_trials(sweep_trials(sweep))
    return PassageConfig(quantile=q)


def check_same_workload(spectrum: Spectrum, sweep: SweepData) -> None:
    """Refuse a sweep of another workload than the one the spectrum was measured on."""
    workload = spectrum.meta.get("workload")
    if workload is not None and workload != sweep.workload:
        raise NQMInputError(f"the spectrum was measured on workload '{workload}' but "
                            f"{sweep.source} is a sweep of '{sweep.workload}'")


def check_transfer(sweep: SweepData, transfer: tuple[SweepData, ...]) -> None:
    """Refuse a transfer sweep that the fitted (f, kappa) cannot stand for: another workload,
    another target (f is the fraction for `sweep`'s target), the fitted sweep's own optimizer,
    or an optimizer given twice."""
    seen = {sweep.optimizer: sweep.source}
    for t in transfer:
        if t.workload != sweep.workload:
            raise NQMInputError(f"transfer sweep {t.source} is of workload '{t.workload}', "
                                f"not '{sweep.workload}'")
        if not math.isclose(t.target, sweep.target, rel_tol=1e-9):
            raise NQMInputError(f"transfer sweep {t.source} has target {t.target:g}, not the "
                                f"fitted sweep's {sweep.target:g} (f is fitted for one target)")
        if t.optimizer in seen:
            raise NQMInputError(f"transfer sweep {t.source} is of optimizer '{t.optimizer}', "
                                f"as is {seen[t.optimizer]}: transfer predicts the sweeps of "
                                f"other optimizers, one each")
        seen[t.optimizer] = t.source


def calibrate(spectrum: Spectrum, sweep: SweepData, config: CalibrateConfig = CalibrateConfig(),
              transfer: tuple[SweepData, ...] = (), f_rule: float | None = None,
              noise_log: NoiseLog | None = None, loss_drop: float | None = None) -> dict:
    """Fit (f, kappa) on `sweep`, predict it and every `transfer` sweep (other optimizers, same
    workload, no refit); the record of `nqm calibrate --json` (module docstring).  With a
    tracked `noise_log`, also its B_simple as a further predictor of the measured B_crit
    (McCandlish et al.: B_crit ~ B_simple; `nqm.noise_log.judge_tracked`).  loss_drop:
    ell_0 - ell_floor of the loss-matched noise scale (default: from the spectrum's metadata)."""
    for s in (sweep, *transfer):
        check_same_workload(spectrum, s)
    check_transfer(sweep, transfer)
    path = config.path is not None
    if config.predict != "expected" or config.noise_line is not None or path:
        for s in (sweep, *transfer):
            kind = config.nqm_optimizer(s.optimizer)[0]
            if kind not in ("sgd", "momentum", "precond") + (("adam",) if path else ()):
                what = ("first-passage" if config.predict != "expected" else
                        "the path model" if path else "loss-following noise")
                raise NQMInputError(f"{what} models sgd, momentum"
                                    + (", precond and adam" if path else " and precond")
                                    + f" stand-ins only, not '{kind}' (for sweep {s.source})")
    fit_on = fit_batch_sizes(sweep, config.fit_on)
    scales = None
    if config.path is not None and config.noise_scale != "measured":
        scales = segment_scales(config.path)
        config = replace(config, path=loss_matched_path(config.path, scales))
    if f_rule is None:
        f_rule = config.path.last_rule if config.path is not None else \
            spectrum.meta.get("target_fraction")
    largest = max(p.steps for s in (sweep, *transfer) for p in s.reached)

    def budget(kind):   # the step budget of an NQM optimizer's model
        recurrent = config.noise_line is not None or kind == "adam"
        return int((LOSS_BUDGET_FACTOR if recurrent else BUDGET_FACTOR) * largest)

    kind, precond = config.nqm_optimizer(sweep.optimizer)
    model = config.model(spectrum, kind, precond, budget(kind), passage_config(config, sweep))
    kappa0 = 1.0 if len(fit_on) == 2 or config.path is not None else base_noise_scale(
        config.noise_scale, model.l0, loss_drop_of(spectrum.meta) if loss_drop is None
        else loss_drop)   # two fit points fit kappa; a path carries rho_j in its segments
    if fit_on:
        fitted = fit(model, sweep, fit_on, kappa0)
    elif f_rule is None:
        raise NQMInputError(
            "a prediction without fit needs the target fraction of the train-loss rule ("
            + ("the last two checkpoints' train losses give none in (0, 1)" if config.path
               is not None else "the spectrum's metadata 'target_fraction'") + ")")
    else:
        fitted = Fitted(float(f_rule), kappa0, ())
    null = null_model(sweep, fit_on)
    main = predict_sweep(model, fitted, sweep, fit_on, null)
    record = {
        "workload": sweep.workload, "optimizer": sweep.optimizer, "target": sweep.target,
        "nqm_optimizer": {"kind": kind, "precond": precond},
        "fit_on": list(fit_on),
        "fitted": {"target_fraction": fitted.fraction, "target_fraction_rule": f_rule,
                   "noise_scale": fitted.kappa, "at_bound": list(fitted.at_bound),
                   "nqm_target": fitted.fraction * model.l0, "nqm_initial_loss": model.l0},
        "objective": "least squares of log steps over the fit batch sizes",
        "bounds": {"target_fraction": list(F_BOUNDS), "noise_scale": list(KAPPA_BOUNDS)},
        "null_model_fit": None if null is None else {"s_min": null[0], "e_min": null[1]},
        **main, "closer": closer(main["error"]),
        "warnings": sweep_warnings(sweep, spectrum),
        "transfer": [],
    }
    if config.noise_scale != "measured":
        record["fitted"]["noise_scale_rule"] = {
            "rule": config.noise_scale, "kappa0": None if len(fit_on) == 2 else kappa0,
            **({} if scales is None else {"segment_scales": scales})}
    if config.predict == "first-passage":
        record["prediction"] = {"predict": config.predict,
                                "quantile": model.passage.quantile,
                                "trials": sweep_trials(sweep)}
    if config.noise_line is not None:
        record["noise"] = {"model": "constant" if math.isinf(config.noise_line.l_noise)
                           else "loss-following", **config.noise_line.as_dict()}
    if config.path is not None:
        record["path"] = {**config.path.as_dict(), "segment_steps": {
            str(p.batch_size): p.segment_steps
            for p in model.points(fitted.fraction, fitted.kappa,
                                  [q.batch_size for q in sweep.points])}}
    if noise_log is not None:
        record["tracked_b_simple"] = judge_tracked(noise_log, sweep.target,
                                                   main["critical_batch_size"])
    for t in transfer:
        t_kind, t_pre = config.nqm_optimizer(t.optimizer)
        t_model = config.model(spectrum, t_kind, t_pre, budget(t_kind),
                               passage_config(config, t))
        t_main = predict_sweep(t_model, fitted, t, (), None)
        record["transfer"].append({"optimizer": t.optimizer,
                                   "nqm_optimizer": {"kind": t_kind, "precond": t_pre},
                                   **t_main, "warnings": sweep_warnings(t, spectrum)})
    from nqm.predict import versions

    record["versions"] = versions()
    record["spectrum"] = {"rows": spectrum.n_rows, "dimension": spectrum.dimension,
                          "initial_loss": spectrum.initial_loss(),
                          **{k: v for k, v in spectrum.meta.items()
                             if isinstance(v, str | int | float | bool)}}
    return record


def fit_misses(record: dict) -> list[str]:
    """The fit points that the fitted NQM does not meet (a value stopped on its bound, or a
    point the NQM cannot reach): the held-out errors are then not those of a fit."""
    out = []
    for p in record["points"]:
        if not p["used_in_fit"]:
            continue
        if p["predicted"] is None:
            out.append(f"the fit does not reach its own point B = {p['batch_size']} "
                       f"(measured {p['measured']})")
        elif (off := max(p["predicted"] / p["measured"], p["measured"] / p["predicted"])) \
                >= FIT_MISS:
            out.append(f"the fit misses its own point B = {p['batch_size']}: NQM "
                       f"{p['predicted']} against {p['measured']} measured ({off:.3g}x)")
    return out


def summary_line(record: dict) -> str:
    """One sentence: which model was closer on the held-out batch sizes."""
    e = record["error"]
    unreached = e.get("nqm_unreached") or []
    missing = (f"the NQM does not reach B = {', '.join(map(str, unreached))}"
               if unreached else "")
    if e["null_worst"] is None:
        if missing:
            return f"no null model (one fit point): {missing}"
        return ("no null model (one fit point): the NQM's worst held-out error is "
                f"{e['nqm_worst']:.3g}x" if e["nqm_worst"] is not None else
                "nothing held out to judge")
    if missing:
        return (f"closer on the held-out batch sizes: the null hyperbola ({missing}; null "
                f"worst error {e['null_worst']:.3g}x)")
    who = {"nqm": "the NQM", "null": "the null hyperbola", "tie": "neither (a tie)"}
    digits = 3     # enough digits that two different errors print differently
    while digits < 9 and record["closer"] != "tie" and \
            f"{e['nqm_worst']:.{digits}g}" == f"{e['null_worst']:.{digits}g}":
        digits += 1
    return (f"closer on the held-out batch sizes: {who[record['closer']]} (worst error NQM "
            f"{e['nqm_worst']:.{digits}g}x, null {e['null_worst']:.{digits}g}x)")
