"""The user's own workload (a .py file): loading, the resume key, training through the
vmapped and the per-trial population paths against a plain torch.optim loop, per-example
gradients without vmap."""

import textwrap

import numpy as np
import pytest
import torch

from empirical.plain import train_one
from empirical.population import StopRule, train_population
from empirical.protocol import SweepConfig, sweep_options
from empirical.train_config import TrainConfig
from empirical.user_workload import is_user_workload
from empirical.workloads import get

DATA = """
import torch
from torch import nn
TARGET = 0.5
BUDGET = 40
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return {"X_train": x[:64], "y_train": y[:64], "X_val": x[64:], "y_val": y[64:]}
"""
MLP = DATA + """
def model():
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3))
"""
BATCHNORM = DATA + """
def model():
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))
"""


def write(tmp_path, source, name="wl.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_names_of_user_workloads():
    assert is_user_workload("a/b.py") and is_user_workload("pkg.mod")
    assert not is_user_workload("mlp-digits") and not is_user_workload("custom")


def test_loaded_workload(tmp_path):
    w = get(write(tmp_path, MLP))
    assert (w.n_train, w.target, w.budget, w.metric_name) == (64, 0.5, 40, "validation error")
    x, y = w.batch(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 6) and y.shape == (5,)
    params = {k: v[None].repeat(2, *[1] * v.dim())
              for k, v in w.make_model(0).named_parameters()}
    metric = w.evaluate(w.make_model(0), params)
    assert metric.shape == (2,) and 0 <= float(metric[0]) <= 1 and metric[0] == metric[1]
    assert get(write(tmp_path, MLP), target=0.2).target == 0.2


def test_builtin_n_train():
    assert get("logreg-digits").n_train == 1437 and get("linreg").n_train is None


def test_resume_key_follows_the_file_content(tmp_path):
    path = write(tmp_path, MLP)
    cfg = SweepConfig(path, "sgd", (4,))
    key = sweep_options(cfg)
    assert key["workload_sha256"] and "device" not in key
    write(tmp_path, MLP + "\n# edited\n")
    assert sweep_options(cfg)["workload_sha256"] != key["workload_sha256"]
    assert "workload_sha256" not in sweep_options(SweepConfig("linreg", "sgd", (4,)))


def final_params(w, cfg, batch_size, per_trial=False, warn=None):
    """The trials' parameters at the last evaluation (the loop path evaluates trial by trial,
    one slice per call)."""
    calls = []

    def evaluate(model, params):
        calls.append({k: v.clone() for k, v in params.items()})
        return torch.ones(next(iter(params.values())).shape[0])

    w = type(w)(**{**w.__dict__, "evaluate": evaluate})
    train_population(w, cfg, batch_size, seed=3, per_trial=per_trial, warn=warn,
                     stop=StopRule(eval_ratio=1e9, stop_when_done=False))
    last = calls[-1] if next(iter(calls[-1].values())).shape[0] == cfg.trials else None
    return last or {k: torch.cat([c[k] for c in calls[-cfg.trials:]]) for k in calls[-1]}


@pytest.mark.parametrize("source,vmapped", [(MLP, True), (BATCHNORM, False)],
                         ids=["mlp", "batchnorm"])
def test_population_equals_plain_loop(tmp_path, source, vmapped):
    w = get(write(tmp_path, source), target=1e-6)     # never reached: no trial is frozen
    cfg = TrainConfig("momentum", [0.05, 0.2], 0.9, budget=25)
    notes = []
    got = final_params(type(w)(**{**w.__dict__, "budget": 25}), cfg, 8, warn=notes.append)
    assert (notes == []) == vmapped
    for i in range(2):
        ref = train_one(w, cfg, 8, 3, i, 25)
        for k, v in ref.named_parameters():
            np.testing.assert_allclose(got[k][i].numpy(), v.detach().numpy(),
                                       rtol=1e-4, atol=1e-5)


def test_batchnorm_is_evaluated_in_eval_mode(tmp_path):
    w = get(write(tmp_path, BATCHNORM), target=1e-6)
    cfg = TrainConfig("sgd", [0.1], budget=30)
    res = train_population(w, cfg, 16, seed=3, stop=StopRule(eval_ratio=1e9,
                                                             stop_when_done=False),
                           warn=lambda m: None)
    model = train_one(w, cfg, 16, 3, 0, 30).eval()
    data = {}
    exec(compile(BATCHNORM, "bn", "exec"), data)
    d = data["data"]()
    with torch.no_grad():
        expected = float((model(d["X_val"]).argmax(-1) != d["y_val"]).float().mean())
    assert res.curves[0, -1] == pytest.approx(expected)


def test_forced_loop_gives_the_vmapped_steps(tmp_path):
    w = get(write(tmp_path, MLP))
    w = type(w)(**{**w.__dict__, "budget": 400, "target": 0.35})
    cfg = TrainConfig("sgd", [0.03, 0.1, 0.3, 1.0])
    a = train_population(w, cfg, 8, seed=1)
    b = train_population(w, cfg, 8, seed=1, per_trial=True)
    assert any(s is not None for s in a.steps)
    assert a.steps == b.steps and a.diverged == b.diverged


def test_per_example_gradients_without_vmap():
    from empirical.curvature import FlatModel
    from empirical.noise import per_example_grads

    class Item(torch.nn.Module):        # .item() on the input: vmap over examples cannot run
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            scale = 2.0 if float(x.abs().sum().item()) > 1 else 1.0
            return scale * self.lin(x)

    torch.manual_seed(0)
    model = Item()
    x, y = torch.randn(7, 3), torch.tensor([0, 1, 1, 0, 1, 0, 0])
    notes = []
    got = per_example_grads(FlatModel(model), torch.nn.functional.cross_entropy, x, y,
                            chunk=3, warn=notes.append)
    assert len(notes) == 1
    for n in range(7):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[n:n + 1]).double(), y[n:n + 1]).backward()
        ref = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
        np.testing.assert_allclose(got[n], ref, rtol=1e-5, atol=1e-6)


