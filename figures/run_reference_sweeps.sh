#!/usr/bin/env bash
# Reference sweeps for the real-training half (issue 3): every workload x {sgd, momentum, adam},
# 16 Sobol trials per batch size, summaries and figures under figures/sweeps/.  Resumable: rerun
# to continue.  The raw records (figures/sweeps/*/records.jsonl) are not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-linreg logreg-digits mlp-digits cnn-digits}"
for w in $WORKLOADS; do
  for o in sgd momentum adam; do
    nqm sweep --workload "$w" --optimizer "$o" --batch-sizes 8:1024 --trials 16 --quiet \
      --out "figures/sweeps/$w-$o"
  done
done
