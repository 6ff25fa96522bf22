"""groklab: a fast, faithful, tested lab for studying grokking.

    from groklab import RunConfig, run, load_run
    result = run(RunConfig(out="runs/xy"))
    r = load_run("runs/xy"); r.metrics; r.load_model()
"""

from __future__ import annotations

import importlib
from typing import Any

from groklab.version import __version__

# The configs and errors are light (no torch); the trainer and the run loader import torch, so they load on
# first use (PEP 562): `import groklab` and `groklab --help` stay fast.
from groklab.config import ModelConfig, OptimConfig, RegConfig, RunConfig, TaskConfig, TrainConfig  # noqa: E402
from groklab.errors import ConfigError, GroklabError, RunDirError  # noqa: E402

_LAZY = {
    "run": "groklab.train",
    "resume": "groklab.train",
    "RunResult": "groklab.train",
    "load_run": "groklab.store",
    "Run": "groklab.store",
}

__all__ = [
    "RunConfig", "TaskConfig", "ModelConfig", "OptimConfig", "TrainConfig", "RegConfig",
    "run", "resume", "RunResult", "load_run", "Run",
    "GroklabError", "ConfigError", "RunDirError",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'groklab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
