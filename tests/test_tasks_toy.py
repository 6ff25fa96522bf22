"""Liu et al. (2022): integer addition, the representation quality index, the toy model, and separate
learning rates / weight decays for embeddings and decoder."""

import itertools

import pytest
import torch

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, run
from groklab.models import ToyModel, build_model, count_params
from groklab.tasks import build_dataset
from groklab.analysis import parallelograms, rqi
from groklab.train.optim import build_optimizer


def test_integer_addition_table():
    cfg = TaskConfig(group="integer", p=7, train_frac=0.5)
    assert cfg.n_equations == 28
    data = build_dataset(cfg)
    x, y = torch.cat([data.x_train, data.x_val]), torch.cat([data.y_train, data.y_val])
    assert data.n_classes == 13 and data.n_elements == 7 and len(y) == 28
    assert sorted(map(tuple, x.tolist())) == [(a, b) for a in range(7) for b in range(a, 7)]
    assert torch.equal(y, x.sum(1))


def test_parallelograms_match_brute_force():
    p = 6
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    brute = {frozenset([u, v]) for u, v in itertools.combinations(pairs, 2) if sum(u) == sum(v)}
    got = {frozenset([(int(q[0]), int(q[1])), (int(q[2]), int(q[3]))]) for q in parallelograms(p)}
    assert got == brute and len(parallelograms(p)) == len(brute)


def test_rqi_of_known_embeddings():
    q = parallelograms(10)
    line = torch.arange(10.0)[:, None] * torch.tensor([[0.3, -2.0]]) + 5.0
    assert rqi(line, 0.01, quads=q) == 1.0
    assert rqi(line * 1000, 0.01, quads=q) == 1.0  # scale-free
    torch.manual_seed(0)
    assert rqi(torch.randn(10, 8), 0.01, quads=q) < 0.05
    bent = line.clone()
    bent[3] += 5.0  # one number off the line breaks exactly the parallelograms that use it
    assert 0.3 < rqi(bent, 0.01, quads=q) < 1.0


def test_toy_model_shapes_parameters_and_symmetry():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="toy", d_embed=4, width=16, depth=2, bias=True), 10, 19)
    assert isinstance(model, ToyModel)
    pairs = torch.tensor([[1, 2], [2, 1], [9, 0]])
    out = model(pairs)
    assert out.shape == (3, 19) and torch.allclose(out[0], out[1], atol=1e-6)  # the decoder sees only E_x + E_y (rows of one matmul may round differently)
    assert count_params(model) == 10 * 4 + (4 * 16 + 16) + (16 * 16 + 16) + (16 * 19 + 19)
    with pytest.raises(ConfigError, match="model.batchnorm"):
        build_model(ModelConfig(arch="toy", batchnorm=True), 10, 19)


def test_embedding_parameter_groups():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="toy", d_embed=4, width=8), 10, 19)
    opt = build_optimizer(model, OptimConfig(lr=1e-4, weight_decay=0.5, embed_lr=1e-3, embed_weight_decay=0.0))
    groups = {tuple(id(p) for p in g["params"]): g for g in opt.param_groups}
    emb = groups[(id(model.W_E),)]
    assert emb["lr"] == 1e-3 and emb["lr_scale"] == pytest.approx(10.0) and emb["weight_decay"] == 0.0
    dec = [g for k, g in groups.items() if k != (id(model.W_E),)]
    assert len(dec) == 1 and dec[0]["lr"] == 1e-4 and dec[0]["weight_decay"] == 0.5 and len(dec[0]["params"]) == 2  # W_in, W_out
    plain = build_optimizer(model, OptimConfig(lr=1e-4))
    assert len(plain.param_groups) == 1
    with pytest.raises(ConfigError, match="optim.embed_weight_decay"):
        OptimConfig(embed_weight_decay=0.1, no_decay=["embed"])


@pytest.mark.integration
def test_embedding_lr_reaches_the_training_step():
    cfg = RunConfig(
        task=TaskConfig(group="integer", p=6, train_frac=0.6),
        model=ModelConfig(arch="toy", d_embed=2, width=16, depth=1, bias=True),
        optim=OptimConfig(lr=1e-2, weight_decay=0.0, embed_lr=1e-12, warmup_steps=5),
        train=TrainConfig(steps=30, batch_size=None, eval_points=3, threads=1),
    )
    torch.manual_seed(0)
    init = build_model(cfg.model, 6, 11)
    model = run(cfg).model
    assert torch.allclose(model.W_E, init.W_E, atol=1e-8)  # embeddings frozen by their tiny lr ...
    assert not torch.allclose(model.W_in, init.W_in, atol=1e-3)  # ... while the decoder trains


@pytest.mark.integration
def test_toy_model_learns_and_its_representation_forms():
    """The toy setup of Liu et al.: p = 10, 45 of the 55 pairs, 1-d embeddings, tanh decoder of width 200,
    AdamW with embedding lr 1e-3 and decoder lr 1e-4 (cross-entropy over the 19 sums here)."""
    cfg = RunConfig(
        task=TaskConfig(group="integer", p=10, train_frac=45 / 55),
        model=ModelConfig(arch="toy", d_embed=1, width=200, depth=2, bias=True, act="tanh"),
        optim=OptimConfig(lr=1e-4, weight_decay=0.0, embed_lr=1e-3, warmup_steps=0),
        train=TrainConfig(steps=1500, batch_size=None, eval_points=10, threads=1),
    )
    rows = run(cfg).rows
    assert rows[0]["rqi"] < 0.2 and max(r["rqi"] for r in rows) == 1.0
    assert rows[-1]["train_acc"] >= 0.9
