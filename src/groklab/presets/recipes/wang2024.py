"""Wang, Yue, Su & Sun 2024, "Grokked transformers are implicit reasoners: a mechanistic journey to the edge of
generalization" (arXiv 2405.15071), the composition task.

A random knowledge graph (task.group=knowledge, tasks/knowledge.py): atomic facts (h, r) → t, and two-hop
inferred facts (h, r1, r2) → t composed from them. The model trains on every atomic fact and on φ inferred
facts per in-distribution (ID) atomic fact; it is tested on held-out inferred facts of two kinds: ID (their
two hops are ID atomic facts, whose compositions the model saw for other facts) and out-of-distribution (OOD:
both hops are atomic facts the model knows but never saw composed in training). The paper's findings: the
transformer memorizes the training set early and generalizes to the ID split only much later (grokking); it
never generalizes to the OOD split; and the logit lens shows the generalizing circuit, the bridge entity b
of the first hop decodable at the r1 position in the middle layers.

Paper's setup (`full`): 2000 entities, 200 relations, 20 atomic facts per head, 5% of them OOD, φ = 18
(the paper sweeps 3.6–18); GPT-2-shaped decoders of 8 layers (d_model 768, 12 heads) from scratch, AdamW
lr 1e-4, weight decay 0.1, batch 512, up to 1.5·10⁶ steps. Deviations here (also at `full`): the loss is
on the answer token alone (the authors' language-modelling loss covers the whole sequence), atomic facts are
padded with a filler token to the inferred facts' length, and the ID test split is 5% of the ID inferred facts
(the authors' 0.5% of a graph 13× larger) so the small graphs still have a few hundred ID test facts.

`quick`: 100 entities, 24 relations, 20 atomic facts per head (as in the paper), 10% of them OOD (so the OOD
split has about 400 facts), φ = 15; a 4-layer transformer with d_model 64, 4 heads, MLP 256, LayerNorm; AdamW
lr 1e-3, weight decay 0.1, batch 512, 4000 steps. `smoke`: 40 entities, 30 steps.

Expected qualitative result: training accuracy reaches 99% first while ID test accuracy is low; ID test
accuracy rises long after, towards 100%; OOD test accuracy stays low; the logit lens at the final step
decodes the bridge entity at the r1 position in an intermediate layer for ID facts.

Measured wall time and status (2 CPU cores shared with other jobs, load average 9–14, about 0.35 s per step):
quick does NOT yet show the paper's late generalization. A run of the quick configuration (4000 steps, 23 min
at that load) reached training 72% / ID test 15% / OOD 0.2% at step 2211 and training 92% / ID 34% / OOD 0.5%
at step 4000: the ID split rises and the OOD split stays at zero, but ID generalization still tracks
memorization. Smaller φ generalized later: with 150 entities, 8 facts per head and φ = 6, training reached
100% at step 955 with ID at 3.5%, and ID was 3.7% at step 1693. In the paper ID generalization completes one
to two orders of magnitude of steps after memorization, beyond a 5-minute CPU budget at these sizes; the
checks say whether the result appeared.
"""

from __future__ import annotations

from groklab.presets.recipes.base import Context, Recipe, fmt_step


def config(ctx: Context):
    from groklab.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig

    if ctx.scale == "full":
        task = TaskConfig(group="knowledge", n_entities=2000, n_relations=200, out_degree=20, phi=18.0, ood_frac=0.05,
                          id_test_frac=0.005, val_size=3000)
        model = ModelConfig(arch="transformer", n_layers=8, d_model=768, n_heads=12, d_mlp=3072, layernorm=True, act="gelu")
        optim = OptimConfig(name="adamw", lr=1e-4, weight_decay=0.1, warmup_steps=1000)
        train = TrainConfig(steps=1_500_000, batch_size=512, eval_points=120, checkpoint_points=20)
        return RunConfig(task=task, model=model, optim=optim, train=train)
    E, R, D, phi, steps = ctx.pick(quick=(100, 24, 20, 15.0, 4000), smoke=(40, 6, 4, 2.0, 30))
    task = TaskConfig(group="knowledge", n_entities=E, n_relations=R, out_degree=D, phi=phi, ood_frac=0.1, id_test_frac=0.05,
                      val_size=ctx.pick(quick=500, smoke=200))
    model = ModelConfig(arch="transformer", n_layers=4, d_model=ctx.pick(quick=64, smoke=32), n_heads=4,
                        d_mlp=ctx.pick(quick=256, smoke=64), layernorm=True)
    optim = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.1, warmup_steps=ctx.pick(quick=100, smoke=5))
    train = TrainConfig(steps=steps, batch_size=ctx.pick(quick=512, smoke=64), eval_points=ctx.pick(quick=30, smoke=8),
                        checkpoint_points=ctx.pick(quick=6, smoke=3))
    return RunConfig(task=task, model=model, optim=optim, train=train)


