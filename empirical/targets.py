"""Several targets from one sweep (Shallue et al. 2019, arXiv 1811.03600, section 4: steps to
result for different goals, and the feasible region of metaparameters).

A sweep with targets T_1 < T_2 < ... < T_n of a lower-is-better metric trains for the hardest,
T_1 (rounds stop on the first trial to beat it, widening follows its best trial).  Every trial
record keeps its evaluated metric curve m_i(e) at the evaluation steps e, so its crossing of
any T >= T_1 is read from the record:

    c_i(T) = min { e : m_i(e) <= T and e < d_i },

d_i the step the trial was found diverged (infinity if it did not).  The comparison is made in
float32, as the trainer makes it (the metric is a float32 tensor compared with the target), so
that c_i(T_1) is the record's `steps` exactly.  A trial that crossed T and diverged later
counts for T: a sweep for T alone would have stopped that trial at its crossing and never seen
it diverge.  Records written before `diverged_at` was recorded count a diverged trial for no
target.  steps_T(B) = min_i c_i(T) over every trial of every round at batch size B.

Why records cut at the stop step suffice.  Let S* = c_i*(T_1) be the best step count for T_1 at
B.  Every round ran at least to step S*: a round stops at its own first T_1 crossing (>= S*,
the minimum over all rounds), at the earlier rounds' best (>= S*), or at the budget.  A trial
is frozen only after it crossed T_1, so before its round stopped each trial's curve is that of
the trial trained to the end.  For T >= T_1 the best trial crossed T no later than T_1, so the
true minimum min_i c_i(T) <= c_i*(T) <= S*; a trial whose crossing of T lies at or before S*
has it recorded, and later crossings cannot be the minimum.  Hence min_i c_i(T) read from the
records equals its value had every trial been trained to the end (`complete_trials`).

When a several-target sweep equals single-target sweeps.  With the same seed and options, the
trials of round 0 at a batch size have the same settings and the same training seed whatever
the target, and each trial's trajectory depends only on its own parameters and the common
batches.  So steps_T(B) of the several-target sweep equals that of a sweep run with target T
alone whenever both run the same rounds: always with `max_widen = 0` (with or without
`complete_trials`), and otherwise only where both sweeps widen the search range identically at
B, since widening follows the best trial of each sweep's own hardest target.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

__all__ = ["TRIAL_COLUMNS", "by_target", "check_targets", "crossing", "crossings",
           "read_trials", "sweep_figure_data", "target_key", "target_points", "trial_rows",
           "trials_from_records"]

TRIAL_COLUMNS = ["batch_size", "round", "trial", "lr", "momentum", "reached", "diverged",
                 "beaten", "steps_run"]


def target_key(target: float) -> str:
    """The JSON key of a target (the float's shortest round-trip text, e.g. '0.035')."""
    return repr(float(target))


def check_targets(targets) -> tuple[float, ...]:
    """Targets as floats, strictly increasing, finite and > 0 (ValueError naming `targets`)."""
    try:
        values = tuple(float(t) for t in targets)
    except (TypeError, ValueError):
        raise ValueError(f"targets must be numbers, got {targets!r}") from None
    if not values:
        raise ValueError("targets must not be empty")
    bad = next((t for t in values if not (math.isfinite(t) and t > 0)), None)
    if bad is not None:
        raise ValueError(f"targets must be finite numbers > 0, got {bad:g}")
    for a, b in zip(values, values[1:]):
        if b == a:
            raise ValueError(f"targets must not repeat a value, got {a:g} twice")
        if b < a:
            raise ValueError(f"targets must be strictly increasing, got {a:g} before {b:g}")
    return values


def crossing(record: dict, target: float) -> int | None:
    """c_i(T): the record's first evaluated step whose metric is <= `target` (compared in
    float32) before the trial was found diverged; None if there is none."""
    if record.get("diverged"):
        limit = record.get("diverged_at")
        if limit is None:
            return None
    else:
        limit = math.inf
    t = np.float32(target)
    for step, value in zip(record["curve"]["steps"], record["curve"]["metric"]):
        if step >= limit:
            return None
        if np.float32(value) <= t:
            return int(step)
    return None


def crossings(record: dict, targets) -> dict[str, int | None]:
    """{target_key(T): c_i(T)} for every target."""
    return {target_key(t): crossing(record, t) for t in targets}


def _best_for(records: list[dict], target: float) -> tuple[dict, int] | None:
    """The record with the smallest crossing of `target` (ties: earlier round, then trial)."""
    hits = [(c, r) for r in records if (c := crossing(r, target)) is not None]
    if not hits:
        return None
    c, r = min(hits, key=lambda h: (h[0], h[1]["round"], h[1]["trial"]))
    return r, c


def target_points(batch_sizes, records: list[dict], target: float) -> list[dict]:
    """Per batch size with records: the best trial for `target` (steps = min_i c_i(T)) and
    `reached_trials`, the trials that crossed T before their round stopped (with the default
    early stop a lower bound on those that would reach it; exact with `complete_trials`)."""
    points = []
    for b in batch_sizes:
        rs = [r for r in records if r["batch_size"] == b]
        if not rs:
            continue
        best = _best_for(rs, target)
        rec, steps = best if best else (None, None)
        points.append({
            "batch_size": b, "steps": steps, "reached": best is not None,
            "lr": rec["lr"] if rec else None, "momentum": rec["momentum"] if rec else None,
            "trials": len(rs), "reached_trials": sum(crossing(r, target) is not None
                                                     for r in rs),
            "diverged": sum(r["diverged"] for r in rs),
            "widened": max(r["round"] for r in rs) > 0})
    return points


def by_target(batch_sizes, records: list[dict], targets, n_resamples: int, seed: int) -> list:
    """summary.json's `by_target`: per target its points and critical batch sizes, estimated by
    `nqm.critical.estimate` as for the sweep's own target."""
    from nqm.critical import estimate

    out = []
    for t in targets:
        points = target_points(batch_sizes, records, t)
        est = estimate([p["batch_size"] for p in points], [p["steps"] for p in points],
                       n_resamples=n_resamples, seed=seed)
        out.append({"target": float(t), "points": points,
                    "critical_batch_size": dict(est.values), "s_min": est.s_min,
                    "e_min": est.e_min, "confidence_95": est.interval,
                    "critical_batch_size_flags": est.flags()})
    return out


def _steps_column(target: float) -> str:
    return f"steps_at_{target_key(target)}"


def trial_rows(records: list[dict], targets) -> tuple[list[str], list[list]]:
    """trials.csv: one row per trial (batch size, round, trial order) with its settings,
    outcome for the trained target and c_i(T) for every target."""
    columns = TRIAL_COLUMNS + [_steps_column(t) for t in targets]
    rows = []
    for r in sorted(records, key=lambda r: (r["batch_size"], r["round"], r["trial"])):
        rows.append([r.get(k) for k in TRIAL_COLUMNS] + [crossing(r, t) for t in targets])
    return columns, rows


def read_trials(path) -> tuple[list[float], list[dict]]:
    """trials.csv back: its targets and per trial a dict with TRIAL_COLUMNS (typed) and
    `crossings` {target_key: steps or None}."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        prefix = "steps_at_"
        targets = [float(c[len(prefix):]) for c in reader.fieldnames or []
                   if c.startswith(prefix)]
        missing = [c for c in TRIAL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a trials table (no column {missing[0]})")
        rows = []
        for row in reader:
            rows.append({
                "batch_size": int(row["batch_size"]), "round": int(row["round"]),
                "trial": int(row["trial"]), "lr": float(row["lr"]),
                "momentum": float(row["momentum"]) if row["momentum"] else None,
                "reached": row["reached"] == "True", "diverged": row["diverged"] == "True",
                "beaten": row["beaten"] == "True", "steps_run": int(row["steps_run"]),
                "crossings": {target_key(t): int(row[_steps_column(t)])
                              if row[_steps_column(t)] else None for t in targets}})
    return targets, rows


def trials_from_records(records: list[dict], targets) -> list[dict]:
    """The same per-trial dicts as `read_trials`, from records."""
    return [{**{k: r.get(k) for k in TRIAL_COLUMNS}, "crossings": crossings(r, targets)}
            for r in sorted(records, key=lambda r: (r["batch_size"], r["round"], r["trial"]))]


def sweep_figure_data(directory) -> dict:
    """A sweep directory's summary and trials for its figures: {"summary", "targets",
    "trials" (None when the directory has neither records.jsonl nor trials.csv)}."""
    import json

    from empirical.records import read_records

    directory = Path(directory)
    path = directory / "summary.json"
    if not path.exists():
        raise ValueError(f"{directory} holds no summary.json (not a sweep directory)")
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        raise ValueError(f"{path} is not readable JSON") from None
    if "best_metric" in summary:
        raise ValueError(f"{directory} holds a fixed-budget sweep (best metric per batch size): "
                         "its figure is the sweep's own best_metric_vs_batch.png")
    targets = summary.get("targets") or [summary["target"]]
    records = read_records(directory / "records.jsonl")
    if records:
        trials = trials_from_records(records, targets)
    elif (directory / "trials.csv").exists():
        trials = read_trials(directory / "trials.csv")[1]
    else:
        trials = None
    return {"summary": summary, "targets": [float(t) for t in targets], "trials": trials}
