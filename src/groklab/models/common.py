"""Pieces shared by the models: hook points, activations, the MLP models' hidden stack, and reading
activations out with a cache."""

from __future__ import annotations

import math
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


class _Square(torch.autograd.Function):
    """z ↦ z² with the backward 2·z·g in two passes. Autograd's own `z * z` sees two uses of z and forms g·z
    twice and adds them (four passes over the (B, width) tensor and two temporaries): on the Doshi MLP's
    full batch (4704 × 500) that was 4× slower than this and a fifth of the whole step. Same bits either
    way: g·z + g·z and (g·z)·2 are both the exact double of g·z."""

    generate_vmap_rule = True  # stacked members (train/members.py) vmap the forward pass

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.mul(g, x).mul_(2)


_is_batched = getattr(torch._C._functorch, "is_batchedtensor", lambda x: False)


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """φ(z) = z², the activation of Doshi et al. (2023) and Gromov (2023). Under vmap (stacked members) plain
    `x * x`: functorch runs a custom Function's generated vmap rule through Python at every call (about 1 ms
    a step, more than a small MLP's whole step), while for a product it has a native rule; the bits are the
    same either way (see _Square)."""
    return x * x if _is_batched(x) else _Square.apply(x)


def activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "quadratic": quadratic, "tanh": torch.tanh}[name]


def add_mlp_weights(module: nn.Module, d_in: int, width: int, depth: int, n_out: int, bias: bool) -> None:
    """Give `module` the hidden stack the MLP models share, under their role names: `W_in` (d_in, width),
    `b_in`, `W_hidden.i` (width, width) for the depth − 1 layers after the first, `b_hidden.i`, `W_out`
    (width, n_out), `b_out` (biases only with `bias`). Weights N(0, 1/fan_in), biases zero, drawn in that
    order from torch's global generator (the order fixes which numbers each weight gets for a seed)."""
    module.W_in = nn.Parameter(torch.randn(d_in, width) / math.sqrt(d_in))
    module.b_in = nn.Parameter(torch.zeros(width)) if bias else None
    module.W_hidden = nn.ParameterList(nn.Parameter(torch.randn(width, width) / math.sqrt(width)) for _ in range(depth - 1))
    module.b_hidden = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(depth - 1)) if bias else None
    module.W_out = nn.Parameter(torch.randn(width, n_out) / math.sqrt(width))
    module.b_out = nn.Parameter(torch.zeros(n_out)) if bias else None


def mlp_hidden(module: nn.Module, h: torch.Tensor, act, drop: nn.Module, norms: nn.ModuleList | None = None) -> torch.Tensor:
    """The layers after the first of a stack made by `add_mlp_weights`: h (B, width) through each `W_hidden.i`
    (+ `b_hidden.i`), then `norms[i + 1]` when given (norms[0] belongs to the first layer), `act`, `drop`."""
    for i, W in enumerate(module.W_hidden):
        h = h @ W
        if module.b_hidden is not None:
            h = h + module.b_hidden[i]
        if norms is not None:
            h = norms[i + 1](h)
        h = drop(act(h))
    return h


def mlp_readout(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """(B, width) -> (B, n_out): `W_out` (+ `b_out`)."""
    out = h @ module.W_out
    return out if module.b_out is None else out + module.b_out


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
