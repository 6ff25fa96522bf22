"""Kumar, Bordelon, Gershman & Pehlevan 2023, "Grokking as the transition from lazy to rich training
dynamics" (ICLR 2024, arXiv 2310.06110).

Paper's setup (§5, their code): the single-index polynomial target y = (β·x)²/2 on D = 100 Gaussian inputs,
P = 550 training points; a two-layer network f(x) = α · (1/N) Σ_i φ(w_i·x), N = 500, φ(z) = z + εz²/2 (ε sets
how well the initial kernel is aligned with the target), readouts not trained; full-batch gradient descent
with learning rate N/α², no weight decay; the loss is the MSE of the centered output α(f − f₀) (their code
also has the uncentered variant with the loss divided by α²). Large α: the network stays near its initial
kernel (lazy) and fits the training set with it, the test loss staying at the kernel-regression error; small
α: features are learned (rich) and the test loss follows. Grokking is the lazy fit first, the rich solution
later; the NTK then moves away from its initial value and aligns with the target.

groklab's version: `task.group=teacher, task.teacher=poly` (y = (β·x)²/2), `model.output_scale` = α, SGD
full batch with lr = lr₀/α² (the loss's 1/α² folded into the learning rate, exact for SGD). Deviations: the
network is groklab's dense MLP (one hidden layer, quadratic activation z², no biases, trained readouts with
N(0, 1/N) init) rather than their fixed-readout φ = z + εz²/2 network; the output is not centered (their
uncentered variant); a 200-step linear warm-up of the learning rate: without it lr₀ = 0.01 throws every run
out of its initial basin in the first 4 steps (the loss jumps ×10–100, the kernel distance to ~0.4 for
every α), which is a catapult, not the lazy/rich difference. `groklab analyze RUN --what ntk` gives the kernel
distance from the initial NTK and the kernel-target alignment on validation inputs (Kumar et al. plot the
alignment on test inputs).

`quick`: D = 40, P = 220 (their P/D = 5.5), 500 validation points, width 200, lr₀ = 0.01, 4000 steps,
α ∈ {0.1, 0.3, 1, 3}. `full`: D = 100, P = 550, width 500, 20 000 steps, same α and lr₀ (not measured; an
estimate of ~10× the quick time). `smoke`: D = 8, 60 steps.

Expected qualitative result (the checks, pure functions of the per-α table): every α fits the training set;
the kernel moves less the larger α, every α ≥ 1 hardly at all (distance < 0.05) and the smallest α a lot
(> 0.1); the validation loss is the lower the smaller α, the lazy runs (α ≥ 1) never below half the label
variance (≈ 0.5: a kernel fit of P = 5.5·D points cannot learn a quadratic in D dimensions) and the richest
below a quarter of it; the richest kernel's alignment with the target rises by more than 0.1 while the
laziest one's stays within 0.05 of its start. Each check needs both ends of the α range, so a control whose
every α is lazy (or every α rich) fails it (tests/test_preset_controls.py).

Quick wall time: about 75 s on 2 CPU cores (measured once, busy machine).
What quick does *not* show: full generalization. The richest run (α = 0.1) ends at a validation MSE ≈ 0.07 (≈ 87% of the label variance
explained) with its validation loss still falling for decades of steps after the training loss passed 1e-2;
smaller α (0.03, 0.05) did no better, and the training loss reaches 1e-12 and stops the feature learning.
Kumar et al.'s complete late generalization needs their mean-field network (fixed readouts, 1/N output).
"""

from __future__ import annotations

from groklab.presets.recipes.base import Context, Recipe

ALPHAS = (0.1, 0.3, 1.0, 3.0)


def base_config(ctx: Context):
    from groklab.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig

    D = ctx.pick(full=100, quick=40, smoke=8)
    return RunConfig(
        task=TaskConfig(group="teacher", teacher="poly", teacher_degree=2, d_in=D, d_out=1, train_size=int(5.5 * D),
                        val_size=ctx.pick(full=1000, quick=500, smoke=50), seed=0),
        model=ModelConfig(arch="mlp", width=ctx.pick(full=500, quick=200, smoke=32), depth=1, act="quadratic", bias=False),
        optim=OptimConfig(name="sgd", lr=0.01, weight_decay=0.0, momentum=0.0, warmup_steps=ctx.pick(full=200, quick=200, smoke=10)),
        train=TrainConfig(steps=ctx.pick(full=20_000, quick=4000, smoke=60), batch_size=None, loss="mse",
                          eval_points=ctx.pick(full=120, quick=60, smoke=10), checkpoint_points=ctx.pick(full=16, quick=12, smoke=3)),
    )


