"""The curvature of the training loss as a linear operator on flat float64 parameter vectors.

For a fixed data set (x_n, y_n), n = 1..N, split into batches b of n_b examples, the training
loss is L(theta) = sum_b (n_b / N) L_b(theta), L_b the mean loss of batch b, so

    Hessian        H v = sum_b (n_b / N) d/de grad L_b(theta + e v) |_{e=0}
                   (forward-over-reverse: torch.func.jvp of torch.func.grad)
    Gauss-Newton   G v = sum_b (n_b / N) J_b' H_out,b J_b v
                   (J_b = d outputs / d theta; H_out,b = Hessian of L_b in the outputs; one jvp
                   through the model, one Hessian-vector product in output space, one vjp)

The model is a function of theta alone: it is evaluated in eval mode (dropout off) with its
buffers B (BatchNorm running means and variances, ...) FIXED at the values it is given (a
checkpoint's), f(theta, x) = model(x; theta, B), so L_b(theta) is the loss of the network as it
is evaluated.  This is the only definition under which one example's loss exists for
BatchNorm: in train mode an example's output depends on the others in its batch.

Batches are weighted by their size, so a short last batch does not bias the average.  G is
positive semi-definite for convex losses in the outputs (squared error, cross-entropy); H can
have negative eigenvalues away from a minimum.  Everything runs in float64 on a float64 copy of
the model, on the device of its parameters (vectors in and out are CPU numpy arrays).  Each
call to `matvec` is one operator product, counted in `n_products`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.func import functional_call, grad, jvp, vjp, vmap

KINDS = ("hessian", "ggn")


def float64_inputs(x: torch.Tensor) -> torch.Tensor:
    """Floating tensors (inputs, regression targets) in float64; integer ones (token ids,
    class labels) unchanged."""
    return x.double() if x.is_floating_point() else x


class FlatModel:
    """A float64 copy of `model` seen as a function of one flat parameter vector theta (on the
    parameters' device): f(theta, x) = model(x; theta, B) in eval mode (no dropout) with the
    buffers B fixed, so f is a deterministic function of theta.  B is `buffers` (e.g. a
    checkpoint's BatchNorm running statistics) over the model's own buffers, floating ones in
    float64; every call passes (parameters, buffers) to functional_call.  The copy that
    supplies the architecture holds no tensors (meta device)."""

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None):
        params = params if params is not None else dict(model.named_parameters())
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.theta = torch.cat([p.detach().double().reshape(-1) for p in params.values()])
        own = dict(model.named_buffers())
        unknown = sorted(set(buffers or {}) - set(own))
        if unknown:
            raise ValueError(f"buffer '{unknown[0]}' is not a buffer of the model")
        self.buffers = {k: float64_inputs(v.detach()).to(self.theta.device)
                        for k, v in {**own, **(buffers or {})}.items()}
        self.base = copy.deepcopy(model).double().eval().to("meta")

    @property
    def dim(self) -> int:
        """The number of parameters P."""
        return int(self.theta.numel())

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """A flat (P,) vector as the model's {name: tensor} parameters."""
        parts = torch.split(flat, self.sizes)
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def flatten(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: tensor} parameters as one flat float64 (P,) vector."""
        return torch.cat([params[n].detach().double().reshape(-1) for n in self.names])

    def apply(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's output on `x` at {name: tensor} parameters, with the fixed buffers."""
        return functional_call(self.base, (params, self.buffers), (x,))

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.apply(self.unflatten(flat), x)


class CurvatureOperator:
    """H (kind='hessian') or the Gauss-Newton matrix (kind='ggn') of the mean `loss` over
    (x, y) at the parameters of `flat`, applied batch by batch (see the module docstring)."""

    def __init__(self, flat: FlatModel, loss: Callable, x: torch.Tensor, y: torch.Tensor,
                 kind: str = "hessian", batch_size: int = 512):
        if kind not in KINDS:
            raise ValueError(f"curvature kind must be one of {', '.join(KINDS)}, got '{kind}'")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"x and y need the same, non-zero number of examples, got "
                             f"{x.shape[0]} and {y.shape[0]}")
        self.flat, self.loss, self.kind = flat, loss, kind
        self.x, self.y = float64_inputs(x), float64_inputs(y)
        self.n = int(x.shape[0])
        self.batches = [(s, min(s + batch_size, self.n)) for s in range(0, self.n, batch_size)]
        self.shape = (flat.dim, flat.dim)
        self.n_products = 0
        self._vectorize: bool | None = None   # decided by the first matmat

    def _batch_loss(self, x, y):
        return lambda theta: self.loss(self.flat(theta, x), y)

    def _batch_product(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        theta = self.flat.theta
        if self.kind == "hessian":
            return jvp(grad(self._batch_loss(x, y)), (theta,), (v,))[1]

        def model_out(t):
            return self.flat(t, x)

        outputs, jv = jvp(model_out, (theta,), (v,))
        hjv = jvp(grad(lambda o: self.loss(o, y)), (outputs,), (jv,))[1]
        return vjp(model_out, theta)[1](hjv)[0]

    def _product(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(self.flat.theta)
        for s, e in self.batches:
            out = out + (e - s) / self.n * self._batch_product(v, self.x[s:e], self.y[s:e])
        return out

    def matvec(self, v) -> np.ndarray:
        """H v for a flat numpy (or torch) vector; one counted product."""
        self.n_products += 1
        v = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1),
                            device=self.flat.theta.device)
        return self._product(v).cpu().numpy()

    def matmat(self, V, chunk: int = 32) -> np.ndarray:
        """H V for the columns of V (P x m); m products.  Columns go `chunk` at a time under
        vmap, or one by one, whichever the first call measured to be faster for this model
        (vmap over tangents is fast for dense layers but turns convolutions and attention into
        slow batched kernels on CPU)."""
        V = torch.as_tensor(np.asarray(V, dtype=np.float64), device=self.flat.theta.device)
        cols, start = [], 0
        if self._vectorize is None and V.shape[1] >= 4:
            t0 = time.perf_counter()
            try:
                cols.append(vmap(self._product)(V[:, :2].T.contiguous()).T)
            except Exception:   # a model vmap cannot run: products one by one
                cols.append(torch.stack([self._product(V[:, j]) for j in (0, 1)], dim=1))
                t0 = -float("inf")
            t1 = time.perf_counter()
            cols += [self._product(V[:, j])[:, None] for j in (2, 3)]
            self._vectorize = (t1 - t0) <= (time.perf_counter() - t1)
            start = 4
        step = chunk if self._vectorize else 1
        for s in range(start, V.shape[1], step):
            cols.append(vmap(self._product)(V[:, s:s + step].T.contiguous()).T if step > 1
                        else self._product(V[:, s])[:, None])
        self.n_products += V.shape[1]
        return torch.cat(cols, dim=1).cpu().numpy()

    def as_linear_operator(self):
        """This operator as a scipy LinearOperator (for ARPACK's eigsh)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(self.shape, matvec=self.matvec, matmat=self.matmat,
                              dtype=np.float64)

    def loss_value(self) -> float:
        """The training loss L(theta) over the whole set (batches weighted by size)."""
        with torch.no_grad():
            return float(sum((e - s) / self.n * self._batch_loss(self.x[s:e], self.y[s:e])(
                self.flat.theta) for s, e in self.batches))
