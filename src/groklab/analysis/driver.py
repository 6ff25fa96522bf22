"""`run_analysis(run_dir, what)`: every analysis over every checkpoint of a run directory.

Writes into RUN/analysis/: tables as CSV (and Parquet when pyarrow is importable), figures as PNG (drawn by
`groklab.report.analysis_plots`), and summary.json with the headline numbers. Every file is written to a
temporary name and renamed into place.

Tables
  grokking.csv          crossing steps, gap, Liu et al. phase, two-stage dynamics, forgetting (one row)
  fourier.csv           power and norm per frequency of the embedding at the last checkpoint; is_key
  fourier_steps.csv     step, freq, power: the same at every checkpoint
  neurons.csv           per neuron at the last checkpoint: IPR, dominant frequency, its share of power
  ipr.csv               step, neuron, ipr, freq at every checkpoint
  pruning.csv           order (low/high IPR first), k, accuracies after removing k neurons
  progress.csv          step, train/val loss, restricted and excluded loss, Gini, Σw², key-frequency share
  representations.csv   which (embedding/unembedding), element, PCA (and t-SNE) coordinates
  sharpness.csv         step, top Hessian eigenvalue of the training loss

Run only when named (not part of "all"):
  ntk.csv               step, kernel distance from the first checkpoint's NTK, kernel-target alignment
  htsr.csv              step, layer: power-law exponent α of the weight spectrum, correlation traps
  llc.csv               step, local learning coefficient (devinterp SGLD), its spread over chains
  llc_traces.csv        step, chain, draw, loss: the SGLD loss traces, to check that the chains converged
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from groklab.analysis import fourier as F
from groklab.errors import AnalysisError
from groklab.analysis.grokking import classify_phase, forgetting, grokking_summary, seeds_summary, two_stage
from groklab.analysis.ipr import expected_gaussian_ipr, neuron_table
from groklab.analysis.progress import SIGN, progress_measures, sum_squared_weights
from groklab.analysis.pruning import pruning_curve
from groklab.analysis.representations import pca, representation_matrix, rqi, tsne
from groklab.analysis.sharpness import top_hessian_eigenvalue
from groklab.train.optim import loss_spec

WHAT = ("grokking", "fourier", "ipr", "pruning", "progress", "representations", "sharpness")
"""What "all" runs."""
FRONTIER = ("ntk", "htsr", "llc")
"""Analyses that run only when named: they cost more (ntk, llc) or need an optional extra (llc)."""


def _write_table(rows: list[dict], path: Path) -> list[Path]:
    import pandas as pd

    from groklab.store import atomic_write, atomic_write_text

    df = pd.DataFrame(rows)
    written = [path.with_suffix(".csv")]
    atomic_write_text(written[0], df.to_csv(index=False))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    target = path.with_suffix(".parquet")
    atomic_write(target, lambda tmp: df.to_parquet(tmp, index=False))
    return written + [target]


def _spread(steps: Sequence[int], n: int) -> list[int]:
    """At most n of the checkpoint steps, evenly spaced by index (they are log-spaced), always the last."""
    if n < 1:
        raise AnalysisError(f"sharpness_checkpoints={n} must be at least 1")
    if len(steps) <= n:
        return list(steps)
    if n == 1:
        return [steps[-1]]
    idx = sorted({round(i * (len(steps) - 1) / (n - 1)) for i in range(n)})
    return [steps[i] for i in idx]


def grokking_over_runs(run_dirs: Iterable[str | os.PathLike], threshold: float = 0.99) -> tuple[list[dict], dict]:
    """Crossing steps of several runs (seeds) and their median and spread: per-run rows (run, train_step,
    val_step, gap, budget) and {"train_step": seeds_summary, "val_step": ..., "gap": ...}."""
    from groklab.store import load_run

    rows = []
    for d in run_dirs:
        r = load_run(d)
        if not r.rows:
            raise AnalysisError(f"run {str(d)!r} has no metrics yet")
        rows.append({"run": str(d), "seed": r.config.train.seed, **grokking_summary(r.rows, threshold)})
    if not rows:
        raise AnalysisError("no run directories given")
    return rows, {k: seeds_summary(r[k] for r in rows) for k in ("train_step", "val_step", "gap")}


def run_analysis(
    run_dir: str | os.PathLike,
    what: Iterable[str] = ("all",),
    *,
    threshold: float = 0.99,
    phase_threshold: float = 0.9,
    layer: int = 0,
    n_keys: int | None = None,
    sharpness_checkpoints: int = 6,
    sharpness_samples: int = 2048,
    sharpness_iters: int = 30,
    ntk_samples: int = 128,
    ntk_split: str = "val",
    htsr_min_dim: int = 10,
    llc: "dict | None" = None,
    figures: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the analyses named in `what` (any of WHAT, or "all") on the run in `run_dir`; return the summary.

    Fourier, IPR, pruning and progress measures need a modular task (`task.group="modular"`); they are
    skipped with a note otherwise. Progress measures need `task.op` x+y or x-y.

    Named only (FRONTIER): `ntk` on `ntk_samples` inputs of the `ntk_split` set ("train" or "val"); `htsr`
    on every weight matrix whose smaller side is at least `htsr_min_dim`; `llc` with the settings in `llc`
    (keyword arguments of `groklab.analysis.llc.LLCSettings`).
    """
    from groklab.store import load_run
    from groklab.tasks import build_dataset

    say = log or (lambda s: None)
    what = list(what)
    unknown = [w for w in what if w not in (*WHAT, *FRONTIER, "all")]
    if unknown:
        raise AnalysisError(f"what={unknown[0]!r} is not an analysis; choose from: all, {', '.join(WHAT + FRONTIER)}")
    if ntk_split not in ("train", "val"):
        raise AnalysisError(f"ntk_split={ntk_split!r} is not allowed; choose train or val")
    llc_settings = None
    if "llc" in what:
        from groklab.analysis.llc import LLCSettings

        llc_settings = LLCSettings(**(llc or {}))  # validates every setting before anything is written
    todo = (set(WHAT) | (set(what) & set(FRONTIER))) if "all" in what else set(what)

    run = load_run(run_dir)
    cfg = run.config
    out = Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    plots = None
    if figures:
        from groklab.report import analysis_plots as plots
    steps = run.checkpoint_steps
    modular = cfg.task.group == "modular"
    p = cfg.task.p
    summary: dict = {"run": str(run.path), "checkpoints": steps, "notes": []}
    files: list[Path] = []

    def note(msg: str) -> None:
        summary["notes"].append(msg)
        say(f"note: {msg}")

    def table(rows: list[dict], name: str) -> None:
        files.extend(_write_table(rows, out / name))

    def figure(fn: str, *args, name: str, **kw) -> None:
        if plots is not None:
            files.append(getattr(plots, fn)(*args, path=out / f"{name}.png", **kw))

    # --- 1. grokking ------------------------------------------------------------------------------------
    if "grokking" in todo:
        rows = run.rows
        if not rows:
            note("no metrics logged; grokking detection skipped")
        else:
            g = grokking_summary(rows, threshold)
            g["phase"] = classify_phase(rows, phase_threshold)
            g["phase_threshold"] = phase_threshold
            ts = two_stage(rows, threshold)
            fg = forgetting(rows)
            row = {**g, **{f"two_stage_{k}" if not k.startswith("two_stage") else k: v for k, v in ts.items()},
                   **{f"forgetting_{k}": v for k, v in fg.items()}}
            table([row], "grokking")
            summary["grokking"] = row
            say(f"grokking: train ≥{threshold:.0%} at {g['train_step']}, val at {g['val_step']} (gap {g['gap']}), phase {g['phase']}")
            figure("plot_grokking", rows, g, name="grokking")

    needs_modular = todo & {"fourier", "ipr", "pruning", "progress"}
    if needs_modular and not modular:
        note(f"{', '.join(sorted(needs_modular))} need a modular task (task.group='modular'); this run is {cfg.task.group!r}")
        todo -= needs_modular
    if todo - {"grokking"} and not steps:
        note("no checkpoints; only grokking detection ran")
        todo &= {"grokking"}

    data = build_dataset(cfg.task)
    model = None

    def load(step: int) -> torch.nn.Module:
        nonlocal model
        weights = run.state_dict(step)
        if model is None:
            model = run.load_model(step)
        else:
            model.load_state_dict(weights)
        return model.eval()

    last = steps[-1] if steps else None
    keys: list[int] = []

    # --- 2. Fourier --------------------------------------------------------------------------------------
    if todo & {"fourier", "progress", "pruning", "ipr"}:
        m = load(last)
        E, ename = F.embedding_matrix(m, p)
        power = F.frequency_power(E)
        keys = F.key_frequencies(power, n_keys=n_keys)
        summary["key_frequencies"] = keys
        summary["key_fraction"] = F.explained_fraction(power, keys)
        summary["key_gap"] = F.key_gap(power, keys)
        summary["key_source"] = ename
        if n_keys is None and not summary["key_gap"] >= 4.0:
            # No clean cut in the embedding (before cleanup it still carries memorization noise): take the
            # frequencies the neurons are tuned to, when those are clean.
            spectra, _ = F.neuron_spectra(F.neuron_inputs(m, p, layer)[0])
            npow = torch.cat([torch.zeros(1, dtype=torch.float64), spectra[:, 1:].sum(0)])
            nkeys = F.key_frequencies(npow)
            summary["neuron_key_frequencies"] = nkeys
            summary["neuron_key_gap"] = F.key_gap(npow, nkeys)
            if summary["neuron_key_gap"] >= 4.0:
                keys = nkeys
                summary.update(key_frequencies=keys, key_fraction=F.explained_fraction(power, keys), key_source="neurons")
        summary["embedding"] = ename
    if "fourier" in todo:
        table([{"freq": f, "power": float(power[f]), "norm": math.sqrt(float(power[f])), "is_key": f in keys} for f in range(len(power))], "fourier")
        over = []
        for s in steps:
            pw = F.frequency_power(F.embedding_matrix(load(s), p)[0])
            over += [{"step": s, "freq": f, "power": float(pw[f])} for f in range(len(pw))]
        table(over, "fourier_steps")
        say(f"fourier ({ename}): key frequencies {keys} (from {summary['key_source']}), {summary['key_fraction']:.1%} of the periodic power, "
            f"gap to the next frequency ×{summary['key_gap']:.3g}")
        figure("plot_fourier", power, keys, over, name="fourier", label=ename)

    # --- 3. IPR ------------------------------------------------------------------------------------------
    nt = None
    if todo & {"ipr", "pruning"}:
        nt = neuron_table(load(last), p, layer)
    if "ipr" in todo:
        assert nt is not None
        n_rows = [{"neuron": int(i), "ipr": float(nt["ipr"][i]), "freq": int(nt["freq"][i]), "freq_frac": float(nt["freq_frac"][i]),
                   "power": float(nt["power"][i])} for i in range(len(nt["ipr"]))]
        table(n_rows, "neurons")
        ipr_rows = []
        for s in steps:
            t = nt if s == last else neuron_table(load(s), p, layer)
            ipr_rows += [{"step": s, "neuron": int(i), "ipr": float(t["ipr"][i]), "freq": int(t["freq"][i])} for i in range(len(t["ipr"]))]
        table(ipr_rows, "ipr")
        v = nt["ipr"]
        counts = torch.bincount(nt["freq"][v > 0.5], minlength=p // 2 + 1)
        summary["ipr"] = {
            "source": nt["source"],
            "mean": float(v.mean()), "median": float(v.median()),
            "q10": float(v.quantile(0.1)), "q90": float(v.quantile(0.9)),
            "frac_above_0.5": float((v > 0.5).double().mean()),
            "gaussian_expectation": expected_gaussian_ipr(p, 2 if "weights" in nt["source"] else 1) if p % 2 else None,
            "neuron_frequencies": {int(f): int(c) for f, c in enumerate(counts) if c > 0},
        }
        say(f"ipr ({nt['source']}): median {summary['ipr']['median']:.3f}, {summary['ipr']['frac_above_0.5']:.0%} of neurons above 0.5; "
            f"neurons per frequency (IPR > 0.5): {summary['ipr']['neuron_frequencies']}")
        figure("plot_ipr_hist", v, name="ipr_hist", gaussian=summary["ipr"]["gaussian_expectation"])
        figure("plot_ipr_evolution", ipr_rows, name="ipr_evolution")
        figure("plot_neuron_freqs", nt["freq"], nt["ipr"], name="neuron_freqs")

    # --- 4. pruning --------------------------------------------------------------------------------------
    if "pruning" in todo:
        assert nt is not None
        rows = pruning_curve(load(last), data, loss_spec(cfg.train), scores=nt["ipr"], layer=layer)
        table(rows, "pruning")
        summary["pruning"] = rows
        say(f"pruning: {len(rows)} points")
        figure("plot_pruning", rows, name="pruning")

    # --- 5. progress measures ----------------------------------------------------------------------------
    if "progress" in todo:
        if cfg.task.op not in SIGN:
            note(f"restricted/excluded loss need task.op in {sorted(SIGN)}; this run is {cfg.task.op!r}")
        rows = []
        basis, _ = F.fourier_basis(p)
        for s in steps:
            m = load(s)
            E = F.embedding_matrix(m, p)[0].to(torch.float64)
            pw = F.frequency_power(E)
            row = {"step": s}
            if cfg.task.op in SIGN:
                row.update(progress_measures(m, data, p, keys, loss_spec(cfg.train), cfg.task.op))
            # Gini of the norms of the embedding along each real Fourier basis vector (Nanda et al. §5.1).
            row["gini"] = F.gini((basis @ E).norm(dim=1))
            row["sum_sq_weights"] = sum_squared_weights(m)
            row["key_fraction"] = F.explained_fraction(pw, keys)
            rows.append(row)
        table(rows, "progress")
        summary["progress_final"] = rows[-1]
        say(f"progress: final restricted loss {rows[-1].get('restricted_loss', float('nan')):.3g}, "
            f"excluded loss {rows[-1].get('excluded_loss', float('nan')):.3g}, Gini {rows[-1]['gini']:.3f}")
        figure("plot_progress", rows, run.rows, name="progress", keys=keys)

    # --- 6. representations ------------------------------------------------------------------------------
    if "representations" in todo:
        m = load(last)
        n_el = getattr(data, "n_elements", None)
        rows, info = [], {}
        if n_el is None:
            note(f"representations need a task over a set of elements; task.group={cfg.task.group!r} has none")
        for which in ("embedding", "unembedding") if n_el is not None else ():
            try:
                X = representation_matrix(m, n_el, which)
            except AnalysisError as e:
                note(str(e))
                continue
            Y, var = pca(X, 2)
            cols = {"pc1": Y[:, 0], "pc2": Y[:, 1] if Y.shape[1] > 1 else torch.zeros(len(Y))}
            try:
                Z = tsne(X)
                cols.update(tsne1=Z[:, 0], tsne2=Z[:, 1])
            except AnalysisError as e:
                if which == "embedding":
                    note(str(e))
            rows += [{"which": which, "element": i, **{k: float(v[i]) for k, v in cols.items()}} for i in range(len(X))]
            info[which] = {"pca_variance": var.tolist()}
            if which == "embedding" and cfg.task.op == "x+y" and cfg.task.group in ("modular", "integer"):
                # Liu et al.'s parallelograms i + j = m + n (integer sums): near 1 for their linear toy
                # embeddings, near 0 for the circular Fourier embeddings of modular networks.
                info[which]["rqi"] = rqi(X, delta=getattr(cfg.task, "rqi_tol", 0.01))
        table(rows, "representations")
        summary["representations"] = info
        say(f"representations: {info}")
        figure("plot_representations", rows, name="representations")

    # --- 7. sharpness ------------------------------------------------------------------------------------
    if "sharpness" in todo:
        g = torch.Generator().manual_seed(0)
        n = min(sharpness_samples, data.n_train)
        idx = torch.randperm(data.n_train, generator=g)[:n]
        x, y = data.x_train[idx], data.y_train[idx]
        rows = []
        for s in _spread(steps, sharpness_checkpoints):
            m = load(s)
            dtype = next(m.parameters()).dtype
            lam, it = top_hessian_eigenvalue(m, x, y, loss_spec(cfg.train), iters=sharpness_iters, tol=1e-3)
            rows.append({"step": s, "top_eigenvalue": lam, "iters": it, "n_samples": n, "dtype": str(dtype)})
            say(f"sharpness: step {s}: λ_max = {lam:.4g} ({it} iterations)")
        table(rows, "sharpness")
        summary["sharpness"] = rows
        figure("plot_sharpness", rows, name="sharpness")

    # --- 8. empirical NTK (lazy → rich) ------------------------------------------------------------------
    if "ntk" in todo:
        from groklab.analysis.ntk import ntk_over_checkpoints, probe_indices, target_matrix

        xs, ys = (data.x_train, data.y_train) if ntk_split == "train" else (data.x_val, data.y_val)
        if len(xs) < 2:
            raise AnalysisError(f"ntk_split={ntk_split!r}: the {ntk_split} set has {len(xs)} samples; the NTK needs at least 2")
        idx = probe_indices(len(xs), ntk_samples)
        x = xs[idx]
        Y = target_matrix(ys[idx], data.n_classes, data.target)
        if steps[0] != 0:
            note(f"ntk: no checkpoint at step 0; distances are from the first checkpoint (step {steps[0]})")

        def models():
            for s in steps:
                m = load(s)
                yield s, m

        first = load(steps[0])
        dtype = next(first.parameters()).dtype
        rows = ntk_over_checkpoints(models(), x.to(dtype) if x.is_floating_point() else x, Y)
        for r in rows:
            r.update(n_samples=len(idx), split=ntk_split)
        table(rows, "ntk")
        summary["ntk"] = {"reference_step": steps[0], "final": rows[-1], "max_distance": max(r["distance"] for r in rows)}
        say(f"ntk ({len(idx)} {ntk_split} inputs): kernel distance from step {steps[0]} reaches {rows[-1]['distance']:.3g} at step {rows[-1]['step']}; "
            f"target alignment {rows[0]['alignment']:.3g} → {rows[-1]['alignment']:.3g}")
        figure("plot_ntk", rows, run.rows, name="ntk")

    # --- 9. heavy-tailed self-regularization -------------------------------------------------------------
    if "htsr" in todo:
        from groklab.analysis.htsr import model_htsr

        rows = []
        for s in steps:
            rows += [{"step": s, **r} for r in model_htsr(load(s), min_dim=htsr_min_dim)]
        if not rows:
            note(f"htsr: no weight matrix has both sides ≥ htsr_min_dim={htsr_min_dim}")
        else:
            table(rows, "htsr")
            final = [r for r in rows if r["step"] == last]
            summary["htsr"] = {
                "final_alpha": {r["layer"]: r["alpha"] for r in final},
                "layers_alpha_below_2": sorted({r["layer"] for r in final if r["alpha"] < 2}),
                "layers_with_traps": sorted({r["layer"] for r in final if r["n_traps"] > 0}),
                "first_step_alpha_below_2": min((r["step"] for r in rows if r["alpha"] < 2), default=None),
                "first_step_with_traps": min((r["step"] for r in rows if r["n_traps"] > 0), default=None),
            }
            h = summary["htsr"]
            say(f"htsr: final α per layer {({k: round(v, 2) for k, v in h['final_alpha'].items()})}; "
                f"α < 2 in {h['layers_alpha_below_2'] or 'none'}; correlation traps in {h['layers_with_traps'] or 'none'}")
            figure("plot_htsr", rows, run.rows, name="htsr")

    # --- 10. local learning coefficient ------------------------------------------------------------------
    if "llc" in todo:
        from groklab.analysis.llc import estimate_llc

        assert llc_settings is not None
        rows, traces = [], []
        for s in _spread(steps, llc_settings.checkpoints):
            m = load(s)
            dtype = next(m.parameters()).dtype
            x = data.x_train.to(dtype) if data.x_train.is_floating_point() else data.x_train
            r = estimate_llc(m, x, data.y_train, loss_spec(cfg.train), data.target, llc_settings)
            rows.append({"step": s, "llc_mean": r["llc_mean"], "llc_std": r["llc_std"], "init_loss": r["init_loss"],
                         **{f"llc_chain{i}": v for i, v in enumerate(r["llc_per_chain"])},
                         "lr": llc_settings.lr, "localization": llc_settings.localization, "nbeta": r["nbeta"],
                         "chains": llc_settings.chains, "draws": llc_settings.draws, "burnin": llc_settings.burnin,
                         "batch_size": llc_settings.batch_size})
            tr = r["traces"]
            traces += [{"step": s, "chain": c, "draw": j, "loss": float(tr[c, j])} for c in range(tr.shape[0]) for j in range(tr.shape[1])]
            say(f"llc: step {s}: λ̂ = {r['llc_mean']:.4g} ± {r['llc_std']:.2g} over {llc_settings.chains} chains")
        table(rows, "llc")
        table(traces, "llc_traces")
        summary["llc"] = rows
        figure("plot_llc", rows, run.rows, name="llc")
        figure("plot_llc_traces", traces, name="llc_traces")

    from groklab.store import atomic_write_text, json_safe

    summary["files"] = sorted(str(f.relative_to(out)) for f in files)
    atomic_write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
    return summary
