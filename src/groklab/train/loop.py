"""`run(config)`: the one entry point that trains a model and writes its run directory.

A flat loop: seed, data, model, optimizer, then for each step {maybe evaluate, maybe checkpoint, batch,
loss, backward, interventions, optimizer step}. A kill at any moment (even `kill -9`) loses at most the
updates since the last resume state; `resume(dir)` continues from it and ends with the same metrics as a
run that never stopped (bit-identical on CPU).
"""

from __future__ import annotations

import math
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from groklab.version import __version__
from groklab.config import RunConfig
from groklab.errors import ConfigError, RunDirError
from groklab.train.loggers import open_loggers
from groklab.models import build_model
from groklab.store import RunDir, check_out_path, config_fingerprint, config_changes, set_results_aside
from groklab.tasks import Dataset, build_dataset
from groklab.train.interventions import build_interventions
from groklab.train.optim import build_optimizer, collapse_counts, loss_fn, loss_spec, lr_at
from groklab.train.schedule import BATCH_SEED_OFFSET, eval_steps, log_spaced_steps, minibatch
from groklab.train.stop import STANDARD_METRICS, StopRule
from groklab.train.runtime import current as current_runtime, in_cpu_runtime, threads_reason

ACC_THRESHOLD = 0.99
LOSS_CHECK_EVERY = 50  # steps between non-finite loss checks off the CPU (train/stop.py)


@dataclass
class RunResult:
    config: RunConfig
    model: nn.Module
    rows: list[dict] = field(repr=False)
    summary: dict
    run_dir: Path | None = None
    interrupted: bool = False

    @property
    def stop_reason(self) -> str | None:
        """"budget", "condition" or "diverged" (summary.json's stop_reason); None when interrupted."""
        return self.summary.get("stop_reason") if self.summary else None

    @property
    def metrics(self):
        """One row per evaluation, as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda' but CUDA is not available here; use 'cpu' or 'auto'")
    return torch.device(name)


# --- evaluation --------------------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str, chunk: int = 16384, collapse: list[int] | None = None,
    decide: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits.argmax(-1),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss (N,) and prediction over x in chunks: the class (N,), or what `decide` (the data set's
    readout) makes of the outputs. With a list `collapse`, also add to it the softmax-collapse counts
    (samples with correct-class probability exactly 1, with zero loss gradient)."""
    losses, preds = [], []
    for i in range(0, len(y), chunk):
        logits = model(x[i : i + chunk])
        losses.append(loss_fn(logits, y[i : i + chunk], kind, reduction="none"))
        preds.append(decide(logits))
        if collapse is not None:
            for j, n in enumerate(collapse_counts(logits, y[i : i + chunk], kind)):
                collapse[j] += n
    return torch.cat(losses), torch.cat(preds)


def evaluate(model: nn.Module, data: Dataset, kind: str, chunk: int = 16384) -> dict[str, float]:
    """Train/val loss and accuracy; with corrupted labels also the clean and corrupted training subsets.

    What counts as correct is the data set's readout (tasks/targets.py): the arg-max class, the sign of ±1
    targets, or for real-valued targets a hit within `tol` (with `train_r2`/`val_r2` beside it). The task's
    own metrics (`data.probe`: RQI, weight mass on the relevant parity bits) are added at the end.
    """
    readout = data.readout
    was_training = model.training
    model.eval()  # dropout off
    collapse = [0, 0] if readout.kind == "class" else None  # softmax collapse needs softmax over classes
    tr_loss, tr_pred = predict(model, data.x_train, data.y_train, kind, chunk, collapse, readout.decide)
    va_loss, va_pred = predict(model, data.x_val, data.y_val, kind, chunk, decide=readout.decide)
    model.train(was_training)
    tr_ok = readout.correct(tr_pred, data.y_train)
    # Fractions in float64: in float32, 9/10 rounds to 0.89999998 and misses a 90% threshold.
    row = {
        "train_loss": tr_loss.mean().item(),
        "train_acc": tr_ok.double().mean().item(),
        "val_loss": va_loss.mean().item(),
        "val_acc": readout.correct(va_pred, data.y_val).double().mean().item(),
    }
    if collapse is not None:
        # Softmax collapse (Prieto et al.): training samples that float rounding has stopped teaching.
        row["train_collapse_frac"] = collapse[0] / len(tr_ok)
        row["train_zero_grad_frac"] = collapse[1] / len(tr_ok)
    row.update(readout.scores("train", tr_pred, data.y_train))
    row.update(readout.scores("val", va_pred, data.y_val))
    c = data.corrupted
    if c.any():
        row["train_clean_acc"] = tr_ok[~c].double().mean().item()
        row["train_corrupted_acc"] = tr_ok[c].double().mean().item()  # memorized the wrong labels
        row["train_corrupted_true_acc"] = readout.correct(tr_pred[c], data.y_train_true[c]).double().mean().item()  # generalized
    with torch.no_grad():
        row.update(data.probe(model))
    return row


