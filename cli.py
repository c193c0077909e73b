"""`nqm`: steps to target versus batch size, and the critical batch size.

Each command parses its options, calls one library pipeline with a frozen configuration, and
prints (`figures.text`) and writes the record it returns.  Heavy modules (numba kernels,
matplotlib, torch) are imported inside the commands that need them, so `nqm --help` is instant.
Every error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from cli_types import (  # noqa: F401  (InputError, _input_errors: the CLI's error API)
    DEVICE,
    DIR,
    FILE,
    JSON,
    NQM_THREADS,
    OPTIMIZER,
    PLOT,
    QUIET,
    SCHEDULE,
    SPECTRUM,
    TORCH_OPTIMIZERS,
    TORCH_THREADS,
    WORKLOAD,
    BatchSizes,
    FloatList,
    InputError,
    IntList,
    _bar,
    _compile_notice,
    _echo,
    _Group,
    _input_errors,
    _LateBar,
    _stderr,
    check_outputs,
    opt,
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nqm-batchsize", prog_name="nqm")
def cli():
    """How many steps does training take at each batch size, and where does more data
    parallelism stop paying off?  A noisy quadratic model checked against real training."""


@cli.command()
@SPECTRUM
@OPTIMIZER
@opt("--precond", type=float, default=0.0, show_default=True,
     help="Preconditioner exponent p: updates use H^-p (0 = none, 1 = Newton).")
@opt("--ema", is_flag=True, help="Also tune an exponential moving average of iterates.")
@SCHEDULE
@opt("--target", type=float, default=None,
     help="Target loss (default: a measured spectrum's train-loss rule, else 0.01).")
@opt("--batch-sizes", type=BatchSizes(), default="1:1048576", show_default=True,
     help="Comma-separated integers, or LO:HI for every power of two in between.")
@opt("--max-steps", type=int, default=None,
     help="Step budget; targets not reached within it are reported as not reached "
          "(default 10^8; 10^6 with --noise loss-following).")
@opt("--noise", type=click.Choice(["additive", "loss-following"]), default="additive",
     show_default=True,
     help="additive: the spectrum's c. loss-following: least squares' noise "
          "c_i(s) = h_i^2 s_i + h_i sum_j h_j s_j + sigma^2 h_i (sgd, momentum; ignores c).")
@opt("--label-noise", type=float, default=None,
     help="sigma of the loss-following noise (required with it).")
@opt("--noise-scale", "noise_scale", type=click.Choice(["measured", "loss-matched"]),
     default="measured", show_default=True,
     help="measured: the spectrum's c as measured. loss-matched: c times rho = L0 / (l_0 - "
          "l_floor), the measured noise in the quadratic's loss units, as the target of the "
          "train-loss rule (needs a spectrum measured with --at-step 0; nqm.noise_units).")
@opt("--protocol-trials", type=int, default=None,
     help="Also simulate a sweep with N Sobol trials per batch size: median [16%, 84%] of "
          "the best trial's first evaluated crossing (sgd, momentum; up to 4096 directions).")
@opt("--repeats", type=int, default=None, help="Simulated sweeps per batch size (default 16).")
@opt("--seed", type=int, default=None, help="Seed of the simulated sweeps (default 0).")
@opt("--lr-range", type=FloatList(), default=None,
     help="LO,HI: the simulated sweep's initial lr range (default 0.001,3).")
@opt("--budget", type=int, default=None,
     help="Steps per simulated trial (default 40000).")
@JSON
@opt("--csv", "csv_path", type=FILE, help="Write CSV here.")
@PLOT
@QUIET
@NQM_THREADS
@_input_errors
def predict(spec, optimizer, precond, ema, schedule, warmup, final_frac, target, batch_sizes,
            max_steps, noise, label_noise, noise_scale, protocol_trials, repeats, seed,
            lr_range, budget, json_path, csv_path, plot_path, quiet, threads):
    """Tuned steps to reach TARGET loss at every batch size, and the critical batch sizes."""
    check_outputs(json_path=json_path, csv_path=csv_path, plot_path=plot_path)
    from figures.text import modes_lines, predict_lines
    from nqm.files import write_json, write_predict_csv
    from nqm.noise_units import loss_matched_spectrum
    from nqm.predict import PredictConfig, implied_target
    from nqm.predict_sweep import LOSS_FOLLOWING_MAX_STEPS, ModesConfig, predict_modes
    from nqm.schedule import parse_schedule
    from nqm.spectrum import parse_spec

    if noise_scale != "measured" and noise != "additive":
        raise InputError("--noise-scale loss-matched scales the spectrum's c, which "
                         "--noise loss-following ignores")
    spectrum = parse_spec(spec)
    drop = None
    if noise_scale != "measured" and Path(spec).is_file():   # as nqm calibrate finds it
        from empirical.adapter import loss_drop
        drop = loss_drop(spectrum, spec)
    spectrum, kappa0 = loss_matched_spectrum(spectrum, noise_scale, drop)
    if noise_scale != "measured":
        _stderr(f"noise c scaled by rho = L0 / (l_0 - l_floor) = {kappa0:.4g} "
                f"(the measured noise in the quadratic's loss units)")
    if target is None:
        target, note = implied_target(spectrum)
        if note:
            _stderr(note)
    if max_steps is None:
        max_steps = LOSS_FOLLOWING_MAX_STEPS if noise == "loss-following" else 10**8
    base = PredictConfig(target=target, optimizer=optimizer, precond=precond, ema=ema,
                         schedule=parse_schedule(schedule, warmup, final_frac),
                         batch_sizes=batch_sizes, max_steps=max_steps, threads=threads)
    config = ModesConfig(base, noise, label_noise,
                         _protocol(protocol_trials, repeats, seed, lr_range, budget))
    config.check(spectrum)   # target below the initial loss, memory, cost: before any work
    _compile_notice(optimizer, ema)
    units = len(base.batch_sizes) * (1 + (config.protocol is not None))
    with _bar(units, "tuning batch sizes", quiet) as bar:
        result = predict_modes(spectrum, config, progress=bar.update)
    lines = predict_lines if config.plain else modes_lines
    _echo(lines(result, spectrum.meta.get("source", spec), spectrum.n_rows, spectrum.dimension))
    click.echo(f"({result['elapsed_s']:.2f} s)")
    if json_path:
        write_json(json_path, result)
    if csv_path:
        write_predict_csv(csv_path, result)
    if plot_path:
        from figures.plots import steps_vs_batch
        steps_vs_batch(result, plot_path)


def _protocol(trials, repeats, seed, lr_range, budget):
    """The simulated sweep of `predict`, or None without --protocol-trials (whose companion
    options are then refused)."""
    from nqm.predict_sweep import Protocol

    given = {"--repeats": repeats, "--seed": seed, "--lr-range": lr_range, "--budget": budget}
    if trials is None:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise InputError(f"{', '.join(extra)} need --protocol-trials N")
        return None
    chosen = {"repeats": repeats, "seed": seed, "lr_range": lr_range, "budget": budget}
    return Protocol(trials, **{k: v for k, v in chosen.items() if v is not None})


@cli.command()
@SPECTRUM
@OPTIMIZER
@opt("--lr", type=float, required=True, help="(Peak) learning rate.")
@opt("--momentum", type=float, default=0.0, show_default=True)
@opt("--precond", type=float, default=0.0, show_default=True)
@opt("--ema", type=float, default=None, help="EMA decay gamma of the iterates.")
@SCHEDULE
@opt("--horizon", type=int, default=None, help="Schedule horizon (default --steps).")
@opt("--batch-size", type=float, required=True)
@opt("--steps", "n_steps", type=click.IntRange(min=0), required=True)
@opt("--target", type=float, default=None, help="Also report the first step <= it.")
@opt("--monte-carlo", "mc_runs", type=click.IntRange(min=0), default=0,
     help="Also sample N runs of the stochastic iteration.")
@opt("--seed", type=int, default=0, show_default=True)
@opt("--points", type=int, default=2000, show_default=True,
     help="Steps reported in JSON (log-spaced when fewer than all; 0 = all).")
@JSON
@PLOT
@_input_errors
def simulate(spec, optimizer, lr, momentum, precond, ema, schedule, warmup, final_frac, horizon,
             batch_size, n_steps, target, mc_runs, seed, points, json_path, plot_path):
    """Expected loss curve of one configuration (exact; optionally with Monte Carlo)."""
    check_outputs(json_path=json_path, plot_path=plot_path)
    from figures.text import simulate_lines
    from nqm.files import finite_or_none, write_json
    from nqm.optimizer import OptimizerConfig
    from nqm.schedule import parse_schedule
    from nqm.simulate import SimulateConfig, display_steps
    from nqm.simulate import simulate as run_simulate
    from nqm.spectrum import parse_spec

    spectrum = parse_spec(spec)
    opt_config = OptimizerConfig(optimizer, lr=lr, momentum=momentum, precond=precond, ema=ema)
    config = SimulateConfig(opt_config, batch_size, n_steps,
                            parse_schedule(schedule, warmup, final_frac), horizon, target,
                            mc_runs, seed, points)
    config.check(spectrum)
    _compile_notice(optimizer, ema)
    result = run_simulate(spectrum, config, warn=_stderr)
    _echo(simulate_lines(result, display_steps(result["steps"], n_steps), n_steps))
    if json_path:
        result["loss"] = finite_or_none(result["loss"])
        write_json(json_path, result)
    if plot_path:
        from figures.plots import loss_curve
        loss_curve(result, plot_path)


FIGURE_MODES = ("noise_log", "sweep_dir", "calibration", "measure_dir")
TUNING_OPTIONS = ("spec", "target", "batch_sizes", "threads")


@cli.command()
@opt("--out", "out_dir", default="out/figures", show_default=True, type=DIR,
     help="Directory for the figures.  Without --out: out/figures, or out/figures-2, -3, ... "
          "if that holds files (nothing is overwritten).  An explicit --out is written into, "
          "replacing files of the same names (the committed copy of the tuned figures: --out "
          "figures/nqm; a sweep's own figures: --sweep DIR --out DIR).")
@SPECTRUM
@opt("--target", type=float, default=0.01, show_default=True)
@opt("--batch-sizes", type=BatchSizes(), default="1:1048576", show_default=True)
@opt("--noise-log", type=FILE, default=None,
     help="Instead: plot this noise-scale log (empirical.track) as OUT/noise_scale_tracked.png.")
@opt("--sweep", "sweep_dir", type=click.Path(file_okay=False, exists=True), default=None,
     help="Instead: draw the figures of the `nqm sweep` in this directory (from its "
          "summary.json and records.jsonl or trials.csv).")
@opt("--calibration", multiple=True, type=FILE, metavar="FILE [FILE ...]",
     help="Instead: redraw records of `nqm calibrate --json` (or of figures.run_validation). "
          "Per NAME.json: OUT/NAME.png|pdf (steps and tuned lr against B), "
          "OUT/NAME-examples.png|pdf (examples against steps), the same two as "
          "OUT/NAME-transfer-OPT*.png|pdf per transfer; over two or more records "
          "OUT/bcrit_scatter.png|pdf.")
@opt("--measure", "measure_dir", type=click.Path(file_okay=False), default=None,
     help="Instead (or with --calibration): redraw the `nqm measure` directory's spectrum "
          "and noise scale along training as OUT/spectrum.png|pdf, OUT/noise_scale.png|pdf.")
@click.argument("more_records", nargs=-1, type=FILE, metavar="[FILE]...")
@QUIET
@NQM_THREADS
@_input_errors
def figures(out_dir, spec, target, batch_sizes, noise_log, sweep_dir, calibration, measure_dir,
            more_records, quiet, threads):
    """Tune SGD, momentum, Nesterov, preconditioned SGD and SGD+EMA on one spectrum and write
    OUT/steps_vs_batch_by_optimizer.png plus a JSON and CSV summary per optimizer.  The files
    hold no wall-clock times: a rerun with the same versions and Numba thread count gives
    byte-identical JSON and CSV (the thread count changes the last digits of tuned rates).

    \b
    Or redraw results (nothing is tuned: --spectrum, --target, --batch-sizes and --threads
    are refused, --quiet has nothing to silence):
      --noise-log FILE       the tracked B_simple against step;
      --sweep DIR            the sweep's steps and examples, targets and sensitivity figures;
      --calibration FILE...  theory against experiment from calibration records;
      --measure DIR          the measured spectrum and the noise scale along training.
    Give one of these; only --calibration and --measure go together.  Every file is
    checked before anything is drawn."""
    ctx = click.get_current_context()
    calibration = (*calibration, *more_records)
    if more_records and len(calibration) == len(more_records):
        raise InputError(f"unexpected argument {more_records[0]}: calibration records follow "
                         "--calibration")
    given = {"noise_log": noise_log, "sweep_dir": sweep_dir, "calibration": calibration,
             "measure_dir": measure_dir}
    _check_figure_modes(ctx, [m for m in FIGURE_MODES if given[m]])
    explicit = ctx.get_parameter_source("out_dir").name == "COMMANDLINE"
    out = Path(out_dir) if explicit else _fresh_dir(Path(out_dir))
    if sweep_dir is not None:
        _sweep_figures(sweep_dir, out)
    elif noise_log:
        _plot_noise_log(noise_log, out)
    elif calibration or measure_dir:
        _record_figures(calibration, measure_dir, out)
    else:
        _tuned_figures(spec, target, batch_sizes, out, quiet, threads)
    if out != Path(out_dir):      # said after the work, so that an error stays one line
        _stderr(f"{out_dir} is not empty: wrote to {out} instead (--out DIR to choose)")


def _check_figure_modes(ctx, modes: list[str]) -> None:
    """At most one redraw mode (--calibration with --measure is one), and no tuning options
    with any of them."""
    flag = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
    if len(modes) > 1 and set(modes) != {"calibration", "measure_dir"}:
        a, b = _conflicting_pair(modes)
        raise InputError(f"give {flag[a]} or {flag[b]}, not both")
    if modes:
        for name in TUNING_OPTIONS:
            if ctx.get_parameter_source(name).name == "COMMANDLINE":
                raise InputError(f"{flag[name]} only applies when tuning (nothing is tuned "
                                 f"with {flag[modes[0]]})")


def _conflicting_pair(modes: list[str]) -> tuple[str, str]:
    """The first two modes that cannot go together."""
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            if {a, b} != {"calibration", "measure_dir"}:
                return a, b
    raise AssertionError(modes)


def _fresh_dir(path: Path) -> Path:
    """`path` if it does not exist or is empty, else the first free `path`-2, -3, ..."""
    candidate, n = path, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _tuned_figures(spec, target, batch_sizes, out: Path, quiet, threads) -> None:
    """`nqm figures` without a redraw option: tune five optimizers on one spectrum."""
    from figures.plots import compare_optimizers as plot_compare
    from figures.plots import steps_vs_batch
    from figures.text import compare_lines
    from nqm.compare import OPTIMIZER_SET, CompareConfig, compare_optimizers, slug
    from nqm.files import write_compare_csv, write_json
    from nqm.spectrum import parse_spec

    spectrum = parse_spec(spec)
    config = CompareConfig(target=target, batch_sizes=batch_sizes, threads=threads)
    out.mkdir(parents=True, exist_ok=True)
    _compile_notice("momentum")         # SGD's kernels and the 2 x 2 ones
    with _bar(len(OPTIMIZER_SET) * len(batch_sizes), "tuning", quiet) as bar:
        results = compare_optimizers(spectrum, config, progress=bar.update)
    seconds = {name: res.pop("elapsed_s") for name, res in results.items()}  # printed only
    _echo(compare_lines(results)[:1])
    for (name, res), line in zip(results.items(), compare_lines(results)[1:]):
        write_json(out / f"{slug(name)}.json", res)
        write_compare_csv(out / f"{slug(name)}.csv", res)
        steps_vs_batch(res, out / f"{slug(name)}.png", title=f"NQM, {name}")
        click.echo(line)
    plot_compare(results, out / "steps_vs_batch_by_optimizer.png",
                 title=f"NQM {spectrum.meta.get('source', spec)}, target {target:g}")
    click.echo("(" + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()) + ")")
    click.echo(f"wrote {out}/")


def _record_figures(calibration: tuple[str, ...], measure_dir: str | None, out: Path) -> None:
    """`nqm figures --calibration/--measure`: every file is read and checked before any
    figure is drawn, so a bad file leaves nothing half written."""
    from figures.record_figures import calibration_figures, check_names, measure_figures
    from nqm.records import load_calibration, load_measurement

    files = [load_calibration(p) for p in calibration]
    check_names(files)
    measurement = load_measurement(measure_dir) if measure_dir else None
    out.mkdir(parents=True, exist_ok=True)
    written = calibration_figures(files, out) if files else []
    if files and not any(p.stem == "bcrit_scatter" for p in written):
        _stderr("no B_crit scatter: it needs two or more records with a measured B_crit")
    if measurement is not None:
        written += measure_figures(measurement, out)
        if len(measurement.along) == 1:
            _stderr(f"{measure_dir}: one checkpoint: no noise-scale figure")
    click.echo(f"wrote {len(written)} files to {out}/: "
               + ", ".join(sorted({p.stem for p in written})))


def _plot_noise_log(path, out: Path) -> None:
    """`nqm figures --noise-log`: the tracked B_simple against step, and a short table."""
    from figures.plots import tracked_noise_scale
    from figures.text import tracked_lines
    from nqm.noise_log import load_noise_log

    log = load_noise_log(path)
    for note in log.notes:
        _stderr(f"warning: {note}")
    out.mkdir(parents=True, exist_ok=True)
    tracked_noise_scale(log, out / "noise_scale_tracked.png", title=f"tracked B_simple: {path}")
    _echo(tracked_lines(log))
    click.echo(f"wrote {out}/noise_scale_tracked.png")


def _sweep_figures(sweep_dir: str, out: Path) -> None:
    """`nqm figures --sweep`: the figures of a sweep directory, written to `out`."""
    from empirical.targets import sweep_figure_data
    from figures.plots import steps_vs_batch
    from figures.sweep_figures import sweep_figures

    record = sweep_figure_data(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = record["summary"]
    steps_vs_batch(summary, out / "steps_vs_batch.png",
                   title=f"{summary['workload']}, {summary['optimizer']}: steps to result")
    names = ["steps_vs_batch.png", *sweep_figures(record, out)]
    if record["trials"] is None:
        _stderr(f"no records.jsonl or trials.csv in {sweep_dir}: no sensitivity figure")
    click.echo(f"wrote {out}/{{{', '.join(names)}}}")


@cli.command()
def workloads():
    """List the real-training workloads with their targets and budgets."""
    from empirical.catalog import CATALOG, CUSTOM_MODELS
    from figures.text import workloads_lines

    _echo(workloads_lines(CATALOG, CUSTOM_MODELS))


@cli.command()
@WORKLOAD
@opt("--optimizer", type=TORCH_OPTIMIZERS, default="momentum", show_default=True)
@opt("--batch-sizes", type=BatchSizes(), default="8:512", show_default=True)
@opt("--trials", type=click.IntRange(min=2), default=16, show_default=True)
@opt("--budget", type=click.IntRange(min=1), default=None, help="Step budget.")
@opt("--epoch-budget", type=float, default=None,
     help="Train every trial E epochs (ceil(E*N/B) steps) and report the best metric per "
          "batch size instead of steps to result.")
@opt("--quality", is_flag=True,
     help="Train every trial the whole --budget and report the best metric per batch size "
          "(solution quality) instead of steps to result.")
@opt("--decay", type=click.Choice(["constant", "linear"]), default="constant", show_default=True)
@opt("--targets", type=FloatList(), default=None, metavar="T1,T2,...",
     help="Several targets from one sweep instead of --target (strictly increasing; the "
          "smallest is trained for, the others are read from the same trials).")
@opt("--complete-trials", is_flag=True,
     help="Train every trial to the target or the budget (default: stop a round once "
          "some trial has reached the target; later steps cannot lower the minimum).")
@opt("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
     help="Where the batch sizes run.")
@opt("--scheduler", default=None, help="Dask scheduler address (with --executor dask).")
@opt("--workers", type=click.IntRange(min=1), default=1, show_default=True,
     help="Local worker processes (torch threads are split between them).")
@opt("--out", "out_dir", default="out/sweep", show_default=True, type=DIR)
@DEVICE
@QUIET
@TORCH_THREADS
@_input_errors
def sweep(workload, target, data, model, seed, optimizer, batch_sizes, trials, budget,
          epoch_budget, quality, decay, targets, complete_trials, executor, scheduler, workers,
          out_dir, device, quiet, threads):
    """Measure steps to result per batch size on real training, metaparameters tuned per batch
    size (Shallue et al.); with --epoch-budget or --quality, the best metric per batch size
    within a fixed budget.  Resumable: rerun the same command to continue (batch sizes may be
    added; other options into the same --out are refused)."""
    from empirical.device import resolve_device
    from empirical.executor import DaskExecutor, LocalExecutor
    from empirical.sweep import sweep as run_sweep
    from empirical.sweep import sweep_config
    from figures.plots import steps_vs_batch
    from figures.sweep_figures import summary_figures
    from figures.text import sweep_lines, targets_lines

    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    if target is not None and targets is not None:
        raise InputError("give either --target or --targets, not both")
    device = resolve_device(device)
    if device == "cuda" and executor == "local" and workers > 1:
        raise InputError("--device cuda trains in this process: use --workers 1 (CUDA cannot "
                         "be used in forked worker processes)")
    cfg = sweep_config(workload=workload, optimizer=optimizer, batch_sizes=batch_sizes,
                       n_trials=trials, seed=seed, budget=budget, target=target, decay=decay,
                       data=data, model=model, complete_trials=complete_trials,
                       targets=targets, device=device, epoch_budget=epoch_budget,
                       quality=quality)
    runner = DaskExecutor(scheduler) if executor == "dask" else LocalExecutor(workers)
    with _LateBar(len(cfg.batch_sizes), "batch sizes", quiet) as bar:
        summary = run_sweep(cfg, out_dir, runner, bar.update, _stderr, threads)
    out = Path(out_dir)
    if "best_metric" in summary:
        _budget_outputs(summary, out, trials)
        return
    _echo(sweep_lines(summary, workload, optimizer, trials))
    if "by_target" in summary:
        _echo(targets_lines(summary))
    steps_vs_batch(summary, out / "steps_vs_batch.png",
                   title=f"{workload}, {optimizer}: steps to result")
    extra = summary_figures(summary, out)
    click.echo(f"wrote {out}/records.jsonl, summary.json, summary.csv, trials.csv, "
               f"steps_vs_batch.png, {', '.join(extra)}")


def _budget_outputs(summary: dict, out: Path, trials: int) -> None:
    """Print and plot a fixed-budget sweep's best metric per batch size."""
    from figures.budgets import best_metric_vs_batch
    from figures.text import budget_lines

    _echo(budget_lines(summary, trials))
    best_metric_vs_batch(summary, out / "best_metric_vs_batch.png")
    click.echo(f"wrote {out}/records.jsonl, summary.json, summary.csv, best_metric_vs_batch.png")


