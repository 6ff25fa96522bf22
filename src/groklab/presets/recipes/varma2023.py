"""Varma, Shah, Kenton, Kramár & Kumar 2023, "Explaining grokking through circuit efficiency" (arXiv 2309.02390).

The theory: a task has a memorizing circuit, fast to learn, and a generalizing one, slow to learn but more
efficient (larger logits for the same parameter norm). The memorizing circuit's efficiency falls as the
training set grows, the generalizing one's does not, so there is a critical data size D_crit where they are
equally efficient. Above it weight decay ends in the generalizing circuit (grokking); below it in the
memorizing one. Two predictions this preset tests: *ungrokking* — a network that grokked on a large set and
then trains on a subset smaller than D_crit loses its validation accuracy again; and *semi-grokking* — near
D_crit, training from scratch can end at partial validation accuracy, reached late.

The intervention is `reg.swap_step` / `reg.swap_train_frac` (train/interventions.py `SwapTrainSet`): from
that step on the run trains on a seeded random subset of its training set; the validation set is unchanged.
`reg.efficiency` logs `logit_norm` (mean L2 norm of the training set's logit vectors) and
`logit_per_param_norm` (that over the total parameter norm), the paper's notion of efficiency; the
parameter norm itself is `weight_norm`.

Paper's setup (`full`, our reading of it): a + b mod 113 with tokens (a, b, =), a one-layer transformer
(d_model 128, 4 heads, MLP 512, no LayerNorm) trained full-batch with AdamW (lr 1e-3, weight decay 1) on a
large share of the table until it groks, then on random subsets of several sizes; test accuracy is read at
the end. `full` here: 50% of the table, swap at step 10 000, 30 000 steps in all, kept fractions 0.05–1.

`quick`: p = 31 and 60% of the table (577 equations), d_model 64, MLP 256, lr 3e-3 (the Nanda quick setup),
swap at step 1500 of 2700 (validation ≥ 95% by step 1400), kept fractions 0.1, 0.2, 0.35, 0.6 and 1 (58, 115, 202, 346, 577 equations), and
three runs from scratch at about the same sizes (20%, 36% and 60% of the table) for grokking against
semi-grokking. `smoke`: p = 11, 40 steps.

Expected qualitative result: every run has grokked (validation ≥ 90%) before the swap; after it, the runs
kept on the smallest subsets fall back to low validation accuracy while still fitting their training set
(ungrokking), and the runs on the larger subsets stay generalized; the size where this changes is the
critical data size. The examples dropped at the swap (`swap_dropped_acc`) fall with the validation set.

Measured wall time: quick 7.6 min on 2 CPU cores shared with other jobs (load average about 13, so a quiet
machine takes well under that): 3/3 checks pass. Every run at 95% validation before the swap at step 1500;
at the end (step 2700) validation accuracy is 7% on 58 kept equations, 18% on 115, 48% on 202, 90% on 346
and 100% on all 577 (training accuracy 100% on every subset): the critical size lies between about 200 and
350 equations. From scratch for 2700 steps: 192 equations 3% (memorized), 346 equations 21% with training at
100% (partial generalization), 577 equations 100%.
"""

from __future__ import annotations

from groklab.presets.recipes.base import Context, Recipe


def base_config(ctx: Context):
    from groklab import presets

    if ctx.scale == "full":
        cfg = presets.nanda2023(p=113, train_frac=0.5, steps=30_000)
        return cfg.replace(**{"reg.swap_step": 10_000, "reg.efficiency": True, "train.eval_points": 120, "train.checkpoint_points": 1})
    p, steps, swap = ctx.pick(quick=(31, 2700, 1500), smoke=(11, 40, 20))
    cfg = presets.nanda2023(p=p, train_frac=0.6, steps=steps)
    return cfg.replace(**{"model.d_model": ctx.pick(quick=64, smoke=16), "model.d_mlp": ctx.pick(quick=256, smoke=32), "optim.lr": 3e-3,
                          "reg.swap_step": swap, "reg.efficiency": True,
                          "train.eval_points": ctx.pick(quick=30, smoke=8), "train.checkpoint_points": 1})


