"""The path of the reference run as a chain of noisy quadratics, one per checkpoint.

One quadratic around the reference point theta_ref explains only the loss its own curvature
reaches; along a real run the curvature and the gradient noise change (theory notes, section 5;
Zhang et al. 2019 model one fixed quadratic).  The path model measures both at checkpoints
j = 0 .. m-1 of the reference run (steps t_j, train losses l_j; j = 0 the initialisation) and
takes theta_ref = the checkpoint m where the run first reaches the sweep's target (train loss
l_m).  Segment j is the NQM of checkpoint j:

    h_j, c_j   the curvature and per-example noise measured at checkpoint j,
    s0_j       (v_i' d_j)^2 with d_j = theta_j - theta_ref on checkpoint j's top eigenvectors,
               the rest of |d_j|^2 spread over the bulk (`empirical.adapter.here_spectrum`),
    L0_j       1/2 sum_i count_i h_ji s0_ji, its initial loss,
    T_j        = r_j L0_j, where it hands over to segment j + 1, with the train-loss rule
               r_j = (l_{j+1} - l_floor) / (l_j - l_floor) for j < m - 1 and the fitted
               fraction f for the last segment (as `nqm.calibrate` fits f for one quadratic).

`nqm.path_model` runs it: one learning rate (and momentum) for the whole run, segment j from
s0_j with noise kappa c_j / B until its expected loss reaches T_j, total steps sum_j k_j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class Segment:
    """One checkpoint's quadratic: its spectrum (s0 from theta_j - theta_ref) and the fraction
    r_j of its initial loss where it ends (None: the last segment, whose fraction is fitted)."""

    spectrum: Spectrum
    fraction: float | None
    label: str = ""
    step: int = 0
    train_loss: float | None = None

    def __post_init__(self):
        if not isinstance(self.spectrum, Spectrum):
            raise NQMInputError(f"segment {self.label!r}: spectrum must be a Spectrum, got "
                                f"{type(self.spectrum).__name__}")
        if self.fraction is not None and not (math.isfinite(self.fraction)
                                              and self.fraction > 0):
            raise NQMInputError(f"segment {self.label!r}: fraction must be a finite number > 0, "
                                f"got {self.fraction}")
        if not self.spectrum.initial_loss() > 0:
            raise NQMInputError(f"segment {self.label!r}: initial loss 1/2 sum count h s0 is 0 "
                                f"(the checkpoint is the reference point itself)")


@dataclass(frozen=True)
class LossPath:
    """The chain: segments j = 0 .. m-1 in the run's order, every fraction given but the last's.
    `last_rule` is the train-loss rule (l_m - l_floor) / (l_{m-1} - l_floor) of the last segment
    (the zero-run prediction's f), None where it is not in (0, 1); `loss_floor` is l_floor."""

    segments: tuple[Segment, ...]
    last_rule: float | None = None
    loss_floor: float = 0.0

    def __post_init__(self):
        if not self.segments:
            raise NQMInputError("a path needs at least one segment (two checkpoints)")
        for s in self.segments[:-1]:
            if s.fraction is None:
                raise NQMInputError(f"segment {s.label!r}: every segment but the last needs "
                                    f"its fraction")
        if self.segments[-1].fraction is not None:
            raise NQMInputError("the last segment's fraction is fitted: give None")
        steps = [s.step for s in self.segments]
        if steps != sorted(steps):
            raise NQMInputError(f"segments must be in the run's order, got steps {steps}")

    def as_dict(self) -> dict:
        """The segments' checkpoints, train losses, fractions and initial losses (records)."""
        return {"segments": [{"label": s.label, "step": s.step, "train_loss": s.train_loss,
                              "fraction": s.fraction, "rows": s.spectrum.n_rows,
                              "initial_loss": s.spectrum.initial_loss()}
                             for s in self.segments],
                "last_rule": self.last_rule}


def path_from_checkpoints(spectra, losses, loss_floor: float = 0.0, labels=None,
                          steps=None) -> LossPath:
    """The chain of m segments from the spectra at checkpoints 0 .. m-1 and the m + 1 train
    losses l_0 .. l_m (l_m at the reference point): r_j = (l_{j+1} - l_floor) / (l_j - l_floor)."""
    spectra, losses = list(spectra), [float(v) for v in losses]
    m = len(spectra)
    if m < 1 or len(losses) != m + 1:
        raise NQMInputError(f"a path of m segments needs m >= 1 spectra and m + 1 train losses, "
                            f"got {m} and {len(losses)}")
    labels = list(labels) if labels is not None else [f"checkpoint {j}" for j in range(m)]
    steps = list(steps) if steps is not None else list(range(m))
    above = [v - loss_floor for v in losses]
    for j, a in enumerate(above[:-1]):
        if not a > 0:
            raise NQMInputError(f"checkpoint {labels[j]!r}: train loss {losses[j]:.6g} is not "
                                f"above the loss floor {loss_floor:g}")
    ratios = [above[j + 1] / above[j] for j in range(m)]
    segments = tuple(Segment(spectra[j], ratios[j] if j < m - 1 else None, labels[j],
                             int(steps[j]), losses[j]) for j in range(m))
    last = ratios[-1]
    return LossPath(segments, float(last) if 0.0 < last < 1.0 else None, float(loss_floor))
