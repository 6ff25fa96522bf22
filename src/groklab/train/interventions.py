"""The knobs the grokking papers turn, as `Intervention`s (see hooks.py for the interface), and
`build_interventions`, which picks them from the config in the order they apply.

Gradient filters and projections act in `before_step` (after backward, before the optimizer step); weight
noise and the norm constraint in `after_step`; the training-set swap of ungrokking in `train_data`. Randomness comes from torch's global generator, whose state
the resume checkpoint keeps, so a resumed run draws the same noise as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn

from groklab.config import RunConfig
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


# --- data interventions: which examples a step trains on ------------------------------------------------
@torch.no_grad()
def _outputs(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """The model's outputs on x in chunks, with dropout off (and without drawing from the global RNG)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    finally:
        model.train(was_training)


def swapped_size(n_train: int, frac: float) -> int:
    """How many training examples `SwapTrainSet` keeps of n_train: round(frac · n_train), at least 1."""
    return max(1, min(n_train, round(frac * n_train)))


class SwapTrainSet(Intervention):
    """Ungrokking (Varma, Shah, Kenton, Kramár & Kumar 2023, "Explaining grokking through circuit efficiency",
    arXiv 2309.02390): from step `swap_step` on, train on a random subset of the training set of
    round(frac · n_train) examples. A network that grokked on a set above the critical data size D_crit
    and continues on a subset below it loses its validation accuracy again (ungrokking); the validation set
    stays the same, so validation accuracy before and after the swap measure the same thing.

    The subset is a function of `task.seed` alone (a generator of its own, never the global one), so a
    resumed run swaps to the same examples at the same step. The examples dropped at the swap are no longer
    trained on: `swap_dropped_acc`, their accuracy against the true labels, is a second held-out measure.
    """

    name = "swap_train"

    def __init__(self, swap_step: int, frac: float, seed: int, batch_size: int | str | None = None, chunk: int = 16384):
        self.swap_step, self.frac, self.seed, self.batch_size, self.chunk = swap_step, frac, seed, batch_size, chunk
        self.kept = None  # the data set from swap_step on
        self.dropped: tuple[torch.Tensor, torch.Tensor] | None = None
        self.current = None

    def _swap(self, data):
        from groklab.errors import ConfigError

        n = data.n_train
        k = swapped_size(n, self.frac)
        # A custom task's size is known only now. With batch_size `auto` (resolved from the full set) a batch
        # larger than the subset draws the whole subset: full batch on it.
        if isinstance(self.batch_size, int) and self.batch_size > k:
            raise ConfigError(
                f"train.batch_size={self.batch_size} is larger than the training set after the swap (reg.swap_train_frac="
                f"{self.frac} of {n} = {k}); use at most {k}, or None for full batch"
            )
        g = torch.Generator().manual_seed(self.seed + 2_000_003)  # apart from the split's and the batches' streams
        perm = torch.randperm(n, generator=g)
        keep, drop = perm[:k].sort().values, perm[k:].sort().values
        dev = data.x_train.device
        keep_d, drop_d = keep.to(dev), drop.to(dev)
        self.kept = dataclasses.replace(
            data, x_train=data.x_train[keep_d], y_train=data.y_train[keep_d], y_train_true=data.y_train_true[keep_d],
            corrupted=data.corrupted[keep_d], train_idx=data.train_idx[keep.to(data.train_idx.device)],
        )
        self.dropped = (data.x_train[drop_d], data.y_train_true[drop_d])

    def train_data(self, data, step: int):
        if step >= self.swap_step:
            if self.kept is None:
                self._swap(data)
            data = self.kept
        self.current = data
        return data

    def metrics(self, model: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.current is not None:
            out["train_size"] = float(self.current.n_train)
        if self.dropped is not None and len(self.dropped[1]):
            x, y = self.dropped
            readout = self.current.readout
            pred = readout.decide(_outputs(model, x, self.chunk))
            out["swap_dropped_acc"] = readout.correct(pred, y).double().mean().item()
        return out


class Efficiency(Intervention):
    """Circuit efficiency (Varma et al. 2023): how large the logits a network produces are for its
    parameter norm. Logged at every evaluation on the current training set: `logit_norm`, the mean over
    training examples of the L2 norm of the output (logit) vector, and `logit_per_param_norm`, that divided
    by the L2 norm of all parameters. Under weight decay a more efficient circuit reaches the same logits
    (the same loss) with a smaller parameter norm, which is why the generalizing circuit wins above the
    critical data size and the memorizing one below it. Changes nothing in training.

    A caveat on reading it: logits of an L-layer network grow like ‖θ‖^L, so the ratio compares circuits at
    similar parameter norms; the paper's own comparison is the parameter norm (`weight_norm`, always logged)
    each circuit ends at for the same training loss."""

    name = "efficiency"

    def __init__(self, chunk: int = 16384):
        self.chunk = chunk
        self.current = None

    def train_data(self, data, step: int):
        self.current = data
        return data

    def metrics(self, model: nn.Module) -> dict[str, float]:
        if self.current is None:
            return {}
        logits = _outputs(model, self.current.x_train, self.chunk).double()  # (N, C)
        logit_norm = torch.linalg.vector_norm(logits.reshape(len(logits), -1), dim=1).mean().item()
        param_norm = total_norm([p.detach() for p in model.parameters()]).item()
        return {"logit_norm": logit_norm, "logit_per_param_norm": logit_norm / param_norm if param_norm > 0 else math.nan}


def build_interventions(cfg: RunConfig, model: nn.Module) -> list[Intervention]:
    """The interventions `cfg.reg` asks for, in the order they are applied (none with the defaults).

    Before the optimizer step: gradient noise (a noisy gradient is what the filter then sees), the Grokfast
    filter, ⊥Grad (last, so the update stays orthogonal to the weights). After it: weight noise, then the norm
    constraint (last, so the norm equals its target after every step). Then the data interventions: the
    training-set swap of ungrokking, and the efficiency metric (after it, so it measures the swapped set).
    Build it from the freshly initialized model: the norm constraint's default target is the norm at
    initialization.
    """
    r = cfg.reg
    out: list[Intervention] = []
    if r.grad_noise > 0:
        out.append(GradNoise(model, r.grad_noise))
    if r.grokfast == "ema":
        out.append(GrokfastEMA(model, r.grokfast_ema_alpha, r.grokfast_ema_lamb))
    elif r.grokfast == "ma":
        out.append(GrokfastMA(model, r.grokfast_ma_window, r.grokfast_ma_lamb, r.grokfast_ma_warmup))
    if r.orthograd:
        out.append(OrthoGrad(model, r.orthograd_rescale))
    if r.weight_noise > 0:
        out.append(WeightNoise(model, r.weight_noise))
    if r.constrain_norm:
        out.append(NormConstraint(model, r.norm_factor, r.norm_target))
    # Data interventions last: they change which examples the step sees, not the update, and the efficiency
    # metric must measure the training set after any swap.
    if r.swap_step is not None:
        out.append(SwapTrainSet(r.swap_step, r.swap_train_frac, cfg.task.seed, cfg.train.batch_size, cfg.train.eval_batch_size))
    if r.efficiency or r.swap_step is not None:
        out.append(Efficiency(cfg.train.eval_batch_size))
    return out
