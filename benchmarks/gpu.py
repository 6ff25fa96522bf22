"""Issue 12.7 on a GPU, in one short script: a 1000-run phase diagram of a small model, and the Power setup's steps/s.

    python benchmarks/gpu.py --out runs/gpu-bench                       # on a machine with a GPU (device cuda)
    python benchmarks/gpu.py --device cpu --runs 16 --steps 200 --power-steps 20 --out /tmp/g   # the same code on a CPU

1. Phase diagram: the demo's one-hot MLP (quadratic activation, width 128) on x+y mod 47 with half the table,
   full-batch AdamW, over learning rate × weight decay (a `--runs` grid, log-spaced: lr 1e-4 … 1e-1, weight
   decay 0 and 1e-3 … 10), `--steps` steps, each run stopping once validation accuracy has held ≥ 99% for 200
   steps. Trained through `groklab.sweep` with the batched executor (all runs of the grid as stacked members
   of one process on the device). Prints the wall time (the sweep directory written, the table read back), how
   many runs generalized, and the median step at which they did.
2. Power et al.'s setup (2-layer transformer, width 128, x/y mod 97, half the table, batch 512) through
   `groklab.run()` on the device: steps/s over `--power-steps` steps after 50 warm-up steps (kernels, allocator) (evaluation
   included as in a real run: 20 log-spaced evaluations).

Writes OUT/gpu-bench.json with every number, the device's name and torch's version. The targets (issue 12):
the 1000-run diagram ≤ 10 minutes. Everything here also runs on a CPU (used by the test of this script).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from pathlib import Path

import torch

from groklab import presets, run
from groklab.sweep import sweep


def grid(runs: int) -> dict[str, list[float]]:
    """lr × weight decay with about `runs` points: n_lr log-spaced lrs, the rest weight decays (0 first)."""
    n_lr = max(1, round(math.sqrt(runs / 1.6)))
    n_wd = max(1, runs // n_lr)
    lrs = [float(f"{10 ** (-4 + 3 * i / max(n_lr - 1, 1)):.3g}") for i in range(n_lr)]
    wds = [0.0] + [float(f"{10 ** (-3 + 4 * i / max(n_wd - 2, 1)):.3g}") for i in range(n_wd - 1)]
    return {"optim.lr": lrs, "optim.weight_decay": wds}


def phase_diagram(out: Path, device: str, runs: int, steps: int) -> dict:
    base = presets.demo(out=None, steps=steps).replace(**{
        "task.p": 47, "model.width": 128, "train.device": device, "train.eval_points": 40, "train.checkpoint_points": 1,
        "train.stop_when": "val_acc>=0.99", "train.stop_patience": 200})
    g = grid(runs)
    path = out / "phase"
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    res = sweep(base, g, 1, out=path, executor="batched", workers=1, progress=False)
    df = res.table()
    wall = time.perf_counter() - t
    v99 = df["val_acc_99_step"].dropna()
    return {"runs": len(df), "grid": {k: len(v) for k, v in g.items()}, "steps budget": steps, "wall_s": wall,
            "executor": res.executor, "per_run_fallbacks": len(res.per_run), "generalized": int(len(v99)),
            "median val 99% step": float(v99.median()) if len(v99) else None}


def power_rate(out: Path, device: str, steps: int, warmup: int = 50) -> dict:
    cfg = presets.power2022(op="x/y", p=97, train_frac=0.5, steps=warmup + steps).replace(**{
        "train.device": device, "train.eval_points": 20, "train.checkpoint_points": 1})
    seen: list[float] = []
    t = time.perf_counter()
    run(cfg.replace(out=str(out / "power")), on_step=lambda step, row: seen.append(time.perf_counter()) if step in (warmup, warmup + steps - 1) else None)
    total = time.perf_counter() - t
    rate = (steps - 1) / (seen[1] - seen[0]) if len(seen) == 2 else None
    return {"steps timed": steps, "steps_per_s": rate, "whole run s": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--power-steps", type=int, default=2000)
    ap.add_argument("--out", default="runs/gpu-bench")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else platform.processor() or "cpu"
    result = {"device": args.device, "device name": name, "torch": torch.__version__}
    result["power"] = power_rate(out, args.device, args.power_steps)
    print(f"Power setup (x/y mod 97, 2-layer transformer, batch 512) on {name}: {result['power']['steps_per_s']:.1f} steps/s", flush=True)
    result["phase diagram"] = pd = phase_diagram(out, args.device, args.runs, args.steps)
    print(f"phase diagram: {pd['runs']} runs ({pd['grid']}, {pd['steps budget']} steps, {pd['executor']}, "
          f"{pd['per_run_fallbacks']} per-run fallbacks) in {pd['wall_s'] / 60:.1f} min; {pd['generalized']} reached val 99% "
          f"(median step {pd['median val 99% step']})", flush=True)
    (out / "gpu-bench.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
