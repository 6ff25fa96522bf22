"""The logit lens (nostalgebraist 2020; used by Wang et al. 2024, "Grokked transformers are implicit reasoners",
arXiv 2405.15071): decode the residual stream after every layer through the model's own final LayerNorm
and unembedding, as if the network stopped there.

For the knowledge-composition task Wang et al. read two things: at the position of r1, whether the bridge
entity b of (h, r1) → b is decodable at some layer (the first hop is resolved there), and at the answer
position, from which layer on the tail t is. `logit_lens` returns the decoded logits; `lens_scores` turns
them into per-layer top-1 accuracy and mean reciprocal rank of given targets.

Pure functions of a model and inputs: they never train and never draw.
"""

from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def logit_lens(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n_layers + 1, B, T, n_classes): the residual stream before block 0 (embeddings), then after each block,
    at every position, decoded through `ln_final` and `W_U`, `b_U`. The last entry is the model's own logits.

    Needs the transformer's role names (`blocks`, `ln_final`, `W_U`, `b_U`) and hook points; dropout is off
    while it runs (the model's training mode is restored after).
    """
    from groklab.models.common import hooked

    for name in ("blocks", "ln_final", "W_U", "b_U"):
        if not hasattr(model, name):
            raise ValueError(f"the logit lens needs a transformer (with {name}); got {type(model).__name__}")
    names = [f"blocks.{i}.hook_resid_pre" for i in range(len(model.blocks))] + ["hook_resid_final"]
    was_training = model.training
    model.eval()
    try:
        # Hooking hook_resid_final also makes the model compute every position in its last block.
        with hooked(model, names) as cache:
            model(x)
    finally:
        model.train(was_training)
    W_U, b_U = model.W_U, model.b_U
    layers = [model.ln_final(cache[n]) for n in names[:-1]] + [cache["hook_resid_final"]]  # each (B, T, d)
    return torch.stack([r @ W_U + b_U for r in layers])  # (L+1, B, T, C)


def lens_scores(lens: torch.Tensor, position: int, target: torch.Tensor) -> list[dict[str, float]]:
    """Per layer, how well the decoded logits at `position` name `target` (B,): top-1 accuracy and mean
    reciprocal rank (1 when the target is the top prediction, 1/2 when second, ...)."""
    logits = lens[:, :, position].double()  # (L+1, B, C)
    tgt = target.to(logits.device).long()
    correct = logits.gather(-1, tgt[None, :, None].expand(len(logits), -1, 1))  # (L+1, B, 1)
    rank = (logits > correct).sum(-1) + 1  # (L+1, B): 1 for the top prediction
    return [
        {"layer": i, "top1": (rank[i] == 1).double().mean().item(), "mrr": (1.0 / rank[i].double()).mean().item()}
        for i in range(len(logits))
    ]
