"""Models: nn.Modules with role-named weights. A model knows the vocabulary size (or the input dimension),
nothing more of the task."""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.catalog import MODELS, ModelInfo  # noqa: F401 (torch-free, so `groklab models` lists them fast)
from groklab.config import ModelConfig, parse_init_overrides
from groklab.errors import ConfigError
from groklab.models.common import HookPoint, hooked, run_with_cache
from groklab.models.dense import DenseMLP
from groklab.models.init import apply_init, role_of
from groklab.models.mlp import MLP
from groklab.models.toy import ToyModel
from groklab.models.transformer import Transformer


def build_model(cfg: ModelConfig, n_elements: int, n_classes: int, d_input: int | None = None, n_inputs: int = 2) -> nn.Module:
    """The model a config describes, initialized in this order (models/init.py): the model's own draw,
    `cfg.init_std` for every weight matrix, `cfg.init_overrides` per role, then every parameter multiplied by
    `cfg.init_scale` (α).

    `d_input` is the dimension of vector inputs (parity, images, teacher, custom vectors), None for operand
    pairs; vector inputs take the plain MLP (`DenseMLP`). `n_inputs` is the number of tokens per example of
    integer inputs (2 for operand pairs; token sequences of other lengths need the transformer). Initialization draws from the global torch RNG:
    seed it first (the training loop does).
    """
    if d_input is not None:
        if cfg.arch != "mlp":
            raise ConfigError(f"model.arch={cfg.arch!r} reads operand pairs, but this task gives vector inputs (dimension {d_input}); use model.arch='mlp'")
        if cfg.batchnorm:
            raise ConfigError("model.batchnorm=True is not available for vector inputs (the MLP on parity, images, teacher); use False")
        model: nn.Module = DenseMLP(d_input, n_classes, width=cfg.width, depth=cfg.depth, act=cfg.act, bias=cfg.bias, dropout=cfg.dropout)
    elif n_inputs != 2 and cfg.arch != "transformer":
        raise ConfigError(f"model.arch={cfg.arch!r} reads operand pairs, but this task gives sequences of {n_inputs} tokens; use model.arch='transformer'")
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
            n_inputs=n_inputs, norm_position=cfg.norm_position, pos_embed=cfg.pos_embed, bias=cfg.transformer_bias,
        )
    else:
        model = MLP(
            n_elements, n_classes, width=cfg.width, depth=cfg.depth, act=cfg.act, bias=cfg.bias,
            input=cfg.input, d_embed=cfg.d_embed, dropout=cfg.dropout, batchnorm=cfg.batchnorm,
        )
    apply_init(model, cfg.init_std, parse_init_overrides(cfg.init_overrides), cfg.arch, cfg.init_dist)
    if cfg.init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(cfg.init_scale)
    if getattr(cfg, "output_scale", 1.0) != 1.0:
        # A forward hook on the whole model: every architecture gets it, and the state_dict keys stay the same.
        model.register_forward_hook(OutputScale(cfg.output_scale))
    return model


class OutputScale:
    """Forward hook multiplying a model's output by α (`model.output_scale`; lazy vs rich training, Chizat et
    al. 2019, Kumar et al. 2023). A class rather than a lambda so a model stays picklable."""

    def __init__(self, alpha: float):
        self.alpha = float(alpha)

    def __call__(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        return output * self.alpha


def count_params(model: nn.Module, embeddings: bool = True) -> int:
    """Number of parameters; with embeddings=False, leaves out W_E, W_pos and W_U (the Power et al. count)."""
    skip = () if embeddings else ("W_E", "W_pos", "W_U", "b_U")
    return sum(p.numel() for name, p in model.named_parameters() if role_of(name) not in skip)


__all__ = ["build_model", "count_params", "MODELS", "MLP", "DenseMLP", "ToyModel", "Transformer", "HookPoint", "hooked", "run_with_cache"]
