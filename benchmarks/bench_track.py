"""What the noise-scale tracker costs in a training loop: a digits workload (default
mlp-digits), Adam, batch 64, the same
batches, a plain step (loss.backward(); opt.step()) against `NoiseScaleTracker.backward`
(two backward passes on b_small and the rest, one update, no log) and against `update` with a
separately computed small-batch gradient (an extra forward and backward on b_small examples).
Median seconds per step over alternating blocks, one torch thread.

    python benchmarks/bench_track.py [--workload cnn-digits] [--steps 300] [--b-small 8] [--log]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from empirical.track import NoiseScaleTracker  # noqa: E402
from empirical.workloads import digits_workload  # noqa: E402


def _loop(workload: str, kind: str, steps: int, b_small: int, log) -> float:
    """Seconds per step of `steps` steps of one variant."""
    w = digits_workload(workload)
    model = w.make_model(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    tracker = NoiseScaleTracker(model, log=log)
    params = list(model.parameters())
    t0 = time.perf_counter()
    for step in range(steps):
        x, y = w.batch(64, gen)
        opt.zero_grad()
        if kind == "plain":
            w.loss(model(x), y).backward()
        elif kind == "backward":
            tracker.backward(step, w.loss, x, y, b_small=b_small)
        else:
            small = torch.autograd.grad(w.loss(model(x[:b_small]), y[:b_small]), params)
            w.loss(model(x), y).backward()
            tracker.update(step, small, [p.grad for p in params], b_small, 64)
        opt.step()
    tracker.close()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    """Print the median time per step of each variant and the ratios to the plain loop."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="mlp-digits",
                    choices=["logreg-digits", "mlp-digits", "cnn-digits"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--b-small", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--log", action="store_true", help="also write the JSON Lines log")
    args = ap.parse_args()
    torch.set_num_threads(1)
    times = {"plain": [], "backward": [], "update": []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            for kind in times:
                log = Path(d) / f"{kind}{r}.jsonl" if args.log and kind != "plain" else None
                times[kind].append(_loop(args.workload, kind, args.steps, args.b_small, log))
    base = statistics.median(times["plain"])
    for kind, ts in times.items():
        m = statistics.median(ts)
        print(f"{kind:<9} {m * 1e3:7.3f} ms/step   {m / base:5.2f}x plain")


if __name__ == "__main__":
    main()
