"""The spectrum of a noisy quadratic: curvature, gradient noise and initial distance per direction.

In the eigenbasis of the Hessian the noisy quadratic model (Zhang et al. 2019, arXiv 1907.04164,
section 2) is fully described, direction by direction, by

    h[i]      curvature (Hessian eigenvalue), > 0
    c[i]      per-example gradient-noise variance along the direction, >= 0
              (a batch of size B has noise variance c[i] / B)
    s0[i]     initial second moment E[theta_i(0)^2], >= 0
    count[i]  how many identical directions row i stands for, > 0

so the loss is L(theta) = 1/2 sum_i count[i] h[i] theta_i^2.  `count` lets a binned or measured
density with millions of directions be a few hundred rows.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nqm.errors import NQMInputError

_FIELDS = ("h", "c", "s0", "count")


def _as_vector(name: str, value, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NQMInputError(f"spectrum field '{name}' is not numeric: {exc}") from None
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    if arr.ndim != 1:
        raise NQMInputError(
            f"spectrum field '{name}' must be one-dimensional, got shape {arr.shape}")
    return arr


def _first_bad(name: str, arr: np.ndarray, ok: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        raise NQMInputError(
            f"spectrum field '{name}' {what} at index {i} (value {arr[i]!r}; "
            f"{bad.size} bad entr{'y' if bad.size == 1 else 'ies'} in all)"
        )


@dataclass(frozen=True)
class Spectrum:
    """Immutable per-direction description of a noisy quadratic (see module docstring)."""

    h: np.ndarray
    c: np.ndarray
    s0: np.ndarray
    count: np.ndarray
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        h = _as_vector("h", self.h)
        n = h.size
        if n == 0:
            raise NQMInputError(
                "spectrum field 'h' is empty: a spectrum needs at least one direction")
        arrays = {"h": h}
        for name in ("c", "s0", "count"):
            arrays[name] = _as_vector(name, getattr(self, name), n)
            if arrays[name].size != n:
                raise NQMInputError(
                    f"spectrum field '{name}' has length {arrays[name].size} but 'h' has length {n}"
                )
        for name, arr in arrays.items():
            _first_bad(name, arr, np.isfinite(arr), "is not finite")
        _first_bad("h", h, h > 0, "must be > 0 (the NQM needs positive curvature)")
        _first_bad("c", arrays["c"], arrays["c"] >= 0, "must be >= 0")
        _first_bad("s0", arrays["s0"], arrays["s0"] >= 0, "must be >= 0")
        _first_bad("count", arrays["count"], arrays["count"] > 0, "must be > 0")
        for name, arr in arrays.items():
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    # ----------------------------------------------------------------- derived quantities
    @property
    def n_rows(self) -> int:
        """Number of rows (distinct directions or bins)."""
        return int(self.h.size)

    @property
    def dimension(self) -> float:
        """Number of directions represented, sum(count)."""
        return float(self.count.sum())

    def initial_loss(self) -> float:
        """E L(theta_0) = 1/2 sum_i count_i h_i s0_i."""
        return float(0.5 * np.sum(self.count * self.h * self.s0))

    def noise_scales(self) -> tuple[float, float]:
        """(B_noise, B_simple) of McCandlish et al. 2018 at the initial point, in expectation.

        Sigma = diag(c) and G = H theta_0 with E[theta_0,i^2] = s0_i, so
            B_simple = tr(Sigma) / E|G|^2      = sum c / sum h^2 s0,
            B_noise  = tr(H Sigma) / E[G'HG]   = sum h c / sum h^3 s0
        (sums weighted by count; ratio of expectations).
        """
        w = self.count
        g2 = np.sum(w * self.h**2 * self.s0)
        ghg = np.sum(w * self.h**3 * self.s0)
        if g2 == 0:
            return float("inf"), float("inf")
        b_simple = np.sum(w * self.c) / g2
        b_noise = np.sum(w * self.h * self.c) / ghg
        return float(b_noise), float(b_simple)

    def binned(self, n_bins: int) -> Spectrum:
        """Compress to at most `n_bins` rows by grouping directions into log-spaced bins of h.

        Each bin keeps sum(count) and the count-weighted means of h, c and s0; quantities that
        are linear in (h, c, s0) per direction, such as the initial loss and tr(H Sigma), are
        then exact when h is constant within the bin and approximate otherwise.
        """
        if n_bins < 1:
            raise NQMInputError(f"bins must be >= 1, got {n_bins}")
        if self.n_rows <= n_bins:
            return self
        logh = np.log(self.h)
        edges = np.linspace(logh.min(), logh.max(), n_bins + 1)
        idx = np.clip(np.searchsorted(edges, logh, side="right") - 1, 0, n_bins - 1)
        w = np.bincount(idx, weights=self.count, minlength=n_bins)
        keep = w > 0

        def mean(x):
            return np.bincount(idx, weights=self.count * x, minlength=n_bins)[keep] / w[keep]

        return Spectrum(
            h=mean(self.h), c=mean(self.c), s0=mean(self.s0), count=w[keep],
            meta={**self.meta, "binned_from_rows": self.n_rows, "bins": n_bins},
        )

    def to_dict(self) -> dict:
        """The arrays h, c, s0, count as lists (JSON-ready)."""
        return {name: getattr(self, name).tolist() for name in _FIELDS}

    def save(self, path: str | Path) -> None:
        """Write a `.npz` (arrays plus a JSON `meta` string) or a `.json` file."""
        path = Path(path)
        if path.suffix == ".json":
            path.write_text(json.dumps({**self.to_dict(), "meta": self.meta}))
        else:
            np.savez(path, h=self.h, c=self.c, s0=self.s0, count=self.count,
                     meta=np.array(json.dumps(self.meta)))


# ------------------------------------------------------------------------ memory
FALLBACK_MEMORY = 4 * 2**30      # bytes assumed available when the system does not say
SPECTRUM_BYTES_PER_ROW = 80      # h, c, s0, count and the temporaries of building them


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable of /proc/meminfo, else the free physical
    pages (os.sysconf), else FALLBACK_MEMORY."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return FALLBACK_MEMORY


def working_bytes_per_row(state_size: int) -> int:
    """Peak bytes per spectrum row while the exact loss of an m-state iteration is evaluated
    (m = 1 SGD, 2 momentum, +1 with EMA): the spectrum (64 B), the transition A0, A1 (16 m^2),
    b1, and the modes of `nqm.closed_form.Modes`: logabs, arg, g, q, work (56 m), inv1m
    (16 m^2) and per-row scratch.  Measured peaks are 168, 304, 528 B for m = 1, 2, 3, i.e.
    120 + 4 m + 44 m^2; the tuner's temporaries get a 1.5x margin."""
    m = int(state_size)
    return int(1.5 * (120 + 4 * m + 44 * m * m))


def check_memory(n_bytes: float, what: str, hint: str) -> None:
    """Refuse (NQMInputError) a computation whose arrays need more than the available memory."""
    avail = available_memory()
    if n_bytes > avail:
        raise NQMInputError(f"{what} needs about {n_bytes / 1e9:.3g} GB of memory, more than "
                            f"the {avail / 1e9:.3g} GB available: {hint}")


# ------------------------------------------------------------------------ power law
EXPLICIT_TERMS = 1 << 16   # power sums over i below this are summed term by term


def _power_sum(p: float, a: int, b: int) -> float:
    """sum_{i=a}^{b} i^-p for integers 1 <= a <= b.

    Terms with i < EXPLICIT_TERMS are summed directly; the rest by the Euler-Maclaurin formula
        sum_{i=a}^{b} f(i) = int_a^b f + (f(a) + f(b)) / 2
                             + sum_{k=1}^{3} B_2k / (2k)! (f^(2k-1)(b) - f^(2k-1)(a)),
    f(x) = x^-p, f^(n)(x) = (-1)^n p (p+1) ... (p+n-1) x^(-p-n), whose remainder is below
    p (p+1) ... (p+6) / a^(p+7) relative to a^(1-p): negligible for a >= 2^16.
    """
    total = 0.0
    if a < EXPLICIT_TERMS:
        top = min(b, EXPLICIT_TERMS - 1)
        total += float(np.sum(np.arange(a, top + 1, dtype=np.float64) ** (-p)))
        a = top + 1
        if a > b:
            return total
    fa, fb = float(a), float(b)
    log_ratio = math.log1p((fb - fa) / fa)
    t = (1.0 - p) * log_ratio
    integral = fa ** (1.0 - p) * (log_ratio if t == 0.0 else math.expm1(t) / (1.0 - p))
    em = integral + 0.5 * (fa ** -p + fb ** -p)
    rising = 1.0
    for n, coef in ((1, 1.0 / 12.0), (3, -1.0 / 720.0), (5, 1.0 / 30240.0)):
        rising = p if n == 1 else rising * (p + n - 2) * (p + n - 1)
        # f^(n) for odd n is -rising * x^(-p-n)
        em += coef * (-rising) * (fb ** (-p - n) - fa ** (-p - n))
    return total + em


def _binned_power_law(d: int, alpha: float, noise_scale: float, noise_exponent: float,
                      s0: float, n_bins: int, meta: dict) -> Spectrum:
    """`power_law(...).binned(n_bins)` without building the d directions.

    The bins of `Spectrum.binned` are log-spaced in h = i^-alpha, which falls with i, so each
    bin is a run of consecutive i.  Its ends are found by bisection on i with the same floating
    point bin assignment as `Spectrum.binned` (so the same directions land in the same bins),
    and its count-weighted means are power sums: mean h = sum i^-alpha / n,
    mean c = noise_scale sum i^-(alpha noise_exponent) / n (`_power_sum`), mean s0 = s0.
    Cost: O(n_bins log d) bin assignments and at most EXPLICIT_TERMS explicit terms.
    """
    def log_h(i):
        return np.log(np.asarray(i, dtype=np.float64) ** (-alpha))

    lo_h = float(log_h(d))
    if not np.isfinite(lo_h):
        raise NQMInputError(f"power-law curvature h_i = i^-{alpha:g} underflows to 0 before "
                            f"i = {d}: lower alpha or d")
    edges = np.linspace(lo_h, float(log_h(1)), n_bins + 1)

    def bin_of(i):
        return np.clip(np.searchsorted(edges, log_h(i), side="right") - 1, 0, n_bins - 1)

    # first[k] = smallest i with bin_of(i) <= k (d + 1 if none): bin_of falls with i
    ks = np.arange(n_bins)
    lo = np.ones(n_bins, dtype=np.int64)
    hi = np.full(n_bins, d + 1, dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = bin_of(np.minimum(mid, d)) <= ks
        active = lo < hi
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)
    first = lo
    ends = np.concatenate([[d], first[:-1] - 1])      # bin k holds first[k] .. ends[k]
    rows = []
    for a, b in zip(first.tolist(), ends.tolist()):
        if a <= b:
            n = b - a + 1
            rows.append((_power_sum(alpha, a, b) / n,
                         noise_scale * _power_sum(alpha * noise_exponent, a, b) / n, n))
    h, c, count = (np.array(x, dtype=np.float64) for x in zip(*rows))
    return Spectrum(h=h, c=c, s0=np.full(h.size, float(s0)), count=count,
                    meta={**meta, "binned_from_rows": int(d), "bins": n_bins})


def power_law(d: int = 10_000, alpha: float = 1.0, noise_scale: float = 1.0,
              noise_exponent: float = 1.0, s0: float = 1.0, bins: int | None = None) -> Spectrum:
    """h_i = i^-alpha (i = 1..d), c_i = noise_scale * h_i^noise_exponent, s0_i = s0.

    The defaults are Zhang et al.'s model: d = 10^4, h_i = 1/i, C = H, s0 = 1.
    With `bins`, the d directions are grouped into at most `bins` rows (see `Spectrum.binned`);
    the binned rows are computed from power sums per bin without building the d directions,
    so d may be far larger than memory.  Without `bins`, a d whose arrays would not fit in the
    available memory is refused.
    """
    if not float(d).is_integer() or d < 1:
        raise NQMInputError(f"power-law dimension d must be a positive integer, got {d}")
    for name, value in (("alpha", alpha), ("noise_scale", noise_scale),
                        ("noise_exponent", noise_exponent), ("s0", s0)):
        if not np.isfinite(value):
            raise NQMInputError(f"power-law parameter '{name}' is not finite: {value}")
    if alpha < 0:
        raise NQMInputError(f"power-law exponent alpha must be >= 0, got {alpha}")
    meta = {"source": "power", "d": int(d), "alpha": float(alpha),
            "noise_scale": float(noise_scale), "noise_exponent": float(noise_exponent),
            "s0": float(s0)}
    if bins and int(bins) >= 1 and int(d) > int(bins):
        return _binned_power_law(int(d), float(alpha), float(noise_scale),
                                 float(noise_exponent), float(s0), int(bins), meta)
    check_memory(int(d) * SPECTRUM_BYTES_PER_ROW,
                 f"a power-law spectrum of d = {int(d)} rows",
                 f"bin it, e.g. power:d={int(d)},bins=200")
    h = np.arange(1, int(d) + 1, dtype=np.float64) ** (-float(alpha))
    spec = Spectrum(h=h, c=noise_scale * h**noise_exponent, s0=np.full(h.size, float(s0)),
                    count=np.ones(h.size), meta=meta)
    return spec.binned(int(bins)) if bins else spec


def _short_reason(exc: Exception) -> str:
    """The first line of an exception's message, or the exception's type when it has none;
    a reader's advice to load pickled data instead is replaced by what it means here."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if "pickle" in text.lower():
        return "it holds pickled Python objects, which are not loaded for safety"
    return text or type(exc).__name__


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` file `path` (a zip archive of `.npy` arrays), read without
    unpickling anything.  Raises NQMInputError, one line naming the file and calling it a
    `what` file (e.g. "spectrum"), when it is missing or not a readable archive of arrays."""
    path = Path(path)
    if not path.exists():
        raise NQMInputError(f"{what} file not found: {path}")
    bad = f"{path} is not a readable .npz {what} file"
    if not zipfile.is_zipfile(path):
        raise NQMInputError(f"{bad} (not a zip archive of arrays)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for corrupt archives
        raise NQMInputError(f"{bad} ({_short_reason(exc)})") from None
    with z:
        data = {}
        for key in z.files:
            try:
                data[key] = z[key]
            except Exception as exc:   # object arrays, corrupt members
                raise NQMInputError(f"{bad} (array '{key}': {_short_reason(exc)})") from None
    return data


def load(path: str | Path) -> Spectrum:
    """Read a spectrum from `.npz` or `.json` with arrays h, c, s0 and optional count."""
    path = Path(path)
    if not path.exists():
        raise NQMInputError(f"spectrum file not found: {path}")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NQMInputError(f"spectrum file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise NQMInputError(f"spectrum file {path} must hold a JSON object with h, c, s0")
        meta = data.get("meta", {}) if isinstance(data.get("meta", {}), dict) else {}
    elif path.suffix == ".npz":
        data = read_npz(path, "spectrum")
        meta = {}
        if "meta" in data:
            try:
                meta = json.loads(str(data.pop("meta")))
            except json.JSONDecodeError:
                meta = {}
    else:
        raise NQMInputError(f"spectrum file {path} must end in .npz or .json")
    missing = [k for k in ("h", "c", "s0") if k not in data]
    if missing:
        raise NQMInputError(f"spectrum file {path} lacks field(s) {', '.join(missing)}")
    count = data.get("count", np.ones(np.size(data["h"])))
    return Spectrum(h=data["h"], c=data["c"], s0=data["s0"], count=count,
                    meta={**meta, "source": str(path)})


_POWER_KEYS = {"d": int, "alpha": float, "noise_scale": float, "noise_exponent": float,
               "s0": float, "bins": int}


def parse_spec(spec: str) -> Spectrum:
    """Parse `power:d=10000,alpha=1[,noise_scale=..,noise_exponent=..,s0=..,bins=..]` or a path."""
    if spec.startswith("power"):
        body = spec[len("power"):].lstrip(":")
        kwargs = {}
        for part in filter(None, (p.strip() for p in body.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in _POWER_KEYS:
                raise NQMInputError(
                    f"bad power-law spectrum option '{part}'; expected key=value with key in "
                    f"{', '.join(_POWER_KEYS)}"
                )
            try:
                kwargs[key] = _POWER_KEYS[key](float(value))
            except ValueError:
                raise NQMInputError(
                    f"power-law option '{key}' has a non-numeric value '{value}'") from None
        return power_law(**kwargs)
    return load(spec)
