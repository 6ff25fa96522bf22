"""Doshi, He & Gromov 2023, "To grok or not to grok: disentangling generalization and memorization on
corrupted algorithmic datasets" (arXiv 2310.13061).

Paper's setup (`full`): x+y mod 97, half the table for training, a fraction ξ of the training labels
replaced by a random wrong label; a two-layer MLP on one-hot(x) ⊕ one-hot(y), width 500, quadratic
activation, no biases, MSE on one-hot targets averaged over classes and samples (PyTorch's MSELoss in the
authors' code: `train.loss_reduction=mean`), both weight matrices drawn N(0, σ²) with the authors'
σ = 0.5/(2N)^(1/3) (0.05 at width N = 500, 0.0625 at quick's 256: `model.init_std`), full-batch AdamW lr
1e-2, β = (0.9, 0.98), weight decay swept. Phases over
(ξ, weight decay), decided here from the final accuracies: *coexistence* (val ≥ 90% and ≥ 90% of the
corrupted labels memorized), *partial inversion* (val ≥ 90%, some corrupted labels memorized), *full
inversion* (val ≥ 90%, ≤ 10% of the corrupted labels memorized: the network "unlearns" them),
*memorization* (train ≥ 90%, val < 90%), *forgetting* (training accuracy on clean labels < 90%). The
inverse participation ratio (IPR) of the neurons' Fourier spectra separates periodic (generalizing) from
memorizing neurons; pruning low-IPR neurons first keeps validation accuracy and removes the memorized
corrupted labels.

`full`: ξ ∈ {0, 0.1, 0.2, 0.3, 0.4} × weight decay ∈ {0, 0.3, 1, 3, 10}, 10 000 steps. `quick`: p = 59, width
256, ξ ∈ {0.1, 0.2} × weight decay ∈ {0, 1, 10}, 2000 steps (the same MLP and optimizer otherwise).

Expected qualitative result (the checks): without weight decay the network fits the clean labels and
memorizes ≥ 90% of the corrupted ones (coexistence or memorization), while at the same ξ the largest weight
decay keeps at most half as many; with the largest weight decay it is in *full inversion* at every ξ:
validation ≥ 90% and at most 10% of the corrupted labels still predicted (it answers their true labels
instead, ≥ 90% of them), so its training accuracy is about 100(1 − ξ)%; the inverted network's neurons have a
higher IPR than the memorizing network's; removing the memorizing (no weight decay, largest ξ) network's
neurons lowest IPR first, some number of them takes the corrupted labels from ≥ 90% to ≤ 10% memorized while
validation accuracy stays within 5 points (the memorizing neurons are the aperiodic ones).

Every run trains its whole budget (no early stop): the phase is decided by the final accuracies, and
inversion (unlearning the corrupted labels) comes long after validation accuracy has reached 99%.

Wall time (the report gives this run's): quick a few minutes on 2 CPU cores; full 71 minutes on 2 idle
cores, measured 2026-12-06 (`taskset -c 0,1 python benchmarks/fullscale.py doshi2023`: 2 one-thread workers,
each run of 10 000 full-batch steps 5.2–6.0 minutes; too large for the batched executor to gain), 4/4 checks.
"""

from __future__ import annotations

from groklab.presets.recipes.base import Context, Recipe


def phase(train_clean: float, corrupted: float, val: float) -> str:
    if train_clean < 0.9:
        return "forgetting"
    if val < 0.9:
        return "memorization"
    if corrupted >= 0.9:
        return "coexistence"
    return "full inversion" if corrupted <= 0.1 else "partial inversion"


