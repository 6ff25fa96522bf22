"""Training: `run(config)`, the optimizers and losses, the interventions' hook interface."""

from groklab.train.loop import RunResult, evaluate, first_crossing, resume, run

__all__ = ["RunResult", "evaluate", "first_crossing", "resume", "run"]
