"""Progress measures of Nanda et al. (2023, §5.1) for modular addition (and subtraction).

The trained network's logits are ≈ Σ_k α_k cos(w_k(a+b-c)) over the key frequencies w_k = 2πk/p. Over the
cube of all (a, b, c) the directions cos(w(a+b-c)) and sin(w(a+b-c)), w = 2πf/p for f = 1..⌊p/2⌋, are
orthogonal (each has squared norm p³/2), so

* restricted logits = the logits projected onto these directions for the key frequencies only;
* excluded logits = the logits minus that projection.

Restricted loss is measured on the whole table (it falls before the test loss does); excluded loss on the
training set (it rises while the memorizing solution is replaced). Both use the run's loss (CE or MSE).
For x-y the directions are cos(w(a-b-c)), sin(w(a-b-c)).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.analysis.fourier import all_pairs
from groklab.errors import AnalysisError

SIGN = {"x+y": 1, "x-y": -1}


def table_logits(model: nn.Module, p: int, chunk: int = 8192) -> torch.Tensor:
    """Logits over every pair, (p, p, n_classes) in float64, indexed [a, b, c]."""
    param = next(model.parameters())
    outs = []
    was = model.training
    model.eval()
    with torch.no_grad():
        for x in all_pairs(p).split(chunk):
            outs.append(model(x.to(param.device)).to(torch.float64).cpu())
    model.train(was)
    return torch.cat(outs).reshape(p, p, -1)


def split_logits(logits: torch.Tensor, freqs: list[int], op: str = "x+y") -> tuple[torch.Tensor, torch.Tensor]:
    """(restricted, excluded) logits: the part of `logits` (p, p, p) along cos/sin(w_f(a±b-c)) for f in
    `freqs`, and the rest. restricted + excluded = logits.

    Every direction depends on (a, b) only through s = a±b mod p, so the inner products are taken on the
    (p, p) table M[s, c] = Σ_{a±b≡s} logits[a, b, c] and the projection is a (p, p) table indexed by s.
    """
    if op not in SIGN:
        raise AnalysisError(f"restricted/excluded loss is defined for task.op in {sorted(SIGN)}; got {op!r}")
    p = logits.shape[0]
    if logits.shape != (p, p, p):
        raise AnalysisError(f"logits must be (p, p, p) over the whole table; got {tuple(logits.shape)}")
    n = torch.arange(p)
    s = (n[:, None] + SIGN[op] * n[None, :]) % p  # (p, p)
    M = torch.zeros(p, p, dtype=logits.dtype).index_add_(0, s.flatten(), logits.reshape(p * p, p))  # (s, c)
    R = torch.zeros(p, p, dtype=logits.dtype)
    diff = (n[:, None] - n[None, :]).to(logits.dtype)  # s - c
    for f in freqs:
        if not 1 <= f <= p // 2:
            raise AnalysisError(f"frequency {f} is not in 1..{p // 2}")
        for D in (torch.cos(2 * math.pi * f / p * diff), torch.sin(2 * math.pi * f / p * diff)):
            norm = p * D.pow(2).sum()  # each s occurs for p pairs (a, b)
            if norm > 0:
                R += (M * D).sum() / norm * D
    restricted = R[s]  # (p, p, p)
    return restricted, logits - restricted


def progress_measures(model: nn.Module, data, p: int, freqs: list[int], loss: str, op: str = "x+y") -> dict:
    """Full train/val loss, restricted loss (whole table), excluded loss (training set), for one model."""
    from groklab.train.optim import loss_fn

    logits = table_logits(model, p)
    restricted, excluded = split_logits(logits, freqs, op)
    flat = lambda t: t.reshape(p * p, -1)  # noqa: E731 — row a·p + b is the pair (a, b)
    # Labels of the whole table: the true answers (validation labels are never corrupted).
    x = all_pairs(p)
    y_all = (x[:, 0] + SIGN[op] * x[:, 1]) % p
    tr = (data.x_train[:, 0] * p + data.x_train[:, 1]).cpu()
    va = (data.x_val[:, 0] * p + data.x_val[:, 1]).cpu()
    y_tr, y_va = data.y_train.cpu(), data.y_val.cpu()

    def L(lg: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> float:
        return loss_fn(flat(lg)[idx], y, loss).item()

    return {
        "train_loss": L(logits, tr, y_tr),
        "val_loss": L(logits, va, y_va),
        "restricted_loss": loss_fn(flat(restricted), y_all, loss).item(),
        "excluded_loss": L(excluded, tr, y_tr),
    }


def sum_squared_weights(model: nn.Module) -> float:
    """Σ of every parameter squared (Nanda et al.: it falls during cleanup, under weight decay)."""
    return float(sum(p.detach().to(torch.float64).pow(2).sum().item() for p in model.parameters()))
