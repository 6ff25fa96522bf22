"""When a run stops before its budget: a condition on the logged metrics, or a loss that is no longer finite.

`train.stop_when` is one comparison ``METRIC OP NUMBER`` (``val_acc>=0.99``, ``train_loss < 1e-3``) with OP one
of ``>=``, ``<=``, ``>``, ``<``; METRIC is any key of the evaluation rows (metrics.jsonl). It is parsed, never
evaluated as code. `train.stop_patience` is how many more steps the condition must keep holding, at every
evaluation, before the run stops, so the curves still show the plateau: the condition first holds at step s,
the run stops at the first evaluation at or after s + patience (the loop evaluates that step even when the
log-spaced schedule does not) — unless an evaluation in between breaks the condition, which starts the count
again (with `train.stop_patience_from_first` it does not: the count runs from the first evaluation that met
the condition, and the run stops at the first evaluation at or after s + patience that meets it). A training
loss that is NaN or ±inf stops the run at once, as "diverged".

The condition itself (`Condition`, `parse_condition`) is in groklab/conditions.py, where the config validates it.
"""

from __future__ import annotations

import math
from typing import Any

from groklab.conditions import OPS, SYNTAX, Condition, parse_condition  # noqa: F401  (OPS, SYNTAX re-exported)
from groklab.errors import ConfigError

# The metrics every evaluation row has (train/loop.py: evaluate() and the loop's own columns). Other names
# (task probes, interventions' metrics, corrupted-label accuracies) are checked at the first evaluation.
STANDARD_METRICS = frozenset({
    "step", "train_loss", "train_acc", "val_loss", "val_acc", "weight_norm", "last_layer_norm", "lr", "elapsed_s",
})

STOP_REASONS = ("budget", "condition", "diverged")


class StopRule:
    """Decides, from each evaluation row and each training loss, whether the run must stop now.

    `update(step, row)` → "condition" / "diverged" / None; `check_loss(step, loss)` → "diverged" / None;
    `due_step()` is the step at which a condition now holding would stop the run (the loop evaluates it);
    `state()` / `load_state()` carry the patience count across a resume.
    """

    def __init__(self, condition: Condition | None = None, patience: int = 0, from_first: bool = False) -> None:
        if patience < 0:
            raise ConfigError(f"train.stop_patience={patience} must be at least 0")
        self.condition = condition
        self.patience = int(patience)
        self.from_first = bool(from_first)
        # first step of the current unbroken run of evaluations meeting the condition (from_first: of the first one)
        self.since: int | None = None
        self.holding = False  # whether the last evaluation met the condition
        self.reason: str | None = None
        self.stopped_step: int | None = None
        self._checked_names = False

    @classmethod
    def from_config(cls, train_config: Any) -> "StopRule":
        text = getattr(train_config, "stop_when", None)
        cond = None if text is None else parse_condition(text)
        return cls(cond, getattr(train_config, "stop_patience", 0), getattr(train_config, "stop_patience_from_first", False))

    # --- decisions -------------------------------------------------------------------------------------
    def update(self, step: int, row: dict[str, Any]) -> str | None:
        if self.reason is not None:
            return self.reason
        loss = row.get("train_loss")
        if loss is None or (isinstance(loss, float) and not math.isfinite(loss)):
            if "train_loss" in row:  # None in a row read back from metrics.jsonl stands for NaN/inf
                return self._stop("diverged", step)
        if self.condition is None:
            return None
        if not self._checked_names:
            self.check_names(row)
        self.holding = self.condition.holds(row)
        if self.holding:
            if self.since is None:
                self.since = step
            if step >= self.since + self.patience:
                return self._stop("condition", step)
        elif not self.from_first:
            self.since = None
        return None

    def check_names(self, names) -> None:
        """Refuse a condition on a metric that is not among `names` (the keys of an evaluation row)."""
        self._checked_names = True
        if self.condition is not None and self.condition.metric not in names:
            known = ", ".join(sorted(k for k in names if k != "step"))
            raise ConfigError(
                f"train.stop_when={str(self.condition)!r} names the metric {self.condition.metric!r}, which this run does not log; "
                f"its metrics are: {known}"
            )

    def check_loss(self, step: int, loss_value: float) -> str | None:
        if self.reason is None and not math.isfinite(loss_value):
            return self._stop("diverged", step)
        return self.reason

    def due_step(self) -> int | None:
        """The step the condition would stop the run at if it keeps holding (None when it does not hold now)."""
        if self.reason is not None or self.since is None or not self.holding:
            return None
        return self.since + self.patience

    def _stop(self, reason: str, step: int) -> str:
        self.reason, self.stopped_step = reason, step
        return reason

    # --- resume ----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"since": self.since, "holding": self.holding, "reason": self.reason, "stopped_step": self.stopped_step}

    def load_state(self, d: dict[str, Any] | None) -> None:
        d = d or {}
        self.since = d.get("since")
        # states saved before `holding` existed: `since` was reset at every break, so it stood for holding
        self.holding = d.get("holding", self.since is not None)
        self.reason = d.get("reason")
        self.stopped_step = d.get("stopped_step")

    def message(self) -> str:
        """One line for the user about why the run stopped (empty when it ran its budget)."""
        if self.reason == "condition":
            extra = f", held for {self.patience} steps" if self.patience else ""
            return f"stopped at step {self.stopped_step}: {self.condition} reached{extra}"
        if self.reason == "diverged":
            return f"stopped at step {self.stopped_step}: the training loss is no longer finite (diverged); lower optim.lr"
        return ""