def test_the_conv1d_example_loads_and_trains():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "conv1d_signal.py"
    w = get(str(path))
    assert (w.n_train, w.target, w.budget) == (2048, 0.10, 3000)
    r = train_population(w, TrainConfig("adam", [3e-3, 1e-2], budget=20), 16,
                         stop=StopRule(stop_when_done=False), warn=pytest.fail)
    assert r.steps_run == 20 and not any(r.diverged)
    assert np.all(r.curves[:, -1] < r.curves[:, 0])       # training lowers the error


def test_a_dotted_module_is_a_workload(tmp_path, monkeypatch):
    pkg = tmp_path / "mywork"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg, MLP, "net.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    w = get("mywork.net")
    assert w.name == "mywork.net" and w.n_train == 64
    key = sweep_options(SweepConfig("mywork.net", "sgd", (4,)))
    assert key["workload_sha256"] == sweep_options(
        SweepConfig(str(pkg / "net.py"), "sgd", (4,)))["workload_sha256"]


def test_measure_options_name_the_file_content(tmp_path):
    from empirical.measure_run import MeasureRunConfig

    path = write(tmp_path, MLP)
    config = MeasureRunConfig(path)
    options = config.options(config.resolved_workload())
    assert options["workload_sha256"] and "device" not in options
    assert options["optimizer"] == "adam" and options["train_batch_size"] == 64
    assert "workload_sha256" not in MeasureRunConfig("linreg").options(get("linreg"))


def test_measurement_sees_dropout_off():
    from empirical.curvature import FlatModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 2))
    flat, x = FlatModel(model), torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(flat(flat.theta, x), model.double().eval()(x))


