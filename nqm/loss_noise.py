"""Gradient noise that follows the model's own loss, for models that are not least squares.

The measured per-example noise c_i (the spectrum's `c`, taken where the model's loss was
L_ref) is scaled along the run by the loss:

    c_i(L) = scale * c_i * (L + l_noise) / (L_ref + l_noise),   L = 1/2 sum_j count_j h_j s_j,

so c_i(L_ref) = scale * c_i, and l_noise -> +inf is the constant-noise NQM (Zhang et al. 2019,
arXiv 1907.04164, section 2).  With S = 2 L this is linear in the second moments s,

    c_i(s) = add_i + coup_i S,   add_i = w c_i l_noise,   coup_i = w c_i / 2,
    w = scale / (L_ref + l_noise),

the form of least squares' noise (McCandlish et al. 2018, appendix; `nqm.coupled`) without its
own-direction term, so the exact second-moment recurrence of `nqm.coupled` carries it
(`expected_loss`, `first_crossing`, and the tuner `nqm.coupled_tuning`).  L is the *expected*
loss, a deterministic function of s: the recurrence is exact for this model.

l_noise may be negative.  With L_ref + l_noise < 0 (a noise line that falls with the loss, as
measured on some networks) c_i grows as L falls; where the line crosses zero the variance is
clipped at 0 (the kernels' max(., 0)).  `nqm.noise_line` estimates l_noise and L_ref from the
noise measured at several checkpoints of one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class LossFollowingNoise:
    """c_i(L) = scale c_i (L + l_noise) / (l_ref + l_noise); l_noise = inf: constant noise."""

    l_noise: float
    l_ref: float
    scale: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.l_ref) and self.l_ref >= 0):
            raise NQMInputError(f"l_ref (the model's loss where the noise was measured) must be "
                                f"a finite number >= 0, got {self.l_ref}")
        if math.isnan(self.l_noise) or self.l_noise == -math.inf:
            raise NQMInputError(f"l_noise must be a number or +inf, got {self.l_noise}")
        if math.isfinite(self.l_noise) and self.l_ref + self.l_noise == 0:
            raise NQMInputError(f"l_noise must differ from -l_ref = {-self.l_ref}: the noise "
                                f"would vanish where it was measured")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise NQMInputError(f"scale must be a finite number > 0, got {self.scale}")

    def relative(self, loss: float) -> float:
        """c_i(L) / c_i: scale (L + l_noise) / (l_ref + l_noise), clipped at 0."""
        if math.isinf(self.l_noise):
            return self.scale
        return max(self.scale * (loss + self.l_noise) / (self.l_ref + self.l_noise), 0.0)

    def moment_coefficients(self, spectrum: Spectrum):
        """(diag, coup, add) with c_i(s) = diag_i s_i + coup_i S + add_i (module docstring)."""
        c = np.asarray(spectrum.c, dtype=np.float64)
        if math.isinf(self.l_noise):
            return np.zeros_like(c), np.zeros_like(c), self.scale * c
        w = self.scale / (self.l_ref + self.l_noise)
        return np.zeros_like(c), 0.5 * w * c, w * self.l_noise * c
