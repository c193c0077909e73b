"""Learning-rate schedules: multipliers m_t of the peak learning rate, lr_t = lr * m_t.

For a run of horizon T steps with w = round(warmup * T) warm-up steps:
    t < w:        m_t = (t + 1) / w                                   (linear warm-up)
    otherwise u = (t - w) / (T - w - 1) in [0, 1] (the last step of the horizon has u = 1) and
        constant      m_t = 1
        linear        m_t = 1 - (1 - final) u
        cosine        m_t = final + (1 - final) (1 + cos(pi u)) / 2
        piecewise     m_t = factor of the last boundary b_j <= u (1 before the first)
Steps at or past T keep the last value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nqm.errors import NQMInputError

SHAPES = ("constant", "linear", "cosine", "piecewise")


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule m_t (module docstring): `shape`, `warmup` fraction of the
    horizon, `final` fraction, and for `piecewise` the `boundaries` u_j with their `factors`;
    checked on construction (NQMInputError naming the field)."""

    shape: str = "constant"
    warmup: float = 0.0
    final: float = 0.0
    boundaries: tuple[float, ...] = ()
    factors: tuple[float, ...] = ()

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise NQMInputError(f"schedule must be one of {', '.join(SHAPES)}, got '{self.shape}'")
        if not 0.0 <= self.warmup < 1.0:
            raise NQMInputError(f"schedule warm-up fraction must be in [0, 1), got {self.warmup}")
        if not 0.0 <= self.final <= 1.0:
            raise NQMInputError(f"schedule final fraction must be in [0, 1], got {self.final}")
        if len(self.boundaries) != len(self.factors):
            raise NQMInputError("piecewise schedule needs one factor per boundary")
        if self.shape == "piecewise" and not self.boundaries:
            raise NQMInputError(
                "piecewise schedule needs boundaries, e.g. piecewise:0.5=0.1,0.8=0.01")
        if list(self.boundaries) != sorted(self.boundaries) or any(
                not 0.0 < b < 1.0 for b in self.boundaries):
            raise NQMInputError("piecewise boundaries must be increasing fractions in (0, 1)")
        if any(not (f >= 0.0 and np.isfinite(f)) for f in self.factors):
            raise NQMInputError("piecewise factors must be finite and >= 0")

    @property
    def is_constant(self) -> bool:
        """Whether m_t = 1 for every t (constant shape, no warm-up)."""
        return self.shape == "constant" and self.warmup == 0.0

    def multipliers(self, horizon: int, n_steps: int | None = None) -> np.ndarray:
        """m_t for t = 0 .. n_steps - 1 (default n_steps = horizon)."""
        horizon = max(int(horizon), 1)
        n = horizon if n_steps is None else int(n_steps)
        t = np.arange(n, dtype=np.float64)
        w = int(round(self.warmup * horizon))
        u = np.clip((t - w) / max(horizon - w - 1, 1), 0.0, 1.0)
        if self.shape == "constant":
            m = np.ones(n)
        elif self.shape == "linear":
            m = 1.0 - (1.0 - self.final) * u
        elif self.shape == "cosine":
            m = self.final + (1.0 - self.final) * 0.5 * (1.0 + np.cos(np.pi * u))
        else:
            idx = np.searchsorted(np.asarray(self.boundaries), u, side="right")
            m = np.concatenate([[1.0], self.factors])[idx]
        if w > 0:
            m = np.where(t < w, (t + 1.0) / w, m)
        return m

    def describe(self) -> str:
        """A short text, e.g. 'cosine(final=0.1)+warmup(0.05)'."""
        s = self.shape
        if self.shape in ("linear", "cosine"):
            s += f"(final={self.final:g})"
        if self.shape == "piecewise":
            pairs = zip(self.boundaries, self.factors)
            s += "(" + ",".join(f"{b:g}={f:g}" for b, f in pairs) + ")"
        if self.warmup:
            s += f"+warmup({self.warmup:g})"
        return s


def parse_schedule(text: str, warmup: float = 0.0, final: float = 0.0) -> Schedule:
    """'constant' | 'linear' | 'cosine' | 'piecewise:0.5=0.1,0.8=0.01' (fraction=factor)."""
    shape, _, body = text.partition(":")
    bounds, facs = [], []
    if body:
        if shape != "piecewise":
            raise NQMInputError(f"schedule '{shape}' takes no ':' options")
        for part in body.split(","):
            b, sep, f = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                bounds.append(float(b))
                facs.append(float(f))
            except ValueError:
                raise NQMInputError(
                    f"bad piecewise schedule entry '{part}': expected fraction=factor") from None
    return Schedule(shape=shape, warmup=warmup, final=final, boundaries=tuple(bounds),
                    factors=tuple(facs))
