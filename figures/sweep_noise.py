"""How far one real sweep moves from seed to seed, and what that means for judging a model.

    python -m figures.sweep_noise [--reference figures/sweeps] [--seeds figures/sweeps-seeds]

Inputs: the reference sweeps (seed 0, `figures/sweeps/W-OPT/summary.json`) and the same sweeps
run with other seeds (`figures/run_seed_sweeps.sh`: `figures/sweeps-seeds/s<k>/W-OPT/`); the
seed moves the Sobol trials, the initial weights and the batches.  For every sweep present in
all seeds, with x_{r,B} the steps of seed r at batch size B (every seed must reach the target):

- spread per B: max_r x_{r,B} / min_r x_{r,B}, and sigma_B, the standard deviation of
  log x_{r,B} over the seeds;
- the every-point floor: each seed r in turn is "the measured sweep" and the median m_{-r,B} of
  the other seeds a perfect model; its worst error over the held-out batch sizes (all but the
  smallest and the largest) is w_r = max_B max(m_{-r,B} / x_{r,B}, x_{r,B} / m_{-r,B})
  (as `figures.noise_floor`, here on real sweeps);
- the critical-batch-size floor: B_r, seed r's McCandlish critical batch size
  (`nqm.critical.estimate`), against the median of the other seeds' as a perfect model's
  prediction: max(m_{-r} / B_r, B_r / m_{-r}) (the one-run goal asks for 2x);
- the null hyperbola S_min + E_min / B through seed r's two ends (`nqm.calibrate.null_model`),
  scored as `nqm calibrate` scores it, on seed r's own held-out points, and on the geometric mean
  of the other seeds' (a truth with less noise).

It writes `DIR/mean/W-OPT/summary.json`, the geometric-mean sweep (steps: the geometric mean
over seeds, rounded; lr and 1 - beta: the geometric means of the best trials'; trials: the sum),
which `python -m figures.run_validation --sweeps DIR/mean --out OUT` calibrates against, and
`DIR/noise.json` with every number printed (no wall-clock values).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nqm.calibrate import null_model
from nqm.critical import estimate
from nqm.sweep_data import load_sweep

ROOT = Path(__file__).resolve().parents[1]


def seed_dirs(reference: Path, seeds: Path) -> dict[str, list[Path]]:
    """{W-OPT: [summary dirs, seed 0 first]} for the sweeps present in every seed directory."""
    runs = sorted(p for p in seeds.glob("s[0-9]*") if p.is_dir())
    if not runs:
        raise SystemExit(f"no seed directory {seeds}/s<k>/ (run figures/run_seed_sweeps.sh)")
    names = sorted(p.parent.name for p in reference.glob("*/summary.json"))
    out = {}
    for name in names:
        dirs = [reference / name] + [r / name for r in runs]
        if all((d / "summary.json").exists() for d in dirs):
            out[name] = dirs
    return out


def steps_table(dirs: list[Path]) -> tuple[list[int], np.ndarray]:
    """(batch sizes, steps[seed, B]) over the batch sizes every seed reached."""
    sweeps = [load_sweep(d) for d in dirs]
    common = sorted(set.intersection(*({p.batch_size for p in s.reached} for s in sweeps)))
    if len(common) < 3:
        raise SystemExit(f"{dirs[0].name}: {len(common)} batch size(s) reached in every seed; "
                         f"the floor needs 3 or more (two ends and a held-out one)")
    return common, np.array([[s.point(b).steps for b in common] for s in sweeps], dtype=float)


def every_point_floor(x: np.ndarray) -> np.ndarray:
    """w_r over the held-out batch sizes (columns 1 .. -2) for every seed r (docstring)."""
    held = x[:, 1:-1]
    worst = np.ones(x.shape[0])
    for r in range(x.shape[0]):
        med = np.median(np.delete(held, r, axis=0), axis=0)
        worst[r] = float(np.max(np.maximum(med / held[r], held[r] / med)))
    return worst


def b_crit_floor(sizes: list[int], x: np.ndarray) -> tuple[list, list]:
    """(B_r per seed, its ratio to the median of the other seeds' B_r) (docstring); None where
    B_r, or every other seed's, is not determined (`nqm.critical.estimate`)."""
    b_crit = [estimate(sizes, row).values["mccandlish"] for row in x]
    ratios = []
    for r, b in enumerate(b_crit):
        others = [v for j, v in enumerate(b_crit) if j != r and v is not None]
        m = float(np.median(others)) if others else None
        ratios.append(None if b is None or m is None else max(m / b, b / m))
    return [None if b is None else float(b) for b in b_crit], ratios


def null_scores(sizes: list[int], x: np.ndarray, dirs: list[Path]) -> tuple[list, list]:
    """Per seed r: the null hyperbola through r's ends, its worst held-out error against r's own
    points and against the geometric mean of the other seeds'."""
    own, truth = [], []
    b = np.asarray(sizes, dtype=float)
    for r, d in enumerate(dirs):
        s_min, e_min = null_model(load_sweep(d), (sizes[0], sizes[-1]))
        pred = (s_min + e_min / b)[1:-1]
        others = np.exp(np.log(np.delete(x, r, axis=0)).mean(axis=0))[1:-1]
        own.append(float(np.max(np.maximum(pred / x[r, 1:-1], x[r, 1:-1] / pred))))
        truth.append(float(np.max(np.maximum(pred / others, others / pred))))
    return own, truth


def mean_summary(dirs: list[Path], sizes: list[int], x: np.ndarray) -> dict:
    """The geometric-mean sweep as a summary.json record (docstring)."""
    records = [json.loads((d / "summary.json").read_text()) for d in dirs]
    points = []
    for j, b in enumerate(sizes):
        best = [next(p for p in rec["points"] if p["batch_size"] == b) for rec in records]
        mom = [p["momentum"] for p in best]
        points.append({
            "batch_size": b, "steps": int(round(float(np.exp(np.log(x[:, j]).mean())))),
            "reached": True, "lr": float(np.exp(np.mean(np.log([p["lr"] for p in best])))),
            "momentum": None if None in mom else
            float(1.0 - np.exp(np.mean(np.log([1.0 - m for m in mom])))),
            "trials": int(sum(p["trials"] for p in best)),
            "widened": any(p["widened"] for p in best)})
    first = records[0]
    return {"workload": first["workload"], "optimizer": first["optimizer"],
            "target": first["target"], "points": points,
            "seeds": [rec["seed"] for rec in records], "n_trials": first["n_trials"],
            "versions": first["versions"]}


def main(argv=None) -> None:
    """Print the spread, the floors and the null scores of every sweep present in all seeds;
    write DIR/noise.json and DIR/mean/W-OPT/summary.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, default=ROOT / "figures" / "sweeps")
    ap.add_argument("--seeds", type=Path, default=ROOT / "figures" / "sweeps-seeds")
    args = ap.parse_args(argv)
    found = seed_dirs(args.reference, args.seeds)
    if not found:
        raise SystemExit(f"no sweep is present in {args.reference} and every {args.seeds}/s*/")
    report = {}
    print(f"{'sweep':<24} {'seeds':>5} {'spread max/min per B':<40} {'floor w_r (median)':>18} "
          f"{'null: own':>9} {'null: mean of others':>20}")
    for name, dirs in found.items():
        sizes, x = steps_table(dirs)
        floor = every_point_floor(x)
        own, truth = null_scores(sizes, x, dirs)
        b_crit, b_floor = b_crit_floor(sizes, x)
        spread = (x.max(axis=0) / x.min(axis=0)).tolist()
        report[name] = {
            "batch_sizes": sizes, "steps": x.astype(int).tolist(),
            "spread_max_over_min": spread,
            "sigma_log": np.log(x).std(axis=0, ddof=1).tolist(),
            "every_point_floor": floor.tolist(), "null_own": own, "null_vs_others": truth,
            "b_crit": b_crit, "b_crit_floor": b_floor}
        out = args.seeds / "mean" / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(mean_summary(dirs, sizes, x), indent=1))
        print(f"{name:<24} {len(dirs):>5} {' '.join(f'{s:.2f}' for s in spread):<40} "
              f"{np.median(floor):>18.2f} {np.median(own):>9.2f} {np.median(truth):>20.2f}")
    floors = np.concatenate([r["every_point_floor"] for r in report.values()])
    own = np.concatenate([r["null_own"] for r in report.values()])
    truth = np.concatenate([r["null_vs_others"] for r in report.values()])
    b_floor = np.array([v for r in report.values() for v in r["b_crit_floor"] if v is not None])
    report["_all"] = {"every_point_floor_median": float(np.median(floors)),
                      "b_crit_floor_within_2": float(np.mean(b_floor <= 2.0)),
                      "every_point_floor_within_1.3": float(np.mean(floors <= 1.3)),
                      "null_own_median": float(np.median(own)),
                      "null_vs_others_median": float(np.median(truth))}
    print(f"\nall sweeps and seeds: a perfect model's worst held-out error, median "
          f"{np.median(floors):.2f} ({np.mean(floors <= 1.3):.0%} within 1.3x); the null "
          f"hyperbola through one seed's ends: median {np.median(own):.2f} against that seed, "
          f"{np.median(truth):.2f} against the mean of the others; a perfect model's critical "
          f"batch size within 2x of one seed's in {np.mean(b_floor <= 2.0):.0%}")
    (args.seeds / "noise.json").write_text(json.dumps(report, indent=1, sort_keys=True,
                                                       allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
