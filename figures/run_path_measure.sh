#!/usr/bin/env bash
# Measurements for the path model (`nqm calibrate --path`, docs/validation.md item 8): every
# workload at initialisation, at two steps of its reference run and where that run first
# reaches the SWEEP's target; Hessian (figures/measure-path/W) and, for cnn-digits and charlm,
# the Gauss-Newton matrix (figures/measure-path-ggn/W).  The reference run and every other
# option are the workloads' defaults (as figures/measure-sweep-target).  Resumable.
#   WORKLOADS="linreg" figures/run_path_measure.sh
#   DEVICE=cuda WORKLOADS="cnn-digits charlm" figures/run_path_measure.sh   # 5-8 min per
#                                         # checkpoint on 2 CPU cores, under 20 s on an H100
# The committed cnn-digits and charlm results were measured with DEVICE=cuda on an NVIDIA H100
# (Python 3.12 there); charlm's text is Python's own source files, so they were measured with
# the Python 3.11 files that the sweeps trained on carried along (text_sha256 in their
# measure_config.json): under another Python version charlm is another data set.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOADS="${WORKLOADS:-linreg logreg-digits mlp-digits cnn-digits charlm}"
DEVICE="${DEVICE:-cpu}"
declare -A TARGET=([linreg]=0.005 [logreg-digits]=0.04 [mlp-digits]=0.025 [cnn-digits]=0.02
                   [charlm]=2.0)
declare -A STEPS=([linreg]=0,20,60 [logreg-digits]=0,50,150 [mlp-digits]=0,20,60
                  [cnn-digits]=0,20,60 [charlm]=0,100,300)
declare -A EXTRA=([charlm]="--examples 256")
for w in $WORKLOADS; do
  # shellcheck disable=SC2086
  nqm measure --workload "$w" --target "${TARGET[$w]}" --at-step "${STEPS[$w]}" --at-target \
    --top-k 20 --device "$DEVICE" --quiet ${EXTRA[$w]:-} --out "figures/measure-path/$w"
  if [[ "$w" == cnn-digits || "$w" == charlm ]]; then
    # shellcheck disable=SC2086
    nqm measure --workload "$w" --target "${TARGET[$w]}" --at-step "${STEPS[$w]}" --at-target \
      --top-k 20 --curvature ggn --device "$DEVICE" --quiet ${EXTRA[$w]:-} \
      --out "figures/measure-path-ggn/$w"
  fi
done
