"""The noise-scale tracker: the EMA ratio against literal weighted sums, bias correction,
interval coverage, agreement with the per-example measurement, the log and bad inputs."""

import json
import math

import numpy as np
import pytest
import torch

from empirical import workloads
from empirical.curvature import FlatModel
from empirical.ema_ratio import EmaRatio
from empirical.noise import noise_stats, per_example_grads
from empirical.track import NoiseScaleTracker, TrackerConfig, two_batch_pair
from nqm.noise_log import load_noise_log, tracked_at
from tests.helpers import Dense


@pytest.fixture(scope="module")
def logreg():
    """logreg-digits at its initialisation, its training set and the per-example gradients."""
    w = workloads.get("logreg-digits")
    x, y = w.train_set()
    model = w.make_model(0)
    grads = per_example_grads(FlatModel(model), w.loss, x, y)
    return w, model, x, y, grads


def literal(pairs, beta, z=1.96):
    """The ratio, se, interval and effective n of empirical.ema_ratio written with explicit
    weights; the interval by scanning rho on a grid up to 5 R for Fieller's inequality
    (A - rho B)^2 <= z^2 W (V_a - 2 rho C + rho^2 V_b) (inf: it holds at the grid's end)."""
    a, b = np.array(pairs, dtype=float).T
    n = len(a)
    w = (1 - beta) * beta ** np.arange(n - 1, -1, -1)
    w /= w.sum()
    ma, mb = w @ a, w @ b
    r = ma / mb
    w2 = np.sum(w**2)
    va = np.sum(w * (a - ma) ** 2) / (1 - w2)
    vb = np.sum(w * (b - mb) ** 2) / (1 - w2)
    cab = np.sum(w * (a - ma) * (b - mb)) / (1 - w2)
    se = math.sqrt(w2 * (va - 2 * r * cab + r * r * vb)) / mb
    rho = np.linspace(0, 5 * r, 500001)
    inside = (ma - rho * mb) ** 2 <= z * z * w2 * (va - 2 * rho * cab + rho**2 * vb)
    hi = math.inf if inside[-1] else rho[inside].max()
    return r, se, (rho[inside].min(), hi), 1 / w2, rho[1]


def test_ema_ratio_equals_literal_weighted_sums():
    """Against `literal` at several n and decays (the grid resolves the interval's ends to
    one grid step), including intervals unbounded above (n = 2)."""
    rng = np.random.default_rng(1)
    pairs = list(zip(rng.normal(50, 20, 40), rng.normal(1, 1.0, 40)))
    unbounded = 0
    for beta in (0.5, 0.9, 0.99):
        r = EmaRatio(beta)
        for n, (a, b) in enumerate(pairs, 1):
            est = r.add(a, b)
            if n in (2, 7, 40):
                ratio, se, ci, neff, step = literal(pairs[:n], beta)
                assert est.ratio == pytest.approx(ratio, rel=1e-10)
                assert est.se == pytest.approx(se, rel=1e-7)
                assert est.effective_n == pytest.approx(neff, rel=1e-10)
                assert abs(est.interval[0] - ci[0]) <= 2 * step
                assert est.interval[1] == ci[1] == math.inf or \
                    abs(est.interval[1] - ci[1]) <= 2 * step
                unbounded += est.interval[1] == math.inf
    assert 0 < unbounded < 9                       # both kinds were checked


def test_first_update_is_the_raw_estimate_bias_corrected():
    """Adam's bias correction: after one update the averages are the raw pair itself (no
    shrinkage towards the zero start), so B_simple is the raw ratio, with no interval."""
    tr = NoiseScaleTracker(config=TrackerConfig(ema=0.99))
    gs, gb = torch.tensor([3.0, 1.0]), torch.tensor([2.0, 0.5])
    est = tr.update(0, gs, gb, b_small=4, b_big=32)
    s, g2 = two_batch_pair(10.0, 4.25, 4, 32)
    assert (tr.trace_sigma, tr.g2) == pytest.approx((s, g2), rel=1e-12)
    assert tr.b_simple == pytest.approx(s / g2, rel=1e-12) and est.interval is None
    assert s == pytest.approx((10.0 - 4.25) / (1 / 4 - 1 / 32))
    assert g2 == pytest.approx((32 * 4.25 - 4 * 10.0) / 28)
    pe = NoiseScaleTracker(config=TrackerConfig(ema=0.9))
    g = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    pe.update_per_example(5, g)
    mean = g.double().mean(0)
    tr_s = 3 / 2 * (float(g.double().square().sum(1).mean()) - float(mean @ mean))
    assert pe.trace_sigma == pytest.approx(tr_s, rel=1e-12)
    assert pe.g2 == pytest.approx(float(mean @ mean) - tr_s / 3, rel=1e-12)


