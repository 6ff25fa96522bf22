"""Fourier analysis over Z_p: spectra of embeddings, input weights and neurons; key frequencies.

DFT convention (used everywhere in groklab.analysis)
----------------------------------------------------
For a real vector v over Z_p (index n = 0..p-1) the unitary DFT is

    ν_k = p^(-1/2) · Σ_n v_n · exp(-2πi·k·n/p),      k = 0..p-1,

so Σ_k |ν_k|² = Σ_n v_n² (Parseval). A real vector has ν_{p-k} = conj(ν_k), so k and p-k describe one
real frequency; we fold them into the *one-sided power spectrum*

    a_0 = |ν_0|²,   a_f = |ν_f|² + |ν_{p-f}|² = 2|ν_f|²   for f = 1..⌊p/2⌋ (odd p),

the squared norm of v's projection onto span{cos(2πfn/p), sin(2πfn/p)}; Σ_f a_f = Σ_n v_n². Frequency f
means w_f = 2πf/p (Nanda et al. 2023 write w_k = 2πk/p). a_0 is the mean's share, not a periodic
component, so "variance" and the IPR (see `groklab.analysis.ipr`) use f ≥ 1 only.

For a matrix whose rows are indexed by Z_p (an embedding W_E (p, d)), the power of frequency f is summed
over the columns: the squared Frobenius norm of the embedding's projection onto that frequency.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.errors import AnalysisError  # noqa: F401  (its home is errors.py; older code imports it from here)


# --- spectra ------------------------------------------------------------------------------------------
def n_freqs(p: int) -> int:
    """Number of one-sided frequencies 0..⌊p/2⌋."""
    return p // 2 + 1


def power_spectrum(v: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """One-sided power a_f (f = 0..⌊p/2⌋) of real v along `dim` (length p); other dims are kept.

    Example: v of shape (p, d) with dim=0 gives (⌊p/2⌋+1, d).
    """
    v = v.detach().to(torch.float64)
    p = v.shape[dim]
    nu = torch.fft.fft(v, dim=dim, norm="ortho")  # unitary DFT
    pw = nu.abs().pow(2).movedim(dim, 0)  # (p, ...)
    h = p // 2
    out = torch.zeros((h + 1,) + tuple(pw.shape[1:]), dtype=torch.float64)
    out[0] = pw[0]
    for f in range(1, h + 1):
        # For even p the Nyquist frequency p/2 has a single coefficient.
        out[f] = pw[f] + (pw[p - f] if p - f != f else 0.0)
    return out.movedim(0, dim)


def frequency_power(E: torch.Tensor) -> torch.Tensor:
    """Power per frequency (⌊p/2⌋+1,) of a matrix E (p, d) whose rows are indexed by Z_p, summed over columns."""
    if E.dim() != 2:
        raise AnalysisError(f"frequency_power needs a matrix (p, d); got shape {tuple(E.shape)}")
    return power_spectrum(E, dim=0).sum(1)


def fourier_basis(p: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, list[str]]:
    """The real orthonormal Fourier basis of R^p: rows 1/√p, then √(2/p)·cos(w_f n), √(2/p)·sin(w_f n) for
    f = 1..⌊p/2⌋ (for even p the Nyquist row is a single cosine). Returns (p, p) and the row names."""
    n = torch.arange(p, dtype=dtype)
    rows, names = [torch.full((p,), 1 / math.sqrt(p), dtype=dtype)], ["const"]
    for f in range(1, p // 2 + 1):
        w = 2 * math.pi * f / p
        if 2 * f == p:
            rows.append(torch.cos(w * n) / math.sqrt(p))
            names.append(f"cos {f}")
            continue
        rows += [torch.cos(w * n) * math.sqrt(2 / p), torch.sin(w * n) * math.sqrt(2 / p)]
        names += [f"cos {f}", f"sin {f}"]
    return torch.stack(rows), names


# --- key frequencies ----------------------------------------------------------------------------------
def key_frequencies(power: torch.Tensor, max_keys: int | None = None, min_gap: float = 4.0, n_keys: int | None = None,
                    cover: float = 0.9) -> list[int]:
    """The key frequencies of a one-sided power spectrum (f = 0..⌊p/2⌋; f = 0 is never a key).

    Sort the periodic powers a_1..a_h in decreasing order and cut at the largest ratio between
    neighbours a_(i)/a_(i+1), i ≤ max_keys (default h/2): a handful of frequencies carrying most of the
    norm, as in the grokked networks of Nanda et al. (2023). If no ratio reaches `min_gap` the spectrum
    has no clear key frequencies (a network that uses them all, like most MLPs of Doshi et al.) and the
    fewest top frequencies that carry `cover` of the periodic power are returned; `key_gap` tells the two
    cases apart. `n_keys` skips the search and takes the top n. Returned in increasing order.
    """
    a = power.detach().to(torch.float64)[1:]
    h = len(a)
    if h == 0:
        return []
    order = torch.argsort(a, descending=True)
    if n_keys is not None:
        if not 1 <= n_keys <= h:
            raise AnalysisError(f"n_keys={n_keys} must be in 1..{h} (the periodic frequencies of Z_{2 * h + 1})")
        return sorted(int(i) + 1 for i in order[:n_keys])
    s = a[order]
    if s[0] <= 0:
        return []
    max_keys = max(1, min(h - 1, h // 2 if max_keys is None else max_keys))
    tiny = s[0] * 1e-12  # exact zeros (a hand-built network) give an infinite, not undefined, ratio
    ratios = (s[:max_keys] + tiny) / (s[1 : max_keys + 1] + tiny)
    best = int(torch.argmax(ratios))
    if ratios[best] >= min_gap:
        keep = order[: best + 1]
    else:
        n = int(torch.searchsorted(torch.cumsum(s, 0) / s.sum(), torch.tensor(cover, dtype=torch.float64))) + 1
        keep = order[: min(n, h)]
    return sorted(int(i) + 1 for i in keep)


def key_gap(power: torch.Tensor, keys: list[int]) -> float:
    """Smallest key power over the largest non-key periodic power: ≫ 1 for a clean set of key
    frequencies, ≈ 1 when the cut is arbitrary; inf when every other frequency is exactly zero."""
    a = power.detach().to(torch.float64)
    rest = [f for f in range(1, len(a)) if f not in keys]
    if not keys or not rest:
        return float("nan")
    lo, hi = a[keys].min().item(), a[rest].max().item()
    return float("inf") if hi == 0 else lo / hi


def explained_fraction(power: torch.Tensor, freqs: list[int]) -> float:
    """Fraction of the periodic power (f ≥ 1, i.e. the variance over Z_p) carried by `freqs`."""
    a = power.detach().to(torch.float64)
    total = a[1:].sum().item()
    return float(a[list(freqs)].sum().item() / total) if total > 0 and freqs else 0.0


def gini(x: torch.Tensor) -> float:
    """Gini coefficient of non-negative values: Σ_ij |x_i - x_j| / (2 n Σ_i x_i); 0 when all are equal,
    (n-1)/n when one value holds everything. Nanda et al. (2023) track it for the embedding's norms in the
    Fourier basis: it rises as the embedding concentrates on the key frequencies."""
    x = x.detach().to(torch.float64).flatten()
    if (x < 0).any():
        raise AnalysisError("gini needs non-negative values")
    n, s = len(x), x.sum().item()
    if n == 0 or s == 0:
        return 0.0
    xs = torch.sort(x).values
    i = torch.arange(1, n + 1, dtype=torch.float64)
    # Σ_ij |x_i - x_j| = 2 Σ_i (2i - n - 1) x_(i) for sorted x
    return float((2 * ((2 * i - n - 1) * xs).sum() / (2 * n * s)).item())


# --- what to look at in a model -------------------------------------------------------------------------
def is_mlp(model: nn.Module) -> bool:
    return hasattr(model, "first_layer") and hasattr(model, "W_in")


def embedding_matrix(model: nn.Module, p: int) -> tuple[torch.Tensor, str]:
    """The matrix (p, D) whose row n is what the model reads for input element n, and its name.

    Transformer: W_E[:p] (the element tokens, without op/=). MLP with `input="embed"`: W_E. One-hot MLP:
    the input weights of both operands side by side, [W_in[:p] | W_in[p:2p]] (p, 2·width).
    """
    W_E = getattr(model, "W_E", None)
    if W_E is not None:
        if W_E.shape[0] < p:
            raise AnalysisError(f"the model's W_E has {W_E.shape[0]} rows, fewer than p={p}")
        return W_E.detach()[:p], "W_E"
    if is_mlp(model):
        W = model.W_in.detach()
        if W.shape[0] != 2 * p:
            raise AnalysisError(f"the one-hot MLP's W_in has {W.shape[0]} rows; expected 2p = {2 * p}")
        return torch.cat([W[:p], W[p:]], dim=1), "W_in"
    raise AnalysisError(f"no embedding to analyse in a {type(model).__name__}: expected W_E or a one-hot MLP's W_in")


def all_pairs(p: int) -> torch.Tensor:
    """Every operand pair (a, b) of Z_p × Z_p in row-major order, (p², 2)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b], dim=1)


