"""The sweep protocol and `nqm sweep`: determinism, resume after a kill, widening, divergence."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
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


def _lines(path):
    return path.read_bytes().split(b"\n")[:-1]


def _same_records(a, b):
    """Records equal but for wall time, by (batch size, round, trial)."""
    def norm(path):
        recs = [json.loads(line) for line in _lines(path)]
        for r in recs:
            r.pop("wall_s_population")
        return sorted(recs, key=lambda r: (r["batch_size"], r["round"], r["trial"]))
    return norm(a) == norm(b)


def _check_records_file(path):
    """Every line a record, no (batch_size, round, trial) twice."""
    assert path.read_bytes().endswith(b"\n")
    keys = [(r["batch_size"], r["round"], r["trial"])
            for r in (json.loads(line) for line in _lines(path))]
    assert len(keys) == len(set(keys)), "a trial was recorded twice"


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    args = ["sweep", *SMALL, "--batch-sizes", "8:128"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", *args,
                             "--out", str(killed)], cwd=os.getcwd(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    while proc.poll() is None:          # until two rounds are written (or, wrongly, the end)
        if records.exists() and records.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = records.read_bytes()
    whole = before[:before.rfind(b"\n") + 1]          # the lines written completely
    n_before = whole.count(b"\n")
    assert 0 < n_before < 5 * 4 * 3, "the kill should land mid-sweep"
    r = CliRunner().invoke(cli, [*args, "--out", str(killed)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "clean")])
    assert r.exit_code == 0, r.output
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert strip(a) == strip(b)
    # finished trials were not rerun: the records before the kill are the first lines, as
    # they were; every line is a record, none twice, and they are the uninterrupted run's
    assert records.read_bytes().startswith(whole)
    _check_records_file(records)
    assert _same_records(records, tmp_path / "clean" / "records.jsonl")


def test_resume_drops_a_torn_last_line(tmp_path):
    """A crash mid-write leaves half a line: the resumed run cuts it off, says so once, and
    trains only what is missing (here the rest of a round)."""
    args = ["sweep", "--workload", "linreg", "--optimizer", "sgd", "--trials", "4", "--budget",
            "200", "--batch-sizes", "16,64", "--quiet"]
    clean = tmp_path / "clean"
    r = CliRunner().invoke(cli, [*args, "--out", str(clean)])
    assert r.exit_code == 0, r.output
    lines = _lines(clean / "records.jsonl")
    assert len(lines) >= 6
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "sweep_config.json").write_bytes((clean / "sweep_config.json").read_bytes())
    head = b"".join(line + b"\n" for line in lines[:5])     # mid-round: 5 of 4 + 4
    (torn / "records.jsonl").write_bytes(head + lines[5][:len(lines[5]) // 2])
    r = CliRunner().invoke(cli, [*args, "--out", str(torn)])
    assert r.exit_code == 0, r.output
    assert r.stderr.count(f"dropped an incomplete last record in {torn / 'records.jsonl'}") == 1
    assert (torn / "records.jsonl").read_bytes().startswith(head)
    _check_records_file(torn / "records.jsonl")
    assert _same_records(torn / "records.jsonl", clean / "records.jsonl")
    assert strip(json.loads((torn / "summary.json").read_text())) == \
        strip(json.loads((clean / "summary.json").read_text()))
    # an unreadable line inside the file is reported (and its trial trained again)
    recs = (torn / "records.jsonl").read_bytes().split(b"\n")
    recs[1] = b"{not json"
    (torn / "records.jsonl").write_bytes(b"\n".join(recs))
    r = CliRunner().invoke(cli, [*args, "--out", str(torn)])
    assert r.exit_code == 0, r.output
    assert "1 unreadable line(s) ignored (line 2)" in r.stderr
    assert "dropped" not in r.stderr


def test_rerun_with_other_options_is_refused(tmp_path):
    base = ["sweep", "--workload", "linreg", "--optimizer", "sgd", "--trials", "2", "--budget",
            "100", "--quiet", "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, [*base, "--batch-sizes", "16"])
    assert r.exit_code == 0, r.output
    n = len(_lines(tmp_path / "records.jsonl"))
    for extra, needle in ((["--decay", "linear"], "decay: constant there, linear here"),
                          (["--complete-trials"], "complete_trials: false there, true here"),
                          (["--budget", "150"], "budget: 100 there, 150 here"),
                          (["--target", "0.5"], "target: 0.02 there, 0.5 here"),
                          (["--seed", "1"], "seed: 0 there, 1 here")):
        r = CliRunner().invoke(cli, [*base, "--batch-sizes", "16", *extra])
        assert r.exit_code == 2, (extra, r.output)
        msg = r.stderr.strip()
        assert "\n" not in msg and needle in msg, (extra, msg)
        assert msg.startswith(f"Error: {tmp_path} holds a sweep with other options (")
        assert msg.endswith("; use another --out or remove it")
    assert len(_lines(tmp_path / "records.jsonl")) == n
    # more batch sizes, other workers and the default budget given explicitly: same sweep
    r = CliRunner().invoke(cli, [*base, "--batch-sizes", "16,32", "--workers", "1"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in _lines(tmp_path / "records.jsonl")]
    assert len([x for x in recs if x["batch_size"] == 16]) == n     # B = 16 was not rerun
    assert {x["batch_size"] for x in recs} == {16, 32}


def test_records_of_other_options_are_not_reused(tmp_path):
    """run_batch_size counts a record as done only when every option matches."""
    from empirical.protocol import _OPTION_KEYS, sweep_options

    base = SweepConfig("linreg", "sgd", (16,), n_trials=2, budget=100, max_widen=1)
    assert set(sweep_options(base)) == set(_OPTION_KEYS)
    path = str(tmp_path / "r.jsonl")
    first = run_batch_size(base, 16, path)
    assert run_batch_size(base, 16, path) == first                    # resumed as it was
    for change in ({"decay": "linear"}, {"complete_trials": True}, {"lr_range": (0.01, 1.0)},
                   {"one_minus_beta_range": (0.1, 0.5)}, {"max_widen": 0}, {"budget": 120},
                   {"target": 0.5}, {"n_trials": 4}):
        cfg = dataclasses.replace(base, **change)
        recs = run_batch_size(cfg, 16, path)
        assert not any(r in first for r in recs), change
        assert all(r[k] == v for r in recs for k, v in sweep_options(cfg).items()), change


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


@pytest.mark.slow
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
    assert all(r["steps"] is None and not r["reached"] for r in recs if r["diverged"])
    # excluded: the point is the best of the trials that did not diverge
    ok = [r for r in recs if r["reached"] and not r["diverged"]]
    assert ok and point["steps"] == min(r["steps"] for r in ok)
    assert point["lr"] not in {r["lr"] for r in recs if r["diverged"]}


def test_bad_workload_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(cli, ["sweep", "--workload", "imagenet", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "unknown workload 'imagenet'" in r.stderr


@pytest.mark.slow
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


def test_second_process_on_one_directory_is_refused(tmp_path):
    """While another process holds the directory's lock, a sweep into it writes nothing."""
    from tests.helpers import another_process_holding_the_lock

    with another_process_holding_the_lock(tmp_path):
        r = CliRunner().invoke(cli, ["sweep", *SMALL, "--batch-sizes", "16", "--out",
                                     str(tmp_path)])
        assert r.exit_code == 2, r.output
        assert r.stderr.strip() == (f"Error: another nqm process is using {tmp_path} "
                                    f"(lock {tmp_path / '.lock'})")
        assert not (tmp_path / "records.jsonl").exists()
    # released when the holder ends; and this command releases it when it ends
    for _ in range(2):
        r = CliRunner().invoke(cli, ["sweep", "--workload", "linreg", "--optimizer", "sgd",
                                     "--trials", "2", "--budget", "100", "--batch-sizes", "16",
                                     "--quiet", "--out", str(tmp_path)])
        assert r.exit_code == 0, r.output


