"""The one adapter from a measurement to the NQM engine's spectrum (`nqm.spectrum.Spectrum`).

Rows of the spectrum:
- top directions: one row each with h = lambda_i, c = v_i' Sigma v_i, s0 = (v_i' d)^2, where
  d = theta_init - theta_ref; directions with lambda_i <= h_floor are dropped (see below);
- bulk: the SLQ density of the curvature on the complement of the top-k directions, histogram
  on `bins` log-spaced bins over (h_floor, largest bulk node]; a bin's count is its expected
  number of eigenvalues, its h the bin's geometric centre.

Negative and near-zero curvature.  The NQM needs h > 0.  Directions (top or bulk) with
h <= h_floor = floor * lambda_max are dropped and the dropped number of directions is recorded
in the metadata (`dropped_directions`).  With the Hessian these include its negative
eigenvalues; the Gauss-Newton option (`--curvature ggn`) is positive semi-definite, so only
(near-)null directions are dropped.

Bulk noise and distance (the assumptions, stated).
- Noise: the bulk keeps the remaining noise C_b = tr(Sigma) - sum_i c_i and curvature-weighted
  noise T_b = tr(A Sigma) - sum_i lambda_i c_i, spread as c(h) = a h^q over the bulk bins, with
  (a, q) solved so that both remainders are matched exactly (q is clipped to [-2, 4]; when
  T_b <= 0, q = 1, i.e. Sigma proportional to A in the bulk, the NQM paper's C = H).
- Distance: the remaining |d|^2 - sum_i s0_i is spread evenly over the P - k bulk directions
  (isotropic displacement outside the top directions).

The displacement from the measured point itself (`here_spectrum`): the same rows with s0 from
d_here = theta - theta_ref, s0_i = (v_i' d_here)^2 on the top directions and the remaining
|d_here|^2 - sum_i s0_i spread evenly over the bulk, as above (`nqm measure` records both).

The dropped directions as one slow row instead (`nqm.slow_row`, `spectrum_with_slow_row`): the
metadata carry what it needs (`h_floor`, `dropped_directions`, `bulk_noise_exponent` and
`displacement_sq` = |d|^2; spectra written before `displacement_sq` was recorded take it from the
`measure.json` beside them).

The path model's chain of checkpoint spectra (`path_from_measure`, `nqm.path`): every checkpoint
of a measurement but the last as `here_spectrum`, the last (where the reference run first
meets the target) the reference point theta_ref.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from empirical.measure import Measurement
from nqm.errors import NQMInputError
from nqm.path import LossPath, path_from_checkpoints
from nqm.slow_row import SlowRowConfig, needed_metadata, with_slow_row
from nqm.spectrum import (
    Spectrum,
    read_npz,  # noqa: F401  (the custom workload's data file, safely)
)
from nqm.spectrum import load as load_spectrum  # noqa: F401  (the measure pipeline reads back)

Q_RANGE = (-2.0, 4.0)


def _bulk_noise_exponent(h: np.ndarray, n: np.ndarray, c_rem: float, t_rem: float) -> float:
    """q with sum n h^(q+1) / sum n h^q = t_rem / c_rem (monotone in q), clipped to Q_RANGE."""
    from scipy.optimize import brentq

    if c_rem <= 0 or t_rem <= 0:
        return 1.0
    logh = np.log(h)
    scale = np.exp(logh.mean())

    def gap(q):
        w = n * np.exp(q * (logh - logh.mean()))
        return np.log(np.sum(w * h) / np.sum(w) / scale) - np.log(t_rem / c_rem / scale)

    lo, hi = Q_RANGE
    if gap(lo) >= 0:
        return lo
    if gap(hi) <= 0:
        return hi
    return float(brentq(gap, lo, hi, xtol=1e-10))


def target_fraction_rule(loss_init: float, loss_ref: float, floor: float = 0.0) -> float | None:
    """f0 = (l_T - l_floor) / (l_0 - l_floor): the fraction of the real training loss above its
    floor that is left where the spectrum was measured; the NQM's target is then f0 times the
    spectrum's initial loss 1/2 sum count h s0 (None when f0 is not in (0, 1))."""
    f0 = (loss_ref - floor) / (loss_init - floor) if loss_init > floor else float("nan")
    return float(f0) if 0.0 < f0 < 1.0 else None


