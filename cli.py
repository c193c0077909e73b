"""`nqm`: steps to target versus batch size, and the critical batch size.

Heavy modules (numba kernels, matplotlib, torch) are imported inside the subcommands that need
them, so `nqm --help` is instant.  Every error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import click

DEFAULT_SPECTRUM = "power:d=10000,alpha=1"


class InputError(click.ClickException):
    """Bad input: printed as one line, exit status 2."""

    exit_code = 2


class _Group(click.Group):
    """A click group whose errors are one line (no usage block, no traceback), exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _first_line(text: str) -> str:
    """The first non-blank line of `text`, stripped ('' if none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _input_errors(fn):
    """Turn the packages' NQMInputError (a ValueError) and file errors into InputError, whose
    message is one line: a multi-line message is cut to its first line."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:   # NQMInputError subclasses ValueError
            raise InputError(_first_line(str(exc)) or type(exc).__name__) from None
        except OSError as exc:
            what = _first_line(exc.strerror or str(exc)) or type(exc).__name__
            raise InputError(f"{what}: {exc.filename}" if exc.filename else what) from None

    return wrapper


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """'1,2,4' or 'LO:HI' (every power of two from LO to HI)."""
    text = text.strip()
    try:
        if ":" in text:
            lo_s, hi_s = text.split(":")
            lo, hi = int(lo_s), int(hi_s)
            if lo < 1 or hi < lo:
                raise InputError(f"batch-size range '{text}' needs 1 <= LO <= HI")
            sizes = [2**i for i in range(0, 63) if lo <= 2**i <= hi]
        else:
            sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(
            f"bad --batch-sizes '{text}': give comma-separated integers or LO:HI") from None
    if not sizes:
        raise InputError(f"--batch-sizes '{text}' contains no batch size")
    if any(b < 1 for b in sizes):
        raise InputError(f"batch sizes must be >= 1, got {text}")
    return tuple(sorted(set(sizes)))


def _make_out_dir(path) -> Path:
    """Create an output directory and its parents, or a one-line InputError saying why not."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {path}: "
                         f"{exc.strerror or exc}") from None
    return out


def _lock_out_dir(out: Path) -> None:
    """Hold the output directory's lock until the command ends (one process per directory)."""
    from empirical.protocol import directory_lock

    click.get_current_context().with_resource(directory_lock(out))


