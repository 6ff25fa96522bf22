"""Figures of the analyses (groklab.analysis computes, this module only draws). Agg backend; every PNG is
written to a temporary name and renamed into place. `draw_analysis(run_dir, summary)` draws every figure of a
`run_analysis` call from the tables it wrote."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from groklab.report.plots import save_figure as _save  # noqa: E402


def _logx(steps):
    # Step 0 cannot sit on a log axis; draw it at 1.
    return [max(int(s), 1) for s in steps]


def plot_grokking(rows: list[dict], g: dict, path: str | Path) -> Path:
    """Accuracies against steps with the crossing steps marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = _logx(r["step"] for r in rows)
    for key, label, color in (("train_acc", "train", "tab:blue"), ("val_acc", "validation", "tab:red"),
                              ("train_clean_acc", "train (clean)", "tab:green"), ("train_corrupted_acc", "train (corrupted)", "tab:purple")):
        if any(r.get(key) is not None for r in rows):
            ax.plot(steps, [100 * r[key] if r.get(key) is not None else float("nan") for r in rows], color=color, label=label)
    for key, color in (("train_step", "tab:blue"), ("val_step", "tab:red")):
        if g.get(key) is not None:
            ax.axvline(max(g[key], 1), color=color, ls=":", lw=1)
    gap = "never" if g.get("gap") is None else f"{g['gap']} steps"
    ax.set(xscale="log", xlabel="step", ylabel="accuracy (%)", ylim=(-2, 102),
           title=f"≥{100 * g['threshold']:.0f}%: train {g['train_step']}, val {g['val_step']}; gap {gap}; phase {g.get('phase')}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_fourier(power, keys: list[int], over: list[dict], path: str | Path, label: str = "embedding") -> Path:
    """Norm per frequency at the last checkpoint (key frequencies highlighted), and the share of each
    frequency in the periodic power over checkpoints."""
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    pw = np.asarray(power, dtype=float)
    f = np.arange(len(pw))
    a.bar(f[1:], np.sqrt(pw[1:]), color=["tab:red" if i in keys else "tab:gray" for i in f[1:]])
    shown = keys if len(keys) <= 8 else f"{len(keys)} frequencies"
    a.set(xlabel="frequency f (w = 2πf/p)", ylabel="norm", title=f"{label} in the Fourier basis; key {shown}")
    steps = sorted({r["step"] for r in over})
    M = np.zeros((len(pw), len(steps)))
    col = {s: j for j, s in enumerate(steps)}
    for r in over:
        M[r["freq"], col[r["step"]]] = r["power"]
    M = M[1:] / np.maximum(M[1:].sum(0, keepdims=True), 1e-300)
    im = b.imshow(M, aspect="auto", origin="lower", cmap="viridis", extent=(-0.5, len(steps) - 0.5, 0.5, len(pw) - 0.5))
    ticks = list(range(0, len(steps), max(1, len(steps) // 8)))
    b.set_xticks(ticks, [str(steps[i]) for i in ticks], rotation=45, fontsize=7)
    b.set(xlabel="checkpoint step", ylabel="frequency", title="share of periodic power")
    fig.colorbar(im, ax=b)
    return _save(fig, path)


def plot_ipr_hist(ipr, path: str | Path, gaussian: float | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist([float(v) for v in ipr], bins=40, range=(0, 1), color="tab:blue")
    if gaussian is not None:
        ax.axvline(gaussian, color="tab:gray", ls="--", label=f"Gaussian weights: {gaussian:.3f}")
        ax.legend(fontsize=8)
    ax.set(xlabel="IPR (1 = one frequency)", ylabel="neurons", title="Neuron IPR at the last checkpoint")
    return _save(fig, path)


def plot_ipr_evolution(rows: list[dict], path: str | Path) -> Path:
    import numpy as np

    by = defaultdict(list)
    for r in rows:
        by[r["step"]].append(r["ipr"])
    steps = sorted(by)
    q = np.array([np.quantile(by[s], [0.1, 0.5, 0.9]) for s in steps])
    frac = [np.mean(np.asarray(by[s]) > 0.5) for s in steps]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = _logx(steps)
    ax.fill_between(x, q[:, 0], q[:, 2], alpha=0.25, label="10–90% of neurons")
    ax.plot(x, q[:, 1], label="median IPR")
    ax.plot(x, frac, "--", color="tab:red", label="fraction with IPR > 0.5")
    ax.set(xscale="log", xlabel="step", ylabel="IPR", ylim=(0, 1.02), title="IPR over checkpoints")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_neuron_freqs(freq, ipr, path: str | Path) -> Path:
    import numpy as np

    freq, ipr = np.asarray(freq), np.asarray(ipr)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    n = int(freq.max()) + 1 if len(freq) else 1
    a.bar(range(n), np.bincount(freq[ipr > 0.5], minlength=n), color="tab:blue")
    a.set(xlabel="dominant frequency", ylabel="neurons with IPR > 0.5", title="Neurons per frequency")
    b.scatter(freq, ipr, s=6, alpha=0.6)
    b.set(xlabel="dominant frequency", ylabel="IPR", ylim=(0, 1.02), title="IPR against dominant frequency")
    return _save(fig, path)


def plot_pruning(rows: list[dict], path: str | Path) -> Path:
    keys = [("train_acc", "train"), ("val_acc", "test"), ("train_clean_acc", "train (clean)"), ("train_corrupted_acc", "train (corrupted)")]
    orders = [o for o in ("low", "high") if any(r["order"] == o for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(orders)), figsize=(5.5 * max(1, len(orders)), 4), squeeze=False)
    for ax, order in zip(axes[0], orders):
        sub = [r for r in rows if r["order"] == order]
        for key, label in keys:
            if any(r.get(key) is not None for r in sub):
                ax.plot([r["k"] for r in sub], [100 * r[key] if r.get(key) is not None else float("nan") for r in sub], "o-", ms=3, label=label)
        ax.set(xlabel="neurons removed (k)", ylabel="accuracy (%)", ylim=(-2, 102), title=f"pruning the {order}est-IPR neurons first")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_progress(rows: list[dict], metrics: list[dict], path: str | Path, keys: list[int] | None = None) -> Path:
    """Nanda et al. (2023) Fig. 7 style: losses, Gini and Σw² against the checkpoint step."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    x = _logx(r["step"] for r in rows)
    a = axes[0]
    for key, label in (("train_loss", "train"), ("val_loss", "test"), ("restricted_loss", "restricted"), ("excluded_loss", "excluded (train)")):
        if any(key in r for r in rows):
            a.plot(x, [max(r[key], 1e-12) for r in rows], "o-", ms=3, label=label)
    shown = keys if keys is None or len(keys) <= 8 else f"{len(keys)} frequencies"
    a.set(xscale="log", yscale="log", xlabel="step", ylabel="loss", title=f"progress measures, key {shown}")
    axes[1].plot(x, [r["gini"] for r in rows], "o-", ms=3)
    axes[1].set(xscale="log", xlabel="step", ylabel="Gini", title="Gini of the Fourier-basis embedding norms")
    axes[2].plot(x, [r["sum_sq_weights"] for r in rows], "o-", ms=3)
    axes[2].set(xscale="log", xlabel="step", ylabel="Σ w²", title="total sum of squared weights")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_representations(rows: list[dict], path: str | Path) -> Path:
    panels = [(w, m) for w in ("embedding", "unembedding") for m in ("pc", "tsne") if any(r["which"] == w and f"{m}1" in r and r[f"{m}1"] == r[f"{m}1"] for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 4.2), squeeze=False)
    for ax, (which, m) in zip(axes[0], panels):
        sub = [r for r in rows if r["which"] == which]
        sc = ax.scatter([r[f"{m}1"] for r in sub], [r[f"{m}2"] for r in sub], c=[r["element"] for r in sub], cmap="twilight", s=14)
        ax.set(title=f"{which}: {'PCA' if m == 'pc' else 't-SNE'}", xticks=[], yticks=[])
        fig.colorbar(sc, ax=ax, label="element")
    return _save(fig, path)


def plot_sharpness(rows: list[dict], path: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(_logx(r["step"] for r in rows), [r["top_eigenvalue"] for r in rows], "o-")
    ax.set(xscale="log", xlabel="step", ylabel="top Hessian eigenvalue", title="Sharpness of the training loss")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _curves(ax, metrics: list[dict], loss: bool = False) -> None:
    """Train and validation accuracy (or loss) of the run's metrics on ax, for reading an analysis against them."""
    x = _logx(r["step"] for r in metrics)
    keys = (("train_loss", "train loss"), ("val_loss", "validation loss")) if loss else (("train_acc", "train"), ("val_acc", "validation"))
    for (key, label), color in zip(keys, ("tab:blue", "tab:red")):
        if any(r.get(key) is not None for r in metrics):
            scale = 1 if loss else 100
            ax.plot(x, [scale * r[key] if r.get(key) is not None else float("nan") for r in metrics], color=color, label=label)
    ax.set(xscale="log", xlabel="step", ylabel="loss" if loss else "accuracy (%)")
    if loss:
        ax.set_yscale("log")
    else:
        ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_ntk(rows: list[dict], metrics: list[dict], path: str | Path) -> Path:
    """Kumar et al. (2023) style: the empirical NTK's distance from its initial value and its alignment with
    the targets over checkpoints, beside the loss and accuracy curves (lazy: the kernel stays; rich: it moves)."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    _curves(a, metrics, loss=True)
    a.set_title("loss")
    _curves(b, metrics)
    b.set_title("accuracy")
    x = _logx(r["step"] for r in rows)
    c.plot(x, [r["distance"] for r in rows], "o-", ms=3, color="tab:purple", label="kernel distance from the first checkpoint")
    c.plot(x, [r["alignment"] for r in rows], "s--", ms=3, color="tab:green", label="kernel-target alignment")
    c.plot(x, [r["centered_alignment"] for r in rows], "^:", ms=3, color="tab:olive", label="centered alignment")
    c.set(xscale="log", xlabel="step", ylabel="value", title=f"empirical NTK on {rows[0].get('n_samples', '?')} {rows[0].get('split', '')} inputs")
    c.grid(alpha=0.3)
    c.legend(fontsize=8)
    return _save(fig, path)


def plot_tree(rows: list[dict], metrics: list[dict], path: str | Path) -> Path:
    """Murty et al. (2023) style: tree-structuredness (t-score) and the projection's parse F1 against random
    trees over checkpoints, beside the accuracy curves (structural grokking: the t-score rises with the
    out-of-distribution accuracy after in-distribution accuracy has saturated)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    _curves(a, metrics)
    x_m = _logx(r["step"] for r in metrics if r.get("val_ood_acc") is not None)
    ood = [100 * r["val_ood_acc"] for r in metrics if r.get("val_ood_acc") is not None]
    if ood:
        a.plot(x_m, ood, ":", color="tab:red", label="val (OOD)")
        a.legend(fontsize=8)
    a.set_title("accuracy")
    x = _logx(r["step"] for r in rows)
    b.plot(x, [r["t_score"] for r in rows], "o-", ms=3, color="tab:purple", label="t-score")
    if rows and "parse_f1" in rows[0]:
        b.plot(x, [r["parse_f1"] for r in rows], "s--", ms=3, color="tab:green", label="parse F1 of the projection")
        b.plot(x, [r["random_f1"] for r in rows], ":", color="gray", label="parse F1 of random trees")
    b.set(xscale="log", xlabel="step", ylabel="value", title=f"tree projections on {rows[0].get('n_sentences', '?')} validation prefixes")
    b.grid(alpha=0.3)
    b.legend(fontsize=8)
    return _save(fig, path)


def plot_llc(rows: list[dict], metrics: list[dict], path: str | Path) -> Path:
    """The local learning coefficient over checkpoints (mean and spread over SGLD chains) beside the accuracy
    curves, as in the developmental-interpretability grokking figures."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    _curves(a, metrics)
    a.set_title("accuracy")
    x = _logx(r["step"] for r in rows)
    mean = [r["llc_mean"] for r in rows]
    sd = [r["llc_std"] if r["llc_std"] == r["llc_std"] else 0.0 for r in rows]
    b.errorbar(x, mean, yerr=sd, fmt="o-", ms=4, capsize=3, color="tab:purple", label="λ̂ (mean ± sd over chains)")
    r0 = rows[0]
    b.set(xscale="log", xlabel="step", ylabel="local learning coefficient λ̂",
          title=f"LLC (SGLD ε={r0['lr']:g}, γ={r0['localization']:g}, nβ={r0['nbeta']:.3g}, {r0['chains']}×{r0['draws']} draws)")
    b.title.set_fontsize(9)
    b.grid(alpha=0.3)
    b.legend(fontsize=8)
    return _save(fig, path)


def plot_llc_traces(traces: list[dict], path: str | Path) -> Path:
    """The SGLD loss trace of every chain at every checkpoint: converged chains are flat after burn-in and
    overlap; a trace still rising or blowing up means the LLC at that step is not to be trusted."""
    import numpy as np

    steps = sorted({r["step"] for r in traces})
    cols = min(4, len(steps))
    nrows = math.ceil(len(steps) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.8 * nrows), squeeze=False)
    for ax, s in zip(axes.flat, steps):
        sub = [r for r in traces if r["step"] == s]
        for c in sorted({r["chain"] for r in sub}):
            pts = sorted((r["draw"], r["loss"]) for r in sub if r["chain"] == c)
            ax.plot([p[0] for p in pts], np.asarray([p[1] for p in pts]), lw=0.8)
        ax.set_title(f"step {s}", fontsize=9)
        ax.set(xlabel="SGLD step", ylabel="loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(steps):]:
        ax.axis("off")
    fig.suptitle("SGLD loss traces per chain (flat after burn-in = converged)", fontsize=10)
    return _save(fig, path)


def plot_htsr(rows: list[dict], metrics: list[dict], path: str | Path) -> Path:
    """Per-layer power-law exponent α of the weight spectra over checkpoints (Martin & Mahoney bands: α < 2
    very heavy-tailed, 2–6 heavy-tailed, > 6 random-like) and the number of correlation traps, beside the
    accuracy curves (Prakash & Martin 2025: anti-grokking shows α < 2 and traps)."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4))
    _curves(a, metrics)
    a.set_title("accuracy")
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for layer in layers:
        sub = [r for r in rows if r["layer"] == layer]
        x = _logx(r["step"] for r in sub)
        b.plot(x, [r["alpha"] for r in sub], "o-", ms=3, label=layer)
        c.plot(x, [r["n_traps"] for r in sub], "o-", ms=3, label=layer)
    b.axhspan(0, 2, color="tab:red", alpha=0.08)
    b.axhline(2, color="tab:red", ls=":", lw=1)
    b.axhline(6, color="tab:gray", ls=":", lw=1)
    b.set(xscale="log", xlabel="step", ylabel="power-law exponent α", title="ESD tail exponent per layer (red: α < 2)")
    c.set(xscale="log", xlabel="step", ylabel="eigenvalues beyond the MP edge", title="correlation traps (randomized weights)")
    for ax in (b, c):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _records(out: Path, name: str) -> list[dict]:
    """The rows of RUN/analysis/NAME.csv as written by run_analysis ([] for a table with no rows)."""
    import pandas as pd

    try:
        return pd.read_csv(out / f"{name}.csv").to_dict("records")
    except pd.errors.EmptyDataError:
        return []


def draw_analysis(run_dir: str | Path, summary: dict) -> list[Path]:
    """Draw the figures of the analyses that `groklab.analysis.run_analysis` just ran (those whose tables are in
    `summary["files"]`), reading its tables from RUN/analysis/, as PNGs beside them; the figures are added to the
    file list of summary.json. Returns the figures written."""
    import numpy as np

    from groklab.analysis.driver import record_files
    from groklab.store import load_run

    out = Path(run_dir) / "analysis"
    ran = {Path(f).stem for f in summary.get("files", []) if f.endswith(".csv")}
    metrics = load_run(run_dir).rows if ran & {"grokking", "ntk", "htsr", "llc", "progress", "tree_projection"} else []
    figs: list[Path] = []

    def png(name: str) -> Path:
        return out / f"{name}.png"

    if "grokking" in ran:
        figs.append(plot_grokking(metrics, summary["grokking"], path=png("grokking")))
    if "fourier" in ran:
        power = np.asarray([r["power"] for r in _records(out, "fourier")], dtype=float)
        figs.append(plot_fourier(power, summary["key_frequencies"], _records(out, "fourier_steps"), path=png("fourier"),
                                 label=summary["embedding"]))
    if "neurons" in ran:
        neurons = _records(out, "neurons")
        ipr = np.asarray([r["ipr"] for r in neurons], dtype=float)
        figs.append(plot_ipr_hist(ipr, path=png("ipr_hist"), gaussian=summary["ipr"]["gaussian_expectation"]))
        figs.append(plot_ipr_evolution(_records(out, "ipr"), path=png("ipr_evolution")))
        figs.append(plot_neuron_freqs(np.asarray([r["freq"] for r in neurons], dtype=np.int64), ipr, path=png("neuron_freqs")))
    if "pruning" in ran:
        figs.append(plot_pruning(summary["pruning"], path=png("pruning")))
    if "progress" in ran:
        figs.append(plot_progress(_records(out, "progress"), metrics, path=png("progress"), keys=summary["key_frequencies"]))
    if "representations" in ran:
        figs.append(plot_representations(_records(out, "representations"), path=png("representations")))
    if "sharpness" in ran:
        figs.append(plot_sharpness(summary["sharpness"], path=png("sharpness")))
    if "ntk" in ran:
        figs.append(plot_ntk(_records(out, "ntk"), metrics, path=png("ntk")))
    if "htsr" in ran:
        figs.append(plot_htsr(_records(out, "htsr"), metrics, path=png("htsr")))
    if "llc" in ran:
        figs.append(plot_llc(summary["llc"], metrics, path=png("llc")))
        figs.append(plot_llc_traces(_records(out, "llc_traces"), path=png("llc_traces")))
    if "tree_projection" in ran:
        figs.append(plot_tree(_records(out, "tree_projection"), metrics, path=png("tree_projection")))
    record_files(run_dir, summary, figs)
    return figs
