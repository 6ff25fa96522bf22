"""When to evaluate and checkpoint: log-spaced steps, since grokking spans decades of steps."""

from __future__ import annotations

import numpy as np


def log_spaced_steps(total: int, points: int) -> list[int]:
    """About `points` distinct steps in [0, total], evenly spaced in log(1 + step): dense early, sparse late.

    Always contains 0 and `total`. Every step up to where the log spacing exceeds one step is included,
    so there are never fewer than min(points, total + 1) steps.
    """
    if points >= total + 1:
        return list(range(total + 1))
    # Grow the requested count until rounding collisions leave `points` distinct steps.
    n = points
    while True:
        steps = np.unique(np.round(np.expm1(np.linspace(0.0, np.log1p(total), n))).astype(np.int64))
        if len(steps) >= points or n > 64 * points:
            break
        n += max(1, points - len(steps))
    return sorted({0, total, *steps.tolist()})


def eval_steps(total: int, points: int, every: int | None) -> list[int]:
    if every is not None:
        return sorted({*range(0, total + 1, every), total})
    return log_spaced_steps(total, points)
