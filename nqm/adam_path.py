"""The mean-field Adam (`nqm.adam`) on the path model (`nqm.path`), tuned per batch size, for
`nqm.calibrate`.

As `nqm.path_model` chains the NQMs measured along the reference run for SGD and heavy ball,
this chains the mean-field Adam: with one (lr, beta1) for the whole run, segment j runs the
mean-field Adam on checkpoint j's spectrum (noise kappa c_j / B) from s0_j, with its moments
and its second-moment average v started afresh (as `nqm.path_model` starts each segment's
momentum buffer at zero), until its expected loss first reaches T_j:

    k_j(lr, beta1, B) = min {k : E L_j(k) <= T_j},    S(lr, beta1, B) = sum_j k_j,

T_j = rule_j L0_j for the segments before the last (the train-loss rule between
checkpoints), T_{m-1} = f L0_{m-1}.  (f, kappa) are `nqm.calibrate`'s two scalars, shared by
every segment.  S is minimised over (lr, beta1) per batch size by
`nqm.adam_tuning.tune_chain`: the single-quadratic tuner on the summed crossings, with the
total within the budget (`nqm.path_model` gives each segment the budget); a segment not
reached adds its own penalty, so that finishing one always scores better; lr's unit is the
first segment's rms initial distance per parameter.  With one segment S is the
single-quadratic mean-field Adam's step count.
"""

from __future__ import annotations

import math

from nqm.adam_tuning import AdamSpace, tune_chain
from nqm.path import LossPath
from nqm.path_model import PathPoint
from nqm.spectrum import Spectrum


class AdamPathModel:
    """Tuned steps of the mean-field Adam on the path with (f, kappa), memoised per batch
    size (the interface of `nqm.path_model.PathModel`)."""

    kind = "adam"

    def __init__(self, path: LossPath, max_steps: int, space: AdamSpace | None = None,
                 beta2: float = 0.999, eps: float = 1e-8):
        self.path, self.max_steps, self.space = path, int(max_steps), space or AdamSpace()
        self.beta2, self.eps = beta2, eps
        self.l0s = [s.spectrum.initial_loss() for s in path.segments]
        self.l0 = self.l0s[-1]
        self._memo: dict = {}

    def segments(self, fraction: float, kappa: float) -> list[tuple[Spectrum, float]]:
        """(spectrum with noise kappa c, target T_j) of every segment (module docstring)."""
        out = []
        for s, l0 in zip(self.path.segments, self.l0s):
            sp = s.spectrum
            target = (s.fraction if s.fraction is not None else fraction) * l0
            out.append((Spectrum(h=sp.h, c=kappa * sp.c, s0=sp.s0, count=sp.count), target))
        return out

    def points(self, fraction: float, kappa: float, batch_sizes) -> list[PathPoint]:
        """The tuned batch sizes at (f, kappa), tuned once per (f, kappa, B)."""
        key = (round(math.log(fraction), 9), round(math.log(kappa), 9))
        missing = sorted({int(b) for b in batch_sizes} - {k[2] for k in self._memo
                                                          if k[:2] == key})
        if missing:
            for p, ks in tune_chain(self.segments(fraction, kappa), missing, self.max_steps,
                                    self.beta2, self.eps, self.space):
                self._memo[key + (p.batch_size,)] = PathPoint(
                    p.batch_size, p.steps, p.reached, p.lr, p.momentum, ks)
        return [self._memo[key + (int(b),)] for b in batch_sizes]

    def curve_sizes(self, sizes) -> tuple[int, ...]:
        """The batch sizes of the plotted curve (`nqm.calibrate.curve_batch_sizes`)."""
        from nqm.calibrate import curve_batch_sizes

        return curve_batch_sizes(sizes)

    def log_steps(self, fraction: float, kappa: float, batch_size: int) -> float:
        """log of the tuned total steps (`nqm.calibrate.log_steps_of`)."""
        from nqm.calibrate import log_steps_of

        return log_steps_of(self.points(fraction, kappa, (batch_size,))[0], self.max_steps)
