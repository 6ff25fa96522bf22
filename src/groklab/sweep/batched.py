"""Batched training: many MLP runs of one architecture in one process, as stacked weights.

Member i of a batch is the run `run(cfgs[i])` would train, computed with the weights of all members
stacked along a leading axis (M, ...): one gather, a few batched matmuls and one optimizer update per
step for all of them. Everything a run draws is drawn per member, as the run itself draws it:
- initialization from a generator seeded with `train.seed`, in the order `MLP.__init__` draws (W_E,
  W_in, W_hidden.*, W_out; float32, then × init_scale, then cast to the run's dtype);
- dropout masks from that same generator, continuing after the initialization (a run draws both from
  the global generator right after `torch.manual_seed(train.seed)`);
- minibatches from a generator seeded with `train.seed + 1_000_003`, as the loop does;
- the data split and corruption from `build_dataset(task)`.
Per-member hyperparameters (lr and its warm-up, weight decay, betas, eps, momentum, init scale, batch
size, training fraction, seeds) are tensors; training sets of different sizes are padded and masked.
The optimizers are written out here (AdamW, Adam with coupled L2, SGD with momentum) with torch's
single-tensor arithmetic; where a hyperparameter is the same for every member it is applied as the same
Python scalar torch would use, so such members match a lone run to the last bit or nearly, and
otherwise to float rounding (tests/test_sweep_batched.py measures it).

Run directories are written in the run format (config, metrics, checkpoints, summary), and resume
states in the format `groklab.train.resume` reads, so an interrupted batched member is finished by an
ordinary per-process resume. Only the MLP is batched; transformers and runs with interventions go to
the per-process executor (see `batchable`).
"""

from __future__ import annotations

import inspect
import math
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from groklab.config import RunConfig
from groklab.store import RunDir
from groklab.train.optim import loss_fn, lr_at
from groklab.train.schedule import eval_steps, log_spaced_steps

BATCH_SEED_OFFSET = 1_000_003  # the loop's minibatch generator: torch.Generator().manual_seed(seed + this)


# --- which runs can be batched together ---------------------------------------------------------------
# Fields the batched trainer implements (they may differ between members, or are part of the signature).
# Every other field must keep its default: a feature added to run() later falls back to per-process
# training until this trainer learns it, instead of being silently ignored.
SUPPORTED = {
    "task.group", "task.op", "task.p", "task.n", "task.train_frac", "task.corrupt_frac", "task.seed",
    "model.arch", "model.init_scale", "model.dropout", "model.input", "model.d_embed", "model.width",
    "model.depth", "model.bias", "model.act",
    "model.n_layers", "model.d_model", "model.n_heads", "model.d_mlp", "model.layernorm", "model.op_token",  # transformer only
    "optim.name", "optim.lr", "optim.weight_decay", "optim.beta1", "optim.beta2", "optim.eps", "optim.momentum",
    "optim.warmup_steps",
    "train.steps", "train.batch_size", "train.loss", "train.dtype", "train.device", "train.seed", "train.eval_points",
    "train.eval_every", "train.checkpoint_points", "train.resume_every_s", "train.eval_batch_size", "train.threads",
    "out",
}


def batchable(cfg: RunConfig) -> str | None:
    """None if `cfg` can train in a batch; otherwise the reason it cannot."""
    from groklab.sweep.table import _flatten

    if cfg.model.arch != "mlp":
        return f"model.arch={cfg.model.arch!r} (only the MLP on operand pairs is batched)"
    if cfg.task.group not in ("modular", "permutation"):
        return f"task.group={cfg.task.group!r} (only operation tables are batched)"
    if cfg.model.dropout > 0 and cfg.train.device != "cpu":
        return "dropout off the CPU (GPU dropout masks cannot be reproduced per member)"
    mine, ref = _flatten(cfg.to_dict()), _flatten(RunConfig().to_dict())
    for key, value in mine.items():
        if key not in SUPPORTED and key != "format_version" and value != ref.get(key):
            return f"{key}={value!r} (the batched trainer implements only the default for it)"
    return None


def signature(cfg: RunConfig) -> tuple:
    """Runs with equal signatures have equally shaped weights and the same schedule, so they batch."""
    m, t, o = cfg.model, cfg.train, cfg.optim
    return (
        m.arch, m.input, m.d_embed, m.width, m.depth, m.bias, m.act, m.dropout,
        cfg.task.n_elements, o.name, t.steps, t.loss, t.dtype, t.device, t.eval_points, t.eval_every,
        t.checkpoint_points, t.eval_batch_size,
    )


