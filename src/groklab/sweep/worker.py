"""A sweep worker process: `python -m groklab.sweep.worker`, driven by `groklab.sweep.pool`.

Reads one JSON job per line on stdin ({"kind": ..., "args": [...]}), runs it, and answers one JSON
line ({"status": "done" | "skipped" | "busy" | "interrupted" | "error", "error": ...}) on the stdout it
had at start; anything else printed goes to stderr. Exits at the end of stdin, or after the number of
seconds given as its argument without a job (an idle worker of the pool, see `groklab.sweep.pool`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback


def _run_point(sweep_dir: str, rid: str, cfg: dict, executor: str) -> str:
    from groklab.sweep.layout import run_point

    return run_point(sweep_dir, rid, cfg, executor)


def _train_chunk(sweep_dir: str, members: list) -> str:
    from groklab.sweep.batched import train_chunk

    return train_chunk(sweep_dir, [tuple(m) for m in members])


KINDS = {"run_point": _run_point, "train_chunk": _train_chunk}


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints cannot corrupt the protocol
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        import groklab.train  # noqa: F401  (import torch once, before the first job)
        import groklab.train.members  # noqa: F401

        idle_exit = float(sys.argv[1]) if len(sys.argv) > 1 else None
        while True:
            if idle_exit is not None and not select.select([sys.stdin], [], [], idle_exit)[0]:
                return  # no job for idle_exit seconds: leave the pool
            line = sys.stdin.readline()
            if not line:
                return
            msg = json.loads(line)
            try:
                out = {"status": KINDS[msg["kind"]](*msg["args"])}
            except KeyboardInterrupt:
                out = {"status": "interrupted"}
            except Exception as e:
                traceback.print_exc()
                out = {"status": "error", "error": f"{type(e).__name__}: {e}"}
            proto.write(json.dumps(out) + "\n")
            proto.flush()
    except KeyboardInterrupt:  # Ctrl-C while idle: nothing to save
        return


if __name__ == "__main__":
    main()
