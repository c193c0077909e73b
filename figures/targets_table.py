"""Print a Markdown table of the several-target sweeps under figures/shallue/ (summary.json
files): per workload, optimizer and target the steps to result at every batch size ('-' = not
reached, '*' = search range widened) and both critical batch sizes with their 95% bootstrap
intervals; a sweep run with `--complete-trials` is marked so."""

import json
from pathlib import Path


def _fmt(x):
    return "-" if x is None else f"{x:.3g}"


def _with_interval(value, ci):
    if value is None:
        return "-"
    if not ci or all(x is None for x in ci):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(ci[0])}, {'inf' if ci[1] is None else _fmt(ci[1])}]"


def main(root: Path | None = None):
    """Print the table of every summary.json with `by_target` under `root`."""
    root = Path(root or Path(__file__).parent / "shallue")
    summaries = []
    for f in sorted(root.glob("*/summary.json")):
        s = json.loads(f.read_text())
        config = f.with_name("sweep_config.json")
        complete = config.exists() and json.loads(config.read_text()).get("complete_trials")
        if "by_target" in s:
            summaries.append({**s, "optimizer": s["optimizer"] + (" (complete trials)"
                                                                  if complete else "")})
    sizes = sorted({p["batch_size"] for s in summaries for g in s["by_target"]
                    for p in g["points"]})
    print("| workload | optimizer | target | " + " | ".join(f"B={b}" for b in sizes)
          + " | B_crit mccandlish [95%] | overhead_20pct [95%] |")
    print("|---|---|---:|" + "---:|" * (len(sizes) + 2))
    for s in summaries:
        for g in s["by_target"]:
            by_b = {p["batch_size"]: p for p in g["points"]}
            cells = ["" if (p := by_b.get(b)) is None else
                     (str(p["steps"]) if p["reached"] else "-") + ("*" if p["widened"] else "")
                     for b in sizes]
            c, ci = g["critical_batch_size"], g.get("confidence_95") or {}
            crit = [_with_interval(c.get(k), ci.get(k)) for k in ("mccandlish", "overhead_20pct")]
            print(f"| {s['workload']} | {s['optimizer']} | {g['target']:g} | "
                  + " | ".join(cells + crit) + " |")


if __name__ == "__main__":
    main()