def test_reference_run_keeps_the_running_statistics_of_train_mode(tmp_path):
    """The reference run's checkpoints hold the parameters and running statistics of a plain
    torch.optim loop in train mode after the same steps, and the metric of that network in
    eval mode."""
    from empirical import checkpoints

    w = get(write(tmp_path, BATCHNORM), target=1e-6)
    cps = checkpoints.train_checkpoints(w, [0, 7, 20], at_target=False, seed=2,
                                        optimizer="momentum", lr=0.05, batch_size=8)
    fresh = w.make_model(2)
    assert [c.step for c in cps] == [0, 7, 20]
    assert all(torch.equal(v, fresh.get_buffer(k)) for k, v in cps[0].buffers.items())
    assert set(cps[0].buffers) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    for c in cps[1:]:
        plain = train_one(w, TrainConfig("momentum", 0.05), 8, 2, 0, c.step)
        for k, v in plain.state_dict().items():
            torch.testing.assert_close(c.state[k], v, rtol=1e-6, atol=1e-7)
        assert int(c.buffers["1.num_batches_tracked"]) == c.step
        assert not torch.allclose(c.buffers["1.running_var"], cps[0].buffers["1.running_var"])
        data = {}
        exec(compile(BATCHNORM, "bn", "exec"), data)
        d = data["data"]()
        with torch.no_grad():
            error = float((plain.eval()(d["X_val"]).argmax(-1) != d["y_val"]).float().mean())
        assert c.metric == pytest.approx(error)


def test_checkpoint_round_trip_with_buffers(tmp_path):
    from empirical import checkpoints

    w = get(write(tmp_path, BATCHNORM), target=1e-6)
    (c,) = checkpoints.train_checkpoints(w, [5], at_target=False, seed=0, batch_size=8)
    checkpoints.save(c.state, tmp_path / "c.pt")
    params, buffers = checkpoints.load(tmp_path / "c.pt", w.make_model(1))
    assert set(params) == set(c.params) and set(buffers) == set(c.buffers)
    assert all(torch.equal(params[k], v) for k, v in c.params.items())
    assert all(torch.equal(buffers[k], v) and buffers[k].dtype == v.dtype
               for k, v in c.buffers.items())
    assert checkpoints.metric(w, params, buffers=buffers) == c.metric
    # a user's state_dict loads the same way
    model = w.make_model(3)
    model.load_state_dict(c.state)
    torch.save(model.state_dict(), tmp_path / "user.pt")
    again = checkpoints.load(tmp_path / "user.pt", w.make_model(1))
    assert all(torch.equal(again[1][k], v) for k, v in c.buffers.items())


def test_checkpoint_without_the_buffers_is_refused_naming_them(tmp_path):
    from empirical import checkpoints

    w = get(write(tmp_path, BATCHNORM), target=1e-6)
    model = w.make_model(0)
    torch.save(dict(model.named_parameters()), tmp_path / "params.pt")
    with pytest.raises(ValueError) as info:
        checkpoints.load(tmp_path / "params.pt", model)
    assert str(info.value) == (
        f"{tmp_path / 'params.pt'} lacks the buffers 1.running_mean, 1.running_var, "
        "1.num_batches_tracked of this workload's model (the measured network is evaluated "
        "with them); save it with torch.save(model.state_dict(), path)")
    state = model.state_dict()
    torch.save({**state, "1.running_var": torch.ones(5)}, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="buffer '1.running_var' has shape \\(5,\\), but this "
                                         "workload's model needs \\(12,\\)"):
        checkpoints.load(tmp_path / "shape.pt", model)
    torch.save({**state, "1.running_mean": torch.full((12,), float("nan"))},
               tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="buffer '1.running_mean' is not finite"):
        checkpoints.load(tmp_path / "nan.pt", model)


def test_the_batchnorm_example_is_the_conv1d_example_with_batchnorm():
    from pathlib import Path

    from empirical.measure import check_measurable

    examples = Path(__file__).resolve().parents[2] / "examples"
    bn, plain = get(str(examples / "conv1d_batchnorm.py")), get(str(examples / "conv1d_signal.py"))
    assert (bn.n_train, bn.target, bn.budget, bn.search) == (
        plain.n_train, plain.target, plain.budget, plain.search)
    assert all(torch.equal(a, b) for a, b in zip(bn.train_set(), plain.train_set()))
    model = bn.make_model(0)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and all(m.track_running_stats for m in norms)
    check_measurable(model)                   # measurable: no error
