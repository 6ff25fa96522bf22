"""The batched executor's job: train a chunk of a sweep's fresh runs as stacked members in one process.

The training is `groklab.train.members.run_members` (the one trainer, for K members at once); this module
only takes the runs' locks, writes their index records and hands the chunk over. Which runs can be
members, and which stack together, is `groklab.train.members.refusal` / `signature`.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack

from groklab.config import RunConfig
from groklab.errors import ConfigError


def train_chunk(sweep_dir: str, members: list[tuple[str, dict]]) -> str:
    """Train the fresh members of a chunk as one stack into their run directories (pool job target).

    Members another process holds, already finished, or already started (those resume per process) are
    left out. If the stack is refused (ConfigError before any run directory exists, e.g. models that turn out
    differently shaped), the runs train one after another in this process instead, each recording why.
    Returns "done", or "interrupted" after Ctrl-C with every member's resume state saved.
    """
    from groklab.sweep.layout import SweepDir, run_point
    from groklab.train.members import run_members

    sd = SweepDir(sweep_dir)
    refused: str | None = None
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
            results = run_members([c for _, c in todo])
        except ConfigError as e:
            if any(sd.is_started(rid) for rid, _ in todo):
                raise
            refused = str(e)  # refused before any run directory was made: train them one by one below
        except BaseException as e:
            for rid, _ in todo:
                if not sd.is_done(rid):
                    sd.write_record(rid, status="failed", error=f"{type(e).__name__}: {e}")
            raise
        if refused is None:
            interrupted = False
            for (rid, _), r in zip(todo, results):
                interrupted |= r.interrupted
                sd.write_record(rid, status="interrupted" if r.interrupted else "done", finished=time.time())
            return "interrupted" if interrupted else "done"
    # (outside the locks, which run_point takes itself) the stack was refused: each run on its own, and why
    outcome = "done"
    for rid, cfg in todo:
        sd.write_record(rid, per_run=f"stacking refused: {refused}")
        if run_point(sweep_dir, rid, cfg.to_dict(), "local") == "interrupted":
            outcome = "interrupted"
    return outcome