def to_spectrum(m: Measurement, bins: int = 60, floor: float = 1e-6,
                meta: dict | None = None, loss_init: float | None = None,
                loss_floor: float = 0.0) -> Spectrum:
    """The NQM spectrum of a measurement (see the module docstring).  With `loss_init` (the
    training loss at the initialisation) the metadata carry `target_fraction`, the train-loss
    rule that `nqm predict` uses as its target when none is given."""
    lam_max = float(max(m.eigenvalues.max(), m.bulk.nodes.max()))
    if lam_max <= 0:
        raise ValueError("the measured curvature has no positive eigenvalue; the NQM needs h > 0")
    h_floor = floor * lam_max
    keep = m.eigenvalues > h_floor
    k = m.eigenvalues.size
    bulk_dim = m.bulk.dimension

    top_hi = float(m.bulk.nodes.max())
    edges = np.geomspace(h_floor, max(top_hi, h_floor * 1.01), bins + 1)
    counts = m.bulk.histogram(edges)
    centres = np.sqrt(edges[:-1] * edges[1:])
    has = counts > 1e-9 * bulk_dim
    counts, centres = counts[has], centres[has]

    c_rem = m.noise.trace_sigma - float(m.c_top.sum())
    t_rem = m.noise.trace_h_sigma - float(np.sum(m.eigenvalues * m.c_top))
    q = _bulk_noise_exponent(centres, counts, c_rem, t_rem) if counts.size else 1.0
    shape = centres**q
    c_bulk = max(c_rem, 0.0) * shape / np.sum(counts * shape) if counts.size else shape
    h = np.concatenate([m.eigenvalues[keep], centres])
    c = np.concatenate([m.c_top[keep], c_bulk])
    s0 = _s0_rows(m.s0_top[keep], m.displacement_sq - float(m.s0_top.sum()), bulk_dim,
                  centres.size)
    count = np.concatenate([np.ones(int(keep.sum())), counts])
    dropped = max(float((k - keep.sum()) + (bulk_dim - counts.sum())), 0.0)
    return Spectrum(h=h, c=c, s0=s0, count=count, meta={
        **(meta or {}), "source": "measured", "checkpoint": m.label, "step": m.step,
        "seed": m.config.seed, "k": int(k), "curvature": m.config.kind,
        "method": "Lanczos top-k + SLQ bulk (deflated) + per-example gradients",
        "n_params": m.dim, "n_examples": m.n_examples, "h_floor": h_floor,
        "dropped_directions": dropped, "displacement_sq": float(m.displacement_sq),
        "bulk_noise_exponent": q, "bulk_bins": int(centres.size),
        "metric": float(m.metric) if np.isfinite(m.metric) else None,
        "train_loss": float(m.train_loss), "loss_floor": loss_floor,
        **({} if loss_init is None else {
            "train_loss_init": float(loss_init),
            "target_fraction": target_fraction_rule(loss_init, m.train_loss, loss_floor)})})


def _s0_rows(s0_kept: np.ndarray, rest_sq: float, bulk_dim: int, bulk_rows: int) -> np.ndarray:
    """s0 of the rows: the kept top directions' own, then the remainder |d|^2 - sum_i s0_i
    (over all k top directions) spread evenly over the bulk's directions."""
    s0_bulk = max(rest_sq, 0.0) / max(bulk_dim, 1)
    return np.concatenate([np.asarray(s0_kept, dtype=np.float64), np.full(bulk_rows, s0_bulk)])


def here_spectrum(spectrum: Spectrum, point: dict) -> Spectrum:
    """The spectrum of one checkpoint (`to_spectrum`'s rows, as saved) with s0 from the
    displacement d_here = theta - theta_ref of the checkpoint itself instead of the
    initialisation's (module docstring); `point` is the checkpoint's entry of measure.json's
    `along_training` (top_eigenvalues, top_s0_here, displacement_here_sq, n_params)."""
    label = point.get("label")
    if point.get("top_s0_here") is None or point.get("displacement_here_sq") is None:
        raise NQMInputError(f"checkpoint {label!r} has no displacement from itself to the "
                            f"reference (measured before it was recorded): rerun nqm measure")
    lam = np.asarray(point["top_eigenvalues"], dtype=np.float64)
    s0_top = np.asarray(point["top_s0_here"], dtype=np.float64)
    keep = lam > float(spectrum.meta.get("h_floor", 0.0))
    n_top = int(keep.sum())
    if lam.size != s0_top.size or n_top > spectrum.n_rows or not np.allclose(
            spectrum.h[:n_top], lam[keep], rtol=1e-9, atol=0.0):
        raise NQMInputError(f"checkpoint {label!r}: its spectrum file's top rows are not the "
                            f"eigenvalues recorded in measure.json")
    s0 = _s0_rows(s0_top[keep], float(point["displacement_here_sq"]) - float(s0_top.sum()),
                  int(point["n_params"]) - lam.size, spectrum.n_rows - n_top)
    return Spectrum(h=spectrum.h, c=spectrum.c, s0=s0, count=spectrum.count,
                    meta={**spectrum.meta, "displacement": "here",
                          "displacement_sq": float(point["displacement_here_sq"])})


