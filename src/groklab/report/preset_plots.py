"""Figures of the paper presets (groklab.presets.recipes). Each draws numbers a recipe already has — run
metrics, sweep tables, analysis results — into one PNG answering one question. Agg backend; every PNG is
written to a temporary name and renamed into place. Step axes are logarithmic (grokking spans decades)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from groklab.report.plots import save_figure as _save  # noqa: E402

PHASE_COLORS = {
    # Liu et al. 2022
    "comprehension": "#4daf4a", "grokking": "#377eb8", "memorization": "#ff7f00", "confusion": "#984ea3",
    # Doshi et al. 2023
    "coexistence": "#a6cee3", "partial inversion": "#1f78b4", "full inversion": "#33a02c", "forgetting": "#e31a1c",
}


def _x(rows: Sequence[Mapping]) -> list[int]:
    return [max(int(r["step"]), 1) for r in rows]  # step 0 sits at 1 on a log axis


def _col(rows: Sequence[Mapping], key: str, scale: float = 1.0) -> list[float]:
    return [scale * r[key] if r.get(key) is not None else float("nan") for r in rows]


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "viridis")
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def plot_accuracy_runs(series: Mapping[str, Sequence[Mapping]], path: str | Path, title: str = "", train: bool = True,
                       val_key: str = "val_acc", train_key: str = "train_acc") -> Path:
    """Validation accuracy (solid) and training accuracy (dashed) of several runs against log steps."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for (label, rows), c in zip(series.items(), _colors(len(series))):
        ax.plot(_x(rows), _col(rows, val_key, 100), "-", color=c, lw=1.8, label=f"{label}: validation")
        if train:
            ax.plot(_x(rows), _col(rows, train_key, 100), "--", color=c, lw=1.1, alpha=0.8, label=f"{label}: train")
    ax.set(xscale="log", xlabel="optimization step", ylabel="accuracy (%)", ylim=(-2, 102), title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_metric_runs(series: Mapping[str, Sequence[Mapping]], key: str, path: str | Path, ylabel: str, title: str = "",
                     logy: bool = False, hline: float | None = None, hline_label: str = "") -> Path:
    """One logged metric (`key`) of several runs against log steps."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for (label, rows), c in zip(series.items(), _colors(len(series))):
        ax.plot(_x(rows), _col(rows, key), "-", color=c, lw=1.6, label=label)
    if hline is not None:
        ax.axhline(hline, color="gray", ls=":", lw=1, label=hline_label or None)
    ax.set(xscale="log", xlabel="optimization step", ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_steps_vs(x: Sequence[float], steps: Sequence[int | None], path: str | Path, xlabel: str, budget: int,
                  title: str = "", ylabel: str = "steps to 99% validation accuracy", logx: bool = False) -> Path:
    """Steps to a threshold against a swept value, one point per seed, the median over seeds as a line;
    runs that never crossed are drawn as × at the budget."""
    fig, ax = plt.subplots(figsize=(7, 4.4))
    groups: dict[float, list[float]] = {}
    for xi, s in zip(x, steps):
        groups.setdefault(float(xi), []).append(math.inf if s is None or (isinstance(s, float) and math.isnan(s)) else float(s))
    done = [(xi, s) for xi, ss in groups.items() for s in ss if math.isfinite(s)]
    never = [xi for xi, ss in groups.items() for s in ss if not math.isfinite(s)]
    if done:
        ax.scatter([d[0] for d in done], [max(d[1], 1) for d in done], s=22, color="tab:blue", alpha=0.7, label="one seed")
    if never:
        ax.scatter(never, [budget] * len(never), marker="x", s=40, color="tab:red", label=f"not within {budget} steps")
    xs = sorted(groups)
    med = []
    for xi in xs:
        ss = sorted(groups[xi])
        m = ss[len(ss) // 2] if len(ss) % 2 else (ss[len(ss) // 2 - 1] + ss[len(ss) // 2]) / 2
        med.append(m if math.isfinite(m) else float("nan"))
    ax.plot(xs, med, "-", color="tab:blue", lw=1.5, label="median over seeds")
    ax.axhline(budget, color="gray", ls=":", lw=0.8)
    ax.set(yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_step_bars(labels: Sequence[str], steps: Sequence[int | None], path: str | Path, budget: int, title: str = "",
                   xlabel: str = "steps to 99% validation accuracy (log)", secondary: Sequence[int | None] | None = None,
                   secondary_label: str = "steps to 99% train accuracy") -> Path:
    """Horizontal bars of steps to a threshold per setting (log axis); `never` is a hatched bar at the budget."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(8, 0.45 * n + 1.6))
    ys = list(range(n))
    h = 0.38 if secondary is not None else 0.7
    for i, s in enumerate(steps):
        never = s is None
        ax.barh(i - (h / 2 if secondary is not None else 0), budget if never else max(s, 1), height=h,
                color="white" if never else "tab:blue", edgecolor="tab:blue", hatch="//" if never else None,
                label="validation" if i == 0 and secondary is not None else None)
        ax.text(budget if never else max(s, 1), i - (h / 2 if secondary is not None else 0), f" {'never' if never else s}", va="center", fontsize=8)
    if secondary is not None:
        for i, s in enumerate(secondary):
            ax.barh(i + h / 2, budget if s is None else max(s, 1), height=h, color="tab:orange", alpha=0.8,
                    label=secondary_label if i == 0 else None)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(ys, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel=xlabel, title=title)
    ax.set_xlim(1, budget * 3)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _save(fig, path)


def plot_phase_diagram(xs: Sequence[Any], ys: Sequence[Any], phase: Mapping[tuple, str], path: str | Path, xlabel: str, ylabel: str,
                       title: str = "", values: Mapping[tuple, str] | None = None) -> Path:
    """A categorical grid: the phase of the run at each (x, y), with an optional short text in each cell."""
    import numpy as np

    names = [p for p in PHASE_COLORS if p in set(phase.values())] + sorted(set(phase.values()) - set(PHASE_COLORS))
    index = {p: i for i, p in enumerate(names)}
    grid = np.full((len(ys), len(xs)), np.nan)
    for (x, y), p in phase.items():
        grid[list(ys).index(y), list(xs).index(x)] = index[p]
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([PHASE_COLORS.get(p, "#999999") for p in names] or ["#999999"])
    fig, ax = plt.subplots(figsize=(1.0 * len(xs) + 3.5, 0.7 * len(ys) + 2.0))
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in xs], fontsize=9)
    ax.set_yticks(range(len(ys)), [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in ys], fontsize=9)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    for (x, y), text in (values or {}).items():
        ax.text(list(xs).index(x), list(ys).index(y), text, ha="center", va="center", fontsize=7)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=PHASE_COLORS.get(p, "#999999"), label=p) for p in names], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_histograms(groups: Mapping[str, Sequence[float]], path: str | Path, xlabel: str, title: str = "", bins: int = 30,
                    vline: float | None = None, vline_label: str = "") -> Path:
    """Overlaid histograms (as fractions of each group), e.g. neuron IPR of a grokked and a memorizing net."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2))
    allv = np.concatenate([np.asarray(v, dtype=float) for v in groups.values()]) if groups else np.zeros(1)
    edges = np.linspace(float(allv.min()), float(allv.max()) + 1e-9, bins + 1)
    for (label, v), c in zip(groups.items(), _colors(len(groups))):
        v = np.asarray(v, dtype=float)
        ax.hist(v, bins=edges, weights=np.full(len(v), 1 / max(len(v), 1)), alpha=0.55, color=c, label=f"{label} (n={len(v)})")
    if vline is not None:
        ax.axvline(vline, color="gray", ls=":", label=vline_label or None)
    ax.set(xlabel=xlabel, ylabel="fraction of neurons", title=title)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_lines(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, xlabel: str, ylabel: str,
               title: str = "", logx: bool = False, logy: bool = False, percent: bool = False, markers: bool = True) -> Path:
    """Generic x–y lines, one per label (e.g. accuracy after pruning k neurons)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (label, (x, y)), c in zip(series.items(), _colors(len(series))):
        ax.plot(list(x), [100 * v if percent and v is not None else v for v in y], "-o" if markers else "-", ms=3, color=c, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
