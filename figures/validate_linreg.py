"""Validate the NQM's predictions against the committed linreg sweeps (SGD and heavy ball).

    python -m figures.validate_linreg [--repeats 16] [--seed 0] [--out figures/validation/linreg]

Per batch size: the measured best-of-64 steps (figures/sweeps/linreg-<opt>/summary.json) against
  const    the constant-noise NQM (`nqm.predict`) on the measured spectrum at the target
           (figures/measure/linreg/spectrum_target.npz: its h, c, s0);
  coupled  the loss-following expected loss (`nqm.coupled_tuning`) of the exact model:
           h = i^-1, sigma^2 = 0.25, s0 = the mean over the sweep's 64 trial initialisations of
           (w0 - w*)^2 (w* and w0 rebuilt by the workload's own code, same seeds);
  fp       the simulated sweep (`nqm.first_passage`): median over --repeats simulated sweeps of
           the best of 64 trials' first evaluated crossing (exact model, every trial starting
           from its own w0 - w*), with its 16th-84th percentiles, gradient noise Gaussian
           with the exact covariance;
  fp_data  the same on sampled least-squares minibatches (`noise="data"`: the exact,
           non-Gaussian minibatch gradient of the workload);
  and the same two from the spectrum measured at initialisation
  (figures/measure/linreg/spectrum_init.npz: h, s0, count) with sigma^2 estimated from the
  noise measured there (`init_sigma2`): for least squares tr(Sigma) = |G|^2 + tr(H) (2 L + sigma^2),
  so sigma^2 = (tr(Sigma) - |G|^2) / tr(H) - 2 L with tr(Sigma), |G|^2, tr(H) and the excess
  loss L all measured at initialisation (figures/measure/linreg/measure.json).  Using the
  spectrum's own 2 L = sum h s0 instead (its s0 is the distance to the target checkpoint, not
  to w*) gives a far larger sigma^2, printed as `sigma2_from_spectrum_s0`.
Nothing is fitted to the sweeps; no parameter is held out because none is fitted.
Writes DIR/validation.json (no wall-clock values) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nqm.coupled import CoupledNoise  # noqa: E402
from nqm.coupled_tuning import CoupledTuneConfig, tune  # noqa: E402
from nqm.critical import estimate  # noqa: E402
from nqm.first_passage import ProtocolConfig, first_passage  # noqa: E402
from nqm.predict import PredictConfig, predict  # noqa: E402
from nqm.spectrum import Spectrum, load  # noqa: E402

TARGET, BUDGET, TRIALS, SIGMA2 = 0.005, 40000, 64, 0.25
LR_RANGE, BETA_RANGE = (1e-3, 3.0), (1e-2, 1.0)    # the workload's initial search ranges
MEASURE = ROOT / "figures" / "measure" / "linreg"


def exact_linreg(n_trials: int = TRIALS) -> tuple[Spectrum, np.ndarray]:
    """h = i^-1 and the trials' initial w0 - w*, from the workload's own seeds."""
    import torch

    from empirical.workloads import linreg_workload

    wl = linreg_workload()
    w_star = torch.randn(64, generator=torch.Generator().manual_seed(0)).double().numpy()
    deltas = np.array([wl.make_model(i).weight.detach().double().numpy().ravel() - w_star
                       for i in range(n_trials)])
    h = np.arange(1, 65, dtype=np.float64) ** -1.0
    model = wl.make_model(0)
    check = float(wl.evaluate(model, {"weight": model.weight.detach()[None]})[0])
    mine = 0.5 * float(np.sum(h * deltas[0] ** 2))
    assert abs(check - mine) < 1e-4 * mine, (check, mine)     # same w* as the workload
    s0 = np.mean(deltas**2, axis=0)
    return Spectrum(h, SIGMA2 * h, s0, np.ones(64)), deltas


def init_sigma2() -> float:
    """sigma^2 from the noise measured at initialisation: (tr S - |G|^2) / tr H - 2 L."""
    m = json.loads((MEASURE / "measure.json").read_text())["along_training"][0]
    assert m["label"] == "init"
    return ((m["trace_sigma"] - m["grad_norm_sq"]) / m["trace_hessian"]) - 2 * m["metric"]


def spectrum_sigma2(sp: Spectrum) -> float:
    """sigma^2 implied by a spectrum's own noise and distances (module docstring)."""
    w, h = sp.count, sp.h
    tr_h = float(np.sum(w * h))
    rest = np.sum(w * sp.c) - np.sum(w * h**2 * sp.s0) - tr_h * np.sum(w * h * sp.s0)
    return float(rest / tr_h)


def bcrit(points) -> float | None:
    """The mccandlish critical batch size of (batch_size, steps) points."""
    est = estimate([p["batch_size"] for p in points], [p["steps"] for p in points])
    return est.values.get("mccandlish")


