"""`run_analysis` and `groklab analyze` on a short real run: every table and figure is written, and the
numbers in them agree with what the run and the pure functions say."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from groklab import presets
from groklab.analysis import AnalysisError, grokking_over_runs, run_analysis
from groklab.analysis.grokking import crossing_step
from groklab.cli import main
from groklab.report.analysis_plots import draw_analysis
from groklab.store import load_run
from groklab.train import run


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("an") / "run"
    cfg = presets.demo(out=str(out), steps=300).replace(
        **{"task.p": 23, "model.width": 64, "train.threads": 1, "train.eval_points": 30, "train.checkpoint_points": 6,
           "optim.lr": 3e-3})
    run(cfg)
    return out


@pytest.mark.integration
def test_run_analysis_writes_every_table_and_figure(small_run):
    s = run_analysis(small_run, ["all"], sharpness_checkpoints=2, sharpness_iters=5)
    a = small_run / "analysis"
    assert not list(a.glob("*.png"))  # analyses compute tables; the caller draws
    figs = draw_analysis(small_run, s)
    assert sorted(f.name for f in figs) == sorted(f for f in s["files"] if f.endswith(".png"))
    assert json.loads((a / "summary.json").read_text())["files"] == s["files"]
    for name in ("grokking", "fourier", "fourier_steps", "neurons", "ipr", "pruning", "progress", "representations", "sharpness"):
        assert (a / f"{name}.csv").is_file(), name
    for name in ("grokking", "fourier", "ipr_hist", "ipr_evolution", "neuron_freqs", "pruning", "progress", "representations", "sharpness"):
        assert (a / f"{name}.png").stat().st_size > 1000, name
    assert json.loads((a / "summary.json").read_text())["key_frequencies"] == s["key_frequencies"]
    r = load_run(small_run)
    g = pd.read_csv(a / "grokking.csv").iloc[0]
    assert g["train_step"] == crossing_step(r.rows, "train_acc")
    prog = pd.read_csv(a / "progress.csv")
    assert list(prog["step"]) == r.checkpoint_steps
    # the progress table's full losses are the run's own logged losses at the checkpoint steps
    logged = {row["step"]: row for row in r.rows}
    last = prog.iloc[-1]
    assert last["train_loss"] == pytest.approx(logged[int(last["step"])]["train_loss"], rel=1e-4)
    assert last["val_loss"] == pytest.approx(logged[int(last["step"])]["val_loss"], rel=1e-4)
    ipr = pd.read_csv(a / "ipr.csv")
    assert len(ipr) == 64 * len(r.checkpoint_steps) and ipr["ipr"].between(0, 1).all()
    pr = pd.read_csv(a / "pruning.csv")
    k0 = pr[(pr["order"] == "low") & (pr["k"] == 0)].iloc[0]
    assert k0["val_acc"] == pytest.approx(logged[r.checkpoint_steps[-1]]["val_acc"])
    assert not list(a.glob(".*tmp*"))  # no temporary files left behind


@pytest.mark.integration
def test_cli_analyze_subset_and_errors(small_run, capsys):
    main(["analyze", str(small_run), "--what", "grokking", "fourier", "--quiet"])
    assert capsys.readouterr().out == ""
    with pytest.raises(AnalysisError, match="what='bogus'"):
        run_analysis(small_run, ["bogus"])
    with pytest.raises(SystemExit):
        main(["analyze", str(small_run / "missing")])
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.integration
def test_transformer_run_neurons_from_activations_and_sharpness(tmp_path):
    cfg = presets.nanda2023(p=13, train_frac=0.5, steps=40, out=str(tmp_path / "tf")).replace(
        **{"model.d_model": 16, "model.n_heads": 2, "model.d_mlp": 24, "train.threads": 1, "train.checkpoint_points": 3,
           "train.eval_points": 5})
    run(cfg)
    s = run_analysis(tmp_path / "tf", ["ipr", "progress", "sharpness"], sharpness_checkpoints=1, sharpness_iters=3, figures=False)
    assert s["ipr"]["source"].startswith("activations")
    ipr = pd.read_csv(tmp_path / "tf" / "analysis" / "ipr.csv")
    assert len(ipr) == 24 * len(load_run(tmp_path / "tf").checkpoint_steps)
    # p = 13 has six frequencies: IPR in [1/6, 1], or 0 with frequency 0 for a dead ReLU neuron
    dead = ipr["ipr"] == 0
    assert ipr.loc[~dead, "ipr"].between(1 / 6 - 1e-9, 1).all()
    assert (ipr.loc[dead, "freq"] == 0).all() and (ipr.loc[~dead, "freq"] >= 1).all()
    assert s["sharpness"][0]["top_eigenvalue"] > 0
    assert not list((tmp_path / "tf" / "analysis").glob("*.png"))


@pytest.mark.integration
def test_grokking_over_runs_reads_each_runs_crossings(small_run):
    rows, summ = grokking_over_runs([small_run, small_run])
    step = crossing_step(load_run(small_run).rows, "train_acc")
    assert [r["train_step"] for r in rows] == [step, step]
    assert summ["train_step"]["median"] == step and summ["train_step"]["n"] == 2


def test_steps_registry_gives_the_cli_its_choices():
    """Each analysis is one named step; the catalog (torch-free) and the steps name the same analyses in the
    same order, `--what` offers exactly those, and run_analysis refuses to draw."""
    import typing

    from groklab.analysis.driver import FRONTIER, STEPS, WHAT
    from groklab.catalog import ANALYSES
    from groklab.cli import AnalysisName

    assert list(STEPS) == list(ANALYSES) == [*WHAT, *FRONTIER]
    assert set(FRONTIER) == {"ntk", "htsr", "llc", "tree"}
    assert typing.get_args(AnalysisName) == ("all", *ANALYSES)
    assert {n for n, s in STEPS.items() if s.modular} == {"fourier", "ipr", "pruning", "progress"}
    with pytest.raises(AnalysisError, match="figures=True"):
        run_analysis("unused", ["grokking"], figures=True)
