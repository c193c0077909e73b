"""`nqm predict` on a busy machine: wall time with N CPU-bound background processes against the
same command with none, side by side in one run.

    python benchmarks/bench_load.py [--hogs 2] [--repeats 3] [-- PREDICT ARGS...]

Each measurement runs the command in a fresh process (numba cache warm: one unmeasured run
first) and reports the median of `--repeats`.  The background load is `--hogs` Python busy
loops started before and killed after the loaded runs.  Goal: loaded / idle <= 2.5 with two hogs
on two cores.  The machine's load average before each phase is printed: other users' work
counts too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HOG = "while True: pass"


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def median_wall(cmd: list[str], repeats: int) -> float:
    return statistics.median(wall(cmd) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hogs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("predict_args", nargs="*", help="extra arguments for nqm predict")
    args = ap.parse_args()
    cmd = [sys.executable, "-c", "from cli import main; main()", "predict", "--quiet",
           *args.predict_args]
    wall(cmd)   # warm the numba cache
    print(f"command: nqm predict --quiet {' '.join(args.predict_args)}")
    print(f"cores available: {len(os.sched_getaffinity(0))}, "
          f"load average before idle runs: {os.getloadavg()[0]:.2f}")
    idle = median_wall(cmd, args.repeats)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    try:
        time.sleep(5)   # let the load average see them
        print(f"load average with {args.hogs} busy loops: {os.getloadavg()[0]:.2f}")
        loaded = median_wall(cmd, args.repeats)
    finally:
        for p in hogs:
            p.kill()
    print(f"idle   {idle:7.2f} s  (median of {args.repeats})")
    print(f"loaded {loaded:7.2f} s  ({args.hogs} busy loops)")
    print(f"ratio  {loaded / idle:7.2f}x  (goal <= 2.5x)")


if __name__ == "__main__":
    main()