@cli.command()
@WORKLOAD
@opt("--checkpoint", type=FILE, default=None,
     help="Measure at these parameters and buffers (a tensors-only torch file, the "
          "workload model's state_dict; buffers such as BatchNorm running statistics are "
          "required when the model has them); s0 is the displacement from the seed's "
          "initialisation to them.")
@opt("--at-step", "at_steps", type=IntList("comma-separated integers"), default=None,
     help="Train the reference run and measure at these steps (comma-separated; 0 is "
          "the initialisation).")
@opt("--at-target", is_flag=True,
     help="Also measure where the reference run first reaches the target.  Without "
          "--checkpoint/--at-step/--at-target: --at-step 0 --at-target.")
@opt("--top-k", type=click.IntRange(min=1), default=20, show_default=True)
@opt("--curvature", type=click.Choice(["hessian", "ggn"]), default="hessian",
     show_default=True, help="Hessian, or the positive semi-definite Gauss-Newton matrix.")
@opt("--examples", type=click.IntRange(min=2), default=None,
     help="Measure on a seeded random subset of this many training examples.")
@opt("--hessian-examples", type=click.IntRange(min=1), default=128, show_default=True,
     help="Examples for the mean of g'Hg in tr(H Sigma).")
@opt("--slq-vectors", type=click.IntRange(min=1), default=4, show_default=True)
@opt("--slq-steps", type=click.IntRange(min=2), default=40, show_default=True)
@opt("--bootstrap", "n_boot", type=click.IntRange(min=10), default=100, show_default=True)
@opt("--bins", type=click.IntRange(min=1), default=60, show_default=True,
     help="Bulk density bins in the spectrum file.")
