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
    from groklab.tasks.base import Dataset

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
        import zipfile

        # np.load on a file that is not a zip guesses a pickle and advises allow_pickle=True, which groklab
        # never uses (a pickle runs code): name the real problem instead.
        if not zipfile.is_zipfile(path):
            raise ConfigError(f"task.path={str(path)!r} is not a valid .npz file (a zip of .npy arrays, as numpy.savez writes)")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
        except ValueError as e:
            if "pickle" in str(e):
                raise ConfigError(
                    f"task.path={str(path)!r} holds object arrays (pickled Python objects), which groklab never loads; "
                    "save plain numeric arrays"
                ) from None
            raise ConfigError(f"task.path={str(path)!r} is not a valid .npz file of plain arrays ({e})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise ConfigError(f"task.path={str(path)!r} is not a valid .npz file of plain arrays ({type(e).__name__}: {e})") from None
    raise ConfigError(f"task.path={str(path)!r} must end in one of: {', '.join(SUFFIXES)}")


def build(cfg: TaskConfig) -> Dataset:
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
    if cfg.n_classes is not None and target not in (None, "class"):
        raise ConfigError(f"task.n_classes={cfg.n_classes} is for class labels; task.labels={cfg.labels!r} are not classes")
    kinds = dict(target=target, tol=cfg.tol, n_classes=cfg.n_classes)
    try:
        data = _from_file(cfg, t, g, kinds)
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith("task.path=") else f"task.path={cfg.path!r}: {e}") from None
    return data.with_corruption(cfg.corrupt_frac, g)


def _from_file(cfg: TaskConfig, t: dict[str, torch.Tensor], g: torch.Generator, kinds: dict) -> Dataset:
    from groklab.tasks.base import Dataset

    if all(k in t for k in SPLIT_KEYS):
        data = Dataset.from_tensors(t["x_train"], t["y_train"], t["x_val"], t["y_val"], **kinds)
    elif all(k in t for k in WHOLE_KEYS):
        x, y = t["x"], t["y"]
        if len(x) != len(y):
            raise ConfigError(f"task.path={cfg.path!r}: x has {len(x)} rows but y has {len(y)}")
        if len(y) < 2:
            raise ConfigError(f"task.path={cfg.path!r}: x and y need at least 2 rows to split, got {len(y)}")
        n_train = max(1, min(len(y) - 1, round(cfg.train_frac * len(y))))
        perm = torch.randperm(len(y), generator=g)
        tr, va = perm[:n_train].sort().values, perm[n_train:].sort().values
        data = Dataset.from_tensors(x[tr], y[tr], x[va], y[va], **kinds)
        data.train_idx, data.val_idx = tr, va
    else:
        raise ConfigError(
            f"task.path={cfg.path!r} holds {sorted(t)}; it needs either {', '.join(SPLIT_KEYS)} "
            f"or {', '.join(WHOLE_KEYS)} (split by task.train_frac)"
        )
    return data


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
