"""Figures of theory against experiment (records of `nqm.calibrate.calibrate`); each saved as PNG
and PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from figures.save import save_figure  # noqa: E402

CRIT_STYLE = {"measured": ("black", "-"), "predicted": ("tab:blue", ":"),
              "null_model": ("tab:orange", "-.")}


def _save(fig, path) -> list[Path]:
    """Save `path` as .png and .pdf beside it; returns both paths."""
    path = Path(path)
    fig.tight_layout()
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        save_figure(fig, p, dpi=120)
    plt.close(fig)
    return out


def _xy(rows, key):
    pts = [(r["batch_size"], r[key]) for r in rows if r.get(key) is not None]
    return (np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float))


def steps_panel(ax, record: dict, title: str, nqm_label: str = "NQM (calibrated)") -> None:
    """Measured steps (with trial counts), the calibrated NQM curve, the null hyperbola (dashed),
    the fit points circled and the mccandlish critical batch sizes as vertical lines."""
    rows = record["points"]
    b, s = _xy(rows, "measured")
    ax.loglog(b, s, "o", color="black", label="measured: best of n trials (n beside)")
    for r in rows:
        if r["measured"] is not None and r.get("trials"):
            ax.annotate(f"{r['trials']}", (r["batch_size"], r["measured"]), fontsize=6,
                        textcoords="offset points", xytext=(4, 4), color="0.4")
    cb, cs = _xy(record["curve"], "steps")
    ax.loglog(cb, cs, "-", color="tab:blue", label=nqm_label)
    fit_b = [r["batch_size"] for r in rows if r["used_in_fit"]]
    fit_s = [r["measured"] for r in rows if r["used_in_fit"]]
    if fit_b:
        ax.loglog(fit_b, fit_s, "o", ms=12, mfc="none", color="tab:red", label="fit points")
    nf = record.get("null_model_fit")
    if nf is not None:
        grid = np.geomspace(cb.min(), cb.max(), 200)
        ax.loglog(grid, np.maximum(nf["s_min"] + nf["e_min"] / grid, 1.0), "--",
                  color="tab:orange", label="null: S_min + E_min/B")
    for who, (color, ls) in CRIT_STYLE.items():
        crit = (record["critical_batch_size"].get(who) or {}).get("mccandlish")
        if crit is not None and np.isfinite(crit):
            ax.axvline(crit, color=color, ls=ls, lw=1,
                       label=f"B_crit {who.replace('_', ' ')} = {crit:.3g}")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("steps to target")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def lr_panel(ax, record: dict, title: str) -> None:
    """Effective learning rate lr/(1 - beta) of the measured best trial and of the tuned NQM
    (lr itself where the NQM is the mean-field Adam, whose momentum is an average)."""
    adam = record.get("nqm_optimizer", {}).get("kind") == "adam"
    b, lr = _xy(record["points"], "lr_effective_measured")
    ax.loglog(b, lr, "o", color="black", label="measured best trial")
    tuned = [c for c in record["curve"] if c["lr"] is not None]     # None: not reached
    cb = [c["batch_size"] for c in tuned]
    clr = [c["lr"] / (1.0 - (0.0 if adam else (c["momentum"] or 0.0))) for c in tuned]
    ax.loglog(cb, clr, "-", color="tab:blue", label="NQM tuned")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("lr (Adam)" if adam else "lr / (1 - beta)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def calibration_figure(record: dict, path, title: str,
                       nqm_label: str = "NQM (calibrated)") -> list[Path]:
    """Steps and learning rate against batch size, side by side."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    steps_panel(a, record, f"{title}: steps to target", nqm_label)
    lr_panel(b, record, f"{title}: tuned learning rate")
    return _save(fig, path)


def examples_figure(record: dict, path, title: str,
                    nqm_label: str = "NQM (calibrated)") -> list[Path]:
    """Shallue et al.'s Figure 1 view: examples B x S against steps S, measured and NQM, with
    perfect scaling (examples constant) as the reference."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    b, s = _xy(record["points"], "measured")
    ax.loglog(s, b * s, "o-", color="black", label="measured")
    cb, cs = _xy(record["curve"], "steps")
    ax.loglog(cs, cb * cs, "-", color="tab:blue", label=nqm_label)
    if s.size:
        ax.axhline(b[0] * s[0], color="0.5", ls=":", label="perfect scaling")
    ax.set_xlabel("steps to target S")
    ax.set_ylabel("examples B x S")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def bcrit_scatter(rows: list[dict], path) -> list[Path]:
    """Predicted against measured mccandlish B_crit over all workloads and optimizers (NQM,
    null model, one-run NQM and, for rows with 'bcrit_transfer', the NQM transferred without
    refit), with the 1:1 line and a 2x band."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for key, marker, color, label in (("bcrit_nqm", "o", "tab:blue", "NQM (fit on ends)"),
                                      ("bcrit_null", "s", "tab:orange", "null hyperbola"),
                                      ("one_run_bcrit", "^", "tab:green",
                                       "NQM, one run (smallest B)"),
                                      ("bcrit_transfer", "D", "tab:purple",
                                       "NQM transferred from another optimizer")):
        pts = [(r["bcrit_measured"], r[key]) for r in rows
               if r["bcrit_measured"] and r.get(key)]
        if pts:
            m, p = np.array(pts).T
            ax.loglog(m, p, marker, color=color, mfc="none", label=label)
    vals = [v for r in rows for v in (r["bcrit_measured"], r.get("bcrit_nqm"),
                                      r.get("bcrit_null"), r.get("one_run_bcrit"),
                                      r.get("bcrit_transfer")) if v]
    lo, hi = min(vals) / 3, max(vals) * 3
    grid = np.geomspace(lo, hi, 10)
    ax.loglog(grid, grid, "k-", lw=1, label="1:1")
    ax.fill_between(grid, grid / 2, grid * 2, color="0.85", label="within 2x")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("measured B_crit (mccandlish)")
    ax.set_ylabel("predicted B_crit")
    ax.set_title("critical batch size: predicted vs measured", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
