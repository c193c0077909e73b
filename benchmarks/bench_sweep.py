"""Benchmark: trial-steps per second of the population trainer against a plain
one-trial-at-a-time PyTorch loop (torch.optim, same model, same batches), in one run.

    python benchmarks/bench_sweep.py [--trials 16] [--steps 200] [--batch-sizes 1,4,16,64]

Both train `trials` heavy-ball momentum trials for `steps` steps on mlp-digits and cnn-digits
at each batch size with one evaluation at the end; the ratio is population / plain.
"""

import argparse
import time

import torch

from empirical.plain import train_one
from empirical.population import StopRule, train_population
from empirical.train_config import TrainConfig
from empirical.workloads import get


def plain(workload, lrs, steps, batch_size, seed=0):
    cfg = TrainConfig("momentum", lrs, 0.9)
    for i in range(len(lrs)):
        model = train_one(workload, cfg, batch_size, seed, i, steps)
        with torch.no_grad():
            workload.evaluate(model, {k: v[None] for k, v in model.named_parameters()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-sizes", default="1,4,16,64")
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.trials} trials x "
          f"{args.steps} steps")
    print(f"{'workload':<11} {'B':>5} {'population':>12} {'plain loop':>12} {'ratio':>7}"
          "   (trial-steps/s)")
    for name in ("mlp-digits", "cnn-digits"):
        w = get(name)
        w = type(w)(**{**w.__dict__, "budget": args.steps})
        lrs = torch.logspace(-3, 0, args.trials).tolist()
        for b in sizes:
            train_population(w, TrainConfig("momentum", lrs[:2], 0.9, budget=5), b)
            t0 = time.perf_counter()
            train_population(w, TrainConfig("momentum", lrs, 0.9), b,
                             stop=StopRule(eval_ratio=1e9, stop_when_done=False))
            t_pop = time.perf_counter() - t0
            t0 = time.perf_counter()
            plain(w, lrs, args.steps, b)
            t_plain = time.perf_counter() - t0
            n = args.trials * args.steps
            print(f"{name:<11} {b:>5} {n / t_pop:12.0f} {n / t_plain:12.0f} "
                  f"{t_plain / t_pop:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
