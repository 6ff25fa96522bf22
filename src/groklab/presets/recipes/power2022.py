"""Power, Burda, Edwards, Babuschkin & Misra 2022, "Grokking: generalization beyond overfitting on small
algorithmic datasets" (arXiv 2201.02177).

Model and initialization: the authors' transformer (openai/grok, grok/transformer.py) at `full` and `smoke`
(`presets.power2022`): LayerNorm after each residual sum and no final one (`model.norm_position='post'`), fixed
sinusoidal positions (`model.pos_embed='sinusoidal'`), no biases anywhere (`model.transformer_bias='none'`), and
PyTorch's default draw, as their code sets none (`model.init_dist='torch'`): W_E N(0, 1) (nn.Embedding); every
weight matrix U(±1/√fan_in) (nn.Linear): the per-head query, key and value Linear(d_model, d_model/heads) and
W_O Linear(d_model, d_model) fan-in d_model, the MLP's Linear(d_model, 4·d_model) d_model and Linear(4·d_model,
d_model) 4·d_model, the readout d_model; LayerNorm gains 1 and biases 0. What still differs: the readout
covers the p answers where theirs spans the whole token vocabulary, and the loss is on the answer token
alone. `quick`'s transformer is groklab's default one (pre-LN with a final LayerNorm, learned positions,
zero-initialized biases, weights N(0, 1/fan_in), W_E and W_pos N(0, 1/d_model)), because at width 64 the
authors' model does not grok within a quick budget: x+y mod 31, weight decay 3, with the authors' draw
(groklab's layout) validation 57% at step 1500 and 94% at step 5000 (99% never); with their layout and draw
41% at step 1500 (train 99% at 272); against 99% at step 909–1051 with groklab's default (measured
2026-11-30). The one-hot MLP of `quick`'s grids is not the paper's model and keeps groklab's default draw.

Paper's setup (`full`): equations x ∘ y = z of a binary operation mod p = 97, a random fraction of the table
for training and the rest for validation, each equation the tokens (x, ∘, y, =) with the loss and accuracy
on the answer alone; a decoder-only transformer with 2 layers, width 128, 4 heads (MLP 512, LayerNorm,
causal attention); AdamW lr 1e-3, weight decay 1, β = (0.9, 0.98), 10 warm-up steps, minibatches of
min(512, ⌈n_train / 2⌉) (512 for every training fraction ≥ 0.11 at p = 97), 10⁵ steps. Three questions,
all on the transformer and x/y in `full`:
(a, b) steps until validation accuracy reaches 99% against the training fraction (0.2 … 0.8, 3 seeds), with
    weight decay 1 and without (AdamW against plain Adam) on the same seeds, so that every run without
    weight decay has the data split and initialization of its twin; the training and validation curves of
    seed 0 at 50% of the table are the paper's first figure;
(c) which of the paper's nine modular operations reach 99% validation accuracy at 50% of the table.

`quick` (minutes on 2 CPU cores, where this transformer costs 20–40 ms a step even at width 64): the curves
are the transformer at width 64 (4 heads of 16, MLP 256, still 2 layers with LayerNorm) on x+y mod 31 with
half the table, batch ⌈n_train / 2⌉ = 240, 1500 steps, weight decay 3 against none, seed 0 (3 instead of 1
so that grokking fits the budget: with 1 it reached 41% at step 1500; x/y, the paper's example, took
1500–2400 steps to 96–99% at this size, twice as long as x+y). The training
fraction, weight decay and operation grids run on the one-hot MLP (width 128, quadratic activation, no
biases), which the batched sweep trains tens of runs at once: x+y mod 47, AdamW lr 3e-3, weight decay 1 or
0, β = (0.9, 0.98), 1200 steps, one batch size for every fraction (⌈n_train / 2⌉ of the smallest, 332; the
paper's rule gives one batch size at p = 97 as well); fractions 0.3 … 0.8 × 2 seeds, the operations mod 47
on seed 0. `smoke` trains its few tiny runs in-process (`ctx.run`) instead of through sweeps.

Expected qualitative result: the training set is fitted within about a hundred steps while validation
accuracy stays near chance and reaches 99% many times later; without weight decay it does not within the
budget. Fewer steps are needed the larger the training fraction, and below some fraction no seed
generalizes within the budget (drawn as ×); without weight decay the runs generalize only at the largest
fractions, if at all. x+y, x−y, x/y and x²+y² generalize at 50%, while x/y-or-x−y and the asymmetric
polynomials (x²+xy+y², x³+xy²+y, …) do not.

Wall time (the report gives this run's): quick a few minutes on 2 CPU cores. full is an upper bound from the
step rate benchmarks/throughput.py measures for the full-size transformer (about 14 steps/s, 70 ms a step, on 2
cores): 7 fractions × 2 weight decays × 3 seeds + 9 operations = 51 runs of at most 10⁵ steps ≤ 100 hours on 2
cores. In `full` every run stops 5000 steps after its validation accuracy first reaches 99%, at the first
evaluation there that still meets it (`train.stop_when`, `train.stop_patience`, `train.stop_patience_from_first`:
the runs dip below 99% for an evaluation or two after they generalize, which restarted the count and cost
thousands of steps a run; every figure needs only the crossing and the plateau after it), so the runs that grok
(with weight decay, most fractions) take a fraction of their budget, and the runs that never do (no weight
decay, small fractions, hard operations) train the whole budget and count as "not within 10⁵ steps". Measured
(README, 2026-12-07): the weight-decay-1 x/y curve alone (7 fractions × 3 seeds) took 4.56 h of one-thread
training, 2.34 h on 2 cores, more than half of it the three runs at fraction 0.2. On a GPU:
`groklab reproduce power2022 --scale full --device cuda`.
"""

