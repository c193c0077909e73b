"""The text the CLI prints: number formatting and the tables of every command, as strings.

Presentation only: each function takes a pipeline's plain record and returns lines; nothing
here computes a result, reads a file or imports click.
"""

from __future__ import annotations

import math


def fmt(x, spec: str = ".4g") -> str:
    """`x` formatted with `spec`; '-' for None, 'inf'/'nan' as Python spells them."""
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return format(x, spec)


def with_interval(value, ci) -> str:
    """'12.3 [10.1, 15]', with 'inf' for an unbounded end and '-' for no estimate."""
    if value is None:
        return "-"
    lo, hi = ci or (None, None)
    return f"{fmt(value)} [{fmt(lo, '.3g')}, {'inf' if hi is None else fmt(hi, '.3g')}]"


def critical_lines(crit: dict, s_min, e_min, record: dict | None = None) -> list[str]:
    """The critical batch sizes; from a `record` with `critical_batch_size_flags` (and
    `confidence_95`) also why a value is not determined, a warning under a value outside the
    batch sizes, the bootstrap intervals and the warnings about the data."""
    flags = (record or {}).get("critical_batch_size_flags") or {}
    nd, extra = flags.get("not_determined", {}), flags.get("extrapolated", [])
    span = flags.get("batch_size_range")
    out = ["\nCritical batch size (two definitions; they differ by construction):"]

    def warn_extrapolated(key):
        if key in extra:
            out.append(f"{'':18}warning: extrapolated: outside the batch sizes "
                       f"{span[0]:g}..{span[1]:g}")

    fit = f"   (S_min = {fmt(s_min)}, E_min = {fmt(e_min)})"
    if crit.get("mccandlish") is None and "mccandlish" in nd:
        out.append(f"  mccandlish      B_crit not determined: {nd['mccandlish']}{fit}")
    else:
        out.append(f"  mccandlish      B_crit = E_min/S_min = {fmt(crit.get('mccandlish'))}{fit}")
    warn_extrapolated("mccandlish")
    if crit.get("overhead_20pct") is None and "overhead_20pct" in nd:
        out.append(f"  overhead_20pct  not determined: {nd['overhead_20pct']}")
    else:
        out.append(f"  overhead_20pct  steps 20% above perfect scaling at B = "
                   f"{fmt(crit.get('overhead_20pct'))}")
    warn_extrapolated("overhead_20pct")
    out += _interval_lines((record or {}).get("confidence_95"), nd)
    out += [f"warning: {w}" for w in flags.get("warnings", [])]
    if "b_noise" in crit:
        out += ["Gradient noise scales at the initial point:",
                f"  b_noise  = tr(H Sigma)/G'HG = {fmt(crit['b_noise'])}",
                f"  b_simple = tr(Sigma)/|G|^2  = {fmt(crit['b_simple'])}"]
    return out


def _interval_lines(ci: dict | None, nd: dict) -> list[str]:
    """The bootstrap intervals, or why they are not determined ([] without a bootstrap)."""
    if ci is None:
        return []
    if "interval" in nd:
        return [f"95% bootstrap intervals: not determined: {nd['interval']}"]
    out = ["95% bootstrap intervals:"]
    for key, (lo, hi) in ci.items():
        if lo is None and hi is None and key in nd:
            out.append(f"  {key:<15} not determined: {nd[key]}")
        else:
            out.append(f"  {key:<15} [{fmt(lo)}, {fmt(hi)}]")
    return out