def _write_json_atomic(path, data) -> None:
    """_write_json through a temporary file and a rename: a crash leaves the old or the new."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    _write_json(tmp, data)
    import os
    os.replace(tmp, path)


def _write_json(path, data) -> None:
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False, default=_jsonable) + "\n")


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _fmt(x, spec=".4g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return format(x, spec)


def _print_critical(crit: dict, s_min, e_min, record: dict | None = None) -> None:
    """The critical batch sizes; from a `record` with `critical_batch_size_flags` (and
    `confidence_95`) also why a value is not determined, a warning under a value outside the
    batch sizes, the bootstrap intervals and the warnings about the data."""
    flags = (record or {}).get("critical_batch_size_flags") or {}
    nd, extra = flags.get("not_determined", {}), flags.get("extrapolated", [])
    span = flags.get("batch_size_range")

    def warn_extrapolated(key):
        if key in extra:
            click.echo(f"{'':18}warning: extrapolated: outside the batch sizes "
                       f"{span[0]:g}..{span[1]:g}")

    click.echo("\nCritical batch size (two definitions; they differ by construction):")
    fit = f"   (S_min = {_fmt(s_min)}, E_min = {_fmt(e_min)})"
    if crit.get("mccandlish") is None and "mccandlish" in nd:
        click.echo(f"  mccandlish      B_crit not determined: {nd['mccandlish']}{fit}")
    else:
        click.echo(f"  mccandlish      B_crit = E_min/S_min = {_fmt(crit.get('mccandlish'))}{fit}")
    warn_extrapolated("mccandlish")
    if crit.get("overhead_20pct") is None and "overhead_20pct" in nd:
        click.echo(f"  overhead_20pct  not determined: {nd['overhead_20pct']}")
    else:
        click.echo(f"  overhead_20pct  steps 20% above perfect scaling at B = "
                   f"{_fmt(crit.get('overhead_20pct'))}")
    warn_extrapolated("overhead_20pct")
    ci = (record or {}).get("confidence_95")
    if ci is not None and "interval" in nd:
        click.echo(f"95% bootstrap intervals: not determined: {nd['interval']}")
    elif ci is not None:
        click.echo("95% bootstrap intervals:")
        for key, (lo, hi) in ci.items():
            if lo is None and hi is None and key in nd:
                click.echo(f"  {key:<15} not determined: {nd[key]}")
            else:
                click.echo(f"  {key:<15} [{_fmt(lo)}, {_fmt(hi)}]")
    for w in flags.get("warnings", []):
        click.echo(f"warning: {w}")
    if "b_noise" in crit:
        click.echo("Gradient noise scales at the initial point:")
        click.echo(f"  b_noise  = tr(H Sigma)/G'HG = {_fmt(crit['b_noise'])}")
        click.echo(f"  b_simple = tr(Sigma)/|G|^2  = {_fmt(crit['b_simple'])}")


def _compile_notice() -> None:
    """One line on stderr when the NQM kernels are about to be compiled (first run only)."""
    from nqm._kernels import cache_is_warm

    if not cache_is_warm():
        click.echo("compiling the NQM kernels (once; cached afterwards) ...", err=True)


THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="Threads for tuning (default: the free cores, one for small spectra; "
         "or $NQM_THREADS).")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nqm-batchsize", prog_name="nqm")
def cli():
    """How many steps does training take at each batch size, and where does more data
    parallelism stop paying off?  A noisy quadratic model checked against real training."""


@cli.command()
@click.option("--spectrum", "spec", default=DEFAULT_SPECTRUM, show_default=True,
              help="power:d=..,alpha=..[,noise_scale=..,noise_exponent=..,s0=..,bins=..] "
                   "or a .npz/.json file with arrays h, c, s0[, count].")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "nesterov"]), default="sgd",
              show_default=True)
@click.option("--precond", type=float, default=0.0, show_default=True,
              help="Preconditioner exponent p: updates use H^-p (0 = none, 1 = Newton).")
@click.option("--ema", is_flag=True, help="Also tune an exponential moving average of iterates.")
@click.option("--schedule", default="constant", show_default=True,
              help="constant | linear | cosine | piecewise:FRAC=FACTOR,... (horizon is tuned).")
@click.option("--warmup", type=float, default=0.0, show_default=True,
              help="Linear warm-up as a fraction of the horizon.")
@click.option("--final", "final_frac", type=float, default=0.0, show_default=True,
              help="Final learning-rate fraction for linear/cosine decay.")
@click.option("--target", type=float, default=0.01, show_default=True, help="Target loss.")
@click.option("--batch-sizes", default="1:1048576", show_default=True,
              help="Comma-separated integers, or LO:HI for every power of two in between.")
@click.option("--max-steps", type=int, default=10**8, show_default=True,
              help="Step budget; targets not reached within it are reported as not reached.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write CSV here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@THREADS_OPTION
@_input_errors
def predict(spec, optimizer, precond, ema, schedule, warmup, final_frac, target, batch_sizes,
            max_steps, json_path, csv_path, plot_path, quiet, threads):
    """Tuned steps to reach TARGET loss at every batch size, and the critical batch sizes."""
    from nqm.predict import PredictConfig
    from nqm.predict import predict as run_predict
    from nqm.schedule import parse_schedule
    from nqm.spectrum import parse_spec

    spectrum = parse_spec(spec)
    config = PredictConfig(target=target, optimizer=optimizer, precond=precond, ema=ema,
                           schedule=parse_schedule(schedule, warmup, final_frac),
                           batch_sizes=parse_batch_sizes(batch_sizes), max_steps=max_steps,
                           threads=threads)
    config.check(spectrum)   # target below the initial loss, memory: before any tuning
    _compile_notice()
    with click.progressbar(length=len(config.batch_sizes), label="tuning batch sizes",
                           file=sys.stderr, hidden=quiet) as bar:
        result = run_predict(spectrum, config, progress=bar.update)

    ema_col = config.ema
    click.echo(f"NQM: {spectrum.meta.get('source', spec)} ({spectrum.n_rows} rows, dimension "
               f"{spectrum.dimension:g}), optimizer {optimizer}, precond p = {precond:g}, "
               f"schedule {result['schedule']}, target {target:g}")
    header = f"{'batch':>9} {'steps':>11} {'lr':>10} {'momentum':>9}"
    header += f" {'ema':>9}" if ema_col else ""
    header += f" {'horizon':>10}" if result["points"][0]["horizon"] is not None else ""
    header += "  note"
    click.echo(header)
    for p in result["points"]:
        steps = f"{p['steps']:>11d}" if p["reached"] else f"{'>' + str(max_steps):>11}"
        line = f"{p['batch_size']:>9d} {steps} {p['lr']:>10.4g} {p['momentum']:>9.4g}"
        line += f" {p['ema']:>9.6g}" if ema_col else ""
        line += f" {p['horizon']:>10d}" if p["horizon"] is not None else ""
        notes = list(p["edges"]) + ([] if p["reached"] else ["target not reached in budget"])
        click.echo(line + ("  " + "; ".join(notes) if notes else ""))
    _print_critical(result["critical_batch_size"], result["s_min"], result["e_min"], result)
    click.echo(f"({result['elapsed_s']:.2f} s)")

    if json_path:
        _write_json(json_path, result)
    if csv_path:
        keys = ["batch_size", "steps", "reached", "lr", "momentum", "ema", "horizon", "at_edge",
                "lower_bound"]
        with open(csv_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(keys + ["edges"])
            for p in result["points"]:
                w.writerow([p[k] for k in keys] + [";".join(p["edges"])])
    if plot_path:
        from figures.plots import steps_vs_batch
        steps_vs_batch(result, plot_path)


def _report_steps(n_steps: int, points: int) -> list[int]:
    if points <= 0 or n_steps + 1 <= points:
        return list(range(n_steps + 1))
    import numpy as np
    ks = np.unique(np.round(np.geomspace(1, n_steps + 1, points)).astype(int) - 1)
    return sorted(set(ks.tolist()) | {0, n_steps})


def _display_steps(ks: list[int], n_steps: int, lines: int = 12) -> list[int]:
    """About `lines` log-spaced steps for the printed table, each one of the computed `ks`
    (the computed step nearest each log-spaced step)."""
    import bisect

    show = set()
    for k in _report_steps(n_steps, lines):
        i = bisect.bisect_left(ks, k)
        near = [ks[j] for j in (i - 1, i) if 0 <= j < len(ks)]
        show.add(min(near, key=lambda x: abs(x - k)))
    return sorted(show)


@cli.command()
@click.option("--spectrum", "spec", default=DEFAULT_SPECTRUM, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "nesterov"]), default="sgd",
              show_default=True)
@click.option("--lr", type=float, required=True, help="(Peak) learning rate.")
@click.option("--momentum", type=float, default=0.0, show_default=True)
@click.option("--precond", type=float, default=0.0, show_default=True)
@click.option("--ema", type=float, default=None, help="EMA decay gamma of the iterates.")
@click.option("--schedule", default="constant", show_default=True)
@click.option("--warmup", type=float, default=0.0, show_default=True)
@click.option("--final", "final_frac", type=float, default=0.0, show_default=True)
@click.option("--horizon", type=int, default=None, help="Schedule horizon (default --steps).")
@click.option("--batch-size", type=float, required=True)
@click.option("--steps", "n_steps", type=click.IntRange(min=0), required=True)
@click.option("--target", type=float, default=None, help="Also report the first step <= it.")
@click.option("--monte-carlo", "mc_runs", type=click.IntRange(min=0), default=0,
              help="Also sample N runs of the stochastic iteration.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--points", type=int, default=2000, show_default=True,
              help="Steps reported in JSON (log-spaced when fewer than all; 0 = all).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False))
@_input_errors
def simulate(spec, optimizer, lr, momentum, precond, ema, schedule, warmup, final_frac, horizon,
             batch_size, n_steps, target, mc_runs, seed, points, json_path, plot_path):
    """Expected loss curve of one configuration (exact; optionally with Monte Carlo)."""
    import numpy as np

    from nqm.checks import check_batch_size
    from nqm.optimizer import OptimizerConfig
    from nqm.schedule import parse_schedule
    from nqm.spectrum import check_memory, parse_spec, working_bytes_per_row

    spectrum = parse_spec(spec)
    config = OptimizerConfig(optimizer, lr=lr, momentum=momentum, precond=precond, ema=ema)
    m = (1 if optimizer == "sgd" else 2) + (ema is not None)
    check_memory(spectrum.n_rows * (working_bytes_per_row(m) + 24 * m**4),   # + Lyapunov solve
                 f"simulating {optimizer} on {spectrum.n_rows} spectrum rows",
                 "use fewer rows: power:...,bins=N or a binned spectrum file")
    sched = parse_schedule(schedule, warmup, final_frac)
    check_batch_size(batch_size)
    _compile_notice()
    from nqm.closed_form import Modes  # the kernels, once the input is known to be good
    from nqm.dynamics import expected_loss, monte_carlo
    from nqm.steps import steps_to_target

    ks = _report_steps(n_steps, points)
    loss = expected_loss(spectrum, config, batch_size, ks, sched, horizon)
    result = {"steps": ks, "loss": loss.tolist(), "batch_size": batch_size,
              "config": config.__dict__, "schedule": sched.describe(), "target": target}
    modes = Modes.build(spectrum, config) if sched.is_constant else None
    stable = modes.stable if modes is not None else None
    if stable is False:
        click.echo("warning: this learning rate is beyond the stability limit; the loss "
                   "diverges", err=True)
    if target is not None:
        r = steps_to_target(spectrum, config, batch_size, target, max_steps=max(n_steps, 1),
                            schedule=None if sched.is_constant else sched,
                            horizon=horizon or n_steps)[0]
        result["steps_to_target"] = r.steps
    if mc_runs:
        mean, se = monte_carlo(spectrum, config, batch_size, n_steps, mc_runs,
                               np.random.default_rng(seed), sched, horizon)
        result.update({"mc_steps": ks, "mc_mean": mean[ks].tolist(), "mc_se": se[ks].tolist(),
                       "mc_runs": mc_runs, "seed": seed})
    click.echo(f"{'step':>10} {'expected loss':>15}" + (f" {'MC mean':>13} {'MC se':>10}"
                                                          if mc_runs else ""))
    show = _display_steps(ks, n_steps)
    for k in show:
        i = ks.index(k)
        line = f"{k:>10d} {loss[i]:>15.6g}"
        if mc_runs:
            line += f" {result['mc_mean'][i]:>13.6g} {result['mc_se'][i]:>10.3g}"
        click.echo(line)
    if target is not None:
        st = result["steps_to_target"]
        click.echo(f"first step with loss <= {target:g}: "
                   f"{st if st is not None else 'not reached within ' + str(n_steps)}")
    if sched.is_constant and stable:
        ss = modes.steady_state(batch_size)
        result["steady_state"] = ss
        click.echo(f"steady-state loss: {ss:.6g}")
    if json_path:
        result["loss"] = [x if np.isfinite(x) else None for x in result["loss"]]
        _write_json(json_path, result)
    if plot_path:
        from figures.plots import loss_curve
        loss_curve(result, plot_path)


NQM_FIGURE_SET = {
    "sgd": {"optimizer": "sgd"},
    "momentum": {"optimizer": "momentum"},
    "nesterov": {"optimizer": "nesterov"},
    "sgd+precond(p=0.5)": {"optimizer": "sgd", "precond": 0.5},
    "sgd+ema": {"optimizer": "sgd", "ema": True},
}


@cli.command()
@click.option("--out", "out_dir", default="out/figures", show_default=True,
              type=click.Path(file_okay=False),
              help="Directory for the figures and summaries (the committed copy is figures/nqm).")
@click.option("--spectrum", "spec", default=DEFAULT_SPECTRUM, show_default=True)
@click.option("--target", type=float, default=0.01, show_default=True)
@click.option("--batch-sizes", default="1:1048576", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@THREADS_OPTION
@_input_errors
def figures(out_dir, spec, target, batch_sizes, quiet, threads):
    """Tune SGD, momentum, Nesterov, preconditioned SGD and SGD+EMA on one spectrum and write
    OUT/steps_vs_batch_by_optimizer.png plus a JSON and CSV summary per optimizer.  The files
    hold no wall-clock times: a rerun with the same versions and Numba thread count gives
    byte-identical JSON and CSV (the thread count changes the last digits of tuned rates)."""
    from figures.plots import compare_optimizers, steps_vs_batch
    from nqm.predict import PredictConfig
    from nqm.predict import predict as run_predict
    from nqm.spectrum import parse_spec

    spectrum = parse_spec(spec)
    sizes = parse_batch_sizes(batch_sizes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    _compile_notice()
    with click.progressbar(length=len(NQM_FIGURE_SET) * len(sizes), label="tuning",
                           file=sys.stderr, hidden=quiet) as bar:
        for name, kw in NQM_FIGURE_SET.items():
            config = PredictConfig(target=target, batch_sizes=sizes, threads=threads, **kw)
            results[name] = run_predict(spectrum, config, progress=bar.update)
    click.echo(f"{'optimizer':<20} {'steps@B=min':>12} {'steps@B=max':>12} {'mccandlish':>11} "
               f"{'overhead_20pct':>15}")
    seconds = {}
    for name, res in results.items():
        slug = name.replace("+", "_").replace("(", "_").replace(")", "").replace("=", "")
        seconds[name] = res.pop("elapsed_s")     # wall-clock: printed, not written
        _write_json(out / f"{slug}.json", res)
        with open(out / f"{slug}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["batch_size", "steps", "lr", "momentum", "ema", "at_edge"])
            for p in res["points"]:
                w.writerow([p["batch_size"], p["steps"], p["lr"], p["momentum"], p["ema"],
                            p["at_edge"]])
        steps_vs_batch(res, out / f"{slug}.png", title=f"NQM, {name}")
        pts, crit = res["points"], res["critical_batch_size"]
        click.echo(f"{name:<20} {_fmt(pts[0]['steps'], 'd'):>12} {_fmt(pts[-1]['steps'], 'd'):>12} "
                   f"{_fmt(crit['mccandlish']):>11} {_fmt(crit['overhead_20pct']):>15}")
    compare_optimizers(results, out / "steps_vs_batch_by_optimizer.png",
                       title=f"NQM {spectrum.meta.get('source', spec)}, target {target:g}")
    click.echo("(" + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()) + ")")
    click.echo(f"wrote {out}/")


@cli.command()
def workloads():
    """List the real-training workloads with their targets and budgets."""
    from empirical.catalog import CATALOG, CUSTOM_MODELS

    click.echo(f"{'workload':<15} {'metric':<18} {'target':>8} {'budget':>8}")
    for name, w in CATALOG.items():
        click.echo(f"{name:<15} {w.metric_name:<18} {w.target:>8g} {w.budget:>8d}")
    click.echo(f"{'custom':<15} your .npz: --data PATH --model {'|'.join(CUSTOM_MODELS)} "
               f"--target X")


@cli.command()
@click.option("--workload", required=True, help="See `nqm workloads`.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "nesterov", "adam"]),
              default="momentum", show_default=True)
@click.option("--batch-sizes", default="8:512", show_default=True)
@click.option("--trials", type=click.IntRange(min=2), default=16, show_default=True)
@click.option("--target", type=float, default=None, help="Override the workload's target.")
@click.option("--budget", type=click.IntRange(min=1), default=None, help="Step budget.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--decay", type=click.Choice(["constant", "linear"]), default="constant",
              show_default=True)
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="custom workload: .npz with X_train, y_train, X_val, y_val.")
@click.option("--model", type=click.Choice(["linear", "logreg", "mlp"]), default=None,
              help="custom workload: the model.")
@click.option("--complete-trials", is_flag=True,
              help="Train every trial to the target or the budget (default: stop a round once "
                   "some trial has reached the target; later steps cannot lower the minimum).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="Where the batch sizes run.")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --executor dask).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local worker processes (torch threads are split between them).")
@click.option("--out", "out_dir", default="out/sweep", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_input_errors
def sweep(workload, optimizer, batch_sizes, trials, target, budget, seed, decay, data, model,
          complete_trials, executor, scheduler, workers, out_dir, quiet):
    """Measure steps to result per batch size on real training, metaparameters tuned per batch
    size (Shallue et al.).  Resumable: rerun the same command to continue (batch sizes may be
    added; other options into the same --out are refused)."""
    import functools

    from empirical.executor import DaskExecutor, LocalExecutor
    from empirical.protocol import (
        SweepConfig,
        claim_directory,
        read_records,
        recorded_options,
        repair_records,
        run_batch_size,
        summarize,
        sweep_options,
    )
    from empirical.workloads import get

    get(workload, data=data, model=model, target=target)   # validates name, file and options
    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    runner = DaskExecutor(scheduler) if executor == "dask" else LocalExecutor(workers)
    if target is not None and not (math.isfinite(target) and target > 0):
        raise InputError(f"target must be a finite number > 0, got {target}")
    cfg = SweepConfig(workload=workload, optimizer=optimizer,
                      batch_sizes=parse_batch_sizes(batch_sizes), n_trials=trials, seed=seed,
                      budget=budget, target=target, decay=decay, data=data, model=model,
                      complete_trials=complete_trials)
    out = _make_out_dir(out_dir)
    _lock_out_dir(out)
    records_path = out / "records.jsonl"
    claim_directory(out, sweep_options(cfg), "sweep", "sweep_config.json",
                    found=() if (out / "sweep_config.json").exists()
                    else recorded_options(read_records(records_path)))
    dropped, bad = repair_records(records_path)
    if dropped:
        click.echo(f"dropped an incomplete last record in {records_path}", err=True)
    if bad:
        click.echo(f"warning: {records_path}: {len(bad)} unreadable line(s) ignored (line "
                   f"{', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''})",
                   err=True)
    task = functools.partial(run_batch_size, cfg, records_path=str(records_path))
    records = []
    _note_custom_model(workload, model)
    with click.progressbar(length=len(cfg.batch_sizes), label="batch sizes", file=sys.stderr,
                           hidden=quiet) as bar:
        for _, recs in runner.map(task, cfg.batch_sizes):
            records += recs
            bar.update(1)
    summary = summarize(cfg, records)
    _write_json(out / "summary.json", summary)
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        keys = ["batch_size", "steps", "reached", "lr", "momentum", "trials", "diverged",
                "widened"]
        w.writerow(keys)
        for p in summary["points"]:
            w.writerow([p[k] for k in keys])
    click.echo(f"{workload}, {optimizer}, target {summary['target']:g}, {trials} trials per "
               f"batch size")
    click.echo(f"{'batch':>7} {'steps':>8} {'lr':>10} {'momentum':>9} {'diverged':>9}  note")
    for p in summary["points"]:
        steps = f"{p['steps']:>8d}" if p["reached"] else f"{'-':>8}"
        note = ("widened; " if p["widened"] else "") + ("" if p["reached"] else "not reached")
        click.echo(f"{p['batch_size']:>7d} {steps} {_fmt(p['lr']):>10} "
                   f"{_fmt(p['momentum']):>9} {p['diverged']:>9d}  {note}")
    crit = summary["critical_batch_size"]
    _print_critical(crit, summary["s_min"], summary["e_min"], summary)
    from figures.plots import steps_vs_batch
    steps_vs_batch(summary, out / "steps_vs_batch.png",
                   title=f"{workload}, {optimizer}: steps to result")
    click.echo(f"wrote {out}/records.jsonl, summary.json, summary.csv, steps_vs_batch.png")


def _note_custom_model(workload: str, model: str | None) -> None:
    """Say on stderr which model the custom workload trains (logreg unless --model says)."""
    if workload == "custom":
        click.echo(f"custom workload: model {model}" if model else
                   "custom workload: model logreg (default; choose with --model "
                   "linear|logreg|mlp)", err=True)


def _with_interval(value, ci) -> str:
    """'12.3 [10.1, 15]', with 'inf' for an unbounded end and '-' for no estimate."""
    if value is None:
        return "-"
    lo, hi = ci or (None, None)
    return f"{_fmt(value)} [{_fmt(lo, '.3g')}, {'inf' if hi is None else _fmt(hi, '.3g')}]"


def _measure_key(options: dict, params: dict, reference: dict) -> str:
    """Identifies one finished measurement: every option that changes it and the exact
    parameters (measured and reference)."""
    import hashlib

    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for p in (params, reference):
        for k in sorted(p):
            h.update(k.encode())
            h.update(p[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _read_point(path: Path) -> dict | None:
    """A finished measurement's DIR/points/*.json, or None when absent or unreadable."""
    try:
        point = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return point if isinstance(point, dict) and "summary" in point else None


