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

Expected qualitative result (the checks, pure functions of the swap sweep's table): every run has grokked
(validation ≥ 90%) before the swap; after it, the run kept on the smallest subset falls back to validation
≤ 50% while still fitting its training set (ungrokking), and the runs on the larger subsets stay generalized
(≥ 85%): among the runs whose training set was really cut down, the ones that ungrok are all smaller than
the ones that stay, and the size between them is the critical data size. The run kept on the whole set
does not count for that (it would stay generalized without any swap). The examples dropped at the swap
(`swap_dropped_acc`) fall with the validation set. Controls: without the swap, or with every subset below
(or every one above) the critical size, a check fails (tests/test_preset_controls.py).

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


def ungrok_table(runs: list[tuple[float, list[dict]]], swap: int, n_train: int) -> list[dict]:
    """One row per swap-sweep run (kept fraction, metric rows), smallest kept fraction first: accuracies and
    efficiency before step `swap` and at the end, and the training-set size before and after it (the rows'
    `train_size`, logged with the swap intervention; `n_train` for a run without one)."""
    table = []
    for frac, rows in sorted(runs, key=lambda t: t[0]):
        pre, last = _before(rows, swap), rows[-1]
        table.append({
            "kept fraction": frac, "training set before the swap": int(pre.get("train_size", n_train)),
            "training set after the swap": int(last.get("train_size", n_train)),
            "val acc before the swap": pre["val_acc"], "final val acc": last["val_acc"], "final train acc": last["train_acc"],
            "final acc on the dropped examples": last.get("swap_dropped_acc"),
            "logit/param norm before": pre.get("logit_per_param_norm"), "logit/param norm final": last.get("logit_per_param_norm"),
            "param norm final": last["weight_norm"],
        })
    return table


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    base = base_config(ctx)
    swap = base.reg.swap_step
    keep = ctx.pick(full=[0.05, 0.1, 0.2, 0.35, 0.6, 1.0], quick=[0.1, 0.2, 0.35, 0.6, 1.0], smoke=[0.3, 1.0])
    df = ctx.sweep(base, {"reg.swap_train_frac": keep}, seeds=1, name="ungrok")
    n_full = base.task.n_train
    runs = sorted(((float(r["reg.swap_train_frac"]), load_run(r["run_dir"]).rows) for _, r in df.iterrows()), key=lambda t: t[0])
    table = ungrok_table(runs, swap, n_full)
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
    bracket = critical_bracket(table)
    if bracket is not None:
        ctx.number("critical data size (equations), bracket from the swap sweep", f"{bracket[0]}–{bracket[1]}")
    ctx.check("the network grokked on the large set before the swap", *check_grokked(table, swap))
    ctx.check("ungrokking: on the smallest subset validation accuracy falls while the subset stays fitted", *check_ungrokking(table))
    ctx.check("a critical data size: the subsets above it stay generalized, those below it ungrok", *check_critical(table))
    ctx.note("the validation set is the part of the table never trained on; the examples dropped at the swap are a second held-out "
             "set (swap_dropped_acc) and fall with it")


# --- checks: pure functions of the `ungrok_table` rows (tests/test_preset_controls.py) -----------------------

GROKKED = 0.9
"""Validation accuracy of a network that has grokked (before the swap)."""
STAYS = 0.85
"""A cut-down run above the critical size ends at or above this validation accuracy (the quick run's smallest
such subset, 346 of 577 equations, ends at 0.90: near the critical size a little is lost)."""
FALLS = 0.5
"""A run below the critical size ends at or below this validation accuracy (ungrokked)."""


def _cut(table: list[dict]) -> list[dict]:
    """The runs whose training set the swap really shrank, smallest first."""
    return sorted((t for t in table if t["training set after the swap"] < t["training set before the swap"]),
                  key=lambda t: t["training set after the swap"])


def check_grokked(table: list[dict], swap: int) -> tuple[bool, str]:
    """Every run has grokked (validation ≥ `GROKKED`) before the swap, so what happens after it is ungrokking,
    not a network that never generalized. Fails with too few steps before the swap, or without weight decay."""
    ok = bool(table) and all(t["val acc before the swap"] >= GROKKED for t in table)
    return ok, "; ".join(f"{t['training set before the swap']} → {t['training set after the swap']}: val {t['val acc before the swap']:.2f} "
                         f"before step {swap}" for t in table) or "no runs"


def check_ungrokking(table: list[dict]) -> tuple[bool, str]:
    """Varma et al.'s ungrokking on the smallest subset the swap left (there must be one smaller than the
    training set before it): grokked before the swap (validation ≥ `GROKKED`), validation ≤ `FALLS` at the end
    while that subset stays fitted (training accuracy ≥ 99%). Fails without the swap (nothing shrank) or when
    every subset is above the critical size (validation stays)."""
    cut = _cut(table)
    if not cut:
        return False, "no run's training set was cut down: no swap happened"
    s = cut[0]
    ok = s["val acc before the swap"] >= GROKKED and s["final val acc"] <= FALLS and s["final train acc"] >= 0.99
    return ok, (f"{s['training set before the swap']} → {s['training set after the swap']} equations: val {s['val acc before the swap']:.2f} "
                f"→ {s['final val acc']:.2f}, train {s['final train acc']:.2f}")


def critical_bracket(table: list[dict]) -> tuple[int, int] | None:
    """(largest cut-down subset that ungrokked, smallest cut-down subset that stayed generalized) when the
    sweep brackets a critical data size: every cut-down subset at or below the first ungrokked
    (validation ≤ `FALLS`), every one at or above the second stayed (≥ `STAYS`), the first smaller than the
    second. None when it does not (no swap, all fall, all stay, or not monotone)."""
    cut = _cut(table)
    falls = [t["training set after the swap"] for t in cut if t["final val acc"] <= FALLS]
    stays = [t["training set after the swap"] for t in cut if t["final val acc"] >= STAYS]
    if not falls or not stays:
        return None
    lo, hi = max(falls), min(stays)
    monotone = lo < hi and all(t["final val acc"] <= FALLS for t in cut if t["training set after the swap"] <= lo) \
        and all(t["final val acc"] >= STAYS for t in cut if t["training set after the swap"] >= hi)
    return (lo, hi) if monotone else None


def check_critical(table: list[dict]) -> tuple[bool, str]:
    """The critical data size (Varma et al. §4): among the runs whose training set the swap really cut down,
    the smaller subsets ungrok (validation ≤ `FALLS`) and the larger ones stay generalized (≥ `STAYS`),
    the two groups separated by one size (`critical_bracket`). The run kept on its whole training set does
    not count: it staying generalized says nothing about a subset. Fails without the swap, with every subset
    below the critical size, or with every subset above it."""
    cut = _cut(table)
    detail = "; ".join(f"{t['training set after the swap']} equations: val {t['final val acc']:.2f} at the end" for t in cut)
    b = critical_bracket(table)
    if b is None:
        return False, (detail or "no run's training set was cut down: no swap happened") + " (no bracket: need cut-down subsets that ungrok below ones that stay)"
    return True, f"{detail}; critical size between {b[0]} and {b[1]} equations"


RECIPE = Recipe("varma2023", "ungrokking and the critical data size (circuit efficiency)", "Varma et al. 2023, arXiv 2309.02390", recipe)
