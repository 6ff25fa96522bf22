"""Sweep throughput: runs per hour of small sweeps, sequential vs per-process vs batched, in one go.

    taskset -c 0,1 python benchmarks/sweep.py [--runs-mlp 32] [--runs-transformer 8] [--workers 2]

Two sweeps (train fraction × seeds):
- `mlp`: x+y mod 31, one-hot MLP of width 64 (the demo's MLP, smaller), full batch, 1500 steps;
- `transformer`: x+y mod 31, 2 layers, d_model 64, 4 heads, d_mlp 256, batch 256, 300 steps.
Each is trained
- sequentially: in this process, one run after another through run(), each with one thread
  (`train.threads=1`, what a sweep gives each run; the thread count is printed);
- per-process: `sweep(executor="local")`, a pool of `--workers` single-threaded worker processes;
- batched: `sweep(executor="batched")`, the runs as stacked members (`groklab.train.members`), in
  `--workers` processes.
Each executor runs the sweep twice: `cold` from no workers (`pool.shutdown()` before it), paying the
workers' start-up (importing torch, printed on its own) as a user's first sweep in a fresh process does,
and `warm`, a second sweep into another directory that reuses those workers, as every later sweep of that
process does. Fewer steps than a real sweep keep it short; the ratios are what matter,
and they are measured in the same run. On a shared machine the numbers are noisy: run it twice.
Targets (issue 12.5): batched small-MLP sweep ≥ 3× sequential; ≥ 8 small transformers ≥ 2× sequential,
on 2 cores.

Measured 2026-11-30 with `taskset -c 0,1` on the 2-core machine with nothing else running (two runs of
the script; the full-scale job that shared the machine stopped with SIGSTOP meanwhile):
    mlp (32 runs):         per-process cold 1.83x / 1.86x, warm 1.97x;  batched cold 2.66x / 2.17x, warm 2.99x
    transformer (8 runs):  per-process cold 1.72x / 1.80x, warm 1.93x;  batched cold 2.05x / 2.30x, warm 2.66x
    a worker's start-up:   1.5-1.6 s (paid once per process: later sweeps reuse the workers)
(The first run of the script timed cold pools only.) Earlier figures from a machine at load 9-14 (batched MLP
3.46x / 2.70x / 2.41x) were inflated by the load on the sequential baseline: on the idle machine, before
the fixes of train/members.py and the chunking in sweep/__init__.py, batched was 2.42x and 1.88x.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from groklab import RunConfig, presets, run
from groklab.sweep import BATCH_WORK_LIMIT, TRANSFORMER_BATCH_WORK_LIMIT, SweepSpec, choose_executor, pool, sweep


def base_config(kind: str) -> RunConfig:
    if kind == "mlp":
        cfg = presets.demo(out=None, steps=1500).replace(**{"task.p": 31, "model.width": 64})
    else:
        cfg = RunConfig().replace(**{
            "task.p": 31, "model.d_model": 64, "model.n_heads": 4, "model.d_mlp": 256, "model.n_layers": 2,
            "train.steps": 300, "train.batch_size": 256,
        })
    return cfg.replace(**{"train.eval_points": 30, "train.checkpoint_points": 10})


def bench(kind: str, runs: int, workers: int, tmp: Path) -> dict:
    base = base_config(kind)
    fracs = [0.3, 0.4, 0.5, 0.6]
    seeds = max(1, runs // len(fracs))
    grid = {"task.train_frac": fracs[: min(len(fracs), runs)]}
    pts = SweepSpec.build(base, grid, seeds).points()
    out: dict = {"runs": len(pts), "threads": pts[0][2].train.threads}
    t = time.perf_counter()
    for i, (_, _, cfg) in enumerate(pts):
        run(cfg.replace(out=str(tmp / f"{kind}-seq" / str(i))))
    out["sequential"] = time.perf_counter() - t
    for ex in ("local", "batched"):
        pool.shutdown()
        # cold: the workers start (import torch) during this sweep; warm: a second sweep reuses them
        for start in ("cold", "warm"):
            t = time.perf_counter()
            res = sweep(base, grid, seeds, out=tmp / f"{kind}-{ex}-{start}", executor=ex, workers=workers, progress=False)
            assert res.complete, res.outcomes
            out[ex, start] = time.perf_counter() - t
        out[f"{ex} per-run"] = len(res.per_run)
    pool.shutdown()
    out["auto"] = choose_executor([c for _, _, c in pts], workers)[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-mlp", type=int, default=32)
    ap.add_argument("--runs-transformer", type=int, default=8)
    ap.add_argument("--workers", type=int, default=pool.cpu_count())
    ap.add_argument("--only", choices=["mlp", "transformer"], default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="groklab-bench-sweep-"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import groklab.train.members"], check=True)
    start = time.perf_counter() - t
    print(f"{args.workers} worker(s), {pool.cpu_count()} core(s) usable; a worker's start-up (import torch) {start:.1f} s; "
          f"torch {torch.__version__}; auto stacks below {BATCH_WORK_LIMIT:.0g} (MLPs) / {TRANSFORMER_BATCH_WORK_LIMIT:.0g} (transformers) multiply-adds per step")
    try:
        for kind, runs in (("mlp", args.runs_mlp), ("transformer", args.runs_transformer)):
            if args.only and kind != args.only:
                continue
            r = bench(kind, runs, args.workers, tmp)
            seq = r["sequential"]
            per_run = f" ({r['batched per-run']} per run)" if r["batched per-run"] else ""
            print(
                f"{kind:>11}: {r['runs']} runs | sequential ({r['threads']} thread) {seq:5.1f} s | "
                f"per-process cold {r['local', 'cold']:5.1f} s ({seq / r['local', 'cold']:.2f}x), warm {r['local', 'warm']:5.1f} s ({seq / r['local', 'warm']:.2f}x) | "
                f"batched{per_run} cold {r['batched', 'cold']:5.1f} s ({seq / r['batched', 'cold']:.2f}x), warm {r['batched', 'warm']:5.1f} s "
                f"({seq / r['batched', 'warm']:.2f}x) | auto picks {r['auto']}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
