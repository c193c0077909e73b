"""The curvature operator against dense oracles from torch.func."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev

from empirical.curvature import CurvatureOperator, FlatModel
from tests.helpers import checkpoint_of, trained_batchnorm


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, y = torch.randn(37, 5), torch.randint(0, 3, (37,))
    return FlatModel(model), x, y


def test_hessian_operator_equals_dense_hessian(tiny):
    flat, x, y = tiny
    loss = nn.functional.cross_entropy
    dense = hessian(lambda t: loss(flat(t, x.double()), y))(flat.theta).numpy()
    # 37 examples in batches of 10: the short last batch must be weighted by its size
    op = CurvatureOperator(flat, loss, x, y, batch_size=10)
    assert np.abs(op.matmat(np.eye(flat.dim)) - dense).max() < 1e-12 * np.abs(dense).max() * 100
    v = np.random.default_rng(0).standard_normal(flat.dim)
    assert np.allclose(op.matvec(v), dense @ v, rtol=0, atol=1e-13)
    assert op.n_products == flat.dim + 1


def test_ggn_operator_equals_dense_gauss_newton_and_is_psd(tiny):
    flat, x, y = tiny
    op = CurvatureOperator(flat, nn.functional.cross_entropy, x, y, kind="ggn", batch_size=8)
    G = op.matmat(np.eye(flat.dim))
    xd = x.double()
    J = jacrev(lambda t: flat(t, xd))(flat.theta)          # (N, classes, P)
    p = flat(flat.theta, xd).softmax(-1)
    H_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    dense = torch.einsum("nkp,nkl,nlq->pq", J, H_out, J).numpy() / x.shape[0]
    assert np.abs(G - dense).max() < 1e-13
    assert np.linalg.eigvalsh(G).min() > -1e-12


def test_loss_value_and_validation(tiny):
    flat, x, y = tiny
    op = CurvatureOperator(flat, nn.functional.cross_entropy, x, y, batch_size=10)
    exact = float(nn.functional.cross_entropy(flat(flat.theta, x.double()), y))
    assert op.loss_value() == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError, match="kind"):
        CurvatureOperator(flat, nn.functional.cross_entropy, x, y, kind="fisher")
    with pytest.raises(ValueError, match="same, non-zero number"):
        CurvatureOperator(flat, nn.functional.cross_entropy, x, y[:5])


@pytest.mark.parametrize("vectorize", [True, False, None])
def test_matmat_paths_agree_with_matvec(tiny, vectorize):
    flat, x, y = tiny
    op = CurvatureOperator(flat, nn.functional.cross_entropy, x, y, batch_size=10)
    op._vectorize = vectorize            # vmap, column loop, or decided by timing
    V = np.random.default_rng(1).standard_normal((flat.dim, 9))
    HV = op.matmat(V, chunk=4)
    assert np.allclose(HV, np.stack([op.matvec(v) for v in V.T], 1), rtol=0, atol=1e-13)
    assert op.n_products == 18


@pytest.mark.parametrize("kind", ["hessian", "ggn"])
def test_batchnorm_operator_is_that_of_the_eval_mode_loss_with_fixed_buffers(kind):
    model = trained_batchnorm()
    params, buffers = checkpoint_of(model)
    torch.manual_seed(3)
    x, y = torch.randn(23, 5), torch.randint(0, 3, (23,))
    xd, loss = x.double(), nn.functional.cross_entropy
    # the architecture from a fresh model (other weights, initial statistics), the state given
    fresh = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    flat = FlatModel(fresh, params, buffers)
    oracle = copy.deepcopy(model).double().eval()          # the network as it is evaluated
    torch.testing.assert_close(flat(flat.theta, xd), oracle(xd), rtol=0, atol=1e-14)

    def eval_loss(t):
        return loss(functional_call(oracle, flat.unflatten(t), (xd,)), y)

    op = CurvatureOperator(flat, loss, x, y, kind=kind, batch_size=10)
    A = op.matmat(np.eye(flat.dim))
    if kind == "hessian":
        dense = hessian(eval_loss)(flat.theta).numpy()
    else:
        J = jacrev(lambda t: functional_call(oracle, flat.unflatten(t), (xd,)))(flat.theta)
        p = oracle(xd).detach().softmax(-1)
        H_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        dense = torch.einsum("nkp,nkl,nlq->pq", J, H_out, J).numpy() / x.shape[0]
    assert np.abs(A - dense).max() < 1e-12 * np.abs(dense).max()
    assert op.loss_value() == pytest.approx(float(eval_loss(flat.theta)), rel=1e-13)
    # the buffers matter: the initial statistics give another loss, and nothing updates them
    assert abs(CurvatureOperator(FlatModel(fresh, params), loss, x, y).loss_value()
               - op.loss_value()) > 1e-3
    assert all(torch.equal(flat.buffers[k].to(v.dtype), v) for k, v in buffers.items())


def test_flat_model_refuses_unknown_buffers():
    model = trained_batchnorm()
    with pytest.raises(ValueError, match="buffer 'bn.mean' is not a buffer of the model"):
        FlatModel(model, buffers={"bn.mean": torch.zeros(6)})
