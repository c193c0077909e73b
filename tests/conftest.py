import numpy as np
import pytest

from nqm.spectrum import Spectrum


@pytest.fixture
def small_spectrum():
    """A random 12-direction spectrum with multiplicities (fixed seed)."""
    rng = np.random.default_rng(7)
    h = np.sort(rng.uniform(0.01, 1.0, 12))[::-1]
    return Spectrum(h=h, c=rng.uniform(0.1, 2.0, 12) * h, s0=rng.uniform(0.2, 2.0, 12),
                    count=rng.integers(1, 5, 12).astype(float))
