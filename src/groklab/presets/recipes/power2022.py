"""Power, Burda, Edwards, Babuschkin & Misra 2022, "Grokking: generalization beyond overfitting on small
algorithmic datasets" (arXiv 2201.02177).

Paper's setup (`full`): equations x ∘ y = z of a binary operation mod p = 97, a random fraction of the table
for training and the rest for validation, each equation the tokens (x, ∘, y, =) with the loss and accuracy
on the answer alone; a decoder-only transformer with 2 layers, width 128, 4 heads (MLP 512, LayerNorm,
causal attention); AdamW lr 1e-3, weight decay 1, β = (0.9, 0.98), 10 warm-up steps, minibatches of
min(512, ⌈n_train / 2⌉) (512 for every training fraction ≥ 0.11 at p = 97), 10⁵ steps. Four questions,
all on the transformer in `full`:
(a) the training and validation curves of x/y at 50% of the table (with and without weight decay);
(b) steps until validation accuracy reaches 99% against the training fraction (0.2 … 0.8, 3 seeds);
(c) an ablation at 50% on the same seeds: weight decay 1 against none (AdamW against plain Adam), each
    with and without dropout 0.1;
(d) which of the paper's operations reach 99% validation accuracy at 50% of the table within the budget.

`quick` (minutes on 2 CPU cores, where this transformer costs 20–40 ms a step even at width 64): (a) is the
transformer at width 64 (4 heads of 16, MLP 256, still 2 layers with LayerNorm) on x+y mod 31 with half the
table, batch ⌈n_train / 2⌉ = 240, weight decay 3 against none (3 instead of 1 so that grokking fits 1500
steps; x/y needs about 2.5× more steps than x+y here), one seed. (b), (c) and (d) run on the one-hot MLP
(width 128, quadratic activation, no biases), which the batched sweep trains tens of runs at once: x+y mod
47, AdamW lr 3e-3, weight decay 1, β = (0.9, 0.98), 1200 steps, one batch size for every training
fraction (⌈n_train / 2⌉ of the smallest, 332; the paper's rule gives one batch size at p = 97 as well);
fractions 0.3 … 0.8 and the ablation over 2 seeds, the operations on seed 0 (9 operations, mod 47).

Expected qualitative result: the training set is fitted within a few hundred steps while validation
accuracy stays near chance and reaches 99% only many times later; without weight decay it does not
within the budget. Fewer steps are needed the larger the training fraction, and below some fraction none
of the seeds generalizes within the budget (drawn as ×). Weight decay is the intervention that matters;
dropout helps a little without it. x+y, x−y, x/y and x²+y² generalize at 50%, while the asymmetric
polynomials (x²+xy+y², x³+xy²+y, …) and the mixed x/y-or-x−y do not.

Measured wall time (2 CPU cores shared with other jobs): quick about 2–2.5 min; full is an estimate from
the step rate of the full-size transformer (about 40 ms a step on 2 cores): 7 fractions × 3 seeds + 12
ablation runs + 9 operations = 42 runs of 10⁵ steps ≈ 47 core-hours, about a day on 2 cores (much less on
a GPU: `groklab reproduce power2022 --scale full --device cuda`).
"""

from __future__ import annotations

import math

from groklab.presets.recipes.base import Context, Recipe, fmt_step

OPS = ["x+y", "x-y", "x/y", "x/y if y odd else x-y", "x^2+y^2", "x^2+xy+y^2", "x^2+xy+y^2+x", "x^3+xy", "x^3+xy^2+y"]
SIMPLE, HARDEST = ("x+y", "x-y", "x/y"), "x^3+xy^2+y"


