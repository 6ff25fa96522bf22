"""The interventions (issue 5): each knob's mechanism, composition, resume, and the new metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import strip_time, tiny_transformer
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from groklab import ConfigError, ModelConfig, OptimConfig, RegConfig, TaskConfig, TrainConfig, load_run, resume, run
from groklab.models import build_model
from groklab.train.interventions import build_interventions
from groklab.train.interventions import GradNoise, GrokfastEMA, GrokfastMA, NormConstraint, OrthoGrad, WeightNoise
from groklab.train.loop import evaluate, last_layer_norm, weight_norm
from groklab.train.optim import build_optimizer, collapse_counts, loss_fn, lr_at, param_groups_of, stablemax_s
from groklab.tasks import build_dataset


tiny = tiny_transformer


class Toy(nn.Module):
    def __init__(self, *shapes):
        super().__init__()
        self.ws = nn.ParameterList(nn.Parameter(torch.randn(*s)) for s in shapes)


def set_grads(model: nn.Module, grads: list[torch.Tensor]) -> None:
    for p, g in zip(model.parameters(), grads):
        p.grad = g.clone()


# --- defaults change nothing ------------------------------------------------------------------------------
def test_defaults_build_no_intervention_and_one_param_group():
    cfg = tiny()
    model = build_model(cfg.model, 13, 13)
    assert build_interventions(cfg, model) == []
    assert len(build_optimizer(model, cfg.optim).param_groups) == 1
    assert [lr_at(s, cfg.optim, 100) for s in (0, 9, 10, 99)] == [1e-4, 1e-3, 1e-3, 1e-3]


def test_config_errors_name_field_value_and_allowed():
    with pytest.raises(ConfigError, match=r"reg\.grokfast='sma'.*none, ema, ma"):
        RegConfig(grokfast="sma")
    with pytest.raises(ConfigError, match=r"optim\.no_decay='embeddings'.*embed, unembed, norm, bias"):
        OptimConfig(no_decay=["embeddings"])
    with pytest.raises(ConfigError, match=r"optim\.step_every=None.*schedule='step'"):
        OptimConfig(schedule="step")
    with pytest.raises(ConfigError, match=r"reg\.grokfast_ma_window=0"):
        RegConfig(grokfast_ma_window=0)
    with pytest.raises(ConfigError, match=r"train\.loss='softmax'.*stablemax"):
        TrainConfig(loss="softmax")


# --- Grokfast -------------------------------------------------------------------------------------------------
def test_grokfast_ema_equals_formula():
    torch.manual_seed(0)
    model = Toy((3,), (2, 2))
    alpha, lamb = 0.9, 2.0
    f = GrokfastEMA(model, alpha, lamb)
    seq = [[torch.randn(3), torch.randn(2, 2)] for _ in range(5)]
    h = None
    for t, gs in enumerate(seq):
        set_grads(model, gs)
        f.before_step(model, t)
        # h_0 = g_0; h_t = α h_{t-1} + (1-α) g_t; the filtered gradient is g_t + λ h_t
        h = [g.double() for g in gs] if h is None else [alpha * hi + (1 - alpha) * g.double() for hi, g in zip(h, gs)]
        for p, g, hi in zip(model.parameters(), gs, h):
            torch.testing.assert_close(p.grad.double(), g.double() + lamb * hi, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("warmup", [True, False])
def test_grokfast_ma_equals_formula(warmup):
    torch.manual_seed(1)
    model = Toy((4,), (3, 2))
    w, lamb = 3, 5.0
    f = GrokfastMA(model, w, lamb, warmup)
    seq = [[torch.randn(4), torch.randn(3, 2)] for _ in range(8)]
    for t, gs in enumerate(seq):
        set_grads(model, gs)
        f.before_step(model, t)
        window = seq[max(0, t - w + 1) : t + 1]  # the last w gradients, this one included
        for i, p in enumerate(model.parameters()):
            mean = sum(ws[i].double() for ws in window) / len(window)
            expect = gs[i].double() if warmup and t < w - 1 else gs[i].double() + lamb * mean
            torch.testing.assert_close(p.grad.double(), expect, rtol=1e-6, atol=1e-6)


class _CountOps(TorchDispatchMode):
    """Records every non-view aten op and the number of tensor elements it reads or writes."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.ops.append(str(func.overloadpacket))
            leaves = tree_flatten((args, kwargs, out))[0]
            self.elements += sum(x.numel() for x in leaves if isinstance(x, torch.Tensor))
        return out


