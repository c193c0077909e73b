"""The directions a measured spectrum dropped, kept as one slow row.

A measured spectrum (`empirical.adapter.to_spectrum`) drops every direction with curvature
h <= h_floor = floor * lambda_max (negative Hessian eigenvalues and near-null directions) and with
them their part of the distance d = theta_init - theta_ref.  The NQM (Zhang et al. 2019,
arXiv 1907.04164, section 2) then starts at the target's distance in the kept directions only, and
the slow progress in the dropped ones, which sets the large-batch floor S_min, is lost.

`with_slow_row` puts them back as one row, by a fixed rule (nothing is fitted to a sweep):

    h_slow = h_factor * h_floor    the largest curvature a dropped direction can have (negative
                                   ones counted as flat but moving); h_factor = 1 by default
    count  = n_drop                the metadata's `dropped_directions`
    s0     = (|d|^2 - sum_i count_i s0_i) / n_drop
                                   their even share of the distance the kept rows do not hold
                                   (the adapter's bulk rule: the bulk's |d|^2 spread evenly)
    c      = c_low (h_slow / h_low)^q
                                   the adapter's bulk noise law c(h) = a h^q (q the metadata's
                                   `bulk_noise_exponent`, a from the lowest kept row (h_low, c_low),
                                   a bulk bin whenever the spectrum has one)

The adapter gives the whole remaining tr(Sigma) to the kept bulk bins, so this row's noise
n_drop * c is added on top of the measured tr(Sigma); `slow_row_added_trace_sigma` in the
metadata records it, beside `slow_row_h`, `slow_row_count`, `slow_row_s0`, `slow_row_c` and
the distances used.  At h_floor it is small: on the reference Hessian spectra 1.7e-5 (charlm),
3.3e-4 (cnn-digits) and 3.0e-5 (mlp-digits) of the spectrum's tr(Sigma).  Fewer than half a
dropped direction counts as none: the spectrum is returned unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum

#: the metadata a measured spectrum must carry for the slow row
NEEDED = ("h_floor", "dropped_directions", "bulk_noise_exponent")


@dataclass(frozen=True)
class SlowRowConfig:
    """How the slow row is built: h_slow = h_factor * h_floor; |d|^2 = displacement_sq."""

    displacement_sq: float
    h_factor: float = 1.0

    def __post_init__(self):
        d = self.displacement_sq
        if not (isinstance(d, (int, float)) and math.isfinite(d) and d >= 0):
            raise NQMInputError(f"displacement_sq must be a finite number >= 0, got {d!r}")
        f = self.h_factor
        if not (isinstance(f, (int, float)) and math.isfinite(f) and f > 0):
            raise NQMInputError(f"h_factor must be a finite number > 0, got {f!r}")


def needed_metadata(meta: dict) -> dict:
    """The metadata a slow row needs, as floats; a one-line error naming any that are missing."""
    missing = [k for k in NEEDED if meta.get(k) is None]
    if missing:
        raise NQMInputError(f"the spectrum's metadata lack {', '.join(missing)}: a slow row "
                            "needs a spectrum measured by `nqm measure`")
    return {k: float(meta[k]) for k in NEEDED}


def with_slow_row(spectrum: Spectrum, config: SlowRowConfig) -> Spectrum:
    """`spectrum` plus one row holding its dropped directions (see the module docstring)."""
    m = needed_metadata(spectrum.meta)
    n_drop = m["dropped_directions"]
    if n_drop < 0.5:
        return spectrum
    if m["h_floor"] <= 0:
        raise NQMInputError(f"the spectrum's h_floor must be > 0, got {m['h_floor']!r}")
    kept = float(np.sum(spectrum.count * spectrum.s0))
    s0 = max(config.displacement_sq - kept, 0.0) / n_drop
    h_slow = config.h_factor * m["h_floor"]
    low = int(np.argmin(spectrum.h))
    c = float(spectrum.c[low]) * (h_slow / float(spectrum.h[low])) ** m["bulk_noise_exponent"]
    return Spectrum(h=np.append(spectrum.h, h_slow), c=np.append(spectrum.c, c),
                    s0=np.append(spectrum.s0, s0), count=np.append(spectrum.count, n_drop),
                    meta={**spectrum.meta, "slow_row_h": h_slow, "slow_row_count": n_drop,
                          "slow_row_s0": s0, "slow_row_c": c,
                          "slow_row_h_factor": config.h_factor,
                          "slow_row_displacement_sq": config.displacement_sq,
                          "slow_row_displacement_sq_kept": kept,
                          "slow_row_added_trace_sigma": n_drop * c})
