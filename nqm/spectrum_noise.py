"""Additive gradient noise with the spectrum's own c_i, for the simulated sweep.

`nqm.first_passage` draws per-direction noise of variance (kappa (...) + c_i) / B with
c_i = `noise.additive(spectrum)`; `CoupledNoise(sigma^2, coupling=False)` gives c_i = sigma^2 h_i.
`SpectrumNoise` gives kappa = 0 and c_i = the spectrum's c, the noise of `nqm.predict`'s model
(Zhang et al. 2019, arXiv 1907.04164): for c = sigma^2 h the two are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nqm.coupled import CoupledNoise
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class SpectrumNoise(CoupledNoise):
    """Additive noise with the spectrum's own c_i (kappa = 0; sigma2 = 0 only sets the
    simulated sweep's divergence threshold to diverge_factor times the initial loss)."""

    sigma2: float = 0.0
    coupling: bool = False

    def additive(self, spectrum: Spectrum) -> np.ndarray:
        """The spectrum's c_i."""
        return spectrum.c
