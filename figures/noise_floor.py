"""How close can any model come to ONE measured sweep?  The floor set by the sweep's own noise.

    python -m figures.noise_floor [--validation figures/validation/linreg/validation.json]

A sweep's steps at batch size B is one draw of a random variable: the best of N trials' first
evaluated crossing of one noisy run each.  `figures.validate_linreg` simulates the whole sweep
protocol `repeats` times (`nqm.first_passage`), so its repeats are draws of that variable under
the model.  Treat each repeat r in turn as "the measured sweep" and the median of the other
repeats as a perfect model's prediction; its worst error over the sweep's points is

    w_r = max over (optimizer, B) of max(m_{-r} / x_r, x_r / m_{-r}),

m_{-r} the median of the repeats other than r at that (optimizer, B), x_r repeat r's value.
The distribution of w_r is what a model that is exactly right would score against one sweep:
a goal "every batch size within g" is met by such a model with probability P(w <= g).
Writes noise_floor.json beside the validation record (no wall-clock values) and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "figures" / "validation" / "linreg" / "validation.json"


def leave_one_out_worst(repeats: dict[str, dict[str, list[float]]]) -> np.ndarray:
    """w_r for every repeat r (module docstring); repeats[optimizer][B] = values per repeat."""
    series = [np.asarray(v, dtype=np.float64) for per_b in repeats.values()
              for v in per_b.values()]
    n = {len(v) for v in series}
    if len(n) != 1 or n.pop() < 3:
        raise ValueError("every (optimizer, B) needs the same number (>= 3) of repeats")
    worst = np.ones(len(series[0]))
    for v in series:
        for r in range(len(v)):
            med = np.median(np.delete(v, r))
            worst[r] = max(worst[r], med / v[r], v[r] / med)
    return worst


def floor_record(validation: dict, goal: float = 1.25) -> dict:
    """Per simulated protocol: the w_r, their median and P(w <= goal)."""
    out = {"goal": goal, "repeats": validation["repeats"], "protocols": {}}
    kinds = sorted({k for o in validation["optimizers"].values() for k in o["repeats"]})
    for kind in kinds:
        reps = {opt: o["repeats"][kind] for opt, o in validation["optimizers"].items()}
        w = leave_one_out_worst(reps)
        out["protocols"][kind] = {
            "points": sum(len(v) for v in reps.values()),
            "worst_per_repeat": [round(float(x), 4) for x in np.sort(w)],
            "median_worst": round(float(np.median(w)), 4),
            "fraction_within_goal": round(float(np.mean(w <= goal)), 4)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=DEFAULT)
    ap.add_argument("--goal", type=float, default=1.25)
    args = ap.parse_args(argv)
    rec = floor_record(json.loads(args.validation.read_text()), args.goal)
    (args.validation.parent / "noise_floor.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"a model exactly equal to the simulated sweep, against one sweep ({rec['repeats']} "
          f"simulated sweeps, each in turn as the measurement):")
    for kind, p in rec["protocols"].items():
        print(f"  {kind:8s} worst over {p['points']} points: median {p['median_worst']:.3f}, "
              f"within {args.goal} at every point in {p['fraction_within_goal']:.0%} of sweeps")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
