"""A process pool for sweeps, robust to killed workers and to Ctrl-C.

Why not `concurrent.futures.ProcessPoolExecutor` or `multiprocessing`: one worker killed (OOM killer,
`kill -9`) breaks that pool and every pending job with it; a terminal's Ctrl-C reaches every worker at
an arbitrary moment; and their spawn/forkserver modes re-import the user's `__main__`, which breaks any
script without an `if __name__ == "__main__":` guard. Here each worker is a plain subprocess
(`python -m groklab.sweep.worker`) that imports torch once, in its own session, and takes jobs as JSON
lines on stdin, answering one JSON line per job. A job's result is its run directories:
- a worker killed mid-run is replaced, and its job retried (`retries` times); the retry resumes the run
  from its last resume state;
- Ctrl-C stops handing out jobs and sends each busy worker one SIGINT: a run stops at its next step
  boundary with its resume state saved, and finished runs are never touched; a second Ctrl-C is
  forwarded too and stops runs at once (they stay resumable from their last saved state).

Workers outlive a sweep: starting one costs seconds (importing torch), so the idle workers of a finished
`run_jobs` wait in this process's pool for the next one (a preset runs several sweeps; a notebook many),
and each exits by itself after `IDLE_EXIT_S` seconds without work, or when this process ends.
`shutdown()` ends them now; `warm(n)` starts them ahead of time.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3
IDLE_EXIT_S = 600.0  # an idle worker left in the pool exits after this long without a job


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Job:
    """One unit of work for a worker: `kind` names a function of `groklab.sweep.worker.KINDS`, `args` are
    its JSON arguments, `runs` the run ids it trains (for progress and bookkeeping)."""

    kind: str
    args: list
    runs: list[str]
    attempts: int = 0
    exitcodes: list[int] = field(default_factory=list)
    error: str | None = None
    retry_as: Callable[[], list["Job"]] | None = None
    """The jobs that take over when this one's worker died (default: this job again)."""


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # the directory holding the groklab package
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # Its own session: a terminal's Ctrl-C reaches the parent only, which forwards it exactly once.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "groklab.sweep.worker", str(IDLE_EXIT_S)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env, start_new_session=True, text=True, bufsize=1,
        )
        self.job: Job | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, job: Job) -> None:
        self.job = job
        job.attempts += 1
        self.proc.stdin.write(json.dumps({"kind": job.kind, "args": job.args}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass


_IDLE: list[_Worker] = []  # this process's workers between run_jobs calls


def _take() -> _Worker:
    """An idle worker from the pool if one is still alive, else a new one."""
    while _IDLE:
        w = _IDLE.pop()
        if w.alive():
            return w
        w.proc.wait()
    return _Worker()


def warm(n: int) -> None:
    """Start workers until the pool holds `n` idle ones (they import torch meanwhile, in parallel)."""
    alive = [w for w in _IDLE if w.alive()]
    _IDLE[:] = alive + [_Worker() for _ in range(max(0, n - len(alive)))]


def shutdown() -> None:
    """End the pool's idle workers (they exit at the end of their stdin)."""
    _close(list(_IDLE))
    _IDLE.clear()


def _close(workers: list[_Worker]) -> None:
    for w in workers:
        w.close()  # EOF on stdin: an idle worker exits
    deadline = time.monotonic() + 10
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


atexit.register(shutdown)


def run_jobs(
    jobs: list[Job],
    workers: int,
    *,
    retries: int = 1,
    on_job_end: Callable[[Job, int], None] | None = None,
    should_retry: Callable[[Job], bool] | None = None,
    on_worker_start: Callable[[int], None] | None = None,
) -> tuple[list[Job], bool]:
    """Run the jobs on at most `workers` worker processes. Returns (jobs failed for good, interrupted?).

    `on_job_end(job, code)` is called as each job ends (code 0: done, 3: interrupted, 1: raised,
    negative: its worker was killed by that signal); `should_retry(job)` says whether a job whose
    worker died still has unfinished runs (default: yes). `on_worker_start(pid)` sees every worker.
    """
    pending: deque[Job] = deque(jobs)
    idle: list[_Worker] = []
    busy: dict[int, _Worker] = {}  # stdout fd -> worker
    failed: list[Job] = []
    stopping = False
    sigints = 0

    def end(job: Job, code: int) -> None:
        job.exitcodes.append(code)
        if on_job_end is not None:
            on_job_end(job, code)
        if code in (EXIT_OK, EXIT_INTERRUPTED):
            return
        if code != EXIT_ERROR and not stopping and job.attempts <= retries and (should_retry is None or should_retry(job)):
            for j in (job.retry_as() if job.retry_as is not None else [job]):
                j.attempts = max(j.attempts, job.attempts)
                pending.append(j)
        else:
            failed.append(job)

    try:
        while pending or busy:
            try:
                while pending and not stopping and len(busy) < workers:
                    w = idle.pop() if idle else _take()
                    job = pending.popleft()
                    try:
                        w.send(job)
                    except OSError:  # it exited while idle (IDLE_EXIT_S): a fresh one takes the job
                        job.attempts -= 1
                        w = _Worker()
                        w.send(job)
                    if on_worker_start is not None:
                        on_worker_start(w.proc.pid)
                    busy[w.proc.stdout.fileno()] = w
                if not busy:
                    break
                ready, _, _ = select.select(list(busy), [], [], 0.5)
                for fd in ready:
                    w = busy.pop(fd)
                    job, w.job = w.job, None
                    line = w.proc.stdout.readline()
                    if not line:  # the worker died mid-job
                        code = w.proc.wait()
                        end(job, code if code != 0 else EXIT_ERROR)
                        continue
                    msg = json.loads(line)
                    job.error = msg.get("error")
                    end(job, {"error": EXIT_ERROR, "interrupted": EXIT_INTERRUPTED}.get(msg["status"], EXIT_OK))
                    idle.append(w)
            except KeyboardInterrupt:
                sigints += 1
                stopping = True
                pending.clear()
                for w in busy.values():
                    try:
                        os.kill(w.proc.pid, signal.SIGINT)
                    except ProcessLookupError:
                        pass
                if sigints == 1:
                    print("\nstopping: each running run saves its state at its next step (Ctrl-C again to stop at once)", file=sys.stderr)
    finally:
        # Workers that finished cleanly wait for the next run_jobs; after Ctrl-C or an error, all end.
        if stopping or busy:
            _close(idle + list(busy.values()))
        else:
            _IDLE.extend(w for w in idle if w.alive())
    return failed, stopping
