"""Theory meets experiment: the NQM of every measured spectrum against every reference sweep.

    python -m figures.run_validation [--out DIR] [--workloads a,b] [--threads N]
                                     [--spectra DIR] [--sweeps DIR] [--no-proxy-scan]
                                     [--slow-row [--slow-row-factor F]]
                                     [--predict expected|first-passage [--quantile Q]]
                                     [--noise constant|loss-following|constant-coupled]
                                     [--path DIR] [--adam precond|mean-field]
                                     [--from-records]

For every workload W with a measured spectrum (figures/measure/W/spectrum_target.npz) and every
reference sweep W-OPT (figures/sweeps/W-OPT/summary.json), with `nqm.calibrate`:

  zero-run   no fit: target fraction from the train-loss rule, kappa = 1 (the measured noise);
  ends       (f, kappa) fitted on the smallest and largest batch size, judged on the others
             against the null hyperbola through the same two points;
  one-run    f fitted on the smallest batch size alone, kappa = 1;
  transfer   the SGD sweep's fitted (f, kappa) predicts the momentum and Adam sweeps, no refit;
  adam proxy the exponent p of Adam's stand-in (H^-p preconditioned SGD) scanned over
             PROXY_GRID on the transfer from SGD: chosen on PROXY_FIT_ON, judged on the rest.

With --slow-row every spectrum gets its dropped directions back as one row at
h = F * h_floor (`empirical.adapter.spectrum_with_slow_row`; F = 1 by default).
With --predict first-passage the NQM predicts what the sweep measures (`nqm.passage_quantile`).
With --noise loss-following every mode uses noise that follows the loss,
kappa c (L + l_noise) / (L_ref + l_noise), l_noise from the noise line through the reference
measurement's checkpoints (`nqm.noise_line`, SPECTRA/W/measure.json); no proxy scan.
--noise constant-coupled: the constant noise through that model's tuner (l_noise = inf), to
separate the noise model from the tuner.
With --noise-scale loss-matched the one-run and zero-run modes take kappa = L0 / (l_0 - l_floor),
the measured noise in the quadratic's loss units (`nqm.noise_units`), instead of kappa = 1; with
--path every segment's noise is scaled by its own rho_j = L0_j / (l_j - l_floor), in every mode.
With --adam mean-field Adam's stand-in is the mean-field Adam of `nqm.adam` (its preconditioner
one scalar, unaligned with H) instead of SGD preconditioned by H^-0.25, on the single quadratic
or with --path on the path (`nqm.adam_path`); no proxy scan.
With --path DIR every mode uses the path model (`nqm.path_model`): the quadratics measured at
the checkpoints of DIR/W (`nqm measure` with --at-step ... --at-target) chained along the
reference run, f the last segment's fraction (its zero-run value the train-loss rule between
the last two checkpoints); no proxy scan.

Writes OUT/<W>-<OPT>.json (one record per mode), OUT/summary.json, OUT/bcrit_scatter.png|pdf,
the figures OUT/<W>-<OPT>.png|pdf (steps and tuned lr against B: measured, calibrated NQM, null)
and OUT/<W>-<OPT>-examples.png|pdf (not with --no-sweep-figures); prints a Markdown table.
No wall-clock values are written, so regenerating gives the same files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from empirical.adapter import (
    loss_drop,
    loss_floor,
    path_from_measure,
    spectrum_with_slow_row,
    target_fraction_rule,
)
from figures.calibration import bcrit_scatter, calibration_figure, examples_figure
from nqm.calibrate import CalibrateConfig, calibrate
from nqm.errors import NQMInputError
from nqm.noise_line import NoiseLine, line_from_measure
from nqm.spectrum import load
from nqm.sweep_data import DEFAULT_PROXY, load_sweep

ROOT = Path(__file__).resolve().parent
OPTIMIZERS = ("sgd", "momentum", "adam")
PROXY_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
PROXY_FIT_ON = ("linreg", "logreg-digits")


def f_rule(workload: str, spectra: Path) -> float | None:
    """The train-loss rule from the reference measurement's train losses (init, target); None
    (no zero-run) with a one-line note when the measurement lacks either point."""
    m = json.loads((spectra / workload / "measure.json").read_text())
    pts = {p["label"]: p for p in m["along_training"]}
    missing = [k for k in ("init", "target") if k not in pts]
    if missing:
        print(f"{workload}: measure.json has no {' or '.join(missing)} point, so no train-loss "
              "rule: zero-run skipped (measure with --at-step 0 --at-target)", file=sys.stderr)
        return None
    return target_fraction_rule(pts["init"]["train_loss"], pts["target"]["train_loss"],
                                loss_floor({"workload": workload}))


def load_spectrum(path: Path, slow_row: float | None):
    """The spectrum at `path`; with `slow_row` = F its dropped directions as one row at
    h = F * h_floor."""
    return load(path) if slow_row is None else spectrum_with_slow_row(path, slow_row)


def _run(spectrum, sweep, fit_on, rule, threads, transfer=(), predict="expected",
         quantile=None, line=None, path=None, noise_scale="measured", drop=None,
         adam="precond"):
    proxy = dict(DEFAULT_PROXY)
    if adam == "mean-field":
        proxy["adam"] = ("adam", 0.0)
    return calibrate(spectrum, sweep, CalibrateConfig(fit_on=fit_on, threads=threads,
                                                      predict=predict, quantile=quantile,
                                                      noise_line=line, path=path,
                                                      noise_scale=noise_scale,
                                                      proxy=tuple(proxy.items())),
                     transfer=transfer, f_rule=rule, loss_drop=drop)


def noise_line(workload: str, spectra: Path, spectrum):
    """The loss-following noise line of the workload's reference measurement."""
    return line_from_measure(spectra / workload / "measure.json", spectrum.initial_loss(),
                             {**spectrum.meta,
                              "loss_floor": loss_floor({"workload": workload})})


