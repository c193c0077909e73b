"""Benchmark: the same sweep and measurement work on the CPU and on a CUDA device, in one run.

    python benchmarks/bench_device.py [--trials 64] [--steps 200] [--batch-sizes 16,256]

1. Sweep trials: the population trainer (`empirical.population.train_population`) trains
   `trials` heavy-ball trials for `steps` steps on every workload at each batch size, one
   evaluation at the end; prints trial-steps per second on each device and cuda / cpu.
2. Measurement: `nqm measure` at initialisation only (`empirical.api.measure`, a small
   configuration: top-5 Lanczos, 2 x 10 SLQ, 256 examples; no reference run) of mlp-digits and
   cnn-digits on each device; prints wall seconds and cpu / cuda.
The CPU uses the threads torch sees (`torch.get_num_threads()`); quote them and the machine.
"""

import argparse
import tempfile
import time

import torch

from empirical import api
from empirical.population import StopRule, train_population
from empirical.train_config import TrainConfig
from empirical.workloads import get

WORKLOADS = ("linreg", "logreg-digits", "mlp-digits", "cnn-digits", "charlm")


def trial_steps_per_s(name: str, device: str, trials: int, steps: int, batch_size: int) -> float:
    w = get(name, device=device)
    lrs = list(torch.logspace(-3, -1, trials).tolist())
    train_population(w, TrainConfig("momentum", lrs[:2], 0.9, budget=5), batch_size)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train_population(w, TrainConfig("momentum", lrs, 0.9, budget=steps), batch_size,
                     stop=StopRule(eval_ratio=1e9, stop_when_done=False))
    if device == "cuda":
        torch.cuda.synchronize()
    return trials * steps / (time.perf_counter() - t0)


def measure_seconds(name: str, device: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        api.measure(name, out, at_steps=(0,), top_k=5, slq_vectors=2, slq_steps=10,
                    hessian_examples=32, bootstrap=10, examples=256, device=device)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-sizes", default="16,256")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark compares the CPU with a GPU")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
          f"GPU {torch.cuda.get_device_name()}; {args.trials} trials x {args.steps} steps")
    print(f"{'workload':<14} {'B':>5} {'cpu':>12} {'cuda':>12} {'cuda/cpu':>9}"
          "   (trial-steps/s)")
    for name in WORKLOADS:
        for b in sizes:
            cpu = trial_steps_per_s(name, "cpu", args.trials, args.steps, b)
            gpu = trial_steps_per_s(name, "cuda", args.trials, args.steps, b)
            print(f"{name:<14} {b:>5} {cpu:>12.0f} {gpu:>12.0f} {gpu / cpu:>9.2f}", flush=True)
    print(f"\n{'measure':<14} {'cpu s':>8} {'cuda s':>8} {'cpu/cuda':>9}")
    for name in ("mlp-digits", "cnn-digits"):
        cpu, gpu = measure_seconds(name, "cpu"), measure_seconds(name, "cuda")
        print(f"{name:<14} {cpu:>8.1f} {gpu:>8.1f} {cpu / gpu:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
