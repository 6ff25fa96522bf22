"""Training throughput of the paper setups against this machine's fp32 matmul peak, measured in one run.

    python benchmarks/throughput.py [--steps 40] [--threads N]

For each setup it prints steps/s, achieved FLOP/s (FLOPs of one training step counted by
torch.utils.flop_counter, divided by the measured step time) as a fraction of the matmul peak measured
in the same run, and the share of training time that evaluation takes over a 10^5-step schedule with the
default log-spaced evaluations. Absolute times vary between machines and runs; the ratios are the result.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from groklab import presets
from groklab.models import build_model
from groklab.tasks import build_dataset
from groklab.train.loop import evaluate
from groklab.train.runtime import tune_cpu_runtime
from groklab.train.optim import build_optimizer, loss_fn
from groklab.train.schedule import eval_steps


def matmul_peak(n: int = 2048, repeats: int = 7) -> float:
    """Best-of-`repeats` FLOP/s of an n×n fp32 matmul: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def setup(cfg):
    torch.manual_seed(0)
    data = build_dataset(cfg.task)
    model = build_model(cfg.model, data.n_elements, data.n_classes)
    opt = build_optimizer(model, cfg.optim)
    g = torch.Generator().manual_seed(1)
    bs = cfg.train.batch_size

    def step():
        if bs is None:
            xb, yb = data.x_train, data.y_train
        else:
            idx = torch.randperm(data.n_train, generator=g)[:bs]
            xb, yb = data.x_train[idx], data.y_train[idx]
        loss = loss_fn(model(xb), yb, cfg.train.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, data, step


def measure(name, cfg, peak, steps):
    model, data, step = setup(cfg)
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    # evaluation: one full pass over train and validation, as the loop does
    t = time.perf_counter()
    for _ in range(3):
        evaluate(model, data, cfg.train.loss, cfg.train.eval_batch_size)
    eval_s = (time.perf_counter() - t) / 3
    n_evals = len(eval_steps(100_000, cfg.train.eval_points, None))
    eval_share = n_evals * eval_s / (n_evals * eval_s + 100_000 * step_s)
    achieved = flops / step_s
    print(
        f"{name:<34} {1 / step_s:8.1f} steps/s  {flops / 1e9:7.3f} GFLOP/step  {achieved / 1e9:7.1f} GFLOP/s  "
        f"{100 * achieved / peak:5.1f}% of peak  eval {1e3 * eval_s:6.1f} ms x {n_evals} = {100 * eval_share:4.1f}% of a 1e5-step run"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per setup")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_cpu_runtime()
    peak = matmul_peak()
    print(f"threads {torch.get_num_threads()}, fp32 matmul peak (2048^3, best of 7): {peak / 1e9:.1f} GFLOP/s")
    setups = [
        ("(a) Power x/y p=97 batch 512", presets.power2022(op="x/y", p=97, train_frac=0.5)),
        ("(b) Nanda x+y p=113 30% full batch", presets.nanda2023()),
        ("(c) Doshi MLP p=97 N=500 full batch", presets.doshi2023()),
    ]
    for name, cfg in setups:
        measure(name, cfg, peak, args.steps)
    peak_after = matmul_peak()
    print(f"fp32 matmul peak again after the runs: {peak_after / 1e9:.1f} GFLOP/s (a large change means a noisy machine)")


if __name__ == "__main__":
    main()