def validate(workload: str, threads: int | None, spectra: Path, sweep_dir: Path,
             predict: str = "expected", quantile: float | None = None,
             slow_row: float | None = None, noise: str = "constant",
             path_dir: Path | None = None, noise_scale: str = "measured",
             adam: str = "precond") -> dict:
    """Every mode of the module docstring for one workload's sweeps: {optimizer: {mode: record}}."""
    path = None
    if path_dir is not None:
        path, spectrum = path_from_measure(path_dir / workload)
        rule = path.last_rule
    else:
        spectrum = load_spectrum(spectra / workload / "spectrum_target.npz", slow_row)
        rule = f_rule(workload, spectra)
    line = (noise_line(workload, spectra, spectrum) if noise == "loss-following" else
            NoiseLine(0.0, 1.0, 0, math.inf, 0.0) if noise == "constant-coupled" else None)
    sweeps = {o: load_sweep(sweep_dir / f"{workload}-{o}") for o in OPTIMIZERS
              if (sweep_dir / f"{workload}-{o}" / "summary.json").exists()}
    how = {"predict": predict, "quantile": quantile, "line": line, "path": path,
           "noise_scale": noise_scale, "adam": adam,
           "drop": None if noise_scale == "measured" or path is not None else
           loss_drop(spectrum, spectra / workload / "spectrum_target.npz")}
    out = {}
    for opt, sweep in sweeps.items():
        out[opt] = {"zero_run": _run(spectrum, sweep, "none", rule, threads, **how)
                    if rule else None,
                    "ends": _run(spectrum, sweep, "ends", rule, threads,
                                 transfer=tuple(s for o, s in sweeps.items() if o != opt)
                                 if opt == "sgd" else (), **how),
                    "one_run": _run(spectrum, sweep, "smallest", rule, threads, **how)}
    return out


