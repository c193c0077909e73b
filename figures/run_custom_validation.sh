#!/usr/bin/env bash
# A data set the project never tuned on: a generated 4-class problem (scikit-learn's
# make_classification, 6000 x 40, 12 informative features, 2% flipped labels, seed 0;
# standardised; 5000 train / 1000 validation) and an MLP through `--workload custom`, target
# validation error 0.3.  Sweeps (SGD, momentum), the spectra where the reference run meets the
# target, then the same validation as the reference workloads.  Outputs under figures/custom/.
# Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=figures/custom
mkdir -p "$OUT"
python - <<'PY'
import numpy as np
from sklearn.datasets import make_classification

x, y = make_classification(n_samples=6000, n_features=40, n_informative=12, n_redundant=8,
                           n_classes=4, class_sep=0.8, flip_y=0.02, random_state=0)
x = (x - x.mean(0)) / x.std(0)
np.savez("figures/custom/classes4.npz", X_train=x[:5000], y_train=y[:5000], X_val=x[5000:],
         y_val=y[5000:])
PY
DATA="--workload custom --data $OUT/classes4.npz --model mlp --target 0.3"
for opt in sgd momentum; do
  nqm sweep $DATA --optimizer "$opt" --batch-sizes 1,4,16,64,256,1024 --trials 16 \
    --budget 20000 --quiet --out "$OUT/sweeps/custom-$opt"
done
nqm measure $DATA --at-step 0 --at-target --top-k 20 --quiet --out "$OUT/measure/custom"
# the path model's checkpoints (the steps the MLP of mlp-digits was measured at)
nqm measure $DATA --at-step 0,20,60 --at-target --top-k 20 --quiet --out "$OUT/measure-path/custom"
