"""The knobs the grokking papers turn, as `Intervention`s (see hooks.py for the interface and the order).

Gradient filters and projections act in `before_step` (after backward, before the optimizer step); weight
noise and the norm constraint in `after_step`. Randomness comes from torch's global generator, whose state
the resume checkpoint keeps, so a resumed run draws the same noise as one that never stopped.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.train.hooks import Intervention


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _with_grad(named: list[tuple[str, nn.Parameter]]) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    """Names, parameters and gradients of the parameters that received a gradient this step."""
    names, params, grads = [], [], []
    for n, p in named:
        if p.grad is not None:
            names.append(n)
            params.append(p)
            grads.append(p.grad)
    return names, params, grads


class GradNoise(Intervention):
    """Power et al. (2022): Gaussian noise of standard deviation σ added to every gradient entry."""

    name = "grad_noise"

    def __init__(self, model: nn.Module, std: float):
        self.named, self.std = _trainable(model), std

    @torch.no_grad()
    def before_step(self, model: nn.Module, step: int) -> None:
        _, _, grads = _with_grad(self.named)
        torch._foreach_add_(grads, [torch.randn_like(g) for g in grads], alpha=self.std)


class WeightNoise(Intervention):
    """Power et al. (2022): Gaussian noise of standard deviation σ added to every weight after each step."""

    name = "weight_noise"

    def __init__(self, model: nn.Module, std: float):
        self.params, self.std = [p for _, p in _trainable(model)], std

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int) -> None:
        torch._foreach_add_(self.params, [torch.randn_like(p) for p in self.params], alpha=self.std)


class GrokfastEMA(Intervention):
    """Grokfast-EMA (Lee et al. 2024, Algorithm 2): h ← α·h + (1−α)·g, then g ← g + λ·h.

    h starts at the first gradient (as in the authors' code) rather than at 0, so the slow component is not
    biased toward zero during the first 1/(1−α) steps.
    """

    name = "grokfast_ema"

    def __init__(self, model: nn.Module, alpha: float, lamb: float):
        self.named, self.alpha, self.lamb = _trainable(model), alpha, lamb
        self.h: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def before_step(self, model: nn.Module, step: int) -> None:
        names, _, grads = _with_grad(self.named)
        old = [(self.h[n], g) for n, g in zip(names, grads) if n in self.h]
        if old:
            hs, gs = [h for h, _ in old], [g for _, g in old]
            torch._foreach_mul_(hs, self.alpha)
            torch._foreach_add_(hs, gs, alpha=1.0 - self.alpha)
        for n, g in zip(names, grads):
            if n not in self.h:
                self.h[n] = g.clone()  # h_0 = g_0
        torch._foreach_add_(grads, [self.h[n] for n in names], alpha=self.lamb)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"h.{n}": h for n, h in self.h.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.h = {k[2:]: v.clone() for k, v in tensors.items() if k.startswith("h.")}


class GrokfastMA(Intervention):
    """Grokfast-MA (Lee et al. 2024, Algorithm 1): g ← g + λ·(mean of the last w gradients, this one included).

    The window is a ring buffer (w, *shape) per parameter with a running sum, so a step costs the same for
    any w: subtract the slot being overwritten, add the new gradient, write it into the slot. The running sum
    is kept in float64 so that the rounding of 10^5 additions and subtractions cannot build up (early
    gradients are orders of magnitude larger than late ones). With `warmup` the gradients pass unchanged
    until w of them have been collected, as in the authors' code.
    """

    name = "grokfast_ma"

    def __init__(self, model: nn.Module, window: int, lamb: float, warmup: bool = True):
        self.named, self.window, self.lamb, self.warmup = _trainable(model), window, lamb, warmup
        self.buf = {n: torch.zeros((window, *p.shape), dtype=p.dtype, device=p.device) for n, p in self.named}
        self.sum = {n: torch.zeros(p.shape, dtype=torch.float64, device=p.device) for n, p in self.named}
        self.count = 0  # gradients seen so far

    @torch.no_grad()
    def before_step(self, model: nn.Module, step: int) -> None:
        names, _, grads = _with_grad(self.named)
        slot = self.count % self.window
        slots = [self.buf[n][slot] for n in names]  # views of the oldest entries (zeros until the window fills)
        sums = [self.sum[n] for n in names]
        torch._foreach_sub_(sums, slots)
        torch._foreach_add_(sums, grads)
        torch._foreach_copy_(slots, grads)
        self.count += 1
        if self.warmup and self.count < self.window:
            return
        torch._foreach_add_(grads, sums, alpha=self.lamb / min(self.count, self.window))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"buf.{n}": b for n, b in self.buf.items()}
        out.update({f"sum.{n}": s for n, s in self.sum.items()})
        out["count"] = torch.tensor(self.count, dtype=torch.int64)
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for n in self.buf:
            self.buf[n].copy_(tensors[f"buf.{n}"])
            self.sum[n].copy_(tensors[f"sum.{n}"])
        self.count = int(tensors["count"])


class OrthoGrad(Intervention):
    """⊥Grad (Prieto et al. 2025, eq. 12): for every weight tensor w, g ← g − (w·g / ‖w‖²)·w, so the update
    cannot simply scale the weights (and the logits) up. With `rescale` the projected gradient is given back
    the original gradient's norm, as in the authors' code. Followed by AdamW this is ⊥AdamW."""

    name = "orthograd"
    eps = 1e-30

    def __init__(self, model: nn.Module, rescale: bool = True):
        self.named, self.rescale = _trainable(model), rescale

    @torch.no_grad()
    def before_step(self, model: nn.Module, step: int) -> None:
        _, params, grads = _with_grad(self.named)
        for w, g in zip(params, grads):
            wf, gf = w.reshape(-1), g.reshape(-1)
            g_norm = torch.linalg.vector_norm(gf) if self.rescale else None
            coef = torch.dot(wf, gf) / (torch.dot(wf, wf) + self.eps)
            g.sub_(w * coef)
            if g_norm is not None:
                g.mul_(g_norm / (torch.linalg.vector_norm(gf) + self.eps))


def total_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all parameters together, as a float64 scalar tensor."""
    return torch.linalg.vector_norm(torch.stack([n.double() for n in torch._foreach_norm(params)]))


class NormConstraint(Intervention):
    """Omnigrok (Liu, Michaud, Tegmark 2023): after every step rescale all weights together so that their total
    L2 norm equals the target — by default the norm at initialization (after model.init_scale, so α sets the
    norm the run is held at) times `factor`."""

    name = "norm_constraint"

    def __init__(self, model: nn.Module, factor: float = 1.0, target: float | None = None):
        self.params = list(model.parameters())
        with torch.no_grad():  # the initial norm exactly, in float64 (each step's rescale may use float32 norms)
            init = math.sqrt(sum(p.double().pow(2).sum().item() for p in self.params))
        self.target = float(target) if target is not None else init * factor
        self.after_step(model, -1)  # start on the target too (a factor ≠ 1 or an absolute target moves it)

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int) -> None:
        torch._foreach_mul_(self.params, self.target / float(total_norm(self.params)))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"target": torch.tensor(self.target, dtype=torch.float64)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "target" in tensors:
            self.target = float(tensors["target"])

    def metrics(self, model: nn.Module) -> dict[str, float]:
        return {"norm_target": self.target}
