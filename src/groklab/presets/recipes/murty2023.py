"""Murty, Sharma, Andreas & Manning 2023, "Grokking of hierarchical structure in vanilla transformers"
(arXiv 2305.18741): structural grokking on Dyck, with the tree-structuredness measure of Murty et al. 2022
("Characterizing intrinsic compositionality in transformers with tree projections", arXiv 2211.01288).

Paper's setup (`full` follows it in spirit; the paper's Dyck model is a language model): Dyck-20 (20 bracket
types) with nesting ≤ 10; transformer language models of 2–10 layers (d_model 512, 8 heads) trained far
beyond in-distribution saturation (hundreds of thousands of steps); the test split holds strings whose
top-level bracket skeletons never occur in training, scored on predicting closing brackets whose open bracket
is ≥ 10 tokens back. Tree-structuredness is the t-score of tree projections: for every span, the cosine distance
between its summed final-layer vectors in context and with attention masked to the span (SCI), the binary tree
of least SCI, and how much better it is than random trees.

Here (task.group=dyck, tasks/dyck.py): the model reads a prefix and names the bracket type that closes next (the
loss is on that answer alone, not a language-modelling loss over the string). Validation prefixes are unseen
prefixes from the training process; the out-of-distribution (OOD) split is the paper's kind: prefixes with a
top-level skeleton no training prefix has and a dependency of at least half the maximum length. Tree projections
(analysis/tree_projection.py) use real attention masking (the transformer's analysis-only `key_mask`) and the
paper's top-down projection, since with a causal decoder every span at the sentence start is context-free and
the exact argmin collapses to the left-branching tree. `full`: Dyck-20, depth ≤ 10, prefixes ≤ 40 tokens,
20 000 training prefixes, 6 layers, d_model 256, 8 heads, 300 000 steps, and the authors' optimizer from their
code (MurtyShikhar/structural-grokking, training_utils.py): AdamW lr 1e-4, no weight decay, eps 1e-7, betas
(0.9, 0.999), gradients clipped to global norm 1, batch 8 in shuffled epochs, 10 000 warm-up steps from 0 and a
linear decay that would reach 0 at their 2·10⁶ steps (so the lr of every step here is theirs).

`quick`: Dyck-2, nesting ≤ 4, prefixes of 2–16 tokens, 400 training prefixes; 2 layers, d_model 64, 4 heads,
MLP 256, LayerNorm; AdamW lr 1e-3, weight decay 1, batch 256, 1500 steps (in-distribution validation
saturates within about 100); tree projections of 24 validation prefixes of ≥ 8 tokens at 10 checkpoints.
`smoke`: 100 steps of a smaller model, for tests of the machinery.

Expected qualitative result: training and in-distribution validation accuracy saturate early; OOD accuracy
keeps rising long after (structural grokking); the t-score rises over training along with OOD accuracy; the
projection's bracketing of the Dyck constituents (matched pairs) beats random binary trees.

Wall time and results (quick, 2026-11-30, 2 CPU cores shared with other jobs, load average 5–7): 3.0 minutes for
the recipe (training 170 s on one thread, tree projections of 10 checkpoints about 10 s), 3.2 minutes with
the report. Validation ≥ 95% at step 94 (training 99% at 80); from there to the end OOD accuracy 0.70 → 0.85
while validation went 0.96 → 0.98; t-score −0.003 (step 0), 0.057 (step 130), 0.149 (step 294), 0.286 (step
1500), Spearman 0.94 with OOD accuracy over checkpoints; bracketing F1 0.33 against 0.19 for random trees.
With 1000 training prefixes instead of 400 the OOD split was already at 0.88 when validation saturated and
gained 3 points (the check fails there). The effect is seed-fragile at this scale: with task.seed = train.seed
= 1 and 2 OOD accuracy still rose after validation saturated (0.81 → 0.86 and 0.80 → 0.85, validation +0.01)
but by less than the check's 0.10, and seed 2's t-score fell back to 0.011 at its last checkpoint (a loss
spike at the end; Spearman with OOD accuracy 1.00 before it); the recipe trains seed 0. Read the t-score together with the mean SCI in the same figure:
part of its rise is span vectors growing more context-dependent overall (mean SCI 0.11 → 0.44).
"""

from __future__ import annotations

import math

from groklab.presets.recipes.base import Context, Recipe, fmt_step, spearman

FULL_STEPS = 300_000
"""`full`'s budget (the authors' scheduler runs to 2·10⁶ steps; their Dyck curves are read in the first few 10⁵)."""
SATURATED = 0.95
"""In-distribution validation accuracy counted as saturated."""


