"""Tree projections (Murty, Sharma, Andreas & Manning 2022, "Characterizing intrinsic compositionality in
transformers with tree projections", arXiv 2211.01288), the tree-structuredness measure of structural grokking
(Murty et al. 2023, arXiv 2305.18741).

For a sentence and each span (i, j), the span contextual invariance SCI(i, j) is the cosine distance between
the span's vector computed in context (the sum of its tokens' final-layer vectors when the model reads the
whole sentence) and computed without context (the model reads the span alone). A model that composes
bottom-up along a tree has constituents whose vectors do not depend on their context. The tree projection is
the binary tree whose constituents are most context-invariant: argmin over binary trees T of SCI(T), the sum of
SCI over T's spans, found exactly by a CKY-style dynamic programme in O(n³). Tree-structuredness (t-score) is
how much better the projection is than a random binary tree: E_T[SCI(T)] − SCI(T_proj), per constituent
(n − 2 of them for n tokens, the whole sentence excluded), averaged over sentences; 0 for a model whose span
vectors never depend on context (or always equally), larger for a more tree-structured one. `bracket_f1` scores
the projection against gold constituents (the paper's parsing accuracy).

Small-scale choices, documented: the span alone is read with every other position set to the task's pad token
(our transformer has absolute positions and no attention mask, so the span keeps its positions and its tokens
attend to pads where the paper masks attention); random trees are drawn by splitting top-down at uniform split
points (`n_random` of them, a fixed seed).

A caveat for causal decoders such as groklab's transformer: a span's tokens see only what precedes them, so
every span that starts at the sentence's first token has SCI 0 by construction and the projection leans to
left-branching trees (measured: on a 2-layer Dyck model the projection's bracketing F1 stayed at 0.11 at every
checkpoint while the t-score moved 0.13 → 0.42). Read the t-score's change over training, not the parse.

Pure functions: they never train.
"""

from __future__ import annotations

import random
from typing import Callable

import torch

Span = tuple[int, int]  # (i, j), inclusive


def cky_projection(sci: dict[Span, float], start: int, end: int) -> tuple[float, set[Span]]:
    """The binary tree over positions start..end (inclusive) with the least total SCI over its constituents of
    length ≥ 2, and that total; single tokens cost nothing."""
    best: dict[Span, tuple[float, int]] = {}
    for length in range(2, end - start + 2):
        for i in range(start, end - length + 2):
            j = i + length - 1
            split, cost = min(((m, best.get((i, m), (0.0, -1))[0] + best.get((m + 1, j), (0.0, -1))[0]) for m in range(i, j)),
                              key=lambda t: t[1])
            best[(i, j)] = (sci[(i, j)] + cost, split)
    spans: set[Span] = set()

    def collect(i: int, j: int) -> None:
        if j > i:
            spans.add((i, j))
            m = best[(i, j)][1]
            collect(i, m)
            collect(m + 1, j)

    collect(start, end)
    return best[(start, end)][0], spans


def random_tree(start: int, end: int, rng: random.Random) -> set[Span]:
    """A binary tree over start..end split top-down at uniform split points; its spans of length ≥ 2."""
    if end <= start:
        return set()
    m = rng.randrange(start, end)
    return {(start, end)} | random_tree(start, m, rng) | random_tree(m + 1, end, rng)


def sci_chart(context: torch.Tensor, isolated: Callable[[int, int], torch.Tensor], start: int, end: int) -> dict[Span, float]:
    """SCI(i, j) for every span of length ≥ 2 in start..end: cosine distance between the sum of the context
    vectors `context[i..j]` ((T, d), the whole sentence read at once) and the sum of `isolated(i, j)` ((j-i+1, d),
    the span read alone)."""
    chart = {}
    for i in range(start, end + 1):
        for j in range(i + 1, end + 1):
            a = context[i : j + 1].double().sum(0)
            b = isolated(i, j).double().sum(0)
            chart[(i, j)] = 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    return chart


def t_score(chart: dict[Span, float], start: int, end: int, n_random: int = 50, seed: int = 0) -> tuple[float, set[Span]]:
    """(E_random[SCI(T)] − SCI(T_proj)) per constituent below the root, and the projection's spans."""
    proj_cost, spans = cky_projection(chart, start, end)
    rng = random.Random(seed)
    rand = sum(sum(chart[s] for s in random_tree(start, end, rng)) for _ in range(n_random)) / n_random
    n_const = max(1, end - start - 1)  # a binary tree over n leaves has n - 1 spans of length ≥ 2; the root is in all
    return (rand - proj_cost) / n_const, spans


def bracket_f1(pred: set[Span], gold: set[Span]) -> float:
    """Unlabelled bracketing F1 between two span sets (spans of length ≥ 2 only)."""
    pred = {s for s in pred if s[1] > s[0]}
    gold = {s for s in gold if s[1] > s[0]}
    if not pred or not gold:
        return float("nan")
    hit = len(pred & gold)
    p, r = hit / len(pred), hit / len(gold)
    return 0.0 if hit == 0 else 2 * p * r / (p + r)


@torch.no_grad()
def transformer_tree_projection(model, tokens: torch.Tensor, pad: int, n_random: int = 50, seed: int = 0,
                                gold: Callable[[list[int]], set[Span]] | None = None) -> dict[str, float]:
    """Tree-structuredness of a groklab transformer on left-padded token sequences `tokens` (N, T) whose pad
    token is `pad`: the mean t-score over the sequences, and with `gold` (tokens -> gold spans) the mean
    bracketing F1 of the projections. Context vectors are the final residual stream (`hook_resid_final`)."""
    from groklab.models.common import hooked

    was_training = model.training
    model.eval()
    try:
        def resid(x: torch.Tensor) -> torch.Tensor:
            with hooked(model, ["hook_resid_final"]) as cache:
                model(x)
            return cache["hook_resid_final"]  # (B, T+1, d): the input positions, then `=`

        scores, f1s = [], []
        for row in tokens:
            toks = row.tolist()
            start = next((i for i, t in enumerate(toks) if t != pad), len(toks))
            end = len(toks) - 1
            if end - start < 2:
                continue  # fewer than 3 tokens: every binary tree is the same
            context = resid(row[None])[0]
            # Every span read alone in one batch: the span's tokens at their positions, pads everywhere else.
            spans = [(i, j) for i in range(start, end + 1) for j in range(i + 1, end + 1)]
            alone = torch.full((len(spans), len(toks)), pad, dtype=row.dtype, device=row.device)
            for b, (i, j) in enumerate(spans):
                alone[b, i : j + 1] = row[i : j + 1]
            iso = resid(alone)
            lookup = {s: iso[b, s[0] : s[1] + 1] for b, s in enumerate(spans)}
            chart = sci_chart(context, lambda i, j: lookup[(i, j)], start, end)
            t, proj = t_score(chart, start, end, n_random, seed)
            scores.append(t)
            if gold is not None:
                f1s.append(bracket_f1(proj, gold(toks)))
        out = {"t_score": sum(scores) / len(scores) if scores else float("nan")}
        if gold is not None:
            good = [f for f in f1s if f == f]
            out["parse_f1"] = sum(good) / len(good) if good else float("nan")
        return out
    finally:
        model.train(was_training)
