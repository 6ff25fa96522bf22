"""The papers' setups exactly (issue 13): squared-error reduction, initialization, softmax-collapse zero terms."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from groklab import ConfigError, ModelConfig, RunConfig, presets
from groklab.models import build_model
from groklab.models.init import role_of, roles
from groklab.tasks import build_dataset
from groklab.train.loop import evaluate, run
from groklab.train.optim import collapse_counts, loss_fn, loss_spec


# --- loss reduction ------------------------------------------------------------------------------------------
def test_mse_mean_is_pytorch_mseloss_and_sum_is_c_times_it():
    torch.manual_seed(0)
    z, y = torch.randn(16, 7, dtype=torch.float64), torch.randint(0, 7, (16,))
    target = F.one_hot(y, 7).double()
    assert loss_fn(z, y, "mse:mean").item() == pytest.approx(F.mse_loss(z, target).item(), rel=1e-14)
    assert loss_fn(z, y, "mse").item() == pytest.approx(7 * F.mse_loss(z, target).item(), rel=1e-14)
    per = loss_fn(z, y, "mse:mean", reduction="none")
    assert per.shape == (16,) and torch.allclose(per, (z - target).pow(2).mean(-1))
    # on vector targets the outputs are averaged the same way; ce and stablemax have nothing to average
    t = torch.randn(16, 3, dtype=torch.float64)
    assert loss_fn(z[:, :3], t, "mse:mean").item() == pytest.approx(F.mse_loss(z[:, :3], t).item(), rel=1e-14)
    for kind in ("ce", "stablemax"):
        assert loss_fn(z, y, f"{kind}:mean").item() == loss_fn(z, y, kind).item()


def test_loss_spec_and_config_field():
    cfg = presets.doshi2023()
    assert cfg.train.loss_reduction == "mean" and loss_spec(cfg.train) == "mse:mean"
    assert loss_spec(RunConfig().train) == "ce"
    with pytest.raises(ConfigError, match="train.loss_reduction='avg'"):
        RunConfig().replace(**{"train.loss_reduction": "avg"})


def test_old_config_json_loads_with_todays_defaults():
    d = RunConfig().to_dict()
    for section, key in (("train", "loss_reduction"), ("model", "init_std"), ("model", "init_overrides")):
        d[section].pop(key)
    cfg = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert cfg.train.loss_reduction == "sum" and cfg.model.init_std is None and cfg.model.init_overrides == []


def test_evaluation_logs_the_chosen_reduction():
    cfg = presets.doshi2023(p=11).replace(**{"model.width": 16})
    data = build_dataset(cfg.task)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.n_elements, data.n_classes)
    s, m = evaluate(model, data, "mse"), evaluate(model, data, "mse:mean")
    assert s["train_loss"] == pytest.approx(11 * m["train_loss"], rel=1e-6)
    assert s["val_loss"] == pytest.approx(11 * m["val_loss"], rel=1e-6)


@pytest.mark.integration
def test_run_trains_and_logs_the_mean_reduction():
    cfg = presets.doshi2023(p=11, steps=20).replace(**{"model.width": 16, "train.eval_points": 3, "train.checkpoint_points": 1})
    r = run(cfg)
    data = build_dataset(cfg.task)
    with torch.no_grad():
        want = loss_fn(r.model(data.x_train), data.y_train, "mse:mean").item()
    assert r.rows[-1]["train_loss"] == pytest.approx(want, rel=1e-5)


# --- loss precision and warm-up (Nanda et al.'s and openai/grok's code) ---------------------------------------
def test_float64_loss_keeps_the_gradient_float32_softmax_rounds_away():
    """A margin of 20: float32 log-softmax rounds the correct class's log-probability to exactly 0 (loss and
    gradient 0); Nanda et al.'s cross_entropy_high_precision (log-softmax in float64) keeps e^-20 ≈ 2e-9."""
    z = torch.tensor([[0.0, 20.0]], requires_grad=True)
    y = torch.tensor([1])
    assert loss_fn(z, y, "ce").item() == 0.0
    loss = loss_fn(z, y, "ce:float64")
    assert loss.dtype == torch.float64 and loss.item() == pytest.approx(2.0611536e-9, rel=1e-6)
    loss.backward()
    assert z.grad.dtype == torch.float32 and z.grad[0, 1].item() == pytest.approx(-2.0611536e-9, rel=1e-5)
    assert collapse_counts(z.detach(), y, "ce") == (1, 1) and collapse_counts(z.detach(), y, "ce:float64") == (0, 0)
    assert loss_spec(presets.nanda2023().train) == "ce:float64"
    assert loss_spec(RunConfig().replace(**{"train.loss": "mse", "train.loss_reduction": "mean", "train.loss_dtype": "float64"}).train) == "mse:mean:float64"
    with pytest.raises(ConfigError, match="train.loss_dtype='half'"):
        RunConfig().replace(**{"train.loss_dtype": "half"})