def neuron_inputs(model: nn.Module, p: int, layer: int = 0) -> tuple[torch.Tensor, str]:
    """Per-neuron arrays over Z_p whose spectra define each neuron's frequencies, and how they were made.

    One-hot MLP (Doshi et al.): the input weights, (2, p, width) for the x and y blocks of W_in.
    Embedding MLP: W_E @ W_in per operand block, (2, p, width) — exact, the first layer is linear.
    Transformer (Nanda et al.): the MLP neuron activations of block `layer` at the last position over all
    p² inputs, (p, p, d_mlp); attention mixes the operands, so weights alone do not give them.
    """
    if is_mlp(model):
        W = model.W_in.detach()
        if getattr(model, "input", "onehot") == "embed":
            d = model.W_E.shape[1]
            E = model.W_E.detach()
            return torch.stack([E @ W[:d], E @ W[d:]]), "input weights (W_E @ W_in)"
        return torch.stack([W[:p], W[p : 2 * p]]), "input weights (W_in)"
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise AnalysisError(f"cannot find neurons in a {type(model).__name__}: expected an MLP or a Transformer")
    if not -len(blocks) <= layer < len(blocks):
        raise AnalysisError(f"layer={layer} does not exist; the model has {len(blocks)} block(s)")
    layer = layer % len(blocks)
    from groklab.models.common import run_with_cache

    name = f"blocks.{layer}.mlp.hook_post"
    dtype = next(model.parameters()).dtype
    acts = []
    for chunk in all_pairs(p).split(4096):
        _, cache = run_with_cache(model, chunk.to(next(model.parameters()).device), [name])
        acts.append(cache[name][:, -1].to(dtype))  # (B, d_mlp) at the answer position
    return torch.cat(acts).reshape(p, p, -1).cpu(), f"activations (blocks.{layer}.mlp.hook_post)"