def _gaussian_coverage(G, sd, bs, bb, seeds, updates=200, beta=0.95):
    """How often the interval covers tr(Sigma)/|G|^2 for Gaussian batch gradients with mean G
    and per-example sd `sd` (the small batch inside the big one); and how often it is
    unbounded above."""
    P = len(G)
    truth = np.sum(sd**2) / (G @ G)
    cover = unbounded = 0
    for seed in range(seeds):
        rng, r = np.random.default_rng(seed), EmaRatio(beta)
        for _ in range(updates):
            gs = G + sd * rng.standard_normal(P) / math.sqrt(bs)
            rest = G + sd * rng.standard_normal(P) / math.sqrt(bb - bs)
            gb = (bs * gs + (bb - bs) * rest) / bb
            est = r.add(*two_batch_pair(gs @ gs, gb @ gb, bs, bb))
        cover += est.interval[0] <= truth <= est.interval[1]
        unbounded += est.interval[1] == math.inf
    return cover, unbounded


def test_interval_covers_the_true_value():
    """Gaussian batch gradients with known G and Sigma, b_small = 8, b_big = 64, 200 updates
    with ema 0.95.  B_simple = 100: over 200 seeds the 95% interval must cover the truth in
    90-99% of the runs (binomial sd 1.5% at 95%; 96.7% in a 300-seed run, 96.3% with ema 0.99
    and 400 updates).  B_simple = 1000 (|G|^2 barely resolved at b_big = 64): over 100 seeds
    at least 90% (99% when written), most intervals unbounded above."""
    sd = np.sqrt(np.linspace(0.5, 1.5, 20))
    cover, _ = _gaussian_coverage(np.full(20, 0.1), sd, 8, 64, 200)
    assert 180 <= cover <= 198, cover
    cover, unbounded = _gaussian_coverage(np.full(20, 0.1 / math.sqrt(10)), sd, 8, 64, 100)
    assert cover >= 90 and unbounded >= 50, (cover, unbounded)


def test_tracker_agrees_with_the_per_example_measurement(logreg):
    """At fixed parameters, batches of 256 drawn with replacement from the 1437 training
    examples, b_small = 16 (`backward`), 200 updates, ema 0.95, seed 0: the interval must
    contain `nqm measure`'s per-example B_simple (noise_stats) and the set's plug-in value
    tr S/|g|^2 that the draws estimate (they differ by about B_simple/N, 3.5% here, well
    inside the interval's half-width of about 18%).  The same with per-example updates of 32
    examples."""
    w, model, x, y, grads = logreg
    st = noise_stats(grads, Dense(np.eye(grads.shape[1])), np.eye(grads.shape[1])[:, :1],
                     hessian_examples=2, bootstrap=10, seed=0)
    g = grads.mean(0)
    plug = (np.einsum("np,np->n", grads, grads).mean() - g @ g) / (g @ g)
    gen = torch.Generator().manual_seed(0)
    two = NoiseScaleTracker(model)
    pe = NoiseScaleTracker(model)
    gt = torch.from_numpy(grads)
    for k in range(200):
        idx = torch.randint(0, x.shape[0], (256,), generator=gen)
        two.backward(k, w.loss, x[idx], y[idx], b_small=16)
        pe.update_per_example(k, gt[idx[:32]])
    for tr in (two, pe):
        lo, hi = tr.interval
        assert lo <= st.b_simple <= hi and lo <= plug <= hi, (tr.b_simple, tr.interval, plug)
        assert hi - lo < 0.6 * st.b_simple                      # and informative


def test_backward_leaves_the_big_batch_gradient(logreg):
    """`backward` must leave in .grad the gradient of the mean loss over the whole batch and
    update with the first b_small examples' gradient."""
    w, _, x, y, _ = logreg
    model = w.make_model(3)
    tr = NoiseScaleTracker(model)
    loss = tr.backward(0, w.loss, x[:100], y[:100], b_small=10)
    got = [p.grad.clone() for p in model.parameters()]
    full = w.loss(model(x[:100]), y[:100])
    want = torch.autograd.grad(full, list(model.parameters()))
    small = torch.autograd.grad(w.loss(model(x[:10]), y[:10]), list(model.parameters()))
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(loss) == pytest.approx(float(full.detach()), rel=1e-6)
    n_s = sum(float(s.double().square().sum()) for s in small)
    n_b = sum(float(b.double().square().sum()) for b in want)
    assert tr.b_simple == pytest.approx(np.divide(*two_batch_pair(n_s, n_b, 10, 100)), rel=1e-4)


