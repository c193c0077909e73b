"""The path model (`nqm.path`, `nqm.path_model`): one segment is the calibrated single-quadratic
model, a chain's step counts are those of the plain second-moment recurrence run segment after
segment, and bad paths are refused in one line."""

import math

import numpy as np
import pytest

from nqm.calibrate import CalibrateConfig, calibrate
from nqm.errors import NQMInputError
from nqm.path import LossPath, Segment, path_from_checkpoints
from nqm.path_model import PathModel, _Run
from nqm.spectrum import Spectrum, load
from nqm.sweep_data import load_sweep
from nqm.tuning import tune
from tests.helpers import moment_recurrence, small_spectrum

MEASURED = "figures/measure-path/{}/spectrum_target.npz"


def _small(seed: int) -> Spectrum:
    return small_spectrum(seed, 5)


@pytest.mark.parametrize("workload, kind, precond", [("linreg", "sgd", 0.0),
                                                     ("mlp-digits", "momentum", 0.0),
                                                     ("logreg-digits", "sgd", 0.25)])
def test_one_segment_is_the_single_quadratic_tuner(workload, kind, precond):
    s = load(MEASURED.format(workload))
    model = PathModel(LossPath((Segment(s, None, "target"),)), kind, precond, 10**6)
    f, kappa, bs = 0.05, 0.3, [1, 4, 16, 64, 256, 1024]
    got = model.points(f, kappa, bs)
    scaled = Spectrum(h=s.h, c=kappa * s.c, s0=s.s0, count=s.count)
    want = tune(scaled, kind, bs, f * s.initial_loss(), precond=precond, max_steps=10**6)
    assert [p.steps for p in got] == [p.steps for p in want]
    assert [p.segment_steps for p in got] == [(p.steps,) for p in want]


def test_one_segment_calibrates_as_the_single_quadratic():
    s = load(MEASURED.format("linreg"))
    sweep = load_sweep("figures/sweeps/linreg-sgd")
    one = calibrate(s, sweep, CalibrateConfig(path=LossPath((Segment(s, None, "target"),))))
    ref = calibrate(s, sweep, CalibrateConfig())
    assert one["fitted"]["target_fraction"] == pytest.approx(ref["fitted"]["target_fraction"],
                                                             rel=1e-9)
    assert one["fitted"]["noise_scale"] == pytest.approx(ref["fitted"]["noise_scale"], rel=1e-9)
    assert [p["predicted"] for p in one["points"]] == [p["predicted"] for p in ref["points"]]
    assert one["error"] == ref["error"] and one["path"]["segments"][0]["label"] == "target"


@pytest.mark.parametrize("fit_on", ["smallest", "none"])
def test_one_segment_loss_matched_is_the_single_quadratic_loss_matched(fit_on):
    s = load(MEASURED.format("linreg"))      # metadata: train_loss_init, loss_floor
    sweep = load_sweep("figures/sweeps/linreg-sgd")
    init, floor = s.meta["train_loss_init"], s.meta["loss_floor"]
    path = LossPath((Segment(s, None, "target", 0, init),), 0.01, floor)
    one = calibrate(s, sweep, CalibrateConfig(fit_on=fit_on, path=path,
                                              noise_scale="loss-matched"), f_rule=0.01)
    ref = calibrate(s, sweep, CalibrateConfig(fit_on=fit_on, noise_scale="loss-matched"),
                    f_rule=0.01)
    rho = s.initial_loss() / (init - floor)
    assert one["fitted"]["noise_scale_rule"]["segment_scales"] == [pytest.approx(rho, rel=1e-15)]
    assert ref["fitted"]["noise_scale"] == pytest.approx(rho, rel=1e-15)
    assert one["fitted"]["target_fraction"] == pytest.approx(ref["fitted"]["target_fraction"],
                                                             rel=1e-9)
    assert [p["predicted"] for p in one["points"]] == [p["predicted"] for p in ref["points"]]


def _recurrence_steps(path, targets, kind, lr, beta, b, kappa, n=4000):
    """Each segment's first step with loss <= its target, by the literal recurrence."""
    out = []
    for seg, t in zip(path.segments, targets):
        s = seg.spectrum
        loss = moment_recurrence(s.h, kappa * s.c, s.s0, s.count, kind, lr, beta, 0.0, None,
                                 b, n_steps=n)
        hit = np.flatnonzero(loss <= t)
        out.append(int(hit[0]) if hit.size else -1)
    return out


@pytest.mark.parametrize("kind, lr, beta", [("sgd", 0.8, 0.0), ("sgd", 0.2, 0.0),
                                            ("momentum", 0.3, 0.6)])
