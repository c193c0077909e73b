"""The sweep protocol and `nqm sweep`: determinism, resume after a kill, widening, divergence."""

import json
import os
import subprocess
import sys
import time

from click.testing import CliRunner

from cli import cli
from empirical.protocol import SweepConfig, run_batch_size, summarize

SMALL = ["--workload", "logreg-digits", "--optimizer", "momentum", "--trials", "4",
         "--budget", "300", "--quiet"]


def strip(summary):
    summary = dict(summary)
    summary.pop("versions")
    return summary


def test_sweep_cli_writes_outputs_and_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        r = CliRunner().invoke(cli, ["sweep", *SMALL, "--batch-sizes", "16,64", "--out",
                                     str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        outs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert strip(outs[0]) == strip(outs[1])
    s = outs[0]
    assert set(s) >= {"workload", "optimizer", "target", "points", "critical_batch_size"}
    for p in s["points"]:
        assert set(p) >= {"batch_size", "steps", "reached", "lr", "momentum", "trials",
                          "diverged", "widened"}
    for f in ("records.jsonl", "summary.csv", "steps_vs_batch.png"):
        assert (tmp_path / "a" / f).exists()
    rec = json.loads((tmp_path / "a" / "records.jsonl").read_text().splitlines()[0])
    assert {"workload", "optimizer", "batch_size", "trial", "seed", "versions", "curve",
            "steps", "diverged"} <= set(rec)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    args = ["sweep", *SMALL, "--batch-sizes", "8:128"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", *args,
                             "--out", str(killed)], cwd=os.getcwd(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if records.exists() and len(records.read_text().splitlines()) >= 8:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    n_before = len(records.read_text().splitlines())
    assert 0 < n_before < 5 * 4 * 3, "the kill should land mid-sweep"
    r = CliRunner().invoke(cli, [*args, "--out", str(killed)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "clean")])
    assert r.exit_code == 0, r.output
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert strip(a) == strip(b)
    # finished rounds were not rerun: the records before the kill are still the first lines
    assert len(records.read_text().splitlines()) >= n_before


def test_widening_when_best_lr_is_at_the_edge(tmp_path):
    # logistic regression reaches the target fastest at the largest stable lr, so a range
    # capped at 0.5 puts the best trial at its upper edge
    cfg = SweepConfig("logreg-digits", "sgd", (64,), n_trials=8, budget=300,
                      lr_range=(0.003, 0.5), max_widen=2)
    recs = run_batch_size(cfg, 64, str(tmp_path / "r.jsonl"))
    point = summarize(cfg, recs)["points"][0]
    assert point["widened"] and point["trials"] > 8
    assert point["lr_range"][1] > 0.5
    first = [r for r in recs if r["round"] == 0]
    assert all(r["lr_range"] == [0.003, 0.5] for r in first)   # each round keeps its range
    assert point["steps"] < min(r["steps"] for r in first if r["reached"])


def test_stopping_rounds_early_gives_the_same_points_as_complete_trials(tmp_path):
    # includes a widening round, which stops at the first round's best step count
    keys = ("batch_size", "steps", "reached", "lr", "momentum", "widened")
    points = []
    for complete in (False, True):
        cfg = SweepConfig("logreg-digits", "sgd", (16, 64), n_trials=8, budget=300,
                          lr_range=(0.003, 0.5), complete_trials=complete)
        recs = [r for b in cfg.batch_sizes
                for r in run_batch_size(cfg, b, str(tmp_path / f"{complete}.jsonl"))]
        points.append([{k: p[k] for k in keys} for p in summarize(cfg, recs)["points"]])
        assert any(r["beaten"] for r in recs) != complete
    assert points[0] == points[1]
    assert any(p["widened"] for p in points[0])


def test_divergence_is_recorded_and_excluded(tmp_path):
    cfg = SweepConfig("linreg", "sgd", (16,), n_trials=4, budget=200, lr_range=(0.5, 100.0),
                      max_widen=0)
    recs = run_batch_size(cfg, 16, str(tmp_path / "r.jsonl"))
    point = summarize(cfg, recs)["points"][0]
    assert point["diverged"] >= 1
    assert point["lr"] is None or point["lr"] < 100.0


def test_bad_workload_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(cli, ["sweep", "--workload", "imagenet", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "unknown workload 'imagenet'" in r.stderr


def test_dask_executor_on_a_real_local_cluster(tmp_path):
    """End to end on distributed.LocalCluster: same summary as the local executor."""
    from distributed import LocalCluster

    args = ["sweep", *SMALL, "--batch-sizes", "16,64"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        r = CliRunner().invoke(cli, [*args, "--executor", "dask", "--scheduler",
                                     cluster.scheduler_address, "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "l")])
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "d" / "summary.json").read_text())
    b = json.loads((tmp_path / "l" / "summary.json").read_text())
    assert strip(a) == strip(b)


def test_dask_without_scheduler_is_an_error(tmp_path):
    r = CliRunner().invoke(cli, ["sweep", *SMALL, "--executor", "dask", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "needs --scheduler" in r.stderr


def _custom_npz(path, **override):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    arrays = {"X_train": x[:240], "y_train": y[:240], "X_val": x[240:], "y_val": y[240:]}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_custom_workload_sweep(tmp_path):
    data = _custom_npz(tmp_path / "d.npz")
    r = CliRunner().invoke(cli, ["sweep", "--workload", "custom", "--data", str(data), "--model",
                                 "logreg", "--target", "0.1", "--optimizer", "sgd", "--trials",
                                 "4", "--budget", "300", "--batch-sizes", "16,64", "--quiet",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert all(p["reached"] for p in s["points"])


def test_custom_bad_files(tmp_path):
    import numpy as np
    cases = {
        "missing": (_custom_npz(tmp_path / "a.npz", y_val=None), "lacks array(s) y_val"),
        "nan": (_custom_npz(tmp_path / "b.npz", X_train=np.full((240, 5), np.nan)),
                "X_train must be finite"),
        "shape": (_custom_npz(tmp_path / "c.npz", y_train=np.zeros(7)), "one entry per row"),
        "labels": (_custom_npz(tmp_path / "d.npz", y_train=np.full(240, 0.5)), "integer class"),
    }
    (tmp_path / "junk.npz").write_bytes(b"junk")
    cases["junk"] = (tmp_path / "junk.npz", "not a readable .npz")
    for path, needle in cases.values():
        r = CliRunner().invoke(cli, ["sweep", "--workload", "custom", "--data", str(path),
                                     "--model", "logreg", "--target", "0.1", "--out",
                                     str(tmp_path / "o")])
        assert r.exit_code == 2 and needle in r.stderr, (needle, r.stderr)
    r = CliRunner().invoke(cli, ["sweep", "--workload", "custom", "--data",
                                 str(_custom_npz(tmp_path / "e.npz")), "--model", "logreg"])
    assert r.exit_code == 2 and "needs --target" in r.stderr


def test_local_process_pool_equals_in_process(tmp_path):
    args = ["sweep", *SMALL, "--batch-sizes", "16,64"]
    for name, workers in (("one", "1"), ("two", "2")):
        r = CliRunner().invoke(cli, [*args, "--workers", workers, "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert strip(a) == strip(b)


def _records(steps_by_b, target=0.1):
    """Synthetic trial records: one reached trial per step count."""
    return [{"batch_size": b, "target": target, "reached": True, "diverged": False,
             "steps": s, "round": 0, "trial": i, "lr": 0.1, "momentum": 0.9,
             "lr_range": [0.01, 1.0]}
            for b, steps in steps_by_b.items() for i, s in enumerate(steps)]


def test_summarize_gives_the_bootstrap_interval_of_nqm_fit():
    import numpy as np

    from nqm.critical import bootstrap

    rng = np.random.default_rng(5)
    b = [4, 8, 16, 32, 64, 128, 256]
    s = [int(300 * (1 + 40 / x) * (1 + 0.05 * rng.standard_normal())) for x in b]
    cfg = SweepConfig("linreg", "sgd", tuple(b), n_trials=4, seed=3)
    summary = summarize(cfg, _records({x: [y, y + 50] for x, y in zip(b, s)}))
    assert summary["confidence_95"] == bootstrap(b, s, n_resamples=1000, seed=3)
    lo, hi = summary["confidence_95"]["mccandlish"]
    assert lo < summary["critical_batch_size"]["mccandlish"] < hi
    assert summary["bootstrap"]["seed"] == 3
    assert summary["critical_batch_size_flags"]["warnings"] == []


def test_summarize_warns_about_steps_rising_with_batch_size():
    b = (16, 32, 64, 128)
    cfg = SweepConfig("linreg", "sgd", b, n_trials=4)
    summary = summarize(cfg, _records({16: [400], 32: [200], 64: [120], 128: [180]}))
    flags = summary["critical_batch_size_flags"]
    assert any("64 -> 128 (+50%)" in w for w in flags["warnings"])
    two = summarize(SweepConfig("linreg", "sgd", (16, 64), n_trials=4),
                    _records({16: [400], 64: [120]}))
    assert two["confidence_95"]["mccandlish"] == [None, None]
    assert "need >= 3" in two["critical_batch_size_flags"]["not_determined"]["interval"]


def test_sweep_prints_interval_and_flags(tmp_path):
    r = CliRunner().invoke(cli, ["sweep", *SMALL, "--batch-sizes", "16,32,64", "--out",
                                 str(tmp_path)])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["bootstrap"]["seed"] == 0 and s["bootstrap"]["resamples"] == 1000
    lo, hi = s["confidence_95"]["mccandlish"]
    assert f"  mccandlish      [{lo:.4g}, {hi:.4g}]" in r.stdout
    assert s["critical_batch_size_flags"]["batch_size_range"] == [16, 64]
    extrapolated = not 16 <= s["critical_batch_size"]["mccandlish"] <= 64
    assert ("warning: extrapolated: outside the batch sizes 16..64" in r.stdout) == extrapolated
