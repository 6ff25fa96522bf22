"""What stacking buys per member: forward + backward of K stacked one-hot MLPs against one run alone.

    taskset -c 1 python benchmarks/stack_scaling.py [--width 64] [--p 31] [--rows 577]

Builds the benchmark sweep's MLP (benchmarks/sweep.py: x+y mod 31, width 64, quadratic activation, full batch of
577 rows) with groklab's own model, and times one training forward + backward (cross-entropy, as a step computes
it) of one model alone and of K = 1, 2, 4, ... 32 stacked copies (`torch.func.functional_call` under
`torch.func.vmap`, as `groklab.train.members` runs them), on one thread. Prints milliseconds per step and per
member. When the per-member time does not fall with K, stacking saves only the rest of a step (the optimizer, the
loop's Python and dispatch), not the model's arithmetic.

Measured 2026-12-07 06:04 UTC on the 2-core machine (`taskset -c 1`, the other core idle, two runs): alone 0.59 ms;
per member 0.55–0.68 ms at K = 2–4, 0.46–0.55 ms at K = 8–32 (at most 1.3× the run alone): the stacked
activations (K × 577 × 64 floats) leave the cache and every elementwise pass over them runs at memory speed.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from groklab.config import ModelConfig
from groklab.models import build_model


def per_step_ms(fn, reps: int) -> float:
    for _ in range(5):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--p", type=int, default=31)
    ap.add_argument("--rows", type=int, default=577)
    ap.add_argument("--reps", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = ModelConfig(arch="mlp", width=a.width, act="quadratic")
    x = torch.randint(0, a.p, (a.rows, 2))
    y = torch.randint(0, a.p, (a.rows,))

    model = build_model(cfg, a.p, a.p)

    def alone():
        F.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)

    base = per_step_ms(alone, a.reps)
    print(f"width {a.width}, p {a.p}, {a.rows} rows, 1 thread: alone {base:.3f} ms")
    for K in (1, 2, 4, 8, 16, 32):
        models = [build_model(cfg, a.p, a.p) for _ in range(K)]
        params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_(True)
                  for n, _ in models[0].named_parameters()}
        fwd = torch.func.vmap(lambda ps, xb: torch.func.functional_call(models[0], ps, (xb,)))
        X, Y = x.expand(K, *x.shape).contiguous(), y.expand(K, *y.shape).contiguous()

        def stacked():
            out = fwd(params, X)  # (K, rows, p)
            F.cross_entropy(out.reshape(-1, a.p), Y.reshape(-1), reduction="sum").backward()
            for q in params.values():
                q.grad = None

        t = per_step_ms(stacked, a.reps)
        print(f"K = {K:2d}: {t:7.3f} ms a step, {t / K:.3f} ms per member ({base / (t / K):.2f}x the run alone)")


if __name__ == "__main__":
    main()