def _ma_step_work(window: int) -> tuple[list[str], int]:
    torch.manual_seed(2)
    model = Toy((50,), (10, 10))
    f = GrokfastMA(model, window, 5.0, warmup=False)
    for t in range(window + 3):  # fill the window, then wrap around
        set_grads(model, [torch.randn(50), torch.randn(10, 10)])
        f.before_step(model, t)
    set_grads(model, [torch.randn(50), torch.randn(10, 10)])
    with _CountOps() as c:
        f.before_step(model, window + 3)
    return c.ops, c.elements


def test_grokfast_ma_cost_per_step_does_not_grow_with_window():
    ops_small, work_small = _ma_step_work(2)
    ops_big, work_big = _ma_step_work(400)
    assert ops_small == ops_big  # the same operations ...
    assert work_small == work_big  # ... on the same number of elements: the window is never re-summed
    assert work_small < 20 * 150  # a handful of passes over the 150 gradient entries


def test_grokfast_ma_running_sum_survives_state_roundtrip():
    torch.manual_seed(3)
    model = Toy((5,))
    a = GrokfastMA(model, 4, 5.0)
    seq = [[torch.randn(5)] for _ in range(10)]
    for t in range(6):
        set_grads(model, seq[t])
        a.before_step(model, t)
    b = GrokfastMA(model, 4, 5.0)
    b.load_state_tensors({k: v.clone() for k, v in a.state_tensors().items()})
    for t in range(6, 10):
        set_grads(model, seq[t])
        a.before_step(model, t)
        ga = model.ws[0].grad.clone()
        set_grads(model, seq[t])
        b.before_step(model, t)
        assert torch.equal(model.ws[0].grad, ga)


# --- noise ---------------------------------------------------------------------------------------------------------
def test_grad_and_weight_noise_have_the_asked_scale():
    torch.manual_seed(4)
    model = Toy((200, 200), (1000,))
    set_grads(model, [torch.zeros(200, 200), torch.zeros(1000)])
    GradNoise(model, 0.3).before_step(model, 0)
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert abs(g.std().item() - 0.3) < 0.003 and abs(g.mean().item()) < 0.003
    before = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    WeightNoise(model, 0.05).after_step(model, 0)
    d = torch.cat([p.detach().flatten() for p in model.parameters()]) - before
    assert abs(d.std().item() - 0.05) < 0.0005 and abs(d.mean().item()) < 0.0005


# --- ⊥Grad ---------------------------------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("rescale", [True, False])
def test_orthograd_update_is_orthogonal_to_the_weights(rescale):
    torch.manual_seed(5)
    model = Toy((30,), (8, 8))
    w0 = [p.detach().double().clone() for p in model.parameters()]
    # gradients with a large component along the weights, so that a plain step would not be orthogonal
    gs = [p.detach() * 3 + torch.randn_like(p) for p in model.parameters()]
    set_grads(model, gs)
    OrthoGrad(model, rescale).before_step(model, 0)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for p, w, g in zip(model.parameters(), w0, gs):
        delta = p.detach().double() - w
        assert abs(torch.dot(delta.flatten(), w.flatten())) < 1e-5 * delta.norm() * w.norm()
        plain = -0.1 * g.double()
        assert abs(torch.dot(plain.flatten(), w.flatten())) > 0.5 * plain.norm() * w.norm()  # the check can fail
        if rescale:
            torch.testing.assert_close(p.grad.norm(), g.norm())


def capture_model(monkeypatch) -> list[nn.Module]:
    """Make `run` hand its model to the test (on_step sees only the step and the metrics row)."""
    import groklab.train.loop as loop

    box, real = [], loop.build_model
    monkeypatch.setattr(loop, "build_model", lambda *a, **k: box.append(real(*a, **k)) or box[-1])
    return box


@pytest.mark.integration
def test_orthograd_in_a_run_keeps_sgd_updates_orthogonal(monkeypatch):
    cfg = tiny(**{"optim.name": "sgd", "optim.weight_decay": 0.0, "optim.lr": 0.5, "reg.orthograd": True, "train.steps": 5})
    box, prev, checked = capture_model(monkeypatch), {}, []

    def check(step, row):
        for name, p in box[0].named_parameters():
            w = prev.get(name)
            if w is not None and w.norm() > 0:
                d = p.detach().double() - w
                assert abs(torch.dot(d.flatten(), w.flatten())) <= 1e-5 * d.norm() * w.norm()
                checked.append(name)
            prev[name] = p.detach().double().clone()

    run(cfg, on_step=check)
    assert len(checked) > 20


