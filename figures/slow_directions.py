"""What the charlm momentum fit needs from the near-null curvature: edited spectra, refitted.

    python -m figures.slow_directions

The calibrated NQM (`nqm.calibrate`, fit on the smallest and largest batch size) of the charlm
momentum sweep, from its measured Gauss-Newton spectrum at the sweep's target
(figures/measure-sweep-target-ggn/charlm) and Hessian spectrum (figures/measure/charlm), edited:

  - rows with h < h_min removed;
  - the lowest row moved to h * factor (count, c and s0 kept);
  - the directions the adapter dropped (h <= 1e-6 lambda_max, negative ones included) put back as
    one row of h = h_slow, count = dropped, s0 = (|d|^2 - sum count s0) / dropped (their even
    share of d = theta_init - theta_ref, the adapter's bulk rule) and c = the Gauss-Newton
    spectrum's lowest row's c.

Prints one Markdown row per spectrum: worst held-out error (null), fitted f and kappa.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nqm.calibrate import CalibrateConfig, calibrate
from nqm.spectrum import Spectrum, load
from nqm.sweep_data import load_sweep

ROOT = Path(__file__).resolve().parent


def _rows(sp: Spectrum, keep: np.ndarray | None = None, **replace) -> Spectrum:
    """`sp` restricted to the rows `keep`, with any of h, c, s0, count replaced."""
    arrays = {k: np.asarray(getattr(sp, k), float) for k in ("h", "c", "s0", "count")}
    arrays.update({k: np.asarray(v, float) for k, v in replace.items()})
    if keep is not None:
        arrays = {k: v[keep] for k, v in arrays.items()}
    return Spectrum(**arrays, meta=dict(sp.meta))


def without_below(sp: Spectrum, h_min: float) -> Spectrum:
    """The rows with h >= h_min."""
    return _rows(sp, np.asarray(sp.h) >= h_min)


def lowest_moved(sp: Spectrum, factor: float) -> Spectrum:
    """The lowest-curvature row's h multiplied by `factor`."""
    h = np.asarray(sp.h, float).copy()
    h[np.argmin(h)] *= factor
    return _rows(sp, h=h)


def with_slow_row(sp: Spectrum, h_slow: float, count: float, displacement_sq: float,
                  c_each: float) -> Spectrum:
    """`sp` plus one row of `count` directions at h_slow holding the rest of |d|^2 evenly."""
    s0_each = max(displacement_sq - float(np.sum(np.asarray(sp.count) * np.asarray(sp.s0))),
                  0.0) / count
    return _rows(sp, h=np.append(sp.h, h_slow), c=np.append(sp.c, c_each),
                 s0=np.append(sp.s0, s0_each), count=np.append(sp.count, count))


def refit(sp: Spectrum, sweep, threads: int | None = None) -> dict:
    """Worst held-out error (NQM, null), f and kappa of the ends fit."""
    r = calibrate(sp, sweep, CalibrateConfig(fit_on="ends", threads=threads))
    return {"worst": r["error"]["nqm_worst"], "null": r["error"]["null_worst"],
            "f": r["fitted"]["target_fraction"], "kappa": r["fitted"]["noise_scale"],
            "at_bound": r["fitted"]["at_bound"]}


def variants(ggn_dir: Path, hess_dir: Path) -> list[tuple[str, Spectrum]]:
    """The edited spectra of the module docstring, labelled."""
    ggn = load(ggn_dir / "spectrum_target.npz")
    hess = load(hess_dir / "spectrum_target.npz")
    lowest = int(np.argmin(ggn.h))
    disp = json.loads((hess_dir / "measure.json").read_text())["displacement_sq"]
    dropped = float(hess.meta["dropped_directions"])
    c_low = float(ggn.c[lowest])
    h_hess = float(np.min(hess.h))
    out = [("Gauss-Newton as measured", ggn),
           (f"Gauss-Newton without its lowest row (h = {ggn.h[lowest]:.2g}, "
            f"{ggn.count[lowest]:.0f} directions)", without_below(ggn, ggn.h[lowest] * 1.0001)),
           (f"Gauss-Newton restricted to h >= {h_hess:.3g} (the Hessian spectrum's range)",
            without_below(ggn, h_hess))]
    out += [(f"Gauss-Newton, lowest row moved to h = {ggn.h[lowest] * f:.2g}",
             lowest_moved(ggn, f)) for f in (0.1, 10.0)]
    out += [(f"Hessian + its {dropped:.0f} dropped directions as one row at h = {h:g}",
             with_slow_row(hess, h, dropped, disp, c_low)) for h in (1e-4, 1e-3)]
    return out


def main(threads: int | None = None) -> list[dict]:
    """Refit every variant on the charlm momentum sweep and print the table."""
    sweep = load_sweep(ROOT / "sweeps" / "charlm-momentum")
    print("| spectrum | worst held-out error | null | f | kappa |\n|---|---:|---:|---:|---:|")
    rows = []
    for label, sp in variants(ROOT / "measure-sweep-target-ggn" / "charlm",
                              ROOT / "measure" / "charlm"):
        r = {"spectrum": label, **refit(sp, sweep, threads)}
        rows.append(r)
        print(f"| {label} | {r['worst']:.2f} | {r['null']:.2f} | {r['f']:.2g} | "
              f"{r['kappa']:.2g}{' (bound)' if r['at_bound'] else ''} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
