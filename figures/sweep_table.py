"""Print a Markdown table of the reference sweeps under figures/sweeps/ (summary.json files):
the Sobol trials per batch size (before any widening), steps to result at every batch size
('-' = not reached, '*' = search range widened) and both critical batch sizes; the speed-up
from each 4x larger batch size with its regime; and draw figures/sweeps/<workload>.png
comparing the optimizers."""

import json
from pathlib import Path


def _fmt(x):
    return "-" if x is None else f"{x:.3g}"


def _speedup(a, b):
    if a is None or b is None:
        return ""
    r = a / b
    return f"{r:.2f} " + ("P" if r >= 3.2 else "M" if r < 1.25 else "D")


def main(figure_dir: Path | None = None):
    """Print the reference sweeps' tables (markdown) and draw one figure per workload into
    `figure_dir` (default: figures/sweeps/)."""
    figure_dir = Path(figure_dir or Path(__file__).parent / "sweeps")
    summaries = [json.loads(f.read_text())
                 for f in sorted(Path(__file__).parent.glob("sweeps/*/summary.json"))]
    sizes = sorted({p["batch_size"] for s in summaries for p in s["points"]})
    print("| workload | optimizer | target | trials/B | " + " | ".join(f"B={b}" for b in sizes)
          + " | B_crit mccandlish | overhead_20pct |")
    print("|---|---|---:|---:|" + "---:|" * (len(sizes) + 2))
    for s in summaries:
        by_b = {p["batch_size"]: p for p in s["points"]}
        cells = []
        for b in sizes:
            p = by_b.get(b)
            cells.append("" if p is None else
                         (str(p["steps"]) if p["reached"] else "-") + ("*" if p["widened"] else ""))
        c = s["critical_batch_size"]
        print(f"| {s['workload']} | {s['optimizer']} | {s['target']:g} | {s['n_trials']} | "
              + " | ".join(cells)
              + f" | {_fmt(c['mccandlish'])} | {_fmt(c['overhead_20pct'])} |")
    print()
    print("Speed-up from each 4x larger batch size (steps(B) / steps(4B)) and its regime: "
          "P perfect scaling (>= 3.2, 80% of ideal), D diminishing returns, M maximal data "
          "parallelism (< 1.25)")
    print()
    print("| workload | optimizer | " + " | ".join(f"{a}→{b}" for a, b in zip(sizes, sizes[1:]))
          + " |")
    print("|---|---|" + "---:|" * (len(sizes) - 1))
    for s in summaries:
        steps = {p["batch_size"]: p["steps"] for p in s["points"] if p["reached"]}
        cells = [_speedup(steps.get(a), steps.get(b)) if b == 4 * a else ""
                 for a, b in zip(sizes, sizes[1:])]
        print(f"| {s['workload']} | {s['optimizer']} | " + " | ".join(cells) + " |")
    from figures.plots import compare_optimizers
    for workload in sorted({s["workload"] for s in summaries}):
        mine = {s["optimizer"]: s for s in summaries if s["workload"] == workload}
        target = next(iter(mine.values()))["target"]
        compare_optimizers(mine, figure_dir / f"{workload}.png",
                           title=f"{workload}: steps to target {target:g}, tuned per B")


if __name__ == "__main__":
    main()
