"""Sweeps: many runs of one base config over grids of fields and seeds, resumable, aggregated.

    from groklab.sweep import sweep
    res = sweep(base, {"task.train_frac": "0.2:0.8:7", "optim.weight_decay": [0, 0.1, 1]}, seeds=3,
                out="sweeps/frac_wd")             # executor="auto": batched or a process pool, said which
    res.table()                                    # one row per run (also `groklab table sweeps/frac_wd`)

Executors: `local` (a process pool sized to the cores, one single-threaded run per process),
`batched` (runs of one shape trained together as stacked members, many runs per process, by the one
trainer `groklab.train.members.run_members`; runs it cannot stack train one per process, and the sweep
says which and why),
`ray` (Ray tasks, on a local instance or a cluster), `slurm` (Slurm jobs through submitit; `cluster_options`
are submitit's job settings, see `groklab.sweep.slurm_exec`), and `auto`, which picks batched or local by
model size and device and prints why (`EXECUTORS` lists them). Every executor writes the same run
directories (`runs/<id>`, the id a stable hash of the point's config), so a sweep started with one can
be finished by another, and a re-run only does what is missing. Layout of the sweep directory: `groklab.sweep.layout`.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from groklab.config import RunConfig
from groklab.errors import ConfigError
from groklab.sweep.layout import SweepDir, require_new_or_resume, run_point
from groklab.sweep.pool import Job, cpu_count, run_jobs
from groklab.sweep.spec import DEFAULT_SEED_FIELDS, RandomAxis, SweepSpec, parse_values, run_id
from groklab.sweep.table import sweep_table

Executor = Literal["auto", "local", "batched", "ray", "slurm"]
EXECUTORS: dict[str, str] = {
    "auto": "batched or local, chosen by model size and device (the reason is printed)",
    "local": "a pool of worker processes on this machine, one single-threaded run per process",
    "batched": "runs of one shape trained together as stacked members, several per process",
    "ray": "Ray tasks on a local instance or a cluster (--address); extra 'ray'",
    "slurm": "Slurm jobs submitted with submitit (cluster_options: partition, time, ...); extra 'slurm'",
}
"""The executors `sweep` takes (and `groklab sweep --executor` offers), with what each does."""

# Batching pays while a step is too small to keep a core busy: below about this many multiply-adds per
# step and run (parameters × training-set size), stacking runs beats one process per run on a CPU
# (benchmarks/sweep.py measures both sides of it). On a GPU, batching MLPs always pays.
BATCH_WORK_LIMIT = 2e7
# Transformers gain more from stacking (many small kernels per step): 8 transformers of d_model 64 at batch
# 256 (1e8 multiply-adds) trained 1.6x faster stacked than one per process on 2 cores (benchmarks/sweep.py);
# larger ones are unmeasured and stay one per process.
TRANSFORMER_BATCH_WORK_LIMIT = 2e8


@dataclass
class SweepResult:
    path: Path
    executor: str
    reason: str
    outcomes: dict[str, str] = field(default_factory=dict)
    """Run id -> "done" (trained now), "skipped" (was done), "busy" (another process has it),
    "interrupted", or "failed: why"."""
    per_run: dict[str, str] = field(default_factory=dict)
    """Under the batched executor: the runs trained one per process instead of as stacked members, and why."""

    @property
    def complete(self) -> bool:
        return all(o in ("done", "skipped") for o in self.outcomes.values())

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for o in self.outcomes.values():
            k = o.split(":")[0]
            c[k] = c.get(k, 0) + 1
        return c

    def table(self, write: bool = True):
        return sweep_table(self.path, write=write)


def choose_executor(cfgs: list[RunConfig], workers: int) -> tuple[str, str]:
    """("batched" or "local", why): stacked members for small models (or any model on a GPU), else a
    process pool of one run per process."""
    from groklab.train.members import refusal

    if len(cfgs) < 2:
        return "local", "a single run"
    for c in cfgs:
        reason = refusal(c)
        if reason:
            return "local", f"per-process: {reason}"
    work = max(_work(c) for c in cfgs)
    if any(c.train.device in ("cuda", "auto") for c in cfgs):
        import torch

        if torch.cuda.is_available():
            return "batched", "batched: stacked members on a GPU"
    limit = TRANSFORMER_BATCH_WORK_LIMIT if any(c.model.arch == "transformer" for c in cfgs) else BATCH_WORK_LIMIT
    if work <= limit:
        return "batched", f"batched: small models ({work:.2g} multiply-adds per step ≤ {limit:.0g}), {workers} process(es) of stacked runs"
    return "local", f"per-process: models too large to gain from batching on a CPU ({work:.2g} multiply-adds per step > {limit:.0g})"


def _work(cfg: RunConfig) -> float:
    """Multiply-adds of one forward pass over a minibatch, roughly (parameters touched × rows)."""
    m, t = cfg.model, cfg.task
    n = t.n_elements
    rows = cfg.train.resolved_batch_size(t.n_train or 1000) or t.n_train or 1000  # `auto` resolved; custom: a guess
    if m.arch == "transformer":
        d = m.d_model
        per_token = m.n_layers * (4 * d * d + 2 * d * m.d_mlp)
        return float(rows * ((4 if m.op_token else 3) * per_token + d * n))
    d_in = {"parity": t.n_bits, "images": 64, "teacher": t.d_in}.get(t.group)
    if d_in is None:
        d_in = m.d_embed if m.arch == "toy" else 2 * (m.d_embed if m.input == "embed" else n)
    params = d_in * m.width + (m.depth - 1) * m.width * m.width + m.width * n
    return float(params * rows)


def sweep(
    base: RunConfig | None = None,
    grid: dict[str, Any] | list[str] | None = None,
    seeds: int | list[int] = 1,
    *,
    out: str | os.PathLike,
    random: dict[str, Any] | list[str] | None = None,
    samples: int = 0,
    random_seed: int = 0,
    seed_fields: tuple[str, ...] = DEFAULT_SEED_FIELDS,
    executor: Executor = "auto",
    workers: int | None = None,
    address: str | None = None,
    cluster_options: dict[str, Any] | None = None,
    resume: bool = False,
    retries: int = 2,
    progress: bool = True,
) -> SweepResult:
    """Run every point of a sweep into `out`; see the module docstring. With `resume`, an existing sweep
    directory is finished (base/grid/seeds may then be left out: the saved spec is used)."""
    sd = SweepDir(out)
    if executor == "slurm":  # no submitit or no Slurm: one line, before the sweep directory is written
        from groklab.sweep.slurm_exec import preflight

        preflight(cluster_options)
    given = base is not None or grid is not None or random is not None
    spec = SweepSpec.build(base, grid, seeds, random=random, samples=samples, random_seed=random_seed, seed_fields=seed_fields) if given else None
    spec = require_new_or_resume(sd, spec, resume)
    points = spec.points()
    workers = workers or cpu_count()
    if executor not in EXECUTORS:
        raise ConfigError(f"executor={executor!r} is not allowed; choose one of: {', '.join(EXECUTORS)}")
    todo = [(rid, cfg) for rid, _, cfg in points if not sd.is_done(rid)]
    outcomes = {rid: "skipped" for rid, _, _ in points if sd.is_done(rid)}
    say = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    if todo and executor not in ("ray", "slurm"):
        # the workers import torch while this process plans (worker start-up is seconds)
        from groklab.sweep.pool import warm

        warm(min(workers, len(todo)))
    if executor == "auto":
        executor, reason = choose_executor([c for _, c in todo] or [c for _, _, c in points], workers)
    else:
        reason = executor
    say(f"sweep {sd.path}: {len(points)} runs, {len(outcomes)} already done; executor: {reason}")
    if not todo:
        return SweepResult(sd.path, executor, reason, outcomes)

    per_run: dict[str, str] = {}
    with _Bar(len(points), len(outcomes), progress) as bar:
        if executor == "ray":
            from groklab.sweep.ray_exec import run_ray

            def on_run_end(rid: str, outcome: str) -> None:
                if outcome in ("done", "skipped"):
                    bar.advance(1)

            outcomes.update(run_ray(str(sd.path.resolve()), [(rid, c.to_dict()) for rid, c in todo], address=address, workers=workers if not address else None, retries=retries, on_run_end=on_run_end))
        elif executor == "slurm":
            from groklab.sweep.slurm_exec import run_slurm

            def on_slurm_run_end(rid: str, outcome: str) -> None:
                if outcome in ("done", "skipped"):
                    bar.advance(1)

            outcomes.update(run_slurm(str(sd.path.resolve()), [(rid, c.to_dict()) for rid, c in todo], options=cluster_options, retries=retries, on_run_end=on_slurm_run_end))
        else:
            jobs, per_run = _plan(sd, todo, executor, workers)
            if per_run:
                # the batched executor could not stack these: say so, and keep the reason in each run's record
                whys = sorted(set(per_run.values()))
                say(f"sweep: {len(per_run)} of {len(todo)} runs train one per process instead of stacked: " + "; ".join(whys[:3]) + (" ..." if len(whys) > 3 else ""))
                for rid, why in per_run.items():
                    sd.write_record(rid, per_run=why)
            finished: set[str] = set()
            last_exit: dict[str, int] = {}
            job_errors: dict[str, str] = {}

            def on_job_end(job: Job, code: int) -> None:
                new = [r for r in job.runs if r not in finished and sd.is_done(r)]
                finished.update(new)
                bar.advance(len(new))
                for r in job.runs:
                    last_exit[r] = code
                    if job.error:
                        job_errors[r] = job.error

            _, stopped = run_jobs(jobs, workers, retries=retries, on_job_end=on_job_end, should_retry=lambda job: not all(sd.is_done(r) for r in job.runs))
            for rid, _c in todo:
                if sd.is_done(rid):
                    outcomes[rid] = "done"
                elif stopped:
                    outcomes[rid] = "interrupted"
                elif sd.is_held(rid):
                    # another process (a second sweep on this directory) is training it: its record stays its own
                    outcomes[rid] = "busy"
                else:
                    code = last_exit.get(rid)
                    why = "not run" if code is None else f"worker killed by signal {-code}" if code < 0 else f"worker exited with code {code}"
                    rec = sd.read_record(rid) or {}
                    why = job_errors.get(rid) or why
                    if rec.get("status") == "running":  # the process died without saying so
                        sd.write_record(rid, status="failed", error=why)
                        rec["error"] = why
                    outcomes[rid] = f"failed: {rec.get('error') or why}"
    res = SweepResult(sd.path, executor, reason, outcomes, per_run)
    c = res.counts()
    say("sweep: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())) + ("" if res.complete else f"; finish with: groklab sweep --out {sd.path} --resume"))
    return res


def _run_jobs_for(sd: SweepDir, todo: list[tuple[str, RunConfig]], executor: str) -> list[Job]:
    return [Job("run_point", [str(sd.path), rid, cfg.to_dict(), executor], [rid]) for rid, cfg in todo]


PAD_TOLERANCE = 1.1
"""A stack pads every member's batch to its largest (vmap needs equal shapes), so rows of different sizes
share a chunk only within this factor: 4 fractions of a full-batch MLP in 2 padded chunks of 16 trained at
1.41x the runs one by one, in 4 unpadded chunks of 8 at 1.81x (x+y mod 31, width 64, one core)."""
MIN_CHUNK = 8
"""Fewer members per stack pay the stack's fixed cost per step with less to share it (4 members: 1.23x, 8:
1.81x, 16: 1.85x the runs one by one; same setup)."""


def _rows(cfg: RunConfig) -> int:
    """The rows of one training step (the minibatch, or the training set in full batch; 0 when unknown)."""
    n = cfg.task.n_train or 0
    return cfg.train.resolved_batch_size(n) or n


def _chunks(members: list, workers: int) -> list[list]:
    """Stacked chunks of one signature's (run id, config) pairs: grouped by batch rows within PAD_TOLERANCE
    (a group smaller than MIN_CHUNK joins its neighbour of larger rows, padding rather than losing the stack),
    then the largest chunks split until every worker has one."""
    ordered = sorted(members, key=lambda m: _rows(m[1]))
    groups: list[list] = []
    for m in ordered:
        if groups and _rows(m[1]) <= PAD_TOLERANCE * _rows(groups[-1][0][1]):
            groups[-1].append(m)
        else:
            groups.append([m])
    merged: list[list] = []
    for g in groups:
        if merged and len(merged[-1]) < MIN_CHUNK:
            merged[-1] += g
        else:
            merged.append(g)
    if len(merged) > 1 and len(merged[-1]) < MIN_CHUNK:
        merged[-2] += merged.pop()
    while len(merged) < workers:
        big = max(merged, key=len)
        if len(big) < 2:
            break
        merged.remove(big)
        half = math.ceil(len(big) / 2)
        merged += [big[:half], big[half:]]
    return merged


def _plan(sd: SweepDir, todo: list[tuple[str, RunConfig]], executor: str, workers: int) -> tuple[list[Job], dict[str, str]]:
    """The process jobs, and the runs the batched executor leaves to one process each with the reason.

    One job per run (local); for batched, stacked chunks of fresh runs of one signature (about one chunk
    per worker), and one job per run for started runs (they resume), runs that cannot be members, and
    signatures with a single run."""
    if executor == "local":
        return _run_jobs_for(sd, todo, "local"), {}
    from groklab.train.members import refusal, signature_key

    groups: dict[str, list[tuple[str, RunConfig]]] = {}
    singles: list[tuple[str, RunConfig]] = []
    per_run: dict[str, str] = {}
    for rid, cfg in todo:
        why = "started before: it resumes in its own process" if sd.is_started(rid) else refusal(cfg)
        if why:
            singles.append((rid, cfg))
            per_run[rid] = why
        else:
            groups.setdefault(signature_key(cfg), []).append((rid, cfg))
    jobs: list[Job] = []
    for members in groups.values():
        if len(members) == 1:
            singles += members
            per_run[members[0][0]] = "no other run shares its shapes and schedule"
            continue
        for chunk in _chunks(members, workers):

            def retry_as(chunk=chunk) -> list[Job]:
                # the members have run directories now: they resume one per process
                return _run_jobs_for(sd, [(r, c) for r, c in chunk if not sd.is_done(r)], "local")

            jobs.append(Job("train_chunk", [str(sd.path), [[r, c.to_dict()] for r, c in chunk]], [r for r, _ in chunk], retry_as=retry_as))
    jobs += _run_jobs_for(sd, singles, "local")
    # the most work first (members × rows × steps), so the pool does not end waiting on one big job
    cfg_of = dict(todo)
    jobs.sort(key=lambda j: -sum(_rows(cfg_of[r]) * cfg_of[r].train.steps for r in j.runs))
    return jobs, per_run


class _Bar:
    """A rich progress bar over runs (not steps)."""

    def __init__(self, total: int, done: int, show: bool):
        self.show, self.total, self.done = show, total, done
        if show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn(), TimeRemainingColumn())
            self.task = self.bar.add_task("sweep", total=total, completed=done)

    def advance(self, n: int) -> None:
        self.done += n
        if self.show and n:
            self.bar.update(self.task, completed=self.done)

    def __enter__(self) -> "_Bar":
        if self.show:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.stop()


__all__ = [
    "sweep", "SweepResult", "SweepSpec", "RandomAxis", "parse_values", "run_id", "sweep_table",
    "choose_executor", "SweepDir", "run_point", "BATCH_WORK_LIMIT", "TRANSFORMER_BATCH_WORK_LIMIT", "EXECUTORS",
]

