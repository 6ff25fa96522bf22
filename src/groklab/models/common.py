"""Pieces shared by the models: hook points, activations, and reading activations out with a cache."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


class HookPoint(nn.Module):
    """An identity whose output is reachable with PyTorch forward hooks, named by its module path
    (e.g. `blocks.0.mlp.hook_post`), as in TransformerLens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def has_hooks(self) -> bool:
        return bool(self._forward_hooks)


def rows(W: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """W[idx] for a weight W (n, d) and integer indices of any shape: (*idx.shape, d).

    Written as an embedding lookup because the backward of plain indexing (index_put_ with accumulate)
    sums the rows' gradients in an order that depends on how the threads split the work, so two identical
    runs with 2 threads drifted apart in the last bits; the embedding backward sums in a fixed order, and
    gives the same bits at any thread count."""
    return F.embedding(idx, W)


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """φ(z) = z², the activation of Doshi et al. (2023) and Gromov (2023)."""
    return x * x


def activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "quadratic": quadratic, "tanh": torch.tanh}[name]


@contextmanager
def hooked(model: nn.Module, names: list[str] | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the model's hook points (all, or those named) into a dict while inside."""
    cache: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, HookPoint) and (names is None or name in names):
            handles.append(module.register_forward_hook(lambda m, i, out, name=name: cache.__setitem__(name, out.detach())))
    try:
        yield cache
    finally:
        for h in handles:
            h.remove()


def run_with_cache(model: nn.Module, x: torch.Tensor, names: list[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and every hook point's activation for input x."""
    with torch.no_grad(), hooked(model, names) as cache:
        logits = model(x)
    return logits, cache
