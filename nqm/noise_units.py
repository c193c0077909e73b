"""The noise scale kappa where it is not fitted: the measured noise in the quadratic's loss units.

A measured spectrum (h, c, s0) keeps two units apart.  Its loss, L0 = 1/2 sum count h s0 at the
initialisation, is the quadratic's; the train-loss rule maps the real training loss ell onto it
affinely, 0 at the loss floor ell_floor and L0 at the initial training loss ell_0
(`empirical.adapter.target_fraction_rule`, `nqm.noise_line`):

    L(ell) = rho (ell - ell_floor),      rho = L0 / (ell_0 - ell_floor).

Its noise c is the real per-example gradient covariance, in real units.  On the digits models
the quadratic around the end point carries only 6-11% of the real loss drop (rho = 0.06-0.11;
charlm 0.60, linreg 0.93), so with kappa = 1 the target is mapped by rho and the noise is not.
SGD's stationary excess loss shows what that does: at small lr alpha it is (alpha / 4B) tr Sigma
in real units (independent of how Sigma and the Hessian align), and (alpha / 4B) kappa
sum count c in the NQM's; the same map for both needs

    kappa0 = rho,

that is the measured noise and the target both in the quadratic's units (the same holds for
momentum and the H^-p stand-in: their excess loss is linear in c too).  Equivalently (scaling
s0, c and the target together changes no step count): the quadratic with the measured curvature
and noise whose initial distances s0 / rho carry the real loss drop, with target
f (ell_0 - ell_floor).  The calibration's fitted modes (two fit batch sizes) fit kappa and are
unchanged by this; it sets kappa of the one-run fit (f at one batch size) and of the zero-run
prediction (`nqm.calibrate`).  "measured" keeps kappa0 = 1.

The path model (`nqm.path`): segment j's quadratic maps the real loss with its own slope,
L_j(ell) = L0_j (ell - ell_floor) / (ell_j - ell_floor) (the train-loss rule per segment), so its
noise is mapped with rho_j = L0_j / (ell_j - ell_floor) (`loss_matched_path`).  One scalar kappa
cannot undo different rho_j, so there the fitted modes change too: kappa then scales the
segments' loss-matched noise rho_j c_j.
"""

from __future__ import annotations

import math

from nqm.errors import NQMInputError
from nqm.path import LossPath, Segment
from nqm.spectrum import Spectrum

NOISE_SCALES = ("measured", "loss-matched")


def check_noise_scale(rule: str) -> None:
    """Refuse a rule other than NOISE_SCALES, naming it."""
    if rule not in NOISE_SCALES:
        raise NQMInputError(f"noise_scale must be one of {', '.join(NOISE_SCALES)}, got {rule!r}")


def loss_drop_of(meta: dict) -> float | None:
    """ell_0 - ell_floor from a measured spectrum's metadata (`nqm measure` records
    `train_loss_init` when it measured the initialisation too, and `loss_floor`); None when
    `train_loss_init` is missing."""
    init = meta.get("train_loss_init")
    if init is None:
        return None
    return float(init) - float(meta.get("loss_floor", 0.0))


def base_noise_scale(rule: str, initial_loss: float, loss_drop: float | None) -> float:
    """kappa0 of the module docstring: 1 for "measured", rho = L0 / (ell_0 - ell_floor) for
    "loss-matched" (initial_loss: L0; loss_drop: ell_0 - ell_floor)."""
    check_noise_scale(rule)
    if rule == "measured":
        return 1.0
    if loss_drop is None:
        raise NQMInputError("the loss-matched noise scale needs the reference run's initial "
                            "training loss (spectrum metadata 'train_loss_init', recorded by "
                            "`nqm measure` with --at-step 0)")
    if not (math.isfinite(loss_drop) and loss_drop > 0):
        raise NQMInputError(f"the initial training loss must exceed its floor: "
                            f"ell_0 - ell_floor = {loss_drop} (train_loss_init, loss_floor)")
    if not (math.isfinite(initial_loss) and initial_loss > 0):
        raise NQMInputError(f"the spectrum's initial loss must be > 0, got {initial_loss}")
    return float(initial_loss / loss_drop)


def segment_scales(path: LossPath) -> list[float]:
    """rho_j = L0_j / (ell_j - ell_floor) of every segment of `path` (module docstring)."""
    out = []
    for s in path.segments:
        if s.train_loss is None or not s.train_loss > path.loss_floor:
            raise NQMInputError(f"segment {s.label!r}: the loss-matched noise scale needs its "
                                f"train loss above the loss floor {path.loss_floor:g}, got "
                                f"{s.train_loss}")
        out.append(s.spectrum.initial_loss() / (s.train_loss - path.loss_floor))
    return out


def loss_matched_path(path: LossPath, scales: list[float] | None = None) -> LossPath:
    """`path` with segment j's noise c_j scaled by rho_j (`scales`, default
    `segment_scales(path)`)."""
    scales = segment_scales(path) if scales is None else scales
    segments = tuple(
        Segment(Spectrum(h=s.spectrum.h, c=rho * s.spectrum.c, s0=s.spectrum.s0,
                         count=s.spectrum.count, meta=s.spectrum.meta),
                s.fraction, s.label, s.step, s.train_loss)
        for s, rho in zip(path.segments, scales))
    return LossPath(segments, path.last_rule, path.loss_floor)


def loss_matched_spectrum(spectrum: Spectrum, rule: str,
                          loss_drop: float | None = None) -> tuple[Spectrum, float]:
    """(spectrum with c scaled by kappa0, kappa0) for `rule` (module docstring): unchanged for
    "measured", rho = L0 / (ell_0 - ell_floor) for "loss-matched", ell_0 - ell_floor given as
    `loss_drop` or else from the measurement's metadata (`loss_drop_of`); the metadata record
    the rule and kappa0."""
    check_noise_scale(rule)
    if rule == "measured":      # the metadata are not read
        return spectrum, 1.0
    drop = loss_drop_of(spectrum.meta) if loss_drop is None else loss_drop
    kappa0 = base_noise_scale(rule, spectrum.initial_loss(), drop)
    meta = {**spectrum.meta, "noise_scale_rule": rule, "noise_scale_kappa0": kappa0}
    return Spectrum(h=spectrum.h, c=kappa0 * spectrum.c, s0=spectrum.s0, count=spectrum.count,
                    meta=meta), kappa0