def _parse_steps(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        steps = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"bad --at-step '{text}': give comma-separated integers") from None
    if any(k < 0 for k in steps):
        raise InputError(f"--at-step values must be >= 0, got {text}")
    return steps


@cli.command()
@click.option("--workload", required=True, help="See `nqm workloads`.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Measure at these parameters (a tensors-only torch file of the workload's "
                   "model); s0 is the displacement from the seed's initialisation to them.")
@click.option("--at-step", "at_steps", default=None,
              help="Train the reference run and measure at these steps (comma-separated; 0 is "
                   "the initialisation).")
@click.option("--at-target", is_flag=True,
              help="Also measure where the reference run first reaches the target.  Without "
                   "--checkpoint/--at-step/--at-target: --at-step 0 --at-target.")
@click.option("--top-k", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--curvature", type=click.Choice(["hessian", "ggn"]), default="hessian",
              show_default=True, help="Hessian, or the positive semi-definite Gauss-Newton matrix.")
@click.option("--examples", type=click.IntRange(min=2), default=None,
              help="Measure on a seeded random subset of this many training examples.")
@click.option("--hessian-examples", type=click.IntRange(min=1), default=128, show_default=True,
              help="Examples for the mean of g'Hg in tr(H Sigma).")
@click.option("--slq-vectors", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--slq-steps", type=click.IntRange(min=2), default=40, show_default=True)
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=100,
              show_default=True)
