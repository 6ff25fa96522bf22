"""Optional metric sinks: TensorBoard and Weights & Biases, fed the same rows as metrics.jsonl.

`metrics.jsonl` stays the source of truth; a sink is a copy for the viewer you already use. Chosen by
`train.loggers` (any of `tensorboard`, `wandb`), written into the run directory:

    RUN/tensorboard/events.out.tfevents.*    `tensorboard --logdir RUN/tensorboard` (extra `tensorboard`)
    RUN/wandb/offline-run-*/run-*.wandb      W&B offline run (extra `wandb`); upload later with
                                             `wandb sync RUN/wandb/offline-run-*`

Each evaluation row becomes one scalar per numeric metric (same names as in metrics.jsonl: `train_acc`,
`val_loss`, ...) at x = `step`. W&B runs offline (no network) unless the environment sets `WANDB_MODE`
otherwise; the project is `$WANDB_PROJECT` or `groklab`, the run name the run directory's name, the run
config the RunConfig. A resumed run opens a new TensorBoard event file and a new W&B offline run; the
rows it replays carry the same steps and values as those they replace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from groklab.config import RunConfig
from groklab.errors import ConfigError, require

TENSORBOARD_DIR, WANDB_DIR = "tensorboard", "wandb"


class Sink(Protocol):
    def log(self, row: dict) -> None: ...

    def close(self) -> None: ...


def _scalars(row: dict) -> dict[str, float]:
    """The row's numeric metrics, without `step` (the x axis) and without missing values."""
    out = {}
    for k, v in row.items():
        if k == "step" or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        out[k] = float(v)
    return out


class TensorBoardSink:
    def __init__(self, cfg: RunConfig, run_dir: Path):
        require("tensorboard", "tensorboard", "train.loggers=['tensorboard']")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))
        self.writer.add_text("config", "```\n" + cfg.to_json() + "\n```", 0)

    def log(self, row: dict) -> None:
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, row["step"])
        self.writer.flush()  # evaluations are log-spaced and few: a kill loses none of them

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, cfg: RunConfig, run_dir: Path):
        wandb = require("wandb", "wandb", "train.loggers=['wandb']")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "groklab"),
            name=run_dir.name,
            dir=str(run_dir),
            config=cfg.to_dict(),
            mode=os.environ.get("WANDB_MODE", "offline"),  # no network unless asked for
            reinit="create_new",  # sweeps train many runs in one process
            settings=wandb.Settings(silent=True, console="off", save_code=False, disable_git=True, x_disable_stats=True),
        )

    def log(self, row: dict) -> None:
        # NaN/inf are kept: a diverged loss is a measurement too.
        self.run.log(_scalars(row), step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()


SINKS = {"tensorboard": TensorBoardSink, "wandb": WandbSink}


class Loggers:
    """The sinks `train.loggers` names, fanned out to as one; does nothing when there are none."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def log(self, row: dict) -> None:
        for sink in self.sinks:
            sink.log(row)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def open_loggers(cfg: RunConfig, run_dir: str | os.PathLike | None) -> Loggers:
    """Open the sinks of `cfg.train.loggers` in `run_dir` (checked here, not in the config, so that a
    config naming a sink still loads where its package is not installed)."""
    names = list(cfg.train.loggers)
    if not names:
        return Loggers([])
    if run_dir is None:
        raise ConfigError(f"train.loggers={names} write into the run directory, but out=None; set --out DIR, or use train.loggers=[]")
    run_dir = Path(run_dir)
    sinks: list[Sink] = []
    try:
        for name in names:
            sinks.append(SINKS[name](cfg, run_dir))
    except BaseException:
        Loggers(sinks).close()
        raise
    return Loggers(sinks)


def read_tensorboard(run_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in RUN/tensorboard: {tag: [(step, value), ...]} in file order (extra `tensorboard`)."""
    require("tensorboard", "tensorboard", "reading TensorBoard event files")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(run_dir) / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


__all__ = ["Loggers", "open_loggers", "read_tensorboard", "SINKS", "TensorBoardSink", "WandbSink"]