def test_warmup_from_zero_is_the_papers_lambdalr():
    """openai/grok, Nanda et al. and danielmamay/grokking: LambdaLR(min(step / 10, 1)), so update 0 has lr 0."""
    from groklab.train.optim import lr_at

    cfg = RunConfig().replace(**{"optim.lr": 1e-3, "optim.warmup_steps": 10, "optim.warmup_from_zero": True}).optim
    assert [lr_at(k, cfg, 100) for k in range(12)] == pytest.approx([1e-3 * min(k / 10, 1) for k in range(12)], rel=1e-15)
    assert lr_at(0, RunConfig().optim, 100) == pytest.approx(1e-4)  # groklab's default: lr/10 at update 0
    for cfg in (presets.nanda2023(), presets.power2022()):
        assert cfg.optim.warmup_from_zero and cfg.optim.warmup_steps == 10


@pytest.mark.integration
def test_run_with_the_authors_loss_and_warmup_logs_lr_0_then_trains():
    cfg = presets.nanda2023(p=11, steps=12).replace(**{"model.d_model": 16, "model.n_heads": 2, "model.d_mlp": 32,
                                                       "model.init_overrides": [], "train.eval_every": 1, "train.checkpoint_points": 1})
    torch.manual_seed(0)
    r = run(cfg)
    assert [row["lr"] for row in r.rows[:3]] == pytest.approx([0.0, 1e-4, 2e-4])
    data = build_dataset(cfg.task)
    with torch.no_grad():
        want = loss_fn(r.model(data.x_train), data.y_train, "ce:float64").item()
    assert r.rows[-1]["train_loss"] == pytest.approx(want, rel=1e-6)


# --- minibatch order ---------------------------------------------------------------------------------------
def test_epoch_order_is_the_papers_loop():
    """openai/grok's ArithmeticIterator, danielmamay/grokking's and Grokfast's torch.split: each epoch a permutation
    cut into consecutive batches, the last one n mod b rows; every row once per epoch; the epochs differ."""
    from groklab.train.schedule import minibatch

    from pathlib import Path

    from groklab.presets.recipes import omnigrok2023, parity2022
    from groklab.presets.recipes.base import Context

    assert presets.power2022().train.batch_order == "epoch" and RunConfig().train.batch_order == "random"
    assert omnigrok2023.base_config(Context(Path("unused"), "full", print)).train.batch_order == "cycle"
    assert parity2022.base_config(Context(Path("unused"), "full", print)).train.batch_order == "epoch"
    n, b = 23, 5
    gen = torch.Generator().manual_seed(0)
    batches = [minibatch(k, n, b, "epoch", 7, gen) for k in range(15)]  # 3 epochs of 5 updates
    assert [len(x) for x in batches] == [5, 5, 5, 5, 3] * 3
    epochs = [torch.cat(batches[e * 5:(e + 1) * 5]) for e in range(3)]
    assert all(sorted(e.tolist()) == list(range(n)) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    # (seed, step) alone decide it: no generator state, so a resumed run reads the same rows
    assert torch.equal(minibatch(12, n, b, "epoch", 7, torch.Generator()), batches[12])
    assert not torch.equal(minibatch(0, n, b, "epoch", 8, gen), batches[0])
    # cycle (Omnigrok's islice(cycle(loader))): epoch 0's batches for ever
    assert all(torch.equal(minibatch(k, n, b, "cycle", 7, gen), batches[k % 5]) for k in range(15))
    # random: run()'s draw, unchanged
    assert torch.equal(minibatch(0, n, b, "random", 7, torch.Generator().manual_seed(3)), torch.randperm(n, generator=torch.Generator().manual_seed(3))[:b])


def test_batch_order_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"train.batch_order='shuffle' is not allowed; choose one of: random, epoch, cycle"):
        RunConfig().replace(**{"train.batch_order": "shuffle"})