def predict_lines(result: dict, source: str, n_rows: int, dimension: float) -> list[str]:
    """`nqm predict`'s table: one line per batch size, then the critical batch sizes."""
    ema_col, horizon_col = result["ema_tuned"], result["points"][0]["horizon"] is not None
    out = [f"NQM: {source} ({n_rows} rows, dimension {dimension:g}), optimizer "
           f"{result['optimizer']}, precond p = {result['precond']:g}, schedule "
           f"{result['schedule']}, target {result['target']:g}"]
    header = f"{'batch':>9} {'steps':>11} {'lr':>10} {'momentum':>9}"
    header += f" {'ema':>9}" if ema_col else ""
    header += f" {'horizon':>10}" if horizon_col else ""
    out.append(header + "  note")
    for p in result["points"]:
        steps = f"{p['steps']:>11d}" if p["reached"] else f"{'>' + str(result['max_steps']):>11}"
        line = f"{p['batch_size']:>9d} {steps} {p['lr']:>10.4g} {p['momentum']:>9.4g}"
        line += f" {p['ema']:>9.6g}" if ema_col else ""
        line += f" {p['horizon']:>10d}" if p["horizon"] is not None else ""
        notes = list(p["edges"]) + ([] if p["reached"] else ["target not reached in budget"])
        out.append(line + ("  " + "; ".join(notes) if notes else ""))
    return out + critical_lines(result["critical_batch_size"], result["s_min"],
                                result["e_min"], result)


def modes_lines(result: dict, source: str, n_rows: int, dimension: float) -> list[str]:
    """`nqm predict --noise ... [--protocol-trials N]`: per batch size the expected-loss
    prediction and, with a simulated sweep, its median steps [16%, 84%] and median best lr;
    then the critical batch sizes of each and the notes."""
    noise, sweep = result["noise"], result.get("protocol")
    model = noise["model"] + (f" (sigma = {noise['label_noise']:g})"
                              if "label_noise" in noise else " (the spectrum's c)")
    out = [f"NQM: {source} ({n_rows} rows, dimension {dimension:g}), optimizer "
           f"{result['optimizer']}, precond p = {result['precond']:g}, noise {model}, "
           f"target {result['target']:g}"]
    header = f"{'batch':>9} {'steps':>11} {'lr':>10} {'momentum':>9}"
    if sweep:
        header += f" {'sweep steps [16%, 84%]':>28} {'sweep lr':>10} {'sweep mom.':>10}"
    out.append(header + "  note")
    for i, p in enumerate(result["points"]):
        steps = f"{p['steps']:>11d}" if p["reached"] else f"{'>' + str(result['max_steps']):>11}"
        line = f"{p['batch_size']:>9d} {steps} {fmt(p['lr']):>10} {fmt(p['momentum']):>9}"
        if sweep:
            q = sweep["points"][i]
            band = f"{fmt(q['steps'], '.0f')} [{fmt(q['steps_q16'], '.0f')}, " \
                   f"{fmt(q['steps_q84'], '.0f')}]"
            line += f" {band:>28} {fmt(q['lr']):>10} {fmt(q['momentum']):>10}"
        notes = list(p["edges"]) + ([] if p["reached"] else ["target not reached in budget"])
        out.append(line + ("  " + "; ".join(notes) if notes else ""))
    crit = critical_lines(result["critical_batch_size"], result["s_min"], result["e_min"],
                          result)
    out += ["\nExpected loss (steps: first step with E L <= target, lr tuned per batch size)",
            crit[0].lstrip("\n"), *crit[1:]]
    if sweep:
        crit = critical_lines(sweep["critical_batch_size"], sweep["s_min"], sweep["e_min"],
                              sweep)
        out += [f"\nSimulated sweep ({sweep['trials']} trials per batch size, {sweep['repeats']} "
                f"repeats, seed {sweep['seed']}, lr range {sweep['lr_range'][0]:g}.."
                f"{sweep['lr_range'][1]:g}, budget {sweep['budget']}, {sweep['directions']} "
                f"directions)", "(sweep steps: median over repeats of the best trial's first "
                "evaluated step at or below the target)", crit[0].lstrip("\n"), *crit[1:]]
    if "note" in noise:
        out.append(f"note: {noise['note']}")
    return out


