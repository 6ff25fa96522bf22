"""Nanda, Chan, Lieberum, Smith & Steinhardt 2023, "Progress measures for grokking via mechanistic
interpretability" (arXiv 2301.05217).

Paper's setup (`full`): a + b mod 113 with tokens (a, b, =), 30% of the 113² pairs for training; a
one-layer transformer (d_model 128, 4 heads of 32, MLP 512, ReLU, learned positions, no LayerNorm,
untied unembedding, biases on the MLP alone); full-batch AdamW, lr 1e-3, weight decay 1, β = (0.9, 0.98),
warm-up min(step/10, 1) from lr 0, cross-entropy in float64 (their `cross_entropy_high_precision`), 40 000
steps (`presets.nanda2023`, whose docstring lists the one deviation: the readout over the p answers). The
progress measures are computed at every (log-spaced) checkpoint: restricted loss (logits with only the
key frequencies kept), excluded loss (key frequencies removed, on the training set), the Gini coefficient
of the embedding's norms in the Fourier basis, and the total sum of squared weights.

`quick`: p = 59 and 50% of the table (so the three phases fit in 2000 steps), d_model 64 with 4 heads of
16 and MLP 256, lr 3e-3; everything else as in the paper. The budget leaves cleanup about 800 steps after
validation reaches 99% (step 1100–1200): with 1500 steps the key frequencies' lead over the next one at the
end depended on float32 rounding (×4.6 with one summation order of the first layer's projections, ×1.7
with another, against the ×4 the check asks; at 2000 steps ×6.6 and ×5.8, measured 2026-11-30).

Expected qualitative result: training accuracy reaches 99% long before validation accuracy (memorization,
then circuit formation, then cleanup); the embedding ends up concentrated on a handful of key
frequencies; the restricted loss falls to low values at an earlier checkpoint than the validation loss,
while the excluded loss more than doubles from its memorization value (the memorizing part is removed);
the sum of squared weights peaks before validation generalizes and falls from that peak during cleanup.
Each check holds only where the effect is there: a run that never generalizes (no weight decay, too few
steps) fails all five (tests/test_preset_controls.py).

At `full` the run stops 10 000 steps after validation accuracy reaches 99% (`train.stop_when
"val_acc>=0.99"`, `train.stop_patience` 10 000): Nanda et al.'s three phases end with cleanup, which finishes
within a few thousand steps of the validation jump (about step 13 000 of their 40 000), and nothing the
progress measures show changes after it; the patience keeps cleanup and the plateau after it on every figure.
A run that never reaches 99% trains the paper's 40 000 steps. `quick` and `smoke` train their whole budget.
The one run of this recipe takes the thread count `run()` chooses (two on an idle 2-core machine for the full
model, one for quick's), not the one thread the sweep recipes use per run.

Wall time (the report gives this run's; README's full-scale table has the measured one): quick a few minutes
on 2 CPU cores; full 16.8 minutes on 2 idle cores (measured 2026-12-07, `taskset -c 0,1 python
benchmarks/fullscale.py nanda2023`: stopped at step 19 813, about 20 full-batch steps/s), the paper's 40 000
steps about 34.
"""

from __future__ import annotations

import math

from groklab.presets.recipes.base import Context, Recipe, fmt_step

STOP_PATIENCE = 10_000
"""Steps trained after validation accuracy first reaches 99% at full scale (cleanup and the plateau after it)."""


def config(ctx: Context):
    from groklab import presets

    if ctx.scale == "full":
        cfg = presets.nanda2023()
        return cfg.replace(**{"train.eval_points": 150, "train.checkpoint_points": 40,
                              "train.stop_when": "val_acc>=0.99", "train.stop_patience": STOP_PATIENCE})
    p, steps = ctx.pick(quick=(59, 2000), smoke=(23, 150))
    cfg = presets.nanda2023(p=p, train_frac=0.5, steps=steps)
    return cfg.replace(**{"model.d_model": 64, "model.d_mlp": 256, "optim.lr": 3e-3,
                          "train.eval_points": ctx.pick(quick=80, smoke=15), "train.checkpoint_points": ctx.pick(quick=24, smoke=6)})


def recipe(ctx: Context) -> None:
    import pandas as pd

    from groklab.analysis import run_analysis
    from groklab.report import analysis_plots as ap
    from groklab.report import preset_plots as pp

    run = ctx.run(config(ctx), "addition", threads=None)  # one run: run() picks the threads for its size
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
    final_val = s["final"]["val_acc"]
    ctx.check("grokking gap", *check_gap(t99, v99))
    ctx.check("sparse in the Fourier basis", *check_sparse(keys, summary.get("key_fraction"), summary.get("key_gap"), prog))
    ctx.check("restricted loss leads validation loss", *check_restricted_leads(prog, final_val))
    ctx.check("excluded loss rises after memorization", *check_excluded_rises(prog, t99, v99))
    ctx.check("cleanup: Σw² falls as validation generalizes", *check_cleanup(prog, t99, v99))