@opt("--two-batch", type=IntList("two batch sizes B_SMALL,B_BIG", count=2), default=None,
     metavar="B_SMALL,B_BIG",
     help="Also estimate B_simple from pairs of batch gradients (no per-example "
          "gradients; McCandlish et al. appendix A), e.g. 8,256.")
@opt("--optimizer", type=TORCH_OPTIMIZERS, default=None,
     help="Reference run's optimizer (default: the workload's).")
@opt("--lr", type=float, default=None, help="Reference run's learning rate.")
@opt("--train-batch-size", type=click.IntRange(min=1), default=None,
     help="Reference run's batch size.")
@opt("--budget", type=click.IntRange(min=1), default=None, help="Reference run's step budget.")
@opt("--out", "out_dir", default="out/measure", show_default=True, type=DIR)
@DEVICE
@QUIET
@TORCH_THREADS
@_input_errors
def measure(workload, target, data, model, seed, checkpoint, at_steps, at_target, top_k,
            curvature, examples, hessian_examples, slq_vectors, slq_steps, n_boot, bins,
            two_batch, optimizer, lr, train_batch_size, budget, out_dir, device, quiet,
            threads):
    """Measure the curvature and gradient-noise spectra of a workload's network (Hessian or
    Gauss-Newton eigenpairs and density, per-example noise, B_simple and B_noise) and write the
    NQM spectrum that `nqm predict --spectrum` reads.  Resumable: rerunning the same command
    skips the checkpoints already measured (DIR/points/); other options into the same --out
    are refused."""
    from empirical.device import resolve_device
    from empirical.measure import MeasureConfig
    from empirical.measure_run import MeasureRunConfig, run_measure
    from figures.record_figures import measure_figures
    from figures.text import measure_lines
    from nqm.records import Measurement
    from nqm.spectrum import load as load_spectrum

    mcfg = MeasureConfig(top_k=top_k, kind=curvature, examples=examples,
                         hessian_examples=hessian_examples, slq_vectors=slq_vectors,
                         slq_steps=slq_steps, bootstrap=n_boot, two_batch=two_batch, seed=seed)
    config = MeasureRunConfig(workload, mcfg, checkpoint, at_steps or (), at_target, bins,
                              optimizer, lr, train_batch_size, budget, target, data, model,
                              seed, threads, resolve_device(device))
    start = time.perf_counter()
    with _LateBar(config.n_points, "checkpoints", quiet) as bar:
        record = run_measure(config, out_dir, bar.update, None if quiet else _stderr, _stderr)
    _echo(measure_lines(record))
    click.echo(f"({time.perf_counter() - start:.1f} s; the records hold no wall-clock times)")
    out = Path(out_dir)
    drawn = measure_figures(Measurement(record, load_spectrum(out / "spectrum.npz")), out,
                            formats=("png",))
    files = ", ".join(["spectrum.npz, measure.json, measure.csv", *(p.name for p in drawn)])
    click.echo(f"wrote {out}/{files} (and per-checkpoint spectrum_*.npz)")
    click.echo(f"next: nqm predict --spectrum {out / 'spectrum.npz'} --target LOSS")


