#!/usr/bin/env bash
# Reference measurements: every workload at initialisation, at a few steps of its
# reference run (the cheap workloads) and where that run first reaches the target; Hessian
# top-20 + SLQ bulk + per-example noise (+ the two-batch B_simple where cheap).  Outputs under
# figures/measure/<workload>/ (checkpoints/ and points/ are not committed).  Resumable.
#   WORKLOADS="mlp-digits" figures/run_reference_measure.sh      # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-linreg logreg-digits mlp-digits cnn-digits charlm}"
declare -A STEPS=([linreg]=0,20,60 [logreg-digits]=0,50,150 [mlp-digits]=0,20,60
                  [cnn-digits]=0 [charlm]=0)
declare -A EXTRA=([linreg]="--two-batch 8,256" [logreg-digits]="--two-batch 8,256"
                  [mlp-digits]="--two-batch 8,256" [cnn-digits]="" [charlm]="--examples 256")
for w in $WORKLOADS; do
  # shellcheck disable=SC2086
  nqm measure --workload "$w" --at-step "${STEPS[$w]}" --at-target --top-k 20 --quiet \
    ${EXTRA[$w]} --out "figures/measure/$w"
done
