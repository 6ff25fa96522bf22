"""The Ray executor: every point a Ray task calling `run_point` into the same run directories.

Ray is an optional extra (`pip install 'groklab[ray]'`), imported only here. Without an address,
`ray.init()` starts a local instance on this machine; with one (`auto`, `ray://host:10001`), the tasks
go to that cluster, whose workers must see the sweep directory (a shared filesystem) and have groklab
installed. A task whose worker dies (killed, node lost) is retried by Ray up to `retries` times, and
the retry resumes the run from its last resume state, because `run_point` resumes a started run.
"""

from __future__ import annotations

import sys
from typing import Callable

from groklab.errors import GroklabError, require


def import_ray():
    return require("ray", "ray", "the Ray executor", hint="or use --executor local")


def _gist(e: BaseException) -> str:
    """The first non-empty line of an error, shortened (Ray's start-up errors run to many lines)."""
    line = next((s.strip() for s in str(e).splitlines() if s.strip()), type(e).__name__)
    return line if len(line) <= 300 else line[:297] + "..."


def _task(sweep_dir: str, rid: str, cfg_dict: dict) -> str:
    from groklab.sweep.layout import run_point

    return run_point(sweep_dir, rid, cfg_dict, "ray")


def run_ray(
    sweep_dir: str,
    todo: list[tuple[str, dict]],
    *,
    address: str | None = None,
    workers: int | None = None,
    retries: int = 3,
    on_run_end: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Run the points as Ray tasks; returns each run id's outcome ("done", "skipped", "busy",
    "interrupted" or "failed: ...")."""
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else ({"num_cpus": workers} if workers else {})
        try:
            ray.init(**kwargs, log_to_driver=False, include_dashboard=False)
        except Exception as e:  # a node that times out, an unreachable address, a port in use: one line
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise GroklabError(
                f"--executor ray: could not start {where}: {type(e).__name__}: {_gist(e)}; check `ray status`, "
                "or use --executor local"
            ) from None
        started_here = True
    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_task)
    outcome: dict[str, str] = {}
    refs: dict = {}
    try:
        refs = {remote.remote(sweep_dir, rid, d): rid for rid, d in todo}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                rid = refs.pop(ref)
                try:
                    outcome[rid] = ray.get(ref)
                except Exception as e:  # the task raised, or its worker died more often than retries
                    outcome[rid] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                if on_run_end is not None:
                    on_run_end(rid, outcome[rid])
    except KeyboardInterrupt:
        print("\nstopping: cancelling Ray tasks; started runs resume from their last saved state", file=sys.stderr)
        for ref in refs:
            ray.cancel(ref)
        for rid in refs.values():
            outcome[rid] = "interrupted"
    finally:
        if started_here:
            ray.shutdown()
    return outcome
