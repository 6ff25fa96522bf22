"""The run directory: the contract between training and everything after it.

Layout (format_version 1)::

    RUN/
      config.json                    the RunConfig, with "format_version"; loads back with RunConfig.from_json
      metrics.jsonl                  one JSON object per evaluation, append-only; the source of truth
      checkpoints/step_00001234.safetensors   model weights at a log-spaced step (keys: parameter names,
                                     e.g. "blocks.0.attn.W_Q"; metadata: {"step": "1234"})
      checkpoints/resume.safetensors the latest state to resume from: "model.*" weights, "optim.*" optimizer
                                     state, "rng.*" generator states, "hook.*" intervention state;
                                     metadata "state" = JSON with the step, elapsed time and optimizer groups
      summary.json                   written once, at the end: final metrics, crossing steps, wall time,
                                     device, library versions
      curves.png                     accuracy and loss against steps (`groklab plot`)
      metrics.parquet                optional: the metrics as a table (`Run.to_parquet()`, needs pyarrow)
      tensorboard/, wandb/           optional copies of the metrics stream (`train.loggers`; interop/loggers.py)

Reading the weights without groklab: docs/checkpoints.md and examples/load_checkpoint.py.

Every file is written to a temporary name in the same directory and renamed into place, so a kill at any
moment leaves either the old or the new file, never half of one. Loading never executes code: JSON and
safetensors only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from groklab.config import RunConfig
from groklab.errors import ConfigError, RunDirError

CONFIG, METRICS, SUMMARY, CKPT_DIR, RESUME = "config.json", "metrics.jsonl", "summary.json", "checkpoints", "resume.safetensors"


# --- atomic writes ---------------------------------------------------------------------------------
def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    _atomic(Path(path), write)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _clean(row: dict) -> dict:
    # JSON has no NaN/inf; store them as null so every reader can parse the file.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


# --- the run directory -----------------------------------------------------------------------------
@dataclass
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # config
    def write_config(self, cfg: RunConfig) -> None:
        atomic_write_text(self.path / CONFIG, cfg.to_json() + "\n")

    def read_config(self) -> RunConfig:
        f = self.path / CONFIG
        if not self.path.is_dir():
            raise RunDirError(f"run directory {str(self.path)!r} does not exist")
        if not f.is_file():
            raise RunDirError(f"{str(self.path)!r} is not a groklab run directory: it has no {CONFIG}")
        try:
            return RunConfig.from_json(f.read_text())
        except (json.JSONDecodeError, ConfigError) as e:
            raise RunDirError(f"{f} is corrupt or not a groklab config: {e}") from None

    # metrics
    def append_metrics(self, row: dict) -> None:
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(_clean(row), default=_json_default) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        f = self.path / METRICS
        if not f.exists():
            return []
        rows = []
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break  # a line cut short by a kill mid-append; the resumed run rewrites it
                raise RunDirError(f"{f} line {i + 1} is corrupt: {line[:80]!r}") from None
        return rows

    def rewrite_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.path / METRICS, "".join(json.dumps(_clean(r), default=_json_default) + "\n" for r in rows))

    # checkpoints
    @property
    def ckpt_dir(self) -> Path:
        return self.path / CKPT_DIR

    def save_weights(self, step: int, model: torch.nn.Module) -> None:
        atomic_save_tensors(self.ckpt_dir / f"step_{step:08d}.safetensors", model.state_dict(), {"step": str(step)})

    def checkpoint_steps(self) -> list[int]:
        if not self.ckpt_dir.is_dir():
            return []
        return sorted(int(f.stem.split("_")[1]) for f in self.ckpt_dir.glob("step_*.safetensors"))

    def load_weights(self, step: int | None = None) -> dict[str, torch.Tensor]:
        steps = self.checkpoint_steps()
        if not steps:
            raise RunDirError(f"{str(self.path)!r} has no checkpoints")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise RunDirError(f"{str(self.path)!r} has no checkpoint at step {step}; it has steps {steps}")
        return _load(self.ckpt_dir / f"step_{step:08d}.safetensors")[0]

    def save_resume(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        atomic_save_tensors(self.ckpt_dir / RESUME, tensors, {"state": json.dumps(state, default=_json_default)})

    def load_resume(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        f = self.ckpt_dir / RESUME
        if not f.exists():
            return None
        tensors, meta = _load(f)
        try:
            return tensors, json.loads(meta["state"])
        except (KeyError, json.JSONDecodeError):
            raise RunDirError(f"{f} is corrupt: its state metadata is missing or unreadable") from None

    # summary
    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.path / SUMMARY, json.dumps(_clean(summary), indent=2, default=_json_default) + "\n")

    def read_summary(self) -> dict | None:
        f = self.path / SUMMARY
        if not f.exists():
            return None
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError:
            raise RunDirError(f"{f} is corrupt") from None


def _load(f: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as sf:
            meta = sf.metadata() or {}
        return load_file(str(f)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"checkpoint {f} is corrupt or unreadable: {e}") from None


# --- reading a finished (or running) run back ------------------------------------------------------
@dataclass
class Run:
    """A run directory read back: `config`, `metrics` (a pandas DataFrame, one row per evaluation),
    `summary` (None while unfinished), and its checkpoints."""

    path: Path
    config: RunConfig
    rows: list[dict] = field(repr=False)
    summary: dict | None

    @property
    def metrics(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_parquet(self, path: str | os.PathLike | None = None) -> Path:
        """Write the metrics to parquet (default RUN/metrics.parquet; needs pyarrow: `groklab[parquet]`)."""
        from groklab.interop.dataframes import metrics_to_parquet

        return metrics_to_parquet(self, path)

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def checkpoint_steps(self) -> list[int]:
        return RunDir(self.path).checkpoint_steps()

    def state_dict(self, step: int | None = None) -> dict[str, torch.Tensor]:
        """Model weights at a checkpoint step (the last one by default)."""
        return RunDir(self.path).load_weights(step)

    def load_model(self, step: int | None = None) -> torch.nn.Module:
        """The model rebuilt from the config, with the weights of checkpoint `step` (the last by default)."""
        from groklab.models import build_model
        from groklab.tasks import build_dataset

        data = build_dataset(self.config.task)
        model = build_model(self.config.model, data.n_elements, data.n_classes, data.d_input)
        weights = self.state_dict(step)
        # the float dtype of the weights (BatchNorm's step counter is an integer buffer)
        model.to(next(v.dtype for v in weights.values() if v.is_floating_point())).load_state_dict(weights)
        return model.eval()


def load_run(path: str | os.PathLike) -> Run:
    rd = RunDir(Path(path))
    cfg = rd.read_config()
    return Run(path=rd.path, config=cfg, rows=rd.read_metrics(), summary=rd.read_summary())
