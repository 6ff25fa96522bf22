"""The batched executor trains each member as run() trains it alone."""

from __future__ import annotations

import pytest

from groklab import RunConfig, load_run, resume, run
from groklab.sweep import sweep
from groklab.sweep.batched import batchable, train_batched
from groklab.sweep.layout import SweepDir

MEMBERS = [
    {},
    {"train.seed": 1, "task.seed": 1, "task.train_frac": 0.4, "optim.lr": 3e-3, "optim.weight_decay": 1.0, "optim.beta2": 0.99},
    {"train.seed": 2, "model.init_scale": 2.0, "optim.warmup_steps": 0},
]


def base(**over) -> RunConfig:
    cfg = RunConfig().replace(**{
        "task.p": 23, "task.train_frac": 0.5, "model.arch": "mlp", "model.width": 32, "model.act": "quadratic",
        "optim.weight_decay": 0.3, "train.steps": 120, "train.batch_size": None, "train.eval_points": 12, "train.threads": 1,
    })
    return cfg.replace(**over)


def compare(batched_rows, solo_rows, tol):
    assert [r["step"] for r in batched_rows] == [r["step"] for r in solo_rows]
    for a, b in zip(batched_rows, solo_rows):
        assert set(a) == set(b)
        for k in a:
            if k != "elapsed_s":
                assert a[k] == pytest.approx(b[k], abs=tol, rel=tol), (k, a["step"])


@pytest.mark.parametrize("extra", [
    {},
    {"train.batch_size": 40, "model.dropout": 0.2},
    {"optim.name": "sgd", "optim.momentum": 0.9, "optim.lr": 0.1},
    {"optim.name": "adam", "model.input": "embed", "model.d_embed": 8, "model.bias": True, "model.depth": 2, "model.act": "relu", "task.corrupt_frac": 0.1, "train.loss": "mse"},
])
def test_batched_equals_each_member_alone_float64(extra):
    cfgs = [base(**{"train.dtype": "float64", **extra, **m}) for m in MEMBERS]
    res = train_batched(cfgs, write=False)
    for rows, cfg, w in zip(res.rows, cfgs, res.weights):
        solo = run(cfg)
        compare(rows, solo.rows, 1e-9)
        for k, v in solo.model.state_dict().items():
            assert (w[k] - v).abs().max().item() < 1e-9


def test_batched_equals_alone_float32_and_writes_run_directories(tmp_path):
    res = sweep(base(), {"optim.weight_decay": [0.1, 1.0]}, seeds=2, out=tmp_path / "s", executor="batched", workers=1, progress=False)
    assert res.complete and res.executor == "batched"
    sd = SweepDir(tmp_path / "s")
    for rid, _, cfg in sd.read_spec().points():
        r = load_run(sd.run_dir(rid))  # the run format: config, metrics, checkpoints, summary
        assert r.finished and r.checkpoint_steps[-1] == cfg.train.steps and r.summary["batched"]["members"] == 4
        compare(r.rows, run(cfg).rows, 1e-4)
        assert sd.read_record(rid)["executor"] == "batched"
        assert resume(sd.run_dir(rid)).rows[-1]["step"] == cfg.train.steps  # a finished run stays finished


def test_batched_member_resume_state_continues_per_process(tmp_path):
    """A batched member's resume state is one run() resumes: interrupted halfway, finished alone, it
    ends where the uninterrupted run ends."""
    full = base(**{"train.dtype": "float64", "train.checkpoint_points": 4})
    half = full.replace(**{"train.steps": 60, "out": str(tmp_path / "a")})
    train_batched([half])  # writes the resume state at its last step, 60
    rd = tmp_path / "a"
    # make the directory the 120-step run's, stopped at step 60, and finish it per process
    (rd / "summary.json").unlink()
    (rd / "config.json").write_text(full.replace(out=str(rd)).to_json())
    rows = [r for r in load_run(rd).rows if r["step"] < 60]
    (rd / "metrics.jsonl").write_text("".join(__import__("json").dumps(r) + "\n" for r in rows))
    resumed = resume(rd)
    alone = run(full)
    later = [r for r in alone.rows if r["step"] > 60]
    compare([r for r in resumed.rows if r["step"] > 60], later, 1e-9)


def test_not_batchable_reasons():
    assert batchable(base()) is None
    assert "transformer" in batchable(RunConfig())
    assert "optim.schedule" in batchable(base(**{"optim.schedule": "cosine"}))