@cli.command()
@opt("--csv", "csv_path", required=True, type=FILE,
     help="Your measurements: columns batch_size,steps.")
@opt("--bootstrap", "n_boot", type=click.IntRange(min=10), default=1000, show_default=True)
@opt("--seed", type=int, default=0, show_default=True)
@JSON
@PLOT
@_input_errors
def fit(csv_path, n_boot, seed, json_path, plot_path):
    """S_min, E_min and both critical batch sizes from your measured steps per batch size.
    A batch size given more than once counts once, with the geometric mean of its steps."""
    check_outputs(json_path=json_path, plot_path=plot_path)
    from figures.text import critical_lines
    from nqm.errors import NQMInputError
    from nqm.files import write_json
    from nqm.fit import FitConfig
    from nqm.fit import fit as run_fit
    from nqm.measurements import read_measurements

    b, s = read_measurements(csv_path)
    try:
        result = run_fit(b, s, FitConfig(bootstrap=n_boot, seed=seed))
    except NQMInputError as exc:
        raise InputError(f"{csv_path}: {exc}") from None
    _echo(critical_lines(result["critical_batch_size"], result["s_min"], result["e_min"],
                         result))
    if json_path:
        write_json(json_path, result)
    if plot_path:
        from figures.plots import fit_plot
        fit_plot(result, plot_path)


