"""Teacher–student regression (Omnigrok): labels reproduce from the teacher, R² and hit rate, a short run."""

import numpy as np
import pytest
import torch

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, run
from groklab.tasks import build_dataset
from groklab.tasks.targets import Readout, r2_score
from groklab.tasks.teacher import make_teacher


def teacher_task(**kw):
    return TaskConfig(**{"group": "teacher", "d_in": 6, "d_out": 2, "teacher_width": 12, "train_size": 100, "val_size": 50, **kw})


def test_labels_reproduce_from_the_teacher():
    cfg = teacher_task(seed=4)
    data = build_dataset(cfg)
    teacher, _ = make_teacher(cfg)
    assert data.target == "real" and data.d_input == 6 and data.n_classes == 2 and data.y_train.shape == (100, 2)
    # An independent float64 numpy forward pass of the teacher's weights.
    def forward(x):
        h = x.astype(np.float64)
        for i, (W, b) in enumerate(zip(teacher.weights, teacher.biases)):
            h = h @ W.numpy().astype(np.float64) + b.numpy()
            if i < len(teacher.weights) - 1:
                h = np.maximum(h, 0)
        return (h - teacher.shift.numpy()) / teacher.scale.numpy()
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        np.testing.assert_allclose(forward(x.numpy()), y.numpy(), rtol=1e-4, atol=1e-4)
    y = torch.cat([data.y_train, data.y_val])
    assert y.mean(0).abs().max() < 1e-5 and (y.std(0) - 1).abs().max() < 1e-5  # standardized labels
    assert not torch.equal(build_dataset(teacher_task(seed=5)).y_train, data.y_train)


def test_r2_and_hit_rate():
    y = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    assert r2_score(y, y) == 1.0
    assert r2_score(torch.full_like(y, 1.5), y) == pytest.approx(0.0)
    pred = y + torch.tensor([[0.05], [-0.05], [0.2], [0.0]])
    assert r2_score(pred, y) == pytest.approx(1 - (0.0025 * 2 + 0.04) / 5.0)
    assert Readout("real", tol=0.1).correct(pred, y).tolist() == [True, True, False, True]
    assert Readout("sign").correct(torch.tensor([[1.0], [-1.0]]), torch.tensor([[1.0], [1.0]])).tolist() == [True, False]


def test_teacher_labels_cannot_be_corrupted():
    with pytest.raises(ConfigError, match="task.corrupt_frac=0.1"):
        teacher_task(corrupt_frac=0.1)
    with pytest.raises(ConfigError, match="task.tol=0"):
        teacher_task(tol=0.0)


@pytest.mark.integration
def test_student_fits_the_training_set():
    cfg = RunConfig(
        task=TaskConfig(group="teacher", d_in=5, teacher_width=16, train_size=100, val_size=400, tol=0.1),
        model=ModelConfig(arch="mlp", width=64, depth=2, bias=True),
        optim=OptimConfig(lr=3e-3, weight_decay=0.0, warmup_steps=0),
        train=TrainConfig(steps=600, batch_size=None, loss="mse", eval_points=6, threads=1),
    )
    rows = run(cfg).rows
    first, last = rows[0], rows[-1]
    assert first["train_r2"] < 0.5 and last["train_r2"] > 0.99 and last["train_acc"] > 0.9
    assert last["val_r2"] > 0.5  # and it generalizes somewhat


def test_loss_must_suit_the_labels():
    with pytest.raises(ConfigError, match=r"train.loss='ce'.*use train.loss='mse'"):
        RunConfig(task=teacher_task(), model=ModelConfig(arch="mlp"), train=TrainConfig(loss="ce", batch_size=None))
    with pytest.raises(ConfigError, match=r"train.loss.*'stablemax'.*hinge, mse, ce"):
        RunConfig(task=TaskConfig(group="parity"), model=ModelConfig(arch="mlp"), train=TrainConfig(loss="stablemax", batch_size=None))
    RunConfig(task=TaskConfig(group="parity", labels="class"), model=ModelConfig(arch="mlp"), train=TrainConfig(loss="stablemax", batch_size=None))
