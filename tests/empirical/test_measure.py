"""Measurement end to end: linreg closed forms, the adapter's bookkeeping, every workload,
checkpoint files and the `nqm measure` command."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import cli
from empirical import checkpoints, workloads
from empirical.adapter import to_spectrum
from empirical.measure import MeasureConfig, measure, training_examples
from nqm.spectrum import load

SMALL = dict(top_k=5, slq_vectors=2, slq_steps=10, hutchinson_samples=8, bootstrap=20)


@pytest.fixture(scope="module")
def linreg():
    """linreg measured at a fixed w on 512 of its fixed examples, every example in tr(H Sigma)."""
    w = workloads.get("linreg")
    torch.manual_seed(1)
    params = {"weight": torch.randn(1, 64) * 0.3}
    init = {"weight": torch.zeros(1, 64)}
    cfg = MeasureConfig(top_k=8, examples=512, hessian_examples=512, bootstrap=50, seed=0)
    return w, params, init, measure(w, params, init, params, cfg, "w", 0)


def test_linreg_matches_closed_forms(linreg):
    w, params, init, m = linreg
    x, y = training_examples(w, 512, 0)
    X, Y = x.double().numpy(), y.double().numpy()
    wv = params["weight"].double().numpy().ravel()
    H = X.T @ X / 512                                   # loss 1/2 (w'x - y)^2
    g = X * (X @ wv - Y)[:, None]                       # per-example gradients
    G = g.mean(0)
    Sigma = (g - G).T @ (g - G) / 511                   # unbiased covariance
    lam, V = np.linalg.eigh(H)
    lam, V = lam[::-1][:8], V[:, ::-1][:, :8]
    assert np.allclose(m.eigenvalues, lam, rtol=1e-9)
    assert np.allclose(m.c_top, np.einsum("pi,pq,qi->i", V, Sigma, V), rtol=1e-8)
    assert m.noise.trace_sigma == pytest.approx(np.trace(Sigma), rel=1e-10)
    G2 = G @ G - np.trace(Sigma) / 512
    GHG = G @ H @ G - np.trace(H @ Sigma) / 512
    assert m.noise.grad_norm_sq == pytest.approx(G2, rel=1e-10)
    assert m.noise.b_simple == pytest.approx(np.trace(Sigma) / G2, rel=1e-9)
    assert m.noise.b_noise == pytest.approx(np.trace(H @ Sigma) / GHG, rel=1e-9)
    assert m.trace == pytest.approx(np.trace(H), abs=5 * m.trace_se)
    assert m.train_loss == pytest.approx(0.5 * np.mean((X @ wv - Y) ** 2), rel=1e-12)
    # and the population: H = E[x x'] = diag(i^-1) up to sampling error of 512 examples
    assert m.eigenvalues[0] == pytest.approx(1.0, rel=0.35)
    assert m.displacement_sq == pytest.approx(wv @ wv, rel=1e-6)


def test_adapter_keeps_the_totals(linreg):
    w, params, init, m = linreg
    sp = to_spectrum(m, bins=30, meta={"workload": "linreg"})
    n_top = int(np.sum(m.eigenvalues > sp.meta["h_floor"]))
    assert np.allclose(sp.h[:n_top], m.eigenvalues[:n_top])
    assert np.allclose(sp.c[:n_top], m.c_top[:n_top])
    assert sp.dimension + sp.meta["dropped_directions"] == pytest.approx(64, rel=1e-9)
    # bulk noise: both remaining traces are matched by c(h) = a h^q (unless q was clipped)
    assert -2 < sp.meta["bulk_noise_exponent"] < 4
    assert np.sum(sp.count * sp.c) == pytest.approx(m.noise.trace_sigma, rel=1e-6)
    assert np.sum(sp.count * sp.h * sp.c) == pytest.approx(m.noise.trace_h_sigma, rel=1e-6)
    # the displacement: 0 here, since the reference is params itself... use init instead
    m2 = m.__class__(**{**m.__dict__, "s0_top": (m.eigenvectors.T @ params["weight"].double()
                                                  .numpy().ravel()) ** 2,
                        "displacement_sq": float((params["weight"].double() ** 2).sum())})
    sp2 = to_spectrum(m2, bins=30)
    assert np.sum(sp2.count * sp2.s0) == pytest.approx(m2.displacement_sq, rel=0.05)
    assert sp.meta["k"] == 8 and sp.meta["curvature"] == "hessian"


def test_spectrum_file_round_trips_into_predict(linreg, tmp_path):
    w, params, init, m = linreg
    m2 = m.__class__(**{**m.__dict__, "s0_top": np.ones(8), "displacement_sq": 64.0})
    sp = to_spectrum(m2, bins=20, meta={"workload": "linreg"})
    sp.save(tmp_path / "s.npz")
    back = load(tmp_path / "s.npz")
    assert np.array_equal(back.h, sp.h) and np.array_equal(back.count, sp.count)
    assert back.meta["workload"] == "linreg" and back.meta["k"] == 8
    target = 0.1 * sp.initial_loss()
    res = CliRunner().invoke(cli, ["predict", "--spectrum", str(tmp_path / "s.npz"), "--target",
                                   str(target), "--batch-sizes", "1,16,256", "--quiet",
                                   "--json", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    pts = json.loads((tmp_path / "p.json").read_text())["points"]
    assert all(p["reached"] for p in pts)
    assert pts[0]["steps"] > pts[1]["steps"] > pts[2]["steps"] - 1


@pytest.mark.parametrize("name", ["mlp-digits", pytest.param("cnn-digits", marks=pytest.mark.slow),
                                  pytest.param("charlm", marks=pytest.mark.slow)])
def test_every_workload_measures(name):
    w = workloads.get(name)
    init = {k: v.detach() for k, v in w.make_model(0).named_parameters()}
    ref = {k: v + 0.01 for k, v in init.items()}
    m = measure(w, init, init, ref, MeasureConfig(examples=48, hessian_examples=8, **SMALL))
    assert m.eigenvalues.shape == (5,) and np.all(np.diff(m.eigenvalues) <= 1e-12)
    assert m.noise.trace_sigma > 0 and m.noise.grad_norm_sq > 0
    assert m.displacement_sq == pytest.approx(1e-4 * m.dim, rel=1e-3)
    sp = to_spectrum(m, bins=10)
    assert sp.n_rows >= 2 and np.all(sp.h > 0)


def test_checkpoint_files_are_tensors_only(tmp_path):
    w = workloads.get("logreg-digits")
    model = w.make_model(0)
    params = {k: v.detach() + 1 for k, v in model.named_parameters()}
    checkpoints.save(params, tmp_path / "c.pt")
    back, buffers = checkpoints.load(tmp_path / "c.pt", model)
    assert all(torch.equal(back[k], params[k]) for k in params) and buffers == {}
    torch.save({"weight": object()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="tensors-only"):
        checkpoints.load(tmp_path / "evil.pt", model)
    torch.save({"weight": torch.zeros(3)}, tmp_path / "short.pt")
    with pytest.raises(ValueError, match="lacks parameter"):
        checkpoints.load(tmp_path / "short.pt", model)
    torch.save({"weight": torch.zeros(3), "bias": torch.zeros(10)}, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="shape"):
        checkpoints.load(tmp_path / "shape.pt", model)


def test_train_checkpoints_reach_the_target():
    w = workloads.get("linreg")
    cps = checkpoints.train_checkpoints(w, [0, 10], at_target=True, seed=0)
    assert [c.label for c in cps][:2] == ["init", "step 10"] and cps[-1].label == "target"
    assert cps[-1].metric <= w.target < cps[0].metric
    with pytest.raises(ValueError, match="did not reach"):
        checkpoints.train_checkpoints(w, [], at_target=True, budget=3)


@pytest.mark.slow
def test_measure_cli_along_training(tmp_path):
    out = tmp_path / "m"
    common = ["measure", "--workload", "logreg-digits", "--top-k", "4", "--slq-steps", "10",
              "--slq-vectors", "2", "--bootstrap", "20", "--hessian-examples", "16", "--quiet"]
    res = CliRunner().invoke(cli, common + ["--at-step", "0,20", "--at-target", "--out", str(out),
                                            "--two-batch", "8,64"])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "measure.json").read_text())
    for key in ("b_simple", "b_simple_ci", "b_noise", "b_noise_ci", "trace_hessian",
                "trace_sigma", "grad_norm_sq", "top_eigenvalues"):
        assert key in rec
    assert [p["label"] for p in rec["along_training"]] == ["init", "step 20", "target"]
    assert rec["label"] == "target" and rec["metric"] <= rec["target"]
    tb = rec["along_training"][0]["two_batch"]      # at init |G| is large: well resolved
    assert tb["b_small"] == 8 and tb["b_simple_ci"][0] <= tb["b_simple"] <= tb["b_simple_ci"][1]
    assert "b_simple" in rec["two_batch"]              # may be null at the target (|G|^2 <= 0)
    assert len(rec["top_eigenvalues"]) == 4 and rec["versions"]["torch"]
    for f in ("spectrum.npz", "measure.csv", "spectrum.png", "noise_scale.png",
              "checkpoints/target.pt"):
        assert (out / f).exists(), f
    assert load(out / "spectrum.npz").meta["checkpoint"] == "target"
    # measuring at a saved checkpoint gives the same numbers as at-target
    res = CliRunner().invoke(cli, common + ["--checkpoint", str(out / "checkpoints/target.pt"),
                                            "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    rec2 = json.loads((tmp_path / "c" / "measure.json").read_text())
    assert rec2["top_eigenvalues"] == pytest.approx(rec["top_eigenvalues"], rel=1e-6)
    assert rec2["b_simple"] == pytest.approx(rec["b_simple"], rel=1e-9)


@pytest.mark.parametrize("extra, message", [
    (["--checkpoint", "nope.pt"], "checkpoint not found"),
    (["--at-step", "0", "--checkpoint", "x.pt"], "not both"),
    (["--at-step", "a,b"], "bad --at-step"),
    (["--lr", "-1"], "--lr must be"),
    (["--two-batch", "8"], "bad --two-batch"),
    (["--two-batch", "64,8"], "B_small < B_big"),
])
def test_measure_cli_bad_input(extra, message, tmp_path):
    res = CliRunner().invoke(cli, ["measure", "--workload", "logreg-digits", "--out",
                                   str(tmp_path)] + extra)
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_measure_cli_custom_workload(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X_train=X[:150], y_train=y[:150], X_val=X[150:], y_val=y[150:])
    res = CliRunner().invoke(cli, [
        "measure", "--workload", "custom", "--data", str(tmp_path / "d.npz"), "--model",
        "logreg", "--target", "0.2", "--top-k", "3", "--bootstrap", "20", "--slq-steps", "5",
        "--quiet", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "o" / "measure.json").read_text())
    assert rec["n_params"] == 12 and rec["n_examples"] == 150



def test_top_k_beyond_the_parameter_count_is_clamped(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 6))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X_train=X[:100], y_train=y[:100], X_val=X[100:], y_val=y[100:])
    res = CliRunner().invoke(cli, [
        "measure", "--workload", "custom", "--data", str(tmp_path / "d.npz"), "--model",
        "logreg", "--target", "0.3", "--top-k", "50", "--bootstrap", "10", "--slq-steps", "4",
        "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "--top-k clamped to 13 (the model has 14 parameters)" in res.stderr
    rec = json.loads((tmp_path / "o" / "measure.json").read_text())
    assert rec["n_params"] == 14 and len(rec["top_eigenvalues"]) == 13

@pytest.mark.slow
def test_measure_cli_resumes_finished_checkpoints(tmp_path, monkeypatch):
    args = ["measure", "--workload", "linreg", "--at-step", "0,30", "--top-k", "3",
            "--bootstrap", "10", "--slq-steps", "5", "--quiet", "--out", str(tmp_path)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    before = json.loads((tmp_path / "measure.json").read_text())

    def boom(*a, **k):
        raise AssertionError("a finished checkpoint was measured again")

    monkeypatch.setattr("empirical.measure.measure", boom)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    after = json.loads((tmp_path / "measure.json").read_text())
    assert after["along_training"] == before["along_training"]
    # other options into the same directory are refused, naming what differs, before any work
    for extra, needle in ((["--top-k", "4"], "top_k: 3 there, 4 here"),
                          (["--lr", "0.1"], "lr: 0.5 there, 0.1 here"),
                          (["--curvature", "ggn"], "curvature: hessian there, ggn here"),
                          (["--bins", "7"], "bins: 60 there, 7 here"),
                          (["--seed", "1"], "seed: 0 there, 1 here")):
        changed = CliRunner().invoke(cli, args[:-2] + extra + ["--out", str(tmp_path)])
        assert changed.exit_code == 2, (extra, changed.output)
        msg = changed.stderr.strip()
        assert "\n" not in msg and needle in msg, (extra, msg)
        assert msg.startswith(f"Error: {tmp_path} holds a measurement with other options (")
        assert msg.endswith("; use another --out or remove it")
    # a finished point whose file a crash cut short is measured again, to the same numbers
    monkeypatch.undo()
    point = tmp_path / "points" / "step_30.json"
    point.write_text(point.read_text()[:50])
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output

    # measured again: the same numbers to rounding (torch's reductions depend on its thread
    # count, which each command takes from the cores free at its start); no wall-clock times
    assert "wall_s" not in (tmp_path / "measure.json").read_text()
    after = json.loads((tmp_path / "measure.json").read_text())
    assert _close(after["along_training"], before["along_training"])
    assert after["along_training"][0] == before["along_training"][0]    # init: resumed exactly
    assert _close([json.loads(point.read_text())["summary"]],
                  before["along_training"][-1:])


def _close(a, b, rel=1e-9) -> bool:
    """Equal structures whose floats agree to `rel` (everything else exactly)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], rel)
                                                                   for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y, rel)
                                                                for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300) or a == b
    return a == b


