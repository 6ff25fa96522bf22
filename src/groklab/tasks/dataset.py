"""A task's data as tensors: the whole table, a seeded train/validation split, and label corruption."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from groklab.tasks.ops import modular_table, permutation_table

if TYPE_CHECKING:  # config imports the operation registry from tasks; avoid the cycle at run time
    from groklab.config import TaskConfig


@dataclass
class Dataset:
    """Equations `x op y = z` split into train and validation.

    `x_*` are operand pairs (N, 2) of element indices in [0, n_elements); `y_*` are labels (N,) in
    [0, n_classes). Training labels may be corrupted: `corrupted` (n_train,) marks them and `y_train_true`
    keeps the true labels, so clean and corrupted subsets are measured apart.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    y_train_true: torch.Tensor
    corrupted: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    train_idx: torch.Tensor  # (n_train,) row of each training equation in the full table
    val_idx: torch.Tensor
    n_elements: int
    n_classes: int

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_val(self) -> int:
        return len(self.y_val)

    def to(self, device: torch.device | str) -> "Dataset":
        fields = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Dataset(**fields)


def full_table(cfg: TaskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z) of every equation of the task's table, int64 arrays of shape (N,)."""
    if cfg.group == "modular":
        return modular_table(cfg.op, cfg.p)
    return permutation_table(cfg.op, cfg.n)


def build_dataset(cfg: TaskConfig) -> Dataset:
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
    y_train_true = labels[train_idx]
    y_train = y_train_true.clone()
    corrupted = torch.zeros(n_train, dtype=torch.bool)
    n_corrupt = round(cfg.corrupt_frac * n_train)
    if n_corrupt:
        which = torch.randperm(n_train, generator=g)[:n_corrupt]
        # Adding a shift in 1..m-1 mod m gives a wrong label, uniform over the m-1 wrong ones.
        shift = torch.randint(1, m, (n_corrupt,), generator=g)
        y_train[which] = (y_train_true[which] + shift) % m
        corrupted[which] = True
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
        n_classes=m,
    )
