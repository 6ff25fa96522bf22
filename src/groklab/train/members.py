"""K runs trained at once as one stacked model: `run_members(configs) -> list[RunResult]`.

Member i is the run `run(configs[i])` would train alone, computed with the weights of all members stacked
along a leading K dimension. Each member is built exactly as run() builds it (`torch.manual_seed(seed)`,
its data set, `build_model`, `build_optimizer`), so it keeps its own seed, split, corruption, init scale,
learning rate (and schedule, warm-up, embedding lr), weight decay, no-decay groups and gradient clipping
(`StackedOptimizer.clip_grads`, each member's own norm). Its weights are
then stacked, and one step runs every member's own forward pass through the model's own code
(`torch.func.functional_call` under `torch.func.vmap`), one backward of the sum of the members' losses
(members share no weights, so each receives the gradient of its own loss), and one update of the stacked
weights with each member's hyperparameters (`StackedOptimizer`: torch.optim's AdamW / Adam / SGD
arithmetic, per member). Minibatches are drawn per member from its own generator as run() draws them;
members of different batch sizes are padded and each takes the mean loss over its own rows.

Evaluation, metric rows, checkpoints, resume states, summaries and run directories are run()'s, made by
run()'s own functions on each member's own module, whose parameters are views of its row of the stack; a
member's resume state is one `groklab resume` continues per process. A member's interventions (Grokfast,
⊥Grad, gradient and weight noise, the norm constraint) are run()'s objects, run on its own module (the
gradients, too, are views of the stack's) with its own global generator for the noise. A member whose
stop rule fires (`train.stop_when`, a non-finite loss) is frozen: it leaves the stack, its run directory
is finished, and the others go on.

Not every run can be a member (`batchable`): dropout (its masks come from each run's global generator,
drawn inside the forward pass), BatchNorm (running statistics are buffers), data interventions
(`reg.swap_*`), the loggers, and noise off the CPU are refused, and a sweep trains such runs one per
process instead, and says so. In float64 a member's metric rows agree with its lone run to 1e-9 and its
weights to 1e-9 (tests/test_members.py); in float32 to float rounding (batched matmuls add in another
order).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from groklab.config import RegConfig, RunConfig, TrainConfig
from groklab.errors import ConfigError, RunDirError
from groklab.store import RunDir
from groklab.train import loop as L
from groklab.store import check_out_path, config_fingerprint
from groklab.train.optim import build_optimizer, loss_fn, loss_spec, lr_at
from groklab.train.runtime import cpu_runtime
from groklab.train.stop import STANDARD_METRICS, StopRule
from groklab.train.schedule import BATCH_SEED_OFFSET, eval_steps, log_spaced_steps, minibatch

# train.* fields a member implements exactly as run() does. Any other train field (one added to run() later)
# must keep its default, so that a new feature falls back to per-run training instead of being ignored.
_TRAIN_FIELDS = {
    "steps", "batch_size", "loss", "dtype", "device", "seed", "eval_points", "eval_every", "checkpoint_points",
    "resume_every_s", "eval_batch_size", "threads", "stop_when", "stop_patience", "loss_reduction",
    "loss_dtype", "stop_patience_from_first", "batch_order",
}
# reg.* fields whose interventions (gradient filters and projections, noise, the norm constraint) a member
# runs exactly as run() does, on its own module; any other (e.g. a data intervention) trains per run.
_REG_FIELDS = {
    "grokfast", "grokfast_ema_alpha", "grokfast_ema_lamb", "grokfast_ma_window", "grokfast_ma_lamb", "grokfast_ma_warmup",
    "grad_noise", "weight_noise", "constrain_norm", "norm_factor", "norm_target", "orthograd", "orthograd_rescale",
}
# model.* fields that only change the initial values, not the shapes or the forward pass: members may differ.
_INIT_ONLY = {"init_scale", "init_std", "init_overrides", "init_dist"}
_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
"""Buffers training updates (BatchNorm's): refused. Constant buffers (models/transformer.py's fixed sinusoids and
absent biases) are shared by the stack."""
# task.* fields that change only which examples a member trains on (its split, labels, sizes), not the shapes
# of its inputs and outputs: members may differ in them. Every other task field must be equal.
_TASK_FREE = {"train_frac", "corrupt_frac", "seed", "op", "train_size", "val_size", "tol", "rqi_tol", "sha256"}

# --- which runs can be members ------------------------------------------------------------------------
def refusal(cfg: RunConfig) -> str | None:
    """None if `cfg` can train as a stacked member; otherwise why not (field=value and the reason)."""
    m = cfg.model
    if m.dropout > 0:
        return f"model.dropout={m.dropout} (dropout masks are drawn from each run's global generator inside the forward pass)"
    if m.batchnorm:
        return "model.batchnorm=True (BatchNorm's running statistics are buffers, not stacked)"
    ref = RegConfig()
    for f in dataclasses.fields(RegConfig):
        v = getattr(cfg.reg, f.name)
        if f.name not in _REG_FIELDS and v != getattr(ref, f.name):
            return f"reg.{f.name}={v!r} (an intervention stacked members do not run; it trains per run)"
    if (cfg.reg.grad_noise > 0 or cfg.reg.weight_noise > 0) and cfg.train.device != "cpu":
        return f"reg.grad_noise/weight_noise with train.device={cfg.train.device!r} (noise off the CPU draws from the device's generator)"
    tref = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        v = getattr(cfg.train, f.name)
        if f.name == "loggers" and v:
            return f"train.loggers={v!r} (loggers run per run)"
        if f.name not in _TRAIN_FIELDS and f.name != "loggers" and v != getattr(tref, f.name):
            return f"train.{f.name}={v!r} (stacked members implement only its default)"
    return None


def signature(cfg: RunConfig) -> dict[str, Any]:
    """Runs with equal signatures build equally shaped models with the same forward pass and share the
    schedule of steps, evaluations and checkpoints, so they can be stacked (a flat dict, JSON-able)."""
    sig = {f"model.{k}": v for k, v in dataclasses.asdict(cfg.model).items() if k not in _INIT_ONLY}
    sig.update({f"task.{k}": v for k, v in dataclasses.asdict(cfg.task).items() if k not in _TASK_FREE})
    t = cfg.train
    for k in ("steps", "loss", "loss_reduction", "loss_dtype", "dtype", "device", "eval_points", "eval_every", "checkpoint_points", "eval_batch_size", "threads"):
        sig[f"train.{k}"] = getattr(t, k, None)
    sig["optim.name"] = cfg.optim.name
    return sig


def signature_key(cfg: RunConfig) -> str:
    """`signature` as a string, to group runs by."""
    return json.dumps(signature(cfg), sort_keys=True, default=repr)


def batchable(configs: list[RunConfig]) -> tuple[bool, str]:
    """(True, "") if the configs can train together as stacked members; else (False, the reason)."""
    if not configs:
        return False, "no runs"
    for c in configs:
        why = refusal(c)
        if why:
            return False, why
    first = signature(configs[0])
    for c in configs[1:]:
        other = signature(c)
        if other != first:
            diff = sorted(k for k in first if first[k] != other.get(k))
            return False, f"the runs differ in {', '.join(diff)} (stacked members share shapes and schedule)"
    return True, ""


# --- the optimizer of stacked members ---------------------------------------------------------------------
class StackedOptimizer:
    """torch.optim's AdamW, Adam (coupled L2) and SGD (momentum) on stacked weights (K, ...), every member
    with the hyperparameters of its own torch optimizer (`build_optimizer`: lr, the embeddings' lr_scale,
    weight decay of its parameter group, betas, eps, momentum), read from that optimizer's parameter groups.

    The arithmetic is torch's single-tensor path (`torch.optim.adam._single_tensor_adam`, `sgd`), with each
    scalar replaced by a (K, 1, ...) column, in an order that makes every product the one torch forms; the
    members step together, so they share the step count t.
    """

    def __init__(self, params: dict[str, torch.Tensor], optimizers: list[torch.optim.Optimizer], names: list[list[str]]):
        kinds = set()
        self.hp: dict[str, dict[str, list]] = {n: {} for n in params}
        for opt, member_names in zip(optimizers, names):
            name_of = {}
            for g in opt.param_groups:
                for p in g["params"]:
                    name_of[id(p)] = g
            kinds.add(self._kind(opt))
            for n, p in member_names:
                g = name_of[id(p)]
                h = self.hp[n]
                h.setdefault("lr_scale", []).append(g.get("lr_scale", 1.0))
                h.setdefault("weight_decay", []).append(g["weight_decay"])
                if "betas" in g:
                    h.setdefault("beta1", []).append(g["betas"][0])
                    h.setdefault("beta2", []).append(g["betas"][1])
                    h.setdefault("eps", []).append(g["eps"])
                else:
                    h.setdefault("momentum", []).append(g["momentum"])
        if len(kinds) != 1:
            raise ValueError(f"stacked members need one optimizer kind, got {sorted(kinds)}")
        self.kind = kinds.pop()
        self.params = params
        self.state: dict[str, dict[str, torch.Tensor]] = {n: {} for n in params}
        self.t = 0
        self._cols: dict[tuple, torch.Tensor] = {}
        if self.kind != "sgd":
            for n, p in params.items():
                self.state[n] = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}

    @staticmethod
    def _kind(opt: torch.optim.Optimizer) -> str:
        d = opt.defaults
        if any(d.get(k) for k in ("amsgrad", "maximize", "nesterov", "differentiable", "capturable")) or d.get("dampening", 0):
            raise ValueError(f"stacked members support plain AdamW/Adam/SGD only, not {type(opt).__name__} with {d}")
        if isinstance(opt, torch.optim.AdamW) or (isinstance(opt, torch.optim.Adam) and d.get("decoupled_weight_decay")):
            return "adamw"
        if isinstance(opt, torch.optim.Adam):
            return "adam"
        if isinstance(opt, torch.optim.SGD):
            return "sgd"
        raise ValueError(f"stacked members support AdamW, Adam and SGD, not {type(opt).__name__}")

    def _col(self, values: list[float], like: torch.Tensor) -> torch.Tensor:
        """The members' values as a (K, 1, ...) column broadcasting against `like`. Memoized: most columns
        (weight decay, betas, eps, this step's lr) are the same for every parameter of a dimension, and a
        tensor made from a list each time cost ~6% of a small transformer's stacked step."""
        key = (tuple(values), like.dtype, like.device, like.dim())
        col = self._cols.get(key)
        if col is None:
            if len(self._cols) > 1024:  # the step-dependent columns (lr, bias corrections) come and go
                self._cols.clear()
            col = self._cols[key] = torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))
        return col

    def keep(self, rows: list[int]) -> None:
        """Keep only the members at these positions of the stack (the others stopped)."""
        idx = torch.tensor(rows, dtype=torch.long)
        for n in list(self.params):
            self.params[n] = self.params[n].detach()[idx.to(self.params[n].device)].requires_grad_(True)
            self.state[n] = {k: v[idx.to(v.device)] for k, v in self.state[n].items()}
            self.hp[n] = {k: [v[i] for i in rows] for k, v in self.hp[n].items()}

    @torch.no_grad()
    def clip_grads(self, max_norms: list[float | None]) -> None:
        """run()'s `torch.nn.utils.clip_grad_norm_` per member (optim.grad_clip; None: that member unclipped):
        member j's norm is the L2 norm of its parameters' gradient norms, its gradients scaled by
        min(1, max_norm / (norm + 1e-6)), the same arithmetic as torch's."""
        if all(c is None for c in max_norms):
            return
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)  # (K,)
        coef = torch.tensor([math.inf if c is None else c for c in max_norms], dtype=norms.dtype, device=norms.device)
        coef = (coef / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))

    @torch.no_grad()
    def step(self, lrs: list[float]) -> None:
        """One update with the members' scheduled learning rates `lrs` (before each group's lr_scale)."""
        self.t += 1
        t = self.t
        for n, p in self.params.items():
            g, h, st = p.grad, self.hp[n], self.state[n]
            if g is None:
                continue
            lr = [a * s for a, s in zip(lrs, h["lr_scale"])]  # run(): group["lr"] = lr_at(...) * lr_scale
            wd = h["weight_decay"]
            if self.kind == "sgd":
                if any(wd):
                    g = g + p * self._col(wd, p)  # grad.add(param, alpha=wd)
                mom = h["momentum"]
                if any(mom):
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = g.clone()  # torch: the first buffer is the gradient itself
                    else:
                        st["momentum_buffer"].mul_(self._col(mom, p)).add_(g)
                    # members without momentum use the gradient itself (torch keeps no buffer for them)
                    g = st["momentum_buffer"] if all(mom) else torch.where(self._col([float(m != 0) for m in mom], p).bool(), st["momentum_buffer"], g)
                p.add_(g * self._col([-x for x in lr], p))
                continue
            if any(wd):
                if self.kind == "adamw":
                    p.mul_(self._col([1 - a * w for a, w in zip(lr, wd)], p))
                else:
                    g = g + p * self._col(wd, p)
            b1, b2 = h["beta1"], h["beta2"]
            st["exp_avg"].lerp_(g, self._col([1 - b for b in b1], p))
            st["exp_avg_sq"].mul_(self._col(b2, p)).addcmul_(g * self._col([1 - b for b in b2], p), g)
            step_size = [a / (1 - b**t) for a, b in zip(lr, b1)]
            bc2_sqrt = [(1 - b**t) ** 0.5 for b in b2]
            denom = (st["exp_avg_sq"].sqrt() / self._col(bc2_sqrt, p)).add_(self._col(h["eps"], p))
            p.addcdiv_(st["exp_avg"] * self._col([-s for s in step_size], p), denom)

    def member_state(self, j: int, opt: torch.optim.Optimizer, named: list[tuple[str, nn.Parameter]], lr_now: float | None) -> None:
        """Write member j's state into its own torch optimizer `opt` (over its own module's parameters), as
        torch would hold it after self.t steps: then run()'s resume format is run()'s own writer's."""
        opt.state.clear()
        if lr_now is not None:
            for g in opt.param_groups:
                g["lr"] = lr_now * g.get("lr_scale", 1.0)
        if self.t == 0:
            return
        for n, p in named:
            st = self.state[n]
            if self.kind == "sgd":
                if self.hp[n]["momentum"][j] != 0 and "momentum_buffer" in st:
                    opt.state[p] = {"momentum_buffer": st["momentum_buffer"][j].clone()}
            else:
                opt.state[p] = {
                    "step": torch.tensor(float(self.t)),
                    "exp_avg": st["exp_avg"][j].clone(),
                    "exp_avg_sq": st["exp_avg_sq"][j].clone(),
                }