def recipe(ctx: Context) -> None:
    from groklab import presets
    from groklab.analysis import run_analysis
    from groklab.report import preset_plots as pp
    from groklab.store import load_run

    if ctx.scale == "full":
        base = presets.doshi2023(steps=10_000)
        xis, wds = [0.0, 0.1, 0.2, 0.3, 0.4], [0.0, 0.3, 1.0, 3.0, 10.0]
    else:
        width = ctx.pick(quick=256, smoke=32)  # the authors' init std 0.5/(2N)^(1/3) follows the width (0.05 at N = 500)
        base = presets.doshi2023(p=ctx.pick(quick=59, smoke=23), steps=ctx.pick(quick=2000, smoke=40)).replace(
            **{"model.width": width, "model.init_std": 0.5 / (2 * width) ** (1 / 3)})
        xis, wds = [0.1, 0.2], [0.0, 1.0, 10.0]
    base = base.replace(**{"train.eval_points": ctx.pick(full=100, quick=40, smoke=8), "train.checkpoint_points": ctx.pick(full=20, quick=8, smoke=3)})
    df = ctx.sweep(base, {"task.corrupt_frac": xis, "optim.weight_decay": wds}, seeds=1, name="phase")

    phases, cells, table = {}, {}, []
    for _, r in df.iterrows():
        xi, wd = float(r["task.corrupt_frac"]), float(r["optim.weight_decay"])
        clean, corr, val = r.get("final.train_clean_acc", r["final.train_acc"]), r.get("final.train_corrupted_acc", 0.0), r["final.val_acc"]
        ph = phase(clean, corr if corr == corr else 0.0, val)
        phases[(xi, wd)] = ph
        cells[(xi, wd)] = f"val {val:.0%}\ncorr {corr:.0%}" if corr == corr else f"val {val:.0%}\n(ξ = 0)"
        true = r.get("final.train_corrupted_true_acc")
        table.append({"ξ": xi, "weight decay": wd, "phase": ph, "final train acc": r["final.train_acc"], "train acc (clean labels)": clean,
                      "train acc (corrupted labels)": corr, "train acc (corrupted, true label)": true, "final val acc": val,
                      "val 99% step": r["val_acc_99_step"]})
    ctx.table(table, "phases", "Final accuracies and phase of every (ξ, weight decay)")
    ctx.figure(pp.plot_phase_diagram, [*wds], [*xis], {(wd, xi): p for (xi, wd), p in phases.items()}, name="phase_diagram",
               xlabel="weight decay", ylabel="ξ (corrupted fraction of training labels)", question="Which phase does each (ξ, weight decay) end in?",
               title="Doshi et al. phase diagram", values={(wd, xi): t for (xi, wd), t in cells.items()},
               caption="cell text: final validation accuracy and training accuracy on the corrupted labels")

    # The two ends at the largest ξ: no weight decay (memorizes) against the largest (inverts).
    xi = max(xis)
    pick = {wd: df[(df["task.corrupt_frac"] == xi) & (df["optim.weight_decay"] == wd)].iloc[0]["run_dir"] for wd in (min(wds), max(wds))}
    mem, inv = load_run(pick[min(wds)]), load_run(pick[max(wds)])
    names = {f"weight decay {min(wds):g}": mem, f"weight decay {max(wds):g}": inv}
    ctx.figure(pp.plot_accuracy_runs, {k: r.rows for k, r in names.items()}, name="two_stage", train_key="train_corrupted_acc",
               question="Does the network first generalize, then unlearn the corrupted labels?", title=f"ξ = {xi}",
               caption="solid: validation accuracy; dashed: training accuracy on the corrupted labels (against their wrong labels)")
    iprs, prunes = {}, {}
    for k, r in names.items():
        s = run_analysis(r.path, ("ipr", "pruning"), figures=False)
        import pandas as pd

        iprs[k] = pd.read_csv(r.path / "analysis" / "neurons.csv")["ipr"].tolist()
        prunes[k] = s["pruning"]
    ctx.figure(pp.plot_histograms, iprs, name="ipr_hist", xlabel="inverse participation ratio of a neuron's Fourier spectrum",
               question="Are the neurons periodic (high IPR) or memorizing (low IPR)?", title=f"neuron IPR at the end, ξ = {xi}")
    low = {k: [row for row in v if row.get("order") == "low"] for k, v in prunes.items()}
    ctx.figure(pp.plot_lines, {f"{k}: {m}": ([row["k"] for row in v], [row.get(m) for row in v]) for k, v in low.items()
                               for m in ("val_acc", "train_corrupted_acc") if v and m in v[0]},
               name="pruning", xlabel="neurons removed (lowest IPR first)", ylabel="accuracy (%)", percent=True,
               question="What does removing the low-IPR neurons do?", title="pruning by IPR")

    import statistics

    mi, ii = statistics.median(iprs[f"weight decay {min(wds):g}"]), statistics.median(iprs[f"weight decay {max(wds):g}"])
    ctx.number("median IPR, no weight decay", mi)
    ctx.number(f"median IPR, weight decay {max(wds):g}", ii)
    hi = [t for t in table if t["weight decay"] == max(wds)]
    lo = [t for t in table if t["weight decay"] == min(wds)]
    ctx.check("weight decay inverts: generalizes and unlearns corrupted labels", *check_inverts(hi))
    ctx.check("no weight decay memorizes the corrupted labels, weight decay unlearns them", *check_memorizes(lo, hi))
    ctx.check("inverted network has higher-IPR neurons", ii > mi, f"median IPR {ii:.3f} (weight decay {max(wds):g}) vs {mi:.3f} (none)")
    ctx.check("pruning low-IPR neurons removes the memorized labels, keeps validation", *check_pruning(prunes[f"weight decay {min(wds):g}"]))


