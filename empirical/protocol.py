"""Steps to result per batch size with metaparameters tuned per batch size (Shallue et al. 2019,
arXiv 1811.03600, section 3; the Tuning Playbook's widening rule).

For each batch size B: `n_trials` trials drawn by a scrambled, seeded Sobol sequence over
log(lr) and, for momentum / Nesterov / Adam, log(1 - beta) (beta = beta1 for Adam); each trial
trains until the metric beats the target or the budget ends (`empirical.population`);
steps-to-result(B) = the minimum over non-diverged trials of the first evaluated step that beats
the target.  Since only that minimum matters, a round stops at the first evaluation where some
trial beats the target, or at the best step count of the earlier rounds (trials still running
are recorded with `"beaten": true`); `complete_trials` trains every trial to the target or the
budget instead.  If the best trial's log(lr) lies in the outer 10% of the search range, that
side of the range is widened by half its width and `n_trials` more trials run, at most
`max_widen` times; the record says so.  With several targets (`targets`) the smallest is
the one trained for; each record carries its `crossings` of every target and the summary gives
each target's steps per batch size (`empirical.targets`, which proves that the records cut at
the stop step determine them).

Records: one JSON line per finished trial (append-only), keyed by batch size, round, trial
index and every option that can change a record (`sweep_options`: workload, optimizer, seed,
data, model, trials, budget, target (the smallest of several), decay, the initial search
ranges, max_widen, complete_trials), with its versions, wall time and result.  A rerun reads
back the records whose options all match and skips finished rounds (of a round cut short it
trains only the missing trials), so a crash loses at most the round in progress.  A file cut
by a crash mid-write is mended by `empirical.records.repair_records`; `claim_directory`
refuses an output directory that holds results of other options, and `directory_lock` one
that another process is using.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import qmc

from empirical.budgets import budget_options, build_target, check_budget_fields
from empirical.catalog import CUSTOM_MODELS, WORKLOADS, is_user_workload
from empirical.records import append_records, canonical, file_sha256, read_records
from empirical.targets import by_target, check_targets, crossings
from empirical.train_config import DECAYS, OPTIMIZERS, TrainConfig
from empirical.versions import versions

__all__ = ["SweepConfig", "run_batch_size", "summarize", "sweep_options", "versions"]

OUTER = 0.10
DEVICES = ("cpu", "cuda")


def _positive_range(name: str, value, upper: float = math.inf) -> None:
    """ValueError naming `name` unless `value` is None or (lo, hi) with 0 < lo < hi <= upper."""
    if value is None:
        return
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (lo, hi), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi <= upper):
        bound = "" if math.isinf(upper) else f" <= {upper:g}"
        raise ValueError(f"{name} must satisfy 0 < lo < hi{bound}, got ({lo:g}, {hi:g})")


@dataclass(frozen=True)
class SweepConfig:
    """One sweep: `workload` (a name of `empirical.catalog.WORKLOADS`, or the user's .py file
    or dotted module, `empirical.user_workload`) trained with `optimizer`
    at each of `batch_sizes`, `n_trials` Sobol trials per round over log(lr) in `lr_range` and
    log(1 - beta) in `one_minus_beta_range` (None: the workload's defaults), at most `max_widen`
    widening rounds; `budget` steps and `target` (None: the workload's); `decay` of the learning
    rate; `targets` (strictly increasing) are read from the same records
    (`empirical.targets`): the smallest is the one trained for and becomes `target`;
    `complete_trials` trains every trial to its end instead of stopping a round at the
    first trial to reach the target; `data` and `model` describe the custom workload; `device`
    is where the trials train.  Every field is checked on construction (ValueError naming
    it)."""

    workload: str
    optimizer: str
    batch_sizes: tuple[int, ...]
    n_trials: int = 16
    seed: int = 0
    budget: int | None = None
    target: float | None = None
    targets: tuple[float, ...] | None = None   # several targets; the smallest is `target`
    lr_range: tuple[float, float] | None = None
    one_minus_beta_range: tuple[float, float] | None = None
    max_widen: int = 2
    complete_trials: bool = False
    decay: str = "constant"
    data: str | None = None       # custom workload: the user's .npz
    model: str | None = None      # custom workload: linear | logreg | mlp
    device: str = "cpu"           # where the trials train: cpu | cuda
    epoch_budget: float | None = None   # fixed-epoch budget (empirical.budgets)
    quality: bool = False               # best metric within the step budget (empirical.budgets)

    def __post_init__(self):
        if self.workload not in WORKLOADS and not is_user_workload(self.workload):
            raise ValueError(f"workload must be one of {', '.join(WORKLOADS)} or a .py file "
                             f"or dotted module name, got '{self.workload}'")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got '{self.device}'")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got '{self.optimizer}'")
        if not self.batch_sizes:
            raise ValueError("batch_sizes must not be empty")
        bad = next((b for b in self.batch_sizes if int(b) != b or b < 1), None)
        if bad is not None:
            raise ValueError(f"batch_sizes must be integers >= 1, got {bad}")
        if int(self.n_trials) != self.n_trials or self.n_trials < 2:
            raise ValueError(f"n_trials must be an integer >= 2, got {self.n_trials}")
        if self.budget is not None and (int(self.budget) != self.budget or self.budget < 1):
            raise ValueError(f"budget must be an integer >= 1 or None, got {self.budget}")
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise ValueError(f"target must be a finite number > 0 or None, got {self.target}")
        if self.targets is not None:
            targets = check_targets(self.targets)
            if self.target is not None and self.target != targets[0]:
                raise ValueError(f"target must be the smallest of targets ({targets[0]:g}) "
                                 f"or None, got {self.target:g}")
            object.__setattr__(self, "targets", targets)
            object.__setattr__(self, "target", targets[0])
        _positive_range("lr_range", self.lr_range)
        _positive_range("one_minus_beta_range", self.one_minus_beta_range, upper=1.0)
        if int(self.max_widen) != self.max_widen or self.max_widen < 0:
            raise ValueError(f"max_widen must be an integer >= 0, got {self.max_widen}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got '{self.decay}'")
        if self.model is not None and self.model not in CUSTOM_MODELS:
            raise ValueError(f"model must be one of {', '.join(CUSTOM_MODELS)} or None, "
                             f"got '{self.model}'")
        check_budget_fields(self)


def sobol_points(n: int, dims: int, seed: int) -> np.ndarray:
    """n scrambled Sobol points in [0, 1)^dims (seeded)."""
    return qmc.Sobol(d=dims, scramble=True, seed=seed).random(n)


def trial_settings(cfg: SweepConfig, batch_size: int, rnd: int, lr_range, beta_range):
    """Metaparameters of round `rnd` at one batch size: Sobol over the log ranges."""
    dims = 1 if cfg.optimizer == "sgd" else 2
    u = sobol_points(cfg.n_trials, dims, seed=cfg.seed * 1_000_003 + batch_size * 101 + rnd)
    lo, hi = np.log(lr_range)
    lrs = np.exp(lo + u[:, 0] * (hi - lo))
    if dims == 1:
        return lrs, None
    blo, bhi = np.log(beta_range)
    betas = 1.0 - np.exp(blo + u[:, 1] * (bhi - blo))
    return lrs, betas


def resolved_workload(cfg: SweepConfig):
    """The workload of a sweep, its target overridden by cfg.target."""
    from empirical.workloads import get

    target = build_target(cfg.target, cfg.epoch_budget, cfg.quality)
    workload = get(cfg.workload, data=cfg.data, model=cfg.model, target=target,
                   device=cfg.device)
    if target is not None:
        workload = type(workload)(**{**workload.__dict__, "target": target})
    return workload


def sweep_options(cfg: SweepConfig, workload=None) -> dict:
    """Every option that can change a record, resolved against the workload's defaults (so a
    default left out and the same value given agree), as JSON values: the key a resumed run
    must match.  The custom workload's data and the user's workload file enter by content
    (sha256), not by path.  Batch
    sizes are not part of it: a sweep may add batch sizes later."""
    workload = workload or resolved_workload(cfg)
    custom = cfg.workload == "custom"
    default_lr = workload.search["lr_adam" if cfg.optimizer == "adam" else "lr"]
    return canonical({
        "workload": cfg.workload, "optimizer": cfg.optimizer, "seed": cfg.seed,
        "data_sha256": file_sha256(cfg.data) if custom else None,
        "model": (cfg.model or "logreg") if custom else None,
        "n_trials": cfg.n_trials, "budget": int(cfg.budget or workload.budget),
        "target": float(workload.target), "decay": cfg.decay,
        "initial_lr_range": [float(x) for x in (cfg.lr_range or default_lr)],
        "one_minus_beta_range": [float(x) for x in (cfg.one_minus_beta_range
                                                    or workload.search["one_minus_momentum"])],
        "max_widen": cfg.max_widen, "complete_trials": bool(cfg.complete_trials),
        **source_options(cfg.workload, cfg.device), **budget_options(cfg, workload)})


def source_options(workload: str, device: str) -> dict:
    """Key entries beyond the built-in workloads' (absent for them on the CPU, so that their
    keys stay what they were): the user's workload file by content, charlm's text by content
    (Python's own source files, which differ between Python versions), and a device other
    than the CPU (results can differ in the last bits between devices)."""
    from empirical.user_workload import source_sha256

    extra = {}
    if is_user_workload(workload):
        extra["workload_sha256"] = source_sha256(workload)
    if workload == "charlm":
        from empirical.workloads import stdlib_text

        extra["text_sha256"] = hashlib.sha256(stdlib_text().encode()).hexdigest()
    if device != "cpu":
        extra["device"] = device
    return extra


_OPTION_KEYS = ("workload", "optimizer", "seed", "data_sha256", "model", "n_trials", "budget",
                "target", "decay", "initial_lr_range", "one_minus_beta_range", "max_widen",
                "complete_trials")
# present only where `source_options` or `budget_options` add them
_SOURCE_KEYS = ("workload_sha256", "text_sha256", "device", "epoch_budget", "n_train", "quality")


def recorded_options(records: list[dict]) -> list[dict]:
    """The distinct sweep options recorded in `records` (keys a record lacks, as records of
    older versions do, stay absent)."""
    out = []
    for r in records:
        o = {k: r[k] for k in (*_OPTION_KEYS, *_SOURCE_KEYS) if k in r}
        if o not in out:
            out.append(o)
    return out


def done_trials(path: Path, batch_size: int, options: dict) -> dict:
    """(round, trial) -> the first record of `batch_size` in `path` whose options all match."""
    done: dict[tuple[int, int], dict] = {}
    for r in read_records(path):
        if r.get("batch_size") == batch_size and all(r.get(k) == v for k, v in options.items()):
            done.setdefault((r.get("round"), r.get("trial")), r)
    return done


def widened_range(lr_range: list[float], best_lr: float) -> list[float] | None:
    """The lr range widened by half its width on the side where `best_lr` lies in the outer
    OUTER fraction (in log lr), or None when it lies inside."""
    lo, hi = np.log(lr_range)
    x = (math.log(best_lr) - lo) / (hi - lo)
    if OUTER <= x <= 1 - OUTER:
        return None
    half = 0.5 * (hi - lo)
    return ([float(np.exp(lo - half)), lr_range[1]] if x < OUTER
            else [lr_range[0], float(np.exp(hi + half))])


def run_rounds(cfg: SweepConfig, batch_size: int, records_path: str, options: dict,
               train_round, best) -> list[dict]:
    """All rounds at one batch size, resuming from the records; returns its records.

    `train_round(rnd, lr_range, beta_range, records)` trains round `rnd` and returns one record
    per trial; `best(records)` is the trial whose lr decides widening (None: no widening).  A
    record counts as done only when its batch size and every entry of `options` match; of each
    (round, trial) the first such record counts, and a round cut short by a crash is trained
    again but only its missing trials are appended."""
    path = Path(records_path)
    done = done_trials(path, batch_size, options)
    lr_range = list(options["initial_lr_range"])
    beta_range = list(options["one_minus_beta_range"])
    records: list[dict] = []
    for rnd in range(cfg.max_widen + 1):
        prior = {t: r for (rd, t), r in done.items() if rd == rnd}
        if set(prior) == set(range(cfg.n_trials)):
            round_records = [prior[i] for i in range(cfg.n_trials)]
        else:
            trained = train_round(rnd, list(lr_range), beta_range, records)
            round_records = [prior.get(i, r) for i, r in enumerate(trained)]
            append_records(path, [r for r in round_records if r["trial"] not in prior])
        records += round_records
        top = best(records)
        wider = None if top is None else widened_range(lr_range, top["lr"])
        if wider is None:
            break
        lr_range = wider
    return records


def train_round(cfg: SweepConfig, workload, options: dict, batch_size: int, rnd: int, lr_range,
                beta_range, budget: int, stop) -> tuple[list[dict], object]:
    """Round `rnd`'s Sobol trials trained together for at most `budget` steps under `stop`;
    one record per trial with what every mode records (the options, the trial's settings,
    whether it diverged, its evaluated metric curve) and the PopulationResult, from which the
    mode adds its results."""
    import torch

    from empirical.population import train_population

    lrs, betas = trial_settings(cfg, batch_size, rnd, lr_range, beta_range)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    train = TrainConfig(cfg.optimizer, tuple(lrs.tolist()),
                        None if betas is None else tuple(betas.tolist()),
                        budget=budget, decay=cfg.decay)
    res = train_population(workload, train, batch_size, seed=cfg.seed + 1000 * rnd, stop=stop)
    wall = time.perf_counter() - t0
    out = []
    for i in range(cfg.n_trials):
        curve = res.curves[i]
        ok = np.isfinite(curve)
        out.append({
            **options, "batch_size": batch_size, "data": cfg.data, "round": rnd, "trial": i,
            "metric": workload.metric_name, "lr": float(lrs[i]),
            "momentum": None if betas is None else float(betas[i]), "lr_range": list(lr_range),
            "diverged": res.diverged[i], "diverged_at": res.diverged_at[i],
            "steps_run": res.steps_run, "wall_s_population": wall,
            "curve": {"steps": [s for s, o in zip(res.eval_steps, ok) if o],
                      "metric": curve[ok].tolist()},
            "versions": versions()})
    return out, res


def run_batch_size(cfg: SweepConfig, batch_size: int, records_path: str) -> list[dict]:
    """All rounds of steps to result at one batch size (`run_rounds`); returns its records.
    A round stops at its first trial to beat the target, or at the earlier rounds' best step
    count (unless `complete_trials`)."""
    from empirical.population import StopRule

    workload = resolved_workload(cfg)
    options = sweep_options(cfg, workload)
    budget = options["budget"]
    targets = cfg.targets or (options["target"],)

    def one_round(rnd, lr_range, beta_range, records):
        earlier = _best(records)
        stop = StopRule(stop_on_first=not cfg.complete_trials,
                        stop_at=None if cfg.complete_trials or earlier is None
                        else earlier["steps"])
        out, res = train_round(cfg, workload, options, batch_size, rnd, lr_range, beta_range,
                               budget, stop)
        for i, rec in enumerate(out):
            rec.update({"steps": res.steps[i], "reached": res.steps[i] is not None,
                        "beaten": (res.steps[i] is None and not res.diverged[i]
                                   and res.steps_run < budget)})
            rec["crossings"] = crossings(rec, targets)
        return out

    return run_rounds(cfg, batch_size, records_path, options, one_round, _best)


def _best(records: list[dict]) -> dict | None:
    ok = [r for r in records if r["reached"] and not r["diverged"]]
    return min(ok, key=lambda r: (r["steps"], r["round"], r["trial"])) if ok else None


def summarize(cfg: SweepConfig, records: list[dict], n_resamples: int = 1000) -> dict:
    """The summary.json record: per batch size the best trial, and the critical batch sizes
    computed with the same code as `nqm fit` (`nqm.critical.estimate`): the judgement flags
    and residual-bootstrap 95% intervals with `n_resamples` resamples seeded by the sweep's
    seed.  With several `targets`, also `targets` and `by_target` (`empirical.targets`): the
    same per target, the best trial per batch size chosen for that target."""
    from nqm.critical import estimate

    points = []
    target = None
    for b in cfg.batch_sizes:
        rs = [r for r in records if r["batch_size"] == b]
        if not rs:
            continue
        target = rs[0]["target"]
        best = _best(rs)
        points.append({
            "batch_size": b, "steps": best["steps"] if best else None,
            "reached": best is not None, "lr": best["lr"] if best else None,
            "momentum": best["momentum"] if best else None, "trials": len(rs),
            "diverged": sum(r["diverged"] for r in rs),
            "widened": max(r["round"] for r in rs) > 0,
            "lr_range": rs[-1]["lr_range"]})
    est = estimate([p["batch_size"] for p in points], [p["steps"] for p in points],
                   n_resamples=n_resamples, seed=cfg.seed)
    out = {"workload": cfg.workload, "optimizer": cfg.optimizer, "target": target,
           "points": points, "critical_batch_size": dict(est.values), "s_min": est.s_min,
           "e_min": est.e_min, "confidence_95": est.interval,
           "critical_batch_size_flags": est.flags(),
           "bootstrap": {"resamples": n_resamples, "seed": cfg.seed,
                         "method": "residual (relative residuals)"},
           "n_trials": cfg.n_trials, "seed": cfg.seed, "versions": versions()}
    if cfg.targets:
        out["targets"] = list(cfg.targets)
        out["by_target"] = by_target(cfg.batch_sizes, records, cfg.targets, n_resamples,
                                     cfg.seed)
    return out
