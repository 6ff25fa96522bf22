"""Stopping before the budget: train.stop_when / train.stop_patience, and a diverging loss (train/stop.py)."""

import json
import math

import pytest
from conftest import strip_time
from safetensors.torch import load_file

from groklab import ConfigError, RunConfig, TrainConfig, load_run, resume, run
from groklab.train.stop import StopRule, parse_condition
from test_train import tiny


# --- the parser (unit) ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, metric, op, value",
    [
        ("val_acc>=0.99", "val_acc", ">=", 0.99),
        ("  train_loss < 1e-3 ", "train_loss", "<", 1e-3),
        ("weight_norm<=25", "weight_norm", "<=", 25.0),
        ("val_loss>-.5", "val_loss", ">", -0.5),
        ("train_clean_acc>=1", "train_clean_acc", ">=", 1.0),
    ],
)
def test_parse_condition(text, metric, op, value):
    c = parse_condition(text)
    assert (c.metric, c.op, c.value) == (metric, op, value)


@pytest.mark.parametrize(
    "text",
    ["val_acc=>0.99", "val_acc==0.99", "val_acc>=", ">=0.99", "val_acc>=nan", "val_acc>=inf", "__import__('os').system('x')>1",
     "val_acc>=0.9 and val_loss<1", "", "1>=val_acc", "val acc>=0.9"],
)
def test_bad_condition_is_one_line_naming_field_value_and_syntax(text):
    with pytest.raises(ConfigError) as e:
        TrainConfig(stop_when=text)
    msg = str(e.value)
    assert "train.stop_when" in msg and repr(text) in msg and "\n" not in msg
    assert ">=" in msg or "finite" in msg


def test_stop_patience_must_be_non_negative():
    with pytest.raises(ConfigError, match="train.stop_patience=-1"):
        TrainConfig(stop_patience=-1)


def test_old_config_without_stop_fields_loads():
    d = RunConfig().to_dict()
    del d["train"]["stop_when"], d["train"]["stop_patience"]
    cfg = RunConfig.from_dict(d)
    assert cfg.train.stop_when is None and cfg.train.stop_patience == 0


# --- the rule (unit) ------------------------------------------------------------------------------------
def row(acc, loss=1.0):
    return {"train_loss": loss, "val_acc": acc}


def test_patience_counts_steps_and_restarts_when_the_condition_breaks():
    r = StopRule(parse_condition("val_acc>=0.99"), patience=10)
    assert r.update(0, row(0.5)) is None and r.due_step() is None
    assert r.update(5, row(0.995)) is None and r.due_step() == 15
    assert r.update(8, row(0.9)) is None and r.due_step() is None  # broken: count again
    assert r.update(12, row(1.0)) is None and r.due_step() == 22
    assert r.update(21, row(1.0)) is None
    assert r.update(22, row(1.0)) == "condition"
    assert r.stopped_step == 22 and "step 22" in r.message()


def test_patience_from_first_keeps_counting_through_dips():
    """train.stop_patience_from_first: the same evaluations as above stop at 15, not 22; a dip at the due step
    postpones the stop to the next evaluation that meets the condition."""
    r = StopRule(parse_condition("val_acc>=0.99"), patience=10, from_first=True)
    assert r.update(5, row(0.995)) is None and r.due_step() == 15
    assert r.update(8, row(0.9)) is None and r.due_step() is None  # not met now: nothing to evaluate early for
    assert r.update(12, row(1.0)) is None and r.due_step() == 15
    assert r.update(15, row(1.0)) == "condition" and r.stopped_step == 15
    r = StopRule(parse_condition("val_acc>=0.99"), patience=10, from_first=True)
    r.update(5, row(1.0))
    assert r.update(15, row(0.5)) is None and r.update(16, row(0.5)) is None
    assert r.update(17, row(1.0)) == "condition"
    assert RunConfig().replace(**{"train.stop_patience_from_first": True}).train.stop_patience_from_first
    s = StopRule.from_config(RunConfig().replace(**{"train.stop_when": "val_acc>=0.99", "train.stop_patience_from_first": True}).train)
    assert s.from_first


def test_zero_patience_stops_at_the_first_evaluation_that_meets_it():
    r = StopRule(parse_condition("train_loss<0.01"))
    assert r.update(0, row(0.0, loss=1.0)) is None
    assert r.update(3, row(0.0, loss=0.005)) == "condition"


def test_missing_or_non_finite_metric_never_meets_the_condition():
    r = StopRule(parse_condition("val_loss<1"))
    assert r.update(0, {"train_loss": 1.0, "val_loss": float("nan")}) is None
    assert r.update(1, {"train_loss": 1.0, "val_loss": None}) is None