def _measure_points(path: str | Path, what: str) -> list[dict]:
    """The checkpoints of the `measure.json` beside the spectrum file at `path` (a one-line
    error naming `what` was to be taken from it when it cannot be read)."""
    record = Path(path).parent / "measure.json"
    try:
        return list(json.loads(record.read_text())["along_training"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NQMInputError(f"{path}: no {what} in its metadata and no readable {record} to "
                            f"take it from") from None


def displacement_sq(spectrum: Spectrum, path: str | Path) -> float:
    """|theta_init - theta_ref|^2 of a measured spectrum: its metadata, else the point of the
    `measure.json` beside the file whose label is the spectrum's checkpoint."""
    if spectrum.meta.get("displacement_sq") is not None:
        return float(spectrum.meta["displacement_sq"])
    label = spectrum.meta.get("checkpoint")
    found = [p.get("displacement_sq") for p in _measure_points(path, "displacement_sq")
             if p.get("label") == label]
    if not found or found[0] is None:
        raise NQMInputError(f"{Path(path).parent / 'measure.json'} has no displacement_sq for "
                            f"checkpoint {label!r}")
    return float(found[0])


def loss_floor(meta: dict) -> float:
    """The training loss's floor of a measured spectrum: its metadata, else the workload's
    (`empirical.catalog`; spectra measured before the floor was recorded), else 0."""
    from empirical.catalog import CATALOG

    if meta.get("loss_floor") is not None:
        return float(meta["loss_floor"])
    info = CATALOG.get(str(meta.get("workload")))
    return info.loss_floor if info is not None else 0.0


def loss_drop(spectrum: Spectrum, path: str | Path) -> float:
    """ell_0 - ell_floor of the loss-matched noise scale (`nqm.noise_units`): the initial
    training loss from the spectrum's metadata, else from the 'init' checkpoint of the
    `measure.json` beside the file; the floor from the metadata, else the workload's
    (`empirical.catalog`)."""
    floor = loss_floor(spectrum.meta)
    init = spectrum.meta.get("train_loss_init")
    if init is None:
        found = [p.get("train_loss") for p in _measure_points(path, "train_loss_init")
                 if p.get("label") == "init"]
        if not found or found[0] is None:
            raise NQMInputError(f"{path}: the loss-matched noise scale needs the initial "
                                f"training loss, and neither its metadata nor "
                                f"{Path(path).parent / 'measure.json'} has it (measure with "
                                f"--at-step 0)")
        init = found[0]
    return float(init) - float(floor)


def spectrum_with_slow_row(path: str | Path, h_factor: float = 1.0) -> Spectrum:
    """The measured spectrum at `path` with its dropped directions as one slow row
    (`nqm.slow_row.with_slow_row`, h_slow = h_factor * h_floor)."""
    spectrum = load_spectrum(path)
    needed_metadata(spectrum.meta)
    return with_slow_row(spectrum, SlowRowConfig(displacement_sq(spectrum, path), h_factor))


def path_from_measure(directory: str | Path) -> tuple[LossPath, Spectrum]:
    """The path model's chain (`nqm.path`) from a `nqm measure` directory with two or more
    checkpoints of the reference run, and the spectrum at its last checkpoint, the reference
    point (which names the workload and the metric there).  Segment j is checkpoint j's
    spectrum with s0 from theta_j - theta_ref (`here_spectrum`); the train losses l_j and the
    workload's loss floor give the fractions r_j."""
    directory = Path(directory)
    record = directory / "measure.json"
    try:
        along = json.loads(record.read_text())["along_training"]
        if not isinstance(along, list) or not all(
                isinstance(p, dict) and isinstance(p.get("label"), str)
                and isinstance(p.get("step"), int) and isinstance(p.get("train_loss"), int | float)
                and isinstance(p.get("n_params"), int) for p in along):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise NQMInputError(f"{directory}: no readable measure.json whose along_training lists "
                            f"checkpoints (label, step, train_loss, n_params): a `nqm measure` "
                            f"output directory") from None
    if len(along) < 2:
        raise NQMInputError(f"{directory}: the path model needs two or more checkpoints of the "
                            f"reference run, found {len(along)} (measure with --at-step "
                            f"0,... --at-target)")
    early = [p for p in along[:-1] if p["label"] == "target"]
    if early:
        raise NQMInputError(f"{directory}: the run reached the target at step {early[0]['step']}, "
                            f"before checkpoint step {along[-1]['step']}, so the chain would run "
                            f"past it: measure with --at-step below the target's step")
    files = [directory / f"spectrum_{p['label'].replace(' ', '_')}.npz" for p in along]
    for f in files:
        if not f.exists():
            raise NQMInputError(f"{directory}: {f.name} is missing")
    reference = load_spectrum(files[-1])
    workload = reference.meta.get("workload")
    spectra = []
    for p, f in zip(along[:-1], files[:-1]):
        sp = load_spectrum(f)
        if sp.meta.get("workload") != workload:
            raise NQMInputError(f"{f}: workload '{sp.meta.get('workload')}', not the reference "
                                f"point's '{workload}'")
        try:
            spectra.append(here_spectrum(sp, p))
        except NQMInputError as exc:
            raise NQMInputError(f"{directory}: {exc}") from None
    path = path_from_checkpoints(spectra, [p["train_loss"] for p in along],
                                 loss_floor(reference.meta),
                                 [p["label"] for p in along[:-1]],
                                 [p["step"] for p in along[:-1]])
    return path, reference
