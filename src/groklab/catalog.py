"""The model architectures on offer (`--model.arch`, `groklab models`), in pure Python: listing them must not
import torch, so they live here rather than in groklab.models (which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    arch: str
    description: str
    paper: str


MODELS: dict[str, ModelInfo] = {
    m.arch: m
    for m in [
        ModelInfo(
            "transformer", "decoder-only transformer on (x, op, y, =) or (x, y, =), read out at the last position",
            "Power et al. 2022 (2 layers, LayerNorm); Nanda et al. 2023 (1 layer, no LayerNorm)",
        ),
        ModelInfo(
            "mlp", "MLP: on operand pairs one-hot(x) ⊕ one-hot(y) or embeddings; on vector inputs a plain MLP",
            "pairs: Doshi et al. 2023; vectors: Barak et al. 2022 (parity), Omnigrok 2023 (images, teacher)",
        ),
        ModelInfo(
            "toy", "learned number embeddings; an MLP decoder on the sum E_x + E_y (own lr/wd via optim.embed_*)",
            "Liu et al. 2022, effective theory of representation learning (arXiv 2205.10343)",
        ),
    ]
}


@dataclass(frozen=True)
class AnalysisInfo:
    name: str
    description: str
    frontier: bool = False
    """Run only when named (not part of "all"): it costs more or needs an optional extra."""


# The analyses of `groklab analyze --what` in the order they run; groklab.analysis.driver.STEPS holds how each
# is computed (keyed by these names). Listed here, in pure Python, so that `groklab --help` imports no torch.
ANALYSES: dict[str, AnalysisInfo] = {
    a.name: a
    for a in [
        AnalysisInfo("grokking", "crossing steps, gap, Liu et al. phase, two-stage dynamics, forgetting"),
        AnalysisInfo("fourier", "power per frequency of the embedding at every checkpoint; key frequencies"),
        AnalysisInfo("ipr", "neuron inverse participation ratio and dominant frequency at every checkpoint"),
        AnalysisInfo("pruning", "accuracies after removing the k lowest-/highest-IPR neurons"),
        AnalysisInfo("progress", "restricted and excluded loss, Gini, Σw², key-frequency share (Nanda et al.)"),
        AnalysisInfo("representations", "PCA and t-SNE of the (un)embedding, RQI (Liu et al.)"),
        AnalysisInfo("sharpness", "top Hessian eigenvalue of the training loss"),
        AnalysisInfo("ntk", "empirical NTK distance from the first checkpoint, kernel-target alignment", frontier=True),
        AnalysisInfo("htsr", "power-law exponent α of the weight spectra, correlation traps", frontier=True),
        AnalysisInfo("llc", "local learning coefficient by SGLD (groklab[llc])", frontier=True),
        AnalysisInfo("tree", "tree projections of a Dyck run: t-score, span invariance, parse F1 (Murty et al.)", frontier=True),
    ]
}
