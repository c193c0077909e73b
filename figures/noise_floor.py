"""The held-out error that even a perfect model shows, from the spread of one sweep.

    python -m figures.noise_floor [--draws 20000] [--seed 0]

A sweep's step count at batch size B scatters around what a model can predict: the simulated
sweep (`nqm.first_passage`) gives its 16-84% band, i.e. a log-normal spread sigma_B =
log(q84 / q16) / 2 (linreg, 64 trials: about +-20% at small B, +-4% at B = 1024).  Two floors:

  points only   each held-out measured point = the true steps * exp(sigma_B z), z ~ N(0, 1);
                worst error = max over the held-out B of exp(sigma_B |z_B|);
  with the fit  the ends are noisy too: the true curve is a hyperbola S_min + E_min / B, the
                model is the hyperbola through the two noisy ends (a perfect two-parameter
                model fitted as `nqm.calibrate` fits), judged on the noisy held-out points.

Reported: the median and the 16/84% of the worst error over `draws` simulated sweeps.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

#: linreg SGD, 64 trials, 16 repeats of the simulated sweep (docs/NEW_fpcal.md): q16, q84
LINREG_BANDS = {1: (1228.0, 1582.2), 4: (258.8, 380.8), 16: (78.0, 104.0), 64: (38.2, 47.2),
                256: (35.0, 40.8), 1024: (34.0, 36.6)}


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
    return {"points_only": dict(zip(("q16", "median", "q84"), np.percentile(only, q))),
            "with_fit": dict(zip(("q16", "median", "q84"), np.percentile(fitted, q)))}


def main():
    """Command line: the floors for linreg's spread (S_min, E_min of linreg SGD's null fit)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sig = sigmas(LINREG_BANDS)
    out = {"sigma": sig}
    for name, spread in (("linreg", 1.0), ("half", 0.5), ("double", 2.0)):
        scaled = {b: spread * s for b, s in sig.items()}
        out[name] = floor(scaled, 63.0, 9885.0, args.draws, np.random.default_rng(args.seed))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
