"""The HTML report: self-contained, and rendered without errors in a real headless Chromium."""

import re
from pathlib import Path

import pytest
from conftest import chromium_or_skip, render_in_chromium

from groklab import ModelConfig, RunConfig, TaskConfig, TrainConfig, run
from groklab.errors import RunDirError
from groklab.report.html import build_report


def tiny_run(out: Path):
    cfg = RunConfig(
        task=TaskConfig(op="x+y", p=11, train_frac=0.6, corrupt_frac=0.1),
        model=ModelConfig(arch="mlp", width=48, act="quadratic"),
        train=TrainConfig(steps=300, batch_size=None, eval_points=20, threads=1),
        out=str(out),
    )
    return run(cfg)


@pytest.mark.integration
def test_report_is_self_contained_and_has_the_key_numbers(tmp_path):
    result = tiny_run(tmp_path / "r")
    index = build_report(tmp_path / "r")
    page = index.read_text()
    assert index == tmp_path / "r" / "report" / "index.html"
    # self-contained: no external resources, every image inline
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    assert page.count('src="data:image/png;base64,') >= 1
    s = result.summary
    assert f'data-key="val acc ≥ 99% at step">{s["val_acc_99_step"] if s["val_acc_99_step"] is not None else "&gt; " + str(s["stopped_step"])}<' in page
    assert "task.corrupt_frac" in page and "x+y mod 11" in page
    assert s["versions"]["torch"] in page


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(RunDirError, match="neither a run directory"):
        build_report(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        build_report(tmp_path / "nope")


@pytest.mark.integration
def test_report_renders_in_headless_chromium(tmp_path):
    chromium_or_skip()
    result = tiny_run(tmp_path / "r")
    shot = tmp_path / "report.png"
    errors, loaded, text = render_in_chromium(build_report(tmp_path / "r"), shot)
    assert errors == []
    assert loaded and all(loaded)
    final = result.summary["final"]
    assert f"{final['val_acc']:.4g}" in text and "val acc ≥ 99% at step" in text
    assert f"final val acc {final['val_acc']:.4g}" in text
    assert shot.stat().st_size > 10_000


def test_run_page_shows_the_numbers_the_analysis_wrote(tmp_path):
    """The cards read RUN/analysis/summary.json under the keys analysis/driver.py writes (issue 14.4)."""
    import json

    from groklab.store import RunDir

    rd = RunDir(tmp_path / "r")
    rd.write_config(RunConfig(task=TaskConfig(op="x+y", p=11), out=str(tmp_path / "r")))
    for step in (0, 10):
        rd.append_metrics({"step": step, "train_acc": 0.5, "val_acc": 0.1, "train_loss": 1.0, "val_loss": 2.0})
    (tmp_path / "r" / "analysis").mkdir()
    (tmp_path / "r" / "analysis" / "summary.json").write_text(json.dumps({
        "grokking": {"phase": "memorization"}, "key_frequencies": [3, 5], "key_fraction": 0.75,
        "ipr": {"median": 0.625}, "representations": {"embedding": {"rqi": 0.5}},
    }))
    page = build_report(tmp_path / "r").read_text()
    for key, shown in [("phase", "memorization"), ("key frequencies", "[3, 5]"), ("key fraction of power", "0.75"),
                       ("median neuron IPR", "0.625"), ("RQI of the embedding", "0.5")]:
        assert f'data-key="{key}">{shown}<' in page


def test_sweep_page_counts_finished_runs_and_writes_no_table(tmp_path, monkeypatch):
    """"finished" counts the runs whose status is done; the page reads the runs and leaves table.csv alone."""
    import json

    import pandas as pd

    import groklab.report.sweep_plots as sweep_plots
    import groklab.sweep.table as table

    calls = []

    def fake_table(path, write=True):
        calls.append(write)
        return pd.DataFrame({"id": ["a", "b", "c"], "status": ["done", "running", "done"], "task.train_frac": [0.3, 0.5, 0.7]})

    monkeypatch.setattr(table, "sweep_table", fake_table)
    monkeypatch.setattr(sweep_plots, "sweep_figures", lambda d, df: [])
    (tmp_path / "sweep.json").write_text(json.dumps({"grid": {"task.train_frac": [0.3, 0.5, 0.7]}}))
    page = build_report(tmp_path).read_text()
    assert 'data-key="runs">3<' in page and 'data-key="finished">2<' in page
    assert calls == [False] and not (tmp_path / "table.csv").exists()
