"""Dyck languages: the tree-structured task of structural grokking (Murty, Sharma, Andreas & Manning 2023,
"Grokking of hierarchical structure in vanilla transformers", arXiv 2305.18741).

Strings over `dyck_k` bracket types, balanced, nesting at most `dyck_depth` deep. The model reads a prefix of
such a string that still has open brackets and must name the bracket type that closes next (the top of the
stack): the prediction a Dyck language model has to get right, and the one that needs the string's tree
structure (the matching open bracket can be far back, past complete sub-trees). Prefixes are 2..`dyck_len`
tokens long, left-padded with a pad token to `dyck_len`; training and validation prefixes are distinct,
drawn from the same random process (`train_size`, `val_size`), so validation accuracy is generalization to
unseen strings.

Structurally novel prefixes (the paper's generalization test, after the authors' Dyck data and evaluation code):
a string's top-level shapes are the bracket skeletons (open/close, types ignored) of its pieces between returns
to the empty stack, the last, unfinished piece included. Further prefixes from the same process that have a
top-level shape no training prefix has, and whose answer depends on a bracket at least ⌈`dyck_len`/2⌉ tokens
back (the open bracket to close is that far from the end; the authors test dependencies of ≥ 10 tokens in
strings of hundreds), form an out-of-distribution split: up to `val_size` of them, found among 16·`val_size`
more prefixes. The probe reports its accuracy and loss at every evaluation as `val_ood_acc` and `val_ood_loss`;
`val_acc` stays the accuracy on unseen prefixes from the training distribution, half of which end on the open
bracket they ask about (an easy question). Adding the split changed neither the training nor the validation
prefixes.

Tokens: open bracket of type c is 2c, its close 2c + 1, the pad 2k. Labels: the type c (k classes).
The tree-structuredness measure that goes with it is analysis/tree_projection.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.base import Dataset


def is_balanced_prefix(tokens: list[int], k: int) -> tuple[bool, list[int]]:
    """Whether `tokens` (pads removed) is a prefix of a Dyck-k string, and the stack of open types after it."""
    stack: list[int] = []
    for t in tokens:
        if t == 2 * k:
            continue
        c, closing = divmod(t, 2)
        if not closing:
            stack.append(c)
        elif not stack or stack.pop() != c:
            return False, stack
    return True, stack


def _match(tokens: list[int], k: int) -> tuple[set[tuple[int, int]], list[int]]:
    """(the matched pairs (open position, close position), the positions of the brackets still open), pads
    skipped and counted in the positions."""
    stack: list[int] = []
    spans = set()
    for pos, t in enumerate(tokens):
        if t == 2 * k:
            continue
        if t % 2 == 0:
            stack.append(pos)
        elif stack:
            spans.add((stack.pop(), pos))
    return spans, stack


def gold_spans(tokens: list[int], k: int) -> set[tuple[int, int]]:
    """Constituents of a Dyck string: (i, j) for every matched pair, open bracket at i and its close at j
    (positions in `tokens`, pads included in the indexing)."""
    return _match(tokens, k)[0]


def sample_prefixes(n: int, k: int, depth: int, length: int, g: torch.Generator, p_open: float = 0.5) -> torch.Tensor:
    """n distinct random Dyck-k prefixes of 2..length tokens, nesting ≤ depth, ending with an open bracket on the
    stack; (n, length) long tensor, left-padded with 2k. Fewer than n when the language has fewer."""
    seen: set[tuple[int, ...]] = set()
    out: list[list[int]] = []
    tries = 0
    while len(out) < n and tries < 50 * n + 1000:
        tries += 1
        L = int(torch.randint(2, length + 1, (1,), generator=g))
        u = torch.rand(L, generator=g).tolist()
        types = torch.randint(0, k, (L,), generator=g).tolist()
        stack: list[int] = []
        seq: list[int] = []
        for i in range(L):
            must_open = not stack
            must_close = len(stack) >= depth
            if must_open or (not must_close and u[i] < p_open):
                stack.append(types[i])
                seq.append(2 * types[i])
            else:
                seq.append(2 * stack.pop() + 1)
        if not stack:
            continue  # nothing left to close: not a question
        key = tuple(seq)
        if key in seen:
            continue
        seen.add(key)
        out.append([2 * k] * (length - L) + seq)
    return torch.tensor(out, dtype=torch.long).reshape(-1, length)


def top_level_shapes(tokens: list[int], k: int) -> list[tuple[int, ...]]:
    """The skeletons (1 open, 0 close) of a prefix's pieces between returns to the empty stack, pads skipped; the
    last piece is the unfinished one."""
    shapes: list[tuple[int, ...]] = []
    piece: list[int] = []
    height = 0
    for t in tokens:
        if t == 2 * k:
            continue
        opening = t % 2 == 0
        piece.append(int(opening))
        height += 1 if opening else -1
        if height == 0:
            shapes.append(tuple(piece))
            piece = []
    if piece:
        shapes.append(tuple(piece))
    return shapes


def dependency_length(tokens: list[int], k: int) -> int:
    """How far back the bracket to close is: the prefix's length minus the position of its top open bracket."""
    stack = _match(tokens, k)[1]
    return len(tokens) - stack[-1] if stack else 0