@cli.command()
@opt("--spectrum", "spectrum_path", default=None, type=FILE,
     help="Measured spectrum (.npz from `nqm measure`); or --path.")
@opt("--path", "path_dir", default=None, type=click.Path(),
     help="Instead of --spectrum: a `nqm measure` directory with two or more checkpoints of "
          "the reference run; the NQM is then the chain of their quadratics (path model).")
@opt("--runs", required=True, type=click.Path(), help="Sweep directory from `nqm sweep`.")
@opt("--fit-on", default="ends", show_default=True,
     help="ends | smallest | none | B1[,B2]: the batch sizes the two scalars are fitted on.")
@opt("--proxy", default=None, help="NQM stand-ins: adam=precond:0.25 (the default: SGD "
     "preconditioned by H^-0.25) or adam=adam (mean-field Adam, nqm.adam).")
@opt("--transfer", multiple=True, type=click.Path(),
     help="A sweep of another optimizer on the same workload and target, predicted without "
          "refit (the NQM's step budget covers these sweeps too, which can move the fit by a "
          "step: give the same ones to reproduce a record).")
@JSON
@opt("--csv", "csv_path", type=FILE, help="Write CSV here.")
@opt("--plot", "plot_path", type=FILE, help="Steps and tuned lr vs B (PNG and PDF).")
@opt("--noise-log", type=FILE, default=None,
     help="A noise-scale log (empirical.track): its B_simple as a further B_crit predictor.")