def config(ctx: Context):
    from groklab.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig

    if ctx.scale == "full":
        task = TaskConfig(group="dyck", dyck_k=20, dyck_depth=10, dyck_len=40, train_size=20_000, val_size=2000)
        model = ModelConfig(arch="transformer", n_layers=6, d_model=256, n_heads=8, d_mlp=1024, layernorm=True)
        # The authors' training_utils.py: AdamW lr 1e-4, weight decay 0, eps 1e-7, clip_grad_norm_ 1, batch 8 in
        # shuffled epochs, transformers' linear schedule: 10⁴ warm-up steps from 0, then linear decay to 0 at
        # step 2·10⁶. Over our STEPS the lr is exactly theirs: linear decay ending at lr·(T − STEPS)/(T − W).
        T, W = 2_000_000, 10_000
        optim = OptimConfig(name="adamw", lr=1e-4, weight_decay=0.0, beta2=0.999, eps=1e-7, grad_clip=1.0,
                            warmup_steps=W, warmup_from_zero=True, schedule="linear", lr_min_frac=(T - FULL_STEPS) / (T - W))
        train = TrainConfig(steps=FULL_STEPS, batch_size=8, batch_order="epoch", eval_points=120, checkpoint_points=20)
        return RunConfig(task=task, model=model, optim=optim, train=train)
    task = TaskConfig(group="dyck", dyck_k=2, dyck_depth=4, dyck_len=ctx.pick(quick=16, smoke=10),
                      train_size=ctx.pick(quick=400, smoke=200), val_size=ctx.pick(quick=500, smoke=100))
    model = ModelConfig(arch="transformer", n_layers=2, d_model=ctx.pick(quick=64, smoke=32), n_heads=4,
                        d_mlp=ctx.pick(quick=256, smoke=64), layernorm=True)
    optim = OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0)
    train = TrainConfig(steps=ctx.pick(quick=1500, smoke=100), batch_size=ctx.pick(quick=256, smoke=64),
                        eval_points=ctx.pick(quick=40, smoke=10), checkpoint_points=ctx.pick(quick=10, smoke=4))
    return RunConfig(task=task, model=model, optim=optim, train=train)


def tree_rows(run, n_sentences: int, min_len: int) -> list[dict]:
    """Tree projections at every checkpoint of `run` (`analysis.tree_projection.dyck_tree_rows`, what
    `groklab analyze RUN --what tree` writes) on its validation prefixes, with the accuracies logged nearest."""
    from groklab.analysis.tree_projection import dyck_tree_rows
    from groklab.tasks.dataset import build_dataset

    by_step = {r["step"]: r for r in run.rows}
    x = build_dataset(run.config.task).x_val
    out = []
    for r in dyck_tree_rows(((s, run.load_model(s)) for s in run.checkpoint_steps), x, run.config.task.dyck_k, n_sentences, min_len):
        near = by_step[min(by_step, key=lambda s: abs(s - r["step"]))]
        r.pop("n_sentences")
        out.append({**r, "val_acc": near["val_acc"], "val_ood_acc": near.get("val_ood_acc")})
    return out


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp

    run = ctx.run(config(ctx), "dyck")
    rows = run.rows
    trees = tree_rows(run, ctx.pick(full=100, quick=24, smoke=6), ctx.pick(full=16, quick=8, smoke=6))
    s_id = saturation_step(rows)
    final = rows[-1]
    ctx.number("in-distribution validation ≥ 95% at step", fmt_step(s_id))
    ctx.number("final train / validation / OOD accuracy", [final["train_acc"], final["val_acc"], final.get("val_ood_acc")])
    ctx.number("t-score first / last checkpoint", [trees[0]["t_score"], trees[-1]["t_score"]])
    ctx.number("parse F1 last checkpoint (projection / random trees)", [trees[-1]["parse_f1"], trees[-1]["random_f1"]])

    curve = [r for r in rows if r["step"] >= 1]
    xs = [r["step"] for r in curve]
    ctx.figure(pp.plot_lines, {"train": (xs, [r["train_acc"] for r in curve]),
                               "validation (in distribution)": (xs, [r["val_acc"] for r in curve]),
                               "OOD (novel skeletons, long dependencies)": (xs, [r.get("val_ood_acc") for r in curve])},
               name="curves", xlabel="optimization step", ylabel="accuracy (%)", logx=True, percent=True, markers=False,
               title=f"Dyck-{run.config.task.dyck_k}, depth ≤ {run.config.task.dyck_depth}, prefixes ≤ {run.config.task.dyck_len} tokens",
               question="Does out-of-distribution accuracy keep rising long after in-distribution accuracy saturates?",
               caption="accuracy against optimization steps (log axis): training prefixes, unseen prefixes from the training "
                       "process, and structurally novel prefixes with long dependencies")
    tx = [max(t["step"], 1) for t in trees]
    ctx.figure(pp.plot_lines, {"t-score (tree projection vs random trees)": (tx, [t["t_score"] for t in trees]),
                               "mean SCI of spans": (tx, [t["mean_sci"] for t in trees])},
               name="tscore", xlabel="optimization step (checkpoints; step 0 drawn at 1)", ylabel="cosine distance", logx=True,
               question="Does the model become more tree-structured as it generalizes?",
               caption="t-score: mean SCI of random binary trees minus that of the tree projection, per constituent "
                       "(0: no tree is preferred); mean SCI: how much span vectors depend on their context")
    ctx.figure(pp.plot_lines, {"tree projection": (tx, [t["parse_f1"] for t in trees]),
                               "random binary trees": (tx, [t["random_f1"] for t in trees])},
               name="parse_f1", xlabel="optimization step (checkpoints; step 0 drawn at 1)", ylabel="bracketing F1 (%)",
               logx=True, percent=True,
               question="Do the projected trees bracket the Dyck constituents?",
               caption="unlabelled bracketing F1 against the matched bracket pairs of each prefix")
    ctx.table(trees, "tree_projection", "Tree projections at every checkpoint")

    ctx.check("in-distribution fit early", *check_fit(rows, s_id))
    ctx.check("structural grokking: OOD rises long after in-distribution saturates", *check_late_ood(rows, s_id))
    ctx.check("tree-structuredness rises with OOD accuracy", *check_tree_rises(trees, s_id))
    ctx.check("projections bracket Dyck constituents above chance", *check_parse(trees))