def adam_proxy_scan(names, threads, spectra: Path, sweep_dir: Path,
                    slow_row: float | None = None) -> dict:
    """Worst error of the SGD fit transferred to the Adam sweep, for every p of PROXY_GRID."""
    from statistics import median

    scan = {}
    for w in names:
        spectrum = load_spectrum(spectra / w / "spectrum_target.npz", slow_row)
        sgd, adam = (load_sweep(sweep_dir / f"{w}-{o}") for o in ("sgd", "adam"))
        for p in PROXY_GRID:
            proxy = {**dict(CalibrateConfig().proxy), "adam": ("sgd", p)}
            rec = calibrate(spectrum, sgd, CalibrateConfig(proxy=tuple(proxy.items()),
                                                           threads=threads), transfer=(adam,))
            scan.setdefault(w, {})[str(p)] = _worst_all(rec["transfer"][0])
    fit = [w for w in names if w in PROXY_FIT_ON]
    by_p = {p: median(scan[w][p] for w in fit) for p in map(str, PROXY_GRID)} if fit else {}
    best = min(by_p, key=by_p.get) if by_p else None
    held = [w for w in names if w not in PROXY_FIT_ON]
    return {"worst_error": scan, "chosen_on": fit, "median_on_chosen": by_p, "best_p": best,
            "held_out": {w: scan[w][best] for w in held} if best else {}}


def _ratio(a, b):
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return max(a / b, b / a)


def _f(x, spec=".3g"):
    return "-" if x is None else ("inf" if isinstance(x, float) and math.isinf(x)
                                  else format(x, spec))


def rows(results: dict) -> list[dict]:
    """One summary row per workload x optimizer."""
    out = []
    for workload, by_opt in results.items():
        for opt, modes in by_opt.items():
            ends, one, zero = modes["ends"], modes["one_run"], modes["zero_run"]
            crit = ends["critical_batch_size"]
            meas = crit["measured"]["mccandlish"]
            row = {"workload": workload, "optimizer": opt,
                   "bcrit_measured": meas, "bcrit_nqm": crit["predicted"]["mccandlish"],
                   "bcrit_null": crit["null_model"]["mccandlish"],
                   "nqm_worst": ends["error"]["nqm_worst"],
                   "null_worst": ends["error"]["null_worst"], "closer": ends["closer"],
                   "f": ends["fitted"]["target_fraction"],
                   "kappa": ends["fitted"]["noise_scale"],
                   "at_bound": ends["fitted"]["at_bound"],
                   "one_run_bcrit": one["critical_batch_size"]["predicted"]["mccandlish"],
                   "one_run_worst": one["error"]["nqm_worst"],
                   "zero_run_worst": None if zero is None else _worst_all(zero),
                   "zero_run_bcrit": None if zero is None else
                   zero["critical_batch_size"]["predicted"]["mccandlish"],
                   "lr_worst": _worst(_ratio(p["lr_effective_predicted"],
                                             p["lr_effective_measured"])
                                      for p in ends["points"]),
                   "transfer": {t["optimizer"]: _worst_all(t) for t in ends["transfer"]}}
            row["bcrit_ratio_nqm"] = _ratio(row["bcrit_nqm"], meas)
            row["bcrit_ratio_null"] = _ratio(row["bcrit_null"], meas)
            row["bcrit_ratio_one_run"] = _ratio(row["one_run_bcrit"], meas)
            out.append(row)
    return out


def _worst(values):
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _worst_all(record: dict):
    return _worst(p["error_nqm"] for p in record["points"] if p["measured"] is not None)