def run(opt: str, sizes, exact, deltas, init, s2_init, repeats, seed) -> dict:
    """Every prediction of one optimizer's sweep (the module docstring's list)."""
    target_sp = load(MEASURE / "spectrum_target.npz")
    const = predict(target_sp, PredictConfig(target=TARGET, optimizer=opt,
                                             batch_sizes=tuple(sizes)))["points"]
    tcfg = CoupledTuneConfig(TARGET, opt, batch_sizes=tuple(sizes), max_steps=10**6)
    pcfg = ProtocolConfig(TARGET, opt, batch_sizes=tuple(sizes), n_trials=TRIALS,
                          lr_range=LR_RANGE, one_minus_beta_range=BETA_RANGE, budget=BUDGET,
                          repeats=repeats)
    rng = np.random.default_rng(seed)
    return {"const": const,
            "coupled": tune(exact, CoupledNoise(SIGMA2), tcfg),
            "fp": first_passage(exact, CoupledNoise(SIGMA2), pcfg, rng, theta0=deltas),
            "fp_data": first_passage(exact, CoupledNoise(SIGMA2),
                                     replace(pcfg, noise="data"), rng, theta0=deltas),
            "coupled_init": tune(init, CoupledNoise(s2_init), tcfg),
            "fp_init": first_passage(init, CoupledNoise(s2_init), pcfg, rng)}


def ratio(pred, meas):
    """pred / meas (None when either is missing)."""
    return None if pred is None or meas is None else pred / meas


def table(opt: str, measured: list[dict], preds: dict) -> dict:
    """Rows of predicted / measured per batch size, B_crit and learning rates."""
    rows = []
    names = ("const", "coupled", "fp", "fp_data", "coupled_init", "fp_init")
    print(f"\nlinreg {opt}: steps to excess loss {TARGET} (ratio = predicted / measured)")
    print(f"{'B':>5} {'measured':>8} " + " ".join(f"{n:>18}" for n in names)
          + "   lr/(1-beta): measured, coupled, fp, fp_data")
    for i, m in enumerate(measured):
        row = {"batch_size": m["batch_size"], "measured": m["steps"], "measured_lr": m["lr"],
               "measured_momentum": m["momentum"]}
        m_eff = m["lr"] / (1 - (m["momentum"] or 0.0))
        row["measured_lr_effective"] = m_eff
        cells = []
        for n in names:
            p = preds[n][i]
            assert p["batch_size"] == m["batch_size"]
            row[n] = p["steps"]
            row[n + "_ratio"] = ratio(p["steps"], m["steps"])
            row[n + "_lr"] = p["lr"]
            row[n + "_lr_ratio"] = ratio(p["lr"], m["lr"])
            if n != "const":       # lr / (1 - beta): the quantity momentum's ridge fixes
                row[n + "_lr_effective"] = p["lr_effective"]
                row[n + "_lr_effective_ratio"] = ratio(p["lr_effective"], m_eff)
            cells.append(f"{p['steps'] or float('nan'):>10.0f} ({row[n + '_ratio'] or 0:4.2f})")
        for n in ("fp", "fp_data", "fp_init"):
            row[n + "_q16"] = preds[n][i]["steps_q16"]
            row[n + "_q84"] = preds[n][i]["steps_q84"]
        print(f"{m['batch_size']:>5} {m['steps']:>8} " + " ".join(f"{c:>18}" for c in cells)
              + "  " + " ".join(f"{row[k]:>7.4f}" for k in (
                  "measured_lr_effective", "coupled_lr_effective", "fp_lr_effective",
                  "fp_data_lr_effective")))
        rows.append(row)
    crit = {"measured": bcrit(measured), **{n: bcrit(preds[n]) for n in names}}
    print("B_crit (mccandlish): " + ", ".join(
        f"{k} {v:.1f}" + ("" if k == "measured" or not crit["measured"]
                          else f" ({v / crit['measured']:.2f}x)")
        for k, v in crit.items() if v is not None))
    return {"rows": rows, "b_crit": crit}


def main(argv=None) -> None:
    """Command line: predict, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "figures" / "validation" / "linreg"))
    args = ap.parse_args(argv)
    exact, deltas = exact_linreg()
    init = load(MEASURE / "spectrum_init.npz")
    s2_init, s2_spec = init_sigma2(), spectrum_sigma2(init)
    print(f"sigma^2 from the noise measured at initialisation: {s2_init:.4f} (true {SIGMA2}; "
          f"with the spectrum's own s0: {s2_spec:.4f})")
    out = {"target": TARGET, "sigma2": SIGMA2, "sigma2_init_estimate": s2_init,
           "sigma2_from_spectrum_s0": s2_spec,
           "repeats": args.repeats, "seed": args.seed, "n_trials": TRIALS, "budget": BUDGET,
           "fitted_to_sweeps": "nothing", "optimizers": {}}
    for opt in ("sgd", "momentum"):
        summary = json.loads((ROOT / "figures" / "sweeps" / f"linreg-{opt}" /
                              "summary.json").read_text())
        measured = summary["points"]
        sizes = [m["batch_size"] for m in measured]
        preds = run(opt, sizes, exact, deltas, init, s2_init, args.repeats, args.seed)
        out["optimizers"][opt] = {**table(opt, measured, preds),
                                  "repeats": {n: {str(p["batch_size"]): [r["steps"] for r in
                                                                          p["repeats"]]
                                                  for p in preds[n]}
                                              for n in ("fp", "fp_data", "fp_init")}}
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    (path / "validation.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {path / 'validation.json'}")


if __name__ == "__main__":
    main()
