"""How a model's outputs are read against a task's labels, for the three kinds of target.

- `class`: labels (N,) long in [0, n_classes); the prediction is the arg-max output; correct when equal.
- `sign`:  labels (N, d) float in {-1, +1} (sparse parity, Barak et al. 2022); the prediction is the sign
  of each output; correct when every sign matches.
- `real`:  labels (N, d) float (teacher–student regression, Omnigrok); the prediction is the output itself;
  correct ("a hit") when every coordinate is within `tol` of the label. Accuracy is replaced by this hit
  rate, and R² is logged beside it.

The readout is chosen by the data set, so the evaluation code has no branch per task.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TARGETS = ("class", "sign", "real")


@dataclass(frozen=True)
class Readout:
    kind: str
    tol: float = 0.1

    def decide(self, out: torch.Tensor) -> torch.Tensor:
        """Model outputs (B, C) -> predictions: class ids (B,), signs (B, C), or the outputs (B, C)."""
        if self.kind == "class":
            return out.argmax(-1)
        if self.kind == "sign":
            # sign(0) = 0 would count as neither class; break the tie towards +1.
            return torch.where(out >= 0, 1.0, -1.0).to(out.dtype)
        return out

    def correct(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) bool: which predictions count as right."""
        if self.kind == "class":
            return pred == y
        if self.kind == "sign":
            return (pred == y).all(-1)
        return ((pred - y).abs() <= self.tol).all(-1)

    def scores(self, split: str, pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Extra columns for one split: R² for regression, nothing otherwise."""
        if self.kind != "real":
            return {}
        return {f"{split}_r2": r2_score(pred, y)}


def r2_score(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Coefficient of determination 1 − SS_res / SS_tot, pooled over output coordinates; (N, d) each.

    SS_tot is taken around each coordinate's own mean, so predicting the mean scores 0 and a perfect
    fit scores 1. NaN when the labels are constant.
    """
    y64, p64 = y.double(), pred.double()
    ss_res = (p64 - y64).pow(2).sum()
    ss_tot = (y64 - y64.mean(0, keepdim=True)).pow(2).sum()
    if ss_tot.item() == 0.0:
        return float("nan")
    return (1.0 - ss_res / ss_tot).item()


def corrupt_labels(
    y_true: torch.Tensor, frac: float, kind: str, n_classes: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a fraction `frac` of the labels by wrong ones; returns (labels, corrupted mask (N,)).

    Classes: a uniformly random wrong class (adding a shift in 1..C-1 mod C). Signs: the sign flipped.
    Draws from `g` in a fixed order (which rows, then the shifts), so a split is reproducible from its seed.
    """
    n = len(y_true)
    y = y_true.clone()
    corrupted = torch.zeros(n, dtype=torch.bool)
    n_corrupt = round(frac * n)
    if n_corrupt:
        which = torch.randperm(n, generator=g)[:n_corrupt]
        if kind == "class":
            shift = torch.randint(1, n_classes, (n_corrupt,), generator=g)
            y[which] = (y_true[which] + shift) % n_classes
        else:
            y[which] = -y_true[which]
        corrupted[which] = True
    return y, corrupted
