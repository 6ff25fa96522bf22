"""Splits and label corruption."""

import pytest
import torch

from groklab import ConfigError, TaskConfig
from groklab.tasks import build_dataset, full_table


@pytest.mark.parametrize("frac", [0.1, 0.3, 0.5, 0.9])
def test_split_sizes_disjoint_and_complete(frac):
    cfg = TaskConfig(op="x/y", p=23, train_frac=frac, seed=3)
    d = build_dataset(cfg)
    n = 23 * 22
    assert d.n_train == round(frac * n) and d.n_train + d.n_val == n
    tr, va = set(d.train_idx.tolist()), set(d.val_idx.tolist())
    assert not tr & va and tr | va == set(range(n))
    # the rows carry the right equations
    x, y, z = (torch.from_numpy(a) for a in full_table(cfg))
    assert torch.equal(d.x_train[:, 0], x[d.train_idx]) and torch.equal(d.x_train[:, 1], y[d.train_idx])
    assert torch.equal(d.y_train, z[d.train_idx]) and torch.equal(d.y_val, z[d.val_idx])


def test_split_is_deterministic_in_its_seed():
    a, b = build_dataset(TaskConfig(p=31, seed=1)), build_dataset(TaskConfig(p=31, seed=1))
    c = build_dataset(TaskConfig(p=31, seed=2))
    assert torch.equal(a.train_idx, b.train_idx) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.train_idx, c.train_idx)


def test_split_ignores_the_global_rng():
    torch.manual_seed(0)
    a = build_dataset(TaskConfig(p=31))
    torch.manual_seed(12345)
    b = build_dataset(TaskConfig(p=31))
    assert torch.equal(a.train_idx, b.train_idx)


@pytest.mark.parametrize("xi", [0.0, 0.05, 0.3, 0.9])
def test_corruption_count_exact_and_every_corrupted_label_wrong(xi):
    d = build_dataset(TaskConfig(p=37, train_frac=0.5, corrupt_frac=xi, seed=5))
    k = round(xi * d.n_train)
    assert int(d.corrupted.sum()) == k
    c = d.corrupted
    assert (d.y_train[c] != d.y_train_true[c]).all()
    assert torch.equal(d.y_train[~c], d.y_train_true[~c])
    assert ((0 <= d.y_train) & (d.y_train < 37)).all()
    # validation labels are never corrupted
    clean = build_dataset(TaskConfig(p=37, train_frac=0.5, seed=5))
    assert torch.equal(clean.y_val, d.y_val) and torch.equal(clean.y_train, d.y_train_true)


def test_corrupted_labels_are_uniform_over_wrong_labels():
    # S5: each corrupted label is one of the 119 wrong ones, shifts 1..119 equally likely (~36 draws each).
    d = build_dataset(TaskConfig(group="permutation", op="x*y", n=5, train_frac=0.5, corrupt_frac=0.6, seed=0))
    shift = (d.y_train[d.corrupted] - d.y_train_true[d.corrupted]) % 120
    counts = torch.bincount(shift, minlength=120).float()
    assert counts[0] == 0
    expected = counts.sum() / 119
    assert (counts[1:] - expected).abs().max() < 5 * expected.sqrt()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_train_fraction_outside_open_interval(bad):
    with pytest.raises(ConfigError, match=r"task.train_frac.*\(0, 1\)"):
        TaskConfig(train_frac=bad)


@pytest.mark.parametrize("bad", [1.0, -0.01, 2.0])
def test_corruption_fraction_outside_half_open_interval(bad):
    with pytest.raises(ConfigError, match=r"task.corrupt_frac.*\[0, 1\)"):
        TaskConfig(corrupt_frac=bad)
