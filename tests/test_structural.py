"""Structural grokking (issue 15.6): the transformer's analysis-only attention mask, tree projections with real
masking (Murty et al. 2022), the Dyck out-of-distribution split, and the murty2023 preset's checks.

Unit tests (no training) use cases with known answers; the preset at smoke scale is `integration`, at quick scale
`presets`."""

import json
import math
import random

import pytest
import torch

from groklab.analysis.tree_projection import (bracket_f1, cky_projection, greedy_projection, random_tree, span_key_masks,
                                              t_score, transformer_tree_projection)
from groklab.config import ModelConfig, TaskConfig
from groklab.models import build_model
from groklab.models.common import hooked
from groklab.presets.recipes import murty2023 as M
from groklab.tasks import dyck
from groklab.tasks.dataset import build_dataset


def _model(n_inputs: int = 8, seed: int = 0):
    torch.manual_seed(seed)
    m = build_model(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32), 5, 2, None, n_inputs)
    return m.double().eval()


def _resid(model, x, key_mask=None):
    with torch.no_grad(), hooked(model, ["hook_resid_final"]) as cache:
        logits = model(x, key_mask=key_mask)
    return logits, cache["hook_resid_final"]


# --- the attention mask -------------------------------------------------------------------------------------
def test_key_mask_of_all_positions_is_the_plain_forward_on_both_attention_paths():
    model = _model()
    x = torch.randint(0, 5, (6, 8))
    everything = torch.ones(6, 9, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, key_mask=everything))  # last-position path (nothing hooked)
    a, ra = _resid(model, x)
    b, rb = _resid(model, x, everything)  # every position (hooked): the batched-matmul path
    assert torch.equal(a, b) and torch.equal(ra, rb)


def test_hidden_keys_do_not_reach_the_positions_that_cannot_see_them():
    """Positions ≥ 3 with keys 0..2 hidden ignore the tokens there, on both attention paths; without the mask
    they do not (the test has teeth)."""
    model = _model()
    x = torch.randint(0, 4, (5, 8))
    y = x.clone()
    y[:, :3] = (x[:, :3] + 1) % 4
    mask = torch.ones(5, 9, dtype=torch.bool)
    mask[:, :3] = False
    lx, rx = _resid(model, x, mask)
    ly, ry = _resid(model, y, mask)
    assert torch.allclose(rx[:, 3:], ry[:, 3:], atol=1e-12) and torch.allclose(lx, ly, atol=1e-12)
    with torch.no_grad():
        assert torch.allclose(model(x, key_mask=mask), model(y, key_mask=mask), atol=1e-12)
        assert not torch.allclose(model(x), model(y), atol=1e-6)
    assert torch.isfinite(rx).all()  # positions 0..2 see only themselves: no empty softmax


def test_span_key_masks_keep_the_left_pads_and_the_span():
    m = span_key_masks(6, 2, [(2, 3), (4, 5)])
    assert m.tolist() == [[True, True, True, True, False, False], [True, True, False, False, True, True]]


# --- tree projections ----------------------------------------------------------------------------------------
GOLD = {(0, 5), (0, 1), (2, 5), (2, 3), (4, 5)}  # ((0 1) ((2 3) (4 5)))


def test_both_projections_recover_a_planted_tree():
    chart = {(i, j): (0.0 if (i, j) in GOLD else 1.0) for i in range(6) for j in range(i + 1, 6)}
    assert cky_projection(chart, 0, 5) == (0.0, GOLD)
    assert greedy_projection(chart, 0, 5) == (0.0, GOLD)
    t, spans = t_score(chart, 0, 5, n_random=200)
    assert spans == GOLD and t > 0


def test_greedy_projection_recovers_a_planted_tree_where_a_causal_model_makes_every_left_span_free():
    """A causal decoder's spans at the sentence start have SCI 0 by construction; the exact argmin then finds a
    zero-cost tree of them, the top-down projection still finds the planted one."""
    chart = {(i, j): (0.0 if (i, j) in GOLD or i == 0 else (0.5 if i == j else 1.0)) for i in range(6) for j in range(i, 6)}
    left = {(0, j) for j in range(1, 6)}
    assert sum(chart[s] for s in left) == 0.0 and cky_projection(chart, 0, 5)[0] == 0.0
    assert greedy_projection(chart, 0, 5)[1] == GOLD


