"""Cold start: `nqm predict` with an empty numba cache, this tree against another checkout,
side by side in one run.

    python benchmarks/bench_cold.py --old /path/to/other/checkout [--repeats 3] [-- ARGS...]

Each run is a fresh process (`python -c "from cli import main; main()" predict --quiet ARGS`
with that tree as working directory) whose NUMBA_CACHE_DIR is a new empty directory, so every
kernel it calls is compiled; the two trees alternate.  Reported per tree: the median of
`--repeats` printed tuning times (what the README's cold-start figure quotes) and of the whole
command's wall time, and the load average before each run.  Goal: printed time <= 8 s for the
default command on the 2 idle cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME = re.compile(r"^\((\d+\.\d+) s\)$", re.M)


def cold_run(tree: Path, args: list[str]) -> tuple[float, float]:
    """(printed tuning seconds, wall seconds) of one `nqm predict` with an empty numba cache."""
    cache = tempfile.mkdtemp(prefix="nqm-cold-")
    try:
        env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": cache}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", "from cli import main; main()", "predict",
                              "--quiet", *args], cwd=tree, check=True, capture_output=True,
                             text=True, env=env).stdout
        return float(TIME.search(out)[1]), time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="the other checkout")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("predict_args", nargs="*", help="extra arguments for nqm predict")
    args = ap.parse_args()
    trees = {"old": args.old.resolve(), "new": Path(__file__).resolve().parents[1]}
    printed = {label: [] for label in trees}
    walls = {label: [] for label in trees}
    for i in range(args.repeats):
        for label, tree in trees.items():
            load = os.getloadavg()[0]
            t, w = cold_run(tree, args.predict_args)
            printed[label].append(t)
            walls[label].append(w)
            print(f"run {i + 1} {label}: printed {t:6.2f} s, wall {w:6.2f} s, load {load:.2f}",
                  flush=True)
    for label in trees:
        print(f"{label}: median printed {statistics.median(printed[label]):.2f} s, "
              f"median wall {statistics.median(walls[label]):.2f} s")
    print(f"speed-up (printed): "
          f"{statistics.median(printed['old']) / statistics.median(printed['new']):.2f}x")


if __name__ == "__main__":
    main()
