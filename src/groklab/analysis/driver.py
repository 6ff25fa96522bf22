"""`run_analysis(run_dir, what)`: every analysis over every checkpoint of a run directory.

Writes into RUN/analysis/: tables as CSV (and Parquet when pyarrow is importable) and summary.json with the
headline numbers. Every file is written to a temporary name and renamed into place. Nothing here draws: the
caller draws the tables (`groklab.report.analysis_plots.draw_analysis(run_dir, summary)`; `groklab analyze` does).

Each analysis is a `Step` in `STEPS` (its name, what it needs, and a function from a `Context` to tables and
summary entries); the names, their order and which run only when named live in `groklab.catalog.ANALYSES`.

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch

from groklab.analysis import fourier as F
from groklab.errors import AnalysisError
from groklab.analysis.grokking import classify_phase, forgetting, grokking_summary, seeds_summary, two_stage
from groklab.analysis.ipr import expected_gaussian_ipr, neuron_table
from groklab.analysis.progress import SIGN, progress_measures, sum_squared_weights
from groklab.analysis.pruning import pruning_curve
from groklab.analysis.representations import pca, representation_matrix, rqi, tsne
from groklab.analysis.sharpness import top_hessian_eigenvalue
from groklab.catalog import ANALYSES
from groklab.train.optim import loss_spec

WHAT = tuple(n for n, a in ANALYSES.items() if not a.frontier)
"""What "all" runs."""
FRONTIER = tuple(n for n, a in ANALYSES.items() if a.frontier)
"""Analyses that run only when named: they cost more (ntk, llc) or need an optional extra (llc)."""

CLEAN_KEY_GAP = 4.0
"""A set of key frequencies is taken as clean when its weakest member carries at least this many times the power
of the strongest other frequency (`fourier.key_gap`). Below it the embedding still carries memorization noise
(before cleanup), and the frequencies the neurons are tuned to are used instead when those pass the same test."""


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




@dataclass
class Context:
    """What a step reads (the run, its dataset, the models at each checkpoint, the options of `run_analysis`)
    and where it writes (tables into `out`, entries into `summary`). Shared intermediate results (the key
    frequencies, the last checkpoint's neuron table) are computed once and cached here."""

    run: Any
    out: Path
    opts: dict
    say: Callable[[str], None]
    summary: dict
    files: list[Path] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    power: Any = None
    ename: str = ""
    _data: Any = None
    _model: Any = None
    _neurons: Any = None

    @property
    def cfg(self):
        return self.run.config

    @property
    def steps(self) -> list[int]:
        return self.run.checkpoint_steps

    @property
    def last(self) -> int | None:
        return self.steps[-1] if self.steps else None

    @property
    def p(self) -> int:
        return self.cfg.task.p

    @property
    def data(self):
        if self._data is None:
            from groklab.tasks import build_dataset

            self._data = build_dataset(self.cfg.task)
        return self._data

    def note(self, msg: str) -> None:
        self.summary["notes"].append(msg)
        self.say(f"note: {msg}")

    def table(self, rows: list[dict], name: str) -> None:
        self.files.extend(_write_table(rows, self.out / name))

    def load(self, step: int) -> torch.nn.Module:
        """The model at checkpoint `step` in eval mode (one module, its weights swapped per checkpoint)."""
        weights = self.run.state_dict(step)
        if self._model is None:
            self._model = self.run.load_model(step)
        else:
            self._model.load_state_dict(weights)
        return self._model.eval()

    def neurons(self) -> dict:
        """`neuron_table` of the last checkpoint (ipr and pruning share it)."""
        if self._neurons is None:
            self._neurons = neuron_table(self.load(self.last), self.p, self.opts["layer"])
        return self._neurons


@dataclass(frozen=True)
class Step:
    """One analysis: `compute(ctx)` writes its tables through `ctx.table` and its headline numbers into
    `ctx.summary`. The flags say what it needs; `run_analysis` skips it with a note when that is missing."""

    name: str
    compute: Callable[[Context], None]
    modular: bool = False
    """Needs a modular task (Fourier analysis over Z_p)."""
    checkpoints: bool = True
    """Needs at least one checkpoint (grokking detection reads only the logged metrics)."""
    key_frequencies: bool = False
    """The key frequencies of the last checkpoint are found first (and recorded in the summary)."""

    @property
    def frontier(self) -> bool:
        return ANALYSES[self.name].frontier


def _find_key_frequencies(ctx: Context) -> None:
    """Key frequencies of the last checkpoint's embedding; when the embedding shows no clean cut (the gap
    below CLEAN_KEY_GAP), those the neurons are tuned to, when they are clean."""
    n_keys = ctx.opts["n_keys"]
    m = ctx.load(ctx.last)
    E, ename = F.embedding_matrix(m, ctx.p)
    power = F.frequency_power(E)
    keys = F.key_frequencies(power, n_keys=n_keys)
    s = ctx.summary
    s["key_frequencies"] = keys
    s["key_fraction"] = F.explained_fraction(power, keys)
    s["key_gap"] = F.key_gap(power, keys)
    s["key_source"] = ename
    if n_keys is None and not s["key_gap"] >= CLEAN_KEY_GAP:
        spectra, _ = F.neuron_spectra(F.neuron_inputs(m, ctx.p, ctx.opts["layer"])[0])
        npow = torch.cat([torch.zeros(1, dtype=torch.float64), spectra[:, 1:].sum(0)])
        nkeys = F.key_frequencies(npow)
        s["neuron_key_frequencies"] = nkeys
        s["neuron_key_gap"] = F.key_gap(npow, nkeys)
        if s["neuron_key_gap"] >= CLEAN_KEY_GAP:
            keys = nkeys
            s.update(key_frequencies=keys, key_fraction=F.explained_fraction(power, keys), key_source="neurons")
    s["embedding"] = ename
    ctx.keys, ctx.power, ctx.ename = keys, power, ename


def _grokking(ctx: Context) -> None:
    rows = ctx.run.rows
    if not rows:
        ctx.note("no metrics logged; grokking detection skipped")
        return
    threshold, phase_threshold = ctx.opts["threshold"], ctx.opts["phase_threshold"]
    g = grokking_summary(rows, threshold)
    g["phase"] = classify_phase(rows, phase_threshold)
    g["phase_threshold"] = phase_threshold
    ts = two_stage(rows, threshold)
    fg = forgetting(rows)
    row = {**g, **{f"two_stage_{k}" if not k.startswith("two_stage") else k: v for k, v in ts.items()},
           **{f"forgetting_{k}": v for k, v in fg.items()}}
    ctx.table([row], "grokking")
    ctx.summary["grokking"] = row
    ctx.say(f"grokking: train ≥{threshold:.0%} at {g['train_step']}, val at {g['val_step']} (gap {g['gap']}), phase {g['phase']}")


def _fourier(ctx: Context) -> None:
    power, keys, p = ctx.power, ctx.keys, ctx.p
    ctx.table([{"freq": f, "power": float(power[f]), "norm": math.sqrt(float(power[f])), "is_key": f in keys} for f in range(len(power))], "fourier")
    over = []
    for s in ctx.steps:
        pw = F.frequency_power(F.embedding_matrix(ctx.load(s), p)[0])
        over += [{"step": s, "freq": f, "power": float(pw[f])} for f in range(len(pw))]
    ctx.table(over, "fourier_steps")
    sm = ctx.summary
    ctx.say(f"fourier ({ctx.ename}): key frequencies {keys} (from {sm['key_source']}), {sm['key_fraction']:.1%} of the periodic power, "
            f"gap to the next frequency ×{sm['key_gap']:.3g}")


def _ipr(ctx: Context) -> None:
    nt, p, layer = ctx.neurons(), ctx.p, ctx.opts["layer"]
    n_rows = [{"neuron": int(i), "ipr": float(nt["ipr"][i]), "freq": int(nt["freq"][i]), "freq_frac": float(nt["freq_frac"][i]),
               "power": float(nt["power"][i])} for i in range(len(nt["ipr"]))]
    ctx.table(n_rows, "neurons")
    ipr_rows = []
    for s in ctx.steps:
        t = nt if s == ctx.last else neuron_table(ctx.load(s), p, layer)
        ipr_rows += [{"step": s, "neuron": int(i), "ipr": float(t["ipr"][i]), "freq": int(t["freq"][i])} for i in range(len(t["ipr"]))]
    ctx.table(ipr_rows, "ipr")
    v = nt["ipr"]
    counts = torch.bincount(nt["freq"][v > 0.5], minlength=p // 2 + 1)
    ctx.summary["ipr"] = ip = {
        "source": nt["source"],
        "mean": float(v.mean()), "median": float(v.median()),
        "q10": float(v.quantile(0.1)), "q90": float(v.quantile(0.9)),
        "frac_above_0.5": float((v > 0.5).double().mean()),
        "gaussian_expectation": expected_gaussian_ipr(p, 2 if "weights" in nt["source"] else 1) if p % 2 else None,
        "neuron_frequencies": {int(f): int(c) for f, c in enumerate(counts) if c > 0},
    }
    ctx.say(f"ipr ({nt['source']}): median {ip['median']:.3f}, {ip['frac_above_0.5']:.0%} of neurons above 0.5; "
            f"neurons per frequency (IPR > 0.5): {ip['neuron_frequencies']}")


def _pruning(ctx: Context) -> None:
    rows = pruning_curve(ctx.load(ctx.last), ctx.data, loss_spec(ctx.cfg.train), scores=ctx.neurons()["ipr"], layer=ctx.opts["layer"])
    ctx.table(rows, "pruning")
    ctx.summary["pruning"] = rows
    ctx.say(f"pruning: {len(rows)} points")


def _progress(ctx: Context) -> None:
    cfg, p, keys = ctx.cfg, ctx.p, ctx.keys
    if cfg.task.op not in SIGN:
        ctx.note(f"restricted/excluded loss need task.op in {sorted(SIGN)}; this run is {cfg.task.op!r}")
    rows = []
    basis, _ = F.fourier_basis(p)
    for s in ctx.steps:
        m = ctx.load(s)
        E = F.embedding_matrix(m, p)[0].to(torch.float64)
        pw = F.frequency_power(E)
        row = {"step": s}
        if cfg.task.op in SIGN:
            row.update(progress_measures(m, ctx.data, p, keys, loss_spec(cfg.train), cfg.task.op))
        # Gini of the norms of the embedding along each real Fourier basis vector (Nanda et al. §5.1).
        row["gini"] = F.gini((basis @ E).norm(dim=1))
        row["sum_sq_weights"] = sum_squared_weights(m)
        row["key_fraction"] = F.explained_fraction(pw, keys)
        rows.append(row)
    ctx.table(rows, "progress")
    ctx.summary["progress_final"] = rows[-1]
    ctx.say(f"progress: final restricted loss {rows[-1].get('restricted_loss', float('nan')):.3g}, "
            f"excluded loss {rows[-1].get('excluded_loss', float('nan')):.3g}, Gini {rows[-1]['gini']:.3f}")


def _representations(ctx: Context) -> None:
    cfg = ctx.cfg
    m = ctx.load(ctx.last)
    # None or 0: a task over vectors (teacher, images, parity) has no set of elements to embed.
    n_el = getattr(ctx.data, "n_elements", None) or None
    rows, info = [], {}
    if n_el is None:
        ctx.note(f"representations need a task over a set of elements; task.group={cfg.task.group!r} has none")
    for which in ("embedding", "unembedding") if n_el is not None else ():
        try:
            X = representation_matrix(m, n_el, which)
        except AnalysisError as e:
            ctx.note(str(e))
            continue
        Y, var = pca(X, 2)
        cols = {"pc1": Y[:, 0], "pc2": Y[:, 1] if Y.shape[1] > 1 else torch.zeros(len(Y))}
        try:
            Z = tsne(X)
            cols.update(tsne1=Z[:, 0], tsne2=Z[:, 1])
        except AnalysisError as e:
            if which == "embedding":
                ctx.note(str(e))
        rows += [{"which": which, "element": i, **{k: float(v[i]) for k, v in cols.items()}} for i in range(len(X))]
        info[which] = {"pca_variance": var.tolist()}
        if which == "embedding" and cfg.task.op == "x+y" and cfg.task.group in ("modular", "integer"):
            # Liu et al.'s parallelograms i + j = m + n (integer sums): near 1 for their linear toy
            # embeddings, near 0 for the circular Fourier embeddings of modular networks.
            info[which]["rqi"] = rqi(X, delta=getattr(cfg.task, "rqi_tol", 0.01))
    ctx.table(rows, "representations")
    ctx.summary["representations"] = info
    ctx.say(f"representations: {info}")


def _sharpness(ctx: Context) -> None:
    o, data = ctx.opts, ctx.data
    g = torch.Generator().manual_seed(0)
    n = min(o["sharpness_samples"], data.n_train)
    idx = torch.randperm(data.n_train, generator=g)[:n]
    x, y = data.x_train[idx], data.y_train[idx]
    rows = []
    for s in _spread(ctx.steps, o["sharpness_checkpoints"]):
        m = ctx.load(s)
        dtype = next(m.parameters()).dtype
        lam, it = top_hessian_eigenvalue(m, x, y, loss_spec(ctx.cfg.train), iters=o["sharpness_iters"], tol=1e-3)
        rows.append({"step": s, "top_eigenvalue": lam, "iters": it, "n_samples": n, "dtype": str(dtype)})
        ctx.say(f"sharpness: step {s}: λ_max = {lam:.4g} ({it} iterations)")
    ctx.table(rows, "sharpness")
    ctx.summary["sharpness"] = rows


def _ntk(ctx: Context) -> None:
    """Empirical NTK over checkpoints (lazy → rich; Kumar et al. 2023)."""
    from groklab.analysis.ntk import ntk_over_checkpoints, probe_indices, target_matrix

    data, split, steps = ctx.data, ctx.opts["ntk_split"], ctx.steps
    xs, ys = (data.x_train, data.y_train) if split == "train" else (data.x_val, data.y_val)
    if len(xs) < 2:
        raise AnalysisError(f"ntk_split={split!r}: the {split} set has {len(xs)} samples; the NTK needs at least 2")
    idx = probe_indices(len(xs), ctx.opts["ntk_samples"])
    x = xs[idx]
    Y = target_matrix(ys[idx], data.n_classes, data.target)
    if steps[0] != 0:
        ctx.note(f"ntk: no checkpoint at step 0; distances are from the first checkpoint (step {steps[0]})")
    first = ctx.load(steps[0])
    dtype = next(first.parameters()).dtype
    rows = ntk_over_checkpoints(((s, ctx.load(s)) for s in steps), x.to(dtype) if x.is_floating_point() else x, Y)
    for r in rows:
        r.update(n_samples=len(idx), split=split)
    ctx.table(rows, "ntk")
    ctx.summary["ntk"] = {"reference_step": steps[0], "final": rows[-1], "max_distance": max(r["distance"] for r in rows)}
    ctx.say(f"ntk ({len(idx)} {split} inputs): kernel distance from step {steps[0]} reaches {rows[-1]['distance']:.3g} at step {rows[-1]['step']}; "
            f"target alignment {rows[0]['alignment']:.3g} → {rows[-1]['alignment']:.3g}")


def _htsr(ctx: Context) -> None:
    """Heavy-tailed self-regularization (Martin & Mahoney) of every weight matrix at every checkpoint."""
    from groklab.analysis.htsr import model_htsr

    min_dim = ctx.opts["htsr_min_dim"]
    rows = []
    for s in ctx.steps:
        rows += [{"step": s, **r} for r in model_htsr(ctx.load(s), min_dim=min_dim)]
    if not rows:
        ctx.note(f"htsr: no weight matrix has both sides ≥ htsr_min_dim={min_dim}")
        return
    ctx.table(rows, "htsr")
    final = [r for r in rows if r["step"] == ctx.last]
    ctx.summary["htsr"] = h = {
        "final_alpha": {r["layer"]: r["alpha"] for r in final},
        "layers_alpha_below_2": sorted({r["layer"] for r in final if r["alpha"] < 2}),
        "layers_with_traps": sorted({r["layer"] for r in final if r["n_traps"] > 0}),
        "first_step_alpha_below_2": min((r["step"] for r in rows if r["alpha"] < 2), default=None),
        "first_step_with_traps": min((r["step"] for r in rows if r["n_traps"] > 0), default=None),
    }
    ctx.say(f"htsr: final α per layer {({k: round(v, 2) for k, v in h['final_alpha'].items()})}; "
            f"α < 2 in {h['layers_alpha_below_2'] or 'none'}; correlation traps in {h['layers_with_traps'] or 'none'}")


def _llc(ctx: Context) -> None:
    """Local learning coefficient by devinterp's SGLD at up to `settings.checkpoints` checkpoints."""
    from groklab.analysis.llc import estimate_llc

    st, data = ctx.opts["llc_settings"], ctx.data
    rows, traces = [], []
    for s in _spread(ctx.steps, st.checkpoints):
        m = ctx.load(s)
        dtype = next(m.parameters()).dtype
        x = data.x_train.to(dtype) if data.x_train.is_floating_point() else data.x_train
        r = estimate_llc(m, x, data.y_train, loss_spec(ctx.cfg.train), data.target, st)
        rows.append({"step": s, "llc_mean": r["llc_mean"], "llc_std": r["llc_std"], "init_loss": r["init_loss"],
                     **{f"llc_chain{i}": v for i, v in enumerate(r["llc_per_chain"])},
                     "lr": st.lr, "localization": st.localization, "nbeta": r["nbeta"],
                     "chains": st.chains, "draws": st.draws, "burnin": st.burnin, "batch_size": st.batch_size})
        tr = r["traces"]
        traces += [{"step": s, "chain": c, "draw": j, "loss": float(tr[c, j])} for c in range(tr.shape[0]) for j in range(tr.shape[1])]
        ctx.say(f"llc: step {s}: λ̂ = {r['llc_mean']:.4g} ± {r['llc_std']:.2g} over {st.chains} chains")
    ctx.table(rows, "llc")
    ctx.table(traces, "llc_traces")
    ctx.summary["llc"] = rows


def _tree(ctx: Context) -> None:
    """Tree-structuredness over checkpoints (Murty et al. 2023) on the run's Dyck validation prefixes."""
    from groklab.analysis.tree_projection import dyck_tree_rows

    if ctx.cfg.task.group != "dyck":
        ctx.note(f"tree: tree projections need a Dyck run (task.group='dyck'); this run is {ctx.cfg.task.group!r}")
        return
    rows = dyck_tree_rows(((s, ctx.load(s)) for s in ctx.steps), ctx.data.x_val, ctx.cfg.task.dyck_k)
    ctx.table(rows, "tree_projection")
    ctx.summary["tree"] = {"first": rows[0], "final": rows[-1]}
    ctx.say(f"tree: t-score {rows[0]['t_score']:.3g} → {rows[-1]['t_score']:.3g}, parse F1 {rows[-1].get('parse_f1', float('nan')):.3g} "
            f"(random trees {rows[-1].get('random_f1', float('nan')):.3g}) on {rows[-1]['n_sentences']} validation prefixes")


STEPS: dict[str, Step] = {
    s.name: s
    for s in [
        Step("grokking", _grokking, checkpoints=False),
        Step("fourier", _fourier, modular=True, key_frequencies=True),
        Step("ipr", _ipr, modular=True, key_frequencies=True),
        Step("pruning", _pruning, modular=True, key_frequencies=True),
        Step("progress", _progress, modular=True, key_frequencies=True),
        Step("representations", _representations),
        Step("sharpness", _sharpness),
        Step("ntk", _ntk),
        Step("htsr", _htsr),
        Step("llc", _llc),
        Step("tree", _tree),
    ]
}
# The steps run in the catalog's order; the two tables name the same analyses.
assert list(STEPS) == list(ANALYSES), (list(STEPS), list(ANALYSES))


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
    figures: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the analyses named in `what` (any of WHAT, or "all") on the run in `run_dir`; write their tables and
    summary.json into RUN/analysis/ and return the summary. Draws nothing: pass the summary to
    `groklab.report.analysis_plots.draw_analysis` for the figures.

    Fourier, IPR, pruning and progress measures need a modular task (`task.group="modular"`); they are
    skipped with a note otherwise. Progress measures need `task.op` x+y or x-y.

    Named only (FRONTIER): `ntk` on `ntk_samples` inputs of the `ntk_split` set ("train" or "val"); `htsr`
    on every weight matrix whose smaller side is at least `htsr_min_dim`; `llc` with the settings in `llc`
    (keyword arguments of `groklab.analysis.llc.LLCSettings`); `tree` on a Dyck run's validation prefixes
    (`analysis.tree_projection.dyck_tree_rows`).

    `figures` is kept so that older callers passing `figures=False` still work; `figures=True` is refused
    (analyses no longer draw).
    """
    from groklab.store import atomic_write_text, json_safe, load_run

    if figures:
        raise AnalysisError("figures=True: run_analysis no longer draws; call "
                            "groklab.report.analysis_plots.draw_analysis(run_dir, summary) with its summary")
    what = list(what)
    unknown = [w for w in what if w not in (*STEPS, "all")]
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
    out = Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(run=run, out=out, say=log or (lambda s: None),
                  summary={"run": str(run.path), "checkpoints": run.checkpoint_steps, "notes": []},
                  opts=dict(threshold=threshold, phase_threshold=phase_threshold, layer=layer, n_keys=n_keys,
                            sharpness_checkpoints=sharpness_checkpoints, sharpness_samples=sharpness_samples,
                            sharpness_iters=sharpness_iters, ntk_samples=ntk_samples, ntk_split=ntk_split,
                            htsr_min_dim=htsr_min_dim, llc_settings=llc_settings))

    # Steps that need no checkpoint run first (grokking reads only the logged metrics), then what each step
    # needs is checked: a missing input skips the step with a note, never an error.
    first = [n for n in STEPS if n in todo and not STEPS[n].checkpoints]
    for n in first:
        STEPS[n].compute(ctx)
    todo -= set(first)
    needs_modular = {n for n in todo if STEPS[n].modular}
    if needs_modular and ctx.cfg.task.group != "modular":
        ctx.note(f"{', '.join(sorted(needs_modular))} need a modular task (task.group='modular'); this run is {ctx.cfg.task.group!r}")
        todo -= needs_modular
    if todo and not ctx.steps:
        ctx.note("no checkpoints; only grokking detection ran")
        todo = set()
    if any(STEPS[n].key_frequencies for n in todo):
        _find_key_frequencies(ctx)
    for n in STEPS:
        if n in todo:
            STEPS[n].compute(ctx)

    ctx.summary["files"] = sorted(str(f.relative_to(out)) for f in ctx.files)
    atomic_write_text(out / "summary.json", json.dumps(json_safe(ctx.summary), indent=2) + "\n")
    return ctx.summary


def record_files(run_dir: str | os.PathLike, summary: dict, paths: Iterable[Path]) -> dict:
    """Add files written into RUN/analysis/ after `run_analysis` (the figures the caller drew) to the summary's
    file list, and rewrite summary.json with it."""
    from groklab.store import atomic_write_text, json_safe

    out = Path(run_dir) / "analysis"
    names = {str(Path(p).relative_to(out)) for p in paths}
    summary["files"] = sorted(set(summary.get("files", [])) | names)
    atomic_write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
    return summary