def test_non_finite_loss_is_diverged():
    for bad in (math.nan, math.inf, -math.inf):
        assert StopRule().check_loss(7, bad) == "diverged"
    assert StopRule().check_loss(7, 3.0) is None
    r = StopRule()
    assert r.update(4, {"train_loss": math.nan}) == "diverged" and r.stopped_step == 4
    assert StopRule().update(4, {"train_loss": None}) == "diverged"  # a row read back from metrics.jsonl


def test_unknown_metric_is_reported_at_the_first_evaluation():
    r = StopRule(parse_condition("val_accuracy>=0.99"))
    with pytest.raises(ConfigError, match="val_accuracy.*val_acc"):
        r.update(0, row(0.5))


def test_state_round_trip():
    r = StopRule(parse_condition("val_acc>=0.99"), patience=10)
    r.update(5, row(1.0))
    s = StopRule(parse_condition("val_acc>=0.99"), patience=10)
    s.load_state(json.loads(json.dumps(r.state())))
    assert s.due_step() == 15 and s.update(15, row(1.0)) == "condition"
    # from_first across a resume, in a dip: the count is kept, and no early evaluation is due
    r = StopRule(parse_condition("val_acc>=0.99"), patience=10, from_first=True)
    r.update(5, row(1.0))
    r.update(8, row(0.5))
    s = StopRule(parse_condition("val_acc>=0.99"), patience=10, from_first=True)
    s.load_state(json.loads(json.dumps(r.state())))
    assert s.due_step() is None and s.update(16, row(1.0)) == "condition"
    # a state saved before `holding` existed: `since` set meant holding
    old = StopRule(parse_condition("val_acc>=0.99"), patience=10)
    old.load_state({"since": 5, "reason": None, "stopped_step": None})
    assert old.due_step() == 15


# --- real runs (integration) -----------------------------------------------------------------------------
def stopping(out, **train):
    """A tiny run whose training accuracy passes 20% well before its 300 steps."""
    return tiny(out, steps=300, stop_when="train_acc>=0.2", stop_patience=40, **train).replace(**{"model.dropout": 0.0, "optim.lr": 1e-2})


@pytest.mark.integration
def test_run_stops_on_condition_with_patience_and_checkpoints_the_stop_step(tmp_path):
    res = run(stopping(tmp_path / "r"))
    s = res.summary
    assert s["stop_reason"] == "condition" and res.stop_reason == "condition"
    stop = s["stopped_step"]
    assert stop < 300 and s["steps"] == 300
    rows = load_run(tmp_path / "r").rows
    assert rows[-1]["step"] == stop and s["final"]["step"] == stop
    first = next(r["step"] for r in rows if r["train_acc"] >= 0.2)
    assert stop == first + 40  # evaluated at the end of the patience, off the log-spaced grid
    assert all(r["train_acc"] >= 0.2 for r in rows if r["step"] >= first)
    ckpt = tmp_path / "r" / "checkpoints"
    assert load_run(tmp_path / "r").checkpoint_steps[-1] == stop
    assert load_file(str(ckpt / f"step_{stop:08d}.safetensors")).keys() == res.model.state_dict().keys()

    # a stopped run is finished: resume returns it, untouched
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "r").rglob("*") if p.is_file()}
    again = resume(tmp_path / "r")
    assert again.summary == json.loads((tmp_path / "r" / "summary.json").read_text())
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "r").rglob("*") if p.is_file()} == before


@pytest.mark.integration
def test_crash_during_patience_resumes_to_the_same_stop(tmp_path):
    ref = run(stopping(tmp_path / "ref"))
    stop = ref.summary["stopped_step"]

    class Crash(Exception):
        pass

    def crash(step, row):
        if step == stop - 5:  # the condition holds, the patience is not over: the count must survive
            raise Crash

    with pytest.raises(Crash):
        run(stopping(tmp_path / "b", resume_every_s=0.0), on_step=crash)
    resumed = resume(tmp_path / "b")
    assert resumed.summary["stop_reason"] == "condition" and resumed.summary["stopped_step"] == stop
    assert strip_time(load_run(tmp_path / "b").rows) == strip_time(ref.rows)


@pytest.mark.integration
def test_diverging_run_stops_with_last_finite_row_and_a_final_row(tmp_path):
    res = run(tiny(tmp_path / "d", steps=50).replace(**{"optim.lr": 1e6}))
    s = res.summary
    assert s["stop_reason"] == "diverged" and s["stopped_step"] < 50
    rows = load_run(tmp_path / "d").rows
    assert rows[0]["train_loss"] is not None  # the last finite row(s) before it
    assert rows[-1]["step"] == s["stopped_step"]
    assert load_run(tmp_path / "d").checkpoint_steps[-1] == s["stopped_step"]


