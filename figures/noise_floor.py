"""How close can any model come to one measured sweep, or to the mean of several?  The floor set
by the sweeps' own noise.

    python -m figures.noise_floor [--validation figures/validation/linreg/validation.json]
                                  [--goal 1.25] [--draws 20000] [--seed 0]

A sweep's steps at batch size B is one draw of a random variable: the best of N trials' first
evaluated crossing of one noisy run each.  `figures.validate_linreg` simulates the whole linreg
sweep protocol `repeats` times (`nqm.first_passage`, the exact model), so its repeats are draws
of that variable.  Two floors follow from them.

Every point (the uncalibrated goal).  Treat each repeat r in turn as "the measured sweep" and
the median of the other repeats as a perfect model's prediction; its worst error is

    w_r = max over (optimizer, B) of max(m_{-r} / x_r, x_r / m_{-r}),

m_{-r} the median of the repeats other than r at that (optimizer, B), x_r repeat r's value.  A
goal "every batch size within g" is met by an exactly right model with probability P(w <= g).
Against the geometric mean of k sweeps (`figures.sweep_noise`'s mean of four seeds): every
k-subset S of the repeats in turn is the measurement, exp(mean over S of log x), and the median
of the repeats outside S the perfect model; the same worst error over all C(repeats, k) subsets.
(That median of repeats - k draws is itself noisy, so the floor is a little pessimistic: by
about 5% in log error for k = 1 and 16 repeats, about 20% for k = 4.)

Held-out points of a fit (the calibrated goal).  With the log-normal spread sigma_B =
log(q84 / q16) / 2 of the SGD repeats at each B:
  points only   each held-out measured point = the true steps * exp(sigma_B z), z ~ N(0, 1);
                worst error = max over the held-out B of exp(sigma_B |z_B|);
  with the fit  the ends are noisy too: the true curve is the hyperbola S_min + E_min / B of
                linreg SGD's null fit, the model is the hyperbola through the two noisy ends (a
                perfect two-parameter model fitted as `nqm.calibrate` fits), judged on the
                noisy held-out points;
each at the measured spread, half and twice it; the median and 16/84% over `draws` sweeps.
Writes noise_floor.json beside the validation record (no wall-clock values) and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "figures" / "validation" / "linreg" / "validation.json"
#: linreg SGD's null hyperbola through B = 1 and 1024 (figures/sweeps/linreg-sgd)
LINREG_HYPERBOLA = (63.0, 9885.0)


def leave_one_out_worst(repeats: dict[str, dict[str, list[float]]]) -> np.ndarray:
    """w_r for every repeat r (module docstring); repeats[optimizer][B] = values per repeat."""
    return subset_mean_worst(repeats, 1)


def subset_mean_worst(repeats: dict[str, dict[str, list[float]]], k: int) -> np.ndarray:
    """The worst error of a perfect model against the geometric mean of k repeats, for every
    k-subset of the repeats (module docstring); k = 1 is `leave_one_out_worst`."""
    series = [np.asarray(v, dtype=np.float64) for per_b in repeats.values()
              for v in per_b.values()]
    n = {len(v) for v in series}
    if len(n) != 1 or k < 1 or n.pop() < k + 2:
        raise ValueError("every (optimizer, B) needs the same number (>= k + 2) of repeats")
    r = len(series[0])
    subsets = list(itertools.combinations(range(r), k))
    worst = np.ones(len(subsets))
    for v in series:
        for i, sub in enumerate(subsets):
            mean = float(np.exp(np.mean(np.log(v[list(sub)]))))
            med = float(np.median(np.delete(v, sub)))
            worst[i] = max(worst[i], med / mean, mean / med)
    return worst


def sigmas(bands: dict) -> dict:
    """sigma_B = log(q84 / q16) / 2 (the log-normal spread whose 16-84% band this is)."""
    return {b: 0.5 * float(np.log(hi / lo)) for b, (lo, hi) in bands.items()}


def floor(sigma: dict, s_min: float, e_min: float, draws: int,
          rng: np.random.Generator) -> dict:
    """Median and 16/84% of the worst held-out error: points only, and with the ends fitted."""
    sizes = np.array(sorted(sigma), dtype=np.float64)
    sig = np.array([sigma[int(b)] for b in sizes])
    true = s_min + e_min / sizes
    meas = true * np.exp(sig * rng.standard_normal((draws, sizes.size)))
    inner = slice(1, sizes.size - 1)
    only = np.exp(np.max(np.abs(np.log(meas[:, inner] / true[inner])), axis=1))
    b1, b2 = sizes[0], sizes[-1]
    s1, s2 = meas[:, 0], meas[:, -1]
    e_fit = (s1 - s2) / (1.0 / b1 - 1.0 / b2)
    fit = np.maximum(s1[:, None] - e_fit[:, None] / b1 + e_fit[:, None] / sizes[inner], 1.0)
    fitted = np.exp(np.max(np.abs(np.log(meas[:, inner] / fit)), axis=1))
    q = [16, 50, 84]
    return {"points_only": {k: round(float(v), 4) for k, v in
                            zip(("q16", "median", "q84"), np.percentile(only, q))},
            "with_fit": {k: round(float(v), 4) for k, v in
                         zip(("q16", "median", "q84"), np.percentile(fitted, q))}}


def floor_record(validation: dict, goal: float = 1.25, draws: int = 20000,
                 seed: int = 0) -> dict:
    """Both floors of the module docstring from a `figures.validate_linreg` record."""
    out = {"goal": goal, "repeats": validation["repeats"], "every_point": {}}
    kinds = sorted({k for o in validation["optimizers"].values() for k in o["repeats"]})
    for kind in kinds:
        reps = {opt: o["repeats"][kind] for opt, o in validation["optimizers"].items()}
        w = leave_one_out_worst(reps)
        out["every_point"][kind] = {
            "points": sum(len(v) for v in reps.values()),
            "worst_per_repeat": [round(float(x), 4) for x in np.sort(w)],
            "median_worst": round(float(np.median(w)), 4),
            "fraction_within_goal": round(float(np.mean(w <= goal)), 4)}
    if validation["repeats"] >= 6:
        out["every_point_mean_of_4"] = {}
        for kind in kinds:
            reps = {opt: o["repeats"][kind] for opt, o in validation["optimizers"].items()}
            w = subset_mean_worst(reps, 4)
            out["every_point_mean_of_4"][kind] = {
                "subsets": int(w.size), "median_worst": round(float(np.median(w)), 4),
                "q16_q84": [round(float(x), 4) for x in np.percentile(w, [16, 84])],
                "fraction_within_goal": round(float(np.mean(w <= goal)), 4)}
    sgd = validation["optimizers"]["sgd"]["repeats"]["fp"]
    sig = sigmas({int(b): tuple(np.percentile(v, [16, 84])) for b, v in sgd.items()})
    out["held_out"] = {"sigma": {str(b): round(s, 4) for b, s in sig.items()},
                       "draws": draws, "seed": seed}
    for name, spread in (("measured", 1.0), ("half", 0.5), ("double", 2.0)):
        scaled = {b: spread * s for b, s in sig.items()}
        out["held_out"][name] = floor(scaled, *LINREG_HYPERBOLA, draws,
                                      np.random.default_rng(seed))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: both floors from the validation record, written beside it and printed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=DEFAULT)
    ap.add_argument("--goal", type=float, default=1.25)
    ap.add_argument("--draws", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rec = floor_record(json.loads(args.validation.read_text()), args.goal, args.draws,
                       args.seed)
    (args.validation.parent / "noise_floor.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"every point: a model exactly equal to the simulated sweep, against one sweep "
          f"({rec['repeats']} simulated sweeps, each in turn as the measurement):")
    for kind, p in rec["every_point"].items():
        print(f"  {kind:8s} worst over {p['points']} points: median {p['median_worst']:.3f}, "
              f"within {args.goal} at every point in {p['fraction_within_goal']:.0%} of sweeps")
    for kind, p in rec.get("every_point_mean_of_4", {}).items():
        print(f"  {kind:8s} against the geometric mean of 4 sweeps ({p['subsets']} subsets): "
              f"median {p['median_worst']:.3f}, within {args.goal} at every point in "
              f"{p['fraction_within_goal']:.0%}")
    print("held-out points of a two-point fit (worst of the middle batch sizes, "
          "median [16-84%]):")
    for name in ("half", "measured", "double"):
        f = rec["held_out"][name]
        print(f"  {name:8s} spread: points only {f['points_only']['median']:.2f} "
              f"[{f['points_only']['q16']:.2f}-{f['points_only']['q84']:.2f}], "
              f"ends fitted {f['with_fit']['median']:.2f} "
              f"[{f['with_fit']['q16']:.2f}-{f['with_fit']['q84']:.2f}]")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