def ood_split(train: torch.Tensor, candidates: torch.Tensor, k: int, n: int, min_dependency: int) -> torch.Tensor:
    """The first n rows of `candidates` with a top-level shape that no row of `train` has and a dependency of at
    least `min_dependency` tokens (fewer rows if there are fewer)."""
    seen = {s for row in train.tolist() for s in top_level_shapes(row, k)}
    keep = [b for b, row in enumerate(candidates.tolist())
            if dependency_length(row, k) >= min_dependency and any(s not in seen for s in top_level_shapes(row, k))][:n]
    return candidates[keep]


def labels_of(x: torch.Tensor, k: int) -> torch.Tensor:
    """The type of the bracket that closes next after each prefix (the top of its stack)."""
    return torch.tensor([is_balanced_prefix(row.tolist(), k)[1][-1] for row in x], dtype=torch.long)


def build(cfg: TaskConfig) -> Dataset:
    from groklab.errors import ConfigError
    from groklab.tasks.base import Dataset, no_probe
    from groklab.tasks.targets import corrupt_labels

    k = cfg.dyck_k
    g = torch.Generator().manual_seed(cfg.seed)
    n = cfg.train_size + cfg.val_size
    # The first n prefixes do not depend on how many more are drawn: the extra ones are candidates for the OOD split.
    pool = sample_prefixes(n + 16 * cfg.val_size, k, cfg.dyck_depth, cfg.dyck_len, g)
    x = pool[:n]
    if len(x) < n:
        raise ConfigError(
            f"task.train_size={cfg.train_size} + task.val_size={cfg.val_size} distinct Dyck prefixes were asked for, but only "
            f"{len(x)} were found (dyck_k={k}, dyck_depth={cfg.dyck_depth}, dyck_len={cfg.dyck_len}); ask for fewer or a larger language"
        )
    y = labels_of(x, k)
    x_train, y_true, x_val, y_val = x[: cfg.train_size], y[: cfg.train_size], x[cfg.train_size :], y[cfg.train_size :]
    y_train, corrupted = corrupt_labels(y_true, cfg.corrupt_frac, "class", k, g)
    n = len(y_train)
    x_ood = ood_split(x_train, pool[len(x):], k, cfg.val_size, -(-cfg.dyck_len // 2))
    return Dataset(
        x_train=x_train, y_train=y_train, y_train_true=y_true, corrupted=corrupted, x_val=x_val, y_val=y_val,
        train_idx=torch.arange(n), val_idx=torch.arange(n, n + len(y_val)), n_elements=2 * k + 1, n_classes=k,
        probe=ood_probe(x_ood, labels_of(x_ood, k)) if len(x_ood) else no_probe,
    )


def ood_probe(x: torch.Tensor, y: torch.Tensor):
    """Accuracy and loss on the structurally novel prefixes (`val_ood_acc`, `val_ood_loss`); the prefixes and
    labels are the probe's `x` and `y`."""
    from groklab.tasks.base import accuracy_and_loss

    def probe(model) -> dict[str, float]:
        acc, loss = accuracy_and_loss(model, x, y)
        return {"val_ood_acc": acc, "val_ood_loss": loss}

    probe.x, probe.y = x, y  # type: ignore[attr-defined]
    return probe