# --- weight-norm constraint ------------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("alpha,factor", [(1.0, 1.0), (3.0, 0.5)])
def test_norm_constraint_holds_the_target_after_every_step(alpha, factor, monkeypatch):
    cfg = tiny(**{"model.init_scale": alpha, "reg.constrain_norm": True, "reg.norm_factor": factor, "optim.weight_decay": 1.0, "reg.weight_noise": 0.01})
    torch.manual_seed(cfg.train.seed)
    base = weight_norm(build_model(tiny().model, 13, 13))  # α = 1, same seed
    target = base * alpha * factor  # composes with init_scale: the init norm is α times the base
    box, steps = capture_model(monkeypatch), {}
    result = run(cfg, on_step=lambda step, row: steps.__setitem__(step, weight_norm(box[0])))
    assert len(steps) == cfg.train.steps + 1
    for step, norm in steps.items():
        assert norm == pytest.approx(target, rel=1e-5), step
    assert result.rows[-1]["norm_target"] == pytest.approx(target, rel=1e-9)
    # without the constraint the norm moves (weight decay 1 shrinks it): the check above can fail
    free = run(cfg.replace(**{"reg.constrain_norm": False}))
    assert abs(free.rows[-1]["weight_norm"] - target) > 1e-3 * target


def test_norm_constraint_absolute_target():
    model = Toy((10, 10))
    c = NormConstraint(model, target=2.5)
    with torch.no_grad():
        model.ws[0].mul_(7)
    c.after_step(model, 0)
    assert weight_norm(model) == pytest.approx(2.5, rel=1e-6)


# --- StableMax and softmax collapse ----------------------------------------------------------------------------------
def test_stablemax_matches_its_definition_and_is_a_distribution():
    x = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 4.0], [100.0, -100.0, 1e4, 0.0, -1e-3]], dtype=torch.float64)
    s = stablemax_s(x)
    expect = torch.tensor([[1 / (1 + 3.0), 1 / 1.5, 1.0, 1.5, 5.0], [101.0, 1 / 101.0, 1e4 + 1, 1.0, 1 / (1 + 1e-3)]], dtype=torch.float64)
    torch.testing.assert_close(s, expect)
    labels = torch.tensor([4, 0])
    probs = expect / expect.sum(-1, keepdim=True)
    torch.testing.assert_close(loss_fn(x, labels, "stablemax", reduction="none"), -probs[[0, 1], labels].log())
    torch.testing.assert_close(loss_fn(x, labels, "stablemax"), -probs[[0, 1], labels].log().mean())
    # a valid distribution, even on logits that collapse softmax in float32, and gradients stay finite
    z = (torch.randn(64, 97) * 1e3).requires_grad_(True)
    p = stablemax_s(z) / stablemax_s(z).sum(-1, keepdim=True)
    assert (p > 0).all() and torch.allclose(p.sum(-1), torch.ones(64))
    loss_fn(z, torch.randint(0, 97, (64,)), "stablemax").backward()
    assert torch.isfinite(z.grad).all()


def test_softmax_collapse_metric():
    labels = torch.arange(8) % 5
    big = torch.zeros(8, 5)
    big[torch.arange(8), labels] = 200.0  # exp(-200) underflows float32: p = 1 exactly, gradient exactly 0
    assert collapse_counts(big, labels, "ce") == (8, 8)
    small = torch.randn(8, 5)
    assert collapse_counts(small, labels, "ce") == (0, 0)
    mid = torch.zeros(8, 5)
    mid[torch.arange(8), labels] = 30.0  # p rounds to 1 in float32: the loss term is exactly 0 (Prieto et al.'s
    assert collapse_counts(mid, labels, "ce") == (8, 8)  # zero terms), though the other classes' p_j are tiny, not 0
    assert collapse_counts(mid.double(), labels, "ce") == (0, 0)  # float64 has room: no collapse
    # StableMax's own probability of the correct class: (201)/(201 + 4·1) < 1, and it never stops teaching.
    assert collapse_counts(big, labels, "stablemax") == (0, 0)


