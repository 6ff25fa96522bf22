"""Initialization choices beyond each model's default: the distribution family (`model.init_dist`), an
absolute standard deviation for every weight matrix (`model.init_std`) and per-role overrides
(`model.init_overrides`, entries "ROLE=STD").

Order, applied by `build_model` after the model has drawn its default initialization:

1. the model's own draw: weights N(0, 1/fan_in) (transformer embeddings N(0, 1/d_model), the toy model's
   embeddings U[−½, ½)), biases 0, LayerNorm/BatchNorm weights 1 and biases 0;
2. `model.init_dist = "torch"`: every parameter is redrawn as the PyTorch module that plays its role in the
   authors' code would draw it by default (`"normal"`, the default, redraws nothing):
   - weight matrices (`W_Q`, `W_K`, `W_V`, `W_O`, `W_in`, `W_hidden`, `W_out`, `W_U`), as `nn.Linear`:
     U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5);
   - their biases (`b_Q`, …, `b_U`), as `nn.Linear`'s bias: U(±1/√fan_in) with the fan-in of their layer;
   - embeddings `W_E`, `W_pos` of the transformer and of the pair MLP (`model.input='embed'`), as
     `nn.Embedding`: N(0, 1); the toy model's `W_E` keeps its own draw U[−½, ½), which is what Liu et
     al.'s code draws (a bare parameter there, not a module);
   - LayerNorm and BatchNorm parameters keep 1 and 0 (PyTorch's defaults too).
   Fan-in is the number of inputs of one output unit, read from the layouts in models/*.py: `W_in`,
   `W_hidden.i`, `W_out`, `W_U` are stored (in, out), so shape[0]; `W_Q`/`W_K`/`W_V` (heads, d_model,
   d_head) read d_model = shape[1] (a per-head `nn.Linear(d_model, d_head)`, or one `nn.Linear(d_model,
   d_model)` split into heads: the same fan-in); `W_O` (heads, d_head, d_model) reads heads·d_head.
3. `model.init_std = s`: every weight matrix (a parameter whose role starts with `W_`) is redrawn with
   standard deviation s; biases and normalization parameters keep their values;
4. `model.init_overrides`: each named role is redrawn with standard deviation STD (STD 0 gives zeros),
   weights or biases (`b_in=0.1` gives random biases);
5. `model.init_scale` = α multiplies every parameter (Omnigrok's α multiplies whatever the draw was).

The family of steps 3 and 4: with `init_dist="normal"` every redraw is N(0, s²); with `"torch"` a role
keeps the family step 2 gave it, rescaled to the requested s: uniform U(±√3·s) for weight matrices and
their biases, N(0, s²) for the rest. So `init_dist="torch"` with `W_Q=W_K=W_V=1/√(2·d_model)` is exactly
`nn.MultiheadAttention`'s xavier_uniform on its stacked (3·d_model, d_model) projection, U(±√(6/(4·d_model))).

Redrawing uses the global torch RNG in the order of `model.named_parameters()`, after the default draw, so
the same config and seed give the same weights (the same distribution as the authors' code, not the same
numbers); with none of these fields set nothing is redrawn and the weights are bit for bit those of the
default draw.

A role is a parameter's name without its module path and list index: `blocks.0.attn.W_Q` → `W_Q`,
`W_hidden.1` → `W_hidden`. A role names every parameter that carries it (every layer's `W_in`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.errors import ConfigError

DISTS = ("normal", "torch")
"""The values of `model.init_dist`."""

EMBEDDINGS = ("W_E", "W_pos")


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


def fan_in(role: str, shape: torch.Size) -> int:
    """Inputs per output unit of a weight matrix stored as models/*.py lay it out (module docstring, step 2)."""
    if role == "W_O":
        return shape[0] * shape[1]  # (heads, d_head, d_model)
    return shape[-2]  # (in, out), or (heads, d_model, d_head)


def _weight_of(name: str, role: str) -> str:
    """The dotted name of the weight matrix a bias belongs to: `blocks.0.attn.b_Q` -> `blocks.0.attn.W_Q`,
    `b_hidden.1` -> `W_hidden.1`."""
    parts = name.split(".")
    i = max(k for k, part in enumerate(parts) if part == role)
    parts[i] = "W_" + role[2:]
    return ".".join(parts)


def torch_rule(name: str, params: dict[str, torch.Tensor], arch: str) -> tuple[str, float] | None:
    """How `init_dist="torch"` draws the parameter `name`: ("uniform", bound), ("normal", std), or None to keep
    the model's own draw (module docstring, step 2)."""
    role = role_of(name)
    if role in EMBEDDINGS:
        return None if arch == "toy" else ("normal", 1.0)
    if role.startswith("W_"):
        return "uniform", 1 / math.sqrt(fan_in(role, params[name].shape))
    if role.startswith("b_"):
        w = _weight_of(name, role)
        if w in params:
            return "uniform", 1 / math.sqrt(fan_in(role_of(w), params[w].shape))
    return None


def _draw(p: torch.Tensor, kind: str, scale: float) -> None:
    """In place: U(−scale, scale) or N(0, scale²); scale 0 gives zeros."""
    if scale == 0:
        p.zero_()
    elif kind == "uniform":
        p.uniform_(-scale, scale)
    else:
        p.normal_(0.0, scale)


def apply_init(
    model: nn.Module, init_std: float | None, overrides: dict[str, float], arch: str = "", dist: str = "normal"
) -> None:
    """Steps 2 to 4 of the module docstring, in place. An unknown `dist` or an override naming a role the model
    does not have is a ConfigError (the latter listing the roles it has)."""
    if dist not in DISTS:
        raise ConfigError(f"model.init_dist={dist!r} is not allowed; choose one of: {', '.join(DISTS)}")
    if dist == "normal" and init_std is None and not overrides:
        return
    have = roles(model)
    unknown = [r for r in overrides if r not in have]
    if unknown:
        where = f"model.arch={arch!r}" if arch else "this model"
        raise ConfigError(
            f"model.init_overrides names role {unknown[0]!r}, which {where} does not have; its roles are: {', '.join(have)}"
        )
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            r = role_of(name)
            rule = torch_rule(name, params, arch) if dist == "torch" else None
            std = overrides.get(r, init_std if r.startswith("W_") else None)
            if std is not None:  # one draw per parameter: the requested std, in the family of the role
                uniform = rule is not None and rule[0] == "uniform"
                rule = ("uniform", math.sqrt(3) * std) if uniform else ("normal", std)  # U(±√3·s) has std s
            if rule is not None:
                _draw(p, *rule)
