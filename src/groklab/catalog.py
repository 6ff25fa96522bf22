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
