"""Teacher–student regression (Omnigrok, Liu, Michaud & Tegmark 2023, arXiv 2210.01117).

A random teacher MLP labels Gaussian inputs x ~ N(0, I_d_in); the student is trained on them with MSE.
Choices the paper leaves to us (all config fields): teacher of `teacher_depth` ReLU layers of width
`teacher_width`, weights N(0, 1/fan_in), biases N(0, 0.1²); outputs standardized (over all generated
samples, per output) to mean 0 and variance 1, so that `task.tol` means the same at any size. Accuracy is
replaced by the hit rate (every output within tol of its label) and R².

`task.teacher="poly"` replaces the MLP by the single-index polynomial of Kumar et al. (2023),
y = (β·x)^teacher_degree / 2, the task on which they show grokking as the lazy → rich transition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.base import Dataset


@dataclass
class Teacher:
    """y = (f(x) − shift) / scale with f a ReLU MLP: weights[i] (fan_in, fan_out), biases[i] (fan_out,)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    shift: torch.Tensor  # (d_out,)
    scale: torch.Tensor  # (d_out,)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ W + b
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.raw(x) - self.shift) / self.scale


def make_teacher(cfg: TaskConfig) -> tuple[Teacher, torch.Tensor]:
    """The teacher and all inputs (train_size + val_size, d_in), both from `task.seed`."""
    g = torch.Generator().manual_seed(cfg.seed)
    dims = [cfg.d_in] + [cfg.teacher_width] * cfg.teacher_depth + [cfg.d_out]
    weights = [torch.randn(a, b, generator=g) / math.sqrt(a) for a, b in zip(dims[:-1], dims[1:])]
    biases = [0.1 * torch.randn(b, generator=g) for b in dims[1:]]
    x = torch.randn(cfg.train_size + cfg.val_size, cfg.d_in, generator=g)
    t = Teacher(weights, biases, torch.zeros(cfg.d_out), torch.ones(cfg.d_out))
    raw = t.raw(x)
    t.shift = raw.mean(0)
    t.scale = raw.std(0).clamp_min(1e-12)
    return t, x


def make_poly_teacher(cfg: TaskConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Kumar, Bordelon, Gershman & Pehlevan 2023 ("Grokking as the transition from lazy to rich training
    dynamics", §5): the single-index target y = (β·x)^k / 2 (their k = 2), one direction β per output.

    Their inputs are x ~ N(0, I/D) with β ~ N(0, I); ours are x ~ N(0, I_D) (as the MLP teacher's) with
    β ~ N(0, I/D): β·x has the same distribution, N(0, |β|²/D·D) ≈ N(0, 1). Labels are not standardized, so
    the MSE reads as in the paper (for k = 2 the labels have mean ≈ 1/2 and variance ≈ 1/2).
    Returns β (d_in, d_out) and all inputs (train_size + val_size, d_in), both from `task.seed`."""
    g = torch.Generator().manual_seed(cfg.seed)
    beta = torch.randn(cfg.d_in, cfg.d_out, generator=g) / math.sqrt(cfg.d_in)
    x = torch.randn(cfg.train_size + cfg.val_size, cfg.d_in, generator=g)
    return beta, x


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.base import Dataset

    if getattr(cfg, "teacher", "mlp") == "poly":
        beta, x = make_poly_teacher(cfg)
        y = (x @ beta) ** cfg.teacher_degree / 2  # (N, d_out)
    else:
        teacher, x = make_teacher(cfg)
        with torch.no_grad():
            y = teacher(x)  # (N, d_out)
    n = cfg.train_size
    return Dataset.from_tensors(x[:n], y[:n], x[n:], y[n:], target="real", tol=cfg.tol)
