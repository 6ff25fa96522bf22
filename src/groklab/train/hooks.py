"""Interventions: small objects with one hook into the training step, chosen by config fields.

The loop calls, in order, for every update: `before_step` after the backward pass (a gradient filter
changes `p.grad` here), the optimizer step, then `after_step` (a constraint or weight noise changes the
weights here). State that must survive a resume is returned by `state_tensors` and saved in the resume
checkpoint; `metrics` adds columns to every evaluation.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.config import RunConfig


class Intervention:
    name = "intervention"

    def before_step(self, model: nn.Module, step: int) -> None:
        pass

    def after_step(self, model: nn.Module, step: int) -> None:
        pass

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def metrics(self, model: nn.Module) -> dict[str, float]:
        return {}


def build_interventions(cfg: RunConfig, model: nn.Module) -> list[Intervention]:
    """The interventions a config asks for, in the order they are applied."""
    return []