def test_log_round_trip(tmp_path):
    path = tmp_path / "noise.jsonl"
    rng = np.random.default_rng(0)
    with NoiseScaleTracker(log=path, config=TrackerConfig(ema=0.9),
                           info={"run": "test"}) as tr:
        seen = []
        for k in range(5):
            gs, gb = torch.from_numpy(rng.normal(1, 1, 8)), torch.from_numpy(rng.normal(1, .3, 8))
            tr.update(10 * k, gs, gb, 4, 64, loss=1.0 / (k + 1), metric=0.5 - 0.1 * k)
            seen.append((tr.b_simple, tr.interval))
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert lines[0]["kind"] == "config" and lines[0]["info"] == {"run": "test"}
    assert lines[0]["ema"] == 0.9 and "torch" in lines[0]["versions"]
    assert [r["raw"]["b_big"] for r in lines[1:]] == [64] * 5
    assert lines[1]["interval"] is None and lines[2]["raw"]["small_sq_norm"] > 0
    log = load_noise_log(path)
    assert [p.step for p in log.points] == [0, 10, 20, 30, 40]
    for p, (b, ci) in zip(log.points, seen):
        assert p.b_simple == b and p.interval == ci
    assert tracked_at(log, target=0.25)[0].step == 30          # first metric <= 0.25
    assert tracked_at(log, target=0.01) == (log.points[-1], "end of log")
    with NoiseScaleTracker(log=path) as again:                 # append: a new run is read
        again.update(7, torch.ones(2), torch.ones(2) / 2, 1, 2)
    assert [p.step for p in load_noise_log(path).points] == [7]
    with open(path, "a") as fh:                                # a torn last line is dropped
        fh.write('{"kind": "update", "ste')
    torn = load_noise_log(path)
    assert len(torn.points) == 1 and "incomplete" in torn.notes[0]


@pytest.mark.parametrize("call, match", [
    (lambda t: t.update(0, torch.ones(3), torch.ones(4), 2, 8), "big_grads shapes"),
    (lambda t: t.update(0, torch.ones(3), torch.ones(3), 8, 8), "b_small must be < b_big"),
    (lambda t: t.update(0, torch.ones(3), torch.ones(3), 0, 8), "b_small must be an integer"),
    (lambda t: t.update_norms(0, 2.0, 1.0, 2, float("nan")), "b_big must be an integer"),
    (lambda t: t.update(0, torch.tensor([1.0, float("nan")]), torch.ones(2), 2, 8),
     "small_grads contains non-finite"),
    (lambda t: t.update(0, torch.ones(2), [torch.tensor([float("inf"), 1.0])], 2, 8),
     "big_grads contains non-finite"),
    (lambda t: t.update(-1, torch.ones(2), torch.ones(2), 2, 8), "step must be"),
    (lambda t: t.update(0, [], torch.ones(2), 2, 8), "small_grads must be a tensor"),
    (lambda t: t.update(0, (g for g in [torch.ones(2)]), (g for g in [torch.ones(3)]), 2, 8),
     "big_grads shapes"),
    (lambda t: t.update_norms(0, -1.0, 1.0, 2, 8), "small_sq_norm"),
    (lambda t: t.update_per_example(0, torch.ones(1, 3)), "per_example_grads needs"),
    (lambda t: t.update_per_example(0, [torch.ones(4, 3), torch.ones(5)]),
     "per_example_grads needs"),
    (lambda t: t.update_per_example(0, torch.full((3, 2), float("nan"))),
     "per_example_grads contains non-finite"),
    (lambda t: t.update(0, torch.ones(2), torch.ones(2), 2, 8, loss=float("nan")), "loss"),
    (lambda t: t.backward(0, None, torch.ones(4, 2), torch.ones(4), 2), "model must be given"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(NoiseScaleTracker())


def test_bad_config_names_the_field():
    for kwargs, match in (({"ema": 1.0}, "ema"), ({"z": 0.0}, "z"), ({"log_every": 0},
                                                                     "log_every")):
        with pytest.raises(ValueError, match=match):
            TrackerConfig(**kwargs)
    with pytest.raises(ValueError, match="info"):
        NoiseScaleTracker(info={"f": object()})
    tr = NoiseScaleTracker()
    tr.update(0, torch.ones(2), torch.ones(2) / 2, 1, 2)
    with pytest.raises(ValueError, match="per-example"):
        tr.update_per_example(1, torch.ones(3, 2))


@pytest.mark.slow
def test_interval_coverage_on_real_gradients(logreg):
    """Batches drawn with replacement from logreg-digits' per-example gradients (b_small = 16,
    b_big = 256, 200 updates, ema 0.95): over 100 seeds the interval covers the set's plug-in
    B_simple in at least 88 (93 when written)."""
    *_, grads = logreg
    g = grads.mean(0)
    plug = (np.einsum("np,np->n", grads, grads).mean() - g @ g) / (g @ g)
    cover = 0
    for seed in range(100):
        rng, r = np.random.default_rng(seed), EmaRatio(0.95)
        for _ in range(200):
            idx = rng.integers(0, len(grads), 256)
            gs, gb = grads[idx[:16]].mean(0), grads[idx].mean(0)
            est = r.add(*two_batch_pair(gs @ gs, gb @ gb, 16, 256))
        cover += est.interval[0] <= plug <= est.interval[1]
    assert cover >= 88, cover