def _before(rows: list[dict], step: int) -> dict:
    """The last evaluation before `step`."""
    return [r for r in rows if r["step"] < step][-1]


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    base = base_config(ctx)
    swap = base.reg.swap_step
    keep = ctx.pick(full=[0.05, 0.1, 0.2, 0.35, 0.6, 1.0], quick=[0.1, 0.2, 0.35, 0.6, 1.0], smoke=[0.3, 1.0])
    df = ctx.sweep(base, {"reg.swap_train_frac": keep}, seeds=1, name="ungrok")
    n_full = base.task.n_train
    runs = sorted(((float(r["reg.swap_train_frac"]), load_run(r["run_dir"]).rows) for _, r in df.iterrows()), key=lambda t: t[0])

    table = []
    for frac, rows in runs:
        pre, last = _before(rows, swap), rows[-1]
        table.append({
            "kept fraction": frac, "training set after the swap": int(last["train_size"]),
            "val acc before the swap": pre["val_acc"], "final val acc": last["val_acc"], "final train acc": last["train_acc"],
            "final acc on the dropped examples": last.get("swap_dropped_acc"),
            "logit/param norm before": pre["logit_per_param_norm"], "logit/param norm final": last["logit_per_param_norm"],
            "param norm final": last["weight_norm"],
        })
    ctx.table(table, "ungrok", f"Ungrokking: {n_full} training equations until step {swap}, then a random subset")

    series = {f"{t['training set after the swap']} equations": rows for t, (_, rows) in zip(table, runs)}
    what = f"{base.task.op} mod {base.task.p}, {n_full} equations, swap at step {swap}"
    ctx.figure(pp.plot_accuracy_runs, series, name="ungrok_accuracy", title=what,
               question="Does a network that grokked lose its validation accuracy when it trains on a smaller subset?",
               caption="dashed: train (the current training set), solid: validation (unchanged by the swap)")
    ctx.figure(pp.plot_lines, {"before the swap": ([t["training set after the swap"] for t in table], [t["val acc before the swap"] for t in table]),
                               "end of training": ([t["training set after the swap"] for t in table], [t["final val acc"] for t in table])},
               name="ungrok_vs_size", xlabel="training set size after the swap", ylabel="validation accuracy (%)", percent=True, logx=True,
               title="the critical data size", question="Below which training-set size does the grokked network ungrok?")
    ctx.figure(pp.plot_metric_runs, series, "logit_per_param_norm", name="efficiency", ylabel="mean ‖logits‖ / ‖θ‖ on the training set",
               title="circuit efficiency", logy=True, question="How does efficiency (logit norm per parameter norm) move through the swap?")

    # --- from scratch: grokking, semi-grokking or memorization across training-set sizes ---------------------
    sizes = ctx.pick(full=[0.1, 0.2, 0.3, 0.5], quick=[0.2, 0.36, 0.6], smoke=[0.3])
    scratch = ctx.sweep(base.replace(**{"reg.swap_step": None}), {"task.train_frac": sizes}, seeds=1, name="scratch")
    sruns = sorted(((float(r["task.train_frac"]), load_run(r["run_dir"])) for _, r in scratch.iterrows()), key=lambda t: t[0])
    srows = [(frac, run.rows) for frac, run in sruns]
    stable = []
    for frac, run in sruns:
        rows = run.rows
        last = rows[-1]
        v = last["val_acc"]
        kind = "grokked" if v >= 0.9 else ("partial (semi-grokking?)" if v >= 0.2 and last["train_acc"] >= 0.99 else "memorized / not generalized")
        stable.append({"train fraction": frac, "training set": int(run.summary["n_train"]), "final train acc": last["train_acc"],
                       "final val acc": v, "outcome": kind, "logit/param norm final": last["logit_per_param_norm"],
                       "param norm final": last["weight_norm"]})
    ctx.table(stable, "scratch", "Trained from scratch at several training-set sizes")
    ctx.figure(pp.plot_accuracy_runs, {f"{t['training set']} equations": rows for t, (_, rows) in zip(stable, srows)}, name="scratch_accuracy",
               title=f"{base.task.op} mod {base.task.p} from scratch", question="Near the critical size, does training end at partial generalization?")

    # --- numbers and checks -------------------------------------------------------------------------------
    for t in table:
        ctx.number(f"{t['training set after the swap']} equations after the swap: val acc before / end",
                   f"{t['val acc before the swap']:.3f} / {t['final val acc']:.3f}")
    for t in stable:
        ctx.number(f"from scratch, {t['training set']} equations: final val acc", round(t["final val acc"], 3))
    stays = [t for t in table if t["final val acc"] >= 0.9]
    falls = [t for t in table if t["final val acc"] < 0.5]
    if stays and falls:
        lo = max(t["training set after the swap"] for t in falls)
        hi = min(t["training set after the swap"] for t in stays)
        ctx.number("critical data size (equations), bracket from the swap sweep", f"{lo}–{hi}" if lo < hi else f"not monotone ({lo} ungrokked, {hi} stayed)")
    ctx.check("the network grokked on the large set before the swap", all(t["val acc before the swap"] >= 0.9 for t in table),
              "; ".join(f"{t['training set after the swap']}: val {t['val acc before the swap']:.2f} before step {swap}" for t in table))
    small, large = table[0], table[-1]
    ctx.check("ungrokking: on the smallest subset validation accuracy falls while the subset stays fitted",
              small["val acc before the swap"] >= 0.9 and small["final val acc"] <= 0.5 and small["final train acc"] >= 0.99,
              f"{small['training set after the swap']} equations: val {small['val acc before the swap']:.2f} → {small['final val acc']:.2f}, "
              f"train {small['final train acc']:.2f}")
    ctx.check("above the critical size the network stays generalized", large["final val acc"] >= 0.9,
              f"{large['training set after the swap']} equations: val {large['final val acc']:.2f} at the end")
    ctx.note("the validation set is the part of the table never trained on; the examples dropped at the swap are a second held-out "
             "set (swap_dropped_acc) and fall with it")


RECIPE = Recipe("varma2023", "ungrokking and the critical data size (circuit efficiency)", "Varma et al. 2023, arXiv 2309.02390", recipe)
