#!/usr/bin/env bash
# Several targets from one sweep (Shallue et al. 2019, section 4, "different goals"):
# mlp-digits and logreg-digits x {sgd, adam}, B = 1, 4, ..., 1024, 16 Sobol trials per batch
# size, three targets each (the smallest is trained for; the others are read from the same
# trials).  Writes figures/shallue/<workload>-<optimizer>/ (summary.json/csv,
# summary_by_target.csv, trials.csv and the figures; records.jsonl is not committed, and
# `nqm figures --sweep DIR` redraws the figures from trials.csv).  Resumable: rerun to continue.
#   WORKLOADS="mlp-digits" OPTIMIZERS="adam" figures/run_target_sweeps.sh    # a subset
#   COMPLETE=1 figures/run_target_sweeps.sh     # also mlp-digits Adam with --complete-trials
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-mlp-digits logreg-digits}"
OPTIMIZERS="${OPTIMIZERS:-sgd adam}"
declare -A TARGETS=([mlp-digits]=0.035,0.05,0.08 [logreg-digits]=0.05,0.07,0.1)
for w in $WORKLOADS; do
  for o in $OPTIMIZERS; do
    python -c "from cli import main; main()" sweep --workload "$w" --optimizer "$o" \
      --batch-sizes 1,4,16,64,256,1024 --trials 16 --targets "${TARGETS[$w]}" --budget 10000 \
      --threads 1 --quiet --out "figures/shallue/$w-$o"
    python -c "from cli import main; main()" figures --sweep "figures/shallue/$w-$o" \
      --out "figures/shallue/$w-$o"
  done
done
# the same mlp-digits Adam sweep with every trial trained to the target or the budget (the
# whole feasible region; its per-target steps equal the early-stopped sweep's): ~13 minutes
if [[ "${COMPLETE:-0}" == 1 ]]; then
  python -c "from cli import main; main()" sweep --workload mlp-digits --optimizer adam \
    --batch-sizes 1,4,16,64,256,1024 --trials 16 --targets 0.035,0.05,0.08 --budget 10000 \
    --complete-trials --threads 1 --quiet --out figures/shallue/mlp-digits-adam-complete
  python -c "from cli import main; main()" figures --sweep figures/shallue/mlp-digits-adam-complete \
    --out figures/shallue/mlp-digits-adam-complete
fi
