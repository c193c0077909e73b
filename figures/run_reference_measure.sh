#!/usr/bin/env bash
# Reference measurements for issue 4: every workload at initialisation and where its reference
# run first reaches the target, Hessian top-20 + SLQ bulk + per-example noise.  Outputs under
# figures/measure/<workload>/ (the checkpoints/ folders are not committed).
#   WORKLOADS="mlp-digits" figures/run_reference_measure.sh      # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-linreg logreg-digits mlp-digits cnn-digits charlm}"
declare -A EXTRA=([charlm]="--examples 256")
for w in $WORKLOADS; do
  # shellcheck disable=SC2086
  nqm measure --workload "$w" --at-step 0 --at-target --top-k 20 --quiet ${EXTRA[$w]:-} \
    --out "figures/measure/$w"
done
