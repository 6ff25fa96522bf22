"""Representations: PCA and t-SNE of embeddings or output-layer weights, and the representation quality
index (RQI) of Liu et al. (2022, §3)."""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.analysis.fourier import embedding_matrix
from groklab.errors import AnalysisError, require
from groklab.tasks.rqi import parallelograms, rqi  # noqa: F401  (defined with the task metric; re-exported here)


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
    TSNE = require("sklearn.manifold", "analysis", "t-SNE", error=AnalysisError).TSNE
    Xn = X.detach().to(torch.float64).cpu().numpy()
    perplexity = min(perplexity, max(1.0, (len(Xn) - 1) / 3))
    Y = TSNE(n_components=k, perplexity=perplexity, init="pca", random_state=seed).fit_transform(Xn)
    return torch.from_numpy(Y)
