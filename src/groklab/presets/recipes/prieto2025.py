"""Prieto, Barsbey, Mediano & Birdal 2025, "Grokking at the edge of numerical stability" (arXiv 2501.04697).

Initialization: groklab's default draw for the one-hot MLP (N(0, 1/fan_in)). The authors' code trains a
different MLP (ReLU, two hidden layers of 200, no biases, PyTorch's default U(±1/√fan_in), Adam ε = 1e-25);
see docs/models.md.

Paper's setup: modular addition (p = 113, 40% of the table) with an MLP and no weight decay or other
regularization, float32. With softmax cross-entropy the correct-class probability of the memorized
training samples rounds to exactly 1 (softmax collapse), their gradient vanishes and the network stops
before it generalizes; StableMax (s(x) = x + 1 for x ≥ 0, 1/(1 − x) below) cannot collapse this way and
generalizes without regularization.

`full`: x+y mod 113, 40% training data, the one-hot MLP (width 500, quadratic activation), full-batch AdamW
lr 1e-3 with weight decay 0, 20 000 steps, cross-entropy against StableMax cross-entropy, the same seed.
`quick`: the demo's task (x+y mod 59, half the table) and MLP width 256, 3000 steps. Both runs share the
seed, the data split and the initialization; they differ only in the loss.

Expected qualitative result: both fit the training set; the softmax run's training set collapses (the
fraction of training samples with probability exactly 1 goes to 1) and its validation accuracy stays far
below 100%; the StableMax run reaches high validation accuracy.

Both runs train their whole budget (no early stop): the softmax run never generalizes, and the two run side by
side, so stopping the StableMax run early would not shorten the preset.

Wall time (the report gives this run's): quick about a minute on 2 CPU cores; full about 26 min on 2 cores (the
two runs of 20 000 steps in parallel, one core each, about 77 ms a step).
"""

from __future__ import annotations

from groklab.presets.recipes.base import Context, Recipe, fmt_step


def base_config(ctx: Context):
    from groklab import presets

    if ctx.scale == "full":
        cfg = presets.demo(out=None, steps=20_000).replace(**{"task.p": 113, "task.train_frac": 0.4, "model.width": 500})
    else:
        cfg = presets.demo(out=None, steps=ctx.pick(quick=3000, smoke=60))
        if ctx.scale == "smoke":
            cfg = cfg.replace(**{"task.p": 23, "model.width": 32})
    return cfg.replace(**{"optim.weight_decay": 0.0, "train.eval_points": ctx.pick(full=100, quick=50, smoke=10)})


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    df = ctx.sweep(base_config(ctx), {"train.loss": ["ce", "stablemax"]}, seeds=1, name="loss")
    runs = {row["train.loss"]: load_run(row["run_dir"]) for _, row in df.iterrows()}
    label = {"ce": "softmax cross-entropy", "stablemax": "StableMax cross-entropy"}
    rows = {label[k]: r.rows for k, r in runs.items()}
    ce, sm = runs["ce"].summary, runs["stablemax"].summary
    ce_val, sm_val = ce["final"]["val_acc"], sm["final"]["val_acc"]
    collapse = max(r.get("train_collapse_frac", 0.0) or 0.0 for r in runs["ce"].rows)

    ctx.number("softmax: final val acc", ce_val)
    ctx.number("StableMax: final val acc", sm_val)
    ctx.number("softmax: peak collapsed fraction", collapse)

    ctx.figure(pp.plot_accuracy_runs, rows, name="accuracy", question="Does StableMax generalize where softmax does not, without weight decay?",
               title="no weight decay, float32", caption="dashed: train, solid: validation; same seed and data split")
    ctx.figure(pp.plot_metric_runs, rows, "train_collapse_frac", name="collapse", ylabel="training samples with p(correct) = 1 exactly",
               question="Does the softmax run's training set collapse numerically?", title="softmax collapse",
               caption="fraction of training samples whose correct-class probability rounds to exactly 1 in float32")
    ctx.figure(pp.plot_metric_runs, rows, "weight_norm", name="weight_norm", ylabel="total weight norm", question="How do the weight norms grow?",
               title="weight norm (naïve loss minimization scales the logits up)")
    ctx.table([{"loss": label[k], "train 99% step": r.summary["train_acc_99_step"], "val 99% step": r.summary["val_acc_99_step"],
                "final train acc": r.summary["final"]["train_acc"], "final val acc": r.summary["final"]["val_acc"],
                "final collapsed fraction": r.summary["final"].get("train_collapse_frac")} for k, r in runs.items()], "runs", "The two runs")

    ctx.check("both fit the training set", *check_fit(ce, sm))
    ctx.check("softmax collapses", *check_collapse(runs["ce"].rows, runs["stablemax"].rows))
    ctx.check("StableMax generalizes better without regularization", *check_stablemax(ce, sm))


# --- checks: pure functions of the two runs' summaries and rows (tests/test_preset_controls.py) ----------

def check_fit(ce: dict, sm: dict) -> tuple[bool, str]:
    """Both losses fit the training set (≥ 99% final training accuracy)."""
    return (ce["final"]["train_acc"] >= 0.99 and sm["final"]["train_acc"] >= 0.99,
            f"final train acc: softmax {ce['final']['train_acc']:.3f}, StableMax {sm['final']['train_acc']:.3f}")


def _peak_collapse(rows: list[dict]) -> float:
    return max((r.get("train_collapse_frac") or 0.0 for r in rows), default=0.0)


def check_collapse(ce_rows: list[dict], sm_rows: list[dict]) -> tuple[bool, str]:
    """Softmax collapse: at some evaluation at least half the training samples have a correct-class probability
    of exactly 1 in float32 with softmax, at least 0.4 more than ever with StableMax (the loss that cannot
    collapse this way), so the collapse is the loss's doing."""
    c, m = _peak_collapse(ce_rows), _peak_collapse(sm_rows)
    return c >= 0.5 and c >= m + 0.4, f"peak fraction of collapsed training samples: softmax {c:.2f}, StableMax {m:.2f}"


def check_stablemax(ce: dict, sm: dict) -> tuple[bool, str]:
    """StableMax ends ≥ 90% validation accuracy and ≥ 20 points above softmax."""
    ce_val, sm_val = ce["final"]["val_acc"], sm["final"]["val_acc"]
    return (sm_val >= ce_val + 0.2 and sm_val >= 0.9,
            f"final val acc: StableMax {sm_val:.3f} vs softmax {ce_val:.3f} (val 99% at {fmt_step(sm['val_acc_99_step'])} vs "
            f"{fmt_step(ce['val_acc_99_step'])})")

RECIPE = Recipe("prieto2025", "softmax collapse and StableMax without regularization", "Prieto et al. 2025, arXiv 2501.04697", recipe)
