"""Matplotlib helpers for the CLI (Agg backend: files only, no screen)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from figures.save import save_figure  # noqa: E402


def _finish(fig, ax, path, xlabel: str, ylabel: str, title: str) -> None:
    """Labels, grid and legend; save as PNG and close."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _mark_critical(ax, crit: dict, flags: dict | None = None) -> None:
    """A vertical line per critical batch size; '(extrapolated)' on one outside the data."""
    extrapolated = (flags or {}).get("extrapolated", [])
    styles = {"mccandlish": ("tab:red", "--"), "overhead_20pct": ("tab:purple", ":"),
              "b_noise": ("tab:green", "-."), "b_simple": ("tab:olive", (0, (1, 3)))}
    for key, (color, ls) in styles.items():
        value = crit.get(key)
        if value is not None and np.isfinite(value) and value > 0:
            note = " (extrapolated)" if key in extrapolated else ""
            ax.axvline(value, color=color, ls=ls, lw=1.2, label=f"{key} = {value:.4g}{note}")


def steps_vs_batch(result: dict, path, title: str | None = None) -> None:
    """Steps to target against batch size (log-log) with perfect scaling, the lower bound
    (where it is at least one step) and the critical batch sizes marked."""
    pts = result["points"]
    b = np.array([p["batch_size"] for p in pts], dtype=float)
    s = np.array([np.nan if p["steps"] is None else p["steps"] for p in pts], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.loglog(b, s, "o-", color="tab:blue", label=f"{result.get('optimizer', '')} (tuned)")
    edge = np.array([p.get("at_edge", False) for p in pts])
    if edge.any():
        ax.loglog(b[edge], s[edge], "o", mfc="none", mec="k", ms=10,
                  label="optimum at a search edge")
    ok = np.flatnonzero(np.isfinite(s))
    if ok.size:
        i0 = ok[0]
        ax.loglog(b, s[i0] * b[i0] / b, color="gray", ls="--", lw=1, label="perfect scaling")
    if "lower_bound" in pts[0]:
        lb = np.array([p["lower_bound"] for p in pts])
        keep = lb >= 1
        if keep.any():
            ax.loglog(b[keep], lb[keep], color="k", ls=":", lw=1, label="lower bound (C-R)")
    if result.get("s_min"):
        bb = np.geomspace(b.min(), b.max(), 200)
        ax.loglog(bb, result["s_min"] + result["e_min"] / bb, color="tab:red", lw=0.8,
                  alpha=0.6, label="fit S_min + E_min/B")
    _mark_critical(ax, result.get("critical_batch_size", {}),
                   result.get("critical_batch_size_flags"))
    _finish(fig, ax, path, "batch size B", f"steps to target {result.get('target', '')}",
            title or "Steps to target vs batch size")


def loss_curve(result: dict, path, title: str | None = None) -> None:
    """Expected loss against step (log-log), with the Monte Carlo mean +- 2 SE if present."""
    k = np.asarray(result["steps"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 5))
    x = k + 1
    ax.loglog(x, result["loss"], color="tab:blue", label="exact expectation")
    if "mc_mean" in result:
        m = np.asarray(result["mc_mean"])
        se = np.asarray(result["mc_se"])
        xm = np.asarray(result["mc_steps"], dtype=float) + 1
        ax.fill_between(xm, np.maximum(m - 2 * se, 1e-300), m + 2 * se, color="tab:orange",
                        alpha=0.3, label=f"Monte Carlo ±2 SE ({result['mc_runs']} runs)")
        ax.loglog(xm, m, color="tab:orange", lw=0.8)
    if result.get("target"):
        ax.axhline(result["target"], color="k", ls=":", label=f"target {result['target']:g}")
    _finish(fig, ax, path, "step k + 1", "expected loss",
            title or "Expected loss")


def fit_plot(result: dict, path) -> None:
    """Measured steps with the McCandlish fit and both critical batch sizes."""
    steps_vs_batch({**result, "optimizer": "measured"}, path,
                   title="Measured steps and the McCandlish fit")


def compare_optimizers(results: dict, path, title: str | None = None) -> None:
    """Steps vs batch size of several tuned optimizers (NQM predictions or measured sweeps),
    with each one's McCandlish critical batch size marked on its curve."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for i, (name, res) in enumerate(results.items()):
        color = f"C{i}"
        pts = res["points"]
        b = np.array([p["batch_size"] for p in pts], dtype=float)
        s = np.array([np.nan if p["steps"] is None else p["steps"] for p in pts], dtype=float)
        bc = res["critical_batch_size"]["mccandlish"]
        label = f"{name} (B_crit {bc:.3g})" if bc else name
        ax.loglog(b, s, "o-", ms=3, color=color, label=label)
        if bc and b.min() <= bc <= b.max():
            ax.plot([bc], [np.exp(np.interp(np.log(bc), np.log(b), np.log(s)))], "*",
                    color=color, ms=12, mec="k")
    first = next(iter(results.values()))["points"]
    if first and "lower_bound" in first[0]:      # NQM results; measured sweeps have none
        b = np.array([p["batch_size"] for p in first], dtype=float)
        lb = np.array([p["lower_bound"] for p in first])
        keep = lb >= 1
        ax.loglog(b[keep], lb[keep], "k:", lw=1, label="lower bound (C-R)")
    _finish(fig, ax, path, "batch size B", "steps to target (tuned per B)",
            title or "NQM: steps to target by optimizer")


def measured_spectrum(summary: dict, spectrum, path, title: str = "") -> None:
    """Left: the top eigenvalues and the gradient-noise variance c_i along each (log y).
    Right: the NQM spectrum built from the measurement: directions per curvature bin (the bulk
    density from SLQ) and the top directions, with the noise per direction."""
    lam = np.asarray(summary["top_eigenvalues"])
    c = np.asarray(summary["top_noise"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    i = np.arange(1, lam.size + 1)
    pos = lam > 0
    ax1.semilogy(i[pos], lam[pos], "o-", color="tab:blue", label="eigenvalue lambda_i")
    if (~pos).any():
        ax1.semilogy(i[~pos], -lam[~pos], "x", color="tab:red", label="-lambda_i (negative)")
    ax1.semilogy(i, np.maximum(c, 1e-300), "s--", color="tab:orange",
                 label="noise c_i = v_i' Sigma v_i")
    ax1.set_xlabel("direction i (top-k)")
    ax1.set_title(title)
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    h, n, cn = spectrum.h, spectrum.count, spectrum.c
    bulk = n != 1.0
    ax2.loglog(h[bulk], n[bulk], "o-", color="tab:blue", ms=3, label="bulk: directions per bin")
    ax2.loglog(h[~bulk], n[~bulk], "|", color="tab:blue", ms=14, label="top directions")
    ax2.loglog(h, np.maximum(cn, 1e-300), ".", color="tab:orange", label="noise per direction c")
    ax2.set_xlabel("curvature h")
    ax2.set_ylabel("count / noise")
    ax2.set_title(f"NQM spectrum ({spectrum.n_rows} rows, {spectrum.dimension:.4g} directions)")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def noise_along_training(points: list[dict], path, title: str = "") -> None:
    """B_simple and B_noise with their 95% intervals, drawn as they are (an interval need not
    hold its estimate; an unbounded upper end runs to the top, marked ^, a lower end that is
    missing or not positive to the bottom, marked v), and the training loss at each checkpoint
    as the tick label.  Estimates that are missing or not positive are left out (log axis)."""
    fig, ax = plt.subplots(figsize=(7, 5))
    x = np.arange(len(points))
    values = [p[k] for p in points for k in ("b_simple", "b_noise") if p[k]] + \
        [c for p in points for k in ("b_simple", "b_noise") for c in (p[f"{k}_ci"] or []) if c]
    positive = [v for v in values if v > 0]
    lo, hi = (min(positive) / 2, max(positive) * 2) if positive else (0.1, 10.0)
    for shift, (key, color) in zip((-0.06, 0.06), (("b_simple", "tab:blue"),
                                                  ("b_noise", "tab:green"))):
        v = np.array([np.nan if p[key] is None or p[key] <= 0 else p[key] for p in points],
                     dtype=float)
        ci = np.array([[np.nan if c is None else c for c in (p[f"{key}_ci"] or [None, None])]
                       for p in points], dtype=float)
        ax.plot(x + shift, v, "o-", color=color, label=f"{key} (bar: 95% interval)")
        ci[:, 0] = np.where(ci[:, 0] > 0, ci[:, 0], np.nan)
        has = np.isfinite(ci[:, 0]) | np.isfinite(ci[:, 1])
        bottom = np.clip(np.where(np.isfinite(ci[:, 0]), ci[:, 0], lo), lo, hi)
        top = np.clip(np.where(np.isfinite(ci[:, 1]), ci[:, 1], hi), lo, hi)
        ax.vlines((x + shift)[has], bottom[has], top[has], color=color, lw=1.5)
        open_top = has & ~np.isfinite(ci[:, 1])
        ax.plot((x + shift)[open_top], np.full(open_top.sum(), hi), "^", color=color, ms=7,
                ls="none", label=f"{key}: interval unbounded above" if open_top.any() else None)
        open_bottom = has & ~np.isfinite(ci[:, 0])
        ax.plot((x + shift)[open_bottom], np.full(open_bottom.sum(), lo), "v", color=color,
                ms=7, ls="none",
                label=f"{key}: no positive lower end" if open_bottom.any() else None)
    ax.set_yscale("log")
    ax.set_ylim(lo / 1.1, hi * 1.1)
    ax.set_xticks(x, [f"{p['label']}\nloss {p['train_loss']:.3g}" for p in points], fontsize=8)
    _finish(fig, ax, path, "checkpoint (training loss)", "noise scale (examples)", title)


def tracked_noise_scale(log, path, title: str = "") -> None:
    """The tracked B_simple of a noise-scale log (`nqm.noise_log.NoiseLog`) against step, its
    interval as a band (an unbounded upper end drawn to the top of the plot), and the logged
    metric (or loss) on a second axis when present."""
    pts = log.points
    step = np.array([p.step for p in pts], dtype=float)
    b = np.array([np.nan if p.b_simple is None else p.b_simple for p in pts])
    ci = np.array([[np.nan, np.nan] if p.interval is None else p.interval for p in pts])
    shown = np.concatenate([b[b > 0], ci[np.isfinite(ci) & (ci > 0)]])
    lo, hi = (shown.min() / 2, shown.max() * 2) if shown.size else (0.1, 10.0)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between(step, np.clip(ci[:, 0], lo, hi), np.clip(ci[:, 1], lo, hi),
                    color="tab:blue", alpha=0.25, lw=0, label="interval (to the top: unbounded)")
    ax.plot(step, b, color="tab:blue", lw=1.5, label="B_simple (EMA)")
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    key = "metric" if any(p.metric is not None for p in pts) else "loss"
    other = np.array([np.nan if getattr(p, key) is None else getattr(p, key) for p in pts])
    if np.isfinite(other).any():
        ax2 = ax.twinx()
        keep = np.isfinite(other)
        ax2.plot(step[keep], other[keep], color="tab:gray", lw=1, alpha=0.8, label=key)
        ax2.set_ylabel(key, color="tab:gray")
        ax2.set_yscale("log" if np.nanmin(other) > 0 else "linear")
    _finish(fig, ax, path, "step", "B_simple = tr(Sigma)/|G|^2 (examples)", title)
