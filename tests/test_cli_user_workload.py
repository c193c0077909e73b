"""The user's workload file through the CLI: every problem is one line naming the function
and what is wrong, exit status 2, no traceback."""

import textwrap

import pytest
from click.testing import CliRunner

from cli import cli

GOOD_DATA = """
import math
import torch
from torch import nn
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g)
    y = (x[:, 0] > 0).long()
    return {"X_train": x[:30], "y_train": y[:30], "X_val": x[30:], "y_val": y[30:]}
"""
GOOD_MODEL = """
def model():
    return nn.Linear(5, 2)
"""

CASES = [
    ("def data():\n    return {}\n", "defines no model() function"),
    (GOOD_MODEL.replace("def model", "import torch\nfrom torch import nn\ndef model"),
     "defines no data() function"),
    (GOOD_DATA + "model = 3\n", "model must be a function"),
    (GOOD_DATA + "def model():\n    return 'net'\n", "model() must return a torch.nn.Module"),
    (GOOD_DATA + "def model():\n    raise RuntimeError('boom')\n",
     "model() raised RuntimeError: boom"),
    (GOOD_DATA.replace("return {", "return [{").replace("]}", "]}]") + GOOD_MODEL,
     "data() must return a mapping"),
    (GOOD_DATA.replace('"y_val": y[30:]', '"y_valid": y[30:]') + GOOD_MODEL,
     "data() lacks y_val"),
    (GOOD_DATA.replace('"y_train": y[:30]', '"y_train": y[:20]') + GOOD_MODEL,
     "data(): X_train has 30 examples but y_train has 20"),
    (GOOD_DATA.replace("x = torch.randn(40, 5, generator=g)",
                       "x = torch.randn(40, 5, generator=g); x[3, 1] = math.nan") + GOOD_MODEL,
     "data(): X_train has non-finite values"),
    (GOOD_DATA.replace('"X_val": x[30:]', '"X_val": 7') + GOOD_MODEL,
     "data(): X_val is not indexable"),
    (GOOD_DATA + "def model():\n    return nn.Linear(4, 2)\n",
     "model(): the forward pass on X_train raised RuntimeError"),
    (GOOD_DATA + "def model():\n    return nn.Sequential(nn.Linear(5, 2), nn.Flatten(0))\n",
     "does not fit the cross-entropy of integer targets"),
    (GOOD_DATA + GOOD_MODEL + "def loss(out, y):\n    return (out ** 2).mean()\n",
     "loss(outputs, targets) must return one loss per example, shape (4,), got ()"),
    (GOOD_DATA + GOOD_MODEL + "def metric(out, y):\n    return out.mean(0)\n",
     "metric(outputs, targets) must return one number, got (2,)"),
    (GOOD_DATA + GOOD_MODEL + "def metric(out, y):\n    return math.nan\n",
     "metric(outputs, targets) is not finite"),
    (GOOD_DATA + GOOD_MODEL + "TARGET = -1\n", "TARGET must be a finite number > 0"),
    (GOOD_DATA + GOOD_MODEL + "LR_RANGE = (1.0, 0.1)\n", "LR_RANGE must be two numbers"),
    (GOOD_DATA + GOOD_MODEL + "REFERENCE = {'lr': -1}\n", "REFERENCE lr must be a finite"),
    ("import no_such_module_here\n" + GOOD_DATA + GOOD_MODEL,
     "importing workload {path} raised ModuleNotFoundError"),
]


def run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def one_line_error(result, expected):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("command", ["sweep", "measure"])
@pytest.mark.parametrize("source,expected", CASES, ids=range(len(CASES)))
def test_bad_workload_file(tmp_path, command, source, expected):
    path = tmp_path / "wl.py"
    path.write_text(textwrap.dedent(source))
    result = run([command, "--workload", str(path), "--target", "0.1", "--out",
                  str(tmp_path / "out"), "--quiet"])
    one_line_error(result, expected.format(path=path))


@pytest.mark.parametrize("workload,expected", [
    ("{d}/missing.py", "workload file not found"),
    ("no_such_pkg.workload", "workload module 'no_such_pkg.workload' not found"),
    ("mlp-digitz", "unknown workload 'mlp-digitz'"),
])
def test_missing_workloads(tmp_path, workload, expected):
    result = run(["sweep", "--workload", workload.format(d=tmp_path), "--out",
                  str(tmp_path / "out"), "--quiet"])
    one_line_error(result, expected)


def test_needs_a_target(tmp_path):
    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + GOOD_MODEL)
    result = run(["sweep", "--workload", str(path), "--out", str(tmp_path / "o"), "--quiet"])
    one_line_error(result, "defines no TARGET; pass --target")


BATCHNORM_MODEL = """
def model():
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
REFERENCE = {"batch_size": 8}
"""


def test_measure_refuses_batchnorm_without_running_statistics(tmp_path):
    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + "def model():\n    return nn.Sequential(nn.Linear(5, 4), "
                    "nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2))\n")
    result = run(["measure", "--workload", str(path), "--target", "0.2", "--out",
                  str(tmp_path / "o"), "--quiet"])
    one_line_error(result, "measure needs BatchNorm with running statistics (module '1' has "
                           "track_running_stats=False")