@click.option("--bins", type=click.IntRange(min=1), default=60, show_default=True,
              help="Bulk density bins in the spectrum file.")
@click.option("--two-batch", default=None, metavar="B_SMALL,B_BIG",
              help="Also estimate B_simple from pairs of batch gradients (no per-example "
                   "gradients; McCandlish et al. appendix A), e.g. 8,256.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "nesterov", "adam"]),
              default=None, help="Reference run's optimizer (default: the workload's).")
@click.option("--lr", type=float, default=None, help="Reference run's learning rate.")
@click.option("--train-batch-size", type=click.IntRange(min=1), default=None,
              help="Reference run's batch size.")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Reference run's step budget.")
@click.option("--target", type=float, default=None, help="Override the workload's target.")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="custom workload: .npz with X_train, y_train, X_val, y_val.")
@click.option("--model", type=click.Choice(["linear", "logreg", "mlp"]), default=None,
              help="custom workload: the model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="out/measure", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_input_errors
def measure(workload, checkpoint, at_steps, at_target, top_k, curvature, examples,
            hessian_examples, slq_vectors, slq_steps, n_boot, bins, two_batch, optimizer, lr,
            train_batch_size, budget, target, data, model, seed, out_dir, quiet):
    """Measure the curvature and gradient-noise spectra of a workload's network (Hessian or
    Gauss-Newton eigenpairs and density, per-example noise, B_simple and B_noise) and write the
    NQM spectrum that `nqm predict --spectrum` reads.  Resumable: rerunning the same command
    skips the checkpoints already measured (DIR/points/); other options into the same --out
    are refused."""
    import time

    from empirical import checkpoints as ckpt
    from empirical.adapter import to_spectrum
    from empirical.measure import MeasureConfig
    from empirical.measure import measure as measure_at
    from empirical.protocol import claim_directory, file_sha256, versions
    from empirical.workloads import get
    from nqm.spectrum import load as load_spectrum

    if target is not None and not (math.isfinite(target) and target > 0):
        raise InputError(f"target must be a finite number > 0, got {target}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a finite number > 0, got {lr}")
    w = get(workload, data=data, model=model, target=target)
    if target is not None:
        import dataclasses
        w = dataclasses.replace(w, target=float(target))
    steps = _parse_steps(at_steps)
    if checkpoint and (steps or at_target):
        raise InputError("give either --checkpoint or --at-step/--at-target, not both")
    if not checkpoint and not steps and not at_target:
        steps, at_target = [0], True
    if two_batch is not None:
        try:
            two_batch = tuple(int(b) for b in two_batch.split(","))
        except ValueError:
            raise InputError(f"bad --two-batch '{two_batch}': give B_SMALL,B_BIG") from None
        if len(two_batch) != 2:
            raise InputError("bad --two-batch: give two batch sizes B_SMALL,B_BIG")
    cfg = MeasureConfig(top_k=top_k, kind=curvature, examples=examples,
                        hessian_examples=hessian_examples, slq_vectors=slq_vectors,
                        slq_steps=slq_steps, bootstrap=n_boot, two_batch=two_batch, seed=seed)
    out = _make_out_dir(out_dir)
    _lock_out_dir(out)
    ref = w.reference
    options = {("curvature" if k == "kind" else k): v for k, v in cfg.__dict__.items()}
    options.update({
        "workload": workload, "bins": bins, "target": float(w.target),
        "data_sha256": file_sha256(data) if workload == "custom" else None,
        "model": (model or "logreg") if workload == "custom" else None,
        "optimizer": optimizer or ref["optimizer"],
        "lr": float(lr if lr is not None else ref["lr"]),
        "train_batch_size": int(train_batch_size or ref["batch_size"]),
        "budget": int(budget or w.budget)})
    options = json.loads(json.dumps(options, sort_keys=True))
    claim_directory(out, options, "measurement", "measure_config.json")
    (out / "checkpoints").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    init = {k: v.detach() for k, v in w.make_model(seed).named_parameters()}   # s0's origin
    if checkpoint:
        params = ckpt.load(checkpoint, w.make_model(seed))
        points = [ckpt.Checkpoint(Path(checkpoint).stem, 0, params, ckpt.metric(w, params))]
    else:
        points = ckpt.train_checkpoints(w, steps, at_target, seed=seed, optimizer=optimizer,
                                        lr=lr, batch_size=train_batch_size, budget=budget)
        for c in points:
            ckpt.save(c.params, out / "checkpoints" / f"{c.label.replace(' ', '_')}.pt")
    _note_custom_model(workload, model)
    reference = points[-1].params
    meta = {"workload": workload, "seed": seed, "reference_checkpoint": points[-1].label}
    along, spectra = [], []
    with click.progressbar(points, label="checkpoints", file=sys.stderr, hidden=quiet) as bar:
        for c in bar:
            key = _measure_key(options, c.params, reference)
            name = c.label.replace(" ", "_")
            done = out / "points" / f"{name}.json"
            prior = _read_point(done)
            if prior is not None and prior.get("key") == key \
                    and (out / f"spectrum_{name}.npz").exists():
                summary = prior["summary"]                           # resumed: measured before
                sp = load_spectrum(out / f"spectrum_{name}.npz")
            else:
                m = measure_at(w, c.params, init, reference, cfg, c.label, c.step,
                               c.metric, progress=None if quiet else
                               (lambda msg: click.echo(f"  {msg}", err=True)))
                sp = to_spectrum(m, bins=bins, meta=meta)
                sp.save(out / f"spectrum_{name}.npz")
                summary = {**m.summary(),
                           "nqm_noise_scales": {k: v if math.isfinite(v) else None for k, v in
                                                zip(("b_noise", "b_simple"), sp.noise_scales())},
                           "spectrum_rows": sp.n_rows,
                           "dropped_directions": sp.meta["dropped_directions"],
                           "bulk_noise_exponent": sp.meta["bulk_noise_exponent"]}
                done.parent.mkdir(exist_ok=True)
                _write_json_atomic(done, {"key": key, "summary": summary})
            along.append(summary)
            spectra.append(sp)
    spectra[-1].save(out / "spectrum.npz")
    if spectra[-1].initial_loss() == 0:
        click.echo("warning: s0 = 0 everywhere (the reference solution is the measured point "
                   "itself); measure a later step or --at-target for a usable spectrum", err=True)
    ref_run = {**w.reference, **{k: v for k, v in (("optimizer", optimizer), ("lr", lr),
                                                   ("batch_size", train_batch_size))
                                  if v is not None}}
    record = {**along[-1], "workload": workload, "metric_name": w.metric_name,
              "target": w.target, "seed": seed, "config": cfg.__dict__,
              "reference_run": None if checkpoint else ref_run,
              "checkpoint_file": checkpoint, "versions": versions(),
              "wall_s": round(time.perf_counter() - t0, 2), "along_training": along}
    _write_json(out / "measure.json", record)
    keys = ["label", "step", "metric", "train_loss", "b_simple", "b_noise", "trace_hessian",
            "trace_sigma", "grad_norm_sq", "trace_h_sigma", "g_h_g"]
    with open(out / "measure.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(keys + ["b_simple_lo", "b_simple_hi", "b_noise_lo", "b_noise_hi",
                            "top_eigenvalue"])
        for a in along:
            wr.writerow([a[k] for k in keys] + (a["b_simple_ci"] or [None, None])
                        + (a["b_noise_ci"] or [None, None]) + [a["top_eigenvalues"][0]])

    click.echo(f"{workload}: {w.metric_name} target {w.target:g}; {curvature}, "
               f"{along[0]['n_examples']} examples, {along[0]['n_params']} parameters")
    click.echo(f"{'checkpoint':<12} {'step':>6} {'metric':>8} {'B_simple':>22} "
               f"{'B_noise':>22} {'lambda_max':>10} {'tr(H)':>9}")
    for a in along:
        bs, bn = _with_interval(a["b_simple"], a["b_simple_ci"]), \
            _with_interval(a["b_noise"], a["b_noise_ci"])
        click.echo(f"{a['label']:<12} {a['step']:>6d} {_fmt(a['metric']):>8} {bs:>22} {bn:>22} "
                   f"{_fmt(a['top_eigenvalues'][0]):>10} {_fmt(a['trace_hessian']):>9}")
        if a["two_batch"]:
            tb = a["two_batch"]
            click.echo(f"{'':<12} two-batch B_simple ({tb['b_small']}, {tb['b_big']}; "
                       f"{tb['draws']} draws) = "
                       f"{_with_interval(tb['b_simple'], tb['b_simple_ci'])}")
    click.echo(f"top eigenvalues at {along[-1]['label']}: "
               + ", ".join(_fmt(v, ".3g") for v in along[-1]["top_eigenvalues"][:10])
               + (" ..." if len(along[-1]["top_eigenvalues"]) > 10 else ""))
    from figures.plots import measured_spectrum, noise_along_training
    measured_spectrum(along[-1], spectra[-1], out / "spectrum.png",
                      title=f"{workload} at {along[-1]['label']} ({curvature})")
    files = "spectrum.npz, measure.json, measure.csv, spectrum.png"
    if len(along) > 1:
        noise_along_training(along, out / "noise_scale.png", title=f"{workload}: noise scale")
        files += ", noise_scale.png"
    click.echo(f"wrote {out}/{files} (and per-checkpoint spectrum_*.npz)")
    click.echo(f"next: nqm predict --spectrum {out / 'spectrum.npz'} --target LOSS")


