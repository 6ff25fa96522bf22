"""Issue 15, parts 4–6: the ungrokking swap and the efficiency metric (Varma et al. 2023), the knowledge-graph
composition task and the logit lens (Wang et al. 2024), and the structural-grokking task (Murty et al. 2023)."""

from __future__ import annotations

import math

import pytest
import torch

from groklab import ConfigError, ModelConfig, RegConfig, RunConfig, TaskConfig, TrainConfig, resume, run
from groklab.tasks import build_dataset
from groklab.train.hooks import build_interventions
from groklab.train.interventions import Efficiency, SwapTrainSet, swapped_size


def strip_time(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def tiny(out=None, **dotted) -> RunConfig:
    """A 1-layer transformer on x+y mod 13 (a step takes about a millisecond)."""
    cfg = RunConfig(
        task=TaskConfig(p=13, train_frac=0.6),
        model=ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32),
        train=TrainConfig(steps=30, batch_size=16, threads=1, eval_points=8, checkpoint_points=6),
        out=None if out is None else str(out),
    )
    return cfg.replace(**dotted) if dotted else cfg


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