from __future__ import annotations

import math

from groklab.presets.recipes.base import Context, Recipe, fmt_step, spearman

OPS = ["x+y", "x-y", "x/y", "x/y if y odd else x-y", "x^2+y^2", "x^2+xy+y^2", "x^2+xy+y^2+x", "x^3+xy", "x^3+xy^2+y"]
SIMPLE, HARDEST = ("x+y", "x-y", "x/y"), "x^3+xy^2+y"
STOP_WHEN, STOP_PATIENCE = "val_acc>=0.99", 5000
"""`full`: stop a run once validation accuracy has stayed ≥ 99% for 5000 more steps (the plateau after grokking
stays visible on the log-step curves); a run that never gets there trains its whole budget (censored)."""


def transformer(ctx: Context):
    """The transformer of the curves (in `full`, of every grid as well)."""
    from groklab import presets

    if ctx.scale == "full":
        # Every full-scale figure needs only the step at which validation reaches 99% (and the curves a while
        # after it): a run stops STOP_PATIENCE steps after validation accuracy first reaches 99%, dips or not.
        return presets.power2022(op="x/y", p=97, train_frac=0.5, steps=100_000).replace(
            **{"train.eval_points": 200, "train.checkpoint_points": 10, "train.stop_when": STOP_WHEN, "train.stop_patience": STOP_PATIENCE,
               "train.stop_patience_from_first": True})
    p, d, steps, wd = ctx.pick(quick=(31, 64, 1500, 3.0), smoke=(11, 16, 30, 3.0))
    cfg = presets.power2022(op="x+y", p=p, train_frac=0.5, steps=steps)
    # quick: groklab's default transformer (pre-LN, learned positions, biases) and draw, under which this small
    # transformer groks within its budget; the authors' layout and draw do not (docstring)
    init = ({"model.init_dist": "normal", "model.norm_position": "pre", "model.pos_embed": "learned", "model.transformer_bias": "all"}
            if ctx.scale == "quick" else {})
    return cfg.replace(**init, **{"model.d_model": d, "model.d_mlp": 4 * d, "optim.weight_decay": wd,
                          "train.eval_points": ctx.pick(quick=80, smoke=8), "train.checkpoint_points": 1})


