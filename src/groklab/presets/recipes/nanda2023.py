"""Nanda, Chan, Lieberum, Smith & Steinhardt 2023, "Progress measures for grokking via mechanistic
interpretability" (arXiv 2301.05217).

Paper's setup (`full`): a + b mod 113 with tokens (a, b, =), 30% of the 113² pairs for training; a
one-layer transformer (d_model 128, 4 heads of 32, MLP 512, ReLU, learned positions, no LayerNorm,
untied unembedding); full-batch AdamW, lr 1e-3, weight decay 1, β = (0.9, 0.98), 40 000 steps. The
progress measures are computed at every (log-spaced) checkpoint: restricted loss (logits with only the
key frequencies kept), excluded loss (key frequencies removed, on the training set), the Gini coefficient
of the embedding's norms in the Fourier basis, and the total sum of squared weights.

`quick`: p = 59 and 50% of the table (so the three phases fit in 1500 steps), d_model 64 with 4 heads of
16 and MLP 256, lr 3e-3; everything else as in the paper.

Expected qualitative result: training accuracy reaches 99% long before validation accuracy (memorization,
then circuit formation, then cleanup); the embedding ends up concentrated on a handful of key
frequencies; the restricted loss falls to low values before (or as) the validation loss does, while the
excluded loss rises above its memorization value (the memorizing part is removed); the sum of squared
weights falls from its peak during cleanup.

Measured wall time (2 CPU cores shared with other jobs, so inflated): quick about 1.5–3 min; full is an
estimate from the step rate that benchmarks/throughput.py measures for the full-size model on a quiet
machine (6.6 full-batch steps/s on 2 cores): 40 000 steps ≈ 100 min, plus a few minutes of analysis.
"""

from __future__ import annotations

import math

from groklab.presets.recipes.base import Context, Recipe, fmt_step


def config(ctx: Context):
    from groklab import presets

    if ctx.scale == "full":
        cfg = presets.nanda2023()
        return cfg.replace(**{"train.eval_points": 150, "train.checkpoint_points": 40})
    p, steps = ctx.pick(quick=(59, 1500), smoke=(23, 150))
    cfg = presets.nanda2023(p=p, train_frac=0.5, steps=steps)
    return cfg.replace(**{"model.d_model": 64, "model.d_mlp": 256, "optim.lr": 3e-3,
                          "train.eval_points": ctx.pick(quick=80, smoke=15), "train.checkpoint_points": ctx.pick(quick=24, smoke=6)})


def recipe(ctx: Context) -> None:
    import pandas as pd

    from groklab.analysis import run_analysis
    from groklab.report import analysis_plots as ap
    from groklab.report import preset_plots as pp

    run = ctx.run(config(ctx), "addition")
    s = run.summary
    summary = run_analysis(run.path, ("grokking", "fourier", "progress"), figures=False)
    prog = pd.read_csv(run.path / "analysis" / "progress.csv").to_dict("records")
    fourier = pd.read_csv(run.path / "analysis" / "fourier.csv")
    fsteps = pd.read_csv(run.path / "analysis" / "fourier_steps.csv").to_dict("records")
    keys = summary.get("key_frequencies", [])
    t99, v99 = s["train_acc_99_step"], s["val_acc_99_step"]

    ctx.number("train acc ≥ 99% at step", fmt_step(t99))
    ctx.number("val acc ≥ 99% at step", fmt_step(v99))
    ctx.number("final val acc", s["final"]["val_acc"])
    ctx.number("key frequencies", keys)
    ctx.number("key-frequency share of embedding power", summary.get("key_fraction"))

    ctx.figure(pp.plot_accuracy_runs, {"1-layer transformer": run.rows}, name="curves",
               question="Does the network generalize long after it fits the training set?",
               title=f"a + b mod {run.config.task.p}, {run.config.task.train_frac:.0%} training data",
               caption="accuracy against optimization steps (log axis); dashed: train, solid: validation")
    ctx.figure(ap.plot_fourier, fourier["power"].to_numpy(), keys, fsteps, name="fourier",
               question="Which frequencies does the embedding use?", label="W_E",
               caption="power of the embedding per Fourier frequency at the end (left) and over checkpoints (right)")
    ctx.figure(ap.plot_progress, prog, run.rows, keys=keys, name="progress",
               question="Do the progress measures move before the validation loss does?",
               caption="restricted and excluded loss, Gini of the Fourier-basis embedding, and Σw² over checkpoints (log steps)")
    ctx.table(prog, "progress", "Progress measures at every checkpoint")

    # --- checks -------------------------------------------------------------------------------------
    ctx.check("grokking gap", t99 is not None and v99 is not None and v99 >= 2 * max(t99, 1),
              f"train 99% at {fmt_step(t99)}, val 99% at {fmt_step(v99)}")
    share = summary.get("key_fraction") or 0.0
    ctx.check("sparse in the Fourier basis", 0 < len(keys) <= 8 and share >= 0.5,
              f"{len(keys)} key frequencies {keys} hold {share:.0%} of the embedding's periodic power")

    def first(key: str, below: float) -> float:
        return next((r["step"] for r in prog if r.get(key) is not None and r[key] < below), math.inf)

    r_step, v_step = first("restricted_loss", 0.1), first("val_loss", 0.1)
    ctx.check("restricted loss leads validation loss", r_step <= v_step and math.isfinite(r_step),
              f"restricted loss < 0.1 first at step {r_step}, validation loss < 0.1 at step {v_step}")
    at_fit = min(prog, key=lambda r: abs(r["step"] - (t99 or 0)))
    ex_peak = max(r["excluded_loss"] for r in prog if r["step"] >= at_fit["step"])
    ctx.check("excluded loss rises after memorization", ex_peak > 2 * at_fit["excluded_loss"],
              f"excluded loss {at_fit['excluded_loss']:.3g} at step {at_fit['step']} (memorized), peak {ex_peak:.3g} afterwards")
    peak = max(prog, key=lambda r: r["sum_sq_weights"])
    final = prog[-1]["sum_sq_weights"]
    ctx.check("cleanup: Σw² falls", final < 0.8 * peak["sum_sq_weights"],
              f"Σw² peaks at {peak['sum_sq_weights']:.4g} (step {peak['step']}), ends at {final:.4g}")


RECIPE = Recipe("nanda2023", "progress measures of a one-layer transformer on modular addition",
                "Nanda et al. 2023, arXiv 2301.05217", recipe)