@opt("--predict", "prediction", type=click.Choice(["expected", "first-passage"]),
     default="expected", show_default=True,
     help="What the NQM predicts: the expected loss's first crossing, or what the sweep "
          "measures (the best of its trials' first evaluated crossing, approximated).")
@opt("--quantile", type=float, default=None,
     help="first-passage: the quantile of one run's loss that must meet the target "
          "(default: 1 / (1 + sqrt(trials) / 2) from the sweep's trials).")
@opt("--slow-row", is_flag=True, default=False,
     help="Keep the directions the measurement dropped (h <= h_floor) as one row at "
          "h = F * h_floor holding their even share of |theta_init - theta_ref|^2.")
@opt("--slow-row-factor", type=float, default=1.0, show_default=True,
     help="F of --slow-row.")
@opt("--noise", "noise_model", type=click.Choice(["constant", "loss-following"]),
     default="constant", show_default=True,
     help="loss-following: noise kappa c (L + l_noise)/(L_ref + l_noise), l_noise fitted on "
          "the checkpoints of --checkpoints (sgd, momentum and precond stand-ins only).")
@opt("--checkpoints", type=FILE, default=None,
     help="measure.json of the reference run (default: the one beside --spectrum).")
@opt("--noise-scale", "noise_scale", type=click.Choice(["measured", "loss-matched"]),
     default="measured", show_default=True,
     help="kappa where it is not fitted (--fit-on with one batch size, or none): measured = 1; "
          "loss-matched = L0 / (l_0 - l_floor), the measured noise in the quadratic's loss "
          "units (needs the initial train loss). With --path: every segment's noise in its own "
          "loss units, in every mode.")
