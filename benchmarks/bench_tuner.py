"""The tuning time that `nqm predict` prints, for the README's commands, this tree against
another checkout of the project, side by side in one run.

    python benchmarks/bench_tuner.py --old /path/to/other/checkout [--repeats 3] [--only NAME]

Each command runs in a fresh process in each tree (`python -c "from cli import main; main()"`
with that tree as working directory, so its own modules are imported), the two trees
alternating; one unmeasured run per tree first warms the numba cache.  Reported: the median
of `--repeats` printed tuning times per tree, their ratio, the load average before each
command, and the largest relative difference of the printed step counts (new / old - 1, per
batch size; positive = the new tree needs more steps).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

COMMANDS = {
    "sgd": [],
    "momentum": ["--optimizer", "momentum"],
    "nesterov": ["--optimizer", "nesterov"],
    "ema": ["--ema"],
    "momentum-ema": ["--optimizer", "momentum", "--ema"],
    "cosine-100bins": ["--schedule", "cosine", "--spectrum", "power:d=10000,alpha=1,bins=100",
                       "--batch-sizes", "256:1048576"],
    "exact-1e6": ["--spectrum", "power:d=1000000,alpha=1", "--batch-sizes", "1,64,4096,1048576"],
}
ROW = re.compile(r"^\s+(\d+)\s+(\d+|-)\s")
TIME = re.compile(r"^\((\d+\.\d+) s\)$", re.M)


def run(tree: Path, args: list[str]) -> tuple[float, dict[int, int]]:
    """(printed tuning seconds, {batch size: steps}) of one `nqm predict` in `tree`."""
    out = subprocess.run([sys.executable, "-c", "from cli import main; main()", "predict",
                          "--quiet", *args], cwd=tree, check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tree)}).stdout
    steps = {int(m[1]): int(m[2]) for m in map(ROW.match, out.splitlines())
             if m and m[2] != "-"}
    return float(TIME.search(out)[1]), steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="the other checkout")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", action="append", choices=sorted(COMMANDS))
    args = ap.parse_args()
    new = Path(__file__).resolve().parents[1]
    print(f"{'command':16s} {'old s':>8s} {'new s':>8s} {'speed-up':>9s}  "
          f"{'steps new/old - 1 (worst)':>26s}  load")
    for name in args.only or COMMANDS:
        cmd = COMMANDS[name]
        run(args.old, cmd), run(new, cmd)                  # warm the numba caches
        times = {"old": [], "new": []}
        steps = {}
        load = os.getloadavg()[0]
        for _ in range(args.repeats):
            for label, tree in (("old", args.old), ("new", new)):
                t, steps[label] = run(tree, cmd)
                times[label].append(t)
        old, new_t = statistics.median(times["old"]), statistics.median(times["new"])
        common = sorted(set(steps["old"]) & set(steps["new"]))
        worst = max((steps["new"][b] / steps["old"][b] - 1 for b in common), key=abs,
                    default=float("nan"))
        print(f"{name:16s} {old:8.2f} {new_t:8.2f} {old / new_t:8.1f}x  {worst:+26.2e}  "
              f"{load:.2f}", flush=True)


if __name__ == "__main__":
    main()
