"""Bring your own data: a `custom` task reads tensors from a .safetensors or .npz file.

The file holds either a split, `x_train`, `y_train`, `x_val`, `y_val`, or all the data, `x` and `y`, which
`task.train_frac` and `task.seed` split as they split a table. Inputs: float (N, ...) vectors (flattened),
or integer (N, 2) operand pairs. Labels: integer (N,) classes, or float (N,) / (N, d) targets; `task.labels`
says how they are scored (`auto`: classes for integer labels, `real` regression for float labels).

Because the config names the file (and, through `task.sha256`, its exact content), a custom run resumes
and reloads like any other. `save_custom` writes such a file from tensors and returns the task config.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from groklab.errors import ConfigError

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.dataset import Dataset

SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val")
WHOLE_KEYS = ("x", "y")
SUFFIXES = (".safetensors", ".npz")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every array in a .safetensors or .npz file, as tensors (no pickles: nothing in the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task.path={str(path)!r} does not exist (or is not a file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises several types for a damaged file
            raise ConfigError(f"task.path={str(path)!r} is not a readable safetensors file: {e}") from None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
        except (ValueError, OSError) as e:
            raise ConfigError(f"task.path={str(path)!r} is not a readable .npz file of plain arrays: {e}") from None
    raise ConfigError(f"task.path={str(path)!r} must end in one of: {', '.join(SUFFIXES)}")


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.dataset import Dataset

    assert cfg.path is not None  # TaskConfig checks this
    if cfg.sha256 is not None:
        actual = file_sha256(cfg.path)
        if actual != cfg.sha256:
            raise ConfigError(
                f"task.path={cfg.path!r} has changed since the run was configured: its sha256 is {actual}, "
                f"task.sha256 is {cfg.sha256}; restore the file or set task.sha256 to None"
            )
    t = read_tensors(cfg.path)
    target = None if cfg.labels == "auto" else cfg.labels
    g = torch.Generator().manual_seed(cfg.seed)
    if all(k in t for k in SPLIT_KEYS):
        data = Dataset.from_tensors(t["x_train"], t["y_train"], t["x_val"], t["y_val"], target=target, tol=cfg.tol)
    elif all(k in t for k in WHOLE_KEYS):
        x, y = t["x"], t["y"]
        if len(x) != len(y):
            raise ConfigError(f"task.path={cfg.path!r}: x has {len(x)} rows but y has {len(y)}")
        if len(y) < 2:
            raise ConfigError(f"task.path={cfg.path!r}: x and y need at least 2 rows to split, got {len(y)}")
        n_train = max(1, min(len(y) - 1, round(cfg.train_frac * len(y))))
        perm = torch.randperm(len(y), generator=g)
        tr, va = perm[:n_train].sort().values, perm[n_train:].sort().values
        data = Dataset.from_tensors(x[tr], y[tr], x[va], y[va], target=target, tol=cfg.tol)
        data.train_idx, data.val_idx = tr, va
    else:
        raise ConfigError(
            f"task.path={cfg.path!r} holds {sorted(t)}; it needs either {', '.join(SPLIT_KEYS)} "
            f"or {', '.join(WHOLE_KEYS)} (split by task.train_frac)"
        )
    return data.with_corruption(cfg.corrupt_frac, g)


def save_custom(
    path: str | Path,
    x_train=None,
    y_train=None,
    x_val=None,
    y_val=None,
    *,
    x=None,
    y=None,
    **task_fields,
) -> "TaskConfig":
    """Write your tensors to `path` (.safetensors) and return the TaskConfig of a `custom` task reading them.

    Give either a split (`x_train, y_train, x_val, y_val`) or `x=`, `y=` (split by `train_frac`, a task
    field). The config holds the absolute path and the file's sha256, so runs resume and reload from it.
    Other keyword arguments are task fields, e.g. `labels="sign"`, `tol=0.05`, `train_frac=0.3`.
    """
    from safetensors.torch import save_file

    from groklab.config import TaskConfig

    path = Path(path).resolve()
    if path.suffix != ".safetensors":
        raise ConfigError(f"save_custom writes .safetensors files; got path={str(path)!r}")
    if x is not None or y is not None:
        if x is None or y is None or any(v is not None for v in (x_train, y_train, x_val, y_val)):
            raise ConfigError("give either x_train, y_train, x_val, y_val, or x= and y=, not a mix")
        tensors = {"x": x, "y": y}
    else:
        if any(v is None for v in (x_train, y_train, x_val, y_val)):
            raise ConfigError("give all of x_train, y_train, x_val, y_val (or x= and y=)")
        tensors = dict(zip(SPLIT_KEYS, (x_train, y_train, x_val, y_val)))
    tensors = {k: torch.as_tensor(v).contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    cfg = TaskConfig(group="custom", path=str(path), sha256=file_sha256(path), **task_fields)
    build(cfg)  # fail now, not at the start of training, if the tensors do not make a data set
    return cfg
