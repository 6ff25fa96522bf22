"""The representation quality index of Liu et al. (2022), "Towards understanding grokking" (arXiv 2205.10343).

For addition, a representation is good when the number embeddings form a lattice: E_i + E_j = E_m + E_n
whenever i + j = m + n. Each such quadruple is a parallelogram; RQI is the fraction of all parallelograms
of 0..p-1 that the embeddings satisfy within a tolerance δ:

    RQI = |{(i, j, m, n) : i + j = m + n, mean_d (Ê_i + Ê_j − Ê_m − Ê_n)_d² < δ}| / |{(i, j, m, n) : i + j = m + n}|

where Ê are the embeddings standardized per dimension (zero mean, unit standard deviation over the p
numbers), so RQI does not change when the embeddings are shifted or rescaled. This is the paper's
definition with its δ = 0.01; each parallelogram is two distinct unordered pairs {i, j} ≠ {m, n}.
"""

from __future__ import annotations

import torch


def parallelograms(p: int) -> torch.Tensor:
    """(P, 4) long: every (i, j, m, n) with i ≤ j, m ≤ n, i + j = m + n and (i, j) < (m, n), for 0..p-1."""
    i, j = torch.triu_indices(p, p)  # the pairs i ≤ j
    s = i + j
    quads = []
    for total in range(2 * p - 1):
        idx = (s == total).nonzero().flatten()
        if len(idx) < 2:
            continue
        a, b = torch.triu_indices(len(idx), len(idx), offset=1)  # two distinct pairs with this sum
        quads.append(torch.stack([i[idx[a]], j[idx[a]], i[idx[b]], j[idx[b]]], dim=1))
    return torch.cat(quads) if quads else torch.zeros(0, 4, dtype=torch.long)


def rqi(E: torch.Tensor, quads: torch.Tensor, tol: float) -> float:
    """Fraction of the parallelograms `quads` (P, 4) that the embeddings E (p, d) satisfy within tol."""
    if len(quads) == 0:
        return float("nan")
    E = E.detach().double()
    std = E.std(0, keepdim=True)
    # A dimension that does not vary carries no information; it closes every parallelogram exactly.
    E = (E - E.mean(0, keepdim=True)) / torch.where(std > 0, std, torch.ones_like(std))
    gap = E[quads[:, 0]] + E[quads[:, 1]] - E[quads[:, 2]] - E[quads[:, 3]]  # (P, d)
    return (gap.pow(2).mean(-1) < tol).double().mean().item()


def rqi_probe(p: int, tol: float):
    """A metric function for the evaluation: `rqi` of the model's number embeddings W_E[:p] (the rows of
    the numbers; a transformer's W_E has the op and `=` tokens after them). {} for a model without W_E."""
    quads = parallelograms(p)

    def probe(model) -> dict[str, float]:
        W_E = getattr(model, "W_E", None)
        if not isinstance(W_E, torch.Tensor) or W_E.dim() != 2 or W_E.shape[0] < p:
            return {}
        return {"rqi": rqi(W_E[:p].cpu(), quads, tol)}

    return probe
