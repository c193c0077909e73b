"""The whole loop from Python: sweep, measure, predict and calibrate a workload, each call
returning the plain record the matching `nqm` command writes.

    python examples/api_tour.py [OUT_DIR]     # the sweep and the measurement take minutes
"""

import sys
from pathlib import Path

from empirical import api
from nqm.calibrate import CalibrateConfig, calibrate
from nqm.predict import PredictConfig, implied_target, predict
from nqm.spectrum import load
from nqm.sweep_data import load_sweep


def main(out="out/api", workload="examples/conv1d_signal.py", batch_sizes=(4, 16, 64, 256),
         trials=8, top_k=20):
    """Sweep (momentum), measure at the target, predict from the measured spectrum alone,
    calibrate on the sweep; returns the four records."""
    out = Path(out)
    summary = api.sweep(workload, out / "sweep", optimizer="momentum",
                        batch_sizes=batch_sizes, trials=trials, device="cpu")
    for p in summary["points"]:
        print(f"B = {p['batch_size']:4d}: {p['steps']} steps (lr {p['lr']:.3g})")
    print("B_crit (mccandlish):", summary["critical_batch_size"]["mccandlish"])

    measured = api.measure(workload, out / "measure", at_target=True, top_k=top_k,
                           device="cpu")
    print("B_simple at the target:", measured["b_simple"])

    spectrum = load(out / "measure" / "spectrum.npz")
    target, _ = implied_target(spectrum)            # the train-loss rule
    predicted = predict(spectrum, PredictConfig(target=target, optimizer="momentum",
                                                 batch_sizes=tuple(batch_sizes)))
    print("NQM steps, zero runs:", [p["steps"] for p in predicted["points"]])

    calibrated = calibrate(spectrum, load_sweep(out / "sweep"), CalibrateConfig())
    print("worst error, NQM:", calibrated["error"]["nqm_worst"],
          " null hyperbola:", calibrated["error"]["null_worst"])
    return summary, measured, predicted, calibrated


if __name__ == "__main__":
    main(*sys.argv[1:2])
