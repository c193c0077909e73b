"""l_noise of `nqm.loss_noise` from the noise measured at several checkpoints of one run.

Measured at checkpoints k of a reference run: the real training loss ell_k (nats, or the
squared error for least squares) and the gradient noise tau_k (default tr Sigma, the trace of
the per-example gradient covariance; `quantity` picks another column such as tr(H Sigma)).
The estimator is the least-squares line through the points (ell_k, tau_k),

    tau(ell) = a + b ell,

so tau vanishes at ell = -a / b.  The NQM's loss is not the real loss: as in the train-loss rule
(`empirical.adapter.target_fraction_rule`) it is mapped affinely, 0 at the loss floor ell_floor
and the spectrum's initial loss L0 = 1/2 sum count h s0 at the initial training loss ell_0:

    L(ell) = L0 (ell - ell_floor) / (ell_0 - ell_floor).

Then tau(ell) / tau(ell_ref) = (L + l_noise) / (L_ref + l_noise) with

    l_noise = L0 (a / b + ell_floor) / (ell_0 - ell_floor),   L_ref = L(ell_ref),

both in the NQM's loss units (ell_ref: the training loss where the spectrum was measured).
b = 0 (to rounding) gives l_noise = inf (constant noise).  b < 0 (noise that grows as the
loss falls) gives L_ref + l_noise < 0, which `LossFollowingNoise` accepts.  tau is one number
for all directions: tr Sigma is basis-free, while the NQM holds the curvature directions fixed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nqm.errors import NQMInputError
from nqm.loss_noise import LossFollowingNoise


@dataclass(frozen=True)
class NoiseLine:
    """The fitted line tau = intercept + slope * ell and l_noise, l_ref in NQM units."""

    slope: float
    intercept: float
    n_points: int
    l_noise: float
    l_ref: float
    quantity: str = "trace_sigma"

    def noise(self, scale: float = 1.0) -> LossFollowingNoise:
        """The noise model of this line (scale: the calibrated kappa)."""
        return LossFollowingNoise(self.l_noise, self.l_ref, scale)

    def as_dict(self) -> dict:
        """The record's `noise` entry (l_noise None for inf)."""
        zero = -self.intercept / self.slope if self.slope != 0 else None
        return {"quantity": self.quantity, "slope": self.slope, "intercept": self.intercept,
                "zero_at_train_loss": zero, "n_points": self.n_points,
                "l_noise": None if math.isinf(self.l_noise) else self.l_noise,
                "l_ref": self.l_ref}


def _usable(losses, values) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(losses, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise NQMInputError(f"train losses and noise values must be two lists of the same "
                            f"length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if np.unique(x[ok]).size < 2:
        raise NQMInputError(f"the noise line needs two or more checkpoints with a finite train "
                            f"loss and noise > 0 at different losses, got {int(ok.sum())}")
    return x[ok], y[ok]


def fit_noise_line(losses, values, loss_init: float, loss_ref: float, l0: float,
                   loss_floor: float = 0.0, quantity: str = "trace_sigma") -> NoiseLine:
    """The estimator of the module docstring from plain numbers (per-checkpoint train losses
    and noise values; loss_init, loss_ref, loss_floor in the real loss's units; l0 = L0)."""
    x, y = _usable(losses, values)
    if not (math.isfinite(loss_init) and loss_init > loss_floor):
        raise NQMInputError(f"loss_init must exceed the loss floor {loss_floor}, got {loss_init}")
    if not (math.isfinite(l0) and l0 > 0):
        raise NQMInputError(f"l0 (the spectrum's initial loss) must be > 0, got {l0}")
    slope, intercept = np.polyfit(x, y, 1)
    if abs(slope) * np.ptp(x) <= 1e-12 * np.mean(y):         # flat to rounding: constant
        slope, intercept = 0.0, float(np.mean(y))
    at_ref = intercept + slope * loss_ref
    if not at_ref > 0:
        raise NQMInputError(f"the fitted noise line is {at_ref:.3g} <= 0 at the reference "
                            f"train loss {loss_ref:.4g}")
    unit = l0 / (loss_init - loss_floor)
    l_ref = max(unit * (loss_ref - loss_floor), 0.0)
    l_noise = math.inf if slope == 0 else unit * (intercept / slope + loss_floor)
    return NoiseLine(float(slope), float(intercept), int(x.size), float(l_noise), float(l_ref),
                     quantity)


def read_checkpoints(path: str | Path, quantity: str = "trace_sigma"):
    """(train losses, noise values, loss at step 0) of `nqm measure`'s measure.json."""
    try:
        record = json.loads(Path(path).read_text())
        points = record["along_training"]
        losses = [float(p["train_loss"]) for p in points]
        values = [float(p[quantity]) if p.get(quantity) is not None else math.nan
                  for p in points]
        init = [float(p["train_loss"]) for p in points if p.get("step") == 0]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NQMInputError(f"cannot read checkpoints ({quantity}) from {path}: {exc}") from None
    return losses, values, (init[0] if init else None)


def line_from_measure(path: str | Path, l0: float, meta: dict,
                      quantity: str = "trace_sigma") -> NoiseLine:
    """The noise line of a measure.json for a spectrum with metadata `meta` (its train_loss
    is ell_ref, loss_floor and train_loss_init as in the train-loss rule; step 0 of the
    file gives ell_0 when the metadata do not)."""
    losses, values, init = read_checkpoints(path, quantity)
    loss_ref = meta.get("train_loss")
    loss_init = meta.get("train_loss_init", init)
    if loss_ref is None or loss_init is None:
        raise NQMInputError("the noise line needs the spectrum's train_loss and the train loss "
                            "at initialisation (spectrum metadata or a step-0 checkpoint)")
    return fit_noise_line(losses, values, float(loss_init), float(loss_ref), l0,
                          float(meta.get("loss_floor", 0.0)), quantity)
