#!/usr/bin/env bash
# Does the curvature where a run meets the target depend on the run?  mlp-digits measured where
# an SGD reference run first reaches the measurement's target, the run taking the SGD sweep's
# best learning rate at B = 1, 16 and 1024 (figures/sweeps/mlp-digits-sgd/summary.json, to four
# digits) at that batch size; figures/measure-lr/mlp-digits-sgd-bB/.  The committed reference
# spectrum (figures/measure/mlp-digits) comes from the workload's default Adam run.  About a
# minute on 2 CPU cores; resumable.  Read with `python -m figures.stability_ratio --lr-runs`.
set -euo pipefail
cd "$(dirname "$0")/.."
for run in "1 0.08698" "16 0.4194" "1024 1.526"; do
  read -r b lr <<< "$run"
  nqm measure --workload mlp-digits --at-target --optimizer sgd --lr "$lr" \
    --train-batch-size "$b" --top-k 20 --device cpu --quiet \
    --out "figures/measure-lr/mlp-digits-sgd-b$b"
done
