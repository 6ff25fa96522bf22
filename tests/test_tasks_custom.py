"""Bring your own data: files, Dataset.from_tensors, run directory and resume; the tasks/models listings."""

import typing

import numpy as np
import pytest
import torch

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, load_run, resume, run
from groklab.tasks import TASKS, Dataset, build_dataset, save_custom
from groklab.catalog import MODELS


def blobs(n: int, seed: int = 0):
    """Two Gaussian blobs in 5 dimensions; class = which blob."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + 3.0 * (2 * y[:, None] - 1)
    return x, y


def test_save_custom_round_trip(tmp_path):
    (xt, yt), (xv, yv) = blobs(40), blobs(20, seed=1)
    cfg = save_custom(tmp_path / "d.safetensors", xt, yt, xv, yv)
    assert cfg.group == "custom" and cfg.path.endswith("d.safetensors") and len(cfg.sha256) == 64
    data = build_dataset(cfg)
    assert torch.equal(data.x_train, xt) and torch.equal(data.y_train, yt) and torch.equal(data.y_val, yv)
    assert data.target == "class" and data.n_classes == 2 and data.d_input == 5
    # The config holds the file's hash: a changed file is refused, naming the field.
    save_custom(tmp_path / "d.safetensors", xv, yv, xt, yt)
    with pytest.raises(ConfigError, match="task.sha256"):
        build_dataset(cfg)


def test_npz_with_whole_data_is_split_by_train_frac(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3, 2)).astype(np.float32)  # images-like (N, H, W)
    y = x.sum(axis=(1, 2)).astype(np.float64)
    np.savez(tmp_path / "r.npz", x=x, y=y)
    data = build_dataset(TaskConfig(group="custom", path=str(tmp_path / "r.npz"), train_frac=0.8, seed=2))
    assert data.n_train == 40 and data.n_val == 10 and data.d_input == 6 and data.target == "real"
    assert data.y_train.shape == (40, 1) and data.y_train.dtype == torch.float32
    assert sorted(data.train_idx.tolist() + data.val_idx.tolist()) == list(range(50))
    np.testing.assert_allclose(data.x_train.numpy(), x[data.train_idx.numpy()].reshape(40, 6))


def test_custom_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="task.path=None"):
        TaskConfig(group="custom")
    with pytest.raises(ConfigError, match="does not exist"):
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "none.npz")))
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"needs either x_train, y_train, x_val, y_val or x, y"):
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "bad.npz")))
    with pytest.raises(ConfigError, match="x_train has 4 rows but y_train has 3"):
        Dataset.from_tensors(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ConfigError, match="target='sign' needs labels that are all -1 or \\+1"):
        Dataset.from_tensors(torch.zeros(2, 2), torch.tensor([1.0, 0.5]), torch.zeros(1, 2), torch.tensor([1.0]), target="sign")
    with pytest.raises(ConfigError, match=r"operand pairs of shape \(N, 2\)"):
        Dataset.from_tensors(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long))



def test_a_file_that_is_not_an_npz_is_named_as_such(tmp_path):
    """No advice to load with allow_pickle: the file is simply not a valid .npz (and pickles are never loaded)."""
    (tmp_path / "g.npz").write_bytes(b"garbage, not a zip" * 8)
    with pytest.raises(ConfigError, match=r"is not a valid \.npz file") as e:
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "g.npz")))
    assert "allow_pickle" not in str(e.value)
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ConfigError, match="object arrays") as e:
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "o.npz")))
    assert "allow_pickle" not in str(e.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_data_is_refused(tmp_path, bad):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.float32)
    for name, arr in (("x", x), ("y", y)):
        a = arr.copy()
        a[3] = bad
        np.savez(tmp_path / "d.npz", **{"x": x, "y": y, name: a})
        with pytest.raises(ConfigError, match=r"task.path=.*non-finite value"):
            build_dataset(TaskConfig(group="custom", path=str(tmp_path / "d.npz")))


def test_labels_beyond_the_rows_need_an_explicit_class_count(tmp_path):
    """Labels up to 10^6 on 500 rows would make a 10^6-way output layer: refused unless task.n_classes says so."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ids.npz", x=rng.normal(size=(500, 3)).astype(np.float32), y=rng.integers(0, 10**6, 500))
    with pytest.raises(ConfigError, match=r"go up to \d+, which makes \d+ classes for 500 rows.*task.n_classes"):
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "ids.npz")))
    data = build_dataset(TaskConfig(group="custom", path=str(tmp_path / "ids.npz"), n_classes=10**6))
    assert data.n_classes == 10**6
    with pytest.raises(ConfigError, match="n_classes=3 but the labels go up to"):
        build_dataset(TaskConfig(group="custom", path=str(tmp_path / "ids.npz"), n_classes=3))
    with pytest.raises(ConfigError, match="task.n_classes=1 must be at least 2"):
        TaskConfig(group="custom", path="x.npz", n_classes=1)
    # Classes 0..K-1 with a few unused ids (fewer classes than rows) still need no count.
    x = rng.normal(size=(40, 3)).astype(np.float32)
    np.savez(tmp_path / "gaps.npz", x=x, y=np.array([0, 5, 9, 2] * 10))
    assert build_dataset(TaskConfig(group="custom", path=str(tmp_path / "gaps.npz"))).n_classes == 10


