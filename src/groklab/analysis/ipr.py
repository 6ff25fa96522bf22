"""Inverse participation ratio of neurons in the Fourier basis (Doshi, He & Gromov 2023, eq. for IPR).

    IPR = Σ_f a_f² / (Σ_f a_f)²,   f = 1..⌊p/2⌋,

over a neuron's one-sided power spectrum a_f = |ν_f|² + |ν_{p-f}|² (unitary DFT; see
`groklab.analysis.fourier` for the convention), the constant component f = 0 left out. In Doshi et al.'s
notation this is Σ|ν_k|⁴ / (Σ|ν_k|²)² with ν_k the one-sided coefficients. The IPR is scale free and lies in
[1/⌊p/2⌋, 1]:

* a pure cosine A·cos(2πfn/p + φ) (+ any constant), for any amplitude, phase and f ≥ 1: IPR = 1 — all
  its power sits at one frequency. (Under the two-sided DFT over all p coefficients, where k and p-k
  count apart, the same cosine gives 1/2: two equal coefficients. Two-sided IPR = one-sided IPR / 2 for
  any zero-mean vector.)
* a Gaussian random vector v ~ N(0, σ²I_p), odd p: E[IPR] = 4/(p+1) exactly. Derivation: the periodic
  part v⊥ (v minus its mean) is Gaussian in p-1 dimensions and a_f = |P_f v⊥|² with P_f the projection on
  the 2-D plane of frequency f, so a_f ~ σ²χ²_2 (E a_f² = 8σ⁴) and Σ_f a_f = |v⊥|² ~ σ²χ²_{p-1}. A Gaussian
  vector's norm is independent of its direction, hence E[Σ a_f²] = E[|v⊥|⁴]·E[IPR]:
  E[IPR] = ((p-1)/2 · 8) / ((p-1)(p+1)) = 4/(p+1)  (p = 97: 0.0408).
* a neuron of the one-hot MLP has two weight blocks (x and y); we sum their power per frequency
  (a_f = a_f^x + a_f^y), so a neuron whose two blocks are cosines of one frequency has IPR 1, and one with
  two different frequencies 1/2. For Gaussian weights, the same argument in 2(p-1) dimensions gives
  E[IPR] = (p-1)/2 · (8+8+2·4) / (2(p-1)·2p) = 3/p  (p = 97: 0.0309).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.analysis.fourier import dominant_frequencies, neuron_inputs, neuron_spectra


def ipr(power: torch.Tensor, dim: int = -1, skip_constant: bool = True) -> torch.Tensor:
    """IPR = Σ a² / (Σ a)² of a one-sided power spectrum along `dim`; with skip_constant the first entry
    (f = 0) is left out. Zero spectra give 0, and so does a spectrum whose periodic power is DFT round-off
    (at most 1e-24 of its total power, the constant included): a constant vector has IPR 0, not the IPR of
    its rounding noise."""
    a = power.detach().to(torch.float64).movedim(dim, -1)
    full = a.sum(-1)
    if skip_constant:
        a = a[..., 1:]
    s = a.sum(-1)
    # Round-off of the unitary DFT of a constant is ~1e-32 of its power in float64; 1e-24 leaves room for
    # spectra summed over many vectors and is far below any real periodic component.
    real = (s > 0) & (s > 1e-24 * full)
    return torch.where(real, a.pow(2).sum(-1) / s.clamp_min(1e-300).pow(2), torch.zeros_like(s))


def expected_gaussian_ipr(p: int, blocks: int = 1) -> float:
    """E[IPR] of Gaussian random weights over Z_p (odd p): 4/(p+1) for one vector, 3/p for two blocks."""
    if p % 2 == 0:
        raise ValueError(f"p={p}: the closed form holds for odd p")
    if blocks == 1:
        return 4 / (p + 1)
    if blocks == 2:
        return 3 / p
    raise ValueError(f"blocks={blocks}: the closed form is derived for 1 or 2 blocks")


def neuron_table(model: nn.Module, p: int, layer: int = 0) -> dict[str, torch.Tensor]:
    """Per-neuron IPR, dominant frequency, fraction of power at it, and total periodic power.

    Returns {"neuron", "ipr", "freq", "freq_frac", "power"} tensors of shape (N,) and the source used
    ("source": str) — weights for MLPs, activations for transformers (see `neuron_inputs`).
    """
    inputs, source = neuron_inputs(model, p, layer)
    spectra, total = neuron_spectra(inputs)
    dom, frac = dominant_frequencies(spectra, total)
    return {
        "neuron": torch.arange(len(dom)),
        "ipr": ipr(spectra),
        "freq": dom,
        "freq_frac": frac,
        "power": total,
        "source": source,  # type: ignore[dict-item]
    }