# --- the members' loop ----------------------------------------------------------------------------------
@dataclass
class _Member:
    cfg: RunConfig
    data: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    batch_gen: torch.Generator
    rng: torch.Tensor  # the global generator's state after init, as run() saves it
    store: RunDir | None
    batch: int | None = None  # the resolved minibatch size (None: full batch)
    hooks: list = field(default_factory=list)  # its interventions (train/hooks.py), on its own module
    stop: StopRule | None = None
    rows: list[dict] = field(default_factory=list)
    logged: set[int] = field(default_factory=set)
    stopped: tuple[str, int] | None = None  # (stop_reason, stopped_step) once it has stopped


def _stop_rule(cfg: RunConfig) -> StopRule:
    """run()'s stop rule for this member (train.stop_when with its patience, a non-finite loss)."""
    return StopRule.from_config(cfg.train)


def _check_stop_names(mb: _Member) -> None:
    """run(): a stop condition on a metric outside the standard ones is checked on a dry evaluation
    (generators untouched), so a misspelt train.stop_when is refused before any directory exists."""
    cond = mb.stop.condition
    if cond is None or cond.metric in STANDARD_METRICS:
        return
    with torch.random.fork_rng(devices=[]):
        names = {"step", "weight_norm", "last_layer_norm", "lr", "elapsed_s", *L.evaluate(mb.model, mb.data, mb.cfg.train.loss, mb.cfg.train.eval_batch_size)}
        for h in mb.hooks:
            names.update(h.metrics(mb.model))
    mb.stop.check_names(names)


