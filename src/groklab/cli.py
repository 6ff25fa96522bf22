"""The `groklab` command. Thin: flags come from the config dataclasses (tyro); the work is `run(config)`."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional

import tyro

from groklab.catalog import ANALYSES
from groklab.config import RunConfig
from groklab.errors import GroklabError

TrainFlags = Annotated[RunConfig, tyro.conf.arg(name="")]  # --task.op, not --config.task.op


class _Progress:
    """A live bar with step, train and validation accuracy; silent with --quiet."""

    def __init__(self, total: int, quiet: bool, title: str):
        self.total, self.quiet = total, quiet
        self._last = 0.0
        self.row: dict = {}
        if quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[acc]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
        )
        self.task = self.bar.add_task(title, total=total, acc="")

    def __enter__(self) -> "_Progress":
        if not self.quiet:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.quiet:
            self.bar.stop()

    def __call__(self, step: int, row: dict | None) -> None:
        if row is not None:
            self.row = row
        if self.quiet:
            return
        now = time.perf_counter()
        if row is None and now - self._last < 0.1 and step < self.total:
            return  # redraw at most ten times a second: the bar must not slow training
        self._last = now
        acc = f"train {100 * self.row.get('train_acc', 0):5.1f}%  val {100 * self.row.get('val_acc', 0):5.1f}%" if self.row else ""
        self.bar.update(self.task, completed=step, acc=acc)


def _report(result, quiet: bool) -> None:
    if result.interrupted:
        print(f"stopped at step {result.rows[-1]['step'] if result.rows else 0}; continue with: groklab resume {result.run_dir}", file=sys.stderr)
        raise SystemExit(130)
    s = result.summary
    if s.get("stop_reason") == "diverged":  # the run directory is complete, but its model is NaN: exit 3
        print(f"groklab: warning: the training loss stopped being finite at step {s['stopped_step']} (diverged); "
              "the run stopped there; try a smaller --optim.lr", file=sys.stderr)
        if result.run_dir is not None:
            _plot(result.run_dir)  # the curves up to the divergence
        raise SystemExit(3)
    if quiet:
        return
    final = s["final"]
    if s.get("stop_reason") == "condition":
        print(f"stopped at step {s['stopped_step']} of {s['steps']}: {result.config.train.stop_when} held for "
              f"{result.config.train.stop_patience} steps (train.stop_when)")

    def fmt(step):
        return "never" if step is None else f"step {step}"

    print(
        f"train accuracy ≥ 99%: {fmt(s['train_acc_99_step'])}; validation accuracy ≥ 99%: {fmt(s['val_acc_99_step'])}\n"
        f"final: train {100 * final['train_acc']:.1f}%, validation {100 * final['val_acc']:.1f}%; "
        f"{s.get('stopped_step', s['steps'])} steps in {s['wall_time_s']:.1f} s on {s['device']}"
    )
    if result.run_dir is not None:
        print(f"run directory: {result.run_dir}")


def _train(cfg: RunConfig, quiet: bool, resume_dir: Optional[str] = None, restart: bool = False):
    from groklab.train import resume, run

    with _Progress(cfg.train.steps, quiet, "training") as progress:
        if resume_dir is not None:
            return resume(resume_dir, on_step=progress, restart=restart)
        return run(cfg, on_step=progress)


def _plot(run_dir: str | Path, out: str | Path | None = None) -> Path:
    from groklab.report import plot_curves
    from groklab.store import load_run

    r = load_run(run_dir)
    s = r.summary or {}
    cfg = r.config
    from groklab.tasks.registry import describe

    title = f"{describe(cfg.task)}, {cfg.model.arch}"
    crossings = {"train 99%": s.get("train_acc_99_step"), "val 99%": s.get("val_acc_99_step")}
    return plot_curves(r.rows, out or Path(run_dir) / "curves.png", title=title, crossings=crossings)


# --- commands ------------------------------------------------------------------------------------------
def train(config: TrainFlags, quiet: bool = False) -> None:
    """Train one run; with --out, write its run directory (config, metrics, checkpoints, summary, curves.png)."""
    result = _train(config, quiet)
    _report(result, quiet)
    if result.run_dir is not None:
        _plot(result.run_dir)


def resume(run_dir: tyro.conf.Positional[str], quiet: bool = False, restart: bool = False) -> None:
    """Continue a run that was stopped (Ctrl-C, a crash, kill -9) from its last saved state; a finished run is
    left as it is. --restart trains it again from step 0 with its config.json, after moving its old results
    into RUN/restarted-<time>/ (nothing is deleted)."""
    from groklab.store import RunDir

    store = RunDir(Path(run_dir))
    cfg = store.read_config()
    finished = not restart and store.read_summary() is not None
    result = _train(cfg, quiet, resume_dir=run_dir, restart=restart)
    if finished and not quiet:
        print(f"{run_dir} is finished; nothing to resume (groklab resume {run_dir} --restart trains it again)")
    _report(result, quiet)
    if not finished or not (store.path / "curves.png").exists():
        _plot(result.run_dir)


def plot(run_dir: tyro.conf.Positional[str], out: Optional[str] = None) -> None:
    """Draw curves.png: accuracy and loss against steps on a log axis."""
    print(_plot(run_dir, out))


def ops() -> None:
    """List the operations available, by task group."""
    from groklab.tasks.meta import MODULAR_OPS, PERMUTATION_OPS

    print("task.group=modular (mod p; --task.p):")
    for op in MODULAR_OPS.values():
        print(f"  {op.name:<24} {op.description}{'  [p must be prime]' if op.needs_prime else ''}")
    print("task.group=permutation (S_n; --task.n, default 5):")
    for op in PERMUTATION_OPS.values():
        print(f"  {op.name:<24} {op.description}")


def demo(out: str = "runs/demo", steps: int = 4000, seed: int = 0, quiet: bool = False) -> None:
    """A real grokking run in well under a minute on 2 CPU cores (see groklab.presets.demo); writes curves.png."""
    from groklab import presets
    from groklab.store import RunDir

    if (Path(out) / "config.json").exists():
        import shutil

        RunDir(Path(out)).read_config()  # refuse to delete anything that is not a run directory
        shutil.rmtree(out)
    cfg = presets.demo(out=out, steps=steps, seed=seed)
    if not quiet:
        print("demo: x+y mod 59, one-hot MLP (width 256, quadratic), half the table for training, AdamW wd 0.3")
    result = _train(cfg, quiet)
    _report(result, quiet)
    path = _plot(result.run_dir)
    if not quiet:
        print(f"plot: {path}")


def tasks() -> None:
    """List the task groups (--task.group) with a description, the paper, and the task fields they use."""
    from groklab.tasks.registry import TASKS

    for t in TASKS.values():
        print(f"{t.group:<12} {t.description}\n{'':<12} paper: {t.paper}\n{'':<12} fields: {t.fields}")


def models() -> None:
    """List the models (--model.arch) with a description and the paper."""
    from groklab.catalog import MODELS

    for m in MODELS.values():
        print(f"{m.arch:<12} {m.description}\n{'':<12} paper: {m.paper}")


def report(path: tyro.conf.Positional[str]) -> None:
    """Write PATH/report/index.html: a self-contained page (config, summary, figures, tables, environment)
    for a run or a sweep directory; it opens from the file system with no network."""
    from groklab.report.html import build_report

    print(build_report(path))


AnalysisName = Literal[("all", *ANALYSES)]  # type: ignore[valid-type]  # the choices are groklab.catalog.ANALYSES


def analyze(
    run_dir: tyro.conf.Positional[str], what: tuple[AnalysisName, ...] = ("all",), quiet: bool = False,
    ntk_samples: int = 128, ntk_split: Literal["train", "val"] = "val", htsr_min_dim: int = 10,
    llc_lr: float = 1e-3, llc_localization: float = 100.0, llc_nbeta: Optional[float] = None, llc_chains: int = 4,
    llc_draws: int = 200, llc_burnin: int = 0, llc_batch_size: int = 32, llc_checkpoints: int = 8, llc_seed: int = 100,
) -> None:
    """Analyse a run over every checkpoint: crossing steps and phase, Fourier spectra and key frequencies,
    neuron IPR, pruning by IPR, progress measures, PCA/t-SNE/RQI, sharpness; named only (not in `all`): `ntk`
    (empirical NTK distance and target alignment on --ntk-samples inputs), `htsr` (power-law exponent of the
    weight spectra, correlation traps), `llc` (local learning coefficient by SGLD, needs `groklab[llc]`: step
    size ε --llc-lr, localization γ, nβ (default batch/log batch), chains, draws, burn-in), `tree` (tree projections
    of a Dyck run: t-score, span invariance, parse F1; Murty et al.). Writes
    RUN_DIR/analysis/ (tables *.csv, figures *.png, summary.json); see docs/analyses.md."""
    from groklab.analysis import run_analysis
    from groklab.report.analysis_plots import draw_analysis

    llc = dict(lr=llc_lr, localization=llc_localization, nbeta=llc_nbeta, chains=llc_chains, draws=llc_draws, burnin=llc_burnin,
               batch_size=llc_batch_size, checkpoints=llc_checkpoints, seed=llc_seed)
    summary = run_analysis(run_dir, what, ntk_samples=ntk_samples, ntk_split=ntk_split, htsr_min_dim=htsr_min_dim, llc=llc,
                           log=None if quiet else print)
    draw_analysis(run_dir, summary)
    if not quiet:
        print(f"wrote {len(summary['files'])} files to {Path(run_dir) / 'analysis'}")


def _load_base(base: Optional[str], sets: tuple[str, ...]) -> Optional[RunConfig]:
    """--base: a JSON config file (a run's config.json works) or a preset name; --set FIELD=VALUE on top."""
    from groklab.errors import ConfigError

    if base is None and not sets:
        return None
    if base is None:
        cfg = RunConfig()
    elif Path(base).is_file():
        cfg = RunConfig.from_json(Path(base).read_text())
    else:
        from groklab import presets

        if base not in presets.CONFIGS:
            raise ConfigError(f"--base {base!r} is neither a JSON file nor a preset config; choose one of: {', '.join(presets.CONFIGS)}")
        cfg = presets.CONFIGS[base]()
    if sets:
        from groklab.sweep.spec import parse_assignment, parse_values

        overrides = {}
        for a in sets:
            key, text = parse_assignment(a)
            values = parse_values(text, key)
            overrides[key] = values[0] if len(values) == 1 else values
        cfg = cfg.replace(**overrides)
    return cfg.replace(out=None)


def sweep(
    out: str,
    base: Optional[str] = None,
    set: tyro.conf.UseAppendAction[list[str]] = [],  # noqa: A002 (the flag is --set)
    grid: tyro.conf.UseAppendAction[list[str]] = [],
    random: tyro.conf.UseAppendAction[list[str]] = [],
    samples: int = 0,
    random_seed: int = 0,
    seeds: int = 1,
    seed_fields: tuple[str, ...] = ("train.seed", "task.seed"),
    executor: Literal["auto", "local", "batched", "ray", "slurm"] = "auto",
    workers: Optional[int] = None,
    address: Optional[str] = None,
    cluster_option: tyro.conf.UseAppendAction[list[str]] = [],
    resume: bool = False,
    retries: int = 2,
    quiet: bool = False,
) -> None:
    """Run a sweep: --base my.json (or a preset name) --grid task.train_frac=0.2:0.8:7 --grid
    optim.weight_decay=0,0.1,1 --seeds 3 --out DIR. Ranges: a:b:n (linear), a:b:n:log; lists: v1,v2.
    --set FIELD=VALUE changes the base; --random FIELD=a:b[:log] or =v1,v2 with --samples N.
    --executor auto|local|batched|ray|slurm (--address for a Ray cluster; --cluster-option KEY=VALUE for
    Slurm, e.g. slurm_partition=gpu, timeout_min=120, runs_per_job=4); --resume finishes only what is missing.
    Writes DIR/sweep.json, DIR/runs/<id>/ per point, and DIR/table.csv at the end."""
    from groklab.sweep import sweep as run_sweep

    cfg = _load_base(base, tuple(set))
    given = cfg is not None or bool(grid) or bool(random)
    res = run_sweep(
        cfg if given else None, list(grid) if given else None, seeds, out=out, random=list(random) or None, samples=samples,
        random_seed=random_seed, seed_fields=tuple(seed_fields), executor=executor, workers=workers, address=address,
        cluster_options=_cluster_options(cluster_option), resume=resume, retries=retries, progress=not quiet,
    )
    df = res.table()
    if not quiet:
        print(f"table: {Path(out) / 'table.csv'} ({len(df)} runs)")
    if not res.complete:
        raise SystemExit(1 if any(o.startswith("failed") for o in res.outcomes.values()) else 130)


def _cluster_options(items: list[str]) -> dict | None:
    from groklab.sweep.slurm_exec import parse_options

    return parse_options(items) if items else None


def table(sweep_dir: tyro.conf.Positional[str], quiet: bool = False) -> None:
    """Write DIR/table.csv (and table.parquet with pyarrow) for a sweep: one row per run, config fields and
    summary; and DIR/figures/: steps to 99% against each swept field, the phase diagram of two."""
    from groklab.report.sweep_plots import sweep_figures
    from groklab.sweep import sweep_table

    df = sweep_table(sweep_dir)
    figures = sweep_figures(sweep_dir, df)
    if quiet:
        return
    # the *_acc_99 text columns: a step, "> N" when the run ended without crossing (censored), or "diverged at N"
    cols = [c for c in ["id", "status", *df.columns[2:8], "train_acc_99", "val_acc_99", "final.val_acc"] if c in df.columns]
    print(df[list(dict.fromkeys(cols))].to_string(index=False, max_rows=40))
    print(f"table: {Path(sweep_dir) / 'table.csv'} ({len(df)} runs, {int((df['status'] == 'done').sum())} done)")
    for f in figures:
        print(f"figure: {f}")


PresetName = Literal["nanda2023", "doshi2023", "prieto2025", "liu2022", "power2022", "grokfast2024", "omnigrok2023", "parity2022", "varma2023", "kumar2023", "murty2023", "wang2024"]  # groklab.presets.recipes.RECIPES


def reproduce(
    preset: tyro.conf.Positional[PresetName],
    scale: Literal["quick", "full", "smoke"] = "quick",
    out: Optional[str] = None,
    workers: Optional[int] = None,
    device: Literal["cpu", "cuda", "auto"] = "cpu",
    quiet: bool = False,
    rerun: bool = False,
) -> None:
    """Reproduce a paper's setup: train its runs and sweeps, run the analyses, draw one figure per question,
    check the paper's qualitative result (OUT/checks.json) and write OUT/report/index.html. --scale quick:
    minutes on 2 CPU cores; full: the paper's sizes; smoke: seconds (tests the machinery only). OUT
    defaults to runs/reproduce/PRESET-SCALE; re-running reuses finished runs whose config is unchanged (a
    changed one is an error naming the fields; --rerun moves it to OUT/replaced/ and trains it again)."""
    import json

    from groklab.presets.recipes import reproduce as run_recipe

    d = run_recipe(preset, scale, out, workers=workers, device=device, log=None if quiet else print, rerun=rerun)
    checks = json.loads((d / "checks.json").read_text())
    failed = [k for k, c in checks.items() if not c["passed"]]
    if failed and scale != "smoke":
        print(f"groklab: {len(failed)} check(s) did not hold: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


from groklab.cli_commands import compare, ls  # noqa: E402  (light: their heavy imports are inside)

COMMANDS: dict[str, Callable] = {"train": train, "resume": resume, "plot": plot, "ops": ops, "demo": demo, "tasks": tasks, "models": models, "analyze": analyze, "report": report, "sweep": sweep, "table": table, "ls": ls, "compare": compare, "reproduce": reproduce}


class _ParseError(GroklabError):
    """A flag tyro could not parse (a bad number, an unknown choice or flag), said in one line."""


def _one_line(event) -> None:
    """tyro's parse errors as one line like every other error: raise _ParseError for the kinds we can word,
    return (tyro draws its own box) for the rest."""
    kind = type(event).__name__
    arg = getattr(event, "argument", None)
    flag = "/".join(getattr(getattr(arg, "lowered", None), "name_or_flags", None) or ())
    if kind == "InvalidChoice":
        raise _ParseError(f"{flag} {event.value!r} is not allowed; choose one of: {', '.join(map(str, event.choices))}")
    if kind == "MissingSubcommand":
        raise _ParseError(f"choose a command: {', '.join(COMMANDS)}; see groklab --help")
    if kind == "UnrecognizedArgs":
        raise _ParseError(f"unrecognized argument(s): {' '.join(map(str, event.tokens))}; see groklab --help")
    if kind == "BadValue":
        raise _ParseError(f"{flag}: {event.reason}" if flag else str(event.reason))
    if kind == "InstantiationFailure":
        first = str(event.message).strip().splitlines()[0] if str(event.message).strip() else "invalid value"
        raise _ParseError(f"{flag}: {first}" if flag else first)


def _parse_error_hook():
    # tyro's parse-error hook is not public API (tyro._errors.on_parse_error, tyro 1.x); where it is missing,
    # tyro's own (boxed) messages remain, and config validation errors are still one line (ConfigError).
    try:
        from tyro._errors import on_parse_error
    except ImportError:
        return contextlib.nullcontext()
    return on_parse_error(_one_line)


def main(args: list[str] | None = None) -> None:
    try:
        with _parse_error_hook():
            tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="groklab", args=args, description="groklab: study grokking.")
    except GroklabError as e:
        print(f"groklab: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
