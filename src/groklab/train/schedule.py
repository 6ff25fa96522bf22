"""When to evaluate and checkpoint (log-spaced steps, since grokking spans decades of steps), and which training
examples each update reads (the minibatch order, shared by run() and stacked members)."""

from __future__ import annotations

import functools

import numpy as np
import torch

BATCH_SEED_OFFSET = 1_000_003
"""The minibatch generator of a run is seeded with train.seed + this (apart from init's train.seed)."""


def minibatch(step: int, n_train: int, batch: int, order: str, seed: int, gen: torch.Generator) -> torch.Tensor:
    """The training rows update `step` (0-based) reads, a (batch,) or shorter long tensor on the CPU.

    `random`: a fresh random subset of `batch` rows from `gen` (its state is part of the resume state).
    `epoch`: the papers' loops (openai/grok's ArithmeticIterator, danielmamay/grokking's and ironjr/grokfast's
    torch.split): each epoch a new permutation cut into ⌈n_train/batch⌉ consecutive batches, the last one
    holding the n_train mod batch rows left over. `cycle`: the first epoch's batches, repeated in the same order
    for ever (`itertools.cycle` over a shuffling DataLoader caches its first pass: Omnigrok's code). Both depend
    on (seed, step) alone, so a resumed run or a stacked member reads the same rows with no state to carry."""
    if order == "random":
        return torch.randperm(n_train, generator=gen)[:batch]
    per_epoch = -(-n_train // batch)
    epoch, k = divmod(step, per_epoch)
    return _epoch_permutation(seed, 0 if order == "cycle" else epoch, n_train)[k * batch:(k + 1) * batch]


@functools.lru_cache(maxsize=256)
def _epoch_permutation(seed: int, epoch: int, n_train: int) -> torch.Tensor:
    """Epoch `epoch`'s order of the training rows, drawn once per epoch (and per stacked member: a member is its
    seed). numpy's SeedSequence keys the stream by (seed, epoch) without collisions; torch's CPU generator keeps
    32 bits of a seed, so seed + epoch·2³² would repeat epoch 0. Read-only: callers slice it."""
    return torch.from_numpy(np.random.default_rng([seed + BATCH_SEED_OFFSET, epoch]).permutation(n_train))


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