def neuron_spectra(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron one-sided power over frequencies, (N, ⌊p/2⌋+1) with column 0 zeroed, and each neuron's
    total non-constant power (N,).

    `inputs` (2, p, N) (weight blocks): a_f summed over the two blocks, so a neuron whose x and y weights
    share one frequency is pure. `inputs` (p, p, N) (activations over (a, b)): the 2-D DFT's component
    (k1, k2) goes to frequency f when its folded frequencies {min(k, p-k)} lie in {0, f} — cos(w_f a),
    cos(w_f(a+b)), cos(w_f a)·cos(w_f b) all belong to f; components mixing two different frequencies belong
    to none and count only in the total.
    """
    x = inputs.detach().to(torch.float64)
    if x.dim() != 3:
        raise AnalysisError(f"neuron_spectra needs (2, p, N) weights or (p, p, N) activations; got {tuple(x.shape)}")
    if x.shape[0] == 2:
        pw = power_spectrum(x, dim=1).sum(0).T.clone()  # (N, h+1)
        total = pw[:, 1:].sum(1)
        full = pw.sum(1)
        pw[:, 0] = 0.0
        return _drop_roundoff(pw, total, full)
    p = x.shape[0]
    if x.shape[1] != p:
        raise AnalysisError(f"activations must be (p, p, N); got {tuple(x.shape)}")
    P = torch.fft.fft2(x, dim=(0, 1), norm="ortho").abs().pow(2)  # (p, p, N)
    k = torch.arange(p)
    fold = torch.minimum(k, p - k)
    f1, f2 = fold[:, None].expand(p, p), fold[None, :].expand(p, p)
    assigned = torch.where((f1 == 0) | (f2 == 0) | (f1 == f2), torch.maximum(f1, f2), torch.full_like(f1, -1))
    h = p // 2
    pw = torch.zeros(x.shape[2], h + 1, dtype=torch.float64)
    for f in range(1, h + 1):
        m = assigned == f
        pw[:, f] = P[m].sum(0)
    total = P.sum((0, 1)) - P[0, 0]
    return _drop_roundoff(pw, total, P.sum((0, 1)))


def _drop_roundoff(pw: torch.Tensor, total: torch.Tensor, full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A constant (or dead) neuron's periodic power is DFT round-off, ~1e-32 of its constant's power; left
    # in, it would give a meaningless IPR. Call it zero.
    flat = total <= 1e-24 * full
    pw = torch.where(flat[:, None], torch.zeros_like(pw), pw)
    return pw, torch.where(flat, torch.zeros_like(total), total)


def dominant_frequencies(spectra: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each neuron's strongest frequency (N,) and the fraction of its non-constant power there (N,).
    A neuron with no periodic power (dead, or constant over the inputs) gets frequency 0."""
    dom = spectra[:, 1:].argmax(1) + 1
    top = spectra.gather(1, dom[:, None]).squeeze(1)
    dom = torch.where(top > 0, dom, torch.zeros_like(dom))
    frac = torch.where(total > 0, top / total.clamp_min(1e-300), torch.zeros_like(top))
    return dom, frac