def lens_table(run, step: int) -> list[dict]:
    """Logit-lens scores at checkpoint `step`: the bridge entity at the r1 position and the answer at the last
    position, for the ID and OOD test facts, per layer."""
    from groklab.analysis.logit_lens import lens_scores, logit_lens
    from groklab.tasks.knowledge import graph_of

    kg = graph_of(run.config.task)
    model = run.load_model(step)
    out = []
    for split, facts in (("ID", kg.id_test), ("OOD", kg.ood_test)):
        lens = logit_lens(model, kg.tokens(facts))  # (L+1, B, 4, E)
        for what, pos, target in (("bridge b at r1", 1, facts[:, 3]), ("answer t at '='", -1, facts[:, 4])):
            for s in lens_scores(lens, pos, target):
                out.append({"step": step, "split": split, "target": what, **s})
    return out


def recipe(ctx: Context) -> None:
    from groklab.analysis.grokking import crossing_step
    from groklab.report import preset_plots as pp

    cfg = config(ctx)
    run = ctx.run(cfg, "composition")
    rows = run.rows
    t99 = crossing_step(rows, "train_acc", 0.99)
    id90 = crossing_step(rows, "val_acc", 0.9)
    at_t99 = next((r for r in rows if r["step"] == t99), None)
    last = rows[-1]
    steps = [r["step"] for r in rows]

    curves = {name: (steps, [r.get(key) for r in rows]) for name, key in (
        ("train: atomic facts", "train_atomic_acc"), ("train: inferred facts", "train_inferred_acc"),
        ("test: ID inferred", "val_acc"), ("test: OOD inferred", "val_ood_acc"))}
    t = cfg.task
    what = f"{t.n_entities} entities, {t.n_relations} relations, φ = {t.phi}, {cfg.model.n_layers}-layer transformer"
    ctx.figure(pp.plot_lines, curves, name="accuracy", xlabel="optimization step", ylabel="accuracy (%)", percent=True, logx=True,
               markers=False, title=what, question="Does the ID test split generalize long after memorization, and the OOD split not?",
               caption="ID: both hops are ID atomic facts; OOD: both hops are atomic facts never seen composed in training")

    lens_rows = lens_table(run, run.checkpoint_steps[-1])
    ctx.table(lens_rows, "logit_lens", f"Logit lens at step {run.checkpoint_steps[-1]}: top-1 and MRR per layer (layer 0: embeddings)")
    series = {}
    for split in ("ID", "OOD"):
        for target in ("bridge b at r1", "answer t at '='"):
            rs = [r for r in lens_rows if r["split"] == split and r["target"] == target]
            series[f"{split}: {target}"] = ([r["layer"] for r in rs], [r["top1"] for r in rs])
    ctx.figure(pp.plot_lines, series, name="logit_lens", xlabel="layer (0: embeddings)", ylabel="top-1 decoded (%)", percent=True,
               title=f"logit lens at step {run.checkpoint_steps[-1]}",
               question="Where in depth are the bridge entity and the answer decodable?",
               caption="the residual stream after each layer through ln_final and W_U; the bridge at the r1 position, the answer at '='")

    # --- numbers and checks -------------------------------------------------------------------------------
    ctx.number("train acc ≥ 99% at step", fmt_step(t99))
    ctx.number("ID test acc ≥ 90% at step", fmt_step(id90))
    ctx.number("ID test acc when train reaches 99%", None if at_t99 is None else round(at_t99["val_acc"], 3))
    ctx.number("final ID / OOD test acc", f"{last['val_acc']:.3f} / {last['val_ood_acc']:.3f}")
    best_bridge = max((r for r in lens_rows if r["split"] == "ID" and r["target"] == "bridge b at r1"), key=lambda r: r["top1"])
    ctx.number("ID bridge decodable at r1: best layer, top-1", f"layer {best_bridge['layer']}, {best_bridge['top1']:.2f}")

    ctx.check("memorization first: training reaches 99% while the ID test split is far below",
              at_t99 is not None and at_t99["val_acc"] <= 0.5,
              f"train 99% at step {fmt_step(t99)}, ID test acc then {at_t99['val_acc'] if at_t99 else float('nan'):.2f}")
    ctx.check("ID generalization long after memorization (ID test ≥ 90% at ≥ 2× the memorization step)",
              t99 is not None and id90 is not None and id90 >= 2 * t99,
              f"train 99% at {fmt_step(t99)}, ID test 90% at {fmt_step(id90)}")
    ctx.check("the OOD split fails: final OOD test accuracy ≤ 30% while ID ≥ 90%",
              last["val_ood_acc"] <= 0.3 and last["val_acc"] >= 0.9,
              f"ID {last['val_acc']:.2f}, OOD {last['val_ood_acc']:.2f} at step {last['step']}")
    n_layers = cfg.model.n_layers
    ctx.check("logit lens: the bridge entity is decodable at the r1 position in an intermediate layer (ID facts)",
              0 < best_bridge["layer"] < n_layers and best_bridge["top1"] >= 0.3,
              f"best layer {best_bridge['layer']} of {n_layers}, top-1 {best_bridge['top1']:.2f}")


RECIPE = Recipe("wang2024", "knowledge composition: grokked transformers as implicit reasoners", "Wang et al. 2024, arXiv 2405.15071", recipe)