def test_random_trees_are_binary_and_f1_has_known_values():
    tree = random_tree(0, 5, random.Random(1))
    assert len(tree) == 5 and (0, 5) in tree
    assert bracket_f1(GOLD, GOLD) == 1.0
    assert bracket_f1({(0, 5), (0, 4)}, GOLD) == pytest.approx(2 * (1 / 2) * (1 / 5) / (1 / 2 + 1 / 5))
    assert bracket_f1({(1, 2)}, GOLD) == 0.0 and math.isnan(bracket_f1(set(), GOLD))
    flat = {(i, j): 0.0 for i in range(6) for j in range(i, 6)}
    assert t_score(flat, 0, 5)[0] == 0.0 and t_score(flat, 0, 5, method="cky")[0] == 0.0


def test_context_free_model_has_sci_zero_and_spans_at_the_start_are_context_free():
    data = build_dataset(TaskConfig(group="dyck", dyck_k=2, dyck_depth=3, dyck_len=8, train_size=20, val_size=5))
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32), data.n_elements, data.n_classes, None,
                        data.n_inputs).double()
    gold = lambda t: dyck.gold_spans(t, 2)  # noqa: E731
    out = transformer_tree_projection(model, data.x_val, pad=4, n_random=20, gold=gold)
    assert math.isfinite(out["t_score"]) and out["mean_sci"] > 1e-6 and 0.0 <= out["parse_f1"] <= 1.0
    # A causal decoder: a span that starts at the first token has nothing on its left, so SCI is exactly 0.
    row = data.x_val[0]
    start = int((row == 4).sum())
    _, ctx = _resid(model, row[None])
    spans = [(start, j) for j in range(start, 8)]
    _, iso = _resid(model, row[None].expand(len(spans), -1), span_key_masks(9, start, spans))
    for b, (i, j) in enumerate(spans):
        assert torch.allclose(iso[b, i : j + 1], ctx[0, i : j + 1], atol=1e-12)
    # Attention switched off (W_O, b_O = 0): every vector depends on its own token alone, so SCI is 0 everywhere.
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O.zero_()
            block.attn.b_O.zero_()
    flat = transformer_tree_projection(model, data.x_val, pad=4, n_random=20, gold=gold)
    assert flat["t_score"] == pytest.approx(0.0, abs=1e-12) and flat["mean_sci"] == pytest.approx(0.0, abs=1e-12)


# --- the Dyck out-of-distribution split --------------------------------------------------------------------------
def test_dyck_shapes_dependencies_and_the_ood_split():
    k, pad = 2, 4
    # ( ) [ ( [ ]  ->  pieces "()" closed, then "[([]" unfinished; top open is "(" at position 3 (of 6)
    row = [pad, pad, 0, 1, 2, 0, 2, 3]
    assert dyck.top_level_shapes(row, k) == [(1, 0), (1, 1, 1, 0)]
    assert dyck.dependency_length(row, k) == 3
    cfg = TaskConfig(group="dyck", dyck_k=2, dyck_depth=4, dyck_len=12, train_size=300, val_size=100)
    data = build_dataset(cfg)
    seen = {s for r in data.x_train.tolist() for s in dyck.top_level_shapes(r, k)}
    ood_x = data.probe.x
    assert 0 < len(ood_x) <= 100 and torch.equal(data.probe.y, dyck.labels_of(ood_x, k))
    train_rows = {tuple(r) for r in data.x_train.tolist()} | {tuple(r) for r in data.x_val.tolist()}
    for r in ood_x.tolist():
        assert tuple(r) not in train_rows and dyck.dependency_length(r, k) >= 6
        assert any(s not in seen for s in dyck.top_level_shapes(r, k))
    metrics = data.probe(_model(12).float().train())
    assert set(metrics) == {"val_ood_acc", "val_ood_loss"} and 0.0 <= metrics["val_ood_acc"] <= 1.0


# --- the preset's checks: pure functions that fail where the effect is absent ----------------------------------
def _rows(ood: list[float], val: list[float]) -> list[dict]:
    steps = [0, 10, 30, 100, 300, 1000, 1500, 2000]
    return [{"step": s, "train_acc": min(1.0, v + 0.03), "val_acc": v, "val_ood_acc": o} for s, v, o in zip(steps, val, ood)]


VAL = [0.5, 0.8, 0.96, 0.97, 0.98, 0.98, 0.98, 0.98]