# --- schedules and weight-decay groups ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_lr_schedules():
    cos = OptimConfig(lr=1.0, warmup_steps=10, schedule="cosine", lr_min_frac=0.1)
    assert lr_at(4, cos, 110) == pytest.approx(0.5)  # warm-up first
    assert lr_at(10, cos, 110) == pytest.approx(1.0)
    assert lr_at(60, cos, 110) == pytest.approx(0.55)  # half way: (1 + 0.1) / 2
    assert lr_at(110, cos, 110) == pytest.approx(0.1)
    # linear with warmup_from_zero is transformers' get_linear_schedule_with_warmup(W=10, T=110): k/W, then (T−k)/(T−W)
    lin = OptimConfig(lr=1.0, warmup_steps=10, schedule="linear", warmup_from_zero=True)
    assert [lr_at(k, lin, 110) for k in (0, 5, 10, 60, 109, 110)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.01, 0.0])
    assert lr_at(60, OptimConfig(lr=1.0, warmup_steps=10, schedule="linear", lr_min_frac=0.2), 110) == pytest.approx(0.6)
    st = OptimConfig(lr=1.0, warmup_steps=0, schedule="step", step_every=100, step_gamma=0.5)
    assert [lr_at(s, st, 1000) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    cfg = tiny(**{"optim.schedule": "step", "optim.step_every": 10, "optim.step_gamma": 0.5, "optim.warmup_steps": 0, "train.eval_every": 10})
    assert [r["lr"] for r in run(cfg).rows] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4, 1.25e-4])  # the loop uses it


@pytest.mark.integration
def test_grad_clip_is_torchs_global_norm_clip(tmp_path):
    """optim.grad_clip scales the whole gradient to norm grad_clip when larger (torch.nn.utils.clip_grad_norm_):
    with plain SGD the first update moves the weights by lr · grad_clip · |g| / (|g| + 1e-6)."""
    c = 1e-3
    cfg = tiny(tmp_path / "clip", **{"optim.name": "sgd", "optim.lr": 0.1, "optim.weight_decay": 0.0, "optim.warmup_steps": 0,
                                     "optim.grad_clip": c, "train.steps": 1, "train.dtype": "float64"})
    r = run(cfg)
    start, moved = load_run(r.run_dir).load_model(0).state_dict(), r.model.state_dict()
    step = torch.cat([(moved[k] - start[k]).flatten() for k in start])
    assert step.norm().item() == pytest.approx(0.1 * c, rel=1e-5)
    # a gradient already within the bound is left alone: a huge bound equals no clipping, bit for bit
    free = run(cfg.replace(**{"optim.grad_clip": None, "out": None})).model.state_dict()
    loose = run(cfg.replace(**{"optim.grad_clip": 1e9, "out": None})).model.state_dict()
    assert all(torch.equal(free[k], loose[k]) for k in free) and not torch.equal(free["W_E"], moved["W_E"])
    with pytest.raises(ConfigError, match=r"optim.grad_clip=0.0 must be positive \(or None\)"):
        cfg.replace(**{"optim.grad_clip": 0.0})


@pytest.mark.integration
def test_no_decay_groups_are_not_decayed():
    cfg = ModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=16)
    model = build_model(cfg, 7, 7)
    roles = param_groups_of(model)
    assert roles["W_E"] == {"embed"} and roles["W_U"] == {"unembed"} and roles["blocks.0.ln1.w"] == {"norm"}
    assert roles["blocks.0.ln1.b"] == {"norm", "bias"} and roles["blocks.0.attn.b_Q"] == {"bias"} and roles["blocks.0.attn.W_Q"] == set()
    opt = build_optimizer(model, OptimConfig(lr=0.1, weight_decay=0.5, no_decay=["embed", "norm"]))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only the decoupled decay moves the weights
    opt.step()
    for n, p in model.named_parameters():
        expect = before[n] if roles[n] & {"embed", "norm"} else before[n] * (1 - 0.1 * 0.5)
        torch.testing.assert_close(p.detach(), expect)
    mlp = build_model(ModelConfig(arch="mlp", width=8, depth=2, bias=True, batchnorm=True), 7, 7)
    r = param_groups_of(mlp)
    assert r["bn.1.weight"] == {"norm"} and r["bn.1.bias"] == {"norm", "bias"} and r["b_hidden.0"] == {"bias"} and r["W_out"] == set()


# --- dropout, BatchNorm, float64 ---------------------------------------------------------------------------------------------
def test_dropout_is_off_at_evaluation():
    data = build_dataset(TaskConfig(p=13, train_frac=0.5))
    for arch in ("transformer", "mlp"):
        torch.manual_seed(0)
        cfg = ModelConfig(arch=arch, n_layers=1, d_model=16, n_heads=2, d_mlp=32, width=32, dropout=0.5)
        model = build_model(cfg, 13, 13)
        plain = build_model(ModelConfig(**{**cfg.__dict__, "dropout": 0.0}), 13, 13)
        plain.load_state_dict(model.state_dict())
        model.train()
        assert evaluate(model, data, "ce") == evaluate(plain, data, "ce")
        assert model.training  # evaluate gives the mode back
        assert not torch.equal(model(data.x_train), model(data.x_train))  # dropout is on in training


