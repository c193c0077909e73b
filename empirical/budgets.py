"""Fixed budgets: the best validation metric per batch size within a fixed number of epochs or
steps, metaparameters tuned per batch size (Shallue et al. 2019, arXiv 1811.03600, section 3.2
on fixed-epoch against fixed-step budgets and section 4.8 on solution quality).

Two modes of `nqm sweep` (`SweepConfig.epoch_budget`, `SweepConfig.quality`):

- epoch budget E: every trial at batch size B trains S(B) = ceil(E N / B) steps, N the
  workload's training-set size (`Workload.n_train`), so the examples drawn, B S(B), equal E N
  rounded up to the next whole batch: E N <= B S(B) < E N + B.  Batches are drawn with
  replacement, so an "epoch" is N examples drawn, not a pass over a shuffled set.
- quality: every trial trains the same step budget S (the sweep's `budget`).

No trial stops early and there is no target.  Per trial the result is its best metric
m_i = min_k metric_i(k) over the evaluated steps k (evaluations at most 5% apart, the last at
the budget), the quantity Shallue et al. report ("best validation error within the budget").
Diverged trials are excluded, as in the steps-to-result protocol.  Per batch size the result
is m* = min_i m_i over all rounds' non-diverged trials, with a 95% percentile bootstrap
interval of that minimum over the trials (resampled with replacement, 1000 resamples seeded by
the sweep's seed and B): how much m* depends on which trials the tuning happened to draw.  It
does not include the sampling noise of the validation set itself.  The trials are the same
Sobol points as the steps-to-result sweep's, and the widening rule is the same, judged on m_i:
if the best trial's log(lr) lies in the outer 10% of the range, that side is widened by half
the range's width and `n_trials` more trials run, at most `max_widen` times.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

CONFIDENCE = 0.95
BEST_RULE = ("best trial's minimum of the metric over its evaluated steps (at most 5% apart, "
             "the last at the budget); diverged trials excluded")
INTERVAL_RULE = ("95% percentile bootstrap over the non-diverged trials of the minimum of their "
                 "best metrics")


def budget_mode(cfg) -> str | None:
    """'epochs', 'quality' or None (the steps-to-result sweep) for a SweepConfig."""
    if cfg.epoch_budget is not None:
        return "epochs"
    return "quality" if cfg.quality else None


def check_budget_fields(cfg) -> None:
    """ValueError naming the field when a SweepConfig's budget fields are bad or combined with
    options they contradict (a fixed budget has no target and trains every trial to its end)."""
    e = cfg.epoch_budget
    if e is not None:
        try:
            ok = math.isfinite(float(e)) and float(e) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"epoch_budget must be a finite number > 0, got {e}")
        if cfg.quality:
            raise ValueError("epoch_budget and quality cannot both be given (quality uses a "
                             "fixed step budget)")
        if cfg.budget is not None:
            raise ValueError("epoch_budget and budget cannot both be given (the epochs set "
                             "each batch size's steps)")
    mode = budget_mode(cfg)
    if mode is None:
        return
    name = "epoch_budget" if mode == "epochs" else "quality"
    if getattr(cfg, "targets", None) is not None:
        raise ValueError(f"{name} and targets cannot both be given (a fixed budget reports the "
                         f"best metric; it has no targets)")
    if cfg.target is not None:
        raise ValueError(f"{name} and target cannot both be given (a fixed budget reports the "
                         f"best metric; it has no target)")
    if cfg.complete_trials:
        raise ValueError(f"{name} and complete_trials cannot both be given (under a fixed "
                         f"budget every trial trains its whole budget)")


def build_target(target: float | None, epoch_budget: float | None, quality: bool):
    """The target to build a sweep's workload with.  A fixed budget has none, but the custom and
    the user's workloads need one to build: +inf stands in (training under a fixed budget
    replaces it by -inf, so no trial stops early, and the resume key records null)."""
    if target is None and (epoch_budget is not None or quality):
        return math.inf
    return target


def check_epochs_meaningful(cfg, workload) -> None:
    """An epoch budget needs a finite training set (ValueError for online data)."""
    if cfg.epoch_budget is not None and workload.n_train is None:
        raise ValueError(f"an epoch budget is not meaningful for {cfg.workload} "
                         f"(online data: every batch is fresh)")


def budget_options(cfg, workload) -> dict:
    """The resume-key entries of a fixed-budget sweep (overriding the steps-to-result ones: no
    target; under an epoch budget no step budget); {} for a steps-to-result sweep, so its key
    is unchanged."""
    mode = budget_mode(cfg)
    if mode == "epochs":
        return {"epoch_budget": float(cfg.epoch_budget), "n_train": int(workload.n_train),
                "budget": None, "target": None}
    if mode == "quality":
        return {"quality": True, "target": None}
    return {}


def epoch_steps(epochs: float, n_train: int, batch_size: int) -> int:
    """S(B) = ceil(E N / B): the fewest steps whose batches hold at least E N examples."""
    return max(1, math.ceil(epochs * n_train / batch_size))


def trial_best(eval_steps, metric) -> tuple[float | None, int | None]:
    """(min over evaluated steps of the metric, the first step where it is reached), ignoring
    steps not evaluated (NaN); (None, None) when none was."""
    m = np.asarray(metric, dtype=float)
    ok = np.flatnonzero(np.isfinite(m))
    if ok.size == 0:
        return None, None
    j = ok[np.argmin(m[ok])]
    return float(m[j]), int(eval_steps[j])


def _no_target(workload):
    """The workload with a target no metric can reach, so that no trial ever stops early."""
    return dataclasses.replace(workload, target=-math.inf)


def best_record(records: list[dict]) -> dict | None:
    """The non-diverged trial with the lowest best metric (ties: earlier round, trial)."""
    ok = [r for r in records if not r["diverged"] and r["best_metric"] is not None]
    return min(ok, key=lambda r: (r["best_metric"], r["round"], r["trial"])) if ok else None


def run_budget_batch_size(cfg, batch_size: int, records_path: str) -> list[dict]:
    """All rounds of a fixed-budget sweep at one batch size (`empirical.protocol.run_rounds`:
    resuming from the records, widening by the best metric); returns its records.  Every
    trial trains its whole budget (no target, no early stop)."""
    from empirical.population import StopRule
    from empirical.protocol import resolved_workload, run_rounds, sweep_options, train_round

    workload = resolved_workload(cfg)
    check_epochs_meaningful(cfg, workload)
    options = sweep_options(cfg, workload)
    steps = (epoch_steps(cfg.epoch_budget, workload.n_train, batch_size)
             if cfg.epoch_budget is not None else options["budget"])
    n = workload.n_train

    def one_round(rnd, lr_range, beta_range, records):
        out, res = train_round(cfg, _no_target(workload), options, batch_size, rnd,
                               lr_range, beta_range, steps, StopRule())
        for i, rec in enumerate(out):
            best, at = trial_best(res.eval_steps, res.curves[i])
            metric = rec["curve"]["metric"]
            rec.update({"steps": steps, "examples": steps * batch_size,
                        "examples_per_epoch": n,
                        "epochs": None if n is None else steps * batch_size / n,
                        "best_metric": best, "best_step": at,
                        "final_metric": float(metric[-1]) if metric else None})
        return out

    return run_rounds(cfg, batch_size, records_path, options, one_round, best_record)


def bootstrap_min_interval(values, n_resamples: int, rng: np.random.Generator,
                           level: float = CONFIDENCE) -> list[float]:
    """Percentile interval of min(values) under resampling the values with replacement."""
    v = np.asarray(values, dtype=float)
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    mins = v[idx].min(axis=1)
    a = (1 - level) / 2
    return [float(np.quantile(mins, a)), float(np.quantile(mins, 1 - a))]


def summarize_budget(cfg, records: list[dict], n_resamples: int = 1000) -> dict:
    """The summary.json record of a fixed-budget sweep: per batch size the best trial's best
    metric m* with its bootstrap interval (see the module docstring)."""
    from empirical.versions import versions

    points = []
    for b in cfg.batch_sizes:
        rs = [r for r in records if r["batch_size"] == b]
        if not rs:
            continue
        best = best_record(rs)
        ok = [r["best_metric"] for r in rs if not r["diverged"] and r["best_metric"] is not None]
        rng = np.random.default_rng([cfg.seed, b])
        points.append({
            "batch_size": b, "steps": rs[0]["steps"], "epochs": rs[0]["epochs"],
            "best_metric": best["best_metric"] if best else None,
            "interval": bootstrap_min_interval(ok, n_resamples, rng) if ok else None,
            "best_step": best["best_step"] if best else None,
            "final_metric": best["final_metric"] if best else None,
            "lr": best["lr"] if best else None, "momentum": best["momentum"] if best else None,
            "trials": len(rs), "diverged": sum(r["diverged"] for r in rs),
            "widened": max(r["round"] for r in rs) > 0, "lr_range": rs[-1]["lr_range"]})
    first = records[0] if records else {}
    return {"workload": cfg.workload, "optimizer": cfg.optimizer, "mode": budget_mode(cfg),
            "metric": first.get("metric"), "epoch_budget": cfg.epoch_budget,
            "step_budget": None if cfg.epoch_budget is not None else first.get("budget"),
            "n_train": first.get("examples_per_epoch"), "decay": cfg.decay,
            "best_metric": points, "best_metric_rule": BEST_RULE,
            "interval": {"level": CONFIDENCE, "method": INTERVAL_RULE,
                         "resamples": n_resamples,
                         "generator": f"numpy default_rng([{cfg.seed}, batch_size])"},
            "steps_rounding": ("S(B) = ceil(E N / B): E N <= B S(B) < E N + B"
                               if cfg.epoch_budget is not None else None),
            "largest_batch_size": large_batch_verdict(points),
            "n_trials": cfg.n_trials, "seed": cfg.seed, "versions": versions()}


def large_batch_verdict(points: list[dict]) -> str:
    """Whether the largest batch size reached a worse best metric than the batch size with
    the lowest m*: worse when its interval lies wholly above that one's, otherwise not
    clearly worse (its m* is the lowest, or the intervals overlap)."""
    pts = [p for p in points if p["best_metric"] is not None]
    if len(pts) < 2:
        return "not determined: fewer than two batch sizes with a result"
    big = max(pts, key=lambda p: p["batch_size"])
    best = min(pts, key=lambda p: (p["best_metric"], p["batch_size"]))
    if best is big:
        return f"largest batch size B = {big['batch_size']} not worse: it reached the best metric"
    versus = (f"{big['best_metric']:.4g} at B = {big['batch_size']} against "
              f"{best['best_metric']:.4g} at B = {best['batch_size']}")
    if big["interval"][0] > best["interval"][1]:
        return f"largest batch size worse: {versus} (intervals disjoint)"
    return f"largest batch size not clearly worse: {versus} (intervals overlap)"
