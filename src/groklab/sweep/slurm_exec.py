"""The Slurm executor: every point (or a chunk of points) a Slurm job, submitted with submitit.

submitit is an optional extra (`pip install 'groklab[slurm]'`), imported only here. Each job calls
`run_point` into the same run directories as the other executors, so the sweep directory must be on a
file system the compute nodes share, and groklab must be installed in the Python the jobs run
(submitit runs the job in `sys.executable` unless told otherwise). Jobs are submitted as one array
(`executor.batch()`); their logs go to `SWEEP/slurm/`. A job that dies (preempted, killed, timed out)
leaves its runs started, and is resubmitted up to `retries` times: the runs resume from their last
resume state. A job whose run raised (a bad config) is not resubmitted.

`options` are submitit's parameters (`AutoExecutor.update_parameters`): e.g. `slurm_partition`,
`timeout_min`, `cpus_per_task`, `mem_gb`, `slurm_account`, plus `runs_per_job` (points trained one after
another in one job; default 1) and `cluster` (`slurm`, or `local` / `debug`: submitit's executors on this
machine, which the tests use).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, Callable

from groklab.errors import ConfigError, GroklabError, require

DEFAULTS = {"timeout_min": 24 * 60, "cpus_per_task": 1, "name": "groklab-sweep"}


def import_submitit():
    return require("submitit", "slurm", "the Slurm executor", hint="or use --executor local")


def parse_options(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings (the CLI's --cluster-option) -> submitit parameters; numbers become numbers."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--cluster-option {item!r} is not KEY=VALUE (e.g. slurm_partition=gpu, timeout_min=120)")
        v: Any = value.strip()
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        out[key.strip()] = v
    return out


def preflight(options: dict[str, Any] | None) -> tuple[Any, dict[str, Any], str, int]:
    """Check, before the sweep writes anything, that submitit is installed and Slurm is here (or a local
    cluster was asked for). Returns (submitit, job settings, cluster, runs per job)."""
    submitit = import_submitit()
    opts = {**DEFAULTS, **(options or {})}
    cluster = opts.pop("cluster", "slurm")
    per_job = opts.pop("runs_per_job", 1)
    if not isinstance(per_job, int) or per_job < 1:
        raise ConfigError(f"--cluster-option runs_per_job={per_job!r} must be an integer of at least 1")
    if cluster not in ("slurm", "local", "debug"):
        raise ConfigError(f"--cluster-option cluster={cluster!r} is not allowed; choose one of: slurm, local, debug")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise GroklabError("--executor slurm: this machine has no Slurm (no `sbatch` on PATH); run the sweep on a Slurm login node, or use --executor local")
    return submitit, opts, cluster, per_job


def train_points(sweep_dir: str, points: list[tuple[str, dict]]) -> list[str]:
    """A job: train the points one after another (`run_point`), each with its own outcome."""
    from groklab.sweep.layout import run_point

    return [run_point(sweep_dir, rid, cfg, "slurm") for rid, cfg in points]


def run_slurm(
    sweep_dir: str,
    todo: list[tuple[str, dict]],
    *,
    options: dict[str, Any] | None = None,
    retries: int = 2,
    poll_s: float = 1.0,
    on_run_end: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Submit the points as Slurm jobs and wait for them; returns each run id's outcome ("done", "skipped",
    "busy", "interrupted" or "failed: ...")."""
    submitit, opts, cluster, per_job = preflight(options)
    from groklab.sweep.layout import SweepDir

    sd = SweepDir(sweep_dir)
    try:
        executor = submitit.AutoExecutor(folder=sd.path / "slurm" / "%j", cluster=cluster)
        executor.update_parameters(**opts)
    except Exception as e:  # unknown parameter names, a Slurm that does not answer
        raise GroklabError(f"--executor slurm: submitit refused the job settings: {type(e).__name__}: {_gist(e)}") from None

    outcome: dict[str, str] = {}
    attempts: dict[str, int] = {rid: 0 for rid, _ in todo}
    cfgs = dict(todo)

    def submit(rids: list[str]) -> dict:
        chunks = [rids[i : i + per_job] for i in range(0, len(rids), per_job)]
        for rid in rids:
            attempts[rid] += 1
        try:
            with executor.batch():
                jobs = [executor.submit(train_points, str(sd.path), [(r, cfgs[r]) for r in c]) for c in chunks]
        except Exception as e:
            raise GroklabError(f"--executor slurm: submitting the jobs failed: {type(e).__name__}: {_gist(e)}") from None
        return {job: chunk for job, chunk in zip(jobs, chunks)}

    running = submit([rid for rid, _ in todo])
    try:
        while running:
            finished = [job for job in running if job.done()]
            if not finished:
                time.sleep(poll_s)
                continue
            resubmit: list[str] = []
            for job in finished:
                chunk = running.pop(job)
                try:
                    for rid, o in zip(chunk, job.result()):
                        outcome[rid] = o
                except Exception as e:
                    # The job died, or a run raised. Runs the job finished keep their outcome; a run that
                    # raised recorded "failed" in its index record; the others (killed mid-run) go again.
                    for rid in chunk:
                        if sd.is_done(rid):
                            outcome[rid] = "done"
                            continue
                        rec = sd.read_record(rid) or {}
                        if rec.get("status") == "failed" and rec.get("error"):
                            outcome[rid] = f"failed: {rec['error']}"
                        elif attempts[rid] <= retries:
                            resubmit.append(rid)
                            continue
                        else:
                            why = f"job {job.job_id} failed: {_gist(e)}"
                            sd.write_record(rid, status="failed", error=why)
                            outcome[rid] = f"failed: {why}"
                for rid in chunk:
                    if rid in outcome and on_run_end is not None:
                        on_run_end(rid, outcome[rid])
            if resubmit:
                running.update(submit(resubmit))
    except KeyboardInterrupt:
        print("\nstopping: cancelling the Slurm jobs; started runs resume from their last saved state", file=sys.stderr)
        for job, chunk in running.items():
            try:
                job.cancel(check=False)
            except Exception:
                pass
            for rid in chunk:
                outcome.setdefault(rid, "interrupted")
    return outcome


def _gist(e: BaseException) -> str:
    """The last non-empty line of an error (a remote traceback ends with the exception itself)."""
    lines = [s for s in str(e).splitlines() if s.strip()]
    return lines[-1].strip() if lines else type(e).__name__
