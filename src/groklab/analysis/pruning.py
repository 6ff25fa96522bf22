"""Pruning neurons by IPR (Doshi, He & Gromov 2023, §5): remove the k lowest- or highest-IPR neurons of the
first hidden layer (or any given set) and measure train, test, clean-train and corrupted-train accuracy."""

from __future__ import annotations

import copy
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from groklab.analysis.fourier import is_mlp
from groklab.errors import AnalysisError


def n_neurons(model: nn.Module, layer: int = 0) -> int:
    if is_mlp(model):
        return model.W_in.shape[1]
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise AnalysisError(f"no neurons to prune in a {type(model).__name__}")
    return blocks[layer].mlp.W_in.shape[1]


def prune(model: nn.Module, neurons: Iterable[int], layer: int = 0) -> nn.Module:
    """A copy of `model` with the given neurons removed: their outgoing weights set to zero, so nothing
    they compute reaches the output. One-hot/embed MLP: rows of W_out (or of the first W_hidden when
    depth > 1); transformer: rows of blocks[layer].mlp.W_out."""
    idx = sorted({int(i) for i in neurons})
    n = n_neurons(model, layer)
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise AnalysisError(f"neurons {bad[:5]} do not exist; the layer has neurons 0..{n - 1}")
    pruned = copy.deepcopy(model)
    if not idx:
        return pruned
    with torch.no_grad():
        if is_mlp(pruned):
            W = pruned.W_hidden[0] if len(pruned.W_hidden) else pruned.W_out
        else:
            W = pruned.blocks[layer].mlp.W_out
        W[idx] = 0.0
    return pruned


def pruning_curve(model: nn.Module, data, loss: str, scores: torch.Tensor | None = None, ks: Sequence[int] | None = None,
                  orders: Sequence[str] = ("low", "high"), layer: int = 0, neuron_sets: dict[str, Sequence[int]] | None = None) -> list[dict]:
    """Accuracy after removing the k neurons with the lowest ("low") or highest ("high") `scores` (the IPR),
    for each k in `ks`, and after removing each named set in `neuron_sets`.

    Each row: order, k, train_acc, val_acc, train_loss, val_loss and, with corrupted labels,
    train_clean_acc, train_corrupted_acc (the wrong labels still reproduced) and train_corrupted_true_acc.
    """
    from groklab.train.loop import evaluate

    n = n_neurons(model, layer)
    if ks is None:
        ks = sorted({0, *[round(n * f) for f in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]})
    rows = []
    for order in orders:
        if order not in ("low", "high"):
            raise AnalysisError(f"order={order!r} is not allowed; choose 'low' or 'high'")
        if scores is None:
            raise AnalysisError("ordering by IPR needs `scores` (one per neuron)")
        if len(scores) != n:
            raise AnalysisError(f"got {len(scores)} scores for {n} neurons")
        ranked = torch.argsort(scores.to(torch.float64), descending=order == "high", stable=True).tolist()
        for k in ks:
            if not 0 <= k <= n:
                raise AnalysisError(f"k={k} must be in 0..{n}")
            rows.append({"order": order, "k": int(k), **evaluate(prune(model, ranked[:k], layer), data, loss)})
    for name, neurons in (neuron_sets or {}).items():
        rows.append({"order": name, "k": len(set(neurons)), **evaluate(prune(model, neurons, layer), data, loss)})
    return rows
