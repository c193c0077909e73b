"""Bounds and grid sizes of the per-batch-size metaparameter search (`nqm.tuning`).

The bounds are where the search starts: an optimum found on the lower learning-rate bound or
on the upper momentum / EMA bound (1 - beta, 1 - gamma smallest) widens that bound by
`WIDEN_FACTOR` and searches again, down to the floors below, so an edge is flagged only where
the optimum sits on a floor (or on the stability limit, or at beta = 0 / gamma = 0, which are
bounds of the model itself)."""

from __future__ import annotations

from dataclasses import dataclass

WIDEN_FACTOR = 1e3          # each widening moves a binding bound this factor outwards
LR_RATIO_FLOOR = 1e-16      # lr / lr_limit is never searched below this
ONE_MINUS_FLOOR = 1e-9      # 1 - beta and 1 - gamma are never searched below this (closer to
                            # 1, eigenvalues 1 - beta apart lose accuracy in the closed form)


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the search, in the coordinates of `nqm.tuning`'s module docstring."""

    lr_ratio: tuple[float, float] = (1e-8, 1.0 - 1e-6)
    one_minus_momentum: tuple[float, float] = (1e-7, 1.0)
    one_minus_ema: tuple[float, float] = (1e-7, 1.0)   # small B wants ~whole-run averages
    horizon_min: int = 4
    grid_lr: int = 17
    grid_other: int = 8
    stability_edge: float = 0.97    # lr / limit above this: the stability limit binds
    edge_factor: float = 1.05       # within this factor of another bound: at the edge