def test_a_table_too_large_for_memory_is_refused_before_allocating():
    from groklab.tasks.dataset import TABLE_BYTES_PER_EQUATION, check_table_fits

    cfg = TaskConfig(p=1_000_003)
    with pytest.raises(ConfigError, match=r"task.p=1000003: the table has 1,000,006,000,009 equations and needs about 100,000.6 GB .* 16.0 GB"):
        check_table_fits(cfg, memory=16 * 10**9)
    small = TaskConfig(p=97)
    check_table_fits(small, memory=small.n_equations * TABLE_BYTES_PER_EQUATION)
    with pytest.raises(ConfigError, match=r"task.n=7: the table has 25,401,600 equations"):
        check_table_fits(TaskConfig(group="permutation", op="x*y", n=7), memory=10**9)

@pytest.mark.integration
def test_custom_operand_pairs_take_the_pair_models(tmp_path):
    x = torch.tensor([[a, b] for a in range(5) for b in range(5)])
    y = (x[:, 0] + x[:, 1]) % 5
    cfg = save_custom(tmp_path / "pairs.safetensors", x=x, y=y, train_frac=0.6)
    data = build_dataset(cfg)
    assert data.d_input is None and data.n_elements == 5 and data.n_classes == 5
    r = run(RunConfig(task=cfg, model=ModelConfig(arch="transformer", d_model=16, n_heads=2, d_mlp=32, n_layers=1),
                      train=TrainConfig(steps=3, batch_size=None, eval_points=2, threads=1)))
    assert r.rows[-1]["step"] == 3


def custom_run(path, out, steps=120):
    return RunConfig(
        task=path,
        model=ModelConfig(arch="mlp", width=16, depth=1, bias=True),
        optim=OptimConfig(lr=1e-2, weight_decay=0.1, warmup_steps=0),
        train=TrainConfig(steps=steps, batch_size=8, eval_points=12, checkpoint_points=6, threads=1),
        out=str(out) if out else None,
    )


@pytest.mark.integration
def test_custom_run_learns_writes_its_directory_and_resumes(tmp_path):
    (xt, yt), (xv, yv) = blobs(32), blobs(32, seed=1)
    task = save_custom(tmp_path / "blobs.safetensors", xt, yt, xv, yv)
    full = run(custom_run(task, tmp_path / "full"))
    assert full.rows[-1]["train_acc"] == 1.0 and full.rows[-1]["val_acc"] > 0.9

    class Crash(Exception):
        pass

    def crash_at(step, row):
        if step == 70:
            raise Crash

    with pytest.raises(Crash):
        run(custom_run(task, tmp_path / "crashed"), on_step=crash_at)
    resumed = resume(tmp_path / "crashed")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]  # noqa: E731
    assert strip(resumed.rows) == strip(full.rows)
    loaded = load_run(tmp_path / "crashed")
    assert loaded.finished and loaded.config.task.path == task.path
    with torch.no_grad():
        assert torch.equal(loaded.load_model()(xt).argmax(-1), full.model(xt).argmax(-1))
    # The batch-size check needs the file, so it happens when the run starts.
    # It leaves no run directory behind.
    with pytest.raises(ConfigError, match=r"train.batch_size=64 is larger than the training set \(32 samples"):
        run(custom_run(task, tmp_path / "too_big").replace(**{"train.batch_size": 64}))
    assert not (tmp_path / "too_big").exists()


def test_tasks_and_models_commands_list_everything(capsys):
    from groklab.cli import main

    main(["tasks"])
    out = capsys.readouterr().out
    groups = typing.get_args(typing.get_type_hints(TaskConfig)["group"])
    assert set(TASKS) == set(groups)
    for group in groups:
        assert f"\n{group} " in "\n" + out
    assert out.count("paper:") == len(TASKS)
    main(["models"])
    out = capsys.readouterr().out
    archs = typing.get_args(typing.get_type_hints(ModelConfig)["arch"])
    assert set(MODELS) == set(archs)
    for arch in archs:
        assert f"\n{arch} " in "\n" + out
    assert out.count("paper:") == len(MODELS)
