"""The benchmark scripts: benchmarks/gpu.py (the one short device run, here on a CPU at toy size so that it cannot
fail on a bug), benchmarks/presets_table.py and benchmarks/fullscale.py power-curve."""

import ast
import importlib.util
import json
from pathlib import Path

import pytest

from groklab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_grid_sizes():
    gpu = load("gpu")
    g = gpu.grid(1000)
    assert len(g["optim.lr"]) * len(g["optim.weight_decay"]) == 1000
    assert g["optim.weight_decay"][0] == 0.0 and min(g["optim.lr"]) == 1e-4 and max(g["optim.lr"]) == 0.1


@pytest.mark.integration
def test_gpu_script_on_cpu(tmp_path):
    gpu = load("gpu")
    pd = gpu.phase_diagram(tmp_path, "cpu", 4, 30)
    assert pd["runs"] == 4 and pd["executor"] == "batched" and pd["per_run_fallbacks"] == 0
    rate = gpu.power_rate(tmp_path, "cpu", 3, warmup=1)
    assert rate["steps_per_s"] > 0
    summary = json.loads((tmp_path / "power" / "summary.json").read_text())
    assert summary["steps"] == 4


def test_presets_table_is_generated_from_preset_json(tmp_path):
    """benchmarks/presets_table.py: one row per preset in the registry's order, checks counted, each check's
    detail and the load average shown; the last directory found of a preset wins."""
    table = load("presets_table")
    for sub, name, passed in (("a", "power2022", True), ("b", "nanda2023", False), ("c", "power2022", False)):
        d = tmp_path / sub / name
        d.mkdir(parents=True)
        meta = {"preset": name, "scale": "quick", "wall_time_s": 90.0, "environment": {"load_average_1min": 1.5},
                "checks": {"grokking gap": {"passed": passed, "detail": "train 99% at 10 | val 99% at 100"}}}
        (d / "preset.json").write_text(json.dumps(meta))
    md = table.markdown(table.rows([tmp_path])).splitlines()
    assert len(md) == 4 and md[2].startswith("| `nanda2023` | quick | 1.5 min (load 1.5) | 0/1 |")
    assert md[3].startswith("| `power2022` |") and "0/1" in md[3]  # c (the last found) replaced a
    assert "**grokking gap** ✗: train 99% at 10 / val 99% at 100" in md[2]


@pytest.mark.integration
def test_fullscale_power_curve_runs_the_sweep_and_reports_crossings(tmp_path, monkeypatch):
    """benchmarks/fullscale.py power-curve on a toy stand-in for power2022's full transformer: 7 fractions ×
    3 seeds as one sweep, the crossing steps per fraction, the steps trained."""
    from groklab import presets
    from groklab.presets.recipes import power2022

    monkeypatch.setattr(power2022, "transformer", lambda ctx: presets.power2022(op="x+y", p=23, steps=20, train_frac=0.2).replace(
        **{"model.d_model": 16, "model.d_mlp": 64, "train.eval_points": 4, "train.checkpoint_points": 1, "train.stop_when": "val_acc>=0.99"}))
    fs = load("fullscale")
    wall, found = fs.power_curve(tmp_path / "pc", True, 1)
    assert wall > 0 and len(found) == 7 and all(len(ast.literal_eval(c["detail"])) == 3 for c in found.values())
    assert fs.steps_of(tmp_path / "pc") == (7 * 3 * 20, 7 * 3 * 20)
    times = fs.run_times(tmp_path / "pc")
    assert len(times) == 21 and all(t > 0 for t in times)
    # the pool's schedule: each run to the first free worker, in order
    assert fs.list_schedule([3.0, 1.0, 1.0, 1.0], 2) == 3.0 and fs.list_schedule([1.0, 1.0, 3.0], 2) == 4.0
    assert fs.list_schedule(times, 1) == pytest.approx(sum(times))
    # stopping at the first crossing: a run that crossed at step 5 of 20 trained costs a quarter of its time
    walls = []
    for i, f in enumerate(sorted((tmp_path / "pc").glob("runs/*/summary.json"))):
        s = json.loads(f.read_text())
        f.write_text(json.dumps({**s, "val_acc_99_step": 5 if i == 0 else None, "stopped_step": None}))
        walls.append(s["wall_time_s"])
    first = fs.run_times(tmp_path / "pc", at_crossing=True)
    assert sum(first) == pytest.approx(sum(times) - 0.75 * walls[0]) and min(first) > 0
    _, part = fs.power_curve(tmp_path / "part", True, 1, [0.5])  # a curve measured in parts
    assert list(part) == ["val 99% at fraction 0.5"] and len(fs.run_times(tmp_path / "part")) == 3
    # the preset changed since: refused in one line, or with rerun set aside whole and trained again
    base = power2022.transformer
    monkeypatch.setattr(power2022, "transformer", lambda ctx: base(ctx).replace(**{"optim.lr": 2e-3}))
    with pytest.raises(ConfigError, match="already holds a different sweep"):
        fs.power_curve(tmp_path / "part", True, 1, [0.5])
    fs.power_curve(tmp_path / "part", True, 1, [0.5], rerun=True)
    assert len(list((tmp_path / "replaced").glob("*/part/runs/*/summary.json"))) == 3 and len(fs.run_times(tmp_path / "part")) == 3


