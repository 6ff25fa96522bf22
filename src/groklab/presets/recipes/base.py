"""What every paper recipe shares: the scales, the preset directory, and `reproduce(name, scale, out)`.

A recipe is a function `recipe(ctx) -> None` that trains through `ctx.run(config)` (one `run()`) or
`ctx.sweep(base, grid, seeds)` (the sweep API), runs the analyses, draws its figures with
`groklab.report.preset_plots` through `ctx.figure`, writes tables with `ctx.table`, records the headline
numbers with `ctx.number` and the qualitative result as checks with `ctx.check`. It never trains on its
own. The preset directory it fills::

    OUT/
      preset.json        marker and index: preset, scale, paper, wall time, numbers, checks, figures, tables
      checks.json        {check name: {"passed": bool, "detail": str}}
      runs/<name>/       ordinary run directories (`groklab report` renders each on its own as well)
      sweeps/<name>/     ordinary sweep directories
      figures/*.png      one figure per question
      tables/*.csv
      report/index.html  the self-contained page (`groklab report OUT` rebuilds it)

Re-running a preset into the same directory reuses every finished run and sweep point and resumes
unfinished ones, so an interrupted `reproduce` loses little. A run or sweep is reused only when its saved
config is the one the recipe would train now (every field but `out` and the thread count; `train.device`
included): otherwise `reproduce` stops with a one-line error naming the changed fields, and `rerun=True`
(`groklab reproduce --rerun`) moves the old run or sweep into OUT/replaced/<UTC time>/ (nothing is deleted)
and trains it again.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from groklab.config import RunConfig
from groklab.errors import ConfigError
from groklab.store import atomic_write_text, json_safe

SCALES = ("quick", "full", "smoke")
"""`full`: the paper's setup; `quick`: scaled down to minutes on 2 CPU cores, still showing the result;
`smoke`: seconds, for tests of the machinery (its checks are not expected to pass)."""

PRESET_JSON, CHECKS_JSON = "preset.json", "checks.json"

SAME_RUN_FREE = frozenset({"out", "format_version", "train.threads", "train.loggers", "train.resume_every_s"})
"""Config fields a reused run may differ in: where it is written, the thread count and where progress is
logged change neither what it trains nor what it measures."""


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(old: dict, new: dict) -> list[str]:
    """Fields of a saved config (a config.json's dict) that `new` would change, as "field old → new"; both
    read through `RunConfig.from_dict`, so a field added to groklab since (with its default) is no change."""
    a = _flat(RunConfig.from_dict(dict(old)).to_dict())
    b = _flat(RunConfig.from_dict(dict(new)).to_dict())
    return [f"{k} {json.dumps(a.get(k), default=str)} → {json.dumps(b.get(k), default=str)}"
            for k in sorted(a.keys() | b.keys()) if k not in SAME_RUN_FREE and a.get(k) != b.get(k)]


@dataclass
class Recipe:
    name: str
    title: str
    paper: str
    fn: Callable[["Context"], None] = field(repr=False)
    """Builds the preset; its module's docstring is the documentation the report shows."""

    @property
    def doc(self) -> str:
        mod = sys.modules.get(self.fn.__module__)
        return inspect.cleandoc((mod.__doc__ if mod else None) or self.fn.__doc__ or "")


def _sweep_changes(path: Path, base: RunConfig, grid: dict[str, Any], seeds: Any, seed_fields: tuple[str, ...]) -> list[str]:
    """How the sweep saved at `path` differs from the one `base`, `grid` and `seeds` make (empty: the same
    points, by the names `groklab.sweep` gives configs)."""
    from groklab.sweep.spec import SweepSpec

    saved = json.loads((path / "sweep.json").read_text())
    old = SweepSpec.from_dict(saved)
    new = SweepSpec.build(base, grid, seeds, seed_fields=seed_fields)
    if [p[0] for p in old.points()] == [p[0] for p in new.points()]:
        return []
    changes = config_changes(old.base.to_dict(), new.base.to_dict())
    if old.grid != new.grid:
        changes.append(f"grid {json.dumps(old.grid, default=str)} → {json.dumps(new.grid, default=str)}")
    if old.seeds != new.seeds:
        changes.append(f"seeds {json.dumps(old.seeds, default=str)} → {json.dumps(new.seeds, default=str)}")
    return changes or ["the sweep's points"]


class Context:
    """The preset directory being filled, and the only way a recipe trains, draws and records."""

    def __init__(self, out: Path, scale: str, log: Callable[[str], None], workers: int | None = None, device: str = "cpu",
                 rerun: bool = False, early_stop: bool = True):
        self.out, self.scale, self.log, self.workers, self.device, self.rerun = out, scale, log, workers, device, rerun
        # early_stop=False trains every run its whole budget (train.stop_when dropped): the baseline that
        # benchmarks/fullscale.py measures early stopping against.
        self.early_stop = early_stop
        self._stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.numbers: dict[str, Any] = {}
        self.checks: dict[str, dict] = {}
        self.figures: list[dict] = []
        self.tables: list[dict] = []
        self.runs: list[str] = []
        self.sweeps: list[str] = []
        self.notes: list[str] = []

    def pick(self, **by_scale: Any) -> Any:
        """The value for this scale: `ctx.pick(full=100_000, quick=3000, smoke=50)`."""
        if self.scale not in by_scale:
            raise ConfigError(f"this recipe has no value for scale={self.scale!r}; scales: {', '.join(by_scale)}")
        return by_scale[self.scale]

    # --- training ---------------------------------------------------------------------------------------
    def _reuse_or_replace(self, path: Path, changes: list[str], what: str) -> None:
        """An existing run or sweep at `path` whose config differs (`changes`): refuse, or with `rerun` move it
        into OUT/replaced/<UTC time>/ so that it trains again."""
        if not changes:
            return
        rel = path.relative_to(self.out)
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        if not self.rerun:
            raise ConfigError(f"{what} {str(path)!r} was trained with a different config ({shown}); pass --rerun "
                              f"(reproduce(..., rerun=True)) to train it again, or choose another --out")
        aside = self.out / "replaced" / self._stamp / rel
        aside.parent.mkdir(parents=True, exist_ok=True)
        path.rename(aside)
        self.log(f"  {rel}: config changed ({shown}); the old {what} moved to {aside}")

    def run(self, cfg: RunConfig, name: str, threads: int | None = 1):
        """Train `cfg` into runs/<name> with `groklab.run`; a finished run there is loaded, not retrained,
        and an unfinished one is resumed. Returns the `groklab.store.Run` read back. One thread by default:
        these models are too small to gain from more, and on a busy machine a second thread costs up to 10x."""
        from groklab.store import load_run
        from groklab.train import resume, run

        path = self.out / "runs" / name
        updates: dict[str, Any] = {"out": str(path), "train.device": self.device}
        if not self.early_stop:
            updates["train.stop_when"] = None
        if threads is not None:
            updates["train.threads"] = threads
        cfg = cfg.replace(**updates)
        if (path / "config.json").is_file():
            self._reuse_or_replace(path, config_changes(json.loads((path / "config.json").read_text()), cfg.to_dict()), "run")
        if (path / "summary.json").is_file():
            self.log(f"  {name}: finished earlier, reusing {path}")
        elif (path / "config.json").is_file():
            self.log(f"  {name}: resuming {path}")
            resume(path)
        else:
            t0 = time.perf_counter()
            result = run(cfg)
            s = result.summary
            self.log(f"  {name}: train 99% at {s.get('train_acc_99_step')}, val 99% at {s.get('val_acc_99_step')} "
                     f"({cfg.train.steps} steps, {time.perf_counter() - t0:.1f} s)")
        self.runs.append(str(path.relative_to(self.out)))
        return load_run(path)

    def sweep(self, base: RunConfig, grid: dict[str, Any], seeds: int | list[int] = 1, name: str = "sweep", seed_fields: tuple[str, ...] | None = None):
        """Run a grid through `groklab.sweep.sweep` into sweeps/<name> (finishing it if it exists) and
        return its table (a DataFrame, one row per run; `run_dir` leads to each run)."""
        from groklab.sweep import sweep
        from groklab.sweep.spec import DEFAULT_SEED_FIELDS

        path = self.out / "sweeps" / name
        t0 = time.perf_counter()
        base = base.replace(**{"out": None, "train.device": self.device, **({} if self.early_stop else {"train.stop_when": None})})
        if (path / "sweep.json").is_file():
            self._reuse_or_replace(path, _sweep_changes(path, base, grid, seeds, seed_fields or DEFAULT_SEED_FIELDS), "sweep")
        res = sweep(base, grid, seeds, out=path, resume=(path / "sweep.json").is_file(), workers=self.workers,
                    seed_fields=seed_fields or DEFAULT_SEED_FIELDS, progress=False)
        if not res.complete:
            failed = {k: v for k, v in res.outcomes.items() if v not in ("done", "skipped")}
            raise RuntimeError(f"sweep {path} did not finish: {failed}")
        df = res.table()
        self.log(f"  sweep {name}: {len(df)} runs ({res.executor}), {time.perf_counter() - t0:.1f} s")
        self.sweeps.append(str(path.relative_to(self.out)))
        return df

    # --- recording -------------------------------------------------------------------------------------
    def figure(self, draw: Callable[..., Path], *args: Any, name: str, question: str, caption: str = "", **kw: Any) -> Path:
        """Draw one figure (a `preset_plots` function taking `path=`) answering `question`."""
        path = draw(*args, path=self.out / "figures" / f"{name}.png", **kw)
        self.figures.append({"file": str(Path(path).relative_to(self.out)), "question": question, "caption": caption})
        return path

    def table(self, rows: list[dict] | Any, name: str, title: str) -> Path:
        import pandas as pd

        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        path = self.out / "tables" / f"{name}.csv"
        atomic_write_text(path, df.to_csv(index=False))
        self.tables.append({"file": str(path.relative_to(self.out)), "title": title})
        return path

    def number(self, key: str, value: Any) -> Any:
        self.numbers[key] = json_safe(value)
        return value

    def check(self, name: str, passed: bool, detail: str) -> bool:
        """Record a qualitative check of the paper's result (e.g. "val 99% after train 99%")."""
        self.checks[name] = {"passed": bool(passed), "detail": detail}
        self.log(f"  check {'PASS' if passed else 'FAIL'}: {name}: {detail}")
        return bool(passed)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.log(f"  note: {text}")


def fmt_step(step: Any) -> str:
    return "never" if step is None or (isinstance(step, float) and math.isnan(step)) else str(int(step))


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation: Pearson's of the average ranks (ties share their mean rank), with pandas alone
    (its `method="spearman"` calls SciPy, which the core install does not have); NaN when a side is constant."""
    import pandas as pd

    return float(pd.Series(a, dtype=float).rank().corr(pd.Series(b, dtype=float).rank()))


def reproduce_recipe(recipe: Recipe, scale: str = "quick", out: str | os.PathLike | None = None, *, workers: int | None = None,
                     device: str = "cpu", report: bool = True, log: Callable[[str], None] | None = print,
                     rerun: bool = False, early_stop: bool = True) -> Path:
    """`reproduce` (groklab.presets.recipes) of a Recipe object rather than a name: it lives here, below the
    registry of recipes, so that this module never imports the package that imports it."""
    from groklab.version import __version__

    name = recipe.name
    if scale not in SCALES:
        raise ConfigError(f"scale={scale!r} is not allowed; choose one of: {', '.join(SCALES)}")
    d = Path(out) if out is not None else Path("runs") / "reproduce" / f"{name}-{scale}"
    if d.exists() and any(d.iterdir()) and not (d / PRESET_JSON).is_file() and not (d / "runs").is_dir() and not (d / "sweeps").is_dir():
        raise ConfigError(f"{str(d)!r} exists and is not a preset directory; choose another --out")
    if (d / PRESET_JSON).is_file():
        saved = json.loads((d / PRESET_JSON).read_text())
        if saved.get("preset") != name or saved.get("scale") != scale:
            raise ConfigError(f"{str(d)!r} holds preset {saved.get('preset')!r} at scale {saved.get('scale')!r}; choose another --out")
    d.mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: None)
    say(f"reproduce {name} ({recipe.title}), scale {scale}, into {d}")
    ctx = Context(d, scale, say, workers=workers, device=device, rerun=rerun, early_stop=early_stop)
    t0 = time.perf_counter()
    recipe.fn(ctx)
    wall = time.perf_counter() - t0
    import torch

    meta = {
        "preset": name, "title": recipe.title, "paper": recipe.paper, "scale": scale, "early_stop": early_stop, "wall_time_s": wall,
        "numbers": ctx.numbers, "checks": ctx.checks, "figures": ctx.figures, "tables": ctx.tables,
        "runs": ctx.runs, "sweeps": ctx.sweeps, "notes": ctx.notes, "doc": recipe.doc,
        "environment": {"groklab": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "device": device,
                        "machine": platform.machine(), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                        # what else kept the machine busy at the end (the wall time means little without it)
                        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }
    atomic_write_text(d / CHECKS_JSON, json.dumps(json_safe(ctx.checks), indent=2) + "\n")
    atomic_write_text(d / PRESET_JSON, json.dumps(json_safe(meta), indent=2) + "\n")
    passed = sum(c["passed"] for c in ctx.checks.values())
    say(f"{name}: {passed}/{len(ctx.checks)} checks passed in {wall:.1f} s")
    if report:
        from groklab.report.html import build_report

        say(f"report: {build_report(d)}")
    return d
