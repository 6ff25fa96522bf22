"""Interventions: small objects with one hook into the training step, chosen by config fields.

The loop calls, in order, for every step: `train_data` first (an intervention that swaps the training set
returns the data set this step's evaluation and update use), then for every update `before_step` after
the backward pass (a gradient filter changes `p.grad` here), the optimizer step, then `after_step` (a
constraint or weight noise changes the weights here). State that must survive a resume is returned by
`state_tensors` and saved in the resume checkpoint; `metrics` adds columns to every evaluation. The
interventions themselves, and `build_interventions` that picks them from the config, are in interventions.py.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.tasks.base import Dataset


class Intervention:
    name = "intervention"

    def train_data(self, data: Dataset, step: int) -> Dataset:
        """The data set that step `step` evaluates and trains on; `data` (the one in use) by default.

        What it returns must be a function of the config and `step` alone: a resumed run rebuilds the data
        from the config and calls this again, and must train on the same examples as a run that never stopped.
        """
        return data

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
