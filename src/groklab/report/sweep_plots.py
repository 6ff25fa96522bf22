"""Sweep figures: a phase diagram over two fields, and steps-to-grok against one field with seed spread.

Both draw a sweep table (`groklab.sweep.sweep_table`); they compute nothing beyond grouping its rows.

Censoring: a run that ended (budget, or a stop condition on another metric) without reaching 99% only tells
that its step is larger than where it stopped. It is drawn as an open triangle at its stop step (a cross when
it diverged) and never enters a median or mean as a number; a phase-diagram cell with censored seeds shows
the lower bound "> X" (the mean with each censored seed counted at its stop step) and is hatched.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from groklab.report.plots import save_figure as _save  # noqa: E402


def _log_if_wide(values) -> bool:
    v = [x for x in values if isinstance(x, (int, float)) and x > 0]
    return len(v) >= 3 and max(v) / min(v) >= 50


def _stop_steps(g):
    """Where each run of `g` ended: `stopped_step`, or the budget `steps` for tables from before early stopping."""
    if "stopped_step" in g:
        return g["stopped_step"].fillna(g["steps"]).astype(float) if "steps" in g else g["stopped_step"].astype(float)
    return g["steps"].astype(float)


def _diverged(g):
    import pandas as pd

    if "stop_reason" not in g:  # tables from before early stopping: no run diverged on purpose
        return pd.Series(False, index=g.index)
    return (g["stop_reason"] == "diverged").fillna(False).astype(bool)


def cell_value(g, value: str, censorable: bool = True) -> tuple[float, str, bool]:
    """One phase-diagram cell from its seeds' rows `g`: (colour value, label, hatched). All crossed: their mean.
    Some censored: the lower bound "> X", censored seeds counted at their stop step (diverged ones left out).
    None crossed and all diverged: "diverged"; nothing to go on: "never"."""
    vals = g[value].dropna().astype(float)
    if not (censorable and g[value].isna().any()):
        return (vals.mean(), _fmt(vals.mean()), False) if len(vals) else (math.nan, "never", True)
    missing = g[g[value].isna()]
    div = _diverged(missing)
    bound = [*vals.tolist(), *_stop_steps(missing[~div]).tolist()]
    if not bound:
        return math.nan, "diverged", True
    mean = sum(bound) / len(bound)  # a lower bound on the seeds' mean
    return mean, f"> {_fmt(mean)}", True


def _fmt(steps: float) -> str:
    return f"{steps / 1000:.3g}k" if steps >= 1000 else f"{steps:.3g}"


def plot_phase_diagram(df, x: str, y: str, path: str | Path, value: str = "val_acc_99_step", title: str | None = None) -> Path:
    """A heatmap of `value` (mean over seeds) on the grid of fields `x` and `y`. For a steps-to-99% value a
    cell with censored seeds (never crossed within their steps) is hatched and shows a lower bound "> X": the
    mean with each censored seed counted at its stop step; a cell whose seeds all diverged says "diverged".
    With a `phase` column, each cell is labelled by its most common phase instead."""
    done = df[df["status"] == "done"] if "status" in df else df
    censorable = value.endswith("_acc_99_step") and ("steps" in done or "stopped_step" in done)
    xs, ys = sorted(done[x].dropna().unique()), sorted(done[y].dropna().unique())
    grid = [[math.nan] * len(xs) for _ in ys]
    labels = [[""] * len(xs) for _ in ys]
    hatched = [[False] * len(xs) for _ in ys]
    for (xv, yv), g in done.groupby([x, y]):
        i, j = ys.index(yv), xs.index(xv)
        grid[i][j], text, hatched[i][j] = cell_value(g, value, censorable)
        if "phase" in g and g["phase"].notna().any():
            labels[i][j] = str(g["phase"].mode().iloc[0])
        else:
            labels[i][j] = text
    fig, ax = plt.subplots(figsize=(1.1 * len(xs) + 3, 0.8 * len(ys) + 2.2))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if math.isnan(grid[i][j]) or hatched[i][j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", color="gray", lw=0))
            dark = not math.isnan(grid[i][j]) and im.norm(grid[i][j]) < 0.6  # viridis is light at its top
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, float) else str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" if isinstance(v, float) else str(v) for v in ys])
    ax.set(xlabel=x, ylabel=y, title=title or f"{value} (mean over seeds)")
    fig.colorbar(im, ax=ax, label=value)
    fig.tight_layout()
    return _save(fig, path)


def plot_steps_vs_field(df, field: str, path: str | Path, steps: tuple[str, ...] = ("train_acc_99_step", "val_acc_99_step"), title: str | None = None) -> Path:
    """Steps until 99% accuracy against `field`: each seed a dot, the median of the seeds that crossed a line,
    their range a band. A censored run (ended without crossing) is an open triangle at its stop step: its step
    is only known to be larger; a diverged run is a cross at the step it diverged. Neither enters the median."""
    done = df[df["status"] == "done"] if "status" in df else df
    colors = {"train_acc_99_step": "tab:blue", "val_acc_99_step": "tab:red"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key in steps:
        xs, meds, los, his = [], [], [], []
        for xv, g in sorted(done.groupby(field), key=lambda t: t[0]):
            crossed = g[key].dropna().astype(float)
            never = g[g[key].isna()]
            c = colors.get(key, None)
            ax.scatter([xv] * len(crossed), crossed, s=14, alpha=0.6, color=c)
            if len(never):
                div = _diverged(never)
                cens = _stop_steps(never[~div])
                ax.scatter([xv] * len(cens), cens, marker="^", s=34, facecolors="none", edgecolors=c)
                ax.scatter([xv] * int(div.sum()), _stop_steps(never[div]), marker="x", s=30, color=c)
            if len(crossed):
                xs.append(xv)
                meds.append(crossed.median())
                los.append(crossed.min())
                his.append(crossed.max())
        label = {"train_acc_99_step": "train 99%", "val_acc_99_step": "validation 99%"}.get(key, key)
        ax.plot(xs, meds, "-o", color=colors.get(key), label=f"{label} (median of crossed; △ not within its steps, × diverged)")
        ax.fill_between(xs, los, his, alpha=0.2, color=colors.get(key))
    ax.set(xlabel=field, ylabel="optimization steps", yscale="log", title=title or f"steps to 99% accuracy vs {field}")
    if _log_if_wide(done[field].unique()):
        ax.set_xscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def sweep_figures(sweep_dir: str | Path, df=None) -> list[Path]:
    """Draw a sweep's standard figures into DIR/figures/ from its table (`sweep_table`): steps to 99% against
    each swept field with at least two values (seed spread as dots and band), and a phase diagram of the
    steps to 99% validation accuracy over the first two such fields. Returns the paths written."""
    from groklab.sweep.layout import SweepDir
    from groklab.sweep.table import sweep_table

    sweep_dir = Path(sweep_dir)
    df = sweep_table(sweep_dir, write=False) if df is None else df
    done = df[df["status"] == "done"] if "status" in df else df
    if done.empty:
        return []
    spec = SweepDir(sweep_dir).read_spec()
    fields = [f for f in spec.swept_fields if f in done and done[f].nunique() >= 2]
    out = [plot_steps_vs_field(df, f, sweep_dir / "figures" / f"steps_vs_{f}.png") for f in fields]
    if len(fields) >= 2:
        x, y = fields[:2]
        out.append(plot_phase_diagram(df, x, y, sweep_dir / "figures" / f"phase_{x}_{y}.png"))
    return out