def test_fullscale_steps_leave_out_runs_set_aside(tmp_path):
    """`--rerun` moves a preset's old runs under replaced/ (and a restart under restarted-*/): they are not this
    measurement's steps."""
    fs = load("fullscale")
    for rel, stopped in (("sweeps/a/runs/1", 40), ("sweeps/a/runs/2", None), ("replaced/20261207-000000/sweeps/a/runs/1", 100),
                         ("sweeps/a/runs/3/restarted-20261207-000000", 100)):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "summary.json").write_text(json.dumps({"steps": 100, "stopped_step": stopped}))
    assert fs.steps_of(tmp_path) == (140, 200)


def test_fullscale_curve_from_parts(tmp_path, monkeypatch):
    """`power-curve --parts`: the whole curve gathered from parts trained in several sittings, each point found
    by its current config's run id, so runs set aside or trained under another config never count."""
    from groklab import presets
    from groklab.presets.recipes import power2022
    from groklab.sweep.spec import SweepSpec

    monkeypatch.setattr(power2022, "transformer", lambda ctx: presets.power2022(op="x+y", p=23, steps=100, train_frac=0.2).replace(
        **{"model.d_model": 16, "model.d_mlp": 64, "train.stop_when": "val_acc>=0.99"}))
    fs = load("fullscale")
    pts = {(o["task.train_frac"], o["train.seed"]): rid for rid, o, _ in
           SweepSpec.build(fs.curve_config(), {"task.train_frac": fs.FRACTIONS}, 3).points()}

    def put(part: str, rid: str, **s):
        (tmp_path / part / "runs" / rid).mkdir(parents=True, exist_ok=True)
        if s:
            (tmp_path / part / "runs" / rid / "summary.json").write_text(json.dumps({"steps": 100, **s}))

    put("power-curve-0.2", pts[(0.2, 0)], wall_time_s=36000.0, stopped_step=None, val_acc_99_step=None)  # censored
    put("power-curve-0.2", pts[(0.2, 1)], wall_time_s=14400.0, stopped_step=50, val_acc_99_step=25)
    put("power-curve-0.2", pts[(0.2, 2)])  # started, not finished
    put("power-curve-0.5-0.6", pts[(0.5, 0)], wall_time_s=7200.0, stopped_step=20, val_acc_99_step=10)
    put("replaced/20261207-000000/power-curve-0.7", pts[(0.7, 0)], wall_time_s=9.0, stopped_step=9, val_acc_99_step=4)
    put("power-curve-0.8", "0123456789ab", wall_time_s=9.0, stopped_step=9, val_acc_99_step=4)  # an older config's run
    lines = fs.curve_from_parts(tmp_path)
    assert lines[0] == "  val 99% at fraction 0.2 (seeds 0, 1, 2): censored (not within 100), 25, unfinished"
    assert lines[3] == "  val 99% at fraction 0.5 (seeds 0, 1, 2): 10, not trained, not trained"
    assert lines[5] == lines[6].replace("0.8", "0.7") == "  val 99% at fraction 0.7 (seeds 0, 1, 2): not trained, not trained, not trained"
    total = lines[-1]
    assert total.startswith("  3 of 21 runs finished (from 3 part(s)")  # replaced/ is not a part
    # 10 + 4 + 2 = 16 h in all; 2 workers in order: 10 | 4 + 2 -> 10 h; at the first crossing 10 + 2 + 1 = 13 h
    # (10 | 3 -> 10 h); without early stop 10 + 8 + 10 = 28 h (10 | 18 -> 18 h); 170 of 300 steps
    assert ("16.00 h of one-thread training, 10.00 h on 2 workers in the curve's order; stopping at each run's first "
            "crossing 13.00 h / 10.00 h; without early stop ≈ 28.00 h / 18.00 h (estimate)") in total
    assert total.endswith("170 of 300 budgeted steps trained")


def test_fullscale_sums_the_time_of_every_call_into_a_preset_directory(tmp_path, monkeypatch):
    """A second call into a finished preset directory reuses its runs in seconds and rewrites preset.json with
    that call's time; the measured time stays the sum of every call's (kept in fullscale.json)."""
    import groklab.presets.recipes as recipes

    def fake_reproduce(name, scale, out, **kw):
        out.mkdir(parents=True, exist_ok=True)
        (out / "preset.json").write_text(json.dumps({"preset": name, "wall_time_s": 5.0}))
        (out / "checks.json").write_text(json.dumps({"c": {"passed": True, "detail": ""}}))
        return out

    monkeypatch.setattr(recipes, "reproduce", fake_reproduce)
    fs = load("fullscale")
    d = tmp_path / "liu2022"
    assert fs.measure("liu2022", d, True, 1)[0] == 5.0
    assert fs.measure("liu2022", d, True, 1)[0] == 10.0 and fs.measure("liu2022", d, True, 1)[0] == 15.0
    assert fs.measure("liu2022", d, True, 1, rerun=True)[0] == 5.0  # runs set aside and trained again
    old = tmp_path / "old"  # a directory measured before fullscale.json: its preset.json's time counts
    old.mkdir()
    (old / "preset.json").write_text(json.dumps({"wall_time_s": 100.0}))
    assert fs.measure("liu2022", old, True, 1)[0] == 105.0 and fs.measure("liu2022", old, True, 1)[0] == 110.0


def test_fullscale_parts_goes_with_the_power_curve_alone(monkeypatch, capsys):
    fs = load("fullscale")
    monkeypatch.setattr("sys.argv", ["fullscale.py", "liu2022", "--parts"])
    with pytest.raises(SystemExit) as e:
        fs.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--parts prints the power curve only: presets=['liu2022'] is not allowed" in err
    assert "Traceback" not in err
