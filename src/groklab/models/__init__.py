"""Models: nn.Modules with role-named weights. A model knows the vocabulary size, nothing more of the task."""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.config import ModelConfig
from groklab.models.common import HookPoint, hooked, run_with_cache
from groklab.models.mlp import MLP
from groklab.models.transformer import Transformer


def build_model(cfg: ModelConfig, n_elements: int, n_classes: int) -> nn.Module:
    """The model a config describes, with every initial weight multiplied by `cfg.init_scale` (α).

    Initialization draws from the global torch RNG: seed it first (the training loop does).
    """
    if cfg.arch == "transformer":
        model: nn.Module = Transformer(
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


__all__ = ["build_model", "count_params", "MLP", "Transformer", "HookPoint", "hooked", "run_with_cache"]
