"""Paper presets (`groklab reproduce`): the recipes' machinery at `smoke` scale (seconds, default tier),
and each preset's `quick` scale with its qualitative checks and its report in headless Chromium
(`-m presets`, the slow tier CI runs separately)."""

import json
import re

import pytest
from conftest import render_in_chromium

from groklab.cli import main
from groklab.presets.recipes import RECIPES, reproduce
from groklab.report.html import build_report

BUILT = sorted(RECIPES)


@pytest.mark.integration
@pytest.mark.parametrize("name", BUILT)
def test_recipe_smoke_writes_a_preset_directory_and_report(tmp_path, name):
    d = reproduce(name, "smoke", tmp_path / name, log=None)
    meta = json.loads((d / "preset.json").read_text())
    checks = json.loads((d / "checks.json").read_text())
    assert meta["preset"] == name and meta["scale"] == "smoke" and meta["checks"] == checks
    assert meta["environment"]["load_average_1min"] >= 0  # beside the wall time (benchmarks/presets_table.py shows it)
    assert checks and all(set(c) == {"passed", "detail"} for c in checks.values())
    assert meta["figures"] and all((d / f["file"]).is_file() and f["question"] for f in meta["figures"])
    assert all((d / t["file"]).is_file() for t in meta["tables"])
    assert "Paper's setup" in meta["doc"] and "quick" in meta["doc"] and "wall time" in meta["doc"].lower()
    page = (d / "report" / "index.html").read_text()
    assert "checks are not expected to pass" in " ".join(page.split())  # a smoke page says so
    assert not re.search(r'(src|href)="(?!data:)', page) and "<script" not in page
    assert page.count('src="data:image/png;base64,') == len(meta["figures"])
    for check in checks:
        assert check in page
    # re-running reuses the finished runs instead of training again
    again = reproduce(name, "smoke", tmp_path / name, log=None, report=False)
    assert json.loads((again / "checks.json").read_text()) == checks


def test_reproduce_refuses_unknown_preset_scale_and_foreign_directory(tmp_path):
    from groklab.errors import ConfigError

    with pytest.raises(ConfigError, match="not known"):
        reproduce("nope", "quick", tmp_path / "a", log=None)
    with pytest.raises(ConfigError, match="scale"):
        reproduce(BUILT[0], "huge", tmp_path / "a", log=None)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a preset directory"):
        reproduce(BUILT[0], "smoke", tmp_path / "b", log=None)


@pytest.mark.integration
def test_cli_reproduce_smoke(tmp_path):
    main(["reproduce", "prieto2025", "--scale", "smoke", "--out", str(tmp_path / "p"), "--quiet"])
    assert (tmp_path / "p" / "report" / "index.html").is_file()
    assert build_report(tmp_path / "p") == tmp_path / "p" / "report" / "index.html"


@pytest.mark.presets
@pytest.mark.parametrize("name", BUILT)
def test_preset_quick_shows_the_papers_result(tmp_path, name):
    d = reproduce(name, "quick", tmp_path / name, log=print)
    checks = json.loads((d / "checks.json").read_text())
    meta = json.loads((d / "preset.json").read_text())
    failed = {k: c["detail"] for k, c in checks.items() if not c["passed"]}
    assert not failed, failed
    errors, loaded, text = render_in_chromium(build_report(d), tmp_path / f"{name}.png")
    assert errors == []
    assert loaded and all(loaded) and len(loaded) == len(meta["figures"])
    assert f"checks passed {len(checks)}/{len(checks)}" in text
    for c in checks.values():
        assert " ".join(c["detail"].split()).lower() in text
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_cli_offers_every_recipe():
    import typing

    from groklab import cli

    assert set(typing.get_args(cli.PresetName)) == set(RECIPES) >= {
        "power2022", "nanda2023", "liu2022", "omnigrok2023", "doshi2023", "parity2022", "grokfast2024", "prieto2025"}