@pytest.mark.integration
def test_batchnorm_running_stats_are_trained_and_checkpointed(tmp_path):
    cfg = tiny(tmp_path / "bn", **{"model.arch": "mlp", "model.width": 16, "model.depth": 2, "model.batchnorm": True, "train.steps": 10})
    result = run(cfg)
    sd = result.model.state_dict()
    assert {"bn.0.running_mean", "bn.1.running_var", "bn.0.num_batches_tracked"} <= set(sd)
    assert int(sd["bn.0.num_batches_tracked"]) == 10 and sd["bn.0.running_mean"].abs().sum() > 0
    saved = load_run(tmp_path / "bn").state_dict()
    for k in ("bn.0.running_mean", "bn.1.running_var", "bn.0.num_batches_tracked"):
        assert torch.equal(saved[k], sd[k])


# --- the whole thing: composed, float64, CLI flags, resume ---------------------------------------------------------------------
ALL_KNOBS = {
    "reg.grokfast": "ma", "reg.grokfast_ma_window": 4, "reg.grad_noise": 1e-3, "reg.weight_noise": 1e-4,
    "reg.constrain_norm": True, "reg.norm_factor": 1.1, "reg.orthograd": True, "optim.no_decay": ["embed", "norm"],
    "optim.schedule": "cosine", "train.loss": "stablemax", "model.dropout": 0.1,
}


@pytest.mark.integration
@pytest.mark.parametrize("dtype,knobs", [("float32", {"reg.grokfast": "ma", "reg.grokfast_ma_window": 5}), ("float64", ALL_KNOBS), ("float32", {**ALL_KNOBS, "reg.grokfast": "ema"})])
def test_resume_after_crash_equals_uninterrupted(tmp_path, dtype, knobs):
    cfg = {"train.dtype": dtype, "train.steps": 30, **knobs}
    ref = run(tiny(tmp_path / "a", **cfg))

    def crash(step, row):
        if step == 13:  # past the window, between resume states (steps 7 and 14 of the checkpoints)
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        run(tiny(tmp_path / "b", **cfg), on_step=crash)
    resumed = resume(tmp_path / "b")
    assert strip_time(resumed.rows) == strip_time(ref.rows)
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        assert a.dtype == getattr(torch, dtype) and torch.equal(a, b)
    last = ref.rows[-1]
    assert all(math.isfinite(last[k]) for k in ("train_loss", "val_loss", "last_layer_norm", "train_collapse_frac", "train_zero_grad_frac"))


@pytest.mark.integration
def test_knobs_from_the_cli_are_recorded_in_config_json(tmp_path):
    from groklab.cli import main

    out = tmp_path / "cli"
    main([
        "train", "--task.p", "13", "--task.train-frac", "0.5", "--model.arch", "mlp", "--model.width", "16",
        "--model.batchnorm", "--train.steps", "5", "--train.batch-size", "None", "--train.threads", "1",
        "--train.loss", "stablemax", "--train.dtype", "float64", "--reg.grokfast", "ema", "--reg.orthograd",
        "--reg.constrain-norm", "--optim.schedule", "step", "--optim.step-every", "2", "--optim.no-decay", "bias", "norm",
        "--out", str(out), "--quiet",
    ])
    r = load_run(out)
    assert r.config.reg == RegConfig(grokfast="ema", orthograd=True, constrain_norm=True)
    assert r.config.model.batchnorm and r.config.train.batch_size is None and r.config.optim.no_decay == ["bias", "norm"]
    rows = r.rows
    assert rows[-1]["step"] == 5 and "last_layer_norm" in rows[-1] and "norm_target" in rows[-1]
    assert r.load_model().W_out.dtype == torch.float64


def test_last_layer_norm_reads_the_unembedding():
    t = build_model(ModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=16), 7, 7)
    assert last_layer_norm(t) == pytest.approx(t.W_U.detach().double().norm().item())
    m = build_model(ModelConfig(arch="mlp", width=8), 7, 7)
    assert last_layer_norm(m) == pytest.approx(m.W_out.detach().double().norm().item())
