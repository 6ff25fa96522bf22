"""Did it grok, and when: crossing steps, the grokking gap, phases (Liu et al. 2022), the two-stage
dynamics and forgetting of Doshi et al. (2023). Pure functions of metric rows (dicts with "step")."""

from __future__ import annotations

import math
import statistics
from typing import Iterable, Sequence

from groklab.errors import AnalysisError

PHASES = ("comprehension", "grokking", "memorization", "confusion")


def _series(rows: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    steps, vals = [], []
    for r in rows:
        v = r.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            steps.append(int(r["step"]))
            vals.append(float(v))
    return steps, vals


def crossing_step(rows: Sequence[dict], key: str, threshold: float = 0.99, stay: bool = True) -> int | None:
    """The first logged step at which rows[key] ≥ threshold; with `stay`, the first from which it stays
    ≥ threshold at every later logged step (a spike that falls back does not count). None: never."""
    steps, vals = _series(rows, key)
    if not stay:
        return next((s for s, v in zip(steps, vals) if v >= threshold), None)
    found = None
    for s, v in zip(steps, vals):
        if v >= threshold:
            if found is None:
                found = s
        else:
            found = None
    return found


def grokking_summary(rows: Sequence[dict], threshold: float = 0.99, train_key: str = "train_acc", val_key: str = "val_acc") -> dict:
    """Crossing steps of train and validation accuracy, the gap between them, and the budget (last step).

    `gap` = val_step - train_step (None if either never crosses); `grokked` = validation crossed.
    """
    if not rows:
        raise AnalysisError("no metric rows: the run has not logged any evaluation yet")
    t = crossing_step(rows, train_key, threshold)
    v = crossing_step(rows, val_key, threshold)
    return {
        "threshold": threshold,
        "train_step": t,
        "val_step": v,
        "gap": None if t is None or v is None else v - t,
        "grokked": v is not None,
        "budget": int(rows[-1]["step"]),
    }


def seeds_summary(values: Iterable[int | None]) -> dict:
    """Median and spread of crossing steps over seeds; None ("never") counts as +∞ for the median.

    Returns n, n_never, median (None if more than half never crossed), q25, q75, min, max of those that did.
    """
    vals = list(values)
    done = sorted(v for v in vals if v is not None)
    n = len(vals)
    keyed = sorted(math.inf if v is None else float(v) for v in vals)

    def q(frac: float) -> float | None:
        if not keyed:
            return None
        x = _quantile(keyed, frac)
        return None if math.isinf(x) else x

    return {
        "n": n,
        "n_never": n - len(done),
        "median": q(0.5),
        "q25": q(0.25),
        "q75": q(0.75),
        "min": done[0] if done else None,
        "max": done[-1] if done else None,
        "mean": statistics.fmean(done) if done else None,
    }


def _quantile(xs: list[float], frac: float) -> float:
    # Linear interpolation between order statistics (numpy's default), written out so +∞ stays +∞.
    pos = frac * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or xs[lo] == xs[hi]:
        return xs[lo]
    if math.isinf(xs[hi]):
        return math.inf
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def classify_phase(rows: Sequence[dict], threshold: float = 0.9, budget: int | None = None, comprehension_gap: int = 1000,
                   train_key: str = "train_acc", val_key: str = "val_acc") -> str:
    """The phase of a run after Liu et al. (2022, §4): their thresholds are 90% accuracy, a budget of 10⁵
    steps and a comprehension window of 10³ steps.

    * confusion: training accuracy never reaches `threshold` within `budget`;
    * memorization: training does, validation does not;
    * comprehension: both do, validation at most `comprehension_gap` steps after training;
    * grokking: both do, validation more than `comprehension_gap` steps after training.

    `budget` defaults to the last logged step; rows after it are ignored.
    """
    if not rows:
        raise AnalysisError("no metric rows to classify")
    if budget is not None:
        rows = [r for r in rows if r["step"] <= budget]
    t = crossing_step(rows, train_key, threshold)
    v = crossing_step(rows, val_key, threshold)
    if t is None:
        return "confusion"
    if v is None:
        return "memorization"
    return "comprehension" if v - t <= comprehension_gap else "grokking"


def two_stage(rows: Sequence[dict], threshold: float = 0.99, drop: float = 0.5, val_key: str = "val_acc",
              corrupted_key: str = "train_corrupted_acc") -> dict:
    """The two-stage dynamics of Doshi et al. (2023, §4): validation accuracy rises to `threshold` first,
    then the training accuracy on the corrupted labels (how many wrong labels are memorized) falls.

    `unlearn_step` is the first step after the corrupted accuracy's peak at which it is at most
    peak·(1-drop). `two_stage` is True when both happened, validation first. Without corrupted labels
    the corrupted fields are None.
    """
    v = crossing_step(rows, val_key, threshold)
    steps, vals = _series(rows, corrupted_key)
    out = {"val_step": v, "corrupted_peak": None, "corrupted_peak_step": None, "corrupted_final": None,
           "unlearn_step": None, "two_stage": False}
    if not vals:
        return out
    i = max(range(len(vals)), key=lambda j: vals[j])
    peak = vals[i]
    out.update(corrupted_peak=peak, corrupted_peak_step=steps[i], corrupted_final=vals[-1])
    if peak > 0:
        out["unlearn_step"] = next((s for s, x in zip(steps[i:], vals[i:]) if x <= peak * (1 - drop)), None)
    out["two_stage"] = v is not None and out["unlearn_step"] is not None and v <= out["unlearn_step"]
    return out


def forgetting(rows: Sequence[dict], key: str = "val_acc", min_peak: float = 0.9, drop: float = 0.5) -> dict:
    """Forgetting (Doshi et al. 2023): `key` reaches a peak ≥ min_peak, then falls to ≤ peak - drop.

    Returns peak, peak_step, collapse_step (first such step after the peak, or None), final, forgot.
    """
    steps, vals = _series(rows, key)
    if not vals:
        return {"peak": None, "peak_step": None, "collapse_step": None, "final": None, "forgot": False}
    i = max(range(len(vals)), key=lambda j: vals[j])
    peak = vals[i]
    collapse = next((s for s, x in zip(steps[i:], vals[i:]) if x <= peak - drop), None) if peak >= min_peak else None
    return {"peak": peak, "peak_step": steps[i], "collapse_step": collapse, "final": vals[-1], "forgot": collapse is not None}
