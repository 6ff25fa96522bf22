"""The sweep directory, and running one point of it into its run directory.

Layout::

    SWEEP/
      sweep.json            the spec (base config, axes, seeds) and every point: run id and overrides
      runs/<id>/            one ordinary run directory per point (`groklab.load_run` reads it); the id is
                            a stable hash of the point's config, so a re-run finds finished work by name
      index/<id>.json       one status record per run (running / done / failed / interrupted, pid, host,
                            executor, times); one file per run, replaced atomically, so any number of
                            workers on any number of machines write it without a lock
      locks/<id>.lock       held (flock) by the process training that run; a second sweep process finds
                            it held and leaves the run alone, and the kernel drops it when that process dies
      table.csv             one row per run (`groklab table`), and table.parquet when pyarrow is installed
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from groklab.config import RunConfig
from groklab.errors import ConfigError, RunDirError
from groklab.store import atomic_write_text
from groklab.sweep.spec import SweepSpec, identity

SWEEP_JSON, RUNS, INDEX, LOCKS = "sweep.json", "runs", "index", "locks"


class SweepDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # spec
    @property
    def spec_file(self) -> Path:
        return self.path / SWEEP_JSON

    def exists(self) -> bool:
        return self.spec_file.is_file()

    def write_spec(self, spec: SweepSpec) -> None:
        d = spec.to_dict()
        d["points"] = [{"id": rid, "overrides": o} for rid, o, _ in spec.points()]
        atomic_write_text(self.spec_file, json.dumps(d, indent=2, default=repr) + "\n")

    def read_spec(self) -> SweepSpec:
        if not self.exists():
            raise RunDirError(f"{str(self.path)!r} is not a sweep directory: it has no {SWEEP_JSON}")
        try:
            return SweepSpec.from_dict(json.loads(self.spec_file.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RunDirError(f"{self.spec_file} is corrupt: {e}") from None

    # runs
    def run_dir(self, rid: str) -> Path:
        return self.path / RUNS / rid

    def is_done(self, rid: str) -> bool:
        return (self.run_dir(rid) / "summary.json").is_file()

    def is_started(self, rid: str) -> bool:
        return (self.run_dir(rid) / "config.json").is_file()

    # index: one record per run
    def is_held(self, rid: str) -> bool:
        """True while another process holds the run's lock (it is training the run now)."""
        with self.lock(rid) as held:
            return not held

    def write_record(self, rid: str, **fields: Any) -> None:
        f = self.path / INDEX / f"{rid}.json"
        rec = self.read_record(rid) or {"id": rid}
        rec.update(fields)
        rec["updated"] = time.time()
        atomic_write_text(f, json.dumps(rec, indent=1, default=repr) + "\n")

    def read_record(self, rid: str) -> dict | None:
        f = self.path / INDEX / f"{rid}.json"
        try:
            return json.loads(f.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @contextmanager
    def lock(self, rid: str) -> Iterator[bool]:
        """Yields True while this process holds the run's lock; False when another process holds it."""
        import fcntl

        d = self.path / LOCKS
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{rid}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def check_matches(run_dir: Path, cfg: RunConfig) -> None:
    """A run directory found under a point's name must hold that point's config (all of it)."""
    from groklab.store import RunDir

    found = RunDir(run_dir).read_config()
    if identity(found) != identity(cfg):
        a, b = identity(found), identity(cfg)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise RunDirError(f"{run_dir} holds a different run than this sweep point (fields {', '.join(diff)} differ); move it away or use another --out")


def run_point(sweep_dir: str | os.PathLike, rid: str, cfg_dict: dict, executor: str) -> str:
    """Train one point into `runs/<rid>`: skip it when done, resume it when started, else start it.

    Returns "done", "skipped" (already done), "busy" (another process holds it) or "interrupted".
    Used by every executor (process pool, Ray), so they all leave the same directories behind.
    """
    from groklab.train import resume, run

    sd = SweepDir(sweep_dir)
    cfg = RunConfig.from_dict(cfg_dict).replace(out=str(sd.run_dir(rid)))
    with sd.lock(rid) as held:
        if not held:
            return "busy"
        if sd.is_done(rid):
            check_matches(sd.run_dir(rid), cfg)
            return "skipped"
        rec = {"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "executor": executor, "started": time.time()}
        started = sd.is_started(rid)
        if started:
            check_matches(sd.run_dir(rid), cfg)
            prev = sd.read_record(rid) or {}
            rec["attempts"] = prev.get("attempts", 0) + 1
        else:
            rec["attempts"] = 1
        sd.write_record(rid, **rec)
        try:
            result = resume(sd.run_dir(rid)) if started else run(cfg)
        except BaseException as e:
            sd.write_record(rid, status="failed", error=f"{type(e).__name__}: {e}")
            raise
        if result.interrupted:
            sd.write_record(rid, status="interrupted")
            return "interrupted"
        sd.write_record(rid, status="done", finished=time.time(), resumed=started)
        return "done"


def require_new_or_resume(sd: SweepDir, spec: SweepSpec | None, resume: bool) -> SweepSpec:
    """The spec to run: a new sweep writes sweep.json; --resume reads it (and a given spec must match)."""
    if sd.exists():
        saved = sd.read_spec()
        if spec is not None and [p[0] for p in spec.points()] != [p[0] for p in saved.points()]:
            raise ConfigError(
                f"{str(sd.path)!r} already holds a different sweep (its points differ from these); "
                "use another --out, or leave out the grid/seeds flags to resume the saved sweep"
            )
        if not resume:
            raise ConfigError(f"{str(sd.path)!r} already holds a sweep; pass --resume to finish only what is missing")
        return saved
    if spec is None:
        raise ConfigError(f"{str(sd.path)!r} holds no sweep to resume; give the grid (and --base) to start one")
    sd.path.mkdir(parents=True, exist_ok=True)
    sd.write_spec(spec)
    return spec