def read_measurements(path) -> tuple[list[float], list[float | None]]:
    """CSV with columns batch_size,steps; empty/none/null/inf steps mean 'not reached'."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"file not found: {path}")
    try:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = {"batch_size", "steps"} - set(fields)
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                 f"(found {', '.join(fields) or 'none'})")
            b, s = [], []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                try:
                    bb = float(row["batch_size"])
                    raw = row["steps"].lower()
                    ss = None if raw in ("", "none", "null", "inf", "nan") else float(raw)
                except ValueError:
                    raise InputError(f"{path}, line {line}: non-numeric value in "
                                     f"{row}") from None
                b.append(bb)
                s.append(ss)
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text CSV file") from None
    if not b:
        raise InputError(f"{path} has no data rows")
    return b, s


@cli.command()
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False),
              help="Your measurements: columns batch_size,steps.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=1000,
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False))
@_input_errors
def fit(csv_path, n_boot, seed, json_path, plot_path):
    """S_min, E_min and both critical batch sizes from your measured steps per batch size.
    A batch size given more than once counts once, with the geometric mean of its steps."""
    from nqm.critical import estimate

    b, s = read_measurements(csv_path)
    est = estimate(b, s, n_resamples=n_boot, seed=seed)
    if est.s_min is None:
        raise InputError(f"{csv_path}: need reached steps at two or more batch sizes")
    crit, s_min, e_min = dict(est.values), est.s_min, est.e_min
    result = {"points": [{"batch_size": bb, "steps": ss, "reached": ss is not None}
                         for bb, ss in zip(b, s)],
              "critical_batch_size": crit, "s_min": s_min, "e_min": e_min,
              "confidence_95": est.interval, "critical_batch_size_flags": est.flags(),
              "bootstrap": {"resamples": n_boot, "seed": seed,
                            "method": "residual (relative residuals)"}}
    _print_critical(crit, s_min, e_min, result)
    if json_path:
        _write_json(json_path, result)
    if plot_path:
        from figures.plots import fit_plot
        fit_plot(result, plot_path)


def main():
    cli(prog_name="nqm")


if __name__ == "__main__":
    main()
