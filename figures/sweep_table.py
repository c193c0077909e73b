"""Print a Markdown table of the reference sweeps under figures/sweeps/ (summary.json files):
the Sobol trials per batch size (before any widening), steps to result at every batch size
('-' = not reached, '*' = search range widened) and both critical batch sizes; and draw
figures/sweeps/<workload>.png comparing the optimizers."""

import json
from pathlib import Path


def _fmt(x):
    return "-" if x is None else f"{x:.3g}"


def main():
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
    from figures.plots import compare_optimizers
    for workload in sorted({s["workload"] for s in summaries}):
        mine = {s["optimizer"]: s for s in summaries if s["workload"] == workload}
        target = next(iter(mine.values()))["target"]
        compare_optimizers(mine, Path(__file__).parent / "sweeps" / f"{workload}.png",
                           title=f"{workload}: steps to target {target:g}, tuned per B")


if __name__ == "__main__":
    main()
