#!/usr/bin/env bash
# Fixed-budget sweeps (Shallue et al. 2019, sections 3.2 and 4.8) on the digits workloads:
# the best validation error per batch size under a fixed epoch budget (E = 10 and 30 epochs of
# N = 1437 examples) and under a fixed step budget of 3000 steps (solution quality), 16 Sobol
# trials per batch size, SGD and Adam, one torch thread.  Outputs go to
# figures/shallue/<workload>-<optimizer>-epochs<E>/ and .../-quality/, then
# `python -m figures.budget_report` draws each workload/optimizer beside its steps-to-result
# sweep in figures/sweeps/.  Resumable: rerun to continue.  records.jsonl is not committed.
#   WORKLOADS=mlp-digits OPTIMIZERS=adam figures/run_budgets.sh      # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-mlp-digits logreg-digits}"
OPTIMIZERS="${OPTIMIZERS:-sgd adam}"
EPOCHS="${EPOCHS:-10 30}"
SIZES=4,16,64,256,1024
nqm() { python -c "from cli import main; main()" "$@"; }
for w in $WORKLOADS; do
  for o in $OPTIMIZERS; do
    common=(--workload "$w" --optimizer "$o" --batch-sizes "$SIZES" --trials 16 --threads 1
            --quiet)
    for e in $EPOCHS; do
      nqm sweep "${common[@]}" --epoch-budget "$e" --out "figures/shallue/$w-$o-epochs$e"
    done
    nqm sweep "${common[@]}" --quality --budget 3000 --out "figures/shallue/$w-$o-quality"
  done
done
[ -n "${NO_REPORT:-}" ] || python -m figures.budget_report
