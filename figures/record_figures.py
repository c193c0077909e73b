"""Theory-versus-experiment figures redrawn from records (`nqm figures --calibration/--measure`,
and the figures of `nqm measure`); nothing is tuned or measured here.

Per calibration file NAME.json (`nqm.records.load_calibration`):
  NAME.png|pdf            measured steps (trial counts beside), the calibrated NQM, the null
                          hyperbola S_min + E_min/B (McCandlish et al. 2018), the fit points and
                          the critical batch sizes; beside it lr/(1 - beta), measured and NQM;
  NAME-examples.png|pdf   examples B*S against steps S (Shallue et al. 2019, Figure 1);
  NAME-transfer-OPT.*     the same two for every optimizer predicted without refit;
and, over two or more records, bcrit_scatter.png|pdf: predicted against measured B_crit.
Per measurement directory: spectrum.* and, with two or more checkpoints, noise_scale.*.
"""

from __future__ import annotations

from pathlib import Path

from figures.calibration import bcrit_scatter, calibration_figure, examples_figure
from figures.plots import measured_spectrum, noise_along_training
from nqm.errors import NQMInputError
from nqm.records import CalibrationFile, Measurement, scatter_rows

#: names of the figures that are not per calibration file
SHARED_NAMES = ("bcrit_scatter", "spectrum", "noise_scale")


def _drawn(files: list[CalibrationFile]) -> list[tuple[str, dict, str, str]]:
    """(figure name, record, title, label of the NQM curve) of every record to draw: each
    file's main record, then its transfer records."""
    out = []
    for f in files:
        rec = f.record
        out.append((f.name, rec, f"{rec['workload']}, {rec['optimizer']}", "NQM (calibrated)"))
        out += [(f"{f.name}-transfer-{t['optimizer']}", t,
                 f"{rec['workload']}, {t['optimizer']} (from {rec['optimizer']}, no refit)",
                 f"NQM (fitted on {rec['optimizer']}, no refit)") for t in rec["transfer"]]
    return out


def check_names(files: list[CalibrationFile]) -> None:
    """Refuse files whose figures would overwrite each other's or the shared figures."""
    seen = {}
    for f in files:
        for name, *_ in _drawn([f]):
            for n in (name, f"{name}-examples"):
                if n in SHARED_NAMES or n in seen:
                    other = seen.get(n, "the shared figures")
                    raise NQMInputError(f"calibration file {f.name}.json would write {n}.png "
                                        f"over {other}: give the files different names")
                seen[n] = f"{f.name}.json"


def calibration_figures(files: list[CalibrationFile], out: Path) -> list[Path]:
    """Every figure of the module docstring for the calibration files, written into `out`
    (which must exist); the B_crit scatter only where two or more records have a measured
    B_crit.  Returns the paths written."""
    check_names(files)
    written = []
    for name, rec, title, label in _drawn(files):
        written += calibration_figure(rec, out / name, title, label)
        written += examples_figure(rec, out / f"{name}-examples", title, label)
    rows = [r for r in scatter_rows(files) if r["bcrit_measured"] is not None]
    if len(rows) >= 2:
        written += bcrit_scatter(rows, out / "bcrit_scatter")
    return written


def measure_figures(measurement: Measurement, out: Path,
                    formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """The measured spectrum of the last checkpoint (spectrum.*) and, with two or more
    checkpoints, B_simple and B_noise along training (noise_scale.*), in each of `formats`.
    Returns the paths written."""
    along, workload = measurement.along, measurement.record["workload"]
    spectrum = measurement.spectrum
    last = along[-1]
    written = []
    for fmt in formats:
        path = out / f"spectrum.{fmt}"
        measured_spectrum(last, spectrum, path,
                          title=f"{workload} at {last['label']} ({last['curvature']})")
        written.append(path)
        if len(along) > 1:
            path = out / f"noise_scale.{fmt}"
            noise_along_training(along, path, title=f"{workload}: noise scale")
            written.append(path)
    return written
