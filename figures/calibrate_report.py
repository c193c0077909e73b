"""Text and CSV of an `nqm calibrate` record (presentation only)."""

from __future__ import annotations

import csv


def _g(x, spec=".4g") -> str:
    return "-" if x is None else format(x, spec)


def noise_line(record: dict) -> list[str]:
    """The loss-following noise line, when the record has one (none for constant noise)."""
    n = record.get("noise")
    if n is None:
        return []
    l_noise = "inf (constant)" if n["l_noise"] is None else _g(n["l_noise"])
    return [f"noise follows the loss: {n['quantity']} = {_g(n['intercept'])} + "
            f"{_g(n['slope'])} x train loss over {n['n_points']} checkpoints; "
            f"l_noise = {l_noise}, L_ref = {_g(n['l_ref'])} (NQM loss units)"]


def path_line(record: dict) -> list[str]:
    """The path model's segments, when the record has them (none for one quadratic)."""
    p = record.get("path")
    if p is None:
        return []
    segs = p["segments"]
    parts = [f"{s['label']} (r = {_g(s['fraction'], '.3g')})" for s in segs[:-1]]
    return [f"path model: {len(segs)} quadratics chained along the reference run: "
            + ", ".join(parts + [f"{segs[-1]['label']} (r = f, fitted)"])]


def _scale_rule(fitted: dict) -> str:
    """Where kappa came from under the loss-matched noise scale (or that it was fitted anyway)."""
    rule = fitted.get("noise_scale_rule")
    if rule is None:
        return ""
    if "segment_scales" in rule:
        scales = ", ".join(format(v, ".3g") for v in rule["segment_scales"])
        return (f" (loss-matched path: segment j's noise times rho_j = L0_j / (l_j - l_floor) = "
                f"{scales}; kappa multiplies that)")
    if rule["kappa0"] is None:
        return " (kappa is fitted on two batch sizes: --noise-scale changes nothing here)"
    return " (loss-matched: L0 / (l_0 - l_floor), the measured noise in NQM loss units)"


def _stand_in(nqm: dict) -> str:
    """The NQM optimizer of a record's `nqm_optimizer` in words."""
    return "mean-field Adam, nqm.adam" if nqm["kind"] == "adam" else \
        f"{nqm['kind']}, precond p = {nqm['precond']:g}"


def calibrate_lines(record: dict) -> list[str]:
    """The table printed by `nqm calibrate`: per batch size measured, NQM and null steps and
    the tuned learning rates; then the fitted scalars, critical batch sizes and the verdict."""
    from nqm.calibrate import summary_line

    f = record["fitted"]
    nqm = record["nqm_optimizer"]
    out = [f"{record['workload']}, {record['optimizer']} (NQM: {_stand_in(nqm)}), target "
           f"{record['target']:g}",
           f"fitted on B = {', '.join(map(str, record['fit_on'])) or 'none'}: target fraction "
           f"f = {_g(f['target_fraction'])} (train-loss rule {_g(f['target_fraction_rule'])}), "
           f"noise scale kappa = {_g(f['noise_scale'])}"
           + (f"  [{'; '.join(f['at_bound'])}]" if f["at_bound"] else "")
           + _scale_rule(f),
           *([f"NQM predicts what the sweep measures: the best of {record['prediction']['trials']}"
              f" trials' first evaluated crossing (quantile "
              f"{record['prediction']['quantile']:.3g} of one run's loss)"]
             if "prediction" in record else []),
           *noise_line(record),
           *path_line(record),
           f"{'batch':>7} {'measured':>9} {'NQM':>9} {'null':>9} {'fit':>4} "
           + (f"{'lr meas':>13} {'lr NQM':>13}" if nqm["kind"] == "adam" else
            f"{'lr/(1-b) meas':>13} {'lr/(1-b) NQM':>13}")]
    for p in record["points"]:
        out.append(f"{p['batch_size']:>7d} {_g(p['measured'], 'd'):>9} "
                   f"{_g(p['predicted'], 'd'):>9} {_g(p['null_model'], '.0f'):>9} "
                   f"{'yes' if p['used_in_fit'] else '':>4} "
                   f"{_g(p['lr_effective_measured'], '.3g'):>13} "
                   f"{_g(p['lr_effective_predicted'], '.3g'):>13}")
    crit = record["critical_batch_size"]
    out.append("critical batch size (mccandlish / overhead_20pct):")
    for who in ("measured", "predicted", "null_model"):
        c = crit.get(who)
        if c is not None:
            out.append(f"  {who:<10} {_g(c['mccandlish'])} / {_g(c['overhead_20pct'])}"
                       + (f"  (extrapolated: {', '.join(c['extrapolated'])})"
                          if c["extrapolated"] else ""))
    if "tracked_b_simple" in record:
        out.append(tracked_line(record["tracked_b_simple"]))
    out.append(summary_line(record))
    for t in record["transfer"]:
        e = t["error"]["nqm_worst"]
        out.append(f"transfer to {t['optimizer']} (NQM: {_stand_in(t['nqm_optimizer'])}; "
                   f"no refit): worst error {_g(e, '.3g')}x, "
                   f"B_crit {_g(t['critical_batch_size']['predicted']['mccandlish'])} predicted"
                   f" against {_g(t['critical_batch_size']['measured']['mccandlish'])} measured")
    return out


def tracked_line(t: dict) -> str:
    """The tracked B_simple (McCandlish et al.: B_crit ~ B_simple) judged against the measured
    `mccandlish` B_crit, beside the other predictions' error factors."""
    ci = t["interval"]
    where = (f"step {t['step']}, first metric <= target" if t["at"] == "target"
             else f"step {t['step']}, end of log")
    others = ", ".join(f"{k} {_g(v, '.3g')}x" for k, v in t["error_others"].items())
    return (f"  tracked B_simple {_g(t['b_simple'])}"
            + (f" [{_g(ci[0], '.3g')}, {_g(ci[1], '.3g') if ci[1] is not None else 'inf'}]"
               if ci else "")
            + f" ({where}): {_g(t['error'], '.3g')}x from the measured mccandlish B_crit "
            f"(errors of the others: {others})")


CSV_KEYS = ("batch_size", "measured", "predicted", "null_model", "used_in_fit", "lr_measured",
            "lr_predicted", "momentum_measured", "momentum_predicted", "error_nqm",
            "error_null", "trials", "widened")


def write_calibrate_csv(record: dict, path) -> None:
    """One row per batch size of the calibrated sweep and of every transfer sweep."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("optimizer",) + CSV_KEYS)
        for opt, pts in [(record["optimizer"], record["points"])] + \
                [(t["optimizer"], t["points"]) for t in record["transfer"]]:
            for p in pts:
                w.writerow((opt,) + tuple(p[k] for k in CSV_KEYS))
