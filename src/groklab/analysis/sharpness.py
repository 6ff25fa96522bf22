"""Sharpness: the top eigenvalue of the training loss's Hessian by power iteration on Hessian-vector
products (Pearlmutter's trick: Hv = ∇(∇L · v), two backward passes, the Hessian never formed)."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn


def hvp(loss_closure: Callable[[], torch.Tensor], params: list[torch.Tensor], vec: list[torch.Tensor]) -> list[torch.Tensor]:
    """H·vec for the Hessian of loss_closure() with respect to params."""
    loss = loss_closure()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vec))
    return list(torch.autograd.grad(dot, params))


def power_iteration(loss_closure: Callable[[], torch.Tensor], params: list[torch.Tensor], iters: int = 100, tol: float = 1e-6,
                    seed: int = 0) -> tuple[float, int]:
    """The eigenvalue of largest magnitude of the Hessian of loss_closure() at params (for the loss near a
    minimum, where the Hessian is ≈ positive semi-definite, the top eigenvalue) and the iterations used.

    Stops when the Rayleigh quotient changes by less than tol·|λ|.
    """
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    lam = 0.0
    for it in range(1, iters + 1):
        Hv = hvp(loss_closure, params, v)
        new = float(sum((a * b).sum() for a, b in zip(Hv, v)).item())  # Rayleigh quotient vᵀHv, |v| = 1
        norm = torch.sqrt(sum((x * x).sum() for x in Hv))
        if norm == 0:
            return 0.0, it
        v = [x / norm for x in Hv]
        if it > 1 and abs(new - lam) <= tol * max(abs(new), 1e-12):
            return new, it
        lam = new
    return lam, iters


def _math_attention():
    # Double backward through the fused CPU attention kernels is not supported everywhere; the plain
    # math kernel always supports it.
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    except ImportError:
        return contextlib.nullcontext()


def top_hessian_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, iters: int = 50, tol: float = 1e-4,
                           seed: int = 0) -> tuple[float, int]:
    """Top Hessian eigenvalue of the mean training loss of `model` on (x, y) over all its parameters."""
    from groklab.train.optim import loss_fn

    params = [p for p in model.parameters() if p.requires_grad]
    was = model.training
    model.eval()  # dropout off: the same loss at every iteration
    try:
        with _math_attention():
            return power_iteration(lambda: loss_fn(model(x), y, loss), params, iters, tol, seed)
    finally:
        model.train(was)
