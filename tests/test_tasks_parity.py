"""Sparse parity (Barak et al. 2022): the generator against a brute-force check, the weight-mass metric,
the vector MLP, and a short hinge-loss SGD run."""

import itertools

import pytest
import torch

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, run
from groklab.models import DenseMLP, build_model, count_params
from groklab.tasks import build_dataset
from groklab.tasks.parity import hidden_subset, relevant_weight_mass


def parity_task(**kw):
    return TaskConfig(**{"group": "parity", "n_bits": 8, "k": 3, "train_size": 200, "val_size": 100, **kw})


def test_labels_are_the_parity_of_exactly_one_k_subset():
    data = build_dataset(parity_task(seed=3))
    x, y = data.x_train, data.y_train[:, 0]
    assert x.dtype == torch.float32 and x.shape == (200, 8) and set(x.unique().tolist()) == {-1.0, 1.0}
    assert data.target == "sign" and data.d_input == 8 and data.n_classes == 1
    # Brute force over every 3-subset: only the hidden one explains all 200 labels.
    fits = [s for s in itertools.combinations(range(8), 3) if all(
        int(y[r]) == (1 if sum(x[r, i] < 0 for i in s) % 2 == 0 else -1) for r in range(len(y)))]
    assert fits == [tuple(hidden_subset(8, 3, 3))]
    xv, yv = data.x_val, data.y_val[:, 0]
    assert torch.equal(yv, xv[:, list(fits[0])].prod(1))


def test_class_labels_and_seeds():
    a, b = build_dataset(parity_task(labels="class")), build_dataset(parity_task(labels="sign"))
    assert a.target == "class" and a.n_classes == 2 and a.y_train.dtype == torch.long
    assert torch.equal(a.y_train, (b.y_train[:, 0] < 0).long())  # class 1 is parity −1
    assert torch.equal(build_dataset(parity_task()).x_train, b.x_train)
    assert not torch.equal(build_dataset(parity_task(seed=1)).x_train, b.x_train)
    # The hidden subset depends on the seed only, not on the sample sizes.
    assert hidden_subset(40, 3, 0) == hidden_subset(40, 3, 0) and len(set(hidden_subset(40, 3, 0))) == 3


def test_corruption_flips_exactly_the_marked_signs():
    data = build_dataset(parity_task(corrupt_frac=0.25))
    c = data.corrupted
    assert int(c.sum()) == 50
    assert torch.equal(data.y_train[c], -data.y_train_true[c]) and torch.equal(data.y_train[~c], data.y_train_true[~c])


def test_weight_mass_metric():
    W = torch.zeros(10, 4)
    W[[1, 5]] = 1.0
    assert relevant_weight_mass(W, [1, 5]) == {"w_relevant_frac": 1.0, "w_relevant_ratio": float("inf")}
    m = relevant_weight_mass(torch.ones(10, 4), [1, 5])
    assert m["w_relevant_frac"] == pytest.approx(0.2) and m["w_relevant_ratio"] == pytest.approx(1.0)


def test_dense_mlp_shapes_and_parameter_count():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="mlp", width=16, depth=1, bias=True), 0, 1, d_input=8)
    assert isinstance(model, DenseMLP)
    assert model(torch.randn(5, 8)).shape == (5, 1)
    assert count_params(model) == 8 * 16 + 16 + 16 * 1 + 1
    deep = build_model(ModelConfig(arch="mlp", width=20, depth=3, bias=False), 0, 10, d_input=64)
    assert count_params(deep) == 64 * 20 + 2 * 20 * 20 + 20 * 10


def test_pair_models_refuse_vector_tasks():
    with pytest.raises(ConfigError, match=r"model.arch='transformer'.*task.group='parity'.*model.arch='mlp'"):
        RunConfig(task=parity_task(), model=ModelConfig(arch="transformer"), train=TrainConfig(batch_size=32))
    with pytest.raises(ConfigError, match="task.k=9"):
        parity_task(k=9)
    with pytest.raises(ConfigError, match="task.labels"):
        parity_task(labels="real")


@pytest.mark.integration
def test_hinge_sgd_learns_the_training_set_and_moves_weight_onto_the_subset():
    cfg = RunConfig(
        task=TaskConfig(group="parity", n_bits=10, k=3, train_size=300, val_size=300),
        model=ModelConfig(arch="mlp", width=128, depth=1, bias=True),
        optim=OptimConfig(name="sgd", lr=0.1, weight_decay=0.01, warmup_steps=0),
        train=TrainConfig(steps=1500, batch_size=32, loss="hinge", eval_points=8, threads=1),
    )
    rows = run(cfg).rows
    first, last = rows[0], rows[-1]
    assert last["train_acc"] == 1.0
    assert first["w_relevant_frac"] < 0.5 < last["w_relevant_frac"]  # the sparse circuit: k/n = 0.3 at init