def simulate_lines(result: dict, shown: list[int], n_steps: int) -> list[str]:
    """`nqm simulate`'s table at the steps `shown`, the first step at the target and the
    steady state (each when the record has it)."""
    mc = "mc_mean" in result
    out = [f"{'step':>10} {'expected loss':>15}"
           + (f" {'MC mean':>13} {'MC se':>10}" if mc else "")]
    for k in shown:
        i = result["steps"].index(k)
        line = f"{k:>10d} {result['loss'][i]:>15.6g}"
        if mc:
            line += f" {result['mc_mean'][i]:>13.6g} {result['mc_se'][i]:>10.3g}"
        out.append(line)
    if result["target"] is not None:
        st = result["steps_to_target"]
        out.append(f"first step with loss <= {result['target']:g}: "
                   f"{st if st is not None else 'not reached within ' + str(n_steps)}")
    if "steady_state" in result:
        out.append(f"steady-state loss: {result['steady_state']:.6g}")
    return out


def compare_lines(results: dict) -> list[str]:
    """`nqm figures`'s table: steps at the smallest and largest batch size, B_crit."""
    out = [f"{'optimizer':<20} {'steps@B=min':>12} {'steps@B=max':>12} {'mccandlish':>11} "
           f"{'overhead_20pct':>15}"]
    for name, res in results.items():
        pts, crit = res["points"], res["critical_batch_size"]
        out.append(f"{name:<20} {fmt(pts[0]['steps'], 'd'):>12} {fmt(pts[-1]['steps'], 'd'):>12} "
                   f"{fmt(crit['mccandlish']):>11} {fmt(crit['overhead_20pct']):>15}")
    return out


def workloads_lines(catalog: dict, custom_models) -> list[str]:
    """`nqm workloads`: name, metric, target and budget of each workload."""
    out = [f"{'workload':<15} {'metric':<18} {'target':>8} {'budget':>8}"]
    for name, w in catalog.items():
        out.append(f"{name:<15} {w.metric_name:<18} {w.target:>8g} {w.budget:>8d}")
    out.append(f"{'custom':<15} your .npz: --data PATH --model {'|'.join(custom_models)} "
               f"--target X")
    return out


def sweep_lines(summary: dict, workload: str, optimizer: str, trials: int) -> list[str]:
    """`nqm sweep`'s table: the best trial per batch size, then the critical batch sizes."""
    out = [f"{workload}, {optimizer}, target {summary['target']:g}, {trials} trials per "
           f"batch size",
           f"{'batch':>7} {'steps':>8} {'lr':>10} {'momentum':>9} {'diverged':>9}  note"]
    for p in summary["points"]:
        steps = f"{p['steps']:>8d}" if p["reached"] else f"{'-':>8}"
        note = ("widened; " if p["widened"] else "") + ("" if p["reached"] else "not reached")
        out.append(f"{p['batch_size']:>7d} {steps} {fmt(p['lr']):>10} "
                   f"{fmt(p['momentum']):>9} {p['diverged']:>9d}  {note}")
    return out + critical_lines(summary["critical_batch_size"], summary["s_min"],
                                summary["e_min"], summary)


def measure_lines(record: dict) -> list[str]:
    """`nqm measure`'s table: noise scales and curvature at every checkpoint."""
    along = record["along_training"]
    out = [f"{record['workload']}: {record['metric_name']} target {record['target']:g}; "
           f"{record['config']['kind']}, {along[0]['n_examples']} examples, "
           f"{along[0]['n_params']} parameters",
           f"{'checkpoint':<12} {'step':>6} {'metric':>8} {'B_simple':>22} "
           f"{'B_noise':>22} {'lambda_max':>10} {'tr(H)':>9}"]
    for a in along:
        bs = with_interval(a["b_simple"], a["b_simple_ci"])
        bn = with_interval(a["b_noise"], a["b_noise_ci"])
        out.append(f"{a['label']:<12} {a['step']:>6d} {fmt(a['metric']):>8} {bs:>22} {bn:>22} "
                   f"{fmt(a['top_eigenvalues'][0]):>10} {fmt(a['trace_hessian']):>9}")
        if a["two_batch"]:
            tb = a["two_batch"]
            out.append(f"{'':<12} two-batch B_simple ({tb['b_small']}, {tb['b_big']}; "
                       f"{tb['draws']} draws) = "
                       f"{with_interval(tb['b_simple'], tb['b_simple_ci'])}")
    top = along[-1]["top_eigenvalues"]
    out.append(f"top eigenvalues at {along[-1]['label']}: "
               + ", ".join(fmt(v, ".3g") for v in top[:10]) + (" ..." if len(top) > 10 else ""))
    return out


