"""Interventions: small objects with one hook into the training step, chosen by config fields.

The loop calls, in order, for every step: `train_data` first (an intervention that swaps the training set
returns the data set this step's evaluation and update use), then for every update `before_step` after
the backward pass (a gradient filter changes `p.grad` here), the optimizer step, then `after_step` (a
constraint or weight noise changes the weights here). State that must survive a resume is returned by
`state_tensors` and saved in the resume checkpoint; `metrics` adds columns to every evaluation.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from groklab.config import RunConfig
from groklab.tasks.dataset import Dataset


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


def build_interventions(cfg: RunConfig, model: nn.Module) -> list[Intervention]:
    """The interventions `cfg.reg` asks for, in the order they are applied (none with the defaults).

    Before the optimizer step: gradient noise (a noisy gradient is what the filter then sees), the Grokfast
    filter, ⊥Grad (last, so the update stays orthogonal to the weights). After it: weight noise, then the norm
    constraint (last, so the norm equals its target after every step). Then the data interventions: the
    training-set swap of ungrokking, and the efficiency metric (after it, so it measures the swapped set).
    Build it from the freshly initialized model: the norm constraint's default target is the norm at
    initialization.
    """
    from groklab.train import interventions as iv

    r = cfg.reg
    out: list[Intervention] = []
    if r.grad_noise > 0:
        out.append(iv.GradNoise(model, r.grad_noise))
    if r.grokfast == "ema":
        out.append(iv.GrokfastEMA(model, r.grokfast_ema_alpha, r.grokfast_ema_lamb))
    elif r.grokfast == "ma":
        out.append(iv.GrokfastMA(model, r.grokfast_ma_window, r.grokfast_ma_lamb, r.grokfast_ma_warmup))
    if r.orthograd:
        out.append(iv.OrthoGrad(model, r.orthograd_rescale))
    if r.weight_noise > 0:
        out.append(iv.WeightNoise(model, r.weight_noise))
    if r.constrain_norm:
        out.append(iv.NormConstraint(model, r.norm_factor, r.norm_target))
    # Data interventions last: they change which examples the step sees, not the update, and the efficiency
    # metric must measure the training set after any swap.
    if r.swap_step is not None:
        out.append(iv.SwapTrainSet(r.swap_step, r.swap_train_frac, cfg.task.seed, cfg.train.batch_size, cfg.train.eval_batch_size))
    if r.efficiency or r.swap_step is not None:
        out.append(iv.Efficiency(cfg.train.eval_batch_size))
    return out