def weight_norm(model: nn.Module) -> float:
    return math.sqrt(sum(p.detach().double().pow(2).sum().item() for p in model.parameters()))


def last_layer_norm(model: nn.Module) -> float:
    """Norm of the unembedding (`W_U` of the transformer, `W_out` of the MLP): the slingshot's signal (Thilak et al.)."""
    W = getattr(model, "W_U", None)
    if W is None:
        W = getattr(model, "W_out", None)
    return math.nan if W is None else torch.linalg.vector_norm(W.detach().double()).item()


def first_crossing(rows: list[dict], key: str, threshold: float = ACC_THRESHOLD) -> int | None:
    """The first logged step at which rows[key] >= threshold, or None."""
    return next((r["step"] for r in rows if r.get(key) is not None and r[key] >= threshold), None)


# --- resume state --------------------------------------------------------------------------------------
def optim_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optim(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class StopFlag:
    """Turns Ctrl-C into a request to stop at the next step boundary, where the state is consistent."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# --- the entry point -------------------------------------------------------------------------------------
@in_cpu_runtime  # threads and flush-denormal for this run only (train/runtime.py)
def run(
    config: RunConfig,
    *,
    resume: bool = False,
    on_step: Callable[[int, dict | None], None] | None = None,
) -> RunResult:
    """Train as `config` says; write the run directory `config.out` (if set) and return the result.

    `resume=True` continues the run in `config.out` from its last resume state; a finished run (summary.json
    present) is returned as it is, untouched. `on_step(step, row)` is called after every update (row is the
    evaluation at that step, or None) — the CLI's progress bar.

    The run stops at `train.steps`, or earlier when `train.stop_when` has held for `train.stop_patience` steps or
    the training loss is no longer finite (train/stop.py); the stop step is always evaluated and checkpointed and
    summary.json records `stop_reason` and `stopped_step`.
    """
    cfg, tc = config, config.train
    stop_rule = StopRule.from_config(tc)
    if cfg.out and not resume:
        check_out_path(cfg.out)  # a file, a path under a file, an unwritable folder: one line, before any work
    if cfg.out and resume and RunDir(Path(cfg.out)).read_summary() is not None:
        return _finished(Path(cfg.out))
    device = resolve_device(tc.device)
    dtype = torch.float64 if tc.dtype == "float64" else torch.float32
    store = RunDir(Path(cfg.out)) if cfg.out else None
    if store is not None and not resume and (store.path / "config.json").exists():
        raise RunDirError(f"{cfg.out!r} already holds a run; resume it with `groklab resume {cfg.out}` or choose another --out")

    # Seed everything that draws randomness: init and dropout use the global generator, batches their own.
    torch.manual_seed(tc.seed)
    data = build_dataset(cfg.task).to(device, dtype)
    model = build_model(cfg.model, data.n_elements, data.n_classes, data.d_input, data.n_inputs).to(device=device, dtype=dtype)
    # train.threads None: threads by work per step (rows: the resolved batch, `auto` included) and free cores
    current_runtime().fit(model, tc.resolved_batch_size(data.n_train) or data.n_train)
    optimizer = build_optimizer(model, cfg.optim)
    interventions = build_interventions(cfg, model)
    batch_gen = torch.Generator().manual_seed(tc.seed + BATCH_SEED_OFFSET)
    total = tc.steps
    evals = set(eval_steps(total, tc.eval_points, tc.eval_every))
    ckpts = set(log_spaced_steps(total, tc.checkpoint_points))
    n_train = data.n_train
    batch = tc.resolved_batch_size(n_train)  # `auto` becomes min(512, ⌈n_train/2⌉) here, where n_train is known
    if batch is not None and batch > n_train:  # a custom task's size is known only now, with its file read
        raise ConfigError(f"train.batch_size={batch} is larger than the training set ({n_train} samples from task.path={cfg.task.path!r}); use at most {n_train}, or None for full batch")
    cond = stop_rule.condition
    if cond is not None and not resume and cond.metric not in STANDARD_METRICS:
        # A task's or an intervention's metric: check the name on a dry evaluation (generators untouched), so a
        # misspelt train.stop_when is refused before the run directory exists.
        with torch.random.fork_rng(devices=[]):
            names = {"step", "weight_norm", "last_layer_norm", "lr", "elapsed_s", *evaluate(model, data, tc.loss, tc.eval_batch_size)}
            for h in interventions:
                names.update(h.metrics(model))
        stop_rule.check_names(names)
    if store is not None and not resume:
        # Only now, with the data read and every check passed, so a bad config leaves no half-made directory.
        try:
            store.path.mkdir(parents=True, exist_ok=True)
            store.write_config(cfg)
        except OSError as e:  # a read-only or special file system that check_out_path could not foresee
            raise RunDirError(f"out={cfg.out!r}: cannot create the run directory there ({e.strerror or e}); choose a directory you can write to") from None

    step, elapsed, rows = 0, 0.0, []
    if resume:
        assert store is not None
        state = store.load_resume()
        rows = store.read_metrics()
        if state is None and any(r.get("step", 0) > 0 for r in rows):
            # Restarting from step 0 would silently throw these rows away (and mix two runs if interrupted).
            raise RunDirError(
                f"{str(store.path)!r} has {len(rows)} metric rows (to step {rows[-1].get('step')}) but no resume state "
                f"(checkpoints/resume.safetensors), so it cannot continue; to train it again from step 0, keeping the old "
                f"results in a subfolder, run: groklab resume {store.path} --restart"
            )
        if state is not None:
            tensors, meta = state
            if "config" in meta:  # resume states written before this check carry no config
                changed = config_changes(meta["config"], cfg)
                if changed:
                    raise RunDirError(
                        f"config.json changed since this run started: {'; '.join(changed)}; put the old values back, "
                        f"or train it again from step 0 with: groklab resume {store.path} --restart"
                    )
            stop_rule.load_state(meta.get("stop"))
            step, elapsed = meta["step"], meta["elapsed_s"]
            model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            _load_optim(optimizer, tensors, meta["optim"])
            torch.set_rng_state(tensors["rng.torch"])
            batch_gen.set_state(tensors["rng.batch"])
            if device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], device)
            for h in interventions:
                h.load_state_tensors({k.split(".", 2)[2]: v.to(device) for k, v in tensors.items() if k.startswith(f"hook.{h.name}.")})
        # Metrics logged after the resume state was saved are recomputed, identically, by the replay.
        rows = [r for r in rows if r["step"] <= step]
        store.rewrite_metrics(rows)

    def save_resume() -> None:
        if store is None:
            return
        opt_tensors, opt_meta = optim_tensors(optimizer)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.batch"] = batch_gen.get_state()
        if device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        for h in interventions:
            tensors.update({f"hook.{h.name}.{k}": v for k, v in h.state_tensors().items()})
        store.save_resume(tensors, {
            "step": step, "elapsed_s": elapsed + time.perf_counter() - t0, "optim": opt_meta,
            "stop": stop_rule.state(), "config": config_fingerprint(cfg),
        })

    loggers = open_loggers(cfg, store.path if store else None)  # train.loggers: TensorBoard, W&B (copies of the JSONL)
    model.train()
    t0 = time.perf_counter()
    last_save = t0
    logged = {r["step"] for r in rows}
    interrupted = False
    stop_reason = stop_rule.reason  # set already when resuming a run killed between its stop and its summary
    on_cpu = device.type == "cpu"
    reported = -1  # the last step handed to on_step (a divergence found mid-step comes back to the same step)
    loss_kind = loss_spec(tc)  # the loss name loss_fn takes ("mse:mean" for the mean reduction), fixed for the run
    with StopFlag() as stop:
        while True:
            for h in interventions:  # a data intervention may swap the training set (reg.swap_step, ungrokking)
                data = h.train_data(data, step)
            n_train = data.n_train
            final = step >= total or stop_reason is not None
            # --- evaluate (log-spaced, and always the step the run stops at) ---
            row = None
            if (step in evals or final or step == stop_rule.due_step()) and step not in logged:
                row = {"step": step, **evaluate(model, data, loss_kind, tc.eval_batch_size)}
                row["weight_norm"] = weight_norm(model)
                row["last_layer_norm"] = last_layer_norm(model)
                for h in interventions:
                    row.update(h.metrics(model))
                row["lr"] = lr_at(min(step, total - 1), cfg.optim, total)
                row["elapsed_s"] = elapsed + time.perf_counter() - t0
                rows.append(row)
                logged.add(step)
                if store is not None:
                    store.append_metrics(row)
                    loggers.log(row)
                if stop_reason is None:
                    stop_reason = stop_rule.update(step, row)
                    final = final or stop_reason is not None
            # --- checkpoint: weights at log-spaced steps and the last step; the resume state then and every resume_every_s ---
            if store is not None:
                if step in ckpts or final:
                    store.save_weights(step, model)
                now = time.perf_counter()
                if step in ckpts or final or now - last_save >= tc.resume_every_s or stop.requested:
                    save_resume()
                    last_save = now
            if on_step is not None and step != reported:
                on_step(step, row)
                reported = step
            if final:
                break
            if stop.requested:
                interrupted = True
                break

            # --- one update ---
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg.optim, total) * group.get("lr_scale", 1.0)  # embeddings' own lr (optim.embed_lr)
            if batch is None:
                xb, yb = data.x_train, data.y_train
            else:
                idx = minibatch(step, n_train, batch, tc.batch_order, tc.seed, batch_gen).to(device)
                xb, yb = data.x_train[idx], data.y_train[idx]
            loss = loss_fn(model(xb), yb, loss_kind)
            # On a GPU reading the loss waits for the step: look every LOSS_CHECK_EVERY steps there (NaN weights keep
            # the loss NaN, so a divergence is still caught, a little later); on a CPU it costs nothing, so every step.
            if (on_cpu or step % LOSS_CHECK_EVERY == 0) and stop_rule.check_loss(step, loss.item()) is not None:
                stop_reason = stop_rule.reason  # NaN/inf: no update with it; evaluate and checkpoint this step, then stop
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for h in interventions:
                h.before_step(model, step)
            if cfg.optim.grad_clip is not None:  # the gradient the optimizer sees, after the gradient interventions
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            for h in interventions:
                h.after_step(model, step)
            step += 1

    wall = elapsed + time.perf_counter() - t0
    loggers.close()
    summary = {} if interrupted else make_summary(cfg, rows, model, data, wall, device, stop_reason or "budget", step)
    if store is not None and not interrupted:
        store.write_summary(summary)
    return RunResult(config=cfg, model=model, rows=rows, summary=summary, run_dir=store.path if store else None, interrupted=interrupted)


def make_summary(
    cfg: RunConfig, rows: list[dict], model: nn.Module, data: Dataset, wall: float, device: torch.device,
    stop_reason: str = "budget", stopped_step: int | None = None,
) -> dict:
    """summary.json. `steps` is the budget; `stopped_step` where training ended (< steps when `stop_reason` is
    "condition" or "diverged"); a crossing step of None means "not within stopped_step steps" (censored)."""
    import numpy

    from groklab.models import count_params

    final = rows[-1] if rows else {}
    return {
        "final": final,
        "steps": cfg.train.steps,
        "stop_reason": stop_reason,
        "stopped_step": cfg.train.steps if stopped_step is None else stopped_step,
        "train_acc_99_step": first_crossing(rows, "train_acc"),
        "val_acc_99_step": first_crossing(rows, "val_acc"),
        "wall_time_s": wall,
        "n_params": count_params(model),
        "n_train": data.n_train,
        "n_val": data.n_val,
        "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
        "versions": {
            "groklab": __version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "python": platform.python_version(),
        },
        "threads": torch.get_num_threads(),
        "threads_reason": threads_reason(),
    }


def _finished(path: Path) -> RunResult:
    """A finished run read back as it is: nothing in its directory is written."""
    from groklab.store import load_run

    r = load_run(path)
    if not r.checkpoint_steps:
        raise RunDirError(f"{str(path)!r} is finished (it has summary.json) but its checkpoints are gone, so its model cannot be loaded")
    return RunResult(config=r.config, model=r.load_model(), rows=r.rows, summary=r.summary, run_dir=r.path)


def resume(path: str | Path, *, on_step: Callable[[int, dict | None], None] | None = None, restart: bool = False) -> RunResult:
    """Continue the run in `path` from its last resume state. A finished run (summary.json present) is returned
    as it is, untouched. A run with metrics but no resume state, or whose config.json changed since it started,
    is refused (RunDirError). `restart=True` moves the run's results (metrics, checkpoints, summary, plots) into
    `path/restarted-<UTC time>/` and trains again from step 0 with config.json: nothing is deleted."""
    store = RunDir(Path(path))
    cfg = store.read_config()
    if cfg.out is None or Path(cfg.out).resolve() != store.path.resolve():
        cfg = cfg.replace(out=str(store.path))  # the directory may have been moved
    if restart:
        set_results_aside(store)
    return run(cfg, resume=True, on_step=on_step)
