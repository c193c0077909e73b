"""The spectrum edits of figures/slow_directions.py, and its refit against the committed record."""

import json
from pathlib import Path

import numpy as np
import pytest

from figures.slow_directions import lowest_moved, refit, with_slow_row, without_below
from nqm.spectrum import Spectrum, load
from nqm.sweep_data import load_sweep

ROOT = Path(__file__).resolve().parents[2]


def _sp():
    return Spectrum(h=np.array([2.0, 0.5, 1e-3]), c=np.array([0.3, 0.2, 0.1]),
                    s0=np.array([1.0, 0.5, 0.25]), count=np.array([1.0, 3.0, 40.0]),
                    meta={"workload": "toy"})


def test_without_below_keeps_exactly_the_rows_at_or_above_h_min():
    sp = without_below(_sp(), 0.5)
    assert sp.h.tolist() == [2.0, 0.5] and sp.count.tolist() == [1.0, 3.0]
    assert sp.s0.tolist() == [1.0, 0.5] and sp.meta == {"workload": "toy"}


def test_lowest_moved_changes_only_the_lowest_h():
    sp = lowest_moved(_sp(), 10.0)
    assert np.allclose(sp.h, [2.0, 0.5, 1e-2])
    assert sp.count.tolist() == [1.0, 3.0, 40.0] and sp.c.tolist() == [0.3, 0.2, 0.1]


def test_with_slow_row_holds_the_rest_of_the_distance_evenly():
    base = _sp()
    held = float(np.sum(base.count * base.s0))               # 1 + 1.5 + 10 = 12.5
    sp = with_slow_row(base, 1e-4, 100.0, displacement_sq=32.5, c_each=0.01)
    assert sp.h[-1] == 1e-4 and sp.count[-1] == 100.0 and sp.c[-1] == 0.01
    assert sp.s0[-1] == pytest.approx((32.5 - held) / 100.0)
    assert float(np.sum(sp.count * sp.s0)) == pytest.approx(32.5)


@pytest.mark.slow
def test_refit_of_the_measured_spectrum_equals_the_committed_validation_record():
    rec = json.loads((ROOT / "figures/validation/ggn/charlm-momentum.json").read_text())["ends"]
    r = refit(load(ROOT / "figures/measure-sweep-target-ggn/charlm/spectrum_target.npz"),
              load_sweep(ROOT / "figures/sweeps/charlm-momentum"))
    assert r["worst"] == pytest.approx(rec["error"]["nqm_worst"], rel=1e-9)
    assert r["null"] == pytest.approx(rec["error"]["null_worst"], rel=1e-9)
    assert r["f"] == pytest.approx(rec["fitted"]["target_fraction"], rel=1e-9)
    assert r["kappa"] == pytest.approx(rec["fitted"]["noise_scale"], rel=1e-9)
