"""groklab: a fast, faithful, tested lab for studying grokking.

    from groklab import RunConfig, run, load_run
    result = run(RunConfig(out="runs/xy"))
    r = load_run("runs/xy"); r.metrics; r.load_model()
"""

__version__ = "0.1.0"

from groklab.config import ModelConfig, OptimConfig, RegConfig, RunConfig, TaskConfig, TrainConfig  # noqa: E402
from groklab.errors import ConfigError, GroklabError, RunDirError  # noqa: E402
from groklab.store import Run, load_run  # noqa: E402
from groklab.train import RunResult, resume, run  # noqa: E402

__all__ = [
    "RunConfig", "TaskConfig", "ModelConfig", "OptimConfig", "TrainConfig", "RegConfig",
    "run", "resume", "RunResult", "load_run", "Run",
    "GroklabError", "ConfigError", "RunDirError",
]
