"""Optimizers, the learning-rate schedule, the losses, and the softmax-collapse measurement."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from groklab.config import OptimConfig
from groklab.errors import ConfigError
from groklab.models.init import role_of

_NORM_MODULES = (nn.LayerNorm, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)


def _role(name: str) -> str:
    """The role of a parameter from its dotted name (`blocks.0.attn.W_Q` -> `W_Q`); see models/init.py."""
    return role_of(name)


def param_groups_of(model: nn.Module) -> dict[str, set[str]]:
    """For every parameter name, the no-decay groups it belongs to (`embed`, `unembed`, `norm`, `bias`)."""
    norm_params = set()
    for mod_name, mod in model.named_modules():
        # groklab's LayerNorm is its own class; any module with `norm` in its class name counts as a norm
        if isinstance(mod, _NORM_MODULES) or "norm" in type(mod).__name__.lower():
            norm_params.update(f"{mod_name}.{n}" if mod_name else n for n, _ in mod.named_parameters(recurse=False))
    groups: dict[str, set[str]] = {}
    for name, _ in model.named_parameters():
        role, g = _role(name), set()
        if role in ("W_E", "W_pos"):
            g.add("embed")
        if role in ("W_U", "b_U"):
            g.add("unembed")
        if name in norm_params:
            g.add("norm")
        if role.startswith("b_") or role == "bias" or (name in norm_params and role in ("b", "bias")):
            g.add("bias")
        groups[name] = g
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW decays decoupled from the gradient (Loshchilov & Hutter); Adam and SGD add weight_decay·w to
    the gradient (coupled L2), which is what Power et al. compare AdamW against.

    With `cfg.no_decay`, the parameters of those groups go into a second parameter group with weight decay 0
    (without it there is one group, as before). ⊥AdamW is `adamw` with `reg.orthograd` (a gradient hook)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if cfg.no_decay:
        roles = param_groups_of(model)
        excluded = set(cfg.no_decay)
        decay = [p for n, p in named if not roles[n] & excluded]
        keep = [p for n, p in named if roles[n] & excluded]
        params: list = [{"params": decay}, {"params": keep, "weight_decay": 0.0}]
    else:
        params = [p for _, p in named]
    params = embedding_groups(model, params, cfg)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def embedding_groups(model: nn.Module, params: list, cfg: OptimConfig) -> list:
    """Give the embeddings (W_E, W_pos) their own learning rate and weight decay (`optim.embed_lr`,
    `optim.embed_weight_decay`), as the toy model of Liu et al. (2022) needs for its phase diagrams.

    `params` is a list of tensors or of parameter-group dicts; each group is split into its non-embedding and
    its embedding parameters. The embedding group carries `lr_scale` = embed_lr / lr, which the training loop
    multiplies into the scheduled learning rate. Without either field, `params` is returned as it is.
    """
    if cfg.embed_lr is None and cfg.embed_weight_decay is None:
        return params
    embed = {id(p) for n, p in model.named_parameters() if _role(n) in ("W_E", "W_pos")}
    groups = params if params and isinstance(params[0], dict) else [{"params": list(params)}]
    out = []
    for g in groups:
        rest = {k: v for k, v in g.items() if k != "params"}
        out.append({**rest, "params": [p for p in g["params"] if id(p) not in embed]})
        emb = [p for p in g["params"] if id(p) in embed]
        if emb:
            group = {**rest, "params": emb}
            if cfg.embed_lr is not None:
                group["lr_scale"] = cfg.embed_lr / cfg.lr
                group["lr"] = cfg.embed_lr
            if cfg.embed_weight_decay is not None:
                group["weight_decay"] = cfg.embed_weight_decay
            out.append(group)
    return [g for g in out if g["params"]]


def lr_at(step: int, cfg: OptimConfig, total: int | None = None) -> float:
    """Learning rate of update number `step` (0-based) of `total`: linear warm-up over `warmup_steps`, then
    the schedule (`constant`; `cosine` or `linear` from lr down to lr·lr_min_frac at step `total`; `step`:
    ×step_gamma every step_every updates)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + (0 if cfg.warmup_from_zero else 1)) / cfg.warmup_steps
    t = step - cfg.warmup_steps  # updates since the end of warm-up
    if cfg.schedule in ("cosine", "linear"):
        if total is None:
            raise ValueError(f"lr_at: the {cfg.schedule} schedule needs the total number of steps")
        frac = min(1.0, t / max(1, total - cfg.warmup_steps))  # reaches lr_min_frac just after the last update
        lo = cfg.lr * cfg.lr_min_frac
        if cfg.schedule == "linear":  # transformers' get_linear_schedule_with_warmup: lr·(total − k)/(total − warm-up)
            return lo + (cfg.lr - lo) * (1.0 - frac)
        return lo + (cfg.lr - lo) * 0.5 * (1.0 + math.cos(math.pi * frac))
    if cfg.schedule == "step":
        return cfg.lr * cfg.step_gamma ** (t // cfg.step_every)
    return cfg.lr


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """s(x) = x + 1 for x ≥ 0 and 1 / (1 − x) for x < 0 (Prieto et al. 2025, eq. 9): grows linearly instead
    of exponentially, so the normalized probabilities cannot round to exactly 1 as softmax's do."""
    # (1 + relu(x)) / (1 + relu(-x)) is x + 1 or 1 / (1 − x) exactly (one of the two is 1), and with its
    # backward about 3x faster on CPU than where() over two clamped branches.
    return (1 + torch.relu(x)) / (1 + torch.relu(-x))


def log_stablemax(logits: torch.Tensor) -> torch.Tensor:
    """log of StableMax probabilities s(x_i) / Σ_j s(x_j), over the last dimension, in the logits' dtype."""
    s = stablemax_s(logits)
    return s.log() - s.sum(-1, keepdim=True).log()


def loss_spec(train_cfg) -> str:
    """The loss name `loss_fn` takes for a run's `TrainConfig`: `train.loss`, with ":mean" appended when
    `train.loss_reduction='mean'` (squared error averaged over the classes instead of summed) and ":float64"
    when `train.loss_dtype='float64'` (the loss computed from the outputs cast to float64)."""
    mods = [m for m, on in (("mean", train_cfg.loss_reduction == "mean"), ("float64", train_cfg.loss_dtype == "float64")) if on]
    return ":".join([train_cfg.loss, *mods])


def _split(kind: str) -> tuple[str, bool, bool]:
    """("mse", True, False) from "mse:mean": the loss, whether it averages over the classes (outputs), and
    whether it is computed in float64 (":float64")."""
    name, *mods = kind.split(":")
    for m in mods:
        if m not in ("mean", "float64"):
            raise ConfigError(f"loss {kind!r}: the parts after ':' must be 'mean' or 'float64'")
    return name, "mean" in mods, "float64" in mods


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy, StableMax cross-entropy, multi-class hinge, or squared error to one-hot targets.

    logits (B, C), labels (B,); returns the mean over samples, the sum, or (B,) with reduction="none".
    `kind` is a loss name (`loss_spec`): "mse" sums the squared error over the C classes (per sample
    Σ_c (z_c − y_c)²), "mse:mean" averages it (Σ_c (z_c − y_c)² / C: PyTorch's MSELoss default, averaged over
    classes and samples, as in Doshi et al.'s and Omnigrok's code); ":mean" changes nothing for ce and
    stablemax. `hinge` on class labels is the multi-class margin loss Σ_{c≠y} max(0, 1 − z_y + z_c) / C. Float
    labels (sign and real-valued targets) take `target_loss`.
    """
    name, mean_classes, f64 = _split(kind)
    if f64:  # the loss in float64 from the model's outputs; the gradient reaching the model is cast back
        logits = logits.to(torch.float64)
    if labels.is_floating_point():
        return target_loss(logits, labels, kind, reduction)
    if name == "hinge":
        return F.multi_margin_loss(logits, labels, reduction=reduction)
    if name == "ce":
        # Softmax in float64 would be slower and hide the float32 softmax collapse the papers study.
        return F.cross_entropy(logits, labels, reduction=reduction)
    if name == "stablemax":
        s = stablemax_s(logits)  # the log of the correct class only: one (B,) log instead of a (B, C) one
        per_sample = s.sum(-1).log() - s.gather(-1, labels[:, None]).squeeze(-1).log()
    else:
        target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
        sq = (logits - target).pow(2)
        per_sample = sq.mean(-1) if mean_classes else sq.sum(-1)
    if reduction == "mean":
        return per_sample.mean()
    return per_sample.sum() if reduction == "sum" else per_sample


def target_loss(out: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """Losses on float targets y (B, d), summed over the d outputs ("mse") or averaged over them ("mse:mean",
    etc.): `mse` Σ (out − y)²; `hinge` Σ max(0, 1 − y·out) for y = ±1 (Barak et al. 2022); `ce` the logistic
    loss Σ log(1 + e^{−y·out}) for y = ±1 (binary cross-entropy on the sign)."""
    name, mean_outputs, f64 = _split(kind)
    if f64:
        out, y = out.to(torch.float64), y.to(torch.float64)
    if name == "mse":
        terms = (out - y).pow(2)
    elif name == "hinge":
        terms = F.relu(1 - y * out)
    elif name == "ce":
        terms = F.softplus(-y * out)
    else:
        raise ConfigError(f"train.loss={name!r} is not defined for real-valued or ±1 targets; use mse, hinge or ce")
    per_sample = terms.mean(-1) if mean_outputs else terms.sum(-1)
    if reduction == "mean":
        return per_sample.mean()
    return per_sample.sum() if reduction == "sum" else per_sample


def collapse_counts(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> tuple[int, int]:
    """Softmax collapse (Prieto et al. 2025) on a batch, in the loss's precision: the number of samples whose
    correct-class probability is exactly 1.0, and the number whose loss term is exactly 0.

    The second count is Prieto et al.'s "zero terms" (their code counts `loss(reduction="none") == 0` in the
    training precision): with the loss exactly 0 the correct class's gradient p_y − 1 is exactly 0, and the
    other classes' p_j are below the float's resolution next to 1 (Σ_j p_j rounded away, < 2⁻²⁴ in float32),
    so the sample has stopped pulling its logit up. (Asking for *every* gradient entry to be exactly 0 almost
    never fires: the p_j are tiny, not 0, until e^{z_j − z_y} underflows.) The probability is the one the
    loss uses: StableMax's s(z)/Σs(z) under `stablemax`, softmax otherwise."""
    name, _, f64 = _split(kind)
    if f64:  # counted in the precision the loss is computed in
        logits = logits.to(torch.float64)
    if name == "stablemax":
        s = stablemax_s(logits)
        probs = s / s.sum(-1, keepdim=True)
    else:
        probs = logits.softmax(-1)
    p_correct = probs.gather(-1, labels[:, None]).squeeze(-1)
    zero = loss_fn(logits, labels, kind, reduction="none") == 0
    return int((p_correct == 1.0).sum()), int(zero.sum())
