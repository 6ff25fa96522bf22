"""Tasks: binary-operation tables, sparse parity, images, teacher–student regression and your own tensors,
with their splits (`groklab tasks`). A task knows nothing about models beyond the role names its metrics read.

The names below load on first use (PEP 562), so that `groklab.config`, which reads the torch-free tables
of tasks/meta.py and tasks/registry.py, does not import torch through this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Dataset": "groklab.tasks.base",
    "build_dataset": "groklab.tasks.dataset",
    "full_table": "groklab.tasks.dataset",
    "save_custom": "groklab.tasks.custom",
    "TASKS": "groklab.tasks.registry",
    "MODULAR_OPS": "groklab.tasks.meta",
    "PERMUTATION_OPS": "groklab.tasks.meta",
    "Operation": "groklab.tasks.meta",
    "is_prime": "groklab.tasks.meta",
    "mod_inverse_table": "groklab.tasks.ops",
    "permutations": "groklab.tasks.ops",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'groklab.tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