def test_uncreatable_output_directory(tmp_path):
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "x"
    r = CliRunner().invoke(cli, ["sweep", *SMALL, "--out", str(bad)])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: cannot create output directory {bad}: Not a directory"


def test_records_import_and_run_without_fcntl(tmp_path):
    """Where fcntl is missing (Windows) the module still imports and locks with msvcrt, or,
    with neither, runs unlocked."""
    code = ("import sys; sys.modules['fcntl'] = None; sys.modules['msvcrt'] = None\n"
            "from empirical.records import append_records, directory_lock, read_records\n"
            "from pathlib import Path\n"
            "with directory_lock(sys.argv[1]):\n"
            " append_records(Path(sys.argv[1]) / 'r.jsonl', [{'a': 1}])\n"
            "print(read_records(Path(sys.argv[1]) / 'r.jsonl'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=os.getcwd(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[{'a': 1}]"


def test_charlm_resume_key_follows_its_text(monkeypatch):
    """charlm trains on Python's own source files, which differ between Python versions: a
    sweep or measurement resumed under another text must not mix with the old records."""
    from empirical import workloads
    from empirical.measure_run import MeasureRunConfig
    from empirical.protocol import SweepConfig, sweep_options

    cfg = SweepConfig("charlm", "sgd", (4,))
    key = sweep_options(cfg)["text_sha256"]
    measure_key = MeasureRunConfig("charlm").options(workloads.get("charlm"))["text_sha256"]
    assert key == measure_key and len(key) == 64
    assert "text_sha256" not in sweep_options(SweepConfig("linreg", "sgd", (4,)))
    text = workloads.stdlib_text()
    monkeypatch.setattr(workloads, "stdlib_text", lambda: text + "\n# another version\n")
    assert sweep_options(cfg)["text_sha256"] != key


def test_a_difference_the_user_did_not_type_says_why():
    from empirical.records import option_differences

    diff = option_differences({"text_sha256": "aa", "seed": 0}, {"text_sha256": "bb", "seed": 0})
    assert diff == ["text_sha256: aa there, bb here (charlm's text is this Python's own source "
                    "files, which differ between Python versions: use the Python version that "
                    "made them)"]
    assert option_differences({"seed": 0}, {"seed": 1}) == ["seed: 0 there, 1 here"]