def first_below(rows: list[dict], key: str, level: float) -> int | None:
    """The first logged step at which `key` is below `level` (None: never)."""
    return next((r["step"] for r in rows if r.get(key) is not None and r[key] < level), None)


def measure(ctx: Context, alphas=ALPHAS) -> tuple[dict, dict, list[dict]]:
    """Train one run per output scale α (lr = lr₀/α²), analyse its NTK, and return the metric rows and NTK rows
    per α and the summary rows (`info`, sorted by α) the checks read."""
    import pandas as pd

    from groklab.analysis import run_analysis
    from groklab.report.analysis_plots import draw_analysis

    base = base_config(ctx)
    lr0 = base.optim.lr
    runs, ntk = {}, {}
    for a in alphas:
        r = ctx.run(base.replace(**{"model.output_scale": a, "optim.lr": lr0 / a**2}), name=f"alpha{a:g}")
        runs[a] = r.rows
        draw_analysis(r.path, run_analysis(r.path, ["ntk"], ntk_samples=ctx.pick(full=128, quick=64, smoke=16)))
        ntk[a] = pd.read_csv(r.path / "analysis" / "ntk.csv").to_dict("records")
    info = []
    for a in sorted(alphas):
        rows = runs[a]
        info.append({
            "α": a, "lr": lr0 / a**2, "train loss < 1e-2 at": first_below(rows, "train_loss", 1e-2),
            "val loss < 1e-2 at": first_below(rows, "val_loss", 1e-2), "final train loss": rows[-1]["train_loss"],
            "final val loss": rows[-1]["val_loss"], "min val loss": min(r["val_loss"] for r in rows),
            "final kernel distance": ntk[a][-1]["distance"], "initial alignment": ntk[a][0]["alignment"],
            "final alignment": ntk[a][-1]["alignment"],
        })
    return runs, ntk, info


def recipe(ctx: Context) -> None:
    from groklab.report import preset_plots as pp

    runs, ntk, info = measure(ctx, ALPHAS)

    def label(a: float) -> str:
        return f"α = {a:g}" + (" (rich)" if a == min(ALPHAS) else " (lazy)" if a == max(ALPHAS) else "")

    ctx.table(info, "runs", "One run per output scale α (SGD, lr = lr₀/α²)")
    for i in info:
        for k in ("train loss < 1e-2 at", "val loss < 1e-2 at", "final val loss", "final kernel distance", "final alignment"):
            ctx.number(f"α = {i['α']:g}: {k}", i[k])

    series = {label(a): runs[a] for a in ALPHAS}
    ctx.figure(pp.plot_metric_runs, series, "val_loss", name="val_loss", ylabel="validation MSE", title="validation loss", logy=True,
               question="Does the rich (small α) network generalize, and the lazy (large α) one not?",
               caption="y = (β·x)²/2; the training losses (next figure) all fall")
    ctx.figure(pp.plot_metric_runs, series, "train_loss", name="train_loss", ylabel="training MSE", title="training loss", logy=True,
               question="Does every α fit the training set, the generalizing run well before it generalizes?",
               caption="compare the step where each curve passes 1e-2 with the validation figure")
    ctx.figure(pp.plot_lines, {label(a): ([max(r["step"], 1) for r in ntk[a]], [r["distance"] for r in ntk[a]]) for a in ALPHAS},
               name="ntk_distance", xlabel="step", ylabel="1 − cos(K₀, K_t)", title="empirical NTK: distance from initialization", logx=True,
               question="Does the kernel move (rich) for small α and stay (lazy) for large α?",
               caption="kernel distance (Fort et al. 2020) on validation inputs; `groklab analyze RUN --what ntk`")
    ctx.figure(pp.plot_lines, {label(a): ([max(r["step"], 1) for r in ntk[a]], [r["alignment"] for r in ntk[a]]) for a in ALPHAS},
               name="ntk_alignment", xlabel="step", ylabel="⟨K, yyᵀ⟩ / (‖K‖ ‖yyᵀ‖)", title="kernel-target alignment", logx=True,
               question="Does the kernel align with the target as the network generalizes?",
               caption="Kumar et al. Fig. 1: alignment rises when the test loss falls")

    # --- checks -------------------------------------------------------------------------------------
    ctx.check("every α fits the training set", *check_fits(info))
    ctx.check("the larger α, the less the kernel moves (lazy); α = 1 and up hardly at all", *check_kernel(info))
    ctx.check("the smaller α, the better it generalizes; the lazy fit does not", *check_generalizes(info))
    ctx.check("the rich kernel aligns with the target, the lazy one stays where it began", *check_alignment(info))