# --- the batched training ------------------------------------------------------------------------------
@dataclass
class _Member:
    cfg: RunConfig
    data: Any
    gen: torch.Generator  # init, then dropout
    batch_gen: torch.Generator
    store: RunDir | None
    rows: list[dict] = field(default_factory=list)


class _Stop:
    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> "_Stop":
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _param_names(cfg: RunConfig) -> list[str]:
    """The MLP's parameters in registration order (= model.parameters() order = optimizer indices)."""
    m = cfg.model
    names = ["W_E"] if m.input == "embed" else []
    names.append("W_in")
    if m.bias:
        names.append("b_in")
    names += [f"W_hidden.{i}" for i in range(m.depth - 1)]
    if m.bias:
        names += [f"b_hidden.{i}" for i in range(m.depth - 1)]
    names.append("W_out")
    if m.bias:
        names.append("b_out")
    return names


def _init_member(cfg: RunConfig, n: int, n_classes: int, gen: torch.Generator, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The weights MLP.__init__ + build_model draw after torch.manual_seed(train.seed), in their order."""
    m = cfg.model
    w: dict[str, torch.Tensor] = {}
    if m.input == "embed":
        w["W_E"] = torch.randn(n, m.d_embed, generator=gen) / math.sqrt(m.d_embed)
        d_in = 2 * m.d_embed
    else:
        d_in = 2 * n
    w["W_in"] = torch.randn(d_in, m.width, generator=gen) / math.sqrt(d_in)
    if m.bias:
        w["b_in"] = torch.zeros(m.width)
    for i in range(m.depth - 1):
        w[f"W_hidden.{i}"] = torch.randn(m.width, m.width, generator=gen) / math.sqrt(m.width)
    if m.bias:
        for i in range(m.depth - 1):
            w[f"b_hidden.{i}"] = torch.zeros(m.width)
    w["W_out"] = torch.randn(m.width, n_classes, generator=gen) / math.sqrt(m.width)
    if m.bias:
        w["b_out"] = torch.zeros(n_classes)
    if m.init_scale != 1.0:
        for t in w.values():
            t.mul_(m.init_scale)
    return {k: w[k].to(dtype) for k in _param_names(cfg)}


def _scalar_or_col(values: list[float], like: torch.Tensor) -> float | torch.Tensor:
    """A Python float when every member has the same value (torch's exact scalar path), else a (M, 1, ...)
    column broadcasting against `like`."""
    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


def _pad(tensors: list[torch.Tensor], fill: int = 0) -> torch.Tensor:
    n = max(len(t) for t in tensors)
    out = torch.full((len(tensors), n, *tensors[0].shape[1:]), fill, dtype=tensors[0].dtype, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def _data_to(data, device, dtype):
    # run() moves the data to the run's dtype too where Dataset.to takes one (real-valued targets)
    if len(inspect.signature(data.to).parameters) >= 2:
        return data.to(device, dtype)
    return data.to(device)


class _Adapter:
    """RunDir.save_weights takes a module; this hands it one member's weights as a state dict."""

    def __init__(self, sd: dict[str, torch.Tensor]):
        self._sd = sd

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._sd


@dataclass
class BatchResult:
    configs: list[RunConfig]
    rows: list[list[dict]]
    summaries: list[dict]
    weights: list[dict[str, torch.Tensor]]
    interrupted: bool = False


def train_batched(cfgs: list[RunConfig], write: bool = True) -> BatchResult:
    """Train every config (all MLPs with one `signature`) as one stacked batch.

    With `write`, each member's run directory `cfg.out` is written in the run format (and must not hold a
    run yet). Returns every member's metric rows, summary and final weights.
    """
    from groklab.models import build_model
    from groklab.tasks import build_dataset
    from groklab.train.loop import _tune_cpu_runtime, make_summary, resolve_device

    if not cfgs:
        return BatchResult([], [], [], [])
    sigs = {signature(c) for c in cfgs}
    if len(sigs) != 1:
        raise ValueError("train_batched needs configs of one signature (same architecture and schedule); group them with signature()")
    for c in cfgs:
        reason = batchable(c)
        if reason:
            raise ValueError(f"config cannot be batched: {reason}")
    c0 = cfgs[0]
    tc = c0.train
    device = resolve_device(tc.device)
    _tune_cpu_runtime()
    if tc.threads is not None:
        torch.set_num_threads(tc.threads)
    dtype = torch.float64 if tc.dtype == "float64" else torch.float32
    M = len(cfgs)
    total = tc.steps

    # --- members: data, generators, run directories ---
    members: list[_Member] = []
    for c in cfgs:
        store = RunDir(Path(c.out)) if (write and c.out) else None
        if store is not None:
            if (store.path / "config.json").exists():
                raise FileExistsError(f"{c.out!r} already holds a run")
            store.path.mkdir(parents=True, exist_ok=True)
            store.write_config(c)
        members.append(_Member(
            cfg=c, data=_data_to(build_dataset(c.task), device, dtype), gen=torch.Generator().manual_seed(c.train.seed),
            batch_gen=torch.Generator().manual_seed(c.train.seed + BATCH_SEED_OFFSET), store=store,
        ))
    n_el, n_cls = members[0].data.n_elements, members[0].data.n_classes
    names = _param_names(c0)
    inits = [_init_member(mb.cfg, n_el, n_cls, mb.gen, dtype) for mb in members]
    P = {k: torch.stack([w[k] for w in inits]).to(device).requires_grad_(True) for k in names}  # (M, ...)
    del inits
    opt_name = c0.optim.name
    state: dict[str, dict[str, torch.Tensor]] = {k: {} for k in names}
    if opt_name in ("adamw", "adam"):
        for k in names:
            state[k] = {"exp_avg": torch.zeros_like(P[k]), "exp_avg_sq": torch.zeros_like(P[k])}

    # --- the stacked model ---
    m = c0.model
    act = {"relu": F.relu, "gelu": F.gelu, "quadratic": lambda x: x * x}[m.act]
    rows_idx = torch.arange(M, device=device).view(M, 1)
    p_drop = m.dropout

    def dropout(h: torch.Tensor, counts: list[int]) -> torch.Tensor:
        # Each member draws its mask for its own rows from its own generator, as F.dropout on the CPU
        # does: bernoulli(1 - p), divided by 1 - p, multiplied in.
        noise = torch.zeros_like(h)
        for i, mb in enumerate(members):
            n_i = counts[i]
            ni = torch.empty((n_i, h.shape[-1]), dtype=h.dtype).bernoulli_(1 - p_drop, generator=mb.gen)
            noise[i, :n_i] = ni.div_(1 - p_drop).to(device)
        return h * noise

    def forward(X: torch.Tensor, train: bool, counts: list[int]) -> torch.Tensor:
        """X (M, B, 2) operand pairs -> logits (M, B, n_classes)."""
        if m.input == "embed":
            e = torch.cat([P["W_E"][rows_idx, X[..., 0]], P["W_E"][rows_idx, X[..., 1]]], dim=-1)  # (M, B, 2·d_embed)
            h = torch.bmm(e, P["W_in"])
        else:
            h = P["W_in"][rows_idx, X[..., 0]] + P["W_in"][rows_idx, X[..., 1] + n_el]  # (M, B, width)
        if m.bias:
            h = h + P["b_in"].unsqueeze(1)
        h = act(h)
        if train and p_drop > 0:
            h = dropout(h, counts)
        for i in range(m.depth - 1):
            h = torch.bmm(h, P[f"W_hidden.{i}"])
            if m.bias:
                h = h + P[f"b_hidden.{i}"].unsqueeze(1)
            h = act(h)
            if train and p_drop > 0:
                h = dropout(h, counts)
        out = torch.bmm(h, P["W_out"])  # (M, B, n_classes)
        return out + P["b_out"].unsqueeze(1) if m.bias else out

    def per_sample_loss(logits: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        Mb, B, C = logits.shape
        return loss_fn(logits.reshape(Mb * B, C), Y.reshape(Mb * B), tc.loss, reduction="none").view(Mb, B)

    # --- evaluation: each member's weights in a real MLP, measured by the loop's own evaluate() ---
    # Evaluations are few (log-spaced), so this costs little, and every metric a run logs is logged here
    # the same way, including any the loop gains later.
    from groklab.train import loop as L

    Xtr, Ytr = _pad([mb.data.x_train for mb in members]), _pad([mb.data.y_train for mb in members])
    n_tr = [mb.data.n_train for mb in members]
    models = []
    for mb in members:
        with torch.random.fork_rng(devices=[]):
            models.append(build_model(mb.cfg.model, n_el, n_cls).to(device=device, dtype=dtype))
    lr_takes_total = len(inspect.signature(lr_at).parameters) >= 3

    def lr_of(step_: int, optim) -> float:
        return lr_at(step_, optim, total) if lr_takes_total else lr_at(step_, optim)

    def sync(i: int):
        with torch.no_grad():
            for k, q in models[i].named_parameters():
                q.copy_(P[k][i])
        return models[i]

    def eval_rows(step: int, elapsed: float) -> list[dict]:
        out = []
        for i, mb in enumerate(members):
            model = sync(i)
            row = {"step": step, **L.evaluate(model, mb.data, tc.loss, tc.eval_batch_size)}
            row["weight_norm"] = L.weight_norm(model)
            if hasattr(L, "last_layer_norm"):
                row["last_layer_norm"] = L.last_layer_norm(model)
            row["lr"] = lr_of(min(step, total - 1), mb.cfg.optim)
            row["elapsed_s"] = elapsed
            out.append(row)
        return out

    def member_weights(i: int) -> dict[str, torch.Tensor]:
        return {k: P[k][i].detach().clone() for k in names}

    def member_model(i: int):
        return sync(i)

    def save_resume(i: int, step_: int, elapsed: float) -> None:
        """Member i's resume state in the format run(resume=True) loads: weights, optimizer, generators."""
        from groklab.train.loop import _optim_tensors
        from groklab.train.optim import build_optimizer

        mb = members[i]
        model = member_model(i)
        opt = build_optimizer(model, mb.cfg.optim)
        for k, p in zip(names, model.parameters()):
            if opt_name in ("adamw", "adam"):
                opt.state[p] = {
                    "step": torch.tensor(float(step_)),
                    "exp_avg": state[k]["exp_avg"][i].clone(),
                    "exp_avg_sq": state[k]["exp_avg_sq"][i].clone(),
                }
            elif "momentum_buffer" in state[k]:
                opt.state[p] = {"momentum_buffer": state[k]["momentum_buffer"][i].clone()}
        opt_tensors, opt_meta = _optim_tensors(opt)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(opt_tensors)
        tensors["rng.torch"] = mb.gen.get_state()
        tensors["rng.batch"] = mb.batch_gen.get_state()
        mb.store.save_resume(tensors, {"step": step_, "elapsed_s": elapsed, "optim": opt_meta})

    # --- the optimizer step, all members at once ---
    def optim_step(t: int, step: int) -> None:
        lrs = [lr_of(step, mb.cfg.optim) for mb in members]
        wds = [mb.cfg.optim.weight_decay for mb in members]
        with torch.no_grad():
            for k in names:
                p, g = P[k], P[k].grad
                if opt_name == "sgd":
                    if any(wds):
                        wd = _scalar_or_col(wds, p)
                        g = g + wd * p if isinstance(wd, torch.Tensor) else g.add(p, alpha=wd)
                    moms = [mb.cfg.optim.momentum for mb in members]
                    if any(moms):
                        st = state[k]
                        if "momentum_buffer" not in st:
                            st["momentum_buffer"] = g.clone()
                        else:
                            mom = _scalar_or_col(moms, p)
                            st["momentum_buffer"].mul_(mom).add_(g)
                        g = st["momentum_buffer"]
                    lr = _scalar_or_col(lrs, p)
                    if isinstance(lr, torch.Tensor):
                        p.sub_(lr * g)
                    else:
                        p.add_(g, alpha=-lr)
                    continue
                st = state[k]
                b1s = [mb.cfg.optim.beta1 for mb in members]
                b2s = [mb.cfg.optim.beta2 for mb in members]
                eps = _scalar_or_col([mb.cfg.optim.eps for mb in members], p)
                if opt_name == "adamw":
                    if any(wds):
                        decay = _scalar_or_col([1 - lr * wd for lr, wd in zip(lrs, wds)], p)
                        p.mul_(decay)
                elif any(wds):
                    wd = _scalar_or_col(wds, p)
                    g = g.add(p, alpha=wd) if not isinstance(wd, torch.Tensor) else g + wd * p
                st["exp_avg"].lerp_(g, _scalar_or_col([1 - b for b in b1s], p))
                b2 = _scalar_or_col(b2s, p)
                st["exp_avg_sq"].mul_(b2)
                one_minus_b2 = _scalar_or_col([1 - b for b in b2s], p)
                if isinstance(one_minus_b2, torch.Tensor):
                    st["exp_avg_sq"].add_(one_minus_b2 * g * g)
                else:
                    st["exp_avg_sq"].addcmul_(g, g, value=one_minus_b2)
                bc2_sqrt = _scalar_or_col([(1 - b**t) ** 0.5 for b in b2s], p)
                step_size = _scalar_or_col([lr / (1 - b**t) for lr, b in zip(lrs, b1s)], p)
                denom = (st["exp_avg_sq"].sqrt() / bc2_sqrt).add_(eps)
                if isinstance(step_size, torch.Tensor):
                    p.sub_(step_size * (st["exp_avg"] / denom))
                else:
                    p.addcdiv_(st["exp_avg"], denom, value=-step_size)

    # --- the loop: the same blocks in the same order as run() ---
    evals = set(eval_steps(total, tc.eval_points, tc.eval_every))
    ckpts = set(log_spaced_steps(total, tc.checkpoint_points))
    resume_every = min(mb.cfg.train.resume_every_s for mb in members)
    bsizes = [mb.cfg.train.batch_size for mb in members]
    full = all(b is None for b in bsizes)
    writing = write and all(mb.store is not None for mb in members)
    step = 0
    interrupted = False
    t0 = time.perf_counter()
    last_save = t0
    with _Stop() as stop:
        while True:
            if step in evals:
                for mb, row in zip(members, eval_rows(step, time.perf_counter() - t0)):
                    mb.rows.append(row)
                    if mb.store is not None:
                        mb.store.append_metrics(row)
            if writing:
                if step in ckpts:
                    for i, mb in enumerate(members):
                        mb.store.save_weights(step, _Adapter(member_weights(i)))
                now = time.perf_counter()
                if step in ckpts or now - last_save >= resume_every or stop.requested:
                    for i in range(M):
                        save_resume(i, step, now - t0)
                    last_save = now
            if step >= total:
                break
            if stop.requested:
                interrupted = True
                break

            # --- one update of every member ---
            if full:
                X, Y, counts = Xtr, Ytr, n_tr
            else:
                idxs = []
                for i, mb in enumerate(members):
                    b = bsizes[i] if bsizes[i] is not None else n_tr[i]
                    idxs.append(torch.randperm(n_tr[i], generator=mb.batch_gen)[:b] if bsizes[i] is not None else torch.arange(n_tr[i]))
                counts = [len(ix) for ix in idxs]
                X = _pad([mb.data.x_train[ix.to(device)] for mb, ix in zip(members, idxs)])
                Y = _pad([mb.data.y_train[ix.to(device)] for mb, ix in zip(members, idxs)])
            mask = (torch.arange(X.shape[1], device=device).view(1, -1) < torch.tensor(counts, device=device).view(-1, 1)).to(dtype)
            per = per_sample_loss(forward(X, True, counts), Y)  # (M, B)
            # Each member's mean over its own batch; members share no weights, so one backward of the sum
            # gives every member the gradient of its own loss.
            loss = ((per * mask).sum(1) / torch.tensor(counts, dtype=dtype, device=device)).sum()
            for k in names:
                P[k].grad = None
            loss.backward()
            optim_step(step + 1, step)
            step += 1

    wall = time.perf_counter() - t0
    summaries: list[dict] = []
    weights = [member_weights(i) for i in range(M)]
    if not interrupted:
        for i, mb in enumerate(members):
            s = make_summary(mb.cfg, mb.rows, member_model(i), mb.data, wall, device)
            s["batched"] = {"members": M, "note": "wall_time_s is the whole batch's"}
            summaries.append(s)
            if mb.store is not None:
                mb.store.write_summary(s)
    return BatchResult(configs=list(cfgs), rows=[mb.rows for mb in members], summaries=summaries, weights=weights, interrupted=interrupted)


# --- the sweep executor's job: one chunk of one signature group -------------------------------------------
def train_chunk(sweep_dir: str, members: list[tuple[str, dict]]) -> str:
    """Train the fresh members of a chunk as one batch into their run directories (pool job target).

    Members another process holds, already finished, or already started (those resume per process) are
    left out. Returns "done", or "interrupted" after Ctrl-C with every member's resume state saved.
    """
    import os
    import socket

    from groklab.sweep.layout import SweepDir

    sd = SweepDir(sweep_dir)
    with ExitStack() as stack:
        todo = []
        for rid, d in members:
            if not stack.enter_context(sd.lock(rid)):
                continue
            if sd.is_done(rid) or sd.is_started(rid):
                continue
            todo.append((rid, RunConfig.from_dict(d).replace(out=str(sd.run_dir(rid)))))
        if not todo:
            return "done"
        now = time.time()
        for rid, _ in todo:
            sd.write_record(rid, status="running", pid=os.getpid(), host=socket.gethostname(), executor="batched", started=now, attempts=1, batch=len(todo))
        try:
            res = train_batched([c for _, c in todo])
        except BaseException as e:
            for rid, _ in todo:
                if not sd.is_done(rid):
                    sd.write_record(rid, status="failed", error=f"{type(e).__name__}: {e}")
            raise
        for rid, _ in todo:
            sd.write_record(rid, status="interrupted" if res.interrupted else "done", finished=time.time())
        return "interrupted" if res.interrupted else "done"
