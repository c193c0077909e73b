"""The uncalibrated linreg predictions judged against every seed's sweep and their mean.

    python -m figures.linreg_seeds [--validation figures/validation/linreg/validation.json]
                                   [--seeds figures/sweeps-seeds] [--goal 1.25]

`figures.validate_linreg` predicts the reference linreg sweeps (seed 0, `figures/sweeps/`) with
nothing fitted.  The same sweeps were run again with seeds 1-3 (`figures/run_seed_sweeps.sh`:
other Sobol trials, initial weights and batches), and `figures.sweep_noise` wrote their
geometric mean over the four seeds (`figures/sweeps-seeds/mean/`).  A sweep's steps at one
batch size is one draw (`figures.noise_floor`); the mean of four draws has about half the
spread, so it tells a model's error from the sweep's own noise better than any one seed.

For every prediction kind k of the record (const, coupled, fp, fp_data, coupled_init,
fp_init) and every measurement m (seed 0 = the reference sweep, seeds 1-3, the mean):

    worst_k,m = max over (optimizer, B) of max(pred_k,B / m_B, m_B / pred_k,B),
    within_k,m = how many of those (optimizer, B) points lie within --goal,
    b_crit ratio = pred B_crit / the McCandlish B_crit of m (`nqm.critical.estimate`),
    lr ratio = pred lr / m's best-trial lr, with lr / (1 - beta) for momentum (for the mean:
               the geometric mean of the seeds' best-trial lr and 1 - beta); `const`, whose
               record has no lr / (1 - beta), on its SGD rows only.

The predictions were made for seed 0's trial initialisations; seeds 1-3 draw theirs from the
same distribution.  Nothing here is fitted and seeds 1-3 were not used to build any model.
Writes `seeds.json` beside the record (no wall-clock values) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "figures" / "validation" / "linreg" / "validation.json"
KINDS = ("const", "coupled", "fp", "fp_data", "coupled_init", "fp_init")
MEASUREMENTS = ("s0", "s1", "s2", "s3", "mean")


def load_measurements(seeds: Path, reference: Path) -> dict[str, dict[str, list[dict]]]:
    """measurement -> optimizer -> the sweep's points (s0 is the reference sweep)."""
    out = {}
    for m in MEASUREMENTS:
        base = reference if m == "s0" else seeds / m
        out[m] = {opt: json.loads((base / f"linreg-{opt}" / "summary.json").read_text())
                  ["points"] for opt in ("sgd", "momentum")}
    return out


def effective_lr(point: dict) -> float:
    """lr / (1 - beta) (lr for SGD): the quantity the momentum ridge fixes."""
    return point["lr"] / (1.0 - (point.get("momentum") or 0.0))


def judge(record: dict, sweeps: dict[str, list[dict]], kind: str, goal: float) -> dict:
    """worst error, points within goal, B_crit and lr ratios of one kind against one measurement
    (module docstring); sweeps[optimizer] = that measurement's points."""
    from nqm.critical import estimate

    worst, within, n, crit, lr = 1.0, 0, 0, {}, []
    for opt, o in record["optimizers"].items():
        meas = {p["batch_size"]: p for p in sweeps[opt]}
        for row in o["rows"]:
            m = meas[row["batch_size"]]
            err = max(row[kind] / m["steps"], m["steps"] / row[kind])
            worst, within, n = max(worst, err), within + (err <= goal), n + 1
            if kind + "_lr_effective" in row:
                lr.append(row[kind + "_lr_effective"] / effective_lr(m))
            elif opt == "sgd":          # the record has no lr / (1 - beta) for `const`
                lr.append(row[kind + "_lr"] / effective_lr(m))
        b_meas = estimate([p["batch_size"] for p in sweeps[opt]],
                          [p["steps"] for p in sweeps[opt]]).values.get("mccandlish")
        crit[opt] = (None if b_meas is None or o["b_crit"].get(kind) is None
                     else round(o["b_crit"][kind] / b_meas, 4))
    return {"worst": round(worst, 4), "within_goal": within, "points": n,
            "b_crit_ratio": crit,
            "lr_ratio_range": [round(min(lr), 4), round(max(lr), 4)] if lr else None}


def seeds_record(record: dict, measurements: dict, goal: float = 1.25) -> dict:
    """judge() for every kind against every measurement."""
    return {"goal": goal, "fitted_to_sweeps": "nothing",
            "kinds": {k: {m: judge(record, measurements[m], k, goal) for m in measurements}
                      for k in KINDS}}


def main(argv: list[str] | None = None) -> None:
    """Command line: judge, write seeds.json beside the record, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=DEFAULT)
    ap.add_argument("--seeds", type=Path, default=ROOT / "figures" / "sweeps-seeds")
    ap.add_argument("--reference", type=Path, default=ROOT / "figures" / "sweeps")
    ap.add_argument("--goal", type=float, default=1.25)
    args = ap.parse_args(argv)
    rec = seeds_record(json.loads(args.validation.read_text()),
                       load_measurements(args.seeds, args.reference), args.goal)
    (args.validation.parent / "seeds.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"linreg, SGD and momentum, 12 points: worst predicted/measured error "
          f"(points within {args.goal}x); B_crit ratio sgd/momentum")
    print(f"{'kind':>13} " + " ".join(f"{m:>22}" for m in MEASUREMENTS))
    for k, per in rec["kinds"].items():
        cells = [f"{j['worst']:.2f} ({j['within_goal']:>2}) "
                 f"{j['b_crit_ratio']['sgd'] or 0:.2f}/{j['b_crit_ratio']['momentum'] or 0:.2f}"
                 for j in per.values()]
        print(f"{k:>13} " + " ".join(f"{c:>22}" for c in cells))
    print(f"wrote {args.validation.parent / 'seeds.json'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
