"""Print a Markdown table of the reference sweeps under figures/sweeps/ (summary.json files)."""

import json
from pathlib import Path


def main():
    rows = []
    for f in sorted(Path(__file__).parent.glob("sweeps/*/summary.json")):
        s = json.loads(f.read_text())
        pts = [p for p in s["points"] if p["reached"]]
        c = s["critical_batch_size"]
        fmt = (lambda x: "-" if x is None else f"{x:.3g}")  # noqa: E731
        rows.append(f"| {s['workload']} | {s['optimizer']} | {s['target']:g} | "
                    f"{pts[0]['batch_size']}: {pts[0]['steps']} | "
                    f"{pts[-1]['batch_size']}: {pts[-1]['steps']} | "
                    f"{fmt(c['mccandlish'])} | {fmt(c['overhead_20pct'])} |")
    print("| workload | optimizer | target | steps at smallest B | steps at largest B | "
          "B_crit mccandlish | overhead_20pct |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