def test_measure_checkpoint_without_the_buffers(tmp_path):
    import torch

    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + BATCHNORM_MODEL)
    namespace = {}
    exec(compile(GOOD_DATA + BATCHNORM_MODEL, str(path), "exec"), namespace)
    torch.save(dict(namespace["model"]().named_parameters()), tmp_path / "params.pt")
    result = run(["measure", "--workload", str(path), "--target", "0.2", "--checkpoint",
                  str(tmp_path / "params.pt"), "--out", str(tmp_path / "o"), "--quiet"])
    one_line_error(result, "params.pt lacks the buffers 1.running_mean, 1.running_var, "
                           "1.num_batches_tracked of this workload's model")


@pytest.mark.slow
def test_measure_a_batchnorm_model(tmp_path):
    """Measured end to end at a step and the target of the reference run; the saved
    checkpoint holds the running statistics, the training loss is that of the plain network
    in eval mode at that checkpoint, and measuring the saved file gives the same numbers."""
    import json

    import torch

    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + BATCHNORM_MODEL)
    common = ["measure", "--workload", str(path), "--target", "0.2", "--top-k", "3",
              "--slq-steps", "5", "--slq-vectors", "2", "--bootstrap", "10",
              "--hessian-examples", "8", "--quiet", "--threads", "1", "--device", "cpu"]
    result = run(common + ["--at-step", "5", "--at-target", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    rec = json.loads((tmp_path / "o" / "measure.json").read_text())
    assert [p["label"] for p in rec["along_training"]] == ["step 5", "target"]
    assert rec["metric"] <= 0.2 and rec["b_simple"] > 0 and rec["n_params"] == 42
    assert all(abs(v) < 1e3 for v in rec["top_eigenvalues"])
    state = torch.load(tmp_path / "o" / "checkpoints" / "target.pt", weights_only=True)
    assert int(state["1.num_batches_tracked"]) == rec["step"]
    namespace = {}
    exec(compile(GOOD_DATA + BATCHNORM_MODEL, str(path), "exec"), namespace)
    net = namespace["model"]()
    net.load_state_dict(state)
    d = namespace["data"]()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(net.double().eval()(d["X_train"].double()),
                                                 d["y_train"])
    assert rec["train_loss"] == pytest.approx(float(loss), rel=1e-10)
    again = run(common + ["--checkpoint", str(tmp_path / "o" / "checkpoints" / "target.pt"),
                          "--out", str(tmp_path / "c")])
    assert again.exit_code == 0, again.output
    rec2 = json.loads((tmp_path / "c" / "measure.json").read_text())
    assert rec2["top_eigenvalues"] == pytest.approx(rec["top_eigenvalues"], rel=1e-6)
    assert rec2["b_simple"] == pytest.approx(rec["b_simple"], rel=1e-9)
    assert rec2["metric"] == rec["metric"]


@pytest.mark.parametrize("command", ["sweep", "measure"])
def test_cuda_unavailable(tmp_path, command, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run([command, "--workload", "linreg", "--device", "cuda", "--out",
                  str(tmp_path / "o"), "--quiet"])
    one_line_error(result, "CUDA is not available")


def test_sweep_resumes_only_the_same_file_content(tmp_path):
    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + GOOD_MODEL + "TARGET = 0.3\nBUDGET = 30\n")
    args = ["sweep", "--workload", str(path), "--batch-sizes", "8", "--trials", "2",
            "--optimizer", "sgd", "--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"]
    first = run(args)
    assert first.exit_code == 0, first.output
    records = (tmp_path / "o" / "records.jsonl").read_text()
    assert run(args).exit_code == 0                    # resumed: nothing retrained
    assert (tmp_path / "o" / "records.jsonl").read_text() == records
    path.write_text(GOOD_DATA + GOOD_MODEL + "TARGET = 0.3\nBUDGET = 30\n# changed\n")
    one_line_error(run(args), "workload_sha256")


@pytest.mark.slow
def test_measure_runs_on_a_user_workload(tmp_path):
    import json

    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + GOOD_MODEL + "TARGET = 0.3\n")
    out = tmp_path / "m"
    result = run(["measure", "--workload", str(path), "--at-step", "0,5", "--top-k", "3",
                  "--slq-steps", "4", "--slq-vectors", "2", "--bootstrap", "10",
                  "--hessian-examples", "8", "--out", str(out), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "measure.json").read_text())
    assert record["workload"] == str(path) and record["n_params"] == 12
    assert [a["step"] for a in record["along_training"]] == [0, 5]
    assert (out / "spectrum.npz").exists()


def test_a_fixed_budget_needs_no_target(tmp_path):
    path = tmp_path / "wl.py"
    path.write_text(GOOD_DATA + GOOD_MODEL)               # no TARGET: none is needed
    result = run(["sweep", "--workload", str(path), "--quality", "--budget", "20",
                  "--batch-sizes", "8", "--trials", "2", "--optimizer", "sgd",
                  "--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "best metric" in result.output


def test_cuda_with_worker_processes_is_refused(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    result = run(["sweep", "--workload", "linreg", "--device", "cuda", "--workers", "2",
                  "--out", str(tmp_path / "o"), "--quiet"])
    one_line_error(result, "use --workers 1")


def test_a_dotted_module_is_found_in_the_current_directory(tmp_path, monkeypatch):
    import sys

    from empirical.user_workload import source_file

    (tmp_path / "mywl.py").write_text(GOOD_DATA + GOOD_MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert source_file("mywl") == tmp_path / "mywl.py"
