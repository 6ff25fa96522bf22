"""Representations: PCA and t-SNE of embeddings or output-layer weights, and the representation quality
index (RQI) of Liu et al. (2022, §3)."""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.analysis.fourier import AnalysisError, embedding_matrix


def representation_matrix(model: nn.Module, n_elements: int, which: str = "embedding") -> torch.Tensor:
    """(n_elements, D): `embedding` — what the model reads per element (see `embedding_matrix`);
    `unembedding` — the output-layer weights per class, W_U.T or W_out.T (Power et al.'s t-SNE of S5)."""
    if which == "embedding":
        return embedding_matrix(model, n_elements)[0]
    if which == "unembedding":
        W = getattr(model, "W_U", None)
        if W is None:
            W = getattr(model, "W_out", None)
        if W is None:
            raise AnalysisError(f"a {type(model).__name__} has no W_U or W_out")
        return W.detach().T[:n_elements]
    raise AnalysisError(f"which={which!r} is not allowed; choose 'embedding' or 'unembedding'")


def pca(X: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Projections (n, k) of the centred rows of X onto their top-k principal axes, and the fraction of
    variance each axis explains (k,). Signs are fixed so each axis's largest-|loading| entry is positive."""
    X = X.detach().to(torch.float64)
    Xc = X - X.mean(0)
    k = min(k, *Xc.shape)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    V = Vh[:k]
    signs = torch.sign(V.gather(1, V.abs().argmax(1, keepdim=True))).squeeze(1)
    V = V * signs[:, None]
    var = S.pow(2)
    return Xc @ V.T, var[:k] / var.sum().clamp_min(1e-300)


def tsne(X: torch.Tensor, k: int = 2, perplexity: float = 10.0, seed: int = 0) -> torch.Tensor:
    """t-SNE (scikit-learn) of the rows of X, (n, k); needs the `analysis` extra."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise AnalysisError("t-SNE needs scikit-learn: pip install 'groklab[analysis]'") from None
    Xn = X.detach().to(torch.float64).cpu().numpy()
    perplexity = min(perplexity, max(1.0, (len(Xn) - 1) / 3))
    Y = TSNE(n_components=k, perplexity=perplexity, init="pca", random_state=seed).fit_transform(Xn)
    return torch.from_numpy(Y)


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
