"""Reading back calibration records and measurement directories for `nqm figures` (plain JSON),
checked against the committed validation summary and on malformed files."""

import json
import math
from pathlib import Path

import pytest

from nqm.errors import NQMInputError
from nqm.records import load_calibration, load_measurement, mccandlish, scatter_rows

ROOT = Path(__file__).resolve().parents[2]
VALIDATION = ROOT / "figures" / "validation"
MEASURE = ROOT / "figures" / "measure"


def ends_only(tmp_path, name="linreg-sgd"):
    """The 'ends' record of a committed validation file, written alone as `nqm calibrate
    --json` writes it."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(json.loads((VALIDATION / f"{name}.json").read_text())["ends"]))
    return path


def test_validation_file_gives_its_ends_and_one_run_records():
    data = json.loads((VALIDATION / "linreg-sgd.json").read_text())
    f = load_calibration(VALIDATION / "linreg-sgd.json")
    assert f.name == "linreg-sgd"
    assert f.record == data["ends"] and f.one_run == data["one_run"]
    assert [t["optimizer"] for t in f.record["transfer"]] == ["momentum", "adam"]


def test_calibrate_record_is_read_as_written(tmp_path):
    f = load_calibration(ends_only(tmp_path))
    assert f.one_run is None and f.record["workload"] == "linreg"


def test_scatter_rows_equal_the_validation_runners_summary():
    """The rows drawn from the committed per-pair files equal the runner's own summary."""
    summary = json.loads((VALIDATION / "summary.json").read_text())
    files = [load_calibration(VALIDATION / f"{r['workload']}-{r['optimizer']}.json")
             for r in summary]
    rows = scatter_rows(files)
    main = [r for r in rows if "bcrit_nqm" in r]
    keys = ("workload", "optimizer", "bcrit_measured", "bcrit_nqm", "bcrit_null",
            "one_run_bcrit")
    assert [{k: r[k] for k in keys} for r in main] == [{k: s[k] for k in keys} for s in summary]
    transfers = [r for r in rows if "bcrit_transfer" in r]
    assert len(transfers) == sum(len(f.record["transfer"]) for f in files) > 0
    assert all(set(r) == {"workload", "optimizer", "bcrit_measured", "bcrit_transfer"}
               for r in transfers)


@pytest.mark.parametrize("value, expected", [(120.5, 120.5), (None, None), (math.inf, None),
                                             (-3.0, None), (0.0, None), ("12", None)])
def test_mccandlish_keeps_only_finite_positive_values(value, expected):
    rec = {"critical_batch_size": {"measured": {"mccandlish": value}, "null_model": None}}
    assert mccandlish(rec, "measured") == expected
    assert mccandlish(rec, "null_model") is None and mccandlish(rec, "predicted") is None


def _broken(tmp_path, edit):
    rec = json.loads(ends_only(tmp_path).read_text())
    edit(rec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rec))
    return path


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r.pop("curve"), "lacks curve"),
    (lambda r: r.pop("workload"), "lacks workload"),
    (lambda r: r.update(points=[]), "'points' must be a non-empty list"),
    (lambda r: r["points"][0].pop("measured"), "'points' entries lack measured"),
    (lambda r: r["curve"][1].pop("lr"), "'curve' entries lack lr"),
    (lambda r: r.update(critical_batch_size=3), "'critical_batch_size' must be an object"),
    (lambda r: r.update(transfer={}), "'transfer' must be a list"),
    (lambda r: r["transfer"][1].pop("points"), "(transfer 1) is not a calibration record"),
    (lambda r: r["transfer"][0].update(optimizer="../x"), "(transfer 0): 'optimizer' must be a "
                                                           "plain name"),
    (lambda r: r.update(optimizer=3), "'optimizer' must be a plain name"),
])
def test_malformed_record_names_what_is_wrong(tmp_path, edit, needle):
    with pytest.raises(NQMInputError, match="bad.json") as exc:
        load_calibration(_broken(tmp_path, edit))
    assert needle in str(exc.value)


@pytest.mark.parametrize("content, needle", [
    (None, "calibration file not found"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "is not a calibration record"),
    ('{"ends": 3, "one_run": null}', "is not a calibration record"),
])
def test_unreadable_calibration_file(tmp_path, content, needle):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NQMInputError, match=needle):
        load_calibration(path)


def test_validation_summary_is_not_a_calibration_record():
    with pytest.raises(NQMInputError, match="summary.json is not a calibration record"):
        load_calibration(VALIDATION / "summary.json")


def test_measurement_directory():
    m = load_measurement(MEASURE / "linreg")
    data = json.loads((MEASURE / "linreg" / "measure.json").read_text())
    assert m.record == data and m.along == data["along_training"] and len(m.along) > 1
    assert m.spectrum.meta["source"] == str(MEASURE / "linreg" / "spectrum.npz")
    assert m.spectrum.n_rows == data["spectrum_rows"]


@pytest.mark.parametrize("setup, needle", [
    (lambda d: None, "measurement record (measure.json of `nqm measure`) not found"),
    (lambda d: (d / "measure.json").write_text("{"), "is not valid JSON"),
    (lambda d: (d / "measure.json").write_text('{"workload": "x", "along_training": []}'),
     "needs a non-empty 'along_training' list"),
    (lambda d: (d / "measure.json").write_text(
        '{"workload": "x", "along_training": [{"label": "init"}]}'), "it lacks b_noise"),
    (lambda d: (d / "measure.json").write_text(
        (MEASURE / "linreg" / "measure.json").read_text()), "spectrum file not found"),
    (lambda d: [(d / "measure.json").write_text((MEASURE / "linreg" / "measure.json").read_text()),
                (d / "spectrum.npz").write_bytes(b"not a zip")], "spectrum.npz"),
])
def test_unreadable_measurement_directory(tmp_path, setup, needle):
    setup(tmp_path)
    with pytest.raises(NQMInputError) as exc:
        load_measurement(tmp_path)
    assert needle in str(exc.value)


def test_missing_measurement_directory(tmp_path):
    with pytest.raises(NQMInputError, match="measurement directory not found"):
        load_measurement(tmp_path / "nowhere")
