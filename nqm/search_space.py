"""Bounds and grid sizes of the per-batch-size metaparameter search (`nqm.tuning`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the search, in the coordinates of `nqm.tuning`'s module docstring."""

    lr_ratio: tuple[float, float] = (1e-8, 1.0 - 1e-6)
    one_minus_momentum: tuple[float, float] = (1e-4, 1.0)
    one_minus_ema: tuple[float, float] = (1e-7, 1.0)   # small B wants ~whole-run averages
    horizon_min: int = 4
    grid_lr: int = 17
    grid_other: int = 6
    stability_edge: float = 0.97    # lr / limit above this: the stability limit binds
    edge_factor: float = 1.05       # within this factor of another bound: at the edge
