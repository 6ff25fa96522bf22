"""Runs as pandas tables: one run's metrics (to parquet), a directory tree of runs (`groklab ls`), and the
labels that tell runs apart in a comparison figure (`groklab compare`). Read-only over run directories,
which stay the source of truth; parquet needs pyarrow (extra `parquet`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from groklab.errors import GroklabError, RunDirError
from groklab.store import CONFIG, METRICS_PARQUET, Run, RunDir, flatten_dict, load_run, write_parquet  # noqa: F401 (re-exported)

# The columns of `groklab ls`, in order.
LS_COLUMNS = [
    "run", "group", "op", "p", "arch", "train_frac", "steps", "last_step",
    "train_acc_99_step", "val_acc_99_step", "final_val_acc", "finished",
]


def metrics_to_parquet(run: Run | str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Write a run's metrics (one row per evaluation, as metrics.jsonl) to `path`, by default
    RUN/metrics.parquet, and return the path. The JSONL stays the source of truth."""
    return (run if isinstance(run, Run) else load_run(run)).to_parquet(path)


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run directory (a directory with a config.json) under `root`, itself included, sorted by path.
    Hidden directories and the TensorBoard/W&B copies inside runs are not searched."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"{str(root)!r} is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("checkpoints", "tensorboard", "wandb"))
        if CONFIG in filenames:
            found.append(Path(dirpath))
    return sorted(found)


def _last_row(rd: RunDir) -> dict:
    """The last complete row of metrics.jsonl ({} when there is none yet)."""
    rows = rd.read_metrics()
    return rows[-1] if rows else {}


def run_row(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """One `groklab ls` row: key config fields and the summary (from the last metrics row while unfinished)."""
    rd = RunDir(Path(path))
    cfg = rd.read_config()
    summary = rd.read_summary()
    last = (summary or {}).get("final") or _last_row(rd)
    t = cfg.task
    pairs = t.group in ("modular", "permutation", "integer")
    name = str(Path(path).relative_to(root)) if root is not None else str(path)
    return {
        "run": name if name != "." else Path(path).resolve().name,
        "group": t.group,
        "op": t.op if pairs else None,
        "p": t.p if t.group in ("modular", "integer") else (t.n if t.group == "permutation" else None),
        "arch": cfg.model.arch,
        "train_frac": t.train_frac if pairs else None,
        "steps": cfg.train.steps,
        "last_step": last.get("step"),
        "train_acc_99_step": (summary or {}).get("train_acc_99_step"),
        "val_acc_99_step": (summary or {}).get("val_acc_99_step"),
        "final_val_acc": last.get("val_acc"),
        "finished": summary is not None,
    }


def runs_table(root: str | os.PathLike):
    """A DataFrame with one row per run directory under `root` (columns LS_COLUMNS; `run` is the path
    relative to `root`). Unreadable run directories are skipped and listed in `frame.attrs["skipped"]`."""
    import pandas as pd

    rows, skipped = [], []
    for path in find_runs(root):
        try:
            rows.append(run_row(path, root))
        except GroklabError as e:
            skipped.append(f"{path}: {e}")
    frame = pd.DataFrame(rows, columns=LS_COLUMNS)
    frame.attrs["skipped"] = skipped
    return frame


def run_labels(runs: list[Run]) -> list[str]:
    """A short legend label per run: the config fields whose values differ between the runs (`out` aside),
    e.g. "task.train_frac=0.3, optim.weight_decay=0.1"; the directory name where the configs are equal."""
    flat = [flatten_dict(r.config.to_dict()) for r in runs]
    keys = sorted({k for f in flat for k in f} - {"out"})
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    labels = []
    for r, f in zip(runs, flat):
        label = ", ".join(f"{k}={f.get(k)}" for k in differing[:3]) + (", …" if len(differing) > 3 else "")
        labels.append(label or r.path.name)
    if len(set(labels)) < len(labels):  # same fields, different runs (e.g. a rerun): name them by directory
        labels = [f"{r.path.name}: {lab}" if lab != r.path.name else lab for r, lab in zip(runs, labels)]
    return labels


__all__ = ["metrics_to_parquet", "write_parquet", "find_runs", "run_row", "runs_table", "run_labels", "LS_COLUMNS"]