@NQM_THREADS
@_input_errors
def calibrate(spectrum_path, path_dir, runs, fit_on, proxy, transfer, json_path, csv_path,
              plot_path, noise_log, prediction, quantile, slow_row, slow_row_factor, noise_model,
              checkpoints, noise_scale, threads):
    """Fit the NQM of a measured spectrum to a measured sweep (target fraction, noise scale),
    predict every batch size and the critical batch sizes beside the null hyperbola through
    the same points, and predict other optimizers' sweeps without refit."""
    from figures.calibrate_report import calibrate_lines, write_calibrate_csv
    from nqm.calibrate import CalibrateConfig, fit_batch_sizes, fit_misses, parse_fit_on
    from nqm.calibrate import calibrate as run_calibrate
    from nqm.files import write_json
    from nqm.noise_log import load_noise_log
    from nqm.spectrum import load
    from nqm.sweep_data import load_sweep, parse_proxy

    check_outputs(json_path=json_path, csv_path=csv_path, plot_path=plot_path)
    ctx = click.get_current_context()
    given = {n: ctx.get_parameter_source(n).name == "COMMANDLINE"
             for n in ("slow_row_factor", "checkpoints")}
    if given["slow_row_factor"] and not (slow_row and slow_row_factor > 0):
        raise InputError(f"--slow-row-factor must be > 0 and goes with --slow-row, got "
                         f"{slow_row_factor}{'' if slow_row else ' without --slow-row'}")
    if given["checkpoints"] and noise_model != "loss-following":
        raise InputError("--checkpoints goes with --noise loss-following")
    if quantile is not None and prediction != "first-passage":
        raise InputError("--quantile needs --predict first-passage")
    if noise_model == "loss-following" and prediction != "expected":
        raise InputError("--noise loss-following goes with --predict expected only")
    if (spectrum_path is None) == (path_dir is None):
        raise InputError("give either --spectrum FILE or --path DIR")
    if path_dir is not None and (slow_row or noise_model != "constant" or
                                 prediction != "expected"):
        raise InputError("--path goes with the expected loss and constant noise only (not "
                         "--slow-row, --noise loss-following or --predict first-passage)")
    path = None
    if path_dir is not None:
        from empirical.adapter import path_from_measure
        path, spectrum = path_from_measure(path_dir)
    elif slow_row:
        from empirical.adapter import spectrum_with_slow_row
        spectrum = spectrum_with_slow_row(spectrum_path, slow_row_factor)
    else:
        spectrum = load(spectrum_path)
    sweep = load_sweep(runs)
    others = tuple(load_sweep(t) for t in transfer)
    tracked = load_noise_log(noise_log) if noise_log else None
    line = None
    if noise_model == "loss-following":
        from nqm.noise_line import line_from_measure

        line = line_from_measure(checkpoints or Path(spectrum_path).parent / "measure.json",
                                 spectrum.initial_loss(), spectrum.meta)
    config = CalibrateConfig(fit_on=parse_fit_on(fit_on),
                             proxy=tuple(parse_proxy(proxy).items()), threads=threads,
                             predict=prediction, quantile=quantile, noise_line=line,
                             path=path, noise_scale=noise_scale)
    drop = None
    if noise_scale != "measured" and path is None and \
            len(fit_batch_sizes(sweep, config.fit_on)) < 2:
        from empirical.adapter import loss_drop
        drop = loss_drop(spectrum, spectrum_path)
    _compile_notice("momentum" if any(config.nqm_optimizer(s.optimizer)[0] in
                                      ("momentum", "nesterov") for s in (sweep, *others))
                    else "sgd")
    record = run_calibrate(spectrum, sweep, config, transfer=others, noise_log=tracked,
                           loss_drop=drop)
    _echo(calibrate_lines(record))
    for w in fit_misses(record) + record["warnings"] + \
            [w for t in record["transfer"] for w in t["warnings"]] + \
            record.get("tracked_b_simple", {}).get("notes", []):
        _stderr(f"warning: {w}")
    if json_path:
        write_json(json_path, record)
    if csv_path:
        write_calibrate_csv(record, csv_path)
    if plot_path:
        from figures.calibration import calibration_figure
        calibration_figure(record, plot_path, f"{record['workload']}, {record['optimizer']}")


