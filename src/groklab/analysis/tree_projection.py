"""Tree projections (Murty, Sharma, Andreas & Manning 2022, "Characterizing intrinsic compositionality in
transformers with tree projections", arXiv 2211.01288), the tree-structuredness measure of structural grokking
(Murty et al. 2023, "Grokking of hierarchical structure in vanilla transformers", arXiv 2305.18741).

For a sentence and each span (i, j), the span contextual invariance SCI(i, j) is the cosine distance between
the span's vector computed in context (the sum of its tokens' final-layer vectors when the model reads the
whole sentence) and computed without context (the same sum when the span's tokens may attend only to the span:
attention to the rest of the sentence is masked, as the paper does). A model that composes bottom-up along a
tree has constituents whose vectors do not depend on their context. The tree projection is the binary tree
whose constituents are most context-invariant; its SCI(T) is the sum of SCI over T's spans. Tree-structuredness
(t-score) is how much better the projection is than a random binary tree: E_T[SCI(T)] − SCI(T_proj), per
constituent below the root (n − 2 of them for n tokens), averaged over sentences; 0 for a model whose span
vectors never depend on context, larger for a more tree-structured one. `bracket_f1` scores the projection
against gold constituents (the paper's parsing accuracy).

Two projections: `cky_projection`, the exact argmin over binary trees (a CKY-style dynamic programme, O(n³));
and `greedy_projection`, the paper's top-down approximation (at each node the split whose two children have
the least SCI, single tokens included), which is what the authors run on causal language models.

Causal decoders (groklab's transformer; the 2023 paper's language models): a token sees only what precedes it,
so the only context a span has is on its left, and every span that starts at the sentence's first token is
context-free by construction (SCI 0). Under the exact argmin the left-branching tree, all of whose constituents
start there, then costs 0 and wins for every model: the parse says nothing (measured with the earlier padding
emulation: bracketing F1 0.11 at every checkpoint). The top-down projection does not collapse: at a node that
starts the sentence it picks the most context-invariant suffix as the right child, elsewhere the split whose
two children are both most context-invariant. `transformer_tree_projection` therefore uses it by default
(`method="greedy"`); `method="cky"` is there for models that read both ways and for comparison.

Choices, documented: "without context" masks attention from the span's tokens to every sentence token outside
the span, while the left pads stay visible (they are in every input the model trained on, like the
start-of-sentence token the authors keep unmasked); absolute positions stay as in the sentence (as in the
paper's masked forward pass). Random trees are drawn by splitting top-down at uniform split points (`n_random`
of them, a fixed seed). Ties in the greedy split go to the leftmost split point (the longest right child).

Pure functions: they never train.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable

import torch

Span = tuple[int, int]  # (i, j), inclusive


def cky_projection(sci: dict[Span, float], start: int, end: int) -> tuple[float, set[Span]]:
    """The binary tree over positions start..end (inclusive) with the least total SCI over its constituents of
    length ≥ 2, and that total; single tokens cost nothing (every tree has the same ones)."""
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


def greedy_projection(sci: dict[Span, float], start: int, end: int) -> tuple[float, set[Span]]:
    """Murty et al.'s top-down projection: split each node (i, j) at the m whose children (i, m) and (m + 1, j)
    have the least SCI(i, m) + SCI(m + 1, j) (a single token's SCI counts when the chart has it, else 0; ties to
    the smallest m), then recurse. Returns the tree's total SCI over its constituents of length ≥ 2 (as
    `cky_projection`) and its spans."""
    spans: set[Span] = set()
    stack = [(start, end)]
    while stack:
        i, j = stack.pop()
        if j <= i:
            continue
        spans.add((i, j))
        m = min(range(i, j), key=lambda m: sci.get((i, m), 0.0) + sci.get((m + 1, j), 0.0))
        stack += [(i, m), (m + 1, j)]
    return sum(sci[s] for s in spans), spans


PROJECTIONS = {"greedy": greedy_projection, "cky": cky_projection}


def random_tree(start: int, end: int, rng: random.Random) -> set[Span]:
    """A binary tree over start..end split top-down at uniform split points; its spans of length ≥ 2."""
    if end <= start:
        return set()
    m = rng.randrange(start, end)
    return {(start, end)} | random_tree(start, m, rng) | random_tree(m + 1, end, rng)


def sci_chart(context: torch.Tensor, isolated: Callable[[int, int], torch.Tensor], start: int, end: int) -> dict[Span, float]:
    """SCI(i, j) for every span in start..end, single tokens included: cosine distance between the sum of the
    context vectors `context[i..j]` ((T, d), the whole sentence read at once) and the sum of `isolated(i, j)`
    ((j-i+1, d), the span read without its context)."""
    chart = {}
    for i in range(start, end + 1):
        for j in range(i, end + 1):
            a = context[i : j + 1].double().sum(0)
            b = isolated(i, j).double().sum(0)
            chart[(i, j)] = 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    return chart


def t_score(chart: dict[Span, float], start: int, end: int, n_random: int = 50, seed: int = 0,
            method: str = "greedy") -> tuple[float, set[Span]]:
    """(E_random[SCI(T)] − SCI(T_proj)) per constituent below the root, and the projection's spans; `method`:
    "greedy" (the paper's top-down projection) or "cky" (the exact argmin)."""
    proj_cost, spans = PROJECTIONS[method](chart, start, end)
    rng = random.Random(seed)
    rand = sum(sum(chart[s] for s in random_tree(start, end, rng)) for _ in range(n_random)) / n_random
    n_const = max(1, end - start - 1)  # a binary tree over n leaves has n - 1 spans of length ≥ 2; the root is in all
    return (rand - proj_cost) / n_const, spans


def bracket_f1(pred: set[Span], gold: set[Span]) -> float:
    """Unlabelled bracketing F1 between two span sets (spans of length ≥ 2 only); NaN when either is empty."""
    pred = {s for s in pred if s[1] > s[0]}
    gold = {s for s in gold if s[1] > s[0]}
    if not pred or not gold:
        return float("nan")
    hit = len(pred & gold)
    p, r = hit / len(pred), hit / len(gold)
    return 0.0 if hit == 0 else 2 * p * r / (p + r)


def span_key_masks(n_ctx: int, start: int, spans: list[Span]) -> torch.Tensor:
    """(len(spans), n_ctx) bool: the positions a span's tokens may attend to when read without context, the left
    pads 0..start-1 and the span itself."""
    mask = torch.zeros(len(spans), n_ctx, dtype=torch.bool)
    mask[:, :start] = True
    for b, (i, j) in enumerate(spans):
        mask[b, i : j + 1] = True
    return mask


def _mean(xs: list[float]) -> float:
    good = [x for x in xs if x == x]
    return sum(good) / len(good) if good else float("nan")


@torch.no_grad()
def transformer_tree_projection(model, tokens: torch.Tensor, pad: int, n_random: int = 50, seed: int = 0,
                                gold: Callable[[list[int]], set[Span]] | None = None, method: str = "greedy") -> dict[str, float]:
    """Tree-structuredness of a groklab transformer on left-padded token sequences `tokens` (N, T) whose pad
    token is `pad`: `t_score`, the mean t-score over the sequences (3 tokens or more), and `mean_sci`, the mean
    SCI of all spans of length ≥ 2 below the whole sentence; with `gold` (tokens -> gold spans) `parse_f1`, the
    mean bracketing F1 of the projections against gold, and `random_f1`, that of the random trees (chance).
    Context vectors are the final residual stream (`hook_resid_final`); a span without context is read with
    the model's `key_mask` (see the module docstring)."""
    from groklab.models.common import hooked

    if method not in PROJECTIONS:
        from groklab.errors import ConfigError

        raise ConfigError(f"method={method!r} is not a tree projection; choose one of: {', '.join(PROJECTIONS)}")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        def resid(x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
            with hooked(model, ["hook_resid_final"]) as cache:
                model(x, key_mask=key_mask)
            return cache["hook_resid_final"]  # (B, T+1, d): the input positions, then `=`

        scores, sci_means, f1s, rand_f1s = [], [], [], []
        for row in tokens.to(dev):
            toks = row.tolist()
            start = next((i for i, t in enumerate(toks) if t != pad), len(toks))
            end = len(toks) - 1
            if end - start < 2:
                continue  # fewer than 3 tokens: every binary tree is the same
            context = resid(row[None])[0]
            # Every span in one batch: the whole sentence each time, each row's attention kept inside its span.
            spans = [(i, j) for i in range(start, end + 1) for j in range(i, end + 1)]
            masks = span_key_masks(context.shape[0], start, spans).to(dev)
            iso = resid(row[None].expand(len(spans), -1), masks)  # (S, T+1, d)
            # sci_chart's sums and cosines for all spans at once: `inside` (S, T) marks each span's tokens.
            inside = torch.zeros(len(spans), len(toks), dtype=torch.float64, device=dev)
            for b, (i, j) in enumerate(spans):
                inside[b, i : j + 1] = 1.0
            a = inside @ context[: len(toks)].double()  # (S, d) in context
            b_ = torch.einsum("st,std->sd", inside, iso[:, : len(toks)].double())  # (S, d) without context
            dist = (1.0 - torch.nn.functional.cosine_similarity(a, b_, dim=1)).tolist()
            chart = dict(zip(spans, dist))
            t, proj = t_score(chart, start, end, n_random, seed, method)
            scores.append(t)
            inner = [v for (i, j), v in chart.items() if j > i and (i, j) != (start, end)]
            sci_means.append(sum(inner) / len(inner))
            if gold is not None:
                g = gold(toks)
                f1s.append(bracket_f1(proj, g))
                rng = random.Random(seed + 1)
                rand_f1s.append(_mean([bracket_f1(random_tree(start, end, rng), g) for _ in range(n_random)]))
        out = {"t_score": _mean(scores), "mean_sci": _mean(sci_means)}
        if gold is not None:
            out["parse_f1"], out["random_f1"] = _mean(f1s), _mean(rand_f1s)
        return out
    finally:
        model.train(was_training)


def dyck_tree_rows(models: Iterable[tuple[int, torch.nn.Module]], tokens: torch.Tensor, k: int, n_sentences: int = 24,
                   min_len: int = 8, n_random: int = 30) -> list[dict]:
    """Tree projections of a Dyck model at every checkpoint: one row per (step, model) with `t_score`,
    `mean_sci`, `parse_f1` and `random_f1` (`transformer_tree_projection` against the matched brackets) on the
    first `n_sentences` of `tokens` (left-padded prefixes, pad 2k) with at least `min_len` real tokens. Runs on
    one thread: a sentence's forward passes are tiny, and on a busy machine a second thread made them 20× slower."""
    from groklab.tasks.dyck import gold_spans
    from groklab.train.runtime import cpu_runtime

    pad = 2 * k
    x = tokens[(tokens != pad).sum(1) >= min_len][:n_sentences]
    with cpu_runtime(1):  # the thread count comes back afterwards
        return [{"step": step, "n_sentences": len(x), **transformer_tree_projection(model, x, pad, n_random=n_random,
                                                                                    gold=lambda t: gold_spans(t, k))}
                for step, model in models]