def tracked_lines(log, rows: int = 10) -> list[str]:
    """A noise-scale log (`nqm.noise_log.NoiseLog`) as about `rows` evenly spaced updates and
    the last: step, B_simple [interval], loss and metric."""
    pts = log.points
    idx = sorted({round(i * (len(pts) - 1) / max(rows - 1, 1)) for i in range(rows)})
    out = [f"{log.source}: {len(pts)} updates, estimator {log.config.get('estimator', '?')}, "
           f"ema {log.config.get('ema', '?')}",
           f"{'step':>8} {'B_simple [interval]':>30} {'loss':>9} {'metric':>9}"]
    for i in idx:
        p = pts[i]
        value = with_interval(p.b_simple, p.interval) if p.interval else fmt(p.b_simple)
        out.append(f"{p.step:>8d} {value:>30} "
                   f"{fmt(p.loss):>9} {fmt(p.metric):>9}")
    return out


def targets_lines(summary: dict) -> list[str]:
    """A sweep's steps per batch size for each of its targets (one column per target), then
    each target's critical batch sizes with their 95% intervals."""
    groups = summary["by_target"]
    head = "".join(f"{'T=' + fmt(g['target'], 'g'):>12}" for g in groups)
    out = ["\nSteps to result per target (read from the same trials):", f"{'batch':>7}{head}"]
    for i, p in enumerate(groups[0]["points"]):
        cells = "".join(f"{fmt(g['points'][i]['steps']):>12}" for g in groups)
        out.append(f"{p['batch_size']:>7d}{cells}")
    out.append(f"{'target':>10} {'mccandlish B_crit [95%]':>30} {'overhead_20pct [95%]':>30}")
    for g in groups:
        crit, ci = g["critical_batch_size"], g.get("confidence_95") or {}
        cells = [_value_and_interval(crit.get(k), ci.get(k))
                 for k in ("mccandlish", "overhead_20pct")]
        out.append(f"{fmt(g['target'], 'g'):>10} {cells[0]:>30} {cells[1]:>30}")
    return out


def _value_and_interval(value, ci) -> str:
    """with_interval, the interval left out when the bootstrap did not determine it and the
    value written 'not determined' when there is none."""
    if value is None:
        return "not determined"
    if not ci or all(x is None for x in ci):
        return fmt(value)
    return with_interval(value, ci)


def budget_lines(summary: dict, trials: int) -> list[str]:
    """`nqm sweep --epoch-budget/--quality`'s table: the best metric per batch size."""
    budget = (f"{summary['epoch_budget']:g} epochs of N = {summary['n_train']}"
              if summary["mode"] == "epochs" else f"{summary['step_budget']} steps")
    out = [f"{summary['workload']}, {summary['optimizer']}, fixed budget {budget}, {trials} "
           f"trials per batch size; best {summary['metric']} (95% bootstrap over trials)",
           f"{'batch':>7} {'steps':>7} {'epochs':>8} {'best metric':>26} {'at step':>8} "
           f"{'lr':>10} {'momentum':>9} {'diverged':>9}  note"]
    for p in summary["best_metric"]:
        note = "widened" if p["widened"] else ""
        out.append(f"{p['batch_size']:>7d} {p['steps']:>7d} {fmt(p['epochs'], '.3g'):>8} "
                   f"{with_interval(p['best_metric'], p['interval']):>26} "
                   f"{fmt(p['best_step']):>8} {fmt(p['lr']):>10} {fmt(p['momentum']):>9} "
                   f"{p['diverged']:>9d}  {note}")
    return out + [summary["largest_batch_size"]]
