"""Reading back the records that `nqm figures` redraws, as plain JSON (nothing is recomputed).

- A calibration record: the JSON of `nqm calibrate --json` (`nqm.calibrate.calibrate`), whose
  `transfer` list holds the other optimizers predicted without refit; or a file of the
  validation runner (`figures/run_validation.py`), {"ends": record, "one_run": record,
  "zero_run": record or null}, whose "ends" record is drawn and whose "one_run" record adds
  the one-run B_crit to the scatter.
- A measurement directory of `nqm measure`: measure.json (the checkpoints along training, each
  with B_simple = tr(Sigma)/|G|^2 and B_noise = tr(H Sigma)/G'HG of McCandlish et al. 2018 and
  the top eigenpairs) and spectrum.npz (the NQM spectrum of the last checkpoint).

Every malformed file is an NQMInputError naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum
from nqm.spectrum import load as load_spectrum

#: keys of a calibration record (main or transfer) that its figures read
RECORD_KEYS = ("optimizer", "points", "curve", "critical_batch_size")
#: further keys of the main record
MAIN_KEYS = ("workload", "target", "transfer")
POINT_KEYS = ("batch_size", "measured", "used_in_fit", "lr_effective_measured")
CHECKPOINT_KEYS = ("label", "train_loss", "curvature", "b_simple", "b_simple_ci", "b_noise",
                   "b_noise_ci", "top_eigenvalues", "top_noise")


@dataclass(frozen=True)
class CalibrationFile:
    """One calibration file: its name (the file's stem, which names its figures), the record
    drawn and, for a validation-runner file, the one-run record (else None)."""

    name: str
    record: dict
    one_run: dict | None = None


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise NQMInputError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NQMInputError(f"{what} {path} is not valid JSON: {exc}") from None


def _check_record(rec, path: Path, keys: tuple[str, ...], where: str = "") -> None:
    """The record is a dict with `keys`, its points and curve lists of dicts."""
    not_rec = f"{path}{where} is not a calibration record (`nqm calibrate --json`)"
    if not isinstance(rec, dict):
        raise NQMInputError(not_rec)
    missing = [k for k in keys if k not in rec]
    if missing:
        raise NQMInputError(f"{not_rec}: it lacks {', '.join(missing)}")
    for key, need in (("points", POINT_KEYS), ("curve", ("batch_size", "steps", "lr"))):
        rows = rec[key]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise NQMInputError(f"{not_rec}: '{key}' must be a non-empty list of objects")
        gaps = sorted({k for r in rows for k in need if k not in r})
        if gaps:
            raise NQMInputError(f"{not_rec}: '{key}' entries lack {', '.join(gaps)}")
    if not isinstance(rec["critical_batch_size"], dict):
        raise NQMInputError(f"{not_rec}: 'critical_batch_size' must be an object")
    if not isinstance(rec["optimizer"], str) or not re.fullmatch(r"[\w.+-]+", rec["optimizer"]):
        raise NQMInputError(f"{path}{where}: 'optimizer' must be a plain name (it names "
                            f"figure files), not {rec['optimizer']!r}")


def load_calibration(path) -> CalibrationFile:
    """Read and check one calibration file (module docstring)."""
    path = Path(path)
    data = _read_json(path, "calibration file")
    one_run = None
    if isinstance(data, dict) and "ends" in data and "workload" not in data:
        one_run = data.get("one_run")
        data = data["ends"]
        if one_run is not None:
            _check_record(one_run, path, RECORD_KEYS, " ('one_run')")
    _check_record(data, path, RECORD_KEYS + MAIN_KEYS)
    if not isinstance(data["transfer"], list):
        raise NQMInputError(f"{path}: 'transfer' must be a list")
    for i, t in enumerate(data["transfer"]):
        _check_record(t, path, RECORD_KEYS, f" (transfer {i})")
    return CalibrationFile(path.stem, data, one_run)


def mccandlish(record: dict, who: str) -> float | None:
    """The `mccandlish` B_crit = E_min/S_min of `who` (measured, predicted, null_model), or
    None where it is absent, not finite or not positive."""
    value = (record["critical_batch_size"].get(who) or {}).get("mccandlish")
    ok = isinstance(value, int | float) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def scatter_rows(files: list[CalibrationFile]) -> list[dict]:
    """One row per drawn record for `figures.calibration.bcrit_scatter`: the measured B_crit
    against the calibrated NQM's, the null hyperbola's and the one-run NQM's (main records), or
    against the transferred NQM's (transfer records, no refit)."""
    rows = []
    for f in files:
        rec = f.record
        rows.append({"workload": rec["workload"], "optimizer": rec["optimizer"],
                     "bcrit_measured": mccandlish(rec, "measured"),
                     "bcrit_nqm": mccandlish(rec, "predicted"),
                     "bcrit_null": mccandlish(rec, "null_model"),
                     "one_run_bcrit": None if f.one_run is None else
                     mccandlish(f.one_run, "predicted")})
        rows += [{"workload": rec["workload"], "optimizer": t["optimizer"],
                  "bcrit_measured": mccandlish(t, "measured"),
                  "bcrit_transfer": mccandlish(t, "predicted")} for t in rec["transfer"]]
    return rows


@dataclass(frozen=True)
class Measurement:
    """A `nqm measure` directory: its measure.json record and its spectrum.npz, read."""

    record: dict
    spectrum: Spectrum

    @property
    def along(self) -> list[dict]:
        """The checkpoints along training, in order (the last one's spectrum is spectrum.npz)."""
        return self.record["along_training"]


def load_measurement(directory) -> Measurement:
    """Read and check a `nqm measure` output directory (module docstring)."""
    d = Path(directory)
    if not d.is_dir():
        raise NQMInputError(f"measurement directory not found: {d}")
    path = d / "measure.json"
    rec = _read_json(path, "measurement record (measure.json of `nqm measure`)")
    along = rec.get("along_training") if isinstance(rec, dict) else None
    if not isinstance(along, list) or not along or not all(isinstance(p, dict) for p in along):
        raise NQMInputError(f"{path} is not a `nqm measure` record: it needs a non-empty "
                            "'along_training' list")
    gaps = sorted({k for p in along for k in CHECKPOINT_KEYS if k not in p})
    if gaps or "workload" not in rec:
        raise NQMInputError(f"{path} is not a `nqm measure` record: it lacks "
                            f"{', '.join(gaps or ['workload'])}")
    return Measurement(rec, load_spectrum(d / "spectrum.npz"))
