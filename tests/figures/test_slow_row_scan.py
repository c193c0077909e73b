"""figures.slow_row_scan against the committed slow-row validation record."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_slow_row_scan_at_the_floor_equals_the_committed_validation_record():
    from figures.slow_row_scan import scan

    rec = json.loads((ROOT / "figures/validation/slow-row/charlm-momentum.json").read_text())
    (r,) = scan(ROOT / "figures/measure/charlm/spectrum_target.npz",
                ROOT / "figures/sweeps/charlm-momentum", factors=(1.0,))
    assert r["worst"] == pytest.approx(rec["ends"]["error"]["nqm_worst"], rel=1e-9)
    assert r["f"] == pytest.approx(rec["ends"]["fitted"]["target_fraction"], rel=1e-9)
    assert r["row_loss_share"] == pytest.approx(r["f"], rel=0.05)   # the fit's target: the row
