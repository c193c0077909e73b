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
`max_widen` times; the record says so.

Records: one JSON line per finished trial (append-only), keyed by workload, optimizer,
batch size, round, trial index and seed, with its config, seed, versions, wall time and result.
A rerun reads them back and skips finished rounds, so a crash loses at most the round in
progress.
"""

from __future__ import annotations

import fcntl
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import qmc

OUTER = 0.10


@dataclass(frozen=True)
class SweepConfig:
    workload: str
    optimizer: str
    batch_sizes: tuple[int, ...]
    n_trials: int = 16
    seed: int = 0
    budget: int | None = None
    target: float | None = None
    lr_range: tuple[float, float] | None = None
    one_minus_beta_range: tuple[float, float] | None = None
    max_widen: int = 2
    complete_trials: bool = False
    decay: str = "constant"
    data: str | None = None       # custom workload: the user's .npz
    model: str | None = None      # custom workload: linear | logreg | mlp


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


def versions() -> dict:
    import torch

    import nqm
    return {"nqm": nqm.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "numpy": np.__version__}


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue   # a line cut by a crash: its round is simply rerun
    return out


def append_records(path: Path, records: list[dict]) -> None:
    """Append whole lines under an exclusive lock (safe with several writers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(text)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def _key(cfg: SweepConfig, batch_size: int) -> dict:
    return {"workload": cfg.workload, "optimizer": cfg.optimizer, "batch_size": batch_size,
            "seed": cfg.seed, "data": cfg.data, "model": cfg.model}


def run_batch_size(cfg: SweepConfig, batch_size: int, records_path: str) -> list[dict]:
    """All rounds for one batch size (resuming from the records); returns its records."""
    import torch

    from empirical.population import train_population
    from empirical.workloads import get

    path = Path(records_path)
    workload = get(cfg.workload, data=cfg.data, model=cfg.model, target=cfg.target)
    if cfg.target is not None:
        workload = type(workload)(**{**workload.__dict__, "target": cfg.target})
    budget = int(cfg.budget or workload.budget)
    key = _key(cfg, batch_size)
    done = [r for r in read_records(path)
            if all(r.get(k) == v for k, v in key.items()) and r.get("n_trials") == cfg.n_trials
            and r.get("budget") == budget and r.get("target") == workload.target]
    default_lr = workload.search["lr_adam" if cfg.optimizer == "adam" else "lr"]
    lr_range = list(cfg.lr_range or default_lr)
    beta_range = list(cfg.one_minus_beta_range or workload.search["one_minus_momentum"])
    records = []
    for rnd in range(cfg.max_widen + 1):
        prior = [r for r in done if r["round"] == rnd]
        if len(prior) == cfg.n_trials:
            round_records = sorted(prior, key=lambda r: r["trial"])
        else:
            lrs, betas = trial_settings(cfg, batch_size, rnd, lr_range, beta_range)
            torch.manual_seed(cfg.seed)
            earlier = _best(records)
            t0 = time.perf_counter()
            res = train_population(workload, cfg.optimizer, lrs.tolist(), batch_size,
                                   seed=cfg.seed + 1000 * rnd, momentum=None if betas is None
                                   else betas.tolist(), budget=budget, decay=cfg.decay,
                                   stop_on_first=not cfg.complete_trials,
                                   stop_at=None if cfg.complete_trials or earlier is None
                                   else earlier["steps"])
            wall = time.perf_counter() - t0
            round_records = []
            for i in range(cfg.n_trials):
                curve = res.curves[i]
                ok = np.isfinite(curve)
                round_records.append({
                    **key, "round": rnd, "trial": i, "n_trials": cfg.n_trials,
                    "budget": budget, "target": workload.target,
                    "metric": workload.metric_name, "lr": float(lrs[i]),
                    "momentum": None if betas is None else float(betas[i]),
                    "lr_range": list(lr_range), "one_minus_beta_range": list(beta_range),
                    "decay": cfg.decay, "steps": res.steps[i], "reached": res.steps[i] is not None,
                    "diverged": res.diverged[i], "steps_run": res.steps_run,
                    "beaten": (res.steps[i] is None and not res.diverged[i]
                               and res.steps_run < budget),
                    "wall_s_population": wall,
                    "curve": {"steps": [s for s, o in zip(res.eval_steps, ok) if o],
                              "metric": curve[ok].tolist()},
                    "versions": versions()})
            append_records(path, round_records)
        records += round_records
        best = _best(records)
        if best is None:
            break
        lo, hi = np.log(lr_range)
        x = (math.log(best["lr"]) - lo) / (hi - lo)
        if OUTER <= x <= 1 - OUTER:
            break
        width = hi - lo
        if x < OUTER:
            lr_range[0] = float(np.exp(lo - 0.5 * width))
        else:
            lr_range[1] = float(np.exp(hi + 0.5 * width))
    return records


def _best(records: list[dict]) -> dict | None:
    ok = [r for r in records if r["reached"] and not r["diverged"]]
    return min(ok, key=lambda r: (r["steps"], r["round"], r["trial"])) if ok else None


def summarize(cfg: SweepConfig, records: list[dict], n_resamples: int = 1000) -> dict:
    """The summary.json record: per batch size the best trial, and the critical batch sizes
    computed with the same code as `nqm fit` (`nqm.critical.estimate`): the judgement flags
    and residual-bootstrap 95% intervals with `n_resamples` resamples seeded by the sweep's
    seed."""
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
    return {"workload": cfg.workload, "optimizer": cfg.optimizer, "target": target,
            "points": points, "critical_batch_size": dict(est.values), "s_min": est.s_min,
            "e_min": est.e_min, "confidence_95": est.interval,
            "critical_batch_size_flags": est.flags(),
            "bootstrap": {"resamples": n_resamples, "seed": cfg.seed,
                          "method": "residual (relative residuals)"},
            "n_trials": cfg.n_trials, "seed": cfg.seed, "versions": versions()}
