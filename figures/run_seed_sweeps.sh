#!/usr/bin/env bash
# The reference sweeps of the cheap workloads again with other seeds (Sobol points, initial
# weights and batches all follow the seed), to measure how much one sweep's steps move from
# seed to seed: the noise floor any model meets when judged against one sweep
# (`python -m figures.sweep_noise`).  Same options as figures/run_reference_sweeps.sh
# otherwise; outputs under figures/sweeps-seeds/s<seed>/<workload>-<optimizer>/ (the layout that
# `python -m figures.run_validation --sweeps` reads).  Resumable.
#   SEEDS="1 2" WORKLOADS="linreg" figures/run_seed_sweeps.sh
#   DEVICE=cuda WORKLOADS=cnn-digits SEEDS=1 OPTIMIZERS=sgd figures/run_seed_sweeps.sh
# cnn-digits needs a GPU (its trials cost ~10x more than mlp-digits' on 2 CPU cores); its seeds
# 1-3 were swept with DEVICE=cuda on an NVIDIA H100, one process per seed and optimizer.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-linreg logreg-digits mlp-digits}"
OPTIMIZERS="${OPTIMIZERS:-sgd momentum adam}"
SEEDS="${SEEDS:-1 2 3}"
DEVICE="${DEVICE:-cpu}"
declare -A TARGET=([linreg]=0.005 [logreg-digits]=0.04 [mlp-digits]=0.025 [cnn-digits]=0.02)
declare -A BUDGET=([linreg]=40000 [logreg-digits]=20000 [mlp-digits]=20000 [cnn-digits]=5000)
for s in $SEEDS; do
  for w in $WORKLOADS; do
    for o in $OPTIMIZERS; do
      nqm sweep --workload "$w" --optimizer "$o" --batch-sizes 1,4,16,64,256,1024 --trials 64 \
        --target "${TARGET[$w]}" --budget "${BUDGET[$w]}" --seed "$s" --device "$DEVICE" \
        --threads 1 --quiet --out "figures/sweeps-seeds/s$s/$w-$o"
    done
  done
done
