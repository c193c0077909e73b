"""How the calibrated NQM of one sweep depends on where the slow row sits.

    python -m figures.slow_row_scan [--spectrum figures/measure/charlm/spectrum_target.npz]
                                    [--runs figures/sweeps/charlm-momentum]

Refits (`nqm.calibrate`, ends) the measured spectrum with its dropped directions as one row
at h = F * h_floor (`empirical.adapter.spectrum_with_slow_row`) for every F of FACTORS and prints
one Markdown row per F: h, worst held-out error, fitted f and kappa, and the slow row's own share
of the initial loss, 1/2 count h s0 / L0 (the fitted target f is to be read against it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from empirical.adapter import spectrum_with_slow_row
from figures.slow_directions import refit
from nqm.sweep_data import load_sweep

ROOT = Path(__file__).resolve().parent
FACTORS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)


def scan(spectrum: Path, runs: Path, factors=FACTORS, threads: int | None = None) -> list[dict]:
    """One refit per factor: {factor, h, worst, null, f, kappa, at_bound, row_loss_share}."""
    sweep = load_sweep(runs)
    out = []
    for factor in factors:
        sp = spectrum_with_slow_row(spectrum, factor)
        m = sp.meta
        share = 0.5 * m["slow_row_count"] * m["slow_row_h"] * m["slow_row_s0"] / sp.initial_loss()
        out.append({"factor": factor, "h": m["slow_row_h"], "row_loss_share": share,
                    **refit(sp, sweep, threads)})
    return out


def main():
    """Command line: scan and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectrum", default=str(ROOT / "measure/charlm/spectrum_target.npz"))
    ap.add_argument("--runs", default=str(ROOT / "sweeps/charlm-momentum"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    print("| F | h_slow | worst held-out error | null | f | kappa | slow row's share of L0 |\n"
          "|---:|---:|---:|---:|---:|---:|---:|")
    for r in scan(Path(args.spectrum), Path(args.runs), threads=args.threads):
        print(f"| {r['factor']:g} | {r['h']:.2g} | {r['worst']:.2f} | {r['null']:.2f} | "
              f"{r['f']:.2g} | {r['kappa']:.2g}{' (bound)' if r['at_bound'] else ''} | "
              f"{r['row_loss_share']:.2g} |", flush=True)


if __name__ == "__main__":
    main()
