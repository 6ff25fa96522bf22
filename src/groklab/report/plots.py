"""Figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Lay out, write atomically (a reader never sees half a PNG) and close `fig`; returns the path."""
    from groklab.store import atomic_write

    path = Path(path)
    try:
        fig.tight_layout()
        # the temporary name ends in .tmp, so the format is named rather than read from the suffix
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix[1:] or "png"))
    finally:
        plt.close(fig)
    return path


def plot_curves(rows: list[dict], path: str | Path, title: str | None = None, crossings: dict | None = None) -> Path:
    """Accuracy and loss against steps on a log axis: train, validation, and the clean/corrupted
    training subsets when the labels were corrupted. `crossings` maps a label to a step to mark."""
    path = Path(path)
    # Step 0 cannot sit on a log axis; draw it at step 1's position only if there is no step 1.
    steps = [max(r["step"], 1) for r in rows]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("train_acc", "train", "tab:blue", "-"),
        ("val_acc", "validation", "tab:red", "-"),
        ("train_clean_acc", "train (clean labels)", "tab:green", "--"),
        ("train_corrupted_acc", "train (corrupted labels)", "tab:purple", "--"),
    ]
    for key, label, color, ls in series:
        if any(key in r for r in rows):
            ax_acc.plot(steps, [100 * r[key] if r.get(key) is not None else float("nan") for r in rows], ls, color=color, label=label)
    for key, label, color in (("train_loss", "train", "tab:blue"), ("val_loss", "validation", "tab:red")):
        ax_loss.plot(steps, [r[key] if r.get(key) is not None else float("nan") for r in rows], color=color, label=label)
    for label, step in (crossings or {}).items():
        if step is not None:
            ax_acc.axvline(max(step, 1), color="gray", lw=0.8, ls=":")
            ax_acc.annotate(label, (max(step, 1), 50), rotation=90, fontsize=8, color="gray", ha="right", va="center")
    ax_acc.set(xscale="log", xlabel="optimization step", ylabel="accuracy (%)", ylim=(-2, 102), title="Accuracy")
    ax_loss.set(xscale="log", yscale="log", xlabel="optimization step", ylabel="loss", title="Loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
