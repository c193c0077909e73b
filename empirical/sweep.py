"""The `nqm sweep` pipeline: steps to result per batch size on real training (Shallue et al.
2018, arXiv 1811.03600, section 3), resumable in one output directory.

The directory holds records.jsonl (one record per trial, appended as each batch size ends),
sweep_config.json (the options of the first run: other options are refused), summary.json and
summary.csv (per batch size the best trial, and the critical batch sizes of `nqm.critical`),
trials.csv (every trial's settings, outcome and crossing of each target) and, with several
targets, summary_by_target.csv.  With a fixed epoch or step budget (`empirical.budgets`) the
summary holds instead the best metric reached per batch size (`best_metric`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from empirical.budgets import (
    budget_mode,
    build_target,
    check_epochs_meaningful,
    run_budget_batch_size,
    summarize_budget,
)
from empirical.files import make_out_dir, write_csv, write_json
from empirical.protocol import (
    SweepConfig,
    recorded_options,
    run_batch_size,
    summarize,
    sweep_options,
)
from empirical.records import claim_directory, directory_lock, read_records, repair_records
from empirical.targets import check_targets, trial_rows

SUMMARY_COLUMNS = ["batch_size", "steps", "reached", "lr", "momentum", "trials", "diverged",
                   "widened"]
BUDGET_COLUMNS = ["batch_size", "steps", "epochs", "best_metric", "interval_lo", "interval_hi",
                  "best_step", "final_metric", "lr", "momentum", "trials", "diverged", "widened"]


def check_target(target: float | None) -> None:
    """A target override is a finite number > 0 (ValueError otherwise)."""
    if target is not None and not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a finite number > 0, got {target}")


def sweep_config(**options) -> SweepConfig:
    """A SweepConfig from the command's options, the workload, its data file and the target
    checked first (ValueError naming what is wrong); `device` cpu, cuda or auto (resolved)."""
    from empirical.device import resolve_device
    from empirical.workloads import get

    if options.get("workload") != "custom" and (options.get("data") or options.get("model")):
        raise ValueError("--data and --model describe the custom workload only")
    if options.get("targets") is not None:
        if options.get("epoch_budget") is not None or options.get("quality"):
            raise ValueError("--targets cannot be combined with --epoch-budget or --quality "
                             "(a fixed budget reports the best metric; it has no targets)")
        options["targets"] = check_targets(options["targets"])
        if options.get("target") is not None:
            raise ValueError("give either target or targets, not both")
        options["target"] = options["targets"][0]
    options["device"] = resolve_device(options.get("device", "cpu"))
    workload = get(options["workload"], data=options.get("data"), model=options.get("model"),
                   target=build_target(options.get("target"), options.get("epoch_budget"),
                                       options.get("quality", False)),
                   device=options["device"])
    check_target(options.get("target"))
    cfg = SweepConfig(**options)
    check_epochs_meaningful(cfg, workload)
    return cfg


def custom_model_note(workload: str, model: str | None) -> str | None:
    """Which model the custom workload trains (logreg unless --model says); None otherwise."""
    if workload != "custom":
        return None
    return (f"custom workload: model {model}" if model else
            "custom workload: model logreg (default; choose with --model linear|logreg|mlp)")


def sweep(cfg: SweepConfig, out_dir, executor, progress: Callable[[int], None] | None = None,
          warn: Callable[[str], None] | None = None, threads: int | None = None) -> dict:
    """Run (or resume) the sweep into `out_dir` with `executor` and return summary.json's
    record.  `progress(0)` as the training starts, `progress(1)` after each batch size; `warn`
    hears about repaired or unreadable records and the custom model; `threads`: torch threads
    here (default: the free cores)."""
    from empirical.executor import use_free_cores

    use_free_cores(threads)
    warn = warn or (lambda msg: None)
    out = make_out_dir(out_dir)
    with directory_lock(out):
        records_path = out / "records.jsonl"
        _claim(cfg, out, records_path)
        _repair(records_path, warn)
        fixed = budget_mode(cfg) is not None
        task = functools.partial(run_budget_batch_size if fixed else run_batch_size, cfg,
                                 records_path=str(records_path))
        note = custom_model_note(cfg.workload, cfg.model)
        if note:
            warn(note)
        records = []
        if progress is not None:
            progress(0)                                   # the work starts
        for _, recs in executor.map(task, cfg.batch_sizes):
            records += recs
            if progress is not None:
                progress(1)
        summary = summarize_budget(cfg, records) if fixed else summarize(cfg, records)
        write_json(out / "summary.json", summary)
        if fixed:
            write_csv(out / "summary.csv", BUDGET_COLUMNS, _budget_rows(summary))
        else:
            write_csv(out / "summary.csv", SUMMARY_COLUMNS,
                      ([p[k] for k in SUMMARY_COLUMNS] for p in summary["points"]))
            _write_targets(cfg, summary, records, out)
    return summary


def _write_targets(cfg: SweepConfig, summary: dict, records: list[dict], out) -> None:
    """trials.csv (every trial's settings and crossings: the sensitivity figure's data) and,
    with several targets, summary_by_target.csv (the points of each target)."""
    columns, rows = trial_rows(records, cfg.targets or (summary["target"],))
    write_csv(out / "trials.csv", columns, rows)
    if "by_target" in summary:
        write_csv(out / "summary_by_target.csv", ["target", *SUMMARY_COLUMNS],
                  ([t["target"], *(p[k] for k in SUMMARY_COLUMNS)]
                   for t in summary["by_target"] for p in t["points"]))


def _budget_rows(summary: dict):
    """summary.csv rows of a fixed-budget sweep (the interval as two columns)."""
    for p in summary["best_metric"]:
        lo, hi = p["interval"] or (None, None)
        row = {**p, "interval_lo": lo, "interval_hi": hi}
        yield [row[k] for k in BUDGET_COLUMNS]


def _claim(cfg: SweepConfig, out, records_path) -> None:
    """Refuse a directory holding a sweep with other options (from sweep_config.json, or from
    the records of a directory written before that file existed)."""
    claim_directory(out, sweep_options(cfg), "sweep", "sweep_config.json",
                    found=() if (out / "sweep_config.json").exists()
                    else recorded_options(read_records(records_path)))


def _repair(records_path, warn: Callable[[str], None]) -> None:
    """Drop a torn last record (a killed run) and say which lines are unreadable."""
    dropped, bad = repair_records(records_path)
    if dropped:
        warn(f"dropped an incomplete last record in {records_path}")
    if bad:
        warn(f"warning: {records_path}: {len(bad)} unreadable line(s) ignored (line "
             f"{', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''})")