def mlp(ctx: Context, train_frac: float):
    """`quick`: the one-hot MLP of the fraction, weight-decay and operation grids, batched; batch ⌈n_train / 2⌉
    at `train_frac` (at most 512)."""
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


def _grid(ctx: Context, base, grid: dict, seeds: int, name: str):
    """`ctx.sweep(base, grid, seeds)`, except at `smoke` scale: there the few tiny points train in this process
    through `ctx.run`, because a sweep spends seconds starting its worker processes (much longer than such
    runs take), and the smoke test runs in the default test tier. Returns the columns the recipe reads."""
    if ctx.scale != "smoke":
        return ctx.sweep(base, grid, seeds=seeds, name=name)
    import itertools

    import pandas as pd

    rows = []
    for i, (combo, seed) in enumerate(itertools.product(itertools.product(*grid.values()), range(seeds))):
        cfg = base.replace(**dict(zip(grid, combo)), **{"train.seed": seed, "task.seed": seed})
        s = ctx.run(cfg, f"{name}-{i}").summary
        rows.append({"task.op": cfg.task.op, "task.train_frac": cfg.task.train_frac, "optim.weight_decay": cfg.optim.weight_decay,
                     "train.seed": seed, "run_dir": str(ctx.out / "runs" / f"{name}-{i}"), "train_acc_99_step": s["train_acc_99_step"],
                     "val_acc_99_step": s["val_acc_99_step"], "final.val_acc": s["final"]["val_acc"]})
    return pd.DataFrame(rows)


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    full = ctx.scale == "full"
    seeds = ctx.pick(full=3, quick=2, smoke=1)
    tbase = transformer(ctx)
    wd = tbase.optim.weight_decay
    fracs = ctx.pick(full=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], quick=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8], smoke=[0.4, 0.7])
    fbase = tbase if full else mlp(ctx, min(fracs))
    model_name = "transformer" if full else f"one-hot MLP (width {fbase.model.width})"
    fwd = fbase.optim.weight_decay

    # --- (b, c) steps to 99% validation accuracy against the training fraction, with and without weight decay ---
    # (with the same seeds, so that each no-weight-decay run has the data split and initialization of its twin)
    fdf = _grid(ctx, fbase, {"task.train_frac": fracs, "optim.weight_decay": [fwd, 0.0]},
                seeds, "fractions")

    # --- (a) the curves of the transformer at 50%, with and without weight decay ------------------------
    if full:
        curves = fdf[(fdf["task.train_frac"] == 0.5) & (fdf["train.seed"] == 0)]
    else:
        curves = _grid(ctx, tbase, {"optim.weight_decay": [wd, 0.0]}, 1, "transformer")
    runs = {float(r["optim.weight_decay"]): load_run(r["run_dir"]) for _, r in curves.iterrows()}
    main, nowd = runs[wd], runs[0.0]
    t99, v99 = main.summary["train_acc_99_step"], main.summary["val_acc_99_step"]
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

    frows = [{"training fraction": float(r["task.train_frac"]), "weight decay": float(r["optim.weight_decay"]), "seed": int(r["train.seed"]),
              "train 99% step": _step(r["train_acc_99_step"]), "val 99% step": _step(r["val_acc_99_step"]), "final val acc": float(r["final.val_acc"])}
             for _, r in fdf.iterrows()]
    frows.sort(key=lambda r: (-r["weight decay"], r["training fraction"], r["seed"]))
    fbudget = fbase.train.steps
    ctx.table(frows, "fractions", f"Steps to 99% accuracy per training fraction, weight decay and seed ({model_name}, {fbase.task.op} mod {fbase.task.p})")
    with_wd = [r for r in frows if r["weight decay"] == fwd]
    ctx.figure(pp.plot_steps_vs, [r["training fraction"] for r in with_wd], [r["val 99% step"] for r in with_wd],
               name="fractions", xlabel="training fraction", budget=fbudget,
               question="Does more training data mean fewer steps to generalize?",
               title=f"{fbase.task.op} mod {fbase.task.p}, {model_name}, weight decay {fwd:g}",
               caption=f"one point per seed; ×: not within the budget of {fbudget} steps")
    med = {f: _median([_steps(r["val 99% step"]) for r in with_wd if r["training fraction"] == f]) for f in fracs}
    for f in fracs:
        ctx.number(f"median val 99% step at fraction {f:g}", fmt_step(None if math.isinf(med[f]) else med[f]))

    def final_acc(w: float) -> tuple[list[float], list[float]]:
        return fracs, [_median([r["final val acc"] for r in frows if r["weight decay"] == w and r["training fraction"] == f]) for f in fracs]

    ctx.figure(pp.plot_lines, {f"AdamW, weight decay {fwd:g}": final_acc(fwd), "no weight decay (Adam)": final_acc(0.0)}, name="weight_decay",
               xlabel="training fraction", ylabel=f"final validation accuracy (%, budget {fbudget} steps)", percent=True,
               question="Does the network generalize without weight decay?", title=f"{fbase.task.op} mod {fbase.task.p}, {model_name}",
               caption="median over seeds; the same seeds (data split and initialization) with and without weight decay"
                       + (f"; a run stops {STOP_PATIENCE} steps after its validation accuracy reaches 99%" if fbase.train.stop_when else ""))

    # --- (d) the operations at 50% -----------------------------------------------------------------------
    ops = ctx.pick(full=OPS, quick=OPS, smoke=["x+y", HARDEST])
    obase = tbase.replace(**{"optim.weight_decay": 1.0}) if full else mlp(ctx, 0.5)
    odf = _grid(ctx, obase, {"task.op": ops}, 1, "operations")
    orows = {r["task.op"]: {"operation": r["task.op"], "train 99% step": _step(r["train_acc_99_step"]), "val 99% step": _step(r["val_acc_99_step"]),
                            "final val acc": float(r["final.val_acc"]), "generalizes within budget": _step(r["val_acc_99_step"]) is not None}
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
    ctx.check("grokking: validation 99% long after training 99%", *check_grokking(main.summary, f"{op} mod {p}, weight decay {wd:g}"))
    ctx.check("weight decay makes the transformer generalize sooner", *check_wd_sooner(main.summary, nowd.summary, wd))
    ok, detail, rho = check_more_data(with_wd, fracs)
    ctx.number("Spearman ρ(training fraction, steps to val 99%)", rho)
    ctx.check("more data, fewer steps", ok, detail)
    ctx.check("weight decay helps on every seed", *check_wd_every_seed(frows, fwd))
    ctx.check("simple operations generalize, the hardest polynomial does not", *check_operations(orows))
    never = [f for f in fracs if math.isinf(med[f])]
    if never:
        ctx.note(f"fractions {', '.join(f'{f:g}' for f in never)}: the median seed does not reach 99% validation accuracy within {fbudget} steps")


# --- checks: pure functions of summaries and table rows (tests/test_preset_controls.py) ----------------------

def check_grokking(summary: dict, what: str) -> tuple[bool, str]:
    """Validation accuracy reaches 99% at least 3× later than training accuracy."""
    t99, v99 = summary["train_acc_99_step"], summary["val_acc_99_step"]
    return (t99 is not None and v99 is not None and v99 >= 3 * max(t99, 1),
            f"{what}: train 99% at step {fmt_step(t99)}, val 99% at {fmt_step(v99)}")


def check_wd_sooner(main: dict, nowd: dict, wd: float) -> tuple[bool, str]:
    """The weight-decay run reaches 99% validation accuracy, and its twin without weight decay later or never."""
    v99 = main["val_acc_99_step"]
    return (v99 is not None and _steps(nowd["val_acc_99_step"]) > _steps(v99),
            f"no weight decay: val 99% at {fmt_step(nowd['val_acc_99_step'])}, final val acc {nowd['final']['val_acc']:.3f} "
            f"(weight decay {wd:g}: val 99% at {fmt_step(v99)}, final {main['final']['val_acc']:.3f})")


def check_more_data(with_wd: list[dict], fracs: list[float], budget_factor: int = 10) -> tuple[bool, str, float]:
    """Steps to 99% validation accuracy fall with the training fraction: Spearman ρ ≤ −0.7 over the runs (a run
    that never gets there ranks last) and the median at the largest fraction below the one at the smallest."""
    med = {f: _median([_steps(r["val 99% step"]) for r in with_wd if r["training fraction"] == f]) for f in fracs}
    finite = [s for s in (_steps(r["val 99% step"]) for r in with_wd) if not math.isinf(s)]
    cap = budget_factor * max(finite, default=1.0)
    rho = spearman([r["training fraction"] for r in with_wd], [min(_steps(r["val 99% step"]), cap) for r in with_wd])
    lo, hi = min(fracs), max(fracs)
    ok = rho <= -0.7 and med[hi] < med[lo]
    return ok, (f"Spearman ρ = {rho:.2f} over {len(with_wd)} runs; median val 99% step {fmt_step(None if math.isinf(med[lo]) else med[lo])} "
                f"at fraction {lo:g}, {fmt_step(None if math.isinf(med[hi]) else med[hi])} at {hi:g}"), rho


def check_wd_every_seed(frows: list[dict], fwd: float) -> tuple[bool, str]:
    """Every (fraction, seed) run with weight decay that reaches 99% validation accuracy does so sooner than its
    twin without weight decay (same split and initialization); at least one does."""
    with_wd = [r for r in frows if r["weight decay"] == fwd]
    twin = {(r["training fraction"], r["seed"]): r for r in frows if r["weight decay"] == 0.0}
    pairs = [(r, twin[(r["training fraction"], r["seed"])]) for r in with_wd if r["val 99% step"] is not None
             and (r["training fraction"], r["seed"]) in twin]
    better = [a for a, b in pairs if _steps(b["val 99% step"]) > a["val 99% step"]]
    at_half = [(a, b) for a, b in pairs if a["training fraction"] == 0.5]
    return (bool(pairs) and len(better) == len(pairs),
            f"with weight decay {fwd:g}, {len(pairs)} of {len(with_wd)} (fraction, seed) runs reach 99% validation accuracy; "
            f"its twin without weight decay is later or never in {len(better)} of them; at 50%: "
            + ("; ".join(f"seed {a['seed']}: {fmt_step(a['val 99% step'])} vs {fmt_step(b['val 99% step'])} steps "
                         f"(final val {a['final val acc']:.2f} vs {b['final val acc']:.2f})" for a, b in at_half) or "none"))


def check_operations(orows: list[dict]) -> tuple[bool, str]:
    """x+y, x−y and x/y (those run) reach 99% validation accuracy within the budget; x³+xy²+y does not."""
    by_op = {r["operation"]: r for r in orows}
    simple = [o for o in SIMPLE if o in by_op]
    ok = (bool(simple) and all(by_op[o]["generalizes within budget"] for o in simple) and HARDEST in by_op
          and not by_op[HARDEST]["generalizes within budget"])
    return ok, "; ".join(f"{o}: val 99% at {fmt_step(by_op[o]['val 99% step'])}" for o in [*simple, HARDEST] if o in by_op)

RECIPE = Recipe("power2022", "grokking on algorithmic data: curves, training fraction, weight decay, operations",
                "Power et al. 2022, arXiv 2201.02177", recipe)
