"""Issue 15, parts 4–6: the ungrokking swap and the efficiency metric (Varma et al. 2023), the knowledge-graph
composition task and the logit lens (Wang et al. 2024), and the structural-grokking task (Murty et al. 2023)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import strip_time, tiny_transformer

from groklab import ConfigError, ModelConfig, RegConfig, RunConfig, TaskConfig, TrainConfig, resume, run
from groklab.tasks import build_dataset
from groklab.train.interventions import build_interventions
from groklab.train.interventions import Efficiency, SwapTrainSet, swapped_size


def tiny(out=None, **dotted) -> RunConfig:
    return tiny_transformer(out, **{"task.train_frac": 0.6, "train.steps": 30, "train.batch_size": 16, "train.checkpoint_points": 6,
                                    **dotted})


# --- part 4: ungrokking (the training-set swap) and circuit efficiency -----------------------------------------
def test_swap_keeps_a_seeded_subset_of_the_training_set_and_the_validation_set():
    data = build_dataset(TaskConfig(p=13, train_frac=0.6))
    iv = SwapTrainSet(swap_step=5, frac=0.3, seed=0)
    assert iv.train_data(data, 4) is data  # before the swap: untouched
    after = iv.train_data(data, 5)
    k = swapped_size(data.n_train, 0.3)
    assert after.n_train == k == round(0.3 * data.n_train)
    # A subset of the training rows (same equations, same labels), the validation set unchanged.
    assert set(after.train_idx.tolist()) < set(data.train_idx.tolist())
    pos = {int(i): j for j, i in enumerate(data.train_idx)}
    rows = torch.tensor([pos[int(i)] for i in after.train_idx])
    assert torch.equal(after.x_train, data.x_train[rows]) and torch.equal(after.y_train, data.y_train[rows])
    assert after.x_val is data.x_val and after.y_val is data.y_val
    assert iv.train_data(after, 6) is after  # later steps keep the same set
    # The dropped examples are the rest of the training set.
    assert len(iv.dropped[1]) == data.n_train - k
    # A function of the seed and the data alone: a second object (a resumed run) picks the same rows; another seed others.
    again = SwapTrainSet(swap_step=5, frac=0.3, seed=0).train_data(data, 9)
    assert torch.equal(again.train_idx, after.train_idx)
    other = SwapTrainSet(swap_step=5, frac=0.3, seed=1).train_data(data, 9)
    assert not torch.equal(other.train_idx, after.train_idx)


def test_swap_and_efficiency_config_checks():
    with pytest.raises(ConfigError, match=r"reg\.swap_train_frac=0\.0 must be in \(0, 1\]"):
        RegConfig(swap_train_frac=0.0)
    with pytest.raises(ConfigError, match=r"reg\.swap_step=-1"):
        RegConfig(swap_step=-1)
    with pytest.raises(ConfigError, match=r"reg\.swap_step=50 is after the last step \(train\.steps=30\)"):
        tiny(**{"reg.swap_step": 50})
    # 0.1 of 101 training equations is 10: a batch of 16 no longer fits.
    with pytest.raises(ConfigError, match=r"train\.batch_size=16 is larger than the training set after the swap .* use at most 10"):
        tiny(**{"reg.swap_step": 10, "reg.swap_train_frac": 0.1})
    cfg = tiny()
    assert build_interventions(cfg, torch.nn.Linear(2, 2)) == []  # off by default
    names = [h.name for h in build_interventions(tiny(**{"reg.swap_step": 10}), torch.nn.Linear(2, 2))]
    assert names == ["swap_train", "efficiency"]  # the swap brings the efficiency metric along, after it


def test_efficiency_is_the_mean_logit_norm_over_the_parameter_norm():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # parameter norm 5

        def forward(self, x):  # logits (N, 2): (3x, 4x), norm 5|x|
            return x.float()[:, :1] * self.w

    data = build_dataset(TaskConfig(p=5, train_frac=0.5))
    eff = Efficiency()
    eff.train_data(data, 0)
    m = eff.metrics(Fixed())
    expected = 5 * data.x_train[:, 0].double().abs().mean().item()
    assert m["logit_norm"] == pytest.approx(expected)
    assert m["logit_per_param_norm"] == pytest.approx(expected / 5)


@pytest.mark.integration
@pytest.mark.parametrize("crash_at", [10, 17])  # resume state before the swap (replayed across it), and after it
def test_swap_run_trains_on_the_subset_and_resumes_bit_identically(tmp_path, crash_at):
    knobs = {"reg.swap_step": 12, "reg.swap_train_frac": 0.5, "model.dropout": 0.1}
    ref = run(tiny(tmp_path / "a", **knobs))
    n_full = ref.rows[0]["train_size"]
    assert n_full == 101 and ref.summary["n_train"] == 50
    assert all(r["train_size"] == (n_full if r["step"] < 12 else 50) for r in ref.rows)
    assert all(("swap_dropped_acc" in r) == (r["step"] >= 12) for r in ref.rows)
    assert all(math.isfinite(r["logit_per_param_norm"]) for r in ref.rows)

    def crash(step, row):
        if step == crash_at:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        run(tiny(tmp_path / "b", **knobs), on_step=crash)
    resumed = resume(tmp_path / "b")
    assert strip_time(resumed.rows) == strip_time(ref.rows)
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


# --- part 5: knowledge composition (Wang et al. 2024) and the logit lens -----------------------------------------
def small_graph(**kw):
    from groklab.tasks.knowledge import build_graph

    args = dict(n_entities=60, n_relations=8, out_degree=5, phi=3.0, ood_frac=0.2, id_test_frac=0.05, test_size=10_000, seed=0)
    args.update(kw)
    return build_graph(**args)


def test_knowledge_graph_facts_and_splits_match_brute_force():
    kg = small_graph()
    E, D = kg.rel.shape
    # Atomic facts: D distinct relations per head, tails in range.
    assert all(len(set(kg.rel[h].tolist())) == D for h in range(E)) and int(kg.tail.max()) < E
    facts = {(h, int(kg.rel[h, j])): (int(kg.tail[h, j]), bool(kg.ood[h, j])) for h in range(E) for j in range(D)}
    # Brute force: every two-hop path, split by the OOD status of its hops.
    train_pool, id_all, ood_all = set(), set(), set()
    for (h, r1), (b, ood1) in facts.items():
        for (b2, r2), (t, ood2) in facts.items():
            if b2 != b:
                continue
            if ood1 and ood2:
                ood_all.add((h, r1, r2, b, t))
            elif not ood1 and not ood2:
                id_all.add((h, r1, r2, b, t))
    rows = lambda T: {tuple(int(v) for v in r) for r in T}  # noqa: E731
    train, id_test, ood_test = rows(kg.train_inferred), rows(kg.id_test), rows(kg.ood_test)
    # Every inferred fact is the composition of two atomic facts ...
    for h, r1, r2, b, t in train | id_test | ood_test:
        assert facts[(h, r1)][0] == b and facts[(b, r2)][0] == t
    # ... training and ID test facts compose two ID atomic facts, OOD test facts two OOD ones, and they are disjoint.
    assert train <= id_all and id_test <= id_all and ood_test == ood_all
    assert not (train & id_test) and kg.n_candidates == len(id_all) - len(id_test)
    n_id_atomic = int((~kg.ood).sum())
    assert len(train) == round(3.0 * n_id_atomic)
    # The paper's OOD definition: no training inferred fact uses an OOD atomic fact as either hop, so no OOD
    # test fact shares a hop with (or repeats a (head, bridge) or (bridge, tail) pair of) a training inferred fact.
    train_hops = {(h, r1) for h, r1, _, _, _ in train} | {(b, r2) for _, _, r2, b, _ in train}
    assert all((h, r1) not in train_hops and (b, r2) not in train_hops for h, r1, r2, b, t in ood_test)
    train_pairs = {(h, b) for h, _, _, b, _ in train} | {(b, t) for _, _, _, b, t in train}
    ood_hops = {(h, r) for (h, r), (_, o) in facts.items() if o}
    assert all((h, r1) in ood_hops and (b, r2) in ood_hops for h, r1, r2, b, t in ood_test)
    assert train_pairs  # (a non-empty training composition set, so the check above is not vacuous)


def test_knowledge_dataset_tokens_labels_and_config():
    from groklab.tasks.knowledge import graph_of

    cfg = TaskConfig(group="knowledge", n_entities=60, n_relations=8, out_degree=5, phi=3.0, ood_frac=0.2, id_test_frac=0.05, val_size=50)
    data = build_dataset(cfg)
    kg = graph_of(cfg)
    E, R = 60, 8
    assert data.n_classes == E and data.n_elements == E + R + 1 and data.n_inputs == 3
    assert data.n_train == cfg.n_train == E * 5 + round(3.0 * int((~kg.ood).sum()))
    assert data.n_val == min(50, len(kg.id_test)) <= 50
    # Atomic facts first, padded with the filler token; then inferred facts (h, r1, r2).
    n_atomic = E * 5
    assert (data.x_train[:n_atomic, 2] == E + R).all() and (data.x_train[n_atomic:, 1:] >= E).all()
    assert (data.x_train[n_atomic:, 2] < E + R).all() and (data.x_train[:, 0] < E).all()
    # Same config, same data; another seed, another graph.
    again = build_dataset(cfg)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_val, data.y_val)
    assert not torch.equal(build_dataset(TaskConfig(**{**cfg.__dict__, "seed": 1})).y_train, data.y_train)
    with pytest.raises(ConfigError, match=r"task\.phi=100\.0 asks for .* use task\.phi at most"):
        build_dataset(TaskConfig(**{**cfg.__dict__, "phi": 100.0}))
    with pytest.raises(ConfigError, match=r"task\.out_degree=9 must be at most task\.n_relations=8"):
        TaskConfig(group="knowledge", n_relations=8, out_degree=9)
    with pytest.raises(ConfigError, match=r"use model\.arch='transformer'"):
        RunConfig(task=cfg, model=ModelConfig(arch="mlp"), train=TrainConfig(batch_size=32))


def test_transformer_reads_token_sequences_of_the_tasks_length():
    from groklab.models import build_model

    data = build_dataset(TaskConfig(group="knowledge", n_entities=60, n_relations=8, out_degree=5, phi=3.0, ood_frac=0.2, id_test_frac=0.05, val_size=50))
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=4, d_model=32, n_heads=4, d_mlp=64), data.n_elements, data.n_classes, data.d_input, data.n_inputs)
    assert model.W_pos.shape[0] == 4  # (h, r1, r2, =)
    out = model(data.x_train[:7])
    assert out.shape == (7, 60)
    # The answer depends on every input token (causal attention reaches back to the head).
    x = data.x_train[-1:].clone()
    y = x.clone()
    y[0, 0] = (y[0, 0] + 1) % 60
    assert not torch.allclose(model(x), model(y))
    with pytest.raises(ConfigError, match=r"sequences of 3 tokens; use model\.arch='transformer'"):
        build_model(ModelConfig(arch="mlp"), data.n_elements, data.n_classes, None, 3)


def test_logit_lens_on_a_hand_built_model():
    """Embeddings one-hot, attention and MLP weights zero: the residual stream at a position is its token, so
    every layer decodes the token itself, until an MLP bias adds a large vote for class 3 in the last block."""
    from groklab.analysis.logit_lens import lens_scores, logit_lens
    from groklab.models.transformer import Transformer

    m = 5
    model = Transformer(m, m, n_layers=2, d_model=8, n_heads=2, d_mlp=4, layernorm=False, op_token=False)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_E[:, :] = torch.eye(m + 2, 8)  # token i -> e_i
        model.W_U[:m, :] = torch.eye(m)  # e_i -> class i (i < m)
        model.blocks[1].mlp.b_out[3] = 10.0
    x = torch.tensor([[0, 1], [2, 4], [4, 4]])  # tokens (x, y, =)
    lens = logit_lens(model, x)
    assert lens.shape == (3, 3, 3, m)
    assert torch.equal(lens[0, :, 0].argmax(-1), x[:, 0]) and torch.equal(lens[1, :, 1].argmax(-1), x[:, 1])
    assert (lens[2].argmax(-1) == 3).all()  # after block 1 everything says 3
    assert torch.allclose(lens[-1, :, -1], model(x))  # the last layer is the model's output
    scores = lens_scores(lens, 0, x[:, 0])
    assert [s["top1"] for s in scores] == [1.0, 1.0, 0.0]
    assert scores[0]["mrr"] == 1.0 and scores[2]["mrr"] == 0.5  # the token is second, after class 3
    with pytest.raises(ValueError, match="needs a transformer"):
        logit_lens(torch.nn.Linear(2, 2), x)


@pytest.mark.integration
def test_knowledge_run_logs_id_and_ood_accuracy_and_reloads(tmp_path):
    from groklab import load_run

    cfg = RunConfig(
        task=TaskConfig(group="knowledge", n_entities=40, n_relations=6, out_degree=4, phi=2.0, ood_frac=0.2, id_test_frac=0.1, val_size=100),
        model=ModelConfig(n_layers=4, d_model=32, n_heads=4, d_mlp=64),
        train=TrainConfig(steps=12, batch_size=64, threads=1, eval_points=4, checkpoint_points=2),
        out=str(tmp_path / "kg"),
    )
    res = run(cfg)
    for r in res.rows:
        assert {"val_acc", "val_ood_acc", "val_ood_loss", "train_atomic_acc", "train_inferred_acc"} <= set(r)
        assert 0 <= r["val_ood_acc"] <= 1 and math.isfinite(r["val_ood_loss"])
    # A saved checkpoint reloads into the same sequence model (positions sized from the data).
    model = load_run(tmp_path / "kg").load_model()
    x = build_dataset(cfg.task).x_val[:5]
    assert torch.allclose(model(x), res.model.eval()(x))


# --- part 6: structural grokking — Dyck prefixes and tree projections (Murty et al. 2022, 2023) -----------------
def test_dyck_prefixes_are_balanced_and_labelled_by_the_stack_top():
    from groklab.tasks.dyck import gold_spans, is_balanced_prefix

    cfg = TaskConfig(group="dyck", dyck_k=3, dyck_depth=3, dyck_len=12, train_size=300, val_size=100)
    data = build_dataset(cfg)
    pad = 2 * 3
    assert data.n_inputs == 12 and data.n_classes == 3 and data.n_elements == 7
    rows = torch.cat([data.x_train, data.x_val])
    labels = torch.cat([data.y_train, data.y_val])
    for row, y in zip(rows.tolist(), labels.tolist()):
        toks = [t for t in row if t != pad]
        assert row[: len(row) - len(toks)] == [pad] * (len(row) - len(toks))  # left-padded
        # Brute force: a stack over the brackets never pops a wrong type, nests at most 3 deep, ends non-empty.
        stack, deepest = [], 0
        for t in toks:
            c, closing = divmod(t, 2)
            if closing:
                assert stack and stack.pop() == c
            else:
                stack.append(c)
                deepest = max(deepest, len(stack))
        assert stack and y == stack[-1] and deepest <= 3 and 2 <= len(toks) <= 12
        assert is_balanced_prefix(row, 3) == (True, stack)
    assert len({tuple(r) for r in rows.tolist()}) == len(rows)  # distinct, so train and val are disjoint
    assert gold_spans([6, 0, 2, 3, 1, 4], 3) == {(2, 3), (1, 4)}
    assert torch.equal(build_dataset(cfg).x_train, data.x_train)
    with pytest.raises(ConfigError, match=r"task\.dyck_k=1 must be at least 2"):
        TaskConfig(group="dyck", dyck_k=1)


def test_tree_projection_recovers_a_known_tree_and_scores_context_free_models_zero():
    from groklab.analysis.tree_projection import bracket_f1, cky_projection, random_tree, t_score

    gold = {(0, 5), (0, 1), (2, 5), (2, 3), (4, 5)}  # ((0 1) ((2 3) (4 5)))
    chart = {(i, j): (0.0 if (i, j) in gold else 1.0) for i in range(6) for j in range(i + 1, 6)}
    cost, spans = cky_projection(chart, 0, 5)
    assert spans == gold and cost == 0.0
    t, _ = t_score(chart, 0, 5, n_random=200)
    assert t > 0
    # Random trees are binary trees over the span: n - 1 constituents of length ≥ 2, the root among them.
    import random

    tree = random_tree(0, 5, random.Random(1))
    assert len(tree) == 5 and (0, 5) in tree
    # A model whose span vectors never depend on context has SCI 0 everywhere: no tree is preferred.
    flat = {s: 0.0 for s in chart}
    assert t_score(flat, 0, 5)[0] == 0.0
    assert bracket_f1(gold, gold) == 1.0 and bracket_f1({(0, 5), (0, 4)}, gold) == pytest.approx(2 * (1 / 2) * (1 / 5) / (1 / 2 + 1 / 5))


def test_tree_projection_of_a_transformer():
    from groklab.analysis.tree_projection import transformer_tree_projection
    from groklab.models import build_model
    from groklab.tasks.dyck import gold_spans

    data = build_dataset(TaskConfig(group="dyck", dyck_k=2, dyck_depth=3, dyck_len=8, train_size=20, val_size=5))
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32), data.n_elements, data.n_classes, None, data.n_inputs)
    out = transformer_tree_projection(model, data.x_val, pad=4, n_random=20, gold=lambda t: gold_spans(t, 2))
    assert math.isfinite(out["t_score"]) and 0.0 <= out["parse_f1"] <= 1.0
    # Attention switched off (W_O, b_O = 0): every position's vector depends on its own token alone, so a span's
    # vector is the same in context and alone and the t-score is 0.
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O.zero_()
            block.attn.b_O.zero_()
    assert transformer_tree_projection(model, data.x_val, pad=4, n_random=20)["t_score"] == pytest.approx(0.0, abs=1e-9)
