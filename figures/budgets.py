"""Figures of fixed-budget sweeps (`empirical.budgets`): the best metric per batch size under a
fixed epoch or step budget, and beside it the steps-to-result curve of the same workload and
optimizer, which shows the confound Shallue et al. 2019 (arXiv 1811.03600, section 3.2) warn
about: under a fixed epoch budget a batch size B gets ceil(E N / B) steps, so large batches
look worse because they take fewer steps, not because their steps are worse."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from figures.save import save_figure  # noqa: E402


def budget_label(summary: dict) -> str:
    """'10 epochs' or '3000 steps'."""
    if summary["mode"] == "epochs":
        return f"{summary['epoch_budget']:g} epochs"
    return f"{summary['step_budget']} steps"


def _best_metric_axes(ax, summaries: list[dict]) -> None:
    """Best metric against batch size with 95% intervals, one line per summary."""
    for s in summaries:
        pts = [p for p in s["best_metric"] if p["best_metric"] is not None]
        b = np.array([p["batch_size"] for p in pts], dtype=float)
        m = np.array([p["best_metric"] for p in pts])
        lo = np.array([p["interval"][0] for p in pts])
        hi = np.array([p["interval"][1] for p in pts])
        ax.errorbar(b, m, yerr=[m - lo, hi - m], fmt="o-", capsize=3,
                    label=f"{budget_label(s)} (95% bootstrap over trials)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"best {summaries[0]['metric']} within the budget")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def best_metric_vs_batch(summary: dict, path, title: str | None = None) -> None:
    """One fixed-budget sweep: best metric against batch size, its verdict on large batches
    in the title."""
    fig, ax = plt.subplots(figsize=(7, 5))
    _best_metric_axes(ax, [summary])
    ax.set_title((title or f"{summary['workload']}, {summary['optimizer']}: best metric "
                  f"within {budget_label(summary)}") + "\n" + summary["largest_batch_size"],
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def budget_comparison(budgets: list[dict], steps_summary: dict | None, path,
                      title: str) -> None:
    """Left: the best metric against batch size under each fixed budget in `budgets` (each
    panel line states its budget; the caption under it the verdict on the largest batch);
    right: the steps to result of the steps-to-result sweep `steps_summary` (None: left out)
    with the steps each epoch budget gives, ceil(E N / B)."""
    fig, axes = plt.subplots(1, 2 if steps_summary else 1, figsize=(13 if steps_summary else 7,
                                                                     5.5), squeeze=False)
    _best_metric_axes(axes[0, 0], budgets)
    axes[0, 0].set_title("\n".join(f"{budget_label(s)}: {s['largest_batch_size']}"
                                   for s in budgets), fontsize=8)
    if steps_summary:
        ax = axes[0, 1]
        pts = [p for p in steps_summary["points"] if p["steps"] is not None]
        ax.loglog([p["batch_size"] for p in pts], [p["steps"] for p in pts], "o-", color="k",
                  label=f"steps to {steps_summary['target']:g} (tuned per B)")
        for s in budgets:
            if s["mode"] == "epochs":
                ax.loglog([p["batch_size"] for p in s["best_metric"]],
                          [p["steps"] for p in s["best_metric"]], "--",
                          label=f"steps in {budget_label(s)}")
        ax.set_xlabel("batch size B")
        ax.set_ylabel("steps")
        ax.set_title("fixed-step view: steps to result", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