@pytest.mark.integration
def test_epoch_order_run_resumes_exactly(tmp_path):
    """A run killed mid-epoch and resumed logs what the uninterrupted run logs (the order needs no state)."""
    from conftest import strip_time
    from test_train import tiny

    from groklab import resume

    cfg = lambda out: tiny(out, steps=60, batch_order="epoch", batch_size=50, resume_every_s=0.0).replace(**{"model.dropout": 0.0})
    ref = run(cfg(tmp_path / "ref"))

    class Crash(Exception):
        pass

    def crash(step, row):
        if step >= 33:  # n_train 144, 3 updates an epoch (50, 50, 44): mid-epoch
            raise Crash

    with pytest.raises(Crash):
        run(cfg(tmp_path / "b"), on_step=crash)
    assert strip_time(resume(tmp_path / "b").rows) == strip_time(ref.rows)


# --- initialization ------------------------------------------------------------------------------------------
ARCHS = {
    "transformer": dict(arch="transformer", d_model=16, n_heads=2, d_mlp=32),
    "mlp": dict(arch="mlp", width=24, depth=2, bias=True),
    "toy": dict(arch="toy", d_embed=8, width=24, depth=2, bias=True),
}


def _build(seed: int = 3, d_input: int | None = None, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(**kw), 11, 11, d_input)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_default_init_is_unchanged_bit_for_bit(arch):
    """No init field set: the weights are the model's own draw, and the global RNG is where it was."""
    a = _build(**ARCHS[arch])
    after_a = torch.rand(3)
    b = _build(**ARCHS[arch], init_std=None, init_overrides=[])
    after_b = torch.rand(3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb), na
    assert torch.equal(after_a, after_b)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_init_std_draws_every_weight_matrix_and_nothing_else(arch):
    ref = _build(**ARCHS[arch])
    m = _build(**ARCHS[arch], init_std=0.05)
    for (name, p), (_, q) in zip(m.named_parameters(), ref.named_parameters()):
        if role_of(name).startswith("W_"):
            if p.numel() >= 200:
                assert p.std().item() == pytest.approx(0.05, rel=0.2), name
                assert abs(p.mean().item()) < 0.02, name
        else:
            assert torch.equal(p, q), name  # biases and LayerNorm parameters keep their values


def test_doshi_init_is_normal_005_for_both_matrices():
    """Doshi et al.'s code: N(0, (0.5 / (2N)^(1/3))²) for fc1 and fc2, which is 0.05 for N = 500."""
    cfg = presets.doshi2023()
    assert cfg.model.init_std == pytest.approx(0.5 / (2 * 500) ** (1 / 3))
    torch.manual_seed(0)
    m = build_model(cfg.model, 97, 97)
    for name in ("W_in", "W_out"):
        w = getattr(m, name)
        assert w.std().item() == pytest.approx(0.05, rel=0.01)


def test_overrides_then_init_scale_in_that_order():
    m = _build(**ARCHS["transformer"], init_std=0.1, init_overrides=["W_U=0.5", "b_U=0.2", "W_out=0"], init_scale=2.0)
    assert m.W_U.std().item() == pytest.approx(2 * 0.5, rel=0.2)
    assert m.b_U.std().item() == pytest.approx(2 * 0.2, rel=0.5) and (m.b_U != 0).all()
    assert all((b.mlp.W_out == 0).all() for b in m.blocks)
    assert m.blocks[0].attn.W_Q.std().item() == pytest.approx(2 * 0.1, rel=0.2)
    assert (m.blocks[0].ln1.w == 2.0).all()  # α multiplies every parameter last, as before


def test_overrides_on_vector_inputs_reach_the_dense_mlp():
    m = _build(arch="mlp", width=300, depth=2, bias=True, d_input=200, init_overrides=["W_hidden=0.01", "b_in=0.3"])
    assert m.W_hidden[0].std().item() == pytest.approx(0.01, rel=0.1)
    assert m.b_in.std().item() == pytest.approx(0.3, rel=0.2)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(init_overrides=["W_in"]), "entry 'W_in' is not ROLE=STD"),
        (dict(init_overrides=["W_in=abc"]), "'abc' is not a number"),
        (dict(init_overrides=["W_in=-1"]), "finite number ≥ 0"),
        (dict(init_overrides=["W_in=nan"]), "finite number ≥ 0"),
        (dict(init_overrides=["W_in=1", "W_in=2"]), "names role 'W_in' twice"),
        (dict(init_std=0.0), "model.init_std=0.0 must be a positive number"),
        (dict(init_std=-1.0), "model.init_std=-1.0 must be a positive number"),
    ],
)
def test_bad_init_fields_are_one_line_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match) as e:
        ModelConfig(**kw)
    assert "\n" not in str(e.value)