@cli.command()
@opt("--out", "out_dir", default="out/demo", show_default=True, type=DIR)
@opt("--batch-sizes", type=BatchSizes(), default="1,4,16,64,256,1024", show_default=True)
@opt("--trials", type=click.IntRange(min=2), default=16, show_default=True)
@opt("--target", type=float, default=0.005, show_default=True, help="linreg's excess loss.")
@opt("--budget", type=click.IntRange(min=1), default=None, help="Step budget per trial.")
@QUIET
@TORCH_THREADS
@_input_errors
def demo(out_dir, batch_sizes, trials, target, budget, quiet, threads):
    """The whole loop on linreg in a minute or two: sweeps (SGD, momentum), the spectra where the
    reference run meets the target, the NQM calibrated on SGD's two ends against the null
    hyperbola, momentum predicted without refit, figures and a summary."""
    from empirical.demo import DemoConfig, summary_lines
    from empirical.demo import demo as run_demo
    from figures.calibrate_report import calibrate_lines
    from figures.calibration import calibration_figure, examples_figure
    from figures.plots import steps_vs_batch
    from nqm.files import write_json

    config = DemoConfig(target=target, batch_sizes=batch_sizes, trials=trials, budget=budget,
                        threads=threads)
    _compile_notice("momentum")         # the demo tunes SGD and momentum
    with _bar(config.units, "demo", quiet) as bar:
        result = run_demo(config, out_dir, progress=bar.update,
                          stage=None if quiet else lambda m: _stderr(f"\n{m}"))
    out, rec = Path(out_dir), result["calibration"]
    write_json(out / "calibration.json", rec)
    for opt_name, summary in result["sweeps"].items():
        steps_vs_batch(summary, out / f"sweep-{opt_name}" / "steps_vs_batch.png",
                       title=f"linreg, {opt_name}: steps to result")
    written = calibration_figure(rec, out / "calibration", f"linreg, {rec['optimizer']}")
    written += examples_figure(rec, out / "examples", f"linreg, {rec['optimizer']}")
    _echo(calibrate_lines(rec))
    click.echo("")
    _echo(summary_lines(result))
    click.echo(f"wrote {out}/calibration.json, " + ", ".join(p.name for p in written)
               + ", sweep-*/, measure/")


def main():
    cli(prog_name="nqm")


if __name__ == "__main__":
    main()