# --- checks: pure functions of the summary and progress.csv rows (tests/test_preset_controls.py) --------
# Each holds only when the effect is there: a run that never generalizes (no weight decay, too few steps,
# too little data) fails every one of them, not only the first.

LOW = 0.1
"""A loss 'has fallen' below this (ln 113 ≈ 4.7 is chance)."""


def check_gap(t99: int | None, v99: int | None) -> tuple[bool, str]:
    """Validation accuracy reaches 99% at least twice as late as training accuracy."""
    return (t99 is not None and v99 is not None and v99 >= 2 * max(t99, 1),
            f"train 99% at {fmt_step(t99)}, val 99% at {fmt_step(v99)}")


def check_sparse(keys: list, share: float | None, gap: float | None, prog: list[dict] | None = None) -> tuple[bool, str]:
    """At most 8 clear key frequencies (the next frequency's power at least 4× below theirs) hold ≥ 50% of the
    embedding's periodic power, at least twice their share at the first checkpoint (a random embedding's
    few largest frequencies hold some power too)."""
    share = share or 0.0
    start = (prog[0].get("key_fraction") if prog else None)
    ok = 0 < len(keys) <= 8 and share >= 0.5 and gap is not None and gap >= 4 and (start is None or share >= 2 * start)
    return ok, (f"{len(keys)} key frequencies {keys} hold {share:.0%} of the embedding's periodic power"
                + (f" ({start:.0%} at step {prog[0]['step']})" if start is not None else "")
                + (f", ×{gap:.3g} above the next frequency" if gap is not None else ""))


def _first_below(prog: list[dict], key: str, below: float = LOW) -> float:
    return next((r["step"] for r in prog if r.get(key) is not None and r[key] < below), math.inf)


def check_restricted_leads(prog: list[dict], final_val_acc: float) -> tuple[bool, str]:
    """The restricted loss (key frequencies only) falls below 0.1 at an earlier checkpoint than the validation
    loss, and the validation loss does fall below 0.1 (the network generalizes: final validation accuracy
    ≥ 99%). Two losses that never fall, or fall together, are no lead."""
    r_step, v_step = _first_below(prog, "restricted_loss"), _first_below(prog, "val_loss")
    ok = math.isfinite(v_step) and r_step < v_step and final_val_acc >= 0.99
    return ok, (f"restricted loss < {LOW:g} first at step {fmt_step(None if math.isinf(r_step) else r_step)}, validation loss < {LOW:g} "
                f"at step {fmt_step(None if math.isinf(v_step) else v_step)}, final validation accuracy {final_val_acc:.3f}")


def _at(prog: list[dict], step: int | None) -> dict:
    """The checkpoint nearest `step`."""
    return min(prog, key=lambda r: abs(r["step"] - (step or 0)))


def check_excluded_rises(prog: list[dict], t99: int | None, v99: int | None) -> tuple[bool, str]:
    """After the training set is memorized (train 99%), the excluded loss (training loss without the key
    frequencies) more than doubles, and by the time validation generalizes: the network has come to rely on
    the key frequencies. Without memorization or generalization there is nothing to compare."""
    if t99 is None or v99 is None:
        return False, f"train 99% at {fmt_step(t99)}, val 99% at {fmt_step(v99)}: no memorization followed by generalization"
    at_fit = _at(prog, t99)
    window = [r for r in prog if at_fit["step"] <= r["step"] <= max(_at(prog, v99)["step"], at_fit["step"])]
    peak = max(window, key=lambda r: r["excluded_loss"])
    return (peak["excluded_loss"] > 2 * at_fit["excluded_loss"],
            f"excluded loss {at_fit['excluded_loss']:.3g} at step {at_fit['step']} (memorized), {peak['excluded_loss']:.3g} at step "
            f"{peak['step']} (by validation 99% at {v99})")


def check_cleanup(prog: list[dict], t99: int | None, v99: int | None) -> tuple[bool, str]:
    """Nanda et al.'s cleanup, tied to the grokking window: the network generalizes (val 99%), Σw² peaks no later
    than that, has already fallen ≥ 10% from its peak when validation reaches 99%, and ends ≤ 80% of the peak.
    (Weight decay alone shrinks Σw² in a run that never generalizes too: that run fails here.)"""
    if v99 is None:
        return False, "validation never reaches 99%: no cleanup to see"
    peak = max(prog, key=lambda r: r["sum_sq_weights"])
    at_v, final = _at(prog, v99), prog[-1]["sum_sq_weights"]
    p = peak["sum_sq_weights"]
    ok = peak["step"] <= at_v["step"] and at_v["sum_sq_weights"] <= 0.9 * p and final <= 0.8 * p
    return ok, (f"Σw² peaks at {p:.4g} (step {peak['step']}), {at_v['sum_sq_weights']:.4g} at step {at_v['step']} (validation 99% at {v99}), "
                f"ends at {final:.4g}")

RECIPE = Recipe("nanda2023", "progress measures of a one-layer transformer on modular addition",
                "Nanda et al. 2023, arXiv 2301.05217", recipe)
