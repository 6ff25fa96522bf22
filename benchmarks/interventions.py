"""What each intervention costs: training throughput with one knob on, as a ratio to the same run without it.

    python benchmarks/interventions.py [--rounds 20] [--block 3] [--threads 1]

Every setup (a paper configuration with one knob changed) is built once and warmed up (the Grokfast-MA window
filled). Then, round after round, each setup trains `block` steps in a freshly shuffled order, and a knob's
ratio for the round is its step time over the baseline's in that same round. With one thread (the default)
the time is the thread's CPU time, which does not count the waits for a core that other processes hold.

Two estimates are printed: the median of the per-round paired ratios (the result; its quartiles show how
noisy the measurement was), and the ratio of the best (minimum) block times. The target is ≤ 1.15 for every
knob. A step here is the loop's update: batch, loss, backward, interventions, optimizer step (evaluation
excluded).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from groklab import presets
from groklab.config import RunConfig
from groklab.models import build_model
from groklab.tasks import build_dataset
from groklab.train.interventions import build_interventions
from groklab.train.runtime import tune_cpu_runtime
from groklab.train.optim import build_optimizer, loss_fn, lr_at

KNOBS: dict[str, dict] = {
    "grokfast ema": {"reg.grokfast": "ema"},
    "grokfast ma w=100": {"reg.grokfast": "ma", "reg.grokfast_ma_window": 100},
    "gradient noise": {"reg.grad_noise": 1e-3},
    "weight noise": {"reg.weight_noise": 1e-3},
    "norm constraint": {"reg.constrain_norm": True},
    "⊥grad (⊥AdamW)": {"reg.orthograd": True},
    "stablemax loss": {"train.loss": "stablemax"},
    "no decay embed,norm,bias": {"optim.no_decay": ["embed", "norm", "bias"]},
    "cosine schedule": {"optim.schedule": "cosine"},
    "dropout 0.1": {"model.dropout": 0.1},
}
MLP_ONLY = {"batchnorm": {"model.batchnorm": True}}
INFO = {  # not single knobs: shown for reference, no target
    "all of the above": {k: v for d in KNOBS.values() for k, v in d.items()},
    "float64": {"train.dtype": "float64"},
}


class Setup:
    """The training loop's update, for one config (as train/loop.py does it, without evaluation)."""

    def __init__(self, cfg: RunConfig):
        torch.manual_seed(cfg.train.seed)
        self.cfg = cfg
        dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
        self.data = build_dataset(cfg.task)
        self.model = build_model(cfg.model, self.data.n_elements, self.data.n_classes).to(dtype=dtype)
        self.model.train()
        self.opt = build_optimizer(self.model, cfg.optim)
        self.hooks = build_interventions(cfg, self.model)
        self.gen = torch.Generator().manual_seed(1)
        self.step_no = 0

    def step(self) -> None:
        cfg, data = self.cfg, self.data
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step_no, cfg.optim, cfg.train.steps)
        if cfg.train.batch_size is None:
            xb, yb = data.x_train, data.y_train
        else:
            idx = torch.randperm(data.n_train, generator=self.gen)[: cfg.train.batch_size]
            xb, yb = data.x_train[idx], data.y_train[idx]
        loss = loss_fn(self.model(xb), yb, cfg.train.loss)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for h in self.hooks:
            h.before_step(self.model, self.step_no)
        self.opt.step()
        for h in self.hooks:
            h.after_step(self.model, self.step_no)
        self.step_no += 1


def clock() -> float:
    """CPU time of this thread: with one torch thread every op runs here, and time spent waiting for a core that
    other processes hold is not counted (wall-clock time on a shared machine mostly measures their load)."""
    return time.thread_time() if torch.get_num_threads() == 1 else time.perf_counter()


def bench(family: str, base: RunConfig, knobs: dict[str, dict], rounds: int, block: int) -> None:
    setups = {"baseline": Setup(base)}
    for name, change in knobs.items():
        setups[name] = Setup(base.replace(**change))
    for name, s in setups.items():
        for _ in range(s.cfg.reg.grokfast_ma_window + 3 if s.cfg.reg.grokfast == "ma" else 3):
            s.step()  # warm up (and fill the Grokfast-MA window, whose full state is the steady cost)
    times: dict[str, list[float]] = {n: [] for n in setups}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(setups)
        rng.shuffle(order)
        for name in order:
            t = clock()
            for _ in range(block):
                setups[name].step()
            times[name].append((clock() - t) / block)
    best = min(times["baseline"])
    print(f"\n{family}: baseline best {1e3 * best:.1f} ms/step, median {1e3 * statistics.median(times['baseline']):.1f} (machine-dependent; read the ratios)")
    print(f"  {'knob':<28} {'paired median':>13}  {'quartiles':>13}  {'best / best':>11}  target ≤ 1.15")
    for name in knobs:
        ratios = sorted(a / b for a, b in zip(times[name], times["baseline"]))
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        med = statistics.median(ratios)
        flag = "(info)" if name in INFO else ("ok" if med <= 1.15 else "OVER")
        print(f"  {name:<28} {med:13.3f}  {q1:6.3f}–{q3:6.3f}  {min(times[name]) / best:11.3f}  {flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--block", type=int, default=3, help="steps per setup per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_runtime()
    print(f"threads {torch.get_num_threads()}, {args.rounds} rounds of {args.block} steps per setup, interleaved in shuffled order")
    bench(
        "(a) Power et al. transformer, x/y mod 97, batch 512",
        presets.power2022(op="x/y", p=97, train_frac=0.5, steps=100_000),
        {**KNOBS, **INFO}, args.rounds, args.block,
    )
    bench(
        "(c) Doshi et al. MLP, x+y mod 97, width 500, full batch",
        presets.doshi2023(steps=100_000),
        {**KNOBS, **MLP_ONLY, **INFO}, args.rounds, args.block,
    )


if __name__ == "__main__":
    main()
