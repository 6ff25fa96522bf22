"""Optimizers, the learning-rate schedule and the losses."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from groklab.config import OptimConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW decays decoupled from the gradient (Loshchilov & Hutter); Adam and SGD add weight_decay·w to
    the gradient (coupled L2), which is what Power et al. compare AdamW against."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_at(step: int, cfg: OptimConfig) -> float:
    """Learning rate of update number `step` (0-based): linear warm-up over `warmup_steps`, then constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy, or squared error to one-hot targets summed over classes and averaged over samples.

    logits (B, C), labels (B,); returns a scalar, or (B,) with reduction="none".
    """
    if kind == "ce":
        # Softmax in float64 would be slower and hide the float32 softmax collapse the papers study.
        return F.cross_entropy(logits, labels, reduction=reduction)
    target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    per_sample = (logits - target).pow(2).sum(-1)
    return per_sample.mean() if reduction == "mean" else per_sample
