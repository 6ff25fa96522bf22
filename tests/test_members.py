"""Stacked members (`groklab.train.members`): each member is exactly the run it would be alone."""

from __future__ import annotations

import signal

import pytest
import torch

from conftest import assert_rows_close

from groklab import RunConfig, load_run, resume, run
from groklab.errors import ConfigError
from groklab.train.members import batchable, refusal, run_members, signature

# Three members that differ in everything a member may keep for itself: seeds, split, corruption, lr,
# weight decay, betas, warm-up, init scale, batch size.
MEMBERS = [
    {},
    {"train.seed": 1, "task.seed": 1, "task.train_frac": 0.4, "optim.lr": 3e-3, "optim.weight_decay": 1.0, "optim.beta2": 0.99, "train.batch_size": 24},
    {"train.seed": 2, "model.init_scale": 2.0, "optim.warmup_steps": 0, "task.corrupt_frac": 0.1},
]


def base(**over) -> RunConfig:
    cfg = RunConfig().replace(**{
        "task.p": 11, "task.train_frac": 0.5, "model.arch": "mlp", "model.width": 16, "model.act": "quadratic",
        "optim.weight_decay": 0.3, "train.steps": 30, "train.batch_size": 32, "train.eval_points": 6,
        "train.checkpoint_points": 3, "train.threads": 1, "train.dtype": "float64",
    })
    return cfg.replace(**over)


TRANSFORMER = {"model.arch": "transformer", "model.d_model": 8, "model.n_heads": 2, "model.d_mlp": 16, "model.n_layers": 1}
# Every value of model.arch (with the MLP on one-hot pairs, embedded pairs and vectors), model.act,
# optim.name and train.loss appears in at least one case.
CASES = {
    "mlp-onehot-adamw-ce-quadratic": {},
    "mlp-embed-adam-mse-tanh": {"optim.name": "adam", "model.input": "embed", "model.d_embed": 6, "model.bias": True, "model.depth": 2, "model.act": "tanh", "train.loss": "mse"},
    "mlp-onehot-sgd-hinge-relu": {"optim.name": "sgd", "optim.momentum": 0.9, "optim.lr": 0.05, "model.act": "relu", "train.loss": "hinge", "optim.no_decay": ["bias"], "model.bias": True},
    "toy-adamw-stablemax-gelu": {"model.arch": "toy", "task.group": "integer", "task.p": 12, "model.d_embed": 4, "model.act": "gelu", "optim.embed_lr": 1e-2, "optim.embed_weight_decay": 0.0, "train.loss": "stablemax"},
    "dense-parity-sgd-hinge": {"task.group": "parity", "task.n_bits": 6, "task.k": 2, "task.train_size": 40, "task.val_size": 20, "task.corrupt_frac": 0.0, "optim.name": "sgd", "optim.lr": 0.05, "train.loss": "hinge", "model.act": "relu", "model.bias": True},
    "dense-teacher-adam-mse": {"task.group": "teacher", "task.d_in": 4, "task.train_size": 40, "task.val_size": 20, "task.corrupt_frac": 0.0, "optim.name": "adam", "train.loss": "mse", "model.act": "tanh", "optim.schedule": "cosine"},
    "transformer-adamw-ce-relu": {**TRANSFORMER, "model.act": "relu", "optim.no_decay": ["embed", "norm"]},
    "transformer-sgd-mse-gelu": {**TRANSFORMER, "model.act": "gelu", "model.layernorm": False, "model.op_token": False, "optim.name": "sgd", "optim.lr": 0.02, "train.loss": "mse"},
    # openai/grok's layout: post-LN, fixed sinusoids (a buffer), no biases (zero buffers), PyTorch's default draw
    "transformer-grok-layout": {**TRANSFORMER, "model.norm_position": "post", "model.pos_embed": "sinusoidal", "model.transformer_bias": "none", "model.init_dist": "torch"},
    # danielmamay/grokking's and Grokfast's: the stream replaced by its first norm, no readout bias, no y = 0
    "transformer-grokfast-layout": {**TRANSFORMER, "model.norm_position": "pre_replace", "model.transformer_bias": "attn_mlp", "task.nonzero_y": True, "optim.warmup_from_zero": True},
    # the papers' epoch order: the members' training sets differ in size, so their last batches do too
    "mlp-epoch-order": {"train.batch_order": "epoch", "train.batch_size": 16},
    # Murty et al.'s and Wang et al.'s optimizer: global-norm clipping (tight enough to act) and the linear schedule
    "mlp-sgd-grad-clip-linear": {"optim.name": "sgd", "optim.lr": 0.05, "optim.momentum": 0.9, "optim.grad_clip": 0.05, "optim.schedule": "linear", "optim.warmup_from_zero": True},
    # every intervention a member runs (on its own module, with its own generator for the noise)
    "grokfast-ema+orthograd+weight-noise": {"reg.grokfast": "ema", "reg.orthograd": True, "reg.weight_noise": 1e-3},
    "grokfast-ma+grad-noise+constrain-norm": {"reg.grokfast": "ma", "reg.grokfast_ma_window": 4, "reg.grad_noise": 1e-3, "reg.constrain_norm": True, "model.arch": "toy", "task.group": "integer", "task.p": 12, "model.d_embed": 4},
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(CASES))
def test_member_equals_its_run_alone_float64(case):
    extra = CASES[case]
    cfgs = [base(**{**extra, **{k: v for k, v in m.items() if not (k == "task.corrupt_frac" and "task.corrupt_frac" in extra)}}) for m in MEMBERS]
    assert batchable(cfgs) == (True, "")
    for res, cfg in zip(run_members(cfgs, write=False), cfgs):
        solo = run(cfg)
        assert_rows_close(res.rows, solo.rows, 1e-9)
        mine = res.model.state_dict()
        for k, v in solo.model.state_dict().items():
            assert torch.allclose(mine[k], v, rtol=1e-9, atol=1e-9), (case, k, (mine[k] - v).abs().max().item())
        assert res.summary["val_acc_99_step"] == solo.summary["val_acc_99_step"]


