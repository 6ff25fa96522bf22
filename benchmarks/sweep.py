"""Sweep throughput: runs per hour of a 32-run sweep, batched vs per-process vs sequential, in one go.

    python benchmarks/sweep.py [--steps-small 1500] [--steps-demo 300] [--runs 32] [--workers N]

Two models: a small one (x+y mod 31, one-hot MLP of width 64) and the demo-size one (`presets.demo`:
mod 59, width 256). For each, the same 32 runs (train fraction × seeds) are trained
- sequentially: one process, one run after another through run() (one thread, as a sweep's run has);
- per-process: `sweep(executor="local")`, a pool of single-threaded worker processes;
- batched: `sweep(executor="batched")`, stacked runs in as many processes as workers.
Fewer steps than a real sweep keep it short; the ratios are what matter. Worker start-up (importing
torch) is included, as a user pays it. On a shared machine the numbers are noisy: run it twice.
Targets (issue 7): batched ≥ 3× sequential for the small model; per-process ≥ 1.7× sequential on 2
cores for the demo-size one.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from groklab import presets, run
from groklab.sweep import BATCH_WORK_LIMIT, SweepSpec, choose_executor, sweep
from groklab.sweep.pool import cpu_count


def configs(kind: str, steps: int):
    if kind == "small":
        base = presets.demo(out=None, steps=steps).replace(**{"task.p": 31, "model.width": 64})
    else:
        base = presets.demo(out=None, steps=steps)
    base = base.replace(**{"train.eval_points": 30, "train.checkpoint_points": 10})
    return base


def bench(kind: str, steps: int, runs: int, workers: int, tmp: Path) -> dict[str, float]:
    base = configs(kind, steps)
    seeds = max(1, runs // 4)
    grid = {"task.train_frac": [0.3, 0.4, 0.5, 0.6][: max(1, runs // seeds)]}
    pts = SweepSpec.build(base, grid, seeds).points()
    n = len(pts)
    out: dict[str, float] = {}
    # sequential: one process, run() after run(), each writing its run directory
    t = time.perf_counter()
    for i, (_, _, cfg) in enumerate(pts):
        run(cfg.replace(out=str(tmp / f"{kind}-seq" / str(i))))
    out["sequential"] = n / (time.perf_counter() - t) * 3600
    for ex in ("local", "batched"):
        t = time.perf_counter()
        res = sweep(base, grid, seeds, out=tmp / f"{kind}-{ex}", executor=ex, workers=workers, progress=False)
        assert res.complete, res.outcomes
        out["per-process" if ex == "local" else "batched"] = n / (time.perf_counter() - t) * 3600
    out["auto picks"] = choose_executor([c for _, _, c in pts], workers)[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps-small", type=int, default=1500)
    ap.add_argument("--steps-demo", type=int, default=300)
    ap.add_argument("--runs", type=int, default=32)
    ap.add_argument("--workers", type=int, default=cpu_count())
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-bench-sweep-"))
    print(f"{args.runs} runs, {args.workers} worker(s); batching threshold {BATCH_WORK_LIMIT:.0g} multiply-adds per step")
    try:
        for kind, steps in (("small", args.steps_small), ("demo", args.steps_demo)):
            r = bench(kind, steps, args.runs, args.workers, tmp)
            seq = r["sequential"]
            print(
                f"{kind:>5} ({steps} steps/run): sequential {seq:8.0f} runs/h | per-process {r['per-process']:8.0f} runs/h "
                f"({r['per-process'] / seq:.2f}x) | batched {r['batched']:8.0f} runs/h ({r['batched'] / seq:.2f}x) | auto picks {r['auto picks']}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