def _own(model: nn.Module) -> None:
    """A member leaving the stack keeps its weights in storage of its own (frozen as they are)."""
    for q in model.parameters():
        q.data = q.data.clone()


@contextmanager
def _member_rng(mb: _Member):
    """The member's global generator around its interventions (noise draws from it, as in run())."""
    torch.set_rng_state(mb.rng)
    try:
        yield
    finally:
        mb.rng = torch.get_rng_state()


def _pad(tensors: list[torch.Tensor]) -> torch.Tensor:
    n = max(len(t) for t in tensors)
    if all(len(t) == n for t in tensors):
        return torch.stack(tensors)
    out = torch.zeros((len(tensors), n, *tensors[0].shape[1:]), dtype=tensors[0].dtype, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def run_members(configs: list[RunConfig], *, write: bool = True, on_step: Callable[[int], None] | None = None) -> list[RunResult]:
    """Train the configs together as one stacked model; see the module docstring.

    Each member writes its run directory `cfg.out` (when set and `write`), which must not hold a run yet.
    Returns each member's RunResult, in order (`interrupted` after Ctrl-C, each member's resume state then
    saved). `on_step(step)` is called at every step before its update. Raises ConfigError if
    `batchable(configs)` says no.
    """
    ok, why = batchable(configs)
    if not ok:
        raise ConfigError(f"these runs cannot train as stacked members: {why}")
    with cpu_runtime(configs[0].train.threads) as rt:  # run()'s CPU settings, for the whole stack
        return _run_members(configs, write, on_step, rt)


def _run_members(configs: list[RunConfig], write: bool, on_step, rt) -> list[RunResult]:
    c0 = configs[0]
    tc0 = c0.train
    device = L.resolve_device(tc0.device)
    dtype = torch.float64 if tc0.dtype == "float64" else torch.float32
    from groklab.models import build_model
    from groklab.tasks import build_dataset
    from groklab.train.interventions import build_interventions

    # --- every member built as run() builds it ---
    members: list[_Member] = []
    for cfg in configs:
        tc = cfg.train
        store = RunDir(Path(cfg.out)) if (write and cfg.out) else None
        if store is not None:
            check_out_path(cfg.out)  # as run(): one line before any work
        if store is not None and (store.path / "config.json").exists():
            raise RunDirError(f"{cfg.out!r} already holds a run; resume it with `groklab resume {cfg.out}` or choose another --out")
        torch.manual_seed(tc.seed)
        data = build_dataset(cfg.task).to(device, dtype)
        model = build_model(cfg.model, data.n_elements, data.n_classes, data.d_input, data.n_inputs).to(device=device, dtype=dtype)
        optimizer = build_optimizer(model, cfg.optim)
        hooks = build_interventions(cfg, model)
        if any(n.rsplit(".", 1)[-1] in _RUNNING_STATS for n, _ in model.named_buffers()):
            raise ConfigError(f"model.arch={cfg.model.arch!r} with these settings has running statistics, which stacked members do not keep")
        batch = tc.resolved_batch_size(data.n_train)  # `auto`: min(512, ⌈n_train/2⌉), as run()
        if batch is not None and batch > data.n_train:
            raise ConfigError(f"train.batch_size={batch} is larger than the training set ({data.n_train} samples from task.path={cfg.task.path!r}); use at most {data.n_train}, or None for full batch")
        mb = _Member(
            cfg=cfg, data=data, model=model, optimizer=optimizer, rng=torch.get_rng_state(), store=store, batch=batch, hooks=hooks,
            batch_gen=torch.Generator().manual_seed(tc.seed + BATCH_SEED_OFFSET), stop=_stop_rule(cfg),
        )
        _check_stop_names(mb)
        members.append(mb)
    # run() fits the threads to its model; the stack's work is all members' together
    rt.fit(types.SimpleNamespace(parameters=lambda: [p for mb in members for p in mb.model.parameters()]),
           max(mb.batch or mb.data.n_train for mb in members))
    names = [n for n, _ in members[0].model.named_parameters()]
    shapes = [tuple(p.shape) for _, p in members[0].model.named_parameters()]
    # The stack runs the first member's module: its constant buffers (fixed sinusoids, absent biases as zeros)
    # stand for every member's, so they must be the same.
    buffers = dict(members[0].model.named_buffers())
    for mb in members[1:]:
        if [(n, tuple(p.shape)) for n, p in mb.model.named_parameters()] != list(zip(names, shapes)):
            raise ConfigError("stacked members must have equally shaped weights; these configs build different models")
        if any(not torch.equal(b, buffers[n]) for n, b in mb.model.named_buffers()):
            raise ConfigError("stacked members must have equal constant buffers; these configs build different models")
    for mb in members:
        if mb.store is not None:  # only now, with every member's data read and checked (as run())
            mb.store.path.mkdir(parents=True, exist_ok=True)
            mb.store.write_config(mb.cfg)

    # --- the stack: weights (K, ...), the optimizer, the forward pass of the model's own code ---
    P = {n: torch.stack([dict(mb.model.named_parameters())[n].detach() for mb in members]).clone().requires_grad_(True) for n in names}
    opt = StackedOptimizer(P, [mb.optimizer for mb in members], [list(mb.model.named_parameters()) for mb in members])
    base = members[0].model
    base.train()

    def one(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(base, params, (x,))

    forward = torch.func.vmap(one)  # (K, ...) weights, (K, B, ...) inputs -> (K, B, C) outputs
    active = list(range(len(members)))  # member index of each row of the stack

    def bind() -> None:
        """Each training member's own module holds views of its row of the stack, so evaluation, checkpoints
        and its interventions read (and change, in place) the stack itself, without copies."""
        for j, i in enumerate(active):
            for n, q in members[i].model.named_parameters():
                q.data = opt.params[n].detach()[j]

    def sync(j: int) -> nn.Module:
        return members[active[j]].model

    bind()

    total = tc0.steps
    evals = set(eval_steps(total, tc0.eval_points, tc0.eval_every))
    ckpts = set(log_spaced_steps(total, tc0.checkpoint_points))
    resume_every = min(c.train.resume_every_s for c in configs)
    writing = any(mb.store is not None for mb in members)

    def save_resume(j: int, step: int, elapsed: float) -> None:
        """Member j's resume state in run()'s format (model, optimizer, generators; the stop rule's state)."""
        mb = members[active[j]]
        model = sync(j)
        opt.member_state(j, mb.optimizer, list(model.named_parameters()), lr_at(step - 1, mb.cfg.optim, total) if step > 0 else None)
        opt_tensors, opt_meta = L.optim_tensors(mb.optimizer)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(opt_tensors)
        tensors["rng.torch"] = mb.rng
        tensors["rng.batch"] = mb.batch_gen.get_state()
        if device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        for h in mb.hooks:
            tensors.update({f"hook.{h.name}.{k}": v for k, v in h.state_tensors().items()})
        meta = {"step": step, "elapsed_s": elapsed, "optim": opt_meta}
        meta["stop"] = mb.stop.state()
        meta["config"] = config_fingerprint(mb.cfg)
        mb.store.save_resume(tensors, meta)

    loss_name = loss_spec(c0.train)  # one loss for the whole stack (part of the signature)

    full_batch: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def member_losses(ms: list[_Member], xs: list[torch.Tensor], ys: list[torch.Tensor]) -> torch.Tensor:
        """(K,) each member's mean training loss over its own batch: run()'s loss_fn, per sample, over the
        stack's outputs (K, B, C) at once; rows that pad a smaller batch are left out of the mean."""
        if all(mb.batch is None for mb in ms):
            # full batch: the same stacked data every step until a member leaves (stacked once per set)
            key = tuple(id(mb) for mb in ms)
            if key not in full_batch:
                full_batch.clear()
                full_batch[key] = (_pad(xs), _pad(ys))
            X, Y = full_batch[key]
        else:
            X, Y = _pad(xs), _pad(ys)
        out = forward(opt.params, X)  # (K, B, C)
        K, B = Y.shape[:2]
        per = loss_fn(out.reshape(K * B, *out.shape[2:]), Y.reshape(K * B, *Y.shape[2:]), loss_name, reduction="none").view(K, B)
        counts = [len(y) for y in ys]
        if all(c == B for c in counts):
            return per.mean(1)
        mask = torch.arange(B, device=per.device) < torch.tensor(counts, device=per.device)[:, None]
        return per.masked_fill(~mask, 0.0).sum(1) / torch.tensor(counts, dtype=per.dtype, device=per.device)

    on_cpu = device.type == "cpu"
    check_every = L.LOSS_CHECK_EVERY
    step = 0
    t0 = time.perf_counter()
    last_save = t0

    def visit(j: int, step: int, save_all: bool) -> bool:
        """run()'s blocks before an update for member j of the stack: evaluate (log-spaced, the step its stop
        condition is due, and the step it stops at), checkpoint, save the resume state. True: it stops here."""
        mb = members[active[j]]
        final = step >= total or mb.stopped is not None
        due = mb.stop.due_step()
        if (step in evals or final or step == due) and step not in mb.logged:
            model = sync(j)
            row = {"step": step, **L.evaluate(model, mb.data, loss_name, mb.cfg.train.eval_batch_size)}
            row["weight_norm"] = L.weight_norm(model)
            row["last_layer_norm"] = L.last_layer_norm(model)
            for h in mb.hooks:
                row.update(h.metrics(model))
            row["lr"] = lr_at(min(step, total - 1), mb.cfg.optim, total)
            row["elapsed_s"] = time.perf_counter() - t0
            mb.rows.append(row)
            mb.logged.add(step)
            if mb.store is not None:
                mb.store.append_metrics(row)
            if mb.stopped is None:
                reason = mb.stop.update(step, row)
                if reason:
                    mb.stopped = (reason, step)
                    final = True
        if mb.store is not None:
            if step in ckpts or final:
                mb.store.save_weights(step, sync(j))
            if step in ckpts or final or save_all:
                save_resume(j, step, time.perf_counter() - t0)
        if final and mb.stopped is None:
            mb.stopped = ("budget", step)
        return final

    def leave(done: list[int]) -> None:
        """Members that stopped leave the stack with their weights in their own modules (frozen)."""
        nonlocal active
        for j in done:
            _own(members[active[j]].model)
        going = [j for j in range(len(active)) if j not in done]
        if going:
            opt.keep(going)
        active = [active[j] for j in going]
        bind()

    with L.StopFlag() as stop:
        while active:
            now = time.perf_counter()
            save_all = writing and (now - last_save >= resume_every or stop.requested)
            done = [j for j in range(len(active)) if visit(j, step, save_all)]
            if save_all:
                last_save = now
            if done:
                leave(done)
            if not active:
                break
            if on_step is not None:
                on_step(step)
            if stop.requested:  # Ctrl-C: every member still active returns interrupted, its resume state saved
                break

            # --- one update of every member still training ---
            ms = [members[i] for i in active]
            xs, ys = [], []
            for mb in ms:
                b = mb.batch
                if b is None:
                    xs.append(mb.data.x_train)
                    ys.append(mb.data.y_train)
                else:
                    idx = minibatch(step, mb.data.n_train, b, mb.cfg.train.batch_order, mb.cfg.train.seed, mb.batch_gen).to(device)
                    xs.append(mb.data.x_train[idx])
                    ys.append(mb.data.y_train[idx])
            losses = member_losses(ms, xs, ys)
            # run() reads the loss every step on a CPU, every LOSS_CHECK_EVERY steps elsewhere
            if (on_cpu or step % check_every == 0) and not bool(torch.isfinite(losses).all()):
                # run(): a member whose loss is NaN/inf takes no update; it is evaluated and checkpointed at
                # this step and stops ("diverged"); the others step without it
                bad = [j for j in range(len(ms)) if not math.isfinite(losses[j].item())]
                for j in bad:
                    mb = ms[j]
                    mb.stop.check_loss(step, losses[j].item())
                    mb.stopped = ("diverged", step)
                    visit(j, step, False)
                keep = [j for j in range(len(ms)) if j not in bad]
                leave(bad)
                if not active:
                    break
                ms, xs, ys = [ms[j] for j in keep], [xs[j] for j in keep], [ys[j] for j in keep]
                losses = member_losses(ms, xs, ys)
            for n in opt.params:
                opt.params[n].grad = None
            losses.sum().backward()
            hooked = [(j, mb) for j, mb in enumerate(ms) if mb.hooks]
            for j, mb in hooked:  # gradient filters and projections, on views of the stack's gradients
                for n, q in mb.model.named_parameters():
                    q.grad = opt.params[n].grad[j]
                with _member_rng(mb):
                    for h in mb.hooks:
                        h.before_step(mb.model, step)
                for q in mb.model.parameters():
                    q.grad = None
            opt.clip_grads([mb.cfg.optim.grad_clip for mb in ms])
            opt.step([lr_at(step, mb.cfg.optim, total) for mb in ms])
            for j, mb in hooked:  # weight noise, the norm constraint: on views of the stack's weights
                with _member_rng(mb):
                    for h in mb.hooks:
                        h.after_step(mb.model, step)
            step += 1

    wall = time.perf_counter() - t0
    for i in active:
        _own(members[i].model)
    results = []
    for mb in members:
        summary: dict = {}
        if mb.stopped is not None:
            reason, at = mb.stopped
            summary = L.make_summary(mb.cfg, mb.rows, mb.model, mb.data, wall, device, reason, at)
            summary["batched"] = {"members": len(members), "note": "wall_time_s is the whole stack's"}
            if mb.store is not None:
                mb.store.write_summary(summary)
        results.append(L.RunResult(
            config=mb.cfg, model=mb.model, rows=mb.rows, summary=summary, run_dir=mb.store.path if mb.store else None,
            interrupted=mb.stopped is None,
        ))
    return results


RunResult = L.RunResult
__all__ = ["run_members", "batchable", "refusal", "signature", "signature_key", "StackedOptimizer"]
