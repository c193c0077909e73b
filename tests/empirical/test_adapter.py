"""`empirical.adapter.to_spectrum` on a small synthetic measurement (no training): the totals it
must carry into the NQM spectrum and the directions it drops, counted.

Synthetic: P = 50 parameters, k = 4 top eigenvalues (5, 3, 2, -0.5), a bulk of 46 dimensions
whose SLQ quadrature has two probe vectors, one node below the floor and one negative."""

import numpy as np
import pytest

from empirical.adapter import to_spectrum
from empirical.measure import MeasureConfig, Measurement
from empirical.noise import NoiseStats
from empirical.spectral import Quadrature

TOP = np.array([5.0, 3.0, 2.0, -0.5])
C_TOP = np.array([1.0, 0.5, 0.5, 0.2])
S0_TOP = np.array([0.4, 0.3, 0.2, 0.1])
NODES = np.array([[1e-9, 0.1, 0.5, 1.0], [-0.2, 0.2, 0.8, 1.5]])
WEIGHTS = np.array([[0.1, 0.3, 0.4, 0.2], [0.25, 0.25, 0.25, 0.25]])
BULK_DIM = 46


def measurement(trace_sigma=10.0, trace_h_sigma=11.0, displacement_sq=3.0, top=TOP,
                nodes=NODES) -> Measurement:
    """A Measurement built by hand; only what the adapter reads is meaningful."""
    noise = NoiseStats(trace_sigma=trace_sigma, grad_norm_sq=1.0, trace_h_sigma=trace_h_sigma,
                       g_h_g=1.0, b_simple=trace_sigma, b_noise=trace_h_sigma, b_simple_ci=None,
                       b_noise_ci=None, c=C_TOP, hessian_examples=8, bootstrap=0)
    return Measurement(label="target", step=7, metric=0.1, train_loss=0.2, n_examples=100,
                       dim=50, config=MeasureConfig(top_k=4), eigenvalues=top,
                       eigenvectors=np.eye(50)[:, :4], c_top=C_TOP, s0_top=S0_TOP,
                       displacement_sq=displacement_sq, noise=noise, trace=0.0, trace_se=0.0,
                       bulk=Quadrature(nodes, WEIGHTS, BULK_DIM, 8),
                       products={})


def test_totals_are_preserved_and_drops_counted():
    sp = to_spectrum(measurement(), bins=12, floor=1e-6, meta={"workload": "synthetic"})
    h_floor = 1e-6 * 5.0
    assert sp.meta["h_floor"] == pytest.approx(h_floor) and sp.meta["k"] == 4
    assert sp.meta["workload"] == "synthetic" and sp.meta["step"] == 7
    assert np.all(sp.h > h_floor)
    # the top rows: the three positive eigenvalues, one direction each, in order
    np.testing.assert_array_equal(sp.h[:3], TOP[:3])
    np.testing.assert_array_equal(sp.count[:3], 1.0)
    np.testing.assert_array_equal(sp.c[:3], C_TOP[:3])
    np.testing.assert_array_equal(sp.s0[:3], S0_TOP[:3])
    # dropped: the negative top direction and the bulk mass at or below the floor
    bulk_dropped = BULK_DIM * (WEIGHTS[0, 0] + WEIGHTS[1, 0]) / 2
    assert sp.meta["dropped_directions"] == pytest.approx(1 + bulk_dropped)
    assert sp.count.sum() + sp.meta["dropped_directions"] == pytest.approx(4 + BULK_DIM)
    assert sp.meta["bulk_bins"] == sp.h.size - 3
    # noise: tr(Sigma) and tr(H Sigma) of the measurement, less the dropped top direction's
    total_c = np.sum(sp.count * sp.c)
    total_hc = np.sum(sp.count * sp.h * sp.c)
    assert total_c == pytest.approx(10.0 - C_TOP[3], rel=1e-9)
    assert total_hc == pytest.approx(11.0 - TOP[3] * C_TOP[3], rel=1e-8)
    assert -2.0 < sp.meta["bulk_noise_exponent"] < 4.0
    # distance: the bulk's share of |d|^2 spread evenly over its 46 directions
    s0_bulk = (3.0 - S0_TOP.sum()) / BULK_DIM
    np.testing.assert_allclose(sp.s0[3:], s0_bulk)
    assert np.sum(sp.count * sp.s0) == pytest.approx(S0_TOP[:3].sum()
                                                     + s0_bulk * sp.count[3:].sum())


def test_unmatchable_bulk_noise_falls_back_to_sigma_proportional_to_h():
    # tr(H Sigma) already used up by the top directions: q = 1 (Sigma proportional to H)
    sp = to_spectrum(measurement(trace_h_sigma=7.0), bins=12)
    assert sp.meta["bulk_noise_exponent"] == 1.0
    bulk = slice(3, None)
    np.testing.assert_allclose(sp.c[bulk] / sp.h[bulk], sp.c[3] / sp.h[3])
    assert np.sum(sp.count * sp.c) == pytest.approx(10.0 - C_TOP[3])


def test_no_positive_curvature_is_refused():
    with pytest.raises(ValueError, match="no positive eigenvalue"):
        to_spectrum(measurement(top=-np.abs(TOP), nodes=-np.abs(NODES)))