# --- checks: pure functions of the `info` rows, one per α (tests/test_preset_controls.py) --------------------

FIT = 1e-2
"""A run has fitted its training set when its final training MSE is below this."""
Y_VAR = 0.5
"""Variance of the labels (β·x)²/2 with β·x ≈ N(0, 1): the MSE of predicting their mean."""
STILL, MOVED = 0.05, 0.1
"""Kernel distance (or alignment change) a lazy run stays under, and one a rich run exceeds."""


def _lazy(info: list[dict]) -> list[dict]:
    return [i for i in info if i["α"] >= 1]


def _by_alpha(info: list[dict]) -> list[dict]:
    return sorted(info, key=lambda i: i["α"])


def check_fits(info: list[dict]) -> tuple[bool, str]:
    """Every α ends with training MSE below `FIT`: the lazy runs too, so a lazy run's poor validation loss is
    the kernel's, not an unfinished fit. Fails with too few steps (or an α so large that lr₀/α² cannot fit)."""
    ok = bool(info) and all(i["final train loss"] < FIT for i in info)
    return ok, "final training loss " + ("; ".join(f"α = {i['α']:g}: {i['final train loss']:.2g}" for i in _by_alpha(info)) or "no runs")


def check_kernel(info: list[dict]) -> tuple[bool, str]:
    """The NTK's final distance from its initial value does not grow with α (0.01 of slack between neighbours:
    the lazy runs sit at ~0.01, where their order is noise), every α ≥ 1 (there must be one) stays below
    `STILL` (lazy), and the smallest α moves beyond `MOVED` (rich). Fails when every α is lazy (no rich run)
    or every α rich (no lazy one)."""
    order = _by_alpha(info)
    dist = [i["final kernel distance"] for i in order]
    lazy = _lazy(order)
    ok = (len(order) >= 2 and bool(lazy) and all(y <= x + 0.01 for x, y in zip(dist, dist[1:]))
          and all(i["final kernel distance"] < STILL for i in lazy) and order[0]["α"] < 1 and dist[0] > MOVED)
    return ok, "final kernel distance " + ("; ".join(f"α = {i['α']:g}: {i['final kernel distance']:.3g}" for i in order) or "no runs")


def check_generalizes(info: list[dict], y_var: float = Y_VAR) -> tuple[bool, str]:
    """The final validation MSE does not fall as α grows; every α ≥ 1 (there must be one) never gets below half
    the label variance (a kernel fit of P = 5.5·D points cannot learn a quadratic in D dimensions), and the
    smallest α (< 1) ends below a quarter of it (the features were learned). Fails when every α is lazy (none
    generalizes) or every α rich (no lazy baseline)."""
    order = _by_alpha(info)
    val = [i["final val loss"] for i in order]
    lazy = _lazy(order)
    ok = (len(order) >= 2 and bool(lazy) and all(x <= y for x, y in zip(val, val[1:]))
          and all(i["min val loss"] > 0.5 * y_var for i in lazy) and order[0]["α"] < 1 and val[0] < 0.25 * y_var)
    return ok, ("final validation loss " + "; ".join(f"α = {i['α']:g}: {i['final val loss']:.3g}" for i in order)
                + f" (label variance ≈ {y_var}; min over the run for α ≥ 1: "
                + (", ".join(f"{i['min val loss']:.3g}" for i in lazy) or "none") + ")")


def check_alignment(info: list[dict]) -> tuple[bool, str]:
    """Kumar et al. Fig. 1: the smallest α's kernel–target alignment rises by more than `MOVED` and ends above
    the largest α's, while the largest α (≥ 1) stays within `STILL` of where it began. Fails when every α is
    lazy (nothing aligns) or every α rich (the largest moves too)."""
    if len(info) < 2:
        return False, "fewer than two runs"
    order = _by_alpha(info)
    rich, lazy = order[0], order[-1]
    rise, drift = rich["final alignment"] - rich["initial alignment"], lazy["final alignment"] - lazy["initial alignment"]
    ok = rich["α"] < 1 <= lazy["α"] and rise > MOVED and abs(drift) < STILL and rich["final alignment"] > lazy["final alignment"]
    return ok, (f"alignment {rich['initial alignment']:.3g} → {rich['final alignment']:.3g} (α = {rich['α']:g}); "
                f"{lazy['initial alignment']:.3g} → {lazy['final alignment']:.3g} (α = {lazy['α']:g})")


RECIPE = Recipe("kumar2023", "grokking as the transition from lazy to rich training: output scale α on a polynomial target",
                "Kumar, Bordelon, Gershman & Pehlevan 2023, arXiv 2310.06110", recipe)
