"""The fixed-budget figures and table: for every workload/optimizer with fixed-budget sweeps
under figures/shallue/ (`figures/run_budgets.sh`), the best metric per batch size under each
budget beside the steps-to-result sweep of figures/sweeps/<workload>-<optimizer>/ (written to
figures/shallue/<workload>-<optimizer>.png), and a Markdown table of the numbers.

    python -m figures.budget_report [--root figures/shallue] [--sweeps figures/sweeps]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from figures.budgets import budget_comparison, budget_label
from figures.text import fmt

ROOT = Path(__file__).resolve().parent
NAME = re.compile(r"^(?P<run>.+)-(?P<kind>epochs[0-9.]+|quality)$")


def _order(summary: dict) -> tuple:
    """Epoch budgets by E, then the step budget."""
    return (summary["mode"] != "epochs", summary["epoch_budget"] or 0)


def load_runs(root: Path) -> dict[str, list[dict]]:
    """'<workload>-<optimizer>' -> its fixed-budget summaries (epoch budgets by E, then
    quality)."""
    runs: dict[str, list[dict]] = {}
    for d in sorted(root.iterdir()):
        m = NAME.match(d.name)
        if d.is_dir() and m and (d / "summary.json").exists():
            runs.setdefault(m["run"], []).append(json.loads((d / "summary.json").read_text()))
    return {k: sorted(v, key=_order) for k, v in runs.items()}


def table_lines(runs: dict[str, list[dict]]) -> list[str]:
    """One Markdown row per workload, optimizer, budget and batch size."""
    out = ["| workload | optimizer | budget | B | steps | best error [95% interval] | lr |",
           "|---|---|---|---:|---:|---|---:|"]
    for summaries in runs.values():
        for s in summaries:
            for p in s["best_metric"]:
                lo, hi = p["interval"] or (None, None)
                out.append(f"| {s['workload']} | {s['optimizer']} | {budget_label(s)} | "
                           f"{p['batch_size']} | {p['steps']} | {fmt(p['best_metric'])} "
                           f"[{fmt(lo)}, {fmt(hi)}] | {fmt(p['lr'], '.3g')} |")
    return out


def main(root: Path = ROOT / "shallue", sweeps: Path = ROOT / "sweeps",
         out: Path | None = None) -> None:
    """Draw every workload/optimizer's figure into `out` (default `root`), print the table
    and each budget's verdict on the largest batch size."""
    out = out or root
    runs = load_runs(root)
    for run, summaries in runs.items():
        steps_path = sweeps / run / "summary.json"
        steps = json.loads(steps_path.read_text()) if steps_path.exists() else None
        budget_comparison(summaries, steps, out / f"{run}.png",
                          title=f"{run}: best validation metric under fixed budgets "
                                f"({summaries[0]['n_trials']} trials per B, tuned per B)")
    print("\n".join(table_lines(runs)))
    for run, summaries in runs.items():
        for s in summaries:
            print(f"{run}, {budget_label(s)}: {s['largest_batch_size']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT / "shallue")
    parser.add_argument("--sweeps", type=Path, default=ROOT / "sweeps")
    args = parser.parse_args()
    main(args.root, args.sweeps)