def transformer(ctx: Context):
    """The transformer of (a) (and, in `full`, of every question)."""
    from groklab import presets

    if ctx.scale == "full":
        return presets.power2022(op="x/y", p=97, train_frac=0.5, steps=100_000).replace(
            **{"train.eval_points": 200, "train.checkpoint_points": 10})
    p, d, steps, wd = ctx.pick(quick=(31, 64, 1500, 3.0), smoke=(11, 16, 30, 3.0))
    cfg = presets.power2022(op="x+y", p=p, train_frac=0.5, steps=steps)
    return cfg.replace(**{"model.d_model": d, "model.d_mlp": 4 * d, "optim.weight_decay": wd,
                          "train.eval_points": ctx.pick(quick=80, smoke=8), "train.checkpoint_points": 1})


def mlp(ctx: Context, train_frac: float):
    """`quick`: the one-hot MLP of (b)-(d), batched; batch ⌈n_train / 2⌉ at `train_frac` (at most 512)."""
    from groklab import presets

    p, width, steps = ctx.pick(quick=(47, 128, 1200), smoke=(11, 16, 30))
    cfg = presets.demo(out=None, steps=steps).replace(**{
        "task.p": p, "task.train_frac": train_frac, "model.width": width, "optim.lr": 3e-3, "optim.weight_decay": 1.0,
        "optim.beta2": 0.98, "train.eval_points": ctx.pick(quick=60, smoke=8), "train.checkpoint_points": 1})
    return cfg.replace(**{"train.batch_size": min(512, -(-cfg.task.n_train // 2))})


def _step(v) -> int | None:
    """A crossing step from a sweep table, None for `never` (NaN or pandas' NA there)."""
    import pandas as pd

    return None if v is None or pd.isna(v) else int(v)


def _steps(v) -> float:
    """A crossing step with `never` as infinity, so that it orders after every real step."""
    return math.inf if _step(v) is None else float(v)


def _median(xs) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2  # inf when the upper middle is `never`


def recipe(ctx: Context) -> None:
    import pandas as pd

    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    full = ctx.scale == "full"
    seeds = ctx.pick(full=3, quick=2, smoke=1)
    tbase = transformer(ctx)
    wd = tbase.optim.weight_decay
    abl_grid = {"optim.weight_decay": [1.0, 0.0], "model.dropout": [0.0, 0.1]}

    # --- (a) the curves of the transformer, with and without weight decay -----------------------------
    if full:
        abl = ctx.sweep(tbase, abl_grid, seeds=seeds, name="ablation")
        curves = abl[(abl["model.dropout"] == 0.0) & (abl["train.seed"] == 0)]
    else:
        curves = ctx.sweep(tbase, {"optim.weight_decay": [wd, 0.0]}, seeds=1, name="transformer")
    runs = {float(r["optim.weight_decay"]): load_run(r["run_dir"]) for _, r in curves.iterrows()}
    main, nowd = runs[wd], runs[0.0]
    t99, v99 = main.summary["train_acc_99_step"], main.summary["val_acc_99_step"]
    budget = tbase.train.steps
    op, p = tbase.task.op, tbase.task.p
    ctx.number("transformer: train acc ≥ 99% at step", fmt_step(t99))
    ctx.number("transformer: val acc ≥ 99% at step", fmt_step(v99))
    ctx.number("transformer: final val acc", main.summary["final"]["val_acc"])
    ctx.number("transformer without weight decay: final val acc", nowd.summary["final"]["val_acc"])
    ctx.figure(pp.plot_accuracy_runs, {f"weight decay {wd:g}": main.rows, "no weight decay": nowd.rows}, name="curves",
               question="Does validation accuracy reach 99% long after training accuracy does?",
               title=f"{op} mod {p}, 50% of the table, 2-layer transformer (width {tbase.model.d_model})",
               caption="accuracy against optimization steps (log axis); dashed: train, solid: validation; same seed and data")
    loss = {k: [{"step": r["step"], "loss": r.get(f"{k}_loss")} for r in main.rows] for k in ("train", "val")}
    ctx.figure(pp.plot_metric_runs, {"train": loss["train"], "validation": loss["val"]}, "loss", name="loss", logy=True,
               ylabel="cross-entropy", question="How do the losses move while the network groks?",
               title=f"weight decay {wd:g}", caption="the validation loss rises while the training set is memorized, then falls")

    # --- (b) steps to 99% validation accuracy against the training fraction -------------------------------
    fracs = ctx.pick(full=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], quick=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8], smoke=[0.4, 0.7])
    fbase = tbase.replace(**{"optim.weight_decay": 1.0}) if full else mlp(ctx, min(fracs))
    model_name = "transformer" if full else f"one-hot MLP (width {fbase.model.width})"
    fdf = ctx.sweep(fbase, {"task.train_frac": fracs}, seeds=seeds, name="fractions")
    frows = [{"training fraction": float(r["task.train_frac"]), "seed": int(r["train.seed"]), "train 99% step": _step(r["train_acc_99_step"]),
              "val 99% step": _step(r["val_acc_99_step"]), "final val acc": r["final.val_acc"]} for _, r in fdf.iterrows()]
    frows.sort(key=lambda r: (r["training fraction"], r["seed"]))
    fbudget = fbase.train.steps
    ctx.table(frows, "fractions", f"Steps to 99% accuracy per training fraction and seed ({model_name}, {fbase.task.op} mod {fbase.task.p})")
    ctx.figure(pp.plot_steps_vs, [r["training fraction"] for r in frows], [r["val 99% step"] for r in frows],
               name="fractions", xlabel="training fraction", budget=fbudget,
               question="Does more training data mean fewer steps to generalize?",
               title=f"{fbase.task.op} mod {fbase.task.p}, {model_name}, weight decay {fbase.optim.weight_decay:g}",
               caption=f"one point per seed; × : not within the budget of {fbudget} steps")
    med = {f: _median([_steps(r["val 99% step"]) for r in frows if r["training fraction"] == f]) for f in fracs}
    for f in fracs:
        ctx.number(f"median val 99% step at fraction {f:g}", fmt_step(None if math.isinf(med[f]) else med[f]))

    # --- (c) ablation at 50% on the same seeds ---------------------------------------------------------
    if not full:
        abl = ctx.sweep(mlp(ctx, 0.5), abl_grid, seeds=seeds, name="ablation")

    def arm(w: float, d: float) -> str:
        return f"{'AdamW, weight decay 1' if w else 'Adam (no weight decay)'}{', dropout 0.1' if d else ''}"

    arows = [{"setting": arm(float(r["optim.weight_decay"]), float(r["model.dropout"])), "seed": int(r["train.seed"]),
              "train 99% step": _step(r["train_acc_99_step"]), "val 99% step": _step(r["val_acc_99_step"]), "final val acc": r["final.val_acc"]}
             for _, r in abl.iterrows()]
    order = [arm(w, d) for w in (1.0, 0.0) for d in (0.0, 0.1)]
    arows.sort(key=lambda r: (order.index(r["setting"]), r["seed"]))
    ctx.table(arows, "ablation", f"Ablation at 50% of the table on the same seeds ({model_name})")
    ctx.figure(pp.plot_step_bars, [f"{r['setting']} (seed {r['seed']})" for r in arows],
               [r["val 99% step"] for r in arows], name="ablation", budget=fbudget, secondary=[r["train 99% step"] for r in arows],
               question="Which intervention makes the network generalize: weight decay or dropout?",
               title=f"50% of the table, {model_name}", caption="hatched: validation accuracy never reached 99% within the budget")

    # --- (d) the operations at 50% -----------------------------------------------------------------------
    ops = ctx.pick(full=OPS, quick=OPS, smoke=["x+y", HARDEST])
    obase = tbase.replace(**{"optim.weight_decay": 1.0}) if full else mlp(ctx, 0.5)
    odf = ctx.sweep(obase, {"task.op": ops}, seeds=1, name="operations")
    orows = {r["task.op"]: {"operation": r["task.op"], "train 99% step": _step(r["train_acc_99_step"]), "val 99% step": _step(r["val_acc_99_step"]),
                            "final val acc": r["final.val_acc"], "generalizes within budget": _step(r["val_acc_99_step"]) is not None}
             for _, r in odf.iterrows()}
    orows = [orows[o] for o in ops]
    ctx.table(orows, "operations", f"The operations at 50% of the table, mod {obase.task.p} ({model_name}, {obase.train.steps} steps)")
    ctx.figure(pp.plot_step_bars, [f"{r['operation']} mod {obase.task.p}" for r in orows],
               [r["val 99% step"] for r in orows], name="operations", budget=obase.train.steps,
               secondary=[r["train 99% step"] for r in orows],
               question="Which operations does the network learn to generalize at 50% of the table?",
               title=f"50% of the table, {model_name}", caption="hatched: validation accuracy never reached 99% within the budget")
    ctx.number("operations that generalize", [r["operation"] for r in orows if r["generalizes within budget"]])

    # --- checks ------------------------------------------------------------------------------------------
    ctx.check("grokking: validation 99% long after training 99%", t99 is not None and v99 is not None and v99 >= 3 * max(t99, 1),
              f"{op} mod {p}, weight decay {wd:g}: train 99% at step {fmt_step(t99)}, val 99% at {fmt_step(v99)}")
    ctx.check("weight decay makes the transformer generalize sooner", _steps(nowd.summary["val_acc_99_step"]) > _steps(v99),
              f"no weight decay: val 99% at {fmt_step(nowd.summary['val_acc_99_step'])}, final val acc "
              f"{nowd.summary['final']['val_acc']:.3f} (weight decay {wd:g}: {main.summary['final']['val_acc']:.3f})")
    xs = pd.Series([r["training fraction"] for r in frows], dtype=float)
    ys = pd.Series([min(_steps(r["val 99% step"]), 10 * fbudget) for r in frows], dtype=float)
    rho = float(xs.corr(ys, method="spearman")) if len(set(xs)) > 1 and ys.nunique() > 1 else float("nan")
    lo, hi = min(fracs), max(fracs)
    ctx.number("Spearman ρ(training fraction, steps to val 99%)", rho)
    ctx.check("more data, fewer steps", rho <= -0.7 and med[hi] < med[lo],
              f"Spearman ρ = {rho:.2f} over {len(frows)} runs; median val 99% step {fmt_step(None if math.isinf(med[lo]) else med[lo])} "
              f"at fraction {lo:g}, {fmt_step(None if math.isinf(med[hi]) else med[hi])} at {hi:g}")
    per_seed = {}
    for r in arows:
        per_seed.setdefault(r["seed"], {})[r["setting"]] = r
    wins = [s for s, a in per_seed.items() if _steps(a[order[0]]["val 99% step"]) < _steps(a[order[2]]["val 99% step"])
            and a[order[0]]["final val acc"] > a[order[2]]["final val acc"]]
    ctx.check("weight decay helps on every seed", len(wins) == len(per_seed) and len(per_seed) > 0,
              "; ".join(f"seed {s}: val 99% at {fmt_step(a[order[0]]['val 99% step'])} with weight decay, "
                        f"{fmt_step(a[order[2]]['val 99% step'])} without (final val {a[order[0]]['final val acc']:.2f} vs "
                        f"{a[order[2]]['final val acc']:.2f})" for s, a in sorted(per_seed.items())))
    by_op = {r["operation"]: r for r in orows}
    simple = [o for o in SIMPLE if o in by_op]
    ctx.check("simple operations generalize, the hardest polynomial does not",
              bool(simple) and all(by_op[o]["generalizes within budget"] for o in simple) and HARDEST in by_op
              and not by_op[HARDEST]["generalizes within budget"],
              "; ".join(f"{o}: val 99% at {fmt_step(by_op[o]['val 99% step'])}" for o in [*simple, HARDEST] if o in by_op))
    never = [f for f in fracs if math.isinf(med[f])]
    if never:
        ctx.note(f"fractions {', '.join(f'{f:g}' for f in never)}: the median seed does not reach 99% validation accuracy within {fbudget} steps")


RECIPE = Recipe("power2022", "grokking on algorithmic data: curves, training fraction, weight decay, operations",
                "Power et al. 2022, arXiv 2201.02177", recipe)
