"""Initialization choices beyond each model's default: an absolute standard deviation for every weight
matrix (`model.init_std`) and per-role overrides (`model.init_overrides`, entries "ROLE=STD").

Order, applied by `build_model` after the model has drawn its default initialization:

1. the model's own draw: weights N(0, 1/fan_in) (transformer embeddings N(0, 1/d_model), the toy model's
   embeddings U[−½, ½)), biases 0, LayerNorm/BatchNorm weights 1 and biases 0;
2. `model.init_std = s`: every weight matrix (a parameter whose role starts with `W_`) is redrawn N(0, s²);
   biases and normalization parameters keep their values;
3. `model.init_overrides`: each named role is redrawn N(0, std²) (std 0 gives zeros), weights or biases
   (`b_in=0.1` gives random biases);
4. `model.init_scale` = α multiplies every parameter (Omnigrok's α multiplies whatever the draw was).

Redrawing uses the global torch RNG in the order of `model.named_parameters()`, after the default draw, so
the same config and seed give the same weights; with neither field set nothing is redrawn and the weights
are bit for bit those of the default draw.

A role is a parameter's name without its module path and list index: `blocks.0.attn.W_Q` → `W_Q`,
`W_hidden.1` → `W_hidden`. A role names every parameter that carries it (every layer's `W_in`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.errors import ConfigError


def role_of(name: str) -> str:
    """The role of a parameter from its dotted name: the last part that is not a list index
    (`blocks.0.attn.W_Q` -> `W_Q`, `b_hidden.1` -> `b_hidden`)."""
    return next(part for part in reversed(name.split(".")) if not part.isdigit())


def roles(model: nn.Module) -> list[str]:
    """The roles of a model's parameters, in first-appearance order."""
    seen: dict[str, None] = {}
    for name, _ in model.named_parameters():
        seen.setdefault(role_of(name), None)
    return list(seen)


def apply_init(model: nn.Module, init_std: float | None, overrides: dict[str, float], arch: str = "") -> None:
    """Steps 2 and 3 of the module docstring, in place. An override naming a role the model does not have is
    a ConfigError listing the roles it has."""
    if init_std is None and not overrides:
        return
    have = roles(model)
    unknown = [r for r in overrides if r not in have]
    if unknown:
        where = f"model.arch={arch!r}" if arch else "this model"
        raise ConfigError(
            f"model.init_overrides names role {unknown[0]!r}, which {where} does not have; its roles are: {', '.join(have)}"
        )
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = role_of(name)
            std = overrides.get(r, init_std if r.startswith("W_") else None)
            if std is None:
                continue
            if std == 0:
                p.zero_()
            else:
                p.normal_(0.0, std)