@pytest.mark.integration
def test_cli_prints_why_the_run_stopped(tmp_path):
    import subprocess
    import sys

    base = ["-m", "groklab.cli", "train", "--task.op", "x-y", "--task.p", "17", "--model.n-layers", "1", "--model.d-model", "32",
            "--model.n-heads", "2", "--model.d-mlp", "64", "--train.steps", "300", "--train.batch-size", "32", "--train.threads", "1"]
    ok = subprocess.run([sys.executable, *base, "--optim.lr", "1e-2", "--model.dropout", "0", "--train.stop-when", "train_acc>=0.2",
                         "--train.stop-patience", "40", "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "stopped at step" in ok.stdout and "train_acc>=0.2" in ok.stdout
    bad = subprocess.run([sys.executable, *base, "--optim.lr", "1e6", "--out", str(tmp_path / "d"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 3 and "diverged" in bad.stderr and "Traceback" not in bad.stderr
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["stop_reason"] == "diverged"


# --- censoring in sweep tables and figures (unit) ---------------------------------------------------------
def test_censored_text():
    from groklab.sweep.table import censored_text

    assert censored_text(1234, "condition", 1300) == (False, "1234")
    assert censored_text(None, "budget", 5000) == (True, "> 5000")
    assert censored_text(None, "condition", 800) == (True, "> 800")  # stopped on another metric first
    assert censored_text(None, "diverged", 12) == (True, "diverged at 12")
    assert censored_text(None, None, None) == (None, "")  # unfinished


def _cells():
    import pandas as pd

    return pd.DataFrame([
        {"status": "done", "f": 1, "steps": 1000, "stopped_step": 400, "stop_reason": "condition", "val_acc_99_step": 300},
        {"status": "done", "f": 1, "steps": 1000, "stopped_step": 500, "stop_reason": "condition", "val_acc_99_step": 500},
        {"status": "done", "f": 2, "steps": 1000, "stopped_step": 600, "stop_reason": "condition", "val_acc_99_step": 600},
        {"status": "done", "f": 2, "steps": 1000, "stopped_step": 1000, "stop_reason": "budget", "val_acc_99_step": None},
        {"status": "done", "f": 3, "steps": 1000, "stopped_step": 1000, "stop_reason": "budget", "val_acc_99_step": None},
        {"status": "done", "f": 3, "steps": 1000, "stopped_step": 1000, "stop_reason": "budget", "val_acc_99_step": None},
        {"status": "done", "f": 4, "steps": 1000, "stopped_step": 7, "stop_reason": "diverged", "val_acc_99_step": None},
    ])


def test_phase_cells_never_average_a_censored_run_as_a_value():
    from groklab.report.sweep_plots import cell_value

    df = _cells()
    cell = {f: cell_value(g, "val_acc_99_step") for f, g in df.groupby("f")}
    assert cell[1] == (400.0, "400", False)
    assert cell[2] == (800.0, "> 800", True)  # a lower bound: the censored seed counts at its budget
    assert cell[3] == (1000.0, "> 1k", True)
    assert math.isnan(cell[4][0]) and cell[4][1:] == ("diverged", True)


def test_censored_runs_draw(tmp_path):
    import pandas as pd

    from groklab.report.sweep_plots import plot_phase_diagram, plot_steps_vs_field

    df = pd.concat([_cells().assign(g=0), _cells().assign(g=1)])
    df["train_acc_99_step"] = 50
    assert plot_steps_vs_field(df, "f", tmp_path / "s.png").stat().st_size > 5000
    assert plot_phase_diagram(df, "f", "g", tmp_path / "p.png").stat().st_size > 5000
    old = df.drop(columns=["stopped_step", "stop_reason"])  # a table written before early stopping
    assert plot_steps_vs_field(old, "f", tmp_path / "o.png").stat().st_size > 5000


def test_misspelt_metric_is_refused_before_the_run_directory_exists(tmp_path):
    with pytest.raises(ConfigError, match="'val_accuracy'.*val_acc"):
        run(tiny(tmp_path / "r", steps=5, stop_when="val_accuracy>=0.99"))
    assert not (tmp_path / "r").exists()


@pytest.mark.integration
def test_condition_on_a_task_metric_leaves_the_run_unchanged_until_it_stops():
    ref = run(tiny(steps=20))
    res = run(tiny(steps=20, stop_when="train_collapse_frac>=0", stop_patience=9))  # holds from step 0
    assert res.summary["stop_reason"] == "condition" and res.summary["stopped_step"] == 9
    # the dry evaluation that checked the name drew no random numbers: the rows match the plain run
    assert strip_time(res.rows[:-1]) == strip_time([r for r in ref.rows if r["step"] < 9])