def test_measure_cli_refuses_a_directory_in_use(tmp_path):
    from tests.helpers import another_process_holding_the_lock

    with another_process_holding_the_lock(tmp_path):
        res = CliRunner().invoke(cli, ["measure", "--workload", "linreg", "--at-step", "0",
                                       "--top-k", "3", "--quiet", "--out", str(tmp_path)])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip() == (f"Error: another nqm process is using {tmp_path} "
                                      f"(lock {tmp_path / '.lock'})")
        assert not (tmp_path / "points").exists()


def test_measure_cli_uncreatable_output_directory(tmp_path):
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "x"
    res = CliRunner().invoke(cli, ["measure", "--workload", "linreg", "--out", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"Error: cannot create output directory {bad}: Not a directory"


def test_adapter_drops_negative_and_null_curvature(linreg):
    """Negative Hessian eigenvalues (top or bulk) cannot enter the NQM: they are dropped and
    counted."""
    import dataclasses

    from empirical.spectral import Quadrature

    w, params, init, m = linreg
    lam = np.array([2.0, 1.0, 0.5, 1e-9, -0.1, -0.2, -0.3, -0.4])
    nodes = np.array([[-0.5, -0.1, 0.01, 0.1, 0.4], [-0.3, 0.02, 0.05, 0.2, 0.45]])
    weights = np.full((2, 5), 0.2)
    m2 = dataclasses.replace(m, eigenvalues=lam, bulk=Quadrature(nodes, weights, 56, 0))
    sp = to_spectrum(m2, bins=8)
    assert np.all(sp.h > 0) and sp.h[:3].tolist() == [2.0, 1.0, 0.5]
    # 5 of 8 top directions dropped; 3 of 10 bulk nodes are negative: 0.3 of 56 directions
    assert sp.meta["dropped_directions"] == pytest.approx(5 + 0.3 * 56)
    assert sp.dimension == pytest.approx(3 + 0.7 * 56)


class _OpensMarker:
    """Unpickling this would call open(marker, 'w')."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_load_errors_are_one_line_and_name_the_problem(tmp_path):
    model = workloads.get("logreg-digits").make_model(0)
    good = {k: v.detach() for k, v in model.named_parameters()}
    (tmp_path / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(256))
    torch.save({**good, "x": _OpensMarker(tmp_path / "marker")}, tmp_path / "pickled.pt")
    torch.save({**good, "extra.weight": torch.zeros(2)}, tmp_path / "extra.pt")
    torch.save({**good, "bias": torch.zeros(11)}, tmp_path / "shape.pt")
    cases = {
        "garbage.pt": f"{tmp_path / 'garbage.pt'} is not a readable torch checkpoint",
        "pickled.pt": f"{tmp_path / 'pickled.pt'} is not a tensors-only checkpoint (it contains "
                      "pickled Python objects, which are not loaded for safety); save it with "
                      "torch.save(model.state_dict(), path)",
        "extra.pt": f"{tmp_path / 'extra.pt'} has key 'extra.weight', which this workload's "
                    "model does not have (1 unexpected key(s))",
        "shape.pt": f"{tmp_path / 'shape.pt'}: parameter 'bias' has shape (11,), but this "
                    "workload's model needs (10,)",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError) as info:
            checkpoints.load(tmp_path / name, model)
        assert str(info.value) == message
    assert not (tmp_path / "marker").exists()      # the pickled call was never made


def test_displacement_from_the_measured_point_matches_a_dense_computation(linreg):
    """s0_here = (v_i' (theta - theta_ref))^2 and |theta - theta_ref|^2 against numpy's dense
    eigenvectors of H = X'X / n on the same examples."""
    w, params, init, _ = linreg
    torch.manual_seed(2)
    ref = {"weight": torch.randn(1, 64) * 0.3}
    cfg = MeasureConfig(top_k=8, examples=512, hessian_examples=64, bootstrap=20, seed=0)
    m = measure(w, params, init, ref, cfg, "w", 3)
    x, _ = training_examples(w, 512, 0)
    X = x.double().numpy()
    lam, V = np.linalg.eigh(X.T @ X / 512)
    V = V[:, ::-1][:, :8]
    d_here = (params["weight"].double() - ref["weight"].double()).numpy().ravel()
    d_init = (init["weight"].double() - ref["weight"].double()).numpy().ravel()
    assert np.allclose(m.s0_here_top, (V.T @ d_here) ** 2, rtol=1e-7, atol=1e-14)
    assert np.allclose(m.s0_top, (V.T @ d_init) ** 2, rtol=1e-7, atol=1e-14)
    assert m.displacement_here_sq == pytest.approx(d_here @ d_here, rel=1e-12)
    assert not np.allclose(m.s0_here_top, m.s0_top)
    s = m.summary()
    assert s["top_s0_here"] == pytest.approx(m.s0_here_top.tolist())
    assert s["displacement_here_sq"] == m.displacement_here_sq


def test_here_spectrum_rebuilds_s0_from_the_recorded_fields(linreg):
    """At a point measured at the initialisation the here-displacement is the init's, so the
    rebuilt spectrum equals the saved one; elsewhere its s0 sums to |d_here|^2 (up to the
    bulk's estimated count)."""
    from empirical.adapter import here_spectrum
    from nqm.errors import NQMInputError

    w, params, init, _ = linreg
    ref = {"weight": params["weight"] * 0.5}
    cfg = MeasureConfig(top_k=8, examples=512, hessian_examples=64, bootstrap=20, seed=0)
    at_init = measure(w, init, init, ref, cfg, "init", 0)
    sp = to_spectrum(at_init, bins=30)
    rebuilt = here_spectrum(sp, at_init.summary())
    assert np.allclose(rebuilt.s0, sp.s0, rtol=1e-12, atol=0)
    elsewhere = measure(w, params, init, ref, cfg, "w", 5)
    sp2 = here_spectrum(to_spectrum(elsewhere, bins=30), elsewhere.summary())
    assert np.sum(sp2.count * sp2.s0) == pytest.approx(elsewhere.displacement_here_sq, rel=0.05)
    assert sp2.meta["displacement"] == "here"
    old = {k: v for k, v in at_init.summary().items() if k != "top_s0_here"}
    with pytest.raises(NQMInputError, match="no displacement from itself"):
        here_spectrum(sp, old)
