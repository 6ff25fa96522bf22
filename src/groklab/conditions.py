"""Stop conditions (`train.stop_when`): one comparison ``METRIC OP NUMBER`` on the logged metrics, parsed and
never evaluated as code. Torch-free and on the config's floor, so the config validates `stop_when` when it is
built and the trainer (train/stop.py) applies it, each importing only downward."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from groklab.errors import ConfigError

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
SYNTAX = "METRIC OP NUMBER with OP one of >=, <=, >, < (e.g. 'val_acc>=0.99', 'train_loss<1e-3')"

_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float

    def holds(self, row: dict[str, Any]) -> bool:
        v = row.get(self.metric)
        # A missing or non-finite value (NaN, or None as metrics.jsonl stores it) never satisfies the condition.
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return OPS[self.op](float(v), self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_condition(text: str, field: str = "train.stop_when") -> Condition:
    """Parse ``METRIC OP NUMBER``; raise a one-line error naming the field, the value and the syntax."""
    m = _PATTERN.match(text) if isinstance(text, str) else None
    if m is None:
        raise ConfigError(f"{field}={text!r} is not a stop condition; write {SYNTAX}")
    value = float(m.group(3))
    if not math.isfinite(value):
        raise ConfigError(f"{field}={text!r}: the threshold must be a finite number")
    return Condition(m.group(1), m.group(2), value)
