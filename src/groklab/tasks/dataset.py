"""A task's data as tensors: the whole table, a seeded train/validation split, and label corruption.

`build_dataset(cfg)` dispatches on `task.group`: the binary-operation tables here, the other groups in
their own modules (parity.py, images.py, teacher.py, custom.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from groklab.tasks.ops import integer_table, modular_table, permutation_table
from groklab.tasks.base import Dataset, no_probe  # noqa: F401  (the type lives in base.py; re-exported)
from groklab.tasks.targets import corrupt_labels

if TYPE_CHECKING:  # config imports the operation registry from tasks; avoid the cycle at run time
    from groklab.config import TaskConfig


def full_table(cfg: TaskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z) of every equation of the task's table, int64 arrays of shape (N,)."""
    if cfg.group == "modular":
        return modular_table(cfg.op, cfg.p, cfg.nonzero_y)
    if cfg.group == "integer":
        return integer_table(cfg.op, cfg.p)
    return permutation_table(cfg.op, cfg.n)


def build_dataset(cfg: TaskConfig) -> Dataset:
    """The data set a task config describes (see `groklab tasks`)."""
    from groklab.tasks import custom, dyck, images, knowledge, parity, teacher

    builders = {
        "modular": table_dataset, "permutation": table_dataset, "integer": table_dataset,
        "parity": parity.build, "images": images.build, "teacher": teacher.build, "custom": custom.build,
        "knowledge": knowledge.build, "dyck": dyck.build,
    }
    return builders[cfg.group](cfg)


# Peak bytes per equation while a table is built and split: x, y, z and the arithmetic's temporaries
# (int64), the permutation, the (N, 2) pairs and their train/validation copies. Measured order of magnitude,
# rounded up: the check below is meant to refuse tables that cannot fit, not to budget tight ones.
TABLE_BYTES_PER_EQUATION = 100


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (os.sysconf), or None where the platform does not say."""
    import os

    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_table_fits(cfg: TaskConfig, memory: int | None = None) -> None:
    """Refuse, before allocating anything, a table whose construction needs more memory than the machine has
    (e.g. `task.p=1000000` is 10^12 equations, about 100 TB)."""
    memory = physical_memory_bytes() if memory is None else memory
    need = cfg.n_equations * TABLE_BYTES_PER_EQUATION
    if memory is not None and need > memory:
        from groklab.errors import ConfigError

        size = f"task.p={cfg.p}" if cfg.group != "permutation" else f"task.n={cfg.n}"
        raise ConfigError(
            f"{size}: the table has {cfg.n_equations:,} equations and needs about {_gb(need)} of memory to build "
            f"(~{TABLE_BYTES_PER_EQUATION} bytes per equation), more than this machine's {_gb(memory)}; use a smaller {size.split('=')[0]}"
        )


def table_dataset(cfg: TaskConfig) -> Dataset:
    """A binary-operation table split into train and validation by `task.seed`, then label corruption."""
    check_table_fits(cfg)
    x, y, z = full_table(cfg)
    n = len(z)
    n_train = cfg.n_train
    # A generator of our own, so the split depends on task.seed only, never on the global RNG.
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n, generator=g)
    train_idx, val_idx = perm[:n_train].sort().values, perm[n_train:].sort().values

    pairs = torch.from_numpy(np.stack([x, y], axis=1))
    labels = torch.from_numpy(z)
    m = cfg.n_elements
    n_classes = 2 * m - 1 if cfg.group == "integer" else m
    y_train_true = labels[train_idx]
    # The same generator goes on to pick the corrupted labels, so the split and the corruption both
    # follow from task.seed alone.
    y_train, corrupted = corrupt_labels(y_train_true, cfg.corrupt_frac, "class", n_classes, g)
    probe = no_probe
    if cfg.group == "integer":
        from groklab.tasks.rqi import rqi_probe

        probe = rqi_probe(m, cfg.rqi_tol)
    return Dataset(
        x_train=pairs[train_idx],
        y_train=y_train,
        y_train_true=y_train_true,
        corrupted=corrupted,
        x_val=pairs[val_idx],
        y_val=labels[val_idx],
        train_idx=train_idx,
        val_idx=val_idx,
        n_elements=m,
        n_classes=n_classes,
        probe=probe,
    )