def test_two_segments_step_like_the_plain_recurrence(kind, lr, beta):
    path = LossPath((Segment(_small(1), 0.3, "a", 0), Segment(_small(2), None, "b", 10)))
    model = PathModel(path, kind, 0.0, 4000)
    f, kappa = 0.2, 0.5
    run = _Run(model, f, kappa)
    z = [math.log(lr * model.h_scale / (2.0 * (1.0 + beta)))] + \
        ([math.log(1.0 - beta)] if kind == "momentum" else [])
    cfg = model.config(z)
    assert cfg.lr == pytest.approx(lr, rel=1e-12) and cfg.momentum == pytest.approx(beta)
    for b in (1, 8, 64):
        got = run.crossings(z, np.array([b]))[:, 0].tolist()
        want = _recurrence_steps(path, run.targets, kind, cfg.lr, cfg.momentum, b, kappa)
        assert got == want and min(want) > 0


def _sgd_steps(path, targets, lr, b, kappa, n=3000):
    """SGD's chain by the per-direction recurrence s <- (1 - lr h)^2 s + lr^2 kappa c / B."""
    out = []
    for seg, t in zip(path.segments, targets):
        sp = seg.spectrum
        s, k = sp.s0.copy(), 0
        while 0.5 * np.sum(sp.count * sp.h * s) > t and k <= n:
            s = (1.0 - lr * sp.h) ** 2 * s + lr**2 * kappa * sp.c / b
            k += 1
        out.append(k if k <= n else -1)
    return out


def test_the_tuned_chain_beats_every_lr_of_a_brute_force_scan():
    """SGD: the tuned total is the recurrence's total at the tuned lr, and no lr of a fine scan
    (by the recurrence) does better."""
    path = LossPath((Segment(_small(3), 0.1, "a", 0), Segment(_small(4), None, "b", 10)))
    model = PathModel(path, "sgd", 0.0, 3000)
    f, kappa, b = 0.02, 0.5, 16
    p = model.points(f, kappa, [b])[0]
    run = _Run(model, f, kappa)
    assert sum(_sgd_steps(path, run.targets, p.lr, b, kappa)) == p.steps > 50
    limit = 2.0 / model.h_scale
    totals = [_sgd_steps(path, run.targets, r * limit, b, kappa)
              for r in np.linspace(0.02, 0.998, 200)]
    best = min(sum(t) for t in totals if min(t) >= 0)
    assert p.steps <= best


def test_path_from_checkpoints_sets_the_train_loss_rule_per_segment():
    path = path_from_checkpoints([_small(1), _small(2)], [2.0, 1.0, 0.3], loss_floor=0.1,
                                 labels=["init", "step 5"], steps=[0, 5])
    assert path.segments[0].fraction == pytest.approx(0.9 / 1.9)
    assert path.segments[1].fraction is None
    assert path.last_rule == pytest.approx(0.2 / 0.9)
    assert path.as_dict()["segments"][1]["label"] == "step 5"


@pytest.mark.parametrize("build, needle", [
    (lambda: LossPath(()), "at least one segment"),
    (lambda: LossPath((Segment(_small(1), None),)
                      + (Segment(_small(2), None),)), "needs its fraction"),
    (lambda: LossPath((Segment(_small(1), 0.5),)), "last segment's fraction is fitted"),
    (lambda: Segment(_small(1), -0.5, "x"), "fraction must be"),
    (lambda: path_from_checkpoints([_small(1)], [1.0], 0.0), r"m \+ 1 train losses"),
    (lambda: path_from_checkpoints([_small(1)], [0.1, 0.05], 0.125), "not above the loss floor"),
    (lambda: PathModel(LossPath((Segment(_small(1), None),)), "nesterov", 0.0, 100),
     "not 'nesterov'"),
    (lambda: CalibrateConfig(path="dir"), "path must be a LossPath"),
    (lambda: CalibrateConfig(path=LossPath((Segment(_small(1), None),)),
                             predict="first-passage"), "constant noise only"),
])
def test_bad_paths_are_refused_in_one_line(build, needle):
    with pytest.raises(NQMInputError, match=needle) as e:
        build()
    assert "\n" not in str(e.value)


def test_loss_matched_path_is_the_path_with_each_segment_scaled_in_every_mode():
    from empirical.adapter import path_from_measure
    from nqm.noise_units import loss_matched_path, segment_scales

    path, ref = path_from_measure("figures/measure-path/linreg")
    sweep = load_sweep("figures/sweeps/linreg-sgd")
    adam = load_sweep("figures/sweeps/linreg-adam")
    got = calibrate(ref, sweep, CalibrateConfig(path=path, noise_scale="loss-matched"),
                    transfer=(adam,))
    want = calibrate(ref, sweep, CalibrateConfig(path=loss_matched_path(path)), transfer=(adam,))
    rule = got["fitted"].pop("noise_scale_rule")
    assert rule == {"rule": "loss-matched", "kappa0": None,
                    "segment_scales": segment_scales(path)} and path.loss_floor == 0.125
    assert "noise_scale_rule" not in want["fitted"]
    assert got["fitted"] == want["fitted"] and got["points"] == want["points"]
    assert got["transfer"][0]["points"] == want["transfer"][0]["points"]
    scaled = loss_matched_path(path)
    for s, t in zip(path.segments, scaled.segments):
        assert np.array_equal(t.spectrum.s0, s.spectrum.s0)
        assert np.array_equal(t.spectrum.count, s.spectrum.count)
