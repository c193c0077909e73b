"""run_validation's --from-records and the calibration figure with unreached curve points."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "figures/validation/loss-following"


def test_from_records_summarises_without_calibrating(tmp_path):
    for o in ("sgd", "momentum", "adam"):
        shutil.copy(RECORDS / f"logreg-digits-{o}.json", tmp_path)
    out = subprocess.run([sys.executable, "-m", "figures.run_validation", "--from-records",
                          "--workloads", "logreg-digits", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "| logreg-digits | sgd |" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["optimizer"] for r in summary] == ["sgd", "momentum", "adam"]
    ends = json.loads((tmp_path / "logreg-digits-sgd.json").read_text())["ends"]
    assert summary[0]["nqm_worst"] == ends["error"]["nqm_worst"]
    assert ends["noise"]["model"] == "loss-following"


def test_calibration_figure_skips_unreached_curve_points(tmp_path):
    from figures.calibration import calibration_figure

    rec = json.loads((RECORDS / "logreg-digits-sgd.json").read_text())["ends"]
    rec["curve"][0].update(steps=None, lr=None, momentum=None)
    written = calibration_figure(rec, tmp_path / "c", "logreg-digits, sgd")
    assert all(p.stat().st_size > 1000 for p in written)
