"""Knowledge composition: Wang, Yue, Su & Sun 2024, "Grokked transformers are implicit reasoners: a mechanistic
journey to the edge of generalization" (arXiv 2405.15071), the composition task.

A random knowledge graph: `n_entities` entities and `n_relations` relations; every entity h is the head of
`out_degree` atomic facts (h, r) → t with distinct relations r and tails t drawn uniformly. Two-hop inferred
facts (h, r1, r2) → t hold whenever (h, r1) → b and (b, r2) → t (b is the bridge entity). As in the
authors' data generator: a random share `ood_frac` (5%) of the atomic facts is set apart as out-of-distribution
(OOD). An inferred fact both of whose hops are OOD atomic facts goes to the OOD test split; one with exactly one
OOD hop is dropped; one with two in-distribution (ID) hops goes to the ID test split with probability
`id_test_frac` (0.5%) and is otherwise a training candidate. The training set is every atomic fact (ID and
OOD, so the model knows all of them) and φ·|ID atomic facts| inferred facts drawn from the candidates
(`task.phi`, the inferred/atomic ratio, the paper's knob). The ID and OOD test splits keep at most
`task.val_size` facts each (the authors' 3000).

So the OOD split asks for compositions of facts the model knows but has never seen composed, with no training
inferred fact about the same atomic facts: the paper finds transformers generalize to the ID split only after
grokking, and fail on the OOD split.

Sequences, one token each: entities 0..E-1, relations E..E+R-1, and a filler ∅ = E+R that pads an atomic fact
to the inferred facts' length: atomic (h, r, ∅), inferred (h, r1, r2). The model appends `=` and reads the tail
entity (one of E classes) at the last position. (The authors train GPT-2 on the text `h r1 r2 t </a>` with the
language-modelling loss on every token; here the loss is on the answer alone, and atomic facts carry ∅ — a
documented simplification.)

Metrics: `val_acc` is the ID test split's accuracy; the probe adds `val_ood_acc` and `val_ood_loss` (the OOD
split), and `train_atomic_acc` / `train_inferred_acc` (the two kinds of training facts apart, each on a fixed subset of
at most `task.val_size` facts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from groklab.config import TaskConfig
    from groklab.tasks.base import Dataset


@dataclass
class KnowledgeGraph:
    """The graph and its splits, as index tensors. `rel[h, j]`, `tail[h, j]`: the j-th atomic fact of head h
    (E, D); `ood[h, j]`: whether it is an OOD atomic fact. Inferred facts are rows (h, r1, r2, b, t) of
    `train_inferred` (the sampled training facts), `id_test` and `ood_test`."""

    n_entities: int
    n_relations: int
    rel: torch.Tensor
    tail: torch.Tensor
    ood: torch.Tensor
    train_inferred: torch.Tensor
    id_test: torch.Tensor
    ood_test: torch.Tensor
    n_candidates: int  # ID inferred facts available for training

    @property
    def pad(self) -> int:
        return self.n_entities + self.n_relations

    def atomic(self) -> torch.Tensor:
        """Every atomic fact as rows (h, r, t), (E·D, 3)."""
        E, D = self.rel.shape
        h = torch.arange(E).repeat_interleave(D)
        return torch.stack([h, self.rel.reshape(-1), self.tail.reshape(-1)], dim=1)

    def tokens(self, facts: torch.Tensor) -> torch.Tensor:
        """(N, 3) atomic (h, r, t) or (N, 5) inferred (h, r1, r2, b, t) rows -> (N, 3) input tokens."""
        E = self.n_entities
        if facts.shape[1] == 3:
            return torch.stack([facts[:, 0], E + facts[:, 1], torch.full_like(facts[:, 0], self.pad)], dim=1)
        return torch.stack([facts[:, 0], E + facts[:, 1], E + facts[:, 2]], dim=1)


def _choose(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """k of range(n) without replacement, sorted (all of them when k >= n)."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=g)[:k].sort().values


