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
      tensorboard/, wandb/           optional copies of the metrics stream (`train.loggers`; train/loggers.py)

Reading the weights without groklab: docs/checkpoints.md and examples/load_checkpoint.py.

Every file is written to a temporary name in the same directory and renamed into place, so a kill at any
moment leaves either the old or the new file, never half of one; it gets the mode an ordinary new file would
(0666 less the umask), not the temporary file's 0600. Loading never executes code: JSON and safetensors only.

Resume safety: a finished run (summary.json) is never written again by a resume; a run with metrics but no
resume state, or whose config.json changed since the resume state was saved (`config_changes`), is refused
instead of restarted; `set_results_aside` is the explicit restart (`groklab resume RUN --restart`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from groklab.config import RunConfig
from groklab.errors import ConfigError, RunDirError, require

CONFIG, METRICS, SUMMARY, CKPT_DIR, RESUME = "config.json", "metrics.jsonl", "summary.json", "checkpoints", "resume.safetensors"
METRICS_PARQUET = "metrics.parquet"


# --- atomic writes ---------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only be read by setting it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def public_mode(tmp: str | os.PathLike) -> None:
    """Give a mkstemp file (always 0600) the mode an ordinary new file gets: 0666 less the umask, so colleagues
    and web servers can read a shared run or report as they can its other files."""
    os.chmod(tmp, 0o666 & ~current_umask())


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Write a file through `write(tmp_path)` to a fresh temporary name beside it, then rename it into place with
    the umask's mode; on any failure the temporary file is removed and `path` is untouched. Every file groklab
    writes goes through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_atomic = atomic_write  # the older private name


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def write_parquet(frame, path: str | os.PathLike) -> Path:
    """Write a DataFrame to parquet atomically (a reader never sees half a file); needs pyarrow (`parquet`)."""
    require("pyarrow", "parquet", "writing parquet")
    path = Path(path)
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return path


def json_safe(x: Any) -> Any:
    """`x` as plain JSON: keys as strings, tensors and numpy arrays as lists, scalars unwrapped, non-finite floats
    as null (JSON has no NaN or inf), anything else as its text."""
    if isinstance(x, dict):
        return {k if isinstance(k, str) else str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "tolist") and callable(x.tolist) and hasattr(x, "ndim"):
        x = x.tolist()  # torch / numpy arrays and scalars
        if isinstance(x, list):
            return json_safe(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)  # a path, an enum, ...: its text rather than a TypeError halfway through a file


# --- checks before a run writes anything --------------------------------------------------------------
def check_out_path(out: str | os.PathLike) -> None:
    """One-line RunDirError when `out` cannot become a run directory: an existing file, a path under a file,
    or a folder this process cannot write into. Called before any training."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise RunDirError(f"out={str(out)!r} is an existing file, not a directory; choose a new directory for the run")
    anc = p
    while not anc.exists():  # the nearest existing ancestor is where mkdir will write
        if anc.parent == anc:
            break
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise RunDirError(f"out={str(out)!r} lies under {str(anc)!r}, which is a file, not a directory; choose another path")
    if anc.is_dir() and not os.access(anc, os.W_OK | os.X_OK):
        raise RunDirError(f"out={str(out)!r}: cannot write into {str(anc)!r} (permission denied); choose a directory you can write to")


# Fields a resume may change without mixing two runs: where the directory lives (it may have been moved) and
# how the same computation is carried out (threads, device, eval chunk size, extra loggers, resume cadence).
# Results can differ in the last bits across device or threads, never in what is trained.
RESUME_FREE_FIELDS = frozenset({
    "out", "train.threads", "train.device", "train.eval_batch_size", "train.loggers", "train.resume_every_s",
})


def flatten_dict(d: dict, prefix: str = "", keep_empty: bool = False) -> dict[str, Any]:
    """Nested dicts as one level of dotted keys ({"task": {"p": 97}} → {"task.p": 97}). An empty nested dict
    disappears, or stays as the value {} with `keep_empty` (the resume fingerprint keeps it)."""
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and (v or not keep_empty):
            flat.update(flatten_dict(v, key + ".", keep_empty))
        else:
            flat[key] = v
    return flat


def config_fingerprint(cfg: RunConfig) -> dict[str, Any]:
    """What the resume state keeps of the config: the fields a resume must not change, and their hash."""
    fields = {k: v for k, v in flatten_dict(cfg.to_dict(), keep_empty=True).items() if k not in RESUME_FREE_FIELDS and k != "format_version"}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    return {"hash": digest, "fields": fields}


def config_changes(saved: dict[str, Any], cfg: RunConfig) -> list[str]:
    """Fields whose value differs between a resume state's fingerprint and `cfg`, as "name old → new".
    Fields only one side knows (added to groklab since the run started) are not compared."""
    now = config_fingerprint(cfg)
    if saved.get("hash") == now["hash"]:
        return []
    old_fields, new_fields = saved.get("fields", {}), now["fields"]
    return [
        f"{k} {json.dumps(old_fields[k], default=str)} → {json.dumps(new_fields[k], default=str)}"
        for k in sorted(old_fields.keys() & new_fields.keys())
        if old_fields[k] != new_fields[k]
    ]


RESULT_FILES = ("metrics.jsonl", "summary.json", "checkpoints", "curves.png", "metrics.parquet", "tensorboard", "wandb")


def set_results_aside(store: "RunDir") -> Path | None:
    """The explicit restart: move a run's results into RUN/restarted-<UTC time>/ (nothing is deleted), leaving
    config.json, so the run trains again from step 0. The summary moves first: a kill part-way leaves a run
    that is unfinished, never old metrics beside a summary. Returns the folder (None when there was nothing)."""
    present = [n for n in (SUMMARY, *[n for n in RESULT_FILES if n != SUMMARY]) if (store.path / n).exists()]
    if not present:
        return None
    base = time.strftime("restarted-%Y%m%d-%H%M%S", time.gmtime())
    aside, n = store.path / base, 1
    while aside.exists():
        n += 1
        aside = store.path / f"{base}.{n}"
    aside.mkdir()
    for name in present:
        os.replace(store.path / name, aside / name)
    return aside


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _clean(row: dict) -> dict:
    # JSON has no NaN/inf; store them as null so every reader can parse the file.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def censored_text(step: int | None, stop_reason: str | None, stopped_step: int | None) -> tuple[bool | None, str]:
    """(censored, text) for a steps-to-99% value: (False, "1234") when it crossed; (True, "> N") when the run
    ended at step N without crossing; (True, "diverged at N") when its loss diverged first; (None, "") while
    the run is unfinished."""
    if stop_reason is None:
        return None, ""
    if step is not None:
        return False, str(int(step))
    return True, f"diverged at {stopped_step}" if stop_reason == "diverged" else f"> {stopped_step}"


def crossing_text(summary: dict | None, key: str) -> str:
    """summary.json's `{key}_acc_99_step` for people: "1234", "> N" (censored), "diverged at N", or "unfinished"."""
    if summary is None:
        return "unfinished"
    return censored_text(summary.get(f"{key}_acc_99_step"), summary.get("stop_reason", "budget"),
                         summary.get("stopped_step", summary.get("steps")))[1]


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
        return write_parquet(self.metrics, path if path is not None else self.path / METRICS_PARQUET)

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
        model = build_model(self.config.model, data.n_elements, data.n_classes, data.d_input, data.n_inputs)
        weights = self.state_dict(step)
        # the float dtype of the weights (BatchNorm's step counter is an integer buffer)
        model.to(next(v.dtype for v in weights.values() if v.is_floating_point())).load_state_dict(weights)
        return model.eval()


def load_run(path: str | os.PathLike) -> Run:
    rd = RunDir(Path(path))
    cfg = rd.read_config()
    return Run(path=rd.path, config=cfg, rows=rd.read_metrics(), summary=rd.read_summary())
