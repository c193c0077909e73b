"""How far above the measured spectrum's stability limit the real sweeps train.

    python -m figures.stability_ratio [--measure figures/measure] [--sweeps figures/sweeps]
                                      [--lr-runs figures/measure-lr]
                                      [--out figures/validation/stability_ratio.json]

For every workload with a spectrum at the measurement's target (`W/spectrum_target.npz`) and an
SGD sweep (`W-sgd/summary.json`): h_max, the largest curvature of the spectrum, and at every
batch size B the ratio lr_B h_max / 2 of the best trial's learning rate to the quadratic's
stability limit 2 / h_max (SGD on the NQM diverges above 1).  The NQM tunes lr within that limit
(`nqm.optimizer.lr_limit`), so a ratio above 1 is a learning rate the model cannot use: the real
run's curvature is not the reference run's (at large learning rates training keeps the top
curvature near 2 / lr: Cohen et al. 2021, "Gradient descent on neural networks typically occurs
at the edge of stability").  With `--lr-runs DIR` (figures/run_lr_measure.sh) it also reports,
for every measurement there (DIR/RUN/measure.json, made where a reference run of its own
learning rate and batch size first reaches the target), that run's lr, batch size, h_max and
lr h_max / 2.  Writes the numbers as JSON (no wall-clock values) and prints them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nqm.spectrum import load as load_spectrum
from nqm.sweep_data import load_sweep

ROOT = Path(__file__).resolve().parents[1]


def ratios(spectrum_path: Path, sweep_dir: Path) -> dict:
    """{h_max, stability_limit, batch_sizes, lr, ratio} of one workload (module docstring)."""
    h_max = float(load_spectrum(spectrum_path).h.max())
    points = [p for p in load_sweep(sweep_dir).reached if p.lr is not None]
    return {"h_max": h_max, "stability_limit": 2.0 / h_max,
            "batch_sizes": [p.batch_size for p in points], "lr": [p.lr for p in points],
            "ratio": [p.lr * h_max / 2.0 for p in points]}


def lr_runs(directory: Path) -> dict:
    """{RUN: {optimizer, lr, batch_size, step, train_loss, h_max, ratio}} of every measurement
    under `directory` (module docstring)."""
    out = {}
    for path in sorted(directory.glob("*/measure.json")):
        config = json.loads((path.parent / "measure_config.json").read_text())
        record = json.loads(path.read_text())
        h_max = float(record["top_eigenvalues"][0])
        out[path.parent.name] = {
            "optimizer": config["optimizer"], "lr": config["lr"],
            "batch_size": config["train_batch_size"], "step": record["step"],
            "train_loss": record["train_loss"], "h_max": h_max,
            "ratio": config["lr"] * h_max / 2.0}
    return out


def main(argv=None) -> None:
    """Print the ratios of every workload (and of the runs under --lr-runs); write --out."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", type=Path, default=ROOT / "figures" / "measure")
    ap.add_argument("--sweeps", type=Path, default=ROOT / "figures" / "sweeps")
    ap.add_argument("--lr-runs", type=Path, default=None)
    ap.add_argument("--out", type=Path,
                    default=ROOT / "figures" / "validation" / "stability_ratio.json")
    args = ap.parse_args(argv)
    report = {}
    for spec in sorted(args.measure.glob("*/spectrum_target.npz")):
        sweep = args.sweeps / f"{spec.parent.name}-sgd"
        if (sweep / "summary.json").exists():
            report[spec.parent.name] = ratios(spec, sweep)
    if not report:
        raise SystemExit(f"no workload has both {args.measure}/W/spectrum_target.npz and "
                         f"{args.sweeps}/W-sgd/summary.json")
    print(f"{'workload':<16} {'h_max':>8} {'2/h_max':>8}  lr h_max / 2 at B = ...")
    for name, r in report.items():
        cells = " ".join(f"{b}:{x:.2f}" for b, x in zip(r["batch_sizes"], r["ratio"]))
        print(f"{name:<16} {r['h_max']:>8.3f} {r['stability_limit']:>8.4f}  {cells}")
    if args.lr_runs is not None:
        runs = lr_runs(args.lr_runs)
        if not runs:
            raise SystemExit(f"no measurement {args.lr_runs}/RUN/measure.json "
                             f"(run figures/run_lr_measure.sh)")
        report["_lr_runs"] = runs
        print(f"\n{'run':<28} {'lr':>7} {'B':>5} {'step':>5} {'h_max':>7}  lr h_max / 2")
        for name, r in runs.items():
            print(f"{name:<28} {r['lr']:>7.4g} {r['batch_size']:>5} {r['step']:>5} "
                  f"{r['h_max']:>7.3f}  {r['ratio']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