def build_graph(n_entities: int, n_relations: int, out_degree: int, phi: float, ood_frac: float, id_test_frac: float,
                test_size: int, seed: int) -> KnowledgeGraph:
    """The knowledge graph and its splits, a function of the arguments alone (a generator seeded by `seed`)."""
    from groklab.errors import ConfigError

    E, R, D = n_entities, n_relations, out_degree
    g = torch.Generator().manual_seed(seed)
    # Each head: D distinct relations (the first D of a random permutation of R), each to a uniform tail.
    rel = torch.rand(E, R, generator=g).argsort(dim=1)[:, :D]  # (E, D)
    tail = torch.randint(0, E, (E, D), generator=g)  # (E, D)
    n_atomic = E * D
    ood = torch.zeros(n_atomic, dtype=torch.bool)
    ood[_choose(n_atomic, round(ood_frac * n_atomic), g)] = True
    ood = ood.view(E, D)

    # Every two-hop path h -r1-> b -r2-> t, as (E, D, D) arrays indexed [h, j1, j2].
    b = tail[:, :, None].expand(E, D, D)
    r1 = rel[:, :, None].expand(E, D, D)
    r2 = rel[tail]  # (E, D, D): the relations of the bridge b = tail[h, j1]
    t = tail[tail]
    ood1, ood2 = ood[:, :, None].expand(E, D, D), ood[tail]
    h = torch.arange(E)[:, None, None].expand(E, D, D)
    paths = torch.stack([h, r1, r2, b, t], dim=-1).reshape(-1, 5)  # (E·D·D, 5)
    ood1, ood2 = ood1.reshape(-1), ood2.reshape(-1)
    both_id = ~ood1 & ~ood2
    to_id_test = torch.rand(len(paths), generator=g) < id_test_frac
    candidates = paths[both_id & ~to_id_test]
    id_test = paths[both_id & to_id_test]
    ood_test = paths[ood1 & ood2]

    n_id_atomic = int((~ood).sum())
    want = round(phi * n_id_atomic)
    if want > len(candidates):
        raise ConfigError(
            f"task.phi={phi} asks for {want} inferred training facts (φ × {n_id_atomic} ID atomic facts) but this graph has only "
            f"{len(candidates)}; use task.phi at most {len(candidates) / max(n_id_atomic, 1):.2f}, or a larger task.out_degree"
        )
    train_inferred = candidates[_choose(len(candidates), want, g)]
    id_test = id_test[_choose(len(id_test), test_size, g)]
    ood_test = ood_test[_choose(len(ood_test), test_size, g)]
    if len(id_test) == 0 or len(ood_test) == 0:
        raise ConfigError(
            f"the graph has {len(id_test)} ID and {len(ood_test)} OOD test facts; both splits must be non-empty: use more "
            "task.n_entities or task.out_degree (or a larger task.ood_frac / task.id_test_frac)"
        )
    return KnowledgeGraph(E, R, rel, tail, ood, train_inferred, id_test, ood_test, len(candidates))


def knowledge_probe(ood_x: torch.Tensor, ood_y: torch.Tensor, atomic_x: torch.Tensor, atomic_y: torch.Tensor,
                    inferred_x: torch.Tensor, inferred_y: torch.Tensor):
    """The OOD split's accuracy and loss, and training accuracy on atomic and inferred facts apart."""

    from groklab.tasks.base import accuracy_and_loss

    def probe(model) -> dict[str, float]:
        ood_acc, ood_loss = accuracy_and_loss(model, ood_x, ood_y)
        out = {"val_ood_acc": ood_acc, "val_ood_loss": ood_loss, "train_atomic_acc": accuracy_and_loss(model, atomic_x, atomic_y)[0]}
        if len(inferred_y):
            out["train_inferred_acc"] = accuracy_and_loss(model, inferred_x, inferred_y)[0]
        return out

    return probe


def graph_of(cfg: TaskConfig) -> KnowledgeGraph:
    return build_graph(cfg.n_entities, cfg.n_relations, cfg.out_degree, cfg.phi, cfg.ood_frac, cfg.id_test_frac, cfg.val_size, cfg.seed)


def build(cfg: TaskConfig) -> Dataset:
    from groklab.tasks.base import Dataset
    from groklab.tasks.targets import corrupt_labels

    kg = graph_of(cfg)
    atomic = kg.atomic()
    ax, ay = kg.tokens(atomic), atomic[:, 2]
    ix, iy = kg.tokens(kg.train_inferred), kg.train_inferred[:, 4]
    x_train, y_true = torch.cat([ax, ix]), torch.cat([ay, iy])
    # The probe measures the two kinds of training facts on fixed subsets of at most val_size each (the whole
    # training set is already measured by train_acc; this keeps an evaluation's cost near that of the splits).
    gp = torch.Generator().manual_seed(cfg.seed + 2)
    a_sub, i_sub = _choose(len(ay), cfg.val_size, gp), _choose(len(iy), cfg.val_size, gp)
    x_val, y_val = kg.tokens(kg.id_test), kg.id_test[:, 4]
    g = torch.Generator().manual_seed(cfg.seed + 1)  # the corruption's own stream: the graph does not move with it
    y_train, corrupted = corrupt_labels(y_true, cfg.corrupt_frac, "class", kg.n_entities, g)
    n = len(y_train)
    return Dataset(
        x_train=x_train, y_train=y_train, y_train_true=y_true, corrupted=corrupted, x_val=x_val, y_val=y_val,
        train_idx=torch.arange(n), val_idx=torch.arange(n, n + len(y_val)),
        n_elements=kg.pad + 1, n_classes=kg.n_entities,
        probe=knowledge_probe(kg.tokens(kg.ood_test), kg.ood_test[:, 4], ax[a_sub], ay[a_sub], ix[i_sub], iy[i_sub]),
    )
