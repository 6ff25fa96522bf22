"""Training runs: determinism, the run directory, resume after a crash, Ctrl-C or kill -9, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import strip_time, tiny_transformer
from safetensors.torch import load_file

from groklab import RunConfig, RunDirError, load_run, resume, run
from groklab.train.schedule import log_spaced_steps


def tiny(out=None, steps=300, **train) -> RunConfig:
    return tiny_transformer(out, **{"task.op": "x-y", "task.p": 17, "model.d_model": 32, "model.d_mlp": 64, "model.dropout": 0.1,
                                    "optim.lr": 3e-3, "train.steps": steps, "train.eval_points": 15, "train.checkpoint_points": 6,
                                    **{f"train.{k}": v for k, v in train.items()}})


class Crash(Exception):
    pass


def test_log_spaced_steps():
    s = log_spaced_steps(100_000, 100)
    assert s[0] == 0 and s[-1] == 100_000 and s == sorted(set(s))
    assert 95 <= len(s) <= 110
    assert s[:5] == [0, 1, 2, 3, 4]  # dense early
    gaps = [b - a for a, b in zip(s, s[1:])]
    assert gaps[-1] > 1000 * gaps[0]  # sparse late
    assert log_spaced_steps(5, 100) == [0, 1, 2, 3, 4, 5]


@pytest.mark.integration
def test_same_config_same_metrics():
    a, b = run(tiny()), run(tiny())
    assert strip_time(a.rows) == strip_time(b.rows)
    c = run(tiny().replace(**{"train.seed": 1}))
    assert strip_time(a.rows) != strip_time(c.rows)


@pytest.mark.integration
def test_run_directory_contents(tmp_path):
    cfg = tiny(tmp_path / "r").replace(**{"task.corrupt_frac": 0.2})
    result = run(cfg)
    d = tmp_path / "r"
    assert RunConfig.from_json((d / "config.json").read_text()) == cfg
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert strip_time(rows) == strip_time(result.rows)
    for key in ("step", "train_loss", "train_acc", "val_loss", "val_acc", "weight_norm", "elapsed_s", "train_clean_acc", "train_corrupted_acc"):
        assert key in rows[0] and key in rows[-1], key
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 300
    summary = json.loads((d / "summary.json").read_text())
    assert summary["final"]["val_acc"] == rows[-1]["val_acc"]
    assert "train_acc_99_step" in summary and "val_acc_99_step" in summary
    assert {"torch", "numpy", "groklab", "python"} <= set(summary["versions"]) and summary["device"] == "cpu"
    steps = sorted(int(f.stem[5:]) for f in (d / "checkpoints").glob("step_*.safetensors"))
    assert steps[0] == 0 and steps[-1] == 300 and len(steps) == 6
    weights = load_file(d / "checkpoints" / "step_00000300.safetensors")
    assert torch.equal(weights["W_E"], result.model.W_E.detach())
    # read back through the API
    r = load_run(d)
    assert r.config == cfg and r.finished and list(r.metrics["step"]) == [row["step"] for row in rows]
    model = r.load_model()
    x = torch.tensor([[1, 2], [3, 4]])
    result.model.eval()
    assert torch.allclose(model(x), result.model(x))
    assert r.checkpoint_steps == steps
    assert not list(d.rglob("*.tmp"))  # no temporary files left behind


@pytest.mark.integration
def test_resume_after_crash_equals_uninterrupted(tmp_path):
    """Minibatches and dropout both draw randomness, so this checks every RNG is restored."""
    ref = run(tiny(tmp_path / "ref"))

    def crash(step, row):
        if step == 211:  # between checkpoints: the replay from the last resume state must match too
            raise Crash

    with pytest.raises(Crash):
        run(tiny(tmp_path / "b"), on_step=crash)
    assert not (tmp_path / "b" / "summary.json").exists()
    resumed = resume(tmp_path / "b")
    assert strip_time(resumed.rows) == strip_time(ref.rows)
    assert strip_time(load_run(tmp_path / "b").rows) == strip_time(ref.rows)
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.integration
def test_resume_of_finished_run_changes_nothing(tmp_path):
    ref = run(tiny(tmp_path / "r", steps=50))
    again = resume(tmp_path / "r")
    assert strip_time(again.rows) == strip_time(ref.rows)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "groklab.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_rows(path: Path, n: int, proc, limit=120.0):
    t0 = time.time()
    while time.time() - t0 < limit:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("run did not progress")


TRAIN_ARGS = [
    "train", "--task.op", "x-y", "--task.p", "17", "--model.n-layers", "1", "--model.d-model", "32", "--model.n-heads", "2",
    "--model.d-mlp", "64", "--model.dropout", "0.1", "--optim.lr", "3e-3", "--train.steps", "1200", "--train.batch-size", "32",
    "--train.eval-points", "40", "--train.checkpoint-points", "10", "--train.threads", "1", "--train.resume-every-s", "0.2", "--quiet",
]


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_cli_run_resumes_to_identical_metrics(tmp_path, sig):
    ref = _cli(*TRAIN_ARGS, "--out", str(tmp_path / "ref"))
    killed = _cli(*TRAIN_ARGS, "--out", str(tmp_path / "k"))
    _wait_for_rows(tmp_path / "k" / "metrics.jsonl", 30, killed)
    # Kill as soon as a resume state exists (no fixed sleep: on a fast machine the run could finish first).
    resume_state = tmp_path / "k" / "checkpoints" / "resume.safetensors"
    t0 = time.time()
    while not resume_state.exists() and time.time() - t0 < 60:
        time.sleep(0.01)
    assert killed.poll() is None, "the run finished before it could be killed"
    os.kill(killed.pid, sig)
    _, err = killed.communicate(timeout=60)
    assert killed.returncode != 0
    if sig == signal.SIGINT:
        assert killed.returncode == 130 and "groklab resume" in err and "Traceback" not in err
    assert not (tmp_path / "k" / "summary.json").exists()
    assert ref.wait(timeout=300) == 0, ref.communicate()
    res = _cli("resume", str(tmp_path / "k"), "--quiet")
    out, err = res.communicate(timeout=300)
    assert res.returncode == 0, err
    assert strip_time(load_run(tmp_path / "k").rows) == strip_time(load_run(tmp_path / "ref").rows)
    assert (tmp_path / "k" / "curves.png").exists()


@pytest.mark.integration
def test_float64_end_to_end(tmp_path):
    result = run(tiny(tmp_path / "r", steps=30, dtype="float64"))
    assert all(p.dtype == torch.float64 for p in result.model.parameters())
    assert load_run(tmp_path / "r").load_model().W_E.dtype == torch.float64


def test_resume_errors(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        resume(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="no config.json"):
        resume(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="corrupt"):
        resume(tmp_path / "bad")


@pytest.mark.integration
def test_corrupt_checkpoint_is_reported(tmp_path):
    run(tiny(tmp_path / "r", steps=20))
    (tmp_path / "r" / "summary.json").unlink()  # unfinished: a finished run is returned without reading it
    (tmp_path / "r" / "checkpoints" / "resume.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunDirError, match="corrupt"):
        resume(tmp_path / "r")


@pytest.mark.integration
def test_refuses_to_overwrite_a_run(tmp_path):
    run(tiny(tmp_path / "r", steps=5))
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        run(tiny(tmp_path / "r", steps=5))
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before


@pytest.mark.integration
def test_default_batch_and_threads_train():
    """The defaults a newcomer gets — train.batch_size 'auto' and train.threads None — train (the thread choice
    reads the resolved batch size, not the word 'auto')."""
    cfg = RunConfig().replace(**{"task.p": 31, "model.n_layers": 1, "model.d_model": 32, "model.d_mlp": 64, "train.steps": 3})
    assert cfg.train.batch_size == "auto" and cfg.train.threads is None
    res = run(cfg)
    assert res.summary["threads"] >= 1 and res.summary["threads_reason"]