# --- checks: pure functions of metrics rows and tree rows (tests/test_structural.py) ----------------------
def saturation_step(rows: list[dict], level: float = SATURATED) -> int | None:
    """The first logged step at which in-distribution validation accuracy is ≥ `level`."""
    return next((r["step"] for r in rows if r["val_acc"] >= level), None)


def _at(rows: list[dict], step: int) -> dict:
    return min(rows, key=lambda r: abs(r["step"] - step))


def check_fit(rows: list[dict], s_id: int | None) -> tuple[bool, str]:
    """Training accuracy ≥ 99% and validation ≥ 95% within the first tenth of training, and still there at the end."""
    last = rows[-1]
    ok = (s_id is not None and s_id <= last["step"] / 10 and last["train_acc"] >= 0.99 and last["val_acc"] >= SATURATED)
    return ok, (f"validation ≥ {SATURATED:.0%} first at step {fmt_step(s_id)} of {last['step']}; final train "
                f"{last['train_acc']:.3f}, validation {last['val_acc']:.3f}")


def _median3(xs: list[float]) -> float:
    """The median of the last three values (a lone loss spike at the end does not decide a check)."""
    tail = sorted(xs[-3:])
    return tail[len(tail) // 2]


def check_late_ood(rows: list[dict], s_id: int | None, gain: float = 0.10) -> tuple[bool, str]:
    """After validation saturates (step s), OOD accuracy gains ≥ `gain` from its value at s to the end (median of
    the last three evaluations), while validation gains at most half as much over the same steps. A run whose OOD
    accuracy rises together with validation, or never, fails."""
    ood = [r for r in rows if r.get("val_ood_acc") is not None]
    if s_id is None or not ood:
        return False, f"validation saturates at step {fmt_step(s_id)}; {'no' if not ood else len(ood)} OOD evaluations"
    at_s = _at(ood, s_id)
    end, val_end = _median3([r["val_ood_acc"] for r in ood]), _median3([r["val_acc"] for r in ood])
    d_ood, d_val = end - at_s["val_ood_acc"], val_end - at_s["val_acc"]
    ok = d_ood >= gain and d_val <= d_ood / 2
    return ok, (f"from validation saturation (step {at_s['step']}) to the end (median of the last 3 evaluations): OOD "
                f"accuracy {at_s['val_ood_acc']:.3f} → {end:.3f}, validation {at_s['val_acc']:.3f} → {val_end:.3f}")


def check_tree_rises(trees: list[dict], s_id: int | None, rise: float = 0.02, rho: float = 0.5) -> tuple[bool, str]:
    """The t-score at the last checkpoint exceeds the first checkpoint's by ≥ `rise` and the one nearest validation
    saturation by ≥ `rise` / 2 (it keeps rising after in-distribution fit), and across checkpoints it rank-correlates
    with OOD accuracy (Spearman ≥ `rho`)."""
    pts = [t for t in trees if t.get("val_ood_acc") is not None and t["t_score"] == t["t_score"]]
    if len(pts) < 3 or s_id is None:
        return False, f"{len(pts)} checkpoints with a t-score and OOD accuracy; validation saturates at step {fmt_step(s_id)}"
    first, last, at_s = pts[0], pts[-1], _at(pts, s_id)
    r = spearman([t["t_score"] for t in pts], [t["val_ood_acc"] for t in pts])
    ok = last["t_score"] - first["t_score"] >= rise and last["t_score"] - at_s["t_score"] >= rise / 2 and r >= rho
    return ok, (f"t-score {first['t_score']:.3f} (step {first['step']}), {at_s['t_score']:.3f} (step {at_s['step']}, validation "
                f"saturated), {last['t_score']:.3f} (step {last['step']}); Spearman with OOD accuracy {r:.2f}")


def check_parse(trees: list[dict], margin: float = 0.05) -> tuple[bool, str]:
    """At the last checkpoint the projection's bracketing F1 beats random binary trees' by ≥ `margin`."""
    last = trees[-1]
    ok = last["parse_f1"] - last["random_f1"] >= margin
    return ok, f"bracketing F1 {last['parse_f1']:.3f} (projection) vs {last['random_f1']:.3f} (random trees) at step {last['step']}"


RECIPE = Recipe("murty2023", "structural grokking on Dyck, with tree projections",
                "Murty et al. 2023, arXiv 2305.18741", recipe)