def test_full_scale_stops_only_where_the_figures_need_just_the_crossing(tmp_path):
    """Power's and Grokfast's full runs stop once validation accuracy has held 99% (Liu's: 90%) for a patience,
    Nanda's 10 000 steps after it; recipes whose figures need the whole trajectory train their budget."""
    from groklab.presets.recipes import doshi2023, grokfast2024, liu2022, nanda2023, omnigrok2023, parity2022, power2022, prieto2025
    from groklab.presets.recipes.base import Context

    full = Context(tmp_path, "full", lambda s: None)
    stopping = {"power2022": power2022.transformer(full), "grokfast2024": grokfast2024.base_config(full), "liu2022": liu2022.base_config(full)}
    for name, cfg in stopping.items():
        assert cfg.train.stop_when in ("val_acc>=0.99", "val_acc>=0.9") and cfg.train.stop_patience >= 1000, name
        assert cfg.train.stop_patience <= cfg.train.steps // 10, name
    # Nanda's figures need cleanup after the crossing (it ends a few thousand steps later): a longer patience
    nanda = nanda2023.config(full)
    assert nanda.train.stop_when == "val_acc>=0.99" and nanda.train.stop_patience >= 10_000 and nanda.train.steps == 40_000
    whole = {"omnigrok2023": omnigrok2023.base_config(full), "parity2022": parity2022.base_config(full),
             "prieto2025": prieto2025.base_config(full)}
    for name, cfg in whole.items():
        assert cfg.train.stop_when is None, name
    for scale in ("quick", "smoke"):
        ctx = Context(tmp_path, scale, lambda s: None)
        assert power2022.transformer(ctx).train.stop_when is None and liu2022.base_config(ctx).train.stop_when is None
    assert "no early stop" in doshi2023.RECIPE.doc


def test_config_changes_name_the_fields_device_included():
    from groklab import presets
    from groklab.presets.recipes.base import config_changes

    cfg = presets.demo(out="a")
    assert config_changes(cfg.to_dict(), cfg.replace(**{"out": "b", "train.threads": 1}).to_dict()) == []
    changes = config_changes(cfg.to_dict(), cfg.replace(**{"train.device": "cuda", "optim.lr": 0.01}).to_dict())
    assert changes == ['optim.lr 0.001 → 0.01', 'train.device "cpu" → "cuda"']
    old = cfg.to_dict()
    del old["train"]["stop_when"]  # a config.json written before the field existed: its default is no change
    assert config_changes(old, cfg.to_dict()) == []


def test_sweep_changes_name_the_fields(tmp_path):
    from groklab import presets
    from groklab.presets.recipes.base import _sweep_changes
    from groklab.sweep.spec import DEFAULT_SEED_FIELDS, SweepSpec

    base = presets.demo(out=None, steps=10)
    (tmp_path / "sweep.json").write_text(json.dumps(SweepSpec.build(base, {"optim.weight_decay": [0.0, 1.0]}, 1).to_dict()))
    assert _sweep_changes(tmp_path, base, {"optim.weight_decay": [0.0, 1.0]}, 1, DEFAULT_SEED_FIELDS) == []
    moved = _sweep_changes(tmp_path, base.replace(**{"train.device": "cuda"}), {"optim.weight_decay": [0.0, 1.0]}, 1, DEFAULT_SEED_FIELDS)
    assert moved == ['train.device "cpu" → "cuda"']
    grid = _sweep_changes(tmp_path, base, {"optim.weight_decay": [0.0, 3.0]}, 1, DEFAULT_SEED_FIELDS)
    assert len(grid) == 1 and grid[0].startswith("grid ")


@pytest.mark.integration
def test_reproduce_refuses_a_changed_run_and_reruns_it_when_asked(tmp_path):
    """An existing run trained with another config is never reported as this one: a one-line error naming the
    fields, or with rerun the old run moves to OUT/replaced/ (nothing deleted) and trains again."""
    from groklab import presets
    from groklab.errors import ConfigError
    from groklab.presets.recipes.base import Context

    cfg = presets.demo(out=None, steps=20).replace(**{"task.p": 11, "model.width": 16, "train.eval_points": 4, "train.checkpoint_points": 1})
    Context(tmp_path, "smoke", lambda s: None).run(cfg, "a")
    again = Context(tmp_path, "smoke", lambda s: None).run(cfg, "a")  # unchanged: reused
    assert again.summary is not None and not (tmp_path / "replaced").exists()
    changed = cfg.replace(**{"optim.lr": 2e-3})
    with pytest.raises(ConfigError, match=r"optim.lr 0.001 → 0.002.*--rerun"):
        Context(tmp_path, "smoke", lambda s: None).run(changed, "a")
    r = Context(tmp_path, "smoke", lambda s: None, rerun=True).run(changed, "a")
    assert r.config.optim.lr == 2e-3
    old = list((tmp_path / "replaced").glob("*/runs/a/config.json"))
    assert len(old) == 1 and json.loads(old[0].read_text())["optim"]["lr"] == 1e-3
