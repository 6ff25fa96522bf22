"""(n, k)-sparse parity: Barak et al. 2022, "Hidden progress in deep learning" (arXiv 2207.08799).

Inputs x ∈ {−1, +1}^n drawn uniformly; the label is the product of k fixed coordinates, the hidden subset
S: y = Π_{i∈S} x_i. `task.labels=sign` keeps y as a ±1 target (one output, hinge loss in the paper);
`class` makes it a two-class label (class 0 for +1, class 1 for −1). Training and validation samples are
drawn independently (for small n a validation input can also occur in training, as in the paper's online
setting). The subset and the samples follow from `task.seed`.

Metric (Merrill, Tsilivis & Shukla 2023, "A tale of two circuits"): the share of the first layer's squared
weight mass on the k relevant input coordinates. It starts near k/n (a dense circuit) and grows towards 1
when the network switches to the sparse, generalizing circuit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.base import Dataset


def hidden_subset(n_bits: int, k: int, seed: int) -> list[int]:
    """The k relevant coordinates, sorted: the first k of a seeded permutation of 0..n-1."""
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n_bits, generator=g)[:k].tolist())


def sample(n_bits: int, subset: list[int], n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n uniform inputs (n, n_bits) float ±1 and their parities (n,) float ±1."""
    x = torch.randint(0, 2, (n, n_bits), generator=g).float() * 2 - 1
    return x, x[:, subset].prod(dim=1)


def relevant_weight_mass(W_in: torch.Tensor, subset: list[int]) -> dict[str, float]:
    """From the first-layer weights W_in (n_bits, width): the share of squared weight on the relevant rows
    (`w_relevant_frac`, k/n for weights spread evenly) and the ratio of the mean squared row norm on the
    relevant coordinates to that on the others (`w_relevant_ratio`, 1 for evenly spread weights)."""
    rows = W_in.detach().double().pow(2).sum(dim=1)  # (n_bits,) squared norm of each input's weights
    mask = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
    mask[subset] = True
    total = rows.sum().item()
    out = {"w_relevant_frac": rows[mask].sum().item() / total if total > 0 else float("nan")}
    if (~mask).any():
        rest = rows[~mask].mean().item()
        out["w_relevant_ratio"] = rows[mask].mean().item() / rest if rest > 0 else float("inf")
    return out


def parity_probe(n_bits: int, subset: list[int]):
    def probe(model) -> dict[str, float]:
        W_in = getattr(model, "W_in", None)
        if not isinstance(W_in, torch.Tensor) or W_in.dim() != 2 or W_in.shape[0] != n_bits:
            return {}
        return relevant_weight_mass(W_in, subset)

    return probe


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.base import Dataset

    subset = hidden_subset(cfg.n_bits, cfg.k, cfg.seed)
    # A second stream for the samples, so changing train_size does not move the hidden subset.
    g = torch.Generator().manual_seed(cfg.seed + 1)
    x_train, y_train = sample(cfg.n_bits, subset, cfg.train_size, g)
    x_val, y_val = sample(cfg.n_bits, subset, cfg.val_size, g)
    if cfg.labels == "class":
        target, y_train, y_val = "class", ((1 - y_train) / 2).long(), ((1 - y_val) / 2).long()
    else:
        target, y_train, y_val = "sign", y_train[:, None], y_val[:, None]
    data = Dataset.from_tensors(x_train, y_train, x_val, y_val, target=target, n_classes=2 if target == "class" else None)
    data.probe = parity_probe(cfg.n_bits, subset)
    return data.with_corruption(cfg.corrupt_frac, g)
