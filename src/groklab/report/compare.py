"""`groklab compare`: several runs' curves overlaid in one figure. Draws what the runs logged; computes nothing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from groklab.report.plots import save_figure  # noqa: E402


def _series(rows: list[dict], key: str, scale: float = 1.0) -> tuple[list[int], list[float]]:
    # Step 0 cannot sit on a log axis: it is drawn at step 1.
    pts = [(max(r["step"], 1), scale * r[key]) for r in rows if r.get(key) is not None]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_compare(runs: dict[str, list[dict]], path: str | Path, title: str | None = None) -> Path:
    """Accuracy and loss against steps (log axis) for each run: one colour per run, validation solid,
    training dashed. `runs` maps a legend label to the run's metric rows."""
    path = Path(path)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, rows) in enumerate(runs.items()):
        c = colors[i % len(colors)]
        ax_acc.plot(*_series(rows, "val_acc", 100), "-", color=c, label=label)
        ax_acc.plot(*_series(rows, "train_acc", 100), "--", color=c, alpha=0.7)
        ax_loss.plot(*_series(rows, "val_loss"), "-", color=c, label=label)
        ax_loss.plot(*_series(rows, "train_loss"), "--", color=c, alpha=0.7)
    ax_acc.set(xscale="log", xlabel="optimization step", ylabel="accuracy (%)", ylim=(-2, 102),
               title="Accuracy (validation solid, train dashed)")
    ax_loss.set(xscale="log", yscale="log", xlabel="optimization step", ylabel="loss",
                title="Loss (validation solid, train dashed)")
    for ax in (ax_acc, ax_loss):
        ax.grid(True, which="major", alpha=0.3)
    ax_acc.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


__all__ = ["plot_compare"]