# --- checks: pure functions of the final accuracies and the pruning table (tests/test_preset_controls.py) -----

def _corrupted(t: dict) -> float | None:
    """A row's accuracy on its corrupted training labels; None at ξ = 0, which has none (logged as NaN)."""
    v = t["train acc (corrupted labels)"]
    return None if t["ξ"] == 0 or v is None or v != v else v


def check_inverts(hi: list[dict]) -> tuple[bool, str]:
    """The paper's *full inversion* at the largest weight decay, at every ξ: validation ≥ 90% and at most 10% of
    the corrupted training labels still predicted (the network answers the true label instead: ≥ 90% of them
    where `train acc (corrupted, true label)` is logged). At ξ = 0 (no corrupted labels) validation alone; at
    least one row must have corrupted labels."""
    def ok(t: dict) -> bool:
        true = t.get("train acc (corrupted, true label)")
        c = _corrupted(t)
        return t["final val acc"] >= 0.9 and (t["ξ"] == 0 or (c is not None and c <= 0.1 and (true is None or true != true or true >= 0.9)))

    def shown(t: dict) -> str:
        if t["ξ"] == 0:
            return f"ξ=0: val {t['final val acc']:.2f} (no corrupted labels)"
        true = t.get("train acc (corrupted, true label)")
        return (f"ξ={t['ξ']}: val {t['final val acc']:.2f}, corrupted labels predicted {t['train acc (corrupted labels)']:.2f}"
                + (f", their true labels {true:.2f}" if true is not None else ""))
    detail = "; ".join(shown(t) for t in hi)
    return any(_corrupted(t) is not None for t in hi) and all(ok(t) for t in hi), detail or "no runs"


def check_memorizes(lo: list[dict], hi: list[dict]) -> tuple[bool, str]:
    """Without weight decay the network fits the clean labels and memorizes ≥ 90% of the corrupted ones
    (coexistence or memorization, never inversion), while at the same ξ the largest weight decay keeps at most
    half as many: it is weight decay, not the data, that decides whether they are memorized. Rows at ξ = 0 have
    nothing to memorize and are left out; at least one row must remain."""
    big = {t["ξ"]: t for t in hi}
    lo = [t for t in lo if t["ξ"] != 0]
    ok = bool(lo) and all(
        t["train acc (clean labels)"] >= 0.9 and (_corrupted(t) or 0.0) >= 0.9 and t["ξ"] in big
        and _corrupted(big[t["ξ"]]) is not None and _corrupted(big[t["ξ"]]) <= 0.5 * _corrupted(t) for t in lo)
    detail = "; ".join(f"ξ={t['ξ']}: corrupted labels memorized {t['train acc (corrupted labels)']:.2f} without weight decay"
                       + (f", {big[t['ξ']]['train acc (corrupted labels)']:.2f} with {big[t['ξ']]['weight decay']:g}" if t["ξ"] in big else "")
                       + f" (clean {t['train acc (clean labels)']:.2f}, val {t['final val acc']:.2f})" for t in lo)
    return ok, detail or "no runs"


def check_pruning(rows: list[dict], keep: float = 0.05) -> tuple[bool, str]:
    """Doshi et al.'s pruning result on the memorizing network: removing neurons lowest IPR first, some number
    of them takes the corrupted labels' accuracy from ≥ 90% down to ≤ 10% while validation accuracy stays within
    `keep` of the unpruned network's (the memorizing neurons are the aperiodic ones). Pruning highest IPR
    first, or a network that never memorized, fails."""
    low = sorted((r for r in rows if r.get("order") == "low" and r.get("train_corrupted_acc") is not None), key=lambda r: r["k"])
    if not low or low[0]["k"] != 0:
        return False, "no pruning table (lowest IPR first) with the unpruned network"
    base = low[0]
    good = [r for r in low[1:] if r["train_corrupted_acc"] <= 0.1 and r["val_acc"] >= base["val_acc"] - keep]
    ok = base["train_corrupted_acc"] >= 0.9 and bool(good)
    at = good[0] if good else min(low, key=lambda r: r["train_corrupted_acc"])
    return ok, (f"unpruned: corrupted labels {base['train_corrupted_acc']:.2f}, val {base['val_acc']:.2f}; "
                f"{at['k']} lowest-IPR neurons removed: corrupted labels {at['train_corrupted_acc']:.2f}, val {at['val_acc']:.2f}")

RECIPE = Recipe("doshi2023", "corrupted labels: phases over (ξ, weight decay), IPR and pruning", "Doshi et al. 2023, arXiv 2310.13061", recipe)
