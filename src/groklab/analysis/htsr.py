"""Heavy-tailed self-regularization (HTSR): the power-law exponent α of each weight matrix's eigenvalue
spectrum, its Marchenko–Pastur bulk, spikes and correlation traps.

Martin & Mahoney (2021, "Implicit self-regularization in deep neural networks", JMLR 22(165)) fit the tail of
the empirical spectral density (ESD) of X = WᵀW/N (W an N × M weight matrix, N ≥ M) with a power law
p(λ) ∝ λ^(−α): α > 6 looks random (Marchenko–Pastur), 2 < α < 6 heavy-tailed (well trained), α < 2 very
heavy-tailed. Prakash & Martin (2025, "Grokking and generalization collapse: insights from HTSR theory",
arXiv 2506.04434) report, for very long grokking runs, an "anti-grokking" phase with α falling below 2 and
correlation traps appearing: eigenvalues of the element-wise *randomized* W beyond the MP bulk edge, left by
a few very large entries that shuffling cannot spread out.

The fit (Clauset, Shalizi & Newman 2009, as the `powerlaw` package and weightwatcher do): for a lower
cutoff xmin the maximum-likelihood exponent of the tail λ ≥ xmin is α̂ = 1 + n / Σ ln(λ_i / xmin); xmin is
the candidate that minimizes the Kolmogorov–Smirnov distance between the tail's empirical CDF and the
fitted power law. We implement it here (a few lines of numpy) rather than call weightwatcher: weightwatcher
finds layers by module type (nn.Linear, Conv), while groklab's models hold role-named nn.Parameters (W_in,
W_out, W_U, ...) that it does not see, and it takes ~10 s to import.

Marchenko–Pastur: an N × M matrix of i.i.d. entries of variance σ² has the ESD of X = WᵀW/N inside
[σ²(1 − √(M/N))², σ²(1 + √(M/N))²]. Eigenvalues above the edge (plus a Tracy–Widom margin) are spikes;
in the randomized matrix they are correlation traps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from groklab.errors import AnalysisError


def esd(W: torch.Tensor) -> np.ndarray:
    """Eigenvalues of X = WᵀW / N for W (N, M) with N ≥ M (W is transposed otherwise), ascending, float64."""
    W = W.detach().to(torch.float64).cpu()
    if W.ndim != 2:
        raise AnalysisError(f"the ESD needs a matrix; got shape {tuple(W.shape)}")
    if W.shape[0] < W.shape[1]:
        W = W.T
    s = torch.linalg.svdvals(W)
    return np.sort((s**2 / W.shape[0]).numpy())


def fit_power_law(eigs: np.ndarray, min_tail: int = 10) -> dict:
    """Fit p(λ) ∝ λ^(−α) to the tail of the eigenvalues: {"alpha", "xmin", "n_tail", "ks"}.

    xmin runs over the eigenvalues leaving at least `min_tail` in the tail; α̂ = 1 + n / Σ ln(λ/xmin) (the
    continuous MLE); the chosen xmin minimizes the KS distance max |S(λ) − (1 − (λ/xmin)^(1−α̂))| over the tail."""
    x = np.sort(np.asarray(eigs, dtype=np.float64))
    x = x[x > 1e-12 * max(float(x.max(initial=0.0)), 1e-300)]  # zero eigenvalues (rank deficiency) carry no tail
    n_all = len(x)
    if n_all < max(2, min_tail):
        return {"alpha": math.nan, "xmin": math.nan, "n_tail": n_all, "ks": math.nan}
    best = None
    logx = np.log(x)
    for k in range(0, n_all - min_tail + 1):
        tail = logx[k:] - logx[k]
        s = tail.sum()
        if s <= 0:
            continue
        n = n_all - k
        alpha = 1.0 + n / s
        cdf_fit = 1.0 - np.exp((1.0 - alpha) * tail)
        # the empirical CDF jumps at each point: compare with both sides of the step
        ecdf_hi = np.arange(1, n + 1) / n
        ecdf_lo = np.arange(0, n) / n
        ks = float(max(np.abs(ecdf_hi - cdf_fit).max(), np.abs(ecdf_lo - cdf_fit).max()))
        if best is None or ks < best["ks"]:
            best = {"alpha": float(alpha), "xmin": float(x[k]), "n_tail": int(n), "ks": ks}
    return best or {"alpha": math.nan, "xmin": math.nan, "n_tail": 0, "ks": math.nan}


def mp_edge(W: torch.Tensor) -> float:
    """The upper edge σ²(1 + √(M/N))² of the Marchenko–Pastur bulk of X = WᵀW/N (N ≥ M), σ² the entries' variance."""
    N, M = max(W.shape), min(W.shape)
    var = float(W.detach().to(torch.float64).var())
    return var * (1.0 + math.sqrt(M / N)) ** 2


