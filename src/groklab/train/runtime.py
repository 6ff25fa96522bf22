"""The CPU settings of a run: how many threads, chosen to fit the model and the machine, and denormals
flushed to zero while it trains; both put back as they were when the run ends.

    with cpu_runtime(cfg.train.threads) as rt:   # train.threads, or None to let groklab choose
        model = build_model(...)
        rt.fit(model, rows)                      # with None: 1 or more threads by work per step and free cores
        ...                                      # rt.threads, rt.reason go into summary.json

Why the choice matters (issue 12.4): OpenMP threads of a small model wait on each other at every kernel,
so a tiny model runs no faster on 2 threads than on 1, and when another process keeps the second core busy
the 2 threads take turns with it and a 27 s run takes 4–10× longer. So: more than one thread only for a
model large enough to gain from it, never more threads than cores this process may use (its CPU affinity,
e.g. under `taskset` or a container's cpuset), and none on a core the 1-minute load average shows busy.
"""

from __future__ import annotations

import math
import os
import platform
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn as nn

# Work per step (parameters × batch rows) from which a second thread pays, timed at 1 and 2 threads pinned
# with taskset on the 2-core machine (README, "Tests and benchmarks"): 2 threads ran a d_model-32 transformer at
# batch 64 (1.2M) 0.95× as fast as 1, a width-64 MLP at 2.9M 1.09×, a width-256 MLP at 12M 1.27×, the
# default transformer at batch 64 (26M) 1.32×, the demo (79M) and the Power setup (216M) 1.7×.
MIN_WORK_PER_EXTRA_THREAD = 10_000_000


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports it (taskset, cgroups cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _own_cpu_share() -> float:
    """How many cores this process has kept busy on average since it started (it counts in the load
    average too, and must not be mistaken for another process)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        alive = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        t = os.times()
        return (t.user + t.system) / alive if alive > 1.0 else 0.0
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def busy_cores() -> float:
    """Cores other processes keep busy: the 1-minute load average less this process's own share."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load - min(_own_cpu_share(), float(torch.get_num_threads())))


def choose_threads(n_params: int, rows: int = 1, cores: int | None = None, busy: float | None = None) -> tuple[int, str]:
    """(threads, why) for a model of n_params parameters trained on batches of `rows`: one more thread per
    MIN_WORK_PER_EXTRA_THREAD of work (n_params × rows), at most the cores this process may use, less the
    cores that are busy (rounded to the nearest core), and at least 1."""
    cores = available_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    work = n_params * rows
    wanted = 1 + work // MIN_WORK_PER_EXTRA_THREAD
    free = max(1, int(math.floor(cores - busy + 0.5)))
    threads = max(1, min(wanted, cores, free))
    if wanted == 1:
        why = f"small step ({n_params} parameters × {rows} rows < {MIN_WORK_PER_EXTRA_THREAD:.0e}): more threads would not be faster"
    elif threads == min(wanted, cores):
        why = f"{n_params} parameters × {rows} rows: {threads} threads ({cores} cores available to this process, {busy:.1f} busy)"
    else:
        why = f"{n_params} parameters × {rows} rows could use {min(wanted, cores)} threads, but other processes keep {busy:.1f} of {cores} cores busy (1-minute load average)"
    return threads, why


def flush_denormal_on() -> bool:
    """Whether denormal floats are flushed to zero right now (PyTorch offers a setter only)."""
    return (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0


_malloc_tuned = False


def tune_malloc() -> None:
    """Keep freed activations in the heap instead of handing them back to the OS after every step (glibc
    returns blocks of over 128 KiB at once by default, so every step page-faults its activations back
    in). Process-wide and not undone: glibc's mallopt settings cannot be read back, and the larger
    thresholds only keep memory the process already used."""
    global _malloc_tuned
    if _malloc_tuned or platform.system() != "Linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: keep the allocator's defaults
    _malloc_tuned = True


@dataclass
class CpuRuntime:
    """What a run chose: `threads` and the reason (`threads_reason` in summary.json)."""

    requested: int | None
    threads: int
    reason: str

    def fit(self, model: nn.Module, rows: int = 1) -> int:
        """With train.threads None, choose the thread count for this model and batch size now (`choose_threads`);
        `rows` is the batch's size (samples per step; stacked members: per member)."""
        if self.requested is None:
            self.threads, self.reason = choose_threads(sum(p.numel() for p in model.parameters()), rows)
            torch.set_num_threads(self.threads)
        return self.threads


_active = threading.local()


def current() -> CpuRuntime | None:
    """The runtime of the run in progress in this thread, if any."""
    stack = getattr(_active, "stack", None)
    return stack[-1] if stack else None


def threads_reason() -> str:
    rt = current()
    return rt.reason if rt is not None else "the process's thread count, not chosen by groklab"


@contextmanager
def cpu_runtime(threads: int | None = None) -> Iterator[CpuRuntime]:
    """The CPU settings of one run, undone when it ends (normally or by an exception).

    Flush denormal floats to zero: late in grokking, softmax gradients underflow into denormals and x86
    matmuls on them run ~15× slower (results equal up to denormals). `threads` sets torch's intra-op
    thread count; with None it stays as it is until `fit(model)` chooses. The previous flush-denormal
    state and thread count come back on exit. The malloc tuning (`tune_malloc`) is process-wide and stays.
    """
    before_threads, before_flush = torch.get_num_threads(), flush_denormal_on()
    tune_malloc()
    torch.set_flush_denormal(True)
    if threads is not None:
        torch.set_num_threads(threads)
        rt = CpuRuntime(threads, threads, f"train.threads={threads}")
    else:
        rt = CpuRuntime(None, torch.get_num_threads(), "not chosen yet")
    stack = _active.__dict__.setdefault("stack", [])
    stack.append(rt)
    try:
        yield rt
    finally:
        stack.pop()
        torch.set_flush_denormal(before_flush)
        torch.set_num_threads(before_threads)


def tune_cpu_runtime() -> None:
    """The same settings for a whole process, not undone (benchmarks that time bare training steps)."""
    tune_malloc()
    torch.set_flush_denormal(True)


def in_cpu_runtime(fn):
    """Decorator for `run(config, ...)`: the call runs inside `cpu_runtime(config.train.threads)`, so its CPU
    settings end with it however it ends (the model's `fit` is called by run once the model is built)."""
    import functools

    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        with cpu_runtime(config.train.threads):
            return fn(config, *args, **kwargs)

    return wrapper