def test_unknown_role_for_the_arch_names_the_roles_it_has():
    with pytest.raises(ConfigError, match=r"role 'W_Q', which model.arch='mlp' does not have; its roles are: W_in, W_out") as e:
        build_model(ModelConfig(arch="mlp", init_overrides=["W_Q=0.1"]), 11, 11)
    assert "\n" not in str(e.value)
    assert sorted(roles(_build(**ARCHS["toy"]))) == ["W_E", "W_hidden", "W_in", "W_out", "b_hidden", "b_in", "b_out"]


# --- softmax collapse: zero terms ----------------------------------------------------------------------------
def test_zero_terms_on_hand_made_logits():
    labels = torch.tensor([0, 0, 0, 1, 2])
    z = torch.tensor(
        [
            [0.0, -20.0, -20.0],  # e^-20 ≈ 2e-9 vanishes next to 1 in float32: p = 1, loss exactly 0
            [0.0, -200.0, -200.0],  # e^-200 underflows: every gradient entry 0 as well
            [0.0, -5.0, -5.0],  # p ≈ 0.987: still learning
            [30.0, 0.0, 0.0],  # confidently wrong
            [1.0, 1.0, 25.0],  # 1 + 2e-11 rounds to 1: collapsed too
        ]
    )
    assert collapse_counts(z, labels, "ce") == (3, 3)
    # the float32 loss terms that count are exactly zero; their gradient on the correct logit is exactly 0
    zz = z.clone().requires_grad_(True)
    per = loss_fn(zz, labels, "ce", reduction="none")
    (g,) = torch.autograd.grad(per.sum(), zz)
    assert per[[0, 1, 4]].tolist() == [0.0, 0.0, 0.0] and g[[0, 1, 4], labels[[0, 1, 4]]].tolist() == [0.0, 0.0, 0.0]
    # the old definition (every gradient entry exactly 0) saw only the underflowing row
    assert int((g == 0).all(-1).sum()) == 1
    # float64 has room below 1: nothing collapses at these margins
    assert collapse_counts(z[[0, 2, 3]].double(), labels[[0, 2, 3]], "ce") == (0, 0)


@pytest.mark.integration
def test_zero_grad_frac_fires_on_a_collapsing_run():
    """No weight decay and a large learning rate: the memorized training samples reach p = 1 in float32."""
    cfg = presets.demo(out=None, steps=120).replace(
        **{"task.p": 23, "model.width": 64, "optim.weight_decay": 0.0, "optim.lr": 3e-2, "train.eval_points": 4, "train.checkpoint_points": 1}
    )
    last = run(cfg).rows[-1]
    assert last["train_acc"] == 1.0
    assert last["train_zero_grad_frac"] > 0.1


def test_wang_and_murty_full_train_with_the_authors_optimizer():
    """Wang et al. 2024 (simpletransformers' AdamW) and Murty et al. 2023 (training_utils.py): clipping at global
    norm 1, shuffled epochs; Murty's lr at every step is transformers' linear schedule over 2·10⁶ steps."""
    from pathlib import Path

    from groklab.presets.recipes import murty2023, wang2024
    from groklab.presets.recipes.base import Context
    from groklab.train.optim import lr_at

    full = Context(Path("unused"), "full", print)
    w = wang2024.config(full)
    assert (w.optim.grad_clip, w.optim.beta2, w.optim.warmup_steps, w.optim.warmup_from_zero) == (1.0, 0.999, 2000, True)
    assert set(w.optim.no_decay) == {"bias", "norm"} and w.model.dropout == 0.1 and w.train.batch_order == "epoch"
    assert w.model.init_std == 0.02 and sorted(w.model.init_overrides) == ["W_O=0.005", "W_out=0.005"]  # 0.02/√(2·8)
    m = murty2023.config(full)
    assert (m.optim.grad_clip, m.optim.weight_decay, m.optim.eps, m.train.batch_size, m.train.batch_order) == (1.0, 0.0, 1e-7, 8, "epoch")
    hf = lambda k: 1e-4 * (k / 10_000 if k < 10_000 else (2_000_000 - k) / (2_000_000 - 10_000))  # noqa: E731
    for k in (0, 1, 9_999, 10_000, 123_456, m.train.steps - 1):
        assert lr_at(k, m.optim, m.train.steps) == pytest.approx(hf(k), rel=1e-12, abs=1e-20)