def table(summary: list[dict]) -> str:
    """The Markdown table of the summary rows."""
    lines = ["| workload | optimizer | B_crit measured | NQM (ratio) | null (ratio) | "
             "worst held-out error NQM | null | closer | f | kappa | one-run B_crit (ratio) | "
             "zero-run worst error | lr/(1-beta) worst ratio |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in summary:
        lines.append(
            f"| {r['workload']} | {r['optimizer']} | {_f(r['bcrit_measured'])} | "
            f"{_f(r['bcrit_nqm'])} ({_f(r['bcrit_ratio_nqm'], '.2f')}) | "
            f"{_f(r['bcrit_null'])} ({_f(r['bcrit_ratio_null'], '.2f')}) | "
            f"{_f(r['nqm_worst'], '.2f')} | {_f(r['null_worst'], '.2f')} | {r['closer']} | "
            f"{_f(r['f'])} | {_f(r['kappa'])}{' *' if r['at_bound'] else ''} | "
            f"{_f(r['one_run_bcrit'])} ({_f(r['bcrit_ratio_one_run'], '.2f')}) | "
            f"{_f(r['zero_run_worst'], '.2f')} | {_f(r['lr_worst'], '.2f')} |")
    return "\n".join(lines)


def check_options(ap: argparse.ArgumentParser, args) -> None:
    """Refuse option combinations that would be ignored, before anything is written."""
    if args.slow_row_factor <= 0:
        ap.error(f"--slow-row-factor must be > 0, got {args.slow_row_factor}")
    if args.slow_row_factor != 1.0 and not args.slow_row:
        ap.error("--slow-row-factor goes with --slow-row")
    if args.quantile is not None and args.predict != "first-passage":
        ap.error("--quantile goes with --predict first-passage")
    if args.quantile is not None and not 0.0 < args.quantile < 1.0:
        ap.error(f"--quantile must be in (0, 1), got {args.quantile}")
    if args.noise != "constant" and args.predict != "expected":
        ap.error("--noise other than constant goes with --predict expected only")
    if args.path and (args.slow_row or args.noise != "constant" or args.predict != "expected"):
        ap.error("--path goes with the expected loss and constant noise only")
    if args.adam != "precond" and (args.noise != "constant" or args.predict != "expected"):
        ap.error("--adam mean-field goes with the expected loss and constant noise only")
    if args.path and not Path(args.path).is_dir():
        ap.error(f"--path {args.path}: no such directory")
    if args.out is None and Path(args.sweeps).resolve() != (ROOT / "sweeps").resolve():
        ap.error("--sweeps other than the reference sweeps needs --out (the reference records "
                 "under figures/validation stay as they are)")
    if args.out is None and args.path and \
            Path(args.path).resolve() != (ROOT / "measure-path").resolve():
        ap.error("--path other than figures/measure-path needs --out (figures/validation/path "
                 "holds that one's records)")


def default_out(args) -> str:
    """The folder under figures/validation a variant writes to without --out ('' for the
    reference run), so that no variant overwrites the reference records."""
    parts = (["first-passage"] if args.predict == "first-passage" else []) + \
        (["slow-row"] if args.slow_row else []) + \
        ([args.noise] if args.noise != "constant" else []) + \
        (["path"] if getattr(args, "path", None) else []) + \
        (["loss-matched"] if getattr(args, "noise_scale", "measured") != "measured" else []) + \
        (["adam-mean-field"] if getattr(args, "adam", "precond") == "mean-field" else [])
    return "-".join(parts)


def main():
    """Command line: validate, write records and figures, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None,
                    help="default figures/validation for the reference run; a variant writes to "
                         "figures/validation/<variant> (first-passage, slow-row, loss-following, "
                         "constant-coupled, path, loss-matched, adam-mean-field, joined by '-')")
    ap.add_argument("--predict", default="expected", choices=("expected", "first-passage"),
                    help="what the NQM predicts: the expected loss's crossing, or the best of "
                         "the sweep's trials' first evaluated crossing (nqm.passage_quantile)")
    ap.add_argument("--quantile", type=float, default=None,
                    help="first-passage: the loss quantile (default from the trials per batch "
                         "size, nqm.passage_quantile.quantile_for_trials)")
    ap.add_argument("--workloads", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--spectra", default=str(ROOT / "measure"),
                    help="directory of measurements W/spectrum_target.npz (default: the "
                         "reference measurements)")
    ap.add_argument("--sweeps", default=str(ROOT / "sweeps"),
                    help="directory of sweeps W-OPT/summary.json (default: the reference sweeps)")
    ap.add_argument("--no-proxy-scan", action="store_true")
    ap.add_argument("--slow-row", action="store_true",
                    help="keep each spectrum's dropped directions as one row at h = F * h_floor")
    ap.add_argument("--slow-row-factor", type=float, default=1.0, metavar="F",
                    help="F of --slow-row (default 1: the drop threshold itself)")
    ap.add_argument("--noise", choices=("constant", "loss-following", "constant-coupled"),
                    default="constant",
                    help="the NQM's gradient noise (loss-following: no proxy scan; "
                         "constant-coupled: constant noise through the loss-following model's "
                         "tuner, l_noise = inf)")
    ap.add_argument("--path", default=None, metavar="DIR",
                    help="the path model: DIR/W holds a `nqm measure` of several checkpoints "
                         "of the reference run (writes figures/validation/path by default)")
    ap.add_argument("--noise-scale", choices=("measured", "loss-matched"), default="measured",
                    help="kappa of the one-run and zero-run modes: 1, or L0 / (l_0 - l_floor) "
                         "(nqm.noise_units)")
    ap.add_argument("--adam", choices=("precond", "mean-field"), default="precond",
                    help="Adam's NQM stand-in: SGD preconditioned by H^-0.25, or the mean-field "
                         "Adam of nqm.adam (no proxy scan)")
    ap.add_argument("--no-sweep-figures", action="store_true",
                    help="write no per-sweep figures (records, summary, table and the B_crit "
                         "scatter only): for variants whose fits on the ends are another run's")
    ap.add_argument("--from-records", action="store_true",
                    help="no calibration: summarise the OUT/W-OPT.json records already there "
                         "(the variant options then only choose the default OUT)")
    args = ap.parse_args()
    check_options(ap, args)
    slow_row = args.slow_row_factor if args.slow_row else None
    spectra, sweep_dir = Path(args.spectra), Path(args.sweeps)
    path_dir = Path(args.path) if args.path else None
    listed = path_dir or spectra
    names = (args.workloads.split(",") if args.workloads else
             sorted(p.name for p in listed.iterdir() if (p / "spectrum_target.npz").exists()))
    out = Path(args.out) if args.out else ROOT / "validation" / default_out(args)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for w in names if args.from_records else ():
        results[w] = {o: json.loads((out / f"{w}-{o}.json").read_text()) for o in OPTIMIZERS
                      if (out / f"{w}-{o}.json").exists()}
    for w in () if args.from_records else names:
        try:
            results[w] = validate(w, args.threads, spectra, sweep_dir, args.predict,
                                  args.quantile, slow_row, args.noise, path_dir,
                                  args.noise_scale, args.adam)
        except NQMInputError as exc:
            ap.error(f"{w}: {exc}")
        for opt, modes in results[w].items():
            (out / f"{w}-{opt}.json").write_text(json.dumps(modes, indent=1, allow_nan=False)
                                                 + "\n")
            if not args.no_sweep_figures:
                calibration_figure(modes["ends"], out / f"{w}-{opt}", f"{w}, {opt}")
                examples_figure(modes["ends"], out / f"{w}-{opt}-examples", f"{w}, {opt}")
        print(f"validated {w}", flush=True)
    summary = rows(results)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    bcrit_scatter(summary, out / "bcrit_scatter")
    print(table(summary))
    (out / "table.md").write_text(table(summary) + "\n")
    if args.no_proxy_scan or args.noise != "constant" or args.from_records or args.path or \
            args.adam != "precond":
        return
    scan = adam_proxy_scan(names, args.threads, spectra, sweep_dir, slow_row)
    (out / "adam_proxy.json").write_text(json.dumps(scan, indent=1) + "\n")
    print(f"\nAdam proxy p: {scan['median_on_chosen']} on {scan['chosen_on']}; best "
          f"{scan['best_p']}; held out: {scan['held_out']}")


if __name__ == "__main__":
    main()