def _beyond(eigs: np.ndarray, edge: float, M: int, margin: float) -> int:
    # Tracy–Widom: the largest eigenvalue of a random matrix overshoots the edge by O(M^(-2/3)) relatively;
    # `margin` such units are allowed before an eigenvalue counts as outside the bulk.
    return int((eigs > edge * (1.0 + margin * M ** (-2.0 / 3.0))).sum())


def layer_htsr(W: torch.Tensor, *, seed: int = 0, min_tail: int = 10, margin: float = 4.0) -> dict:
    """HTSR numbers of one weight matrix: power-law fit of its ESD, MP bulk edge, spikes (eigenvalues beyond
    the edge: learned correlations) and correlation traps (the same for the element-wise shuffled matrix)."""
    W = W.detach().to(torch.float64).cpu()
    if W.ndim != 2:
        W = W.reshape(-1, W.shape[-1])
    N, M = max(W.shape), min(W.shape)
    eigs = esd(W)
    fit = fit_power_law(eigs, min_tail=min_tail)
    edge = mp_edge(W)
    g = torch.Generator().manual_seed(seed)
    Wr = W.flatten()[torch.randperm(W.numel(), generator=g)].reshape(W.shape)
    reigs = esd(Wr)
    return {
        "rows": int(W.shape[0]), "cols": int(W.shape[1]), **fit,
        "lambda_max": float(eigs[-1]), "mp_edge": edge, "n_spikes": _beyond(eigs, edge, M, margin),
        "rand_lambda_max": float(reigs[-1]), "n_traps": _beyond(reigs, edge, M, margin),
        "stable_rank": float(eigs.sum() / eigs[-1]) if eigs[-1] > 0 else math.nan,
        "log10_spectral_norm": math.log10(float(eigs[-1]) * N) / 2 if eigs[-1] > 0 else math.nan,
    }


def weight_matrices(model: torch.nn.Module, min_dim: int = 10) -> dict[str, torch.Tensor]:
    """The model's weight matrices whose smaller side is at least `min_dim`; biases (`b_*`) and norms are
    left out. Per-head weights (H, a, b) become the whole map: heads side by side along the smaller side,
    W_Q (H, d_model, d_head) → (d_model, H·d_head), W_O (H, d_head, d_model) → (H·d_head, d_model)."""
    out = {}
    for name, p in model.named_parameters():
        if p.ndim < 2 or name.rsplit(".", 1)[-1].startswith("b_"):
            continue
        W = p.detach()
        if W.ndim == 3:
            H, a, b = W.shape
            W = W.permute(1, 0, 2).reshape(a, H * b) if a > b else W.reshape(H * a, b)
        elif W.ndim > 3:
            W = W.reshape(-1, W.shape[-1])
        if min(W.shape) >= min_dim:
            out[name] = W
    return out


def model_htsr(model: torch.nn.Module, *, min_dim: int = 10, seed: int = 0) -> list[dict]:
    """`layer_htsr` of every weight matrix of the model, one dict per matrix with "layer" its parameter name."""
    return [{"layer": name, **layer_htsr(W, seed=seed)} for name, W in weight_matrices(model, min_dim).items()]
