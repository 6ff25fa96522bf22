"""The representation quality index of Liu et al. (2022): its definition (`parallelograms`, `rqi`, pure
functions of an embedding matrix) and the metric logged at every evaluation of the toy model. It lives here,
below both the trainer and analysis/ (which re-exports it from `groklab.analysis.representations`)."""

from __future__ import annotations

import torch


def parallelograms(n: int, modular: bool = False, pairs: torch.Tensor | None = None) -> torch.Tensor:
    """All (i, j, m, n') with i + j = m + n' (mod n when `modular`), {i, j} ≠ {m, n'}, each parallelogram
    once (i ≤ j, m ≤ n', (i, j) < (m, n')), as (Q, 4). With `pairs` (P, 2), only pairs among them (Liu et al.
    count the parallelograms of the training set)."""
    if pairs is None:
        i, j = torch.triu_indices(n, n)
        pairs = torch.stack([i, j], 1)
    else:
        pairs = torch.sort(pairs.long(), dim=1).values.unique(dim=0)
    s = pairs.sum(1) % n if modular else pairs.sum(1)
    out = []
    for v in s.unique():
        grp = pairs[s == v]  # (g, 2), sorted rows
        g = len(grp)
        if g < 2:
            continue
        a, b = torch.triu_indices(g, g, offset=1)
        out.append(torch.cat([grp[a], grp[b]], 1))
    return torch.cat(out) if out else torch.zeros(0, 4, dtype=torch.long)


def rqi(E: torch.Tensor, delta: float = 0.01, modular: bool = False, pairs: torch.Tensor | None = None,
        quads: torch.Tensor | None = None) -> float:
    """Representation quality index (Liu et al. 2022): the fraction of parallelograms i + j = m + n that the
    embeddings E (n, d) close,

        RQI = |{(i, j, m, n) : mean_d (Ê_i + Ê_j − Ê_m − Ê_n)_d² < δ}| / |{(i, j, m, n) : i + j = m + n}|,

    with Ê standardized per dimension (zero mean, unit standard deviation over the n numbers), so RQI does
    not change when the embedding is shifted or rescaled; δ = 0.01 as in the paper. A linear embedding
    E_i = i·u + c gives 1, random embeddings ≈ 0. The parallelograms are `quads` (Q, 4) when given (the
    training loop precomputes them), else `parallelograms(n, modular, pairs)`. NaN when there are none.
    For the circular (Fourier) embeddings of modular networks few parallelograms close, so RQI is meant for
    addition-like tasks with linear structure.
    """
    q = parallelograms(len(E), modular, pairs) if quads is None else quads
    if len(q) == 0:
        return float("nan")
    X = E.detach().to(torch.float64).cpu()
    std = X.std(0, keepdim=True)
    # A dimension that does not vary carries no information; it closes every parallelogram exactly.
    X = (X - X.mean(0, keepdim=True)) / torch.where(std > 0, std, torch.ones_like(std))
    gap = X[q[:, 0]] + X[q[:, 1]] - X[q[:, 2]] - X[q[:, 3]]  # (Q, d)
    return float((gap.pow(2).mean(-1) < delta).double().mean().item())


def rqi_probe(p: int, tol: float):
    """A metric function for the evaluation: `rqi` of the model's number embeddings W_E[:p] (the rows of
    the numbers; a transformer's W_E has the op and `=` tokens after them). {} for a model without W_E."""
    quads = parallelograms(p)

    def probe(model) -> dict[str, float]:
        W_E = getattr(model, "W_E", None)
        if not isinstance(W_E, torch.Tensor) or W_E.dim() != 2 or W_E.shape[0] < p:
            return {}
        return {"rqi": rqi(W_E[:p], tol, quads=quads)}

    return probe