@pytest.mark.integration
def test_members_clip_each_its_own_gradient():
    """optim.grad_clip per member: one unclipped, one always clipped, one clipped only on large gradients."""
    cfgs = [base(**{"optim.name": "sgd", "optim.lr": 0.05, "train.seed": i, "optim.grad_clip": c}) for i, c in enumerate((None, 1e-3, 0.3))]
    assert batchable(cfgs) == (True, "")
    for res, cfg in zip(run_members(cfgs, write=False), cfgs):
        solo = run(cfg)
        assert_rows_close(res.rows, solo.rows, 1e-9)
        for k, v in solo.model.state_dict().items():
            assert torch.allclose(res.model.state_dict()[k], v, rtol=1e-9, atol=1e-9), (cfg.optim.grad_clip, k)


@pytest.mark.integration
def test_members_write_run_directories_a_run_resumes(tmp_path):
    """Each member's run directory is run()'s: config, metrics, checkpoints, summary; and its resume state,
    taken halfway, is one `resume` finishes exactly as the uninterrupted run."""
    full = [base(**m).replace(out=str(tmp_path / f"m{i}")) for i, m in enumerate(MEMBERS)]
    res = run_members(full)
    for r, cfg in zip(res, full):
        alone = run(cfg.replace(out=str(tmp_path / ("alone-" + cfg.out.rsplit("/", 1)[1]))))
        a, b = load_run(cfg.out), load_run(alone.run_dir)
        assert a.finished and a.checkpoint_steps == b.checkpoint_steps
        assert_rows_close(a.rows, b.rows, 1e-9)
        assert set(a.summary) - {"batched"} == set(b.summary)
        assert (tmp_path / cfg.out / "checkpoints").is_dir()
    # Ctrl-C at step 15: every member saves its resume state, and `resume` finishes it as the run alone
    # (with interventions: their state and the noise generator travel in the resume state)
    again = [c.replace(**{"out": str(tmp_path / f"r{i}"), "reg.grokfast": "ema", "reg.weight_noise": 1e-3}) for i, c in enumerate(full)]
    res = run_members(again, on_step=lambda s: s == 15 and signal.raise_signal(signal.SIGINT))
    assert all(r.interrupted and not r.summary for r in res)
    for cfg in again:
        assert not (tmp_path / cfg.out / "summary.json").exists()
        assert_rows_close(resume(cfg.out).rows, run(cfg.replace(out=None)).rows, 1e-9)


@pytest.mark.integration
def test_members_stop_independently_as_they_would_alone(tmp_path):
    """A member whose stop condition holds, and one whose loss diverges, stop where their lone runs stop and
    are frozen there; the member without a stop trains its whole budget."""
    sgd = {"optim.name": "sgd", "optim.lr": 0.05, "train.loss": "mse"}
    cfgs = [
        base(**sgd, **{"train.stop_when": "train_loss<3", "train.stop_patience": 4}),
        base(**{**sgd, "train.seed": 1, "optim.lr": 1e6, "optim.warmup_steps": 0}),
        base(**{**sgd, "train.seed": 2}),
    ]
    assert batchable(cfgs)[0]
    res = run_members([c.replace(out=str(tmp_path / str(i))) for i, c in enumerate(cfgs)])
    reasons = []
    for r, cfg in zip(res, cfgs):
        solo = run(cfg)
        assert_rows_close(r.rows, solo.rows, 1e-9)
        for k in ("stop_reason", "stopped_step"):
            assert r.summary[k] == solo.summary[k]
        assert load_run(r.run_dir).summary["stopped_step"] == solo.summary["stopped_step"]
        assert load_run(r.run_dir).checkpoint_steps[-1] == solo.summary["stopped_step"]
        reasons.append(r.summary["stop_reason"])
    assert reasons == ["condition", "diverged", "budget"]


def test_batchable_refuses_what_members_do_not_implement():
    ok = [base(), base(**{"train.seed": 1})]
    assert batchable(ok) == (True, "")
    assert batchable([]) == (False, "no runs")
    for over, field in [
        ({"model.dropout": 0.1}, "model.dropout"),
        ({"reg.swap_step": 5, "train.batch_size": 16}, "reg.swap_step"),
        ({"train.loggers": ["tensorboard"]}, "train.loggers"),
        ({"model.batchnorm": True}, "model.batchnorm"),
    ]:
        good, why = batchable([base(), base(**over)])
        assert not good and why.startswith(field), why
        assert refusal(base(**over)).startswith(field)
    good, why = batchable([base(), base(**{"model.width": 8})])
    assert not good and "model.width" in why
    # what a member keeps for itself does not split a stack
    assert signature(base()) == signature(base(**MEMBERS[1])) == signature(base(**MEMBERS[2]))
    with pytest.raises(ConfigError, match="model.dropout"):
        run_members([base(**{"model.dropout": 0.1})], write=False)