def test_checks_pass_on_late_ood_generalization_and_fail_without_it():
    late = _rows([0.5, 0.55, 0.6, 0.65, 0.75, 0.9, 0.92, 0.92], VAL)
    s = M.saturation_step(late)
    assert s == 30 and M.check_fit(late, s)[0] and M.check_late_ood(late, s)[0]
    together = _rows([0.5, 0.8, 0.9, 0.91, 0.91, 0.92, 0.92, 0.92], VAL)  # OOD rises with validation: no grokking
    assert not M.check_late_ood(together, M.saturation_step(together))[0]
    never = _rows([0.5, 0.55, 0.6, 0.6, 0.61, 0.6, 0.6, 0.61], VAL)
    assert not M.check_late_ood(never, M.saturation_step(never))[0]
    slow_fit = _rows([0.5] * 8, [0.5, 0.5, 0.5, 0.6, 0.7, 0.9, 0.96, 0.97])
    assert not M.check_fit(slow_fit, M.saturation_step(slow_fit))[0]


def test_tree_checks_pass_when_the_t_score_rises_with_ood_and_fail_when_flat():
    ood = [0.5, 0.6, 0.7, 0.8, 0.9]
    steps = [0, 30, 100, 500, 1500]
    rising = [{"step": s, "t_score": t, "val_ood_acc": o, "parse_f1": 0.3, "random_f1": 0.18}
              for s, t, o in zip(steps, [0.0, 0.01, 0.03, 0.06, 0.1], ood)]
    assert M.check_tree_rises(rising, 30)[0] and M.check_parse(rising)[0]
    flat = [dict(r, t_score=0.02) for r in rising]
    assert not M.check_tree_rises(flat, 30)[0]
    early = [dict(r, t_score=t) for r, t in zip(rising, [0.0, 0.1, 0.1, 0.1, 0.1])]  # rises before, not after, fit
    assert not M.check_tree_rises(early, 30)[0]
    chance = [dict(r, parse_f1=0.19) for r in rising]
    assert not M.check_parse(chance)[0]


# --- the preset ----------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_murty2023_smoke_writes_curves_tree_projections_and_checks(tmp_path):
    from groklab.presets.recipes import reproduce

    d = reproduce("murty2023", "smoke", tmp_path / "m", log=None, report=False)
    meta = json.loads((d / "preset.json").read_text())
    assert {f["file"] for f in meta["figures"]} == {"figures/curves.png", "figures/tscore.png", "figures/parse_f1.png"}
    assert len(meta["checks"]) == 4
    import pandas as pd

    trees = pd.read_csv(d / "tables" / "tree_projection.csv")
    assert {"step", "t_score", "mean_sci", "parse_f1", "random_f1", "val_ood_acc"} <= set(trees.columns)
    assert trees["step"].iloc[-1] == 100 and trees["t_score"].notna().all()
    rows = [json.loads(line) for line in (d / "runs" / "dyck" / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["val_ood_acc"] <= 1.0 for r in rows)


@pytest.mark.integration
def test_analyze_what_tree_on_a_dyck_run_and_a_note_elsewhere(tmp_path, capsys):
    """`groklab analyze RUN --what tree` writes the tree projections over checkpoints, the summary and a figure;
    on a run that is not Dyck it says so in a note and writes no table."""
    import pandas as pd

    from groklab import presets, run
    from groklab.cli import main

    cfg = M.config(type("Ctx", (), {"scale": "smoke", "pick": staticmethod(lambda **kw: kw["smoke"])})())
    out = tmp_path / "dyck"
    run(cfg.replace(**{"train.steps": 20, "train.checkpoint_points": 3, "train.threads": 1, "out": str(out)}))
    main(["analyze", str(out), "--what", "tree", "--quiet"])
    rows = pd.read_csv(out / "analysis" / "tree_projection.csv")
    assert list(rows["step"]) == load_steps(out) and rows["t_score"].notna().all() and (rows["n_sentences"] > 0).all()
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert summary["tree"]["final"]["step"] == 20 and "tree_projection.png" in summary["files"]
    other = tmp_path / "demo"
    run(presets.demo(out=str(other), steps=5).replace(**{"task.p": 11, "train.threads": 1}))
    main(["analyze", str(other), "--what", "tree", "--quiet"])
    s = json.loads((other / "analysis" / "summary.json").read_text())
    assert any("need a Dyck run" in n for n in s["notes"]) and not (other / "analysis" / "tree_projection.csv").exists()


def load_steps(run_dir) -> list[int]:
    from groklab import load_run

    return load_run(run_dir).checkpoint_steps


@pytest.mark.presets
def test_murty2023_quick_shows_structural_grokking(tmp_path):
    from groklab.presets.recipes import reproduce

    d = reproduce("murty2023", "quick", tmp_path / "m", log=print, report=False)
    checks = json.loads((d / "checks.json").read_text())
    failed = {k: c["detail"] for k, c in checks.items() if not c["passed"]}
    assert not failed, failed
