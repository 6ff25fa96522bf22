"""Models: nn.Modules with role-named weights. A model knows the vocabulary size (or the input dimension),
nothing more of the task."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from groklab.config import ModelConfig
from groklab.errors import ConfigError
from groklab.models.common import HookPoint, hooked, run_with_cache
from groklab.models.dense import DenseMLP
from groklab.models.mlp import MLP
from groklab.models.toy import ToyModel
from groklab.models.transformer import Transformer


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


def build_model(cfg: ModelConfig, n_elements: int, n_classes: int, d_input: int | None = None) -> nn.Module:
    """The model a config describes, with every initial weight multiplied by `cfg.init_scale` (α).

    `d_input` is the dimension of vector inputs (parity, images, teacher, custom vectors), None for operand
    pairs; vector inputs take the plain MLP (`DenseMLP`). Initialization draws from the global torch RNG:
    seed it first (the training loop does).
    """
    if d_input is not None:
        if cfg.arch != "mlp":
            raise ConfigError(f"model.arch={cfg.arch!r} reads operand pairs, but this task gives vector inputs (dimension {d_input}); use model.arch='mlp'")
        if cfg.batchnorm:
            raise ConfigError("model.batchnorm=True is not available for vector inputs (the MLP on parity, images, teacher); use False")
        model: nn.Module = DenseMLP(d_input, n_classes, width=cfg.width, depth=cfg.depth, act=cfg.act, bias=cfg.bias, dropout=cfg.dropout)
    elif cfg.arch == "toy":
        if cfg.batchnorm:
            raise ConfigError("model.batchnorm=True is not available for model.arch='toy'; use False")
        model = ToyModel(
            n_elements, n_classes, d_embed=cfg.d_embed, width=cfg.width, depth=cfg.depth, act=cfg.act, bias=cfg.bias, dropout=cfg.dropout,
        )
    elif cfg.arch == "transformer":
        model = Transformer(
            n_elements, n_classes, n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
            d_mlp=cfg.d_mlp, layernorm=cfg.layernorm, dropout=cfg.dropout, act=cfg.act, op_token=cfg.op_token,
        )
    else:
        model = MLP(
            n_elements, n_classes, width=cfg.width, depth=cfg.depth, act=cfg.act, bias=cfg.bias,
            input=cfg.input, d_embed=cfg.d_embed, dropout=cfg.dropout, batchnorm=cfg.batchnorm,
        )
    if cfg.init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(cfg.init_scale)
    return model


def count_params(model: nn.Module, embeddings: bool = True) -> int:
    """Number of parameters; with embeddings=False, leaves out W_E, W_pos and W_U (the Power et al. count)."""
    skip = () if embeddings else ("W_E", "W_pos", "W_U", "b_U")
    return sum(p.numel() for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] not in skip)


__all__ = ["build_model", "count_params", "MODELS", "MLP", "DenseMLP", "ToyModel", "Transformer", "HookPoint", "hooked", "run_with_cache"]
