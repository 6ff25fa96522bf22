"""Images for Omnigrok (Liu, Michaud & Tegmark 2023, arXiv 2210.01117): grokking on MNIST with a large
initialization.

No pip-installable package ships MNIST itself (the ones that mention it download it at run time), so the
image task uses the closest data set that is installed with a package and needs no network:
scikit-learn's bundled copy of the UCI handwritten digits (`sklearn.datasets.load_digits`): 1797 images of
8×8 pixels, 10 classes, about 180 each. Pixels (0..16) are scaled to [0, 1] and flattened to 64 inputs.
For real MNIST, save it as a file and use the `custom` task (docs/tasks.md).

The split follows `task.seed`: a seeded permutation of all images, the first `train_size` for training and
the next `val_size` (at most all the rest) for validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.dataset import Dataset

from groklab.tasks.meta import IMAGE_SETS  # noqa: E402 (name: number of images; torch-free, the config reads it)


def load_images(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a data set as (N, pixels) float in [0, 1] and labels (N,) long."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            f"task.images={name!r} needs scikit-learn (it ships the digits); install it with: pip install 'groklab[images]'"
        ) from None
    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0  # (1797, 64)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return x, y


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.dataset import Dataset

    x, y = load_images(cfg.images)
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(y), generator=g)
    n_val = min(cfg.val_size, len(y) - cfg.train_size)
    tr, va = perm[: cfg.train_size], perm[cfg.train_size : cfg.train_size + n_val]
    data = Dataset.from_tensors(x[tr], y[tr], x[va], y[va], target="class", n_classes=10)
    data.train_idx, data.val_idx = tr, va  # rows of the full image set, as for the tables
    return data.with_corruption(cfg.corrupt_frac, g)
