"""Theory-versus-experiment figures redrawn from the committed records: which files, their
formats, and what the figures show (axes labels and legend entries of the matplotlib objects)."""

import json
from pathlib import Path

import pytest

import figures.calibration
import figures.plots
from figures.record_figures import calibration_figures, check_names, measure_figures
from nqm.errors import NQMInputError
from nqm.records import Measurement, load_calibration, load_measurement

ROOT = Path(__file__).resolve().parents[2]
VALIDATION = ROOT / "figures" / "validation"
MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF"}


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved by figures.calibration, as {file stem: [(xlabel, ylabel, legend
    texts) per axes]} (read before the figure is closed)."""
    seen = {}
    save = figures.calibration._save

    def spy(fig, path):
        seen[Path(path).name] = [(ax.get_xlabel(), ax.get_ylabel(),
                                  [t.get_text() for t in ax.get_legend().get_texts()])
                                 for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(figures.calibration, "_save", spy)
    return seen


def assert_files(paths):
    for p in paths:
        assert p.read_bytes()[:4] == MAGIC[p.suffix], p
        assert p.stat().st_size > 1000, p


@pytest.mark.slow
def test_calibration_figures_of_two_records(tmp_path, drawn):
    files = [load_calibration(VALIDATION / f"mlp-digits-{o}.json") for o in ("sgd", "adam")]
    written = calibration_figures(files, tmp_path)
    stems = ["mlp-digits-sgd", "mlp-digits-sgd-transfer-momentum",
             "mlp-digits-sgd-transfer-adam", "mlp-digits-adam"]
    expected = {f"{s}{x}{suffix}" for s in stems for x in ("", "-examples")
                for suffix in (".png", ".pdf")} | {"bcrit_scatter.png", "bcrit_scatter.pdf"}
    assert {p.name for p in written} == expected == {p.name for p in tmp_path.iterdir()}
    assert_files(written)

    (steps_x, steps_y, steps_legend), (lr_x, lr_y, lr_legend) = drawn["mlp-digits-sgd"]
    assert (steps_x, steps_y, lr_x, lr_y) == ("batch size B", "steps to target",
                                              "batch size B", "lr / (1 - beta)")
    crit = files[0].record["critical_batch_size"]
    assert steps_legend == ["measured: best of n trials (n beside)", "NQM (calibrated)",
                            "fit points", "null: S_min + E_min/B",
                            f"B_crit measured = {crit['measured']['mccandlish']:.3g}",
                            f"B_crit predicted = {crit['predicted']['mccandlish']:.3g}",
                            f"B_crit null model = {crit['null_model']['mccandlish']:.3g}"]
    assert lr_legend == ["measured best trial", "NQM tuned"]
    # a transfer has no fit points and no null model, and says where its fit came from
    transfer_legend = drawn["mlp-digits-sgd-transfer-adam"][0][2]
    assert "NQM (fitted on sgd, no refit)" in transfer_legend
    assert not any("null" in t or "fit points" in t for t in transfer_legend)
    assert drawn["mlp-digits-sgd-examples"] == [(
        "steps to target S", "examples B x S",
        ["measured", "NQM (calibrated)", "perfect scaling"])]
    [(sx, sy, scatter_legend)] = drawn["bcrit_scatter"]
    assert (sx, sy) == ("measured B_crit (mccandlish)", "predicted B_crit")
    assert scatter_legend == ["NQM (fit on ends)", "null hyperbola", "NQM, one run (smallest B)",
                              "NQM transferred from another optimizer", "1:1", "within 2x"]


def test_one_record_without_transfers_has_no_scatter(tmp_path, drawn):
    rec = json.loads((VALIDATION / "linreg-adam.json").read_text())["ends"]
    assert rec["transfer"] == []
    (tmp_path / "a.json").write_text(json.dumps(rec))
    out = tmp_path / "out"
    out.mkdir()
    written = calibration_figures([load_calibration(tmp_path / "a.json")], out)
    assert sorted(p.name for p in written) == ["a-examples.pdf", "a-examples.png", "a.pdf",
                                               "a.png"]
    assert "bcrit_scatter" not in drawn


def test_files_whose_figures_collide_are_refused(tmp_path):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "r.json").write_text((VALIDATION / "linreg-sgd.json").read_text())
    files = [load_calibration(tmp_path / d / "r.json") for d in ("x", "y")]
    with pytest.raises(NQMInputError, match="would write r.png over r.json"):
        check_names(files)
    (tmp_path / "spectrum.json").write_text((VALIDATION / "linreg-adam.json").read_text())
    with pytest.raises(NQMInputError, match="spectrum.png over the shared figures"):
        check_names([load_calibration(tmp_path / "spectrum.json")])
    with pytest.raises(NQMInputError):
        calibration_figures(files, tmp_path)
    assert not list(tmp_path.glob("*.png"))


@pytest.fixture
def measure_drawn(monkeypatch):
    """The figures.plots functions behind measure_figures, recording their arguments."""
    calls = []
    for name in ("measured_spectrum", "noise_along_training"):
        real = getattr(figures.plots, name)

        def spy(*args, _real=real, _name=name, **kw):
            calls.append((_name, Path(args[-1]).name, kw.get("title")))
            return _real(*args, **kw)

        monkeypatch.setattr(f"figures.record_figures.{name}", spy)
    return calls


def test_measure_figures_png_and_pdf(tmp_path, measure_drawn):
    m = load_measurement(ROOT / "figures" / "measure" / "linreg")
    written = measure_figures(m, tmp_path)
    assert [p.name for p in written] == ["spectrum.png", "noise_scale.png", "spectrum.pdf",
                                         "noise_scale.pdf"]
    assert_files(written)
    last = m.along[-1]
    assert measure_drawn[0] == ("measured_spectrum", "spectrum.png",
                                f"linreg at {last['label']} ({last['curvature']})")
    assert measure_drawn[1] == ("noise_along_training", "noise_scale.png", "linreg: noise scale")


def test_measure_figures_of_one_checkpoint_have_no_noise_scale(tmp_path):
    m = load_measurement(ROOT / "figures" / "measure" / "linreg")
    one = Measurement({**m.record, "along_training": m.along[:1]}, m.spectrum)
    assert [p.name for p in measure_figures(one, tmp_path, formats=("png",))] == ["spectrum.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["spectrum.png"]


def test_noise_along_training_draws_each_interval_as_it_is(tmp_path, monkeypatch):
    """An interval that excludes its estimate is drawn where it lies, not mirrored; an open
    upper end runs to the top of the axes and is marked."""
    import numpy as np

    drawn = {}
    monkeypatch.setattr(figures.plots, "_finish", lambda fig, ax, *a: drawn.setdefault("ax", ax))
    points = [{"label": "a", "train_loss": 1.0, "b_simple": 100.0, "b_simple_ci": [50.0, 80.0],
               "b_noise": 200.0, "b_noise_ci": [150.0, None]},
              {"label": "b", "train_loss": 0.5, "b_simple": 10.0, "b_simple_ci": [-1.0, 30.0],
               "b_noise": None, "b_noise_ci": None}]
    figures.plots.noise_along_training(points, tmp_path / "n.png")
    ax = drawn["ax"]
    bottom, top = ax.get_ylim()[0] * 1.1, ax.get_ylim()[1] / 1.1
    assert (bottom, top) == pytest.approx((5.0, 400.0))
    segments = [np.asarray(s) for c in ax.collections for s in c.get_segments()]
    assert [y for s in segments for y in (s[0, 1], s[1, 1])] == pytest.approx(
        [50.0, 80.0, bottom, 30.0, 150.0, top])

    def marked(symbol):
        return [y for line in ax.get_lines() if line.get_marker() == symbol
                for y in line.get_ydata()]
    assert marked("^") == pytest.approx([top]) and marked("v") == pytest.approx([bottom])
