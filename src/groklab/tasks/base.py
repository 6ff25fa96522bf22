"""The `Dataset` type every task builds: inputs and labels split into train and validation, with the
readout that says what counts as correct. Its own module so that the task modules (parity.py, images.py, …)
and the dispatcher in dataset.py that calls them do not import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from groklab.tasks.targets import Readout, corrupt_labels


def no_probe(model) -> dict[str, float]:
    return {}


def accuracy_and_loss(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192) -> tuple[float, float]:
    """Class accuracy and mean cross-entropy (in float64) of `model` on a held-out split, for a task's probe: in
    eval mode (dropout off, and no draws from the global RNG: the loop calls probes in training mode), without
    gradients, in chunks of `chunk` rows, on the model's device."""
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        x, y = x.to(dev), y.to(dev)
        correct, loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(y), chunk):
                logits = model(x[i : i + chunk])
                correct += int((logits.argmax(-1) == y[i : i + chunk]).sum())
                loss += F.cross_entropy(logits.double(), y[i : i + chunk], reduction="sum").item()
        return correct / len(y), loss / len(y)
    finally:
        model.train(was_training)


@dataclass
class Dataset:
    """Inputs and labels split into train and validation.

    Inputs `x_*` are either operand pairs (N, 2) of element indices in [0, n_elements) (the tables), or float
    vectors (N, d_input) (parity, images, teacher–student; `d_input` set, `n_elements` 0). Labels `y_*`
    follow `target` (see tasks/targets.py): `class` (N,) long in [0, n_classes); `sign` (N, n_classes)
    float ±1; `real` (N, n_classes) float, scored as hits within `tol` and R². Training labels may be
    corrupted: `corrupted` (n_train,) marks them and `y_train_true` keeps the true labels, so clean and
    corrupted subsets are measured apart. `probe(model)` returns the task's own metrics, read from the
    model's role-named weights at every evaluation (RQI, weight mass on the relevant bits); {} by default.

    Build one from your own tensors with `Dataset.from_tensors` (or a `custom` task, which also resumes).
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
    target: str = "class"
    tol: float = 0.1
    d_input: int | None = None
    probe: Callable[..., dict[str, float]] = field(default=no_probe, repr=False, compare=False)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_val(self) -> int:
        return len(self.y_val)

    @property
    def n_inputs(self) -> int:
        """Tokens per example of integer inputs: 2 for operand pairs, more for token sequences (knowledge facts);
        0 for vector inputs. The transformer sizes its positions from it."""
        return 0 if self.d_input is not None else int(self.x_train.shape[1])

    @property
    def readout(self) -> Readout:
        """How model outputs become predictions, and which predictions count as correct."""
        return Readout(self.target, self.tol)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Dataset":
        """On `device`; float tensors (vector inputs, sign and real labels) also cast to `dtype` if given."""

        def move(v):
            if not isinstance(v, torch.Tensor):
                return v
            if dtype is not None and v.is_floating_point():
                return v.to(device=device, dtype=dtype)
            return v.to(device)

        return Dataset(**{k: move(v) for k, v in self.__dict__.items()})

    @classmethod
    def from_tensors(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        target: str | None = None,
        tol: float = 0.1,
        n_classes: int | None = None,
    ) -> "Dataset":
        """A data set from your own tensors (see docs/tasks.md, "Bring your own data").

        Inputs: long (N, 2) operand pairs, or float (N, ...) vectors (flattened to (N, d)). Labels: long (N,)
        classes, or float (N,) / (N, d) targets. `target` defaults to `class` for integer labels and `real`
        for float labels; pass `sign` for ±1 labels scored by sign.
        """
        from groklab.errors import ConfigError
        from groklab.tasks.targets import TARGETS

        x_train, x_val, y_train, y_val = (torch.as_tensor(t) for t in (x_train, x_val, y_train, y_val))
        for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
            if len(x) != len(y):
                raise ConfigError(f"x_{name} has {len(x)} rows but y_{name} has {len(y)}; they must match")
        if len(x_train) == 0 or len(x_val) == 0:
            raise ConfigError(f"the training and validation sets must both be non-empty (got {len(x_train)} and {len(x_val)} rows)")
        if x_train.is_floating_point() != x_val.is_floating_point() or y_train.is_floating_point() != y_val.is_floating_point():
            raise ConfigError("x_train and x_val (and y_train and y_val) must both be integer or both be float tensors")
        for name, t in (("x_train", x_train), ("x_val", x_val), ("y_train", y_train), ("y_val", y_val)):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise ConfigError(f"{name} has {bad} non-finite value(s) (NaN or inf); the data must be finite numbers")
        if target is None:
            target = "real" if y_train.is_floating_point() else "class"
        if target not in TARGETS:
            raise ConfigError(f"target={target!r} is not allowed; choose one of: {', '.join(TARGETS)}")

        if x_train.is_floating_point():
            x_train, x_val = x_train.reshape(len(x_train), -1).float(), x_val.reshape(len(x_val), -1).float()
            if x_train.shape[1] != x_val.shape[1]:
                raise ConfigError(f"x_train has {x_train.shape[1]} features per row but x_val has {x_val.shape[1]}")
            d_input, n_elements = x_train.shape[1], 0
        else:
            if x_train.dim() != 2 or x_train.shape[1] != 2 or x_val.dim() != 2 or x_val.shape[1] != 2:
                raise ConfigError(
                    f"integer inputs must be operand pairs of shape (N, 2), got {tuple(x_train.shape)} and {tuple(x_val.shape)}; "
                    "give float inputs for vectors"
                )
            if min(x_train.min().item(), x_val.min().item()) < 0:
                raise ConfigError("integer inputs (operand pairs) must be non-negative element indices")
            x_train, x_val = x_train.long(), x_val.long()
            d_input, n_elements = None, int(max(x_train.max().item(), x_val.max().item())) + 1

        if target == "class":
            if y_train.is_floating_point():
                raise ConfigError("target='class' needs integer labels (class ids); got float labels")
            y_train, y_val = y_train.reshape(-1).long(), y_val.reshape(-1).long()
            if min(y_train.min().item(), y_val.min().item()) < 0:
                raise ConfigError("class labels must be non-negative class ids")
            top = int(max(y_train.max().item(), y_val.max().item())) + 1
            if n_classes is not None and n_classes < top:
                raise ConfigError(f"n_classes={n_classes} but the labels go up to {top - 1}")
            rows = len(y_train) + len(y_val)
            if n_classes is None and top > rows:
                # Largest label + 1 classes is right for class ids 0..K-1; labels that are ids of another kind
                # (years, hashes) would make a huge, mostly unseen output layer, so say so instead of allocating it.
                distinct = len(torch.unique(torch.cat([y_train, y_val])))
                raise ConfigError(
                    f"the class labels go up to {top - 1}, which makes {top} classes for {rows} rows ({distinct} distinct "
                    "labels); renumber them 0..K-1, or give the number of classes (task.n_classes; n_classes= in Python)"
                )
            n_classes = n_classes or top
        else:
            y_train, y_val = y_train.float().reshape(len(y_train), -1), y_val.float().reshape(len(y_val), -1)
            if y_train.shape[1] != y_val.shape[1]:
                raise ConfigError(f"y_train has {y_train.shape[1]} targets per row but y_val has {y_val.shape[1]}")
            if target == "sign" and not bool(((y_train.abs() == 1).all() & (y_val.abs() == 1).all()).item()):
                raise ConfigError("target='sign' needs labels that are all -1 or +1")
            n_classes = y_train.shape[1]
        return cls(
            x_train=x_train, y_train=y_train, y_train_true=y_train.clone(),
            corrupted=torch.zeros(len(y_train), dtype=torch.bool), x_val=x_val, y_val=y_val,
            train_idx=torch.arange(len(y_train)), val_idx=torch.arange(len(y_train), len(y_train) + len(y_val)),
            n_elements=n_elements, n_classes=n_classes, target=target, tol=tol, d_input=d_input,
        )

    def with_corruption(self, frac: float, g: torch.Generator) -> "Dataset":
        """A copy whose training labels have a fraction `frac` corrupted (classes: a wrong class; signs: flipped)."""
        from groklab.errors import ConfigError

        if frac and self.target == "real":
            raise ConfigError(f"task.corrupt_frac={frac}: corruption needs class or ±1 labels; this task's labels are real-valued")
        y, corrupted = corrupt_labels(self.y_train_true, frac, self.target, self.n_classes, g)
        return Dataset(**{**self.__dict__, "y_train": y, "corrupted": corrupted})
