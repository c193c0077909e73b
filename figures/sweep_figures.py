"""Figures of a measured sweep (Shallue et al. 2019, arXiv 1811.03600): steps and examples to
result against batch size with perfect scaling (their figure 1 and section 4), the steps of
several targets from one sweep (section 4, "different goals"), and the metaparameter
sensitivity, the trials in (lr, 1 - beta) space per batch size (section 5, the feasible region).

Each function takes the sweep's plain records (summary.json's record; per-trial dicts of
`empirical.targets`) and writes one PNG.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from figures.save import save_figure  # noqa: E402


def _groups(summary: dict) -> list[dict]:
    """The summary's targets: `by_target`, or the one target as such a group."""
    return summary.get("by_target") or [summary]


def _arrays(points: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    b = np.array([p["batch_size"] for p in points], dtype=float)
    s = np.array([np.nan if p["steps"] is None else p["steps"] for p in points], dtype=float)
    return b, s


def _mark_bcrit(ax, group: dict, b, y, color) -> None:
    """A star at the McCandlish B_crit on the curve (log-interpolated) if inside the data."""
    bc = group["critical_batch_size"].get("mccandlish")
    ok = np.isfinite(y)
    if bc and ok.sum() >= 2 and b[ok].min() <= bc <= b[ok].max():
        yc = np.exp(np.interp(np.log(bc), np.log(b[ok]), np.log(y[ok])))
        ax.plot([bc], [yc], "*", color=color, ms=13, mec="k", zorder=5)


def _style(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def steps_and_examples(summary: dict, path, title: str = "") -> None:
    """Left: steps to result S(B); right: examples to result B*S(B), each target a colour,
    with perfect scaling from the smallest reached batch size (S proportional to 1/B, so B*S
    constant) dashed and the McCandlish B_crit starred."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, g in enumerate(_groups(summary)):
        color = f"C{i}"
        b, s = _arrays(g["points"])
        bc = g["critical_batch_size"].get("mccandlish")
        label = f"target {g['target']:g}" + (f" (B_crit {bc:.3g})" if bc else "")
        ax1.loglog(b, s, "o-", color=color, label=label)
        ax2.loglog(b, b * s, "o-", color=color, label=label)
        ok = np.flatnonzero(np.isfinite(s))
        if ok.size:
            i0 = ok[0]
            ax1.loglog(b, s[i0] * b[i0] / b, color=color, ls="--", lw=0.8, alpha=0.7)
            ax2.loglog(b, np.full_like(b, s[i0] * b[i0]), color=color, ls="--", lw=0.8,
                       alpha=0.7)
        _mark_bcrit(ax1, g, b, s, color)
        _mark_bcrit(ax2, g, b, b * s, color)
    ax1.plot([], [], "k--", lw=0.8, label="perfect scaling")
    ax1.plot([], [], "k*", ms=10, label="B_crit (mccandlish)")
    _style(ax1, "batch size B", "steps to result S(B)", f"{title}: steps")
    _style(ax2, "batch size B", "examples to result B x S(B)", f"{title}: examples")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def steps_by_target(summary: dict, path, title: str = "") -> None:
    """Left: steps to result per target with each target's B_crit (mccandlish, dotted line)
    and overhead_20pct (dash-dot); right: S(B)/S(B_0), every curve from 1 at the smallest
    batch size, so that the shapes compare: a harder target bends away from perfect scaling
    (B_0/B) at a larger B when its knee lies further right."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, g in enumerate(_groups(summary)):
        color = f"C{i}"
        b, s = _arrays(g["points"])
        crit = g["critical_batch_size"]
        ax1.loglog(b, s, "o-", color=color, label=f"target {g['target']:g}")
        for key, ls in (("mccandlish", ":"), ("overhead_20pct", "-.")):
            v = crit.get(key)
            if v is not None and math.isfinite(v) and v > 0:
                ax1.axvline(v, color=color, ls=ls, lw=1, label=f"  {key} {v:.3g}")
        ok = np.flatnonzero(np.isfinite(s))
        if ok.size:
            ax2.loglog(b, s / s[ok[0]], "o-", color=color, label=f"target {g['target']:g}")
    b_all = np.array(sorted({p["batch_size"] for g in _groups(summary) for p in g["points"]}),
                     dtype=float)
    if b_all.size:
        ax2.loglog(b_all, b_all[0] / b_all, "k--", lw=0.8, label="perfect scaling")
    _style(ax1, "batch size B", "steps to result", f"{title}: steps per target")
    _style(ax2, "batch size B", "S(B) / S(smallest B)", "same curves, normalised")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _trial_panel(ax, rows: list[dict], key: str, momentum: bool, norm) -> None:
    """One batch size's trials: coloured by steps / best steps where the target was reached,
    otherwise marked: stopped early (beaten), budget ended (unreached), diverged."""
    steps = np.array([np.nan if r["crossings"].get(key) is None else r["crossings"][key]
                      for r in rows], dtype=float)
    lr = np.array([r["lr"] for r in rows])
    y = (np.array([1 - r["momentum"] for r in rows]) if momentum
         else np.where(np.isfinite(steps), steps, [r["steps_run"] or 1 for r in rows]))
    reached = np.isfinite(steps)
    diverged = np.array([bool(r["diverged"]) and not ok for r, ok in zip(rows, reached)])
    beaten = np.array([bool(r["beaten"]) and not ok for r, ok in zip(rows, reached)])
    unreached = ~(reached | diverged | beaten)
    if reached.any():
        best = np.nanmin(steps)
        ax.scatter(lr[reached], y[reached], c=steps[reached] / best, cmap="viridis_r",
                   norm=norm, s=28, edgecolors="k", linewidths=0.4, zorder=3)
        j = np.nanargmin(steps)
        ax.plot(lr[j], y[j], "*", ms=15, mfc="none", mec="r", zorder=4)
    ax.scatter(lr[beaten], y[beaten], marker="o", facecolors="none", edgecolors="gray", s=28)
    ax.scatter(lr[unreached], y[unreached], marker="x", color="gray", s=28)
    ax.scatter(lr[diverged], y[diverged], marker="v", color="tab:red", s=28)
    ax.set_xscale("log")
    ax.set_yscale("log")


def sensitivity(trials: list[dict], summary: dict, path, title: str = "") -> None:
    """The feasible region (Shallue et al. section 5): per batch size every trial in
    (lr, 1 - beta) (SGD: lr against steps, a trial not reaching the target at the step its
    round ended), coloured by its steps to the trained (smallest) target over the best steps
    at that batch size; red star: the best trial; hollow grey: stopped early because another
    trial had already reached the target (beaten, not unreached); grey x: the budget ended
    first; red triangle: diverged.  Last panel: the best lr (and 1 - beta) against batch size
    and the fraction of trials that reached the target before their round stopped (with the
    default early stop about one per round; with `complete_trials` the feasible fraction)."""
    key = repr(float(summary["target"]))
    momentum = any(r["momentum"] is not None for r in trials)
    sizes = sorted({r["batch_size"] for r in trials})
    ncols = min(4, len(sizes) + 1)
    nrows = math.ceil((len(sizes) + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.3 * nrows + 0.8),
                             squeeze=False, layout="constrained")
    norm = LogNorm(1, 10, clip=True)
    best_lr, best_beta, frac = [], [], []
    for ax, b in zip(axes.flat, sizes):
        rows = [r for r in trials if r["batch_size"] == b]
        _trial_panel(ax, rows, key, momentum, norm)
        hits = [r for r in rows if r["crossings"].get(key) is not None]
        best = min(hits, key=lambda r: (r["crossings"][key], r["round"], r["trial"]),
                   default=None)
        best_lr.append(best["lr"] if best else np.nan)
        best_beta.append(1 - best["momentum"] if best and momentum else np.nan)
        frac.append(len(hits) / len(rows))
        n_beaten = sum(bool(r["beaten"]) for r in rows)
        n_div = sum(bool(r["diverged"]) for r in rows)
        ax.set_title(f"B = {b}: {len(hits)}/{len(rows)} reached\n"
                     f"{n_beaten} stopped early, {n_div} diverged", fontsize=8)
        ax.set_xlabel("learning rate", fontsize=8)
        ax.set_ylabel("1 - beta" if momentum else "steps", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes.flat[len(sizes)]
    _best_panel(ax, np.array(sizes, dtype=float), best_lr, best_beta, frac, momentum)
    for extra in axes.flat[len(sizes) + 1:]:
        extra.axis("off")
    sm = plt.cm.ScalarMappable(norm=norm, cmap="viridis_r")
    fig.colorbar(sm, ax=axes.ravel().tolist(), shrink=0.6,
                 label="steps / best steps at B (clipped at 10)")
    fig.suptitle(f"{title}: trials for target {summary['target']:g}", fontsize=11)
    fig.legend(handles=_marker_legend(norm), loc="outside lower center", ncols=5, fontsize=8)
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _marker_legend(norm) -> list:
    """Proxy artists naming the trial markers of `sensitivity`."""
    from matplotlib.lines import Line2D

    color = plt.cm.viridis_r(norm(1.5))
    return [Line2D([], [], ls="", marker="o", mfc=color, mec="k", label="reached"),
            Line2D([], [], ls="", marker="*", ms=12, mfc="none", mec="r", label="best"),
            Line2D([], [], ls="", marker="o", mfc="none", mec="gray",
                   label="stopped early (beaten)"),
            Line2D([], [], ls="", marker="x", color="gray", label="budget ended (unreached)"),
            Line2D([], [], ls="", marker="v", color="tab:red", label="diverged")]


def _best_panel(ax, b, best_lr, best_beta, frac, momentum: bool) -> None:
    """The best trial's lr (and 1 - beta) against B, and the fraction reaching the target."""
    ax.loglog(b, best_lr, "o-", color="tab:blue", label="best lr")
    if momentum:
        ax.loglog(b, best_beta, "s--", color="tab:orange", label="best 1 - beta")
    ax.set_xlabel("batch size B", fontsize=8)
    ax.set_title("best trial and fraction reaching", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    tw = ax.twinx()
    tw.plot(b, frac, "^:", color="tab:green")
    tw.set_ylim(0, 1.05)
    tw.set_ylabel("fraction reaching before the round stopped", fontsize=8, color="tab:green")
    tw.tick_params(labelsize=7)


def summary_figures(summary: dict, out) -> list[str]:
    """The figures the sweep writes beside steps_vs_batch.png: steps_and_examples.png and,
    with several targets, steps_by_target.png; returns their file names."""
    from pathlib import Path

    out = Path(out)
    title = f"{summary['workload']}, {summary['optimizer']}"
    steps_and_examples(summary, out / "steps_and_examples.png", title)
    names = ["steps_and_examples.png"]
    if len(_groups(summary)) > 1:
        steps_by_target(summary, out / "steps_by_target.png", title)
        names.append("steps_by_target.png")
    return names


def sweep_figures(record: dict, out) -> list[str]:
    """Every figure of a sweep directory's record (`empirical.targets.sweep_figure_data`): those of
    `summary_figures` and, when its trials are known, sensitivity.png; returns the names."""
    from pathlib import Path

    summary = record["summary"]
    names = summary_figures(summary, out)
    if record["trials"]:
        title = f"{summary['workload']}, {summary['optimizer']}"
        sensitivity(record["trials"], summary, Path(out) / "sensitivity.png", title)
        names.append("sensitivity.png")
    return names