def test_slow_row_from_the_metadata_holds_every_dropped_direction_and_all_of_d(tmp_path):
    from empirical.adapter import spectrum_with_slow_row

    sp = to_spectrum(measurement(displacement_sq=3.0), bins=12, floor=1e-6)
    assert sp.meta["displacement_sq"] == 3.0
    sp.save(tmp_path / "s.npz")
    slow = spectrum_with_slow_row(tmp_path / "s.npz")
    assert slow.dimension == pytest.approx(4 + BULK_DIM)       # nothing dropped any more
    assert float(np.sum(slow.count * slow.s0)) == pytest.approx(3.0)
    assert slow.h[-1] == pytest.approx(sp.meta["h_floor"])
    assert slow.count[-1] == pytest.approx(sp.meta["dropped_directions"])


def _old_spectrum(tmp_path, points):
    """A spectrum written before `displacement_sq` was in its metadata, with its measure.json."""
    import json

    sp = to_spectrum(measurement(displacement_sq=3.0), bins=12, floor=1e-6)
    meta = {k: v for k, v in sp.meta.items() if k != "displacement_sq"}
    type(sp)(h=sp.h, c=sp.c, s0=sp.s0, count=sp.count, meta=meta).save(tmp_path / "s.npz")
    (tmp_path / "measure.json").write_text(json.dumps({"along_training": points}))
    return tmp_path / "s.npz"


def test_old_spectra_take_the_displacement_from_their_measure_json(tmp_path):
    from empirical.adapter import spectrum_with_slow_row

    path = _old_spectrum(tmp_path, [{"label": "init", "displacement_sq": 99.0},
                                    {"label": "target", "displacement_sq": 5.0}])
    slow = spectrum_with_slow_row(path)
    assert float(np.sum(slow.count * slow.s0)) == pytest.approx(5.0)


def test_old_spectra_without_their_point_are_refused_in_one_line(tmp_path):
    from empirical.adapter import spectrum_with_slow_row
    from nqm.errors import NQMInputError

    path = _old_spectrum(tmp_path, [{"label": "init", "displacement_sq": 99.0}])
    with pytest.raises(NQMInputError, match="has no displacement_sq for checkpoint 'target'"):
        spectrum_with_slow_row(path)
    (tmp_path / "measure.json").unlink()
    with pytest.raises(NQMInputError, match="no displacement_sq in its metadata and no readable"):
        spectrum_with_slow_row(path)


def _spectrum_with(meta):
    from nqm.spectrum import Spectrum

    return Spectrum(h=np.array([1.0]), c=np.array([1.0]), s0=np.array([1.0]),
                    count=np.array([1.0]), meta=meta)


def test_loss_drop_from_the_metadata_first(tmp_path):
    from empirical.adapter import loss_drop

    meta = {"workload": "linreg", "train_loss_init": 2.5, "loss_floor": 0.5}
    assert loss_drop(_spectrum_with(meta), tmp_path / "s.npz") == 2.0   # no measure.json read


def test_loss_drop_of_an_older_spectrum_from_its_measure_json_and_the_catalog_floor(tmp_path):
    import json

    from empirical.adapter import loss_drop
    from nqm.errors import NQMInputError

    (tmp_path / "measure.json").write_text(json.dumps({"along_training": [
        {"label": "init", "train_loss": 2.625}, {"label": "target", "train_loss": 0.2}]}))
    assert loss_drop(_spectrum_with({"workload": "linreg"}), tmp_path / "s.npz") == 2.5
    assert loss_drop(_spectrum_with({"workload": "mlp-digits"}), tmp_path / "s.npz") == 2.625
    (tmp_path / "measure.json").write_text(json.dumps({"along_training": [
        {"label": "target", "train_loss": 0.2}]}))
    with pytest.raises(NQMInputError, match="needs the initial training loss"):
        loss_drop(_spectrum_with({"workload": "linreg"}), tmp_path / "s.npz")
    (tmp_path / "measure.json").write_text("{")
    with pytest.raises(NQMInputError, match="no train_loss_init in its metadata and no readable"):
        loss_drop(_spectrum_with({"workload": "linreg"}), tmp_path / "s.npz")


def test_loss_drop_of_the_committed_gauss_newton_spectrum_matches_the_reference_rule():
    import json
    from pathlib import Path

    from empirical.adapter import loss_drop
    from nqm.spectrum import load

    root = Path(__file__).resolve().parents[2] / "figures"
    path = root / "measure-sweep-target-ggn/linreg/spectrum_target.npz"
    init = {p["label"]: p for p in json.loads((path.parent / "measure.json").read_text())
            ["along_training"]}["init"]["train_loss"]
    assert loss_drop(load(path), path) == pytest.approx(init - 0.125, rel=1e-15)


def test_loss_floor_from_the_metadata_else_the_catalog():
    from empirical.adapter import loss_floor

    assert loss_floor({"workload": "linreg", "loss_floor": 0.0}) == 0.0
    assert loss_floor({"workload": "linreg"}) == 0.125
    assert loss_floor({"workload": "mlp-digits"}) == 0.0
    assert loss_floor({}) == 0.0
