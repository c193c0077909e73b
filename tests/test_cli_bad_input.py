"""Every bad input through click's CliRunner: exit status 2, exactly one line of output (the
error, naming the file or option), no traceback, and no advice to load data unsafely."""

import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import _input_errors, cli

ROOT = Path(__file__).resolve().parents[1]
UNSAFE_ADVICE = ("allow_pickle", "weights_only", "pickle.load", "trust")


class _OpensMarker:
    """Unpickling this would call open(marker, 'w'): the file must never appear."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad (and a few good) input files, written once."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    (d / "random.npz").write_bytes(rng.bytes(256))
    np.save(d / "array.npy", np.ones(3))
    (d / "array.npy").rename(d / "array.npz")                 # a .npy named .npz
    np.savez(d / "objects.npz", h=np.array([object(), 1.0], dtype=object), c=[1.0, 1.0],
             s0=[1.0, 1.0])
    (d / "nan.json").write_text('{"h": [1.0, NaN], "c": [1, 1], "s0": [1, 1]}')
    np.savez(d / "negative.npz", h=[1.0, 0.5, -0.1], c=[1.0, 1.0, 1.0], s0=[1.0, 1.0, 1.0])
    (d / "lengths.json").write_text(json.dumps({"h": [1, 0.5, 0.2], "c": [1, 1], "s0": 1}))
    (d / "broken.json").write_text("{not json")
    (d / "spectrum.txt").write_text("h c s0")
    (d / "bad_columns.csv").write_text("size,steps\n1,2\n")
    (d / "non_numeric.csv").write_text("batch_size,steps\n1,abc\n")
    (d / "binary.csv").write_bytes(rng.bytes(256))
    # checkpoints for logreg-digits (nn.Linear(64, 10): weight (10, 64), bias (10,))
    (d / "random.pt").write_bytes(rng.bytes(256))
    (d / "eof.pt").write_bytes(b"\x80\x02")
    (d / "junk.pt").write_bytes(b"junk")
    (d / "empty.pt").write_bytes(b"")
    good = {"weight": torch.zeros(10, 64), "bias": torch.zeros(10)}
    torch.save(good, d / "good.pt")
    (d / "truncated.pt").write_bytes((d / "good.pt").read_bytes()[:300])
    torch.save({**good, "evil": _OpensMarker(d / "marker")}, d / "pickled.pt")
    with open(d / "plain_pickle.pt", "wb") as fh:
        pickle.dump({"weight": _OpensMarker(d / "marker")}, fh)
    torch.save(torch.nn.Linear(64, 10), d / "module.pt")
    torch.save({"weight": torch.zeros(10, 64)}, d / "missing_key.pt")
    torch.save({**good, "fc.weight": torch.zeros(1)}, d / "extra_key.pt")
    torch.save({**good, "weight": torch.zeros(64, 10)}, d / "shape.pt")
    torch.save([good["weight"], good["bias"]], d / "list.pt")
    x = rng.standard_normal((40, 3))
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(d / "data.npz", X_train=x[:30], y_train=y[:30], X_val=x[30:], y_val=y[30:])
    with zipfile.ZipFile(d / "text.npz", "w") as zf:
        zf.writestr("X_train.txt", "1 2 3")
    return d


MEASURE = ["measure", "--workload", "logreg-digits", "--out", "{out}", "--checkpoint"]
CUSTOM = ["sweep", "--workload", "custom", "--target", "0.1", "--out", "{out}", "--data"]
LINUX_PROC = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")


CASES = [
    # spectrum files and options of `predict`
    pytest.param(["predict", "--spectrum", "{d}/random.npz"],
                 "random.npz is not a readable .npz spectrum file", id="npz-random-bytes"),
    pytest.param(["predict", "--spectrum", "{d}/array.npz"],
                 "array.npz is not a readable .npz spectrum file", id="npz-that-is-npy"),
    pytest.param(["predict", "--spectrum", "{d}/objects.npz"],
                 "array 'h': it holds pickled Python objects, which are not loaded for safety",
                 id="npz-object-array"),
    pytest.param(["predict", "--spectrum", "{d}/nan.json"], "'h' is not finite at index 1",
                 id="spectrum-nan"),
    pytest.param(["predict", "--spectrum", "{d}/negative.npz"], "'h' must be > 0",
                 id="spectrum-negative-eigenvalue"),
    pytest.param(["predict", "--spectrum", "{d}/lengths.json"],
                 "'c' has length 2 but 'h' has length 3", id="spectrum-lengths"),
    pytest.param(["predict", "--spectrum", "{d}/broken.json"], "not valid JSON",
                 id="spectrum-json-syntax"),
    pytest.param(["predict", "--spectrum", "{d}/spectrum.txt"], "must end in .npz or .json",
                 id="spectrum-suffix"),
    pytest.param(["predict", "--spectrum", "{d}/nope.npz"], "spectrum file not found",
                 id="spectrum-missing"),
    pytest.param(["predict", "--spectrum", "power:d=10,alpha=x"], "non-numeric",
                 id="spectrum-power-option"),
    pytest.param(["predict", "--batch-sizes", "a,b"], "bad --batch-sizes", id="batch-sizes"),
    pytest.param(["predict", "--batch-sizes", "8:2"], "LO <= HI", id="batch-size-range"),
    pytest.param(["predict", "--target", "1e9", "--batch-sizes", "1,2", "--quiet"],
                 "initial loss", id="target-above-initial-loss"),
    # `fit` measurement tables
    pytest.param(["fit", "--csv", "{d}/nope.csv"], "file not found", id="csv-missing"),
    pytest.param(["fit", "--csv", "{d}/bad_columns.csv"], "missing column(s) batch_size",
                 id="csv-columns"),
    pytest.param(["fit", "--csv", "{d}/non_numeric.csv"], "line 2: non-numeric",
                 id="csv-non-numeric"),
    pytest.param(["fit", "--csv", "{d}/binary.csv"], "binary.csv is not a text CSV file",
                 id="csv-binary"),
    # `measure --checkpoint`
    pytest.param(MEASURE + ["{d}/random.pt"], "random.pt is not a readable torch checkpoint",
                 id="ckpt-random-bytes"),
    pytest.param(MEASURE + ["{d}/eof.pt"], "eof.pt is not a readable torch checkpoint",
                 id="ckpt-eof"),
    pytest.param(MEASURE + ["{d}/junk.pt"], "junk.pt is not a readable torch checkpoint",
                 id="ckpt-junk"),
    pytest.param(MEASURE + ["{d}/empty.pt"], "empty.pt is not a readable torch checkpoint",
                 id="ckpt-empty"),
    pytest.param(MEASURE + ["{d}/truncated.pt"],
                 "truncated.pt is not a readable torch checkpoint", id="ckpt-truncated"),
    pytest.param(MEASURE + ["{d}/pickled.pt"],
                 "pickled.pt is not a tensors-only checkpoint (it contains pickled Python "
                 "objects, which are not loaded for safety); save it with "
                 "torch.save(model.state_dict(), path)", id="ckpt-pickled-objects"),
    pytest.param(MEASURE + ["{d}/plain_pickle.pt"],
                 "plain_pickle.pt is not a tensors-only checkpoint", id="ckpt-plain-pickle"),
    pytest.param(MEASURE + ["{d}/module.pt"], "module.pt is not a tensors-only checkpoint",
                 id="ckpt-whole-module"),
    pytest.param(MEASURE + ["{d}/missing_key.pt"], "lacks parameter 'bias'",
                 id="ckpt-missing-key"),
    pytest.param(MEASURE + ["{d}/extra_key.pt"], "has key 'fc.weight'", id="ckpt-extra-key"),
    pytest.param(MEASURE + ["{d}/shape.pt"],
                 "parameter 'weight' has shape (64, 10), but this workload's model needs "
                 "(10, 64)", id="ckpt-shape"),
    pytest.param(MEASURE + ["{d}/list.pt"], "must hold a dict of parameter tensors",
                 id="ckpt-not-a-dict"),
    pytest.param(MEASURE + ["{d}/nope.pt"], "checkpoint not found", id="ckpt-missing"),
    pytest.param(["measure", "--workload", "imagenet", "--out", "{out}"],
                 "unknown workload 'imagenet'",
                 id="measure-unknown-workload"),
    pytest.param(["measure", "--workload", "linreg", "--out", "/proc/x"],
                 "cannot create output directory", id="measure-out-unwritable",
                 marks=LINUX_PROC),
    # `sweep`
    pytest.param(["sweep", "--workload", "imagenet", "--out", "{out}"],
                 "unknown workload 'imagenet'", id="sweep-unknown-workload"),
    pytest.param(["sweep", "--workload", "linreg", "--batch-sizes", "0,4", "--out", "{out}"],
                 "batch sizes must be >= 1", id="sweep-batch-sizes"),
    pytest.param(CUSTOM + ["{d}/random.npz"], "random.npz is not a readable .npz data file",
                 id="custom-random-bytes"),
    pytest.param(CUSTOM + ["{d}/objects.npz"], "not loaded for safety",
                 id="custom-object-array"),
    pytest.param(CUSTOM + ["{d}/text.npz"], "lacks array(s) X_train", id="custom-not-arrays"),
    pytest.param(CUSTOM + ["{d}/nope.npz"], "data file not found", id="custom-missing"),
    pytest.param(["sweep", "--workload", "custom", "--data", "{d}/data.npz", "--out",
                  "{out}"], "needs --target", id="custom-without-target"),
    pytest.param(["sweep", "--workload", "linreg", "--out", "/proc/x"],
                 "cannot create output directory", id="sweep-out-unwritable",
                 marks=LINUX_PROC),
]


def _check_one_line_error(exit_code, output, needle):
    assert exit_code == 2, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and lines[0].strip(), output
    assert "Traceback" not in output
    assert not any(word in output for word in UNSAFE_ADVICE), output
    if needle is not None:
        assert needle in lines[0], output


@pytest.mark.parametrize("args, needle", CASES)
def test_bad_input_is_one_line_exit_2(files, args, needle, tmp_path):
    args = [a.replace("{d}", str(files)).replace("{out}", str(tmp_path / "out")) for a in args]
    r = CliRunner().invoke(cli, args)
    _check_one_line_error(r.exit_code, r.output, needle)
    assert not (files / "marker").exists(), "a pickled object was executed"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_huge_power_law_is_refused_before_allocating():
    """d = 10^9 would need tens of GB: refused in one line.  Run in a child process whose
    address space is capped 2 GiB above its size, so that an attempt to allocate fails fast
    instead of taking the machine's memory."""
    code = (
        "import json, resource, sys\n"
        "from click.testing import CliRunner\n"
        "from cli import cli\n"
        "import nqm.predict\n"
        "vm = next(int(l.split()[1]) for l in open('/proc/self/status') "
        "if l.startswith('VmSize')) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 2**31, resource.RLIM_INFINITY))\n"
        "r = CliRunner().invoke(cli, ['predict', '--spectrum', 'power:d=1000000000', "
        "'--quiet'])\n"
        "print(json.dumps({'exit_code': r.exit_code, 'output': r.output}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    _check_one_line_error(r["exit_code"], r["output"], None)


def test_simulate_large_batch_runs():
    r = CliRunner().invoke(cli, ["simulate", "--lr", "0.5", "--batch-size", "64",
                                 "--steps", "2000"])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output


def test_input_errors_keep_the_first_line_only():
    @click.command()
    @click.argument("kind")
    @_input_errors
    def fails(kind):
        if kind == "value":
            raise ValueError("first line\n\n  second line\nthird")
        raise OSError(28, "No space left on device")     # an OSError without a file name

    r = CliRunner().invoke(fails, ["value"])
    assert r.exit_code == 2 and r.output == "Error: first line\n", r.output
    r = CliRunner().invoke(fails, ["os"])
    assert r.exit_code == 2 and r.output == "Error: No space left on device\n", r.output
