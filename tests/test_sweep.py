"""Sweeps: spec and grid expansion, stable names, resume, a killed worker, the Ray executor, the table."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import tiny_mlp

from groklab import RunConfig, load_run, run
from groklab.errors import ConfigError
from groklab.sweep import SweepSpec, choose_executor, parse_values, run_id, sweep, sweep_table
from groklab.sweep.layout import SweepDir


def tiny(**over) -> RunConfig:
    return tiny_mlp(**{"task.p": 13, "model.width": 16, "optim.weight_decay": 0.3, "optim.lr": 3e-3, "train.steps": 40,
                       "train.eval_points": 8, "train.checkpoint_points": 3, **over})


# --- the spec -------------------------------------------------------------------------------------------
def test_values_ranges_and_lists():
    assert parse_values("0.2:0.8:7") == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert parse_values("1e-4:1e-1:4:log") == [1e-4, 1e-3, 1e-2, 1e-1]
    assert parse_values("0,0.1,1") == [0, 0.1, 1]
    assert parse_values("x+y,x-y") == ["x+y", "x-y"]
    assert parse_values("true,none") == [True, None]
    assert parse_values("[1, 2.5]") == [1, 2.5]
    assert parse_values("5:5:1") == [5.0]
    with pytest.raises(ConfigError, match="positive ends"):
        parse_values("0:1:3:log")
    with pytest.raises(ConfigError, match="positive integer"):
        parse_values("0:1:2.5")


def test_grid_expansion_crosses_axes_and_seeds():
    spec = SweepSpec.build(tiny(), ["task.train_frac=0.3:0.7:3", "optim.weight_decay=0,1"], seeds=2)
    pts = spec.points()
    assert len(pts) == 3 * 2 * 2
    combos = {(c.task.train_frac, c.optim.weight_decay, c.train.seed, c.task.seed) for _, _, c in pts}
    assert combos == {(f, w, s, s) for f in (0.3, 0.5, 0.7) for w in (0.0, 1.0) for s in (0, 1)}
    assert all(c.train.threads == 1 for _, _, c in pts)  # single-threaded runs unless the base says otherwise
    assert len({rid for rid, _, _ in pts}) == len(pts)
    # random axes are drawn once, reproducibly
    r1 = SweepSpec.build(tiny(), random={"optim.lr": "1e-4:1e-2:log"}, samples=4, random_seed=3).points()
    r2 = SweepSpec.build(tiny(), random={"optim.lr": "1e-4:1e-2:log"}, samples=4, random_seed=3).points()
    assert [p[0] for p in r1] == [p[0] for p in r2] and len(r1) == 4
    assert all(1e-4 <= c.optim.lr <= 1e-2 for _, _, c in r1)
    # sweep.json round-trips to the same points
    back = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert [p[0] for p in back.points()] == [p[0] for p in pts]


def test_bad_points_fail_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"task\.train_frac=1\.2"):
        sweep(tiny(), {"task.train_frac": [0.5, 1.2]}, out=tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="unknown config field 'optim.wd'"):
        sweep(tiny(), {"optim.wd": [0, 1]}, out=tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="same config"):
        SweepSpec.build(tiny(), {"optim.weight_decay": [1, 1.0]})
    assert not (tmp_path / "s").exists()


# --- names ----------------------------------------------------------------------------------------------
@pytest.mark.integration  # spawns a process (another hash seed)
def test_stable_names():
    a = tiny().replace(**{"optim.lr": 0.01})
    b = RunConfig.from_json(a.replace(out="/somewhere/else").to_json())
    assert run_id(a) == run_id(b)  # the same config, wherever it is written
    assert run_id(a) != run_id(a.replace(**{"optim.lr": 0.02}))
    # fixed forever: a name changes only if the config does (this guards the hashing itself)
    assert run_id(RunConfig()) == "44136fa355b3"  # sha256 of "{}": nothing differs from the defaults
    assert run_id(RunConfig().replace(**{"optim.lr": 0.01, "task.p": 113})) == "c3874cd810ba"
    code = "from groklab import RunConfig; from groklab.sweep import run_id; print(run_id(RunConfig().replace(**{'optim.lr': 0.01})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "123"}, check=True)
    assert out.stdout.strip() == run_id(RunConfig().replace(**{"optim.lr": 0.01}))


def test_auto_executor_choice():
    small = [tiny(**{"train.seed": s}) for s in range(4)]
    assert choose_executor(small, 2)[0] == "batched"
    trans = [RunConfig().replace(**{"task.p": 13, "train.batch_size": 16, "train.seed": s}) for s in range(2)]
    assert choose_executor(trans, 2)[0] == "batched"  # small transformers stack (benchmarks/sweep.py)
    power = [RunConfig().replace(**{"train.batch_size": 512, "train.seed": s}) for s in range(2)]
    name, why = choose_executor(power, 2)
    assert name == "local" and "too large" in why  # the Power setup: unmeasured, one per process
    assert choose_executor([c.replace(**{"model.dropout": 0.1}) for c in small], 2) == ("local", "per-process: model.dropout=0.1 (dropout masks are drawn from each run's global generator inside the forward pass)")
    big = [tiny(**{"task.p": 97, "model.width": 2048, "train.seed": s}) for s in range(2)]
    assert choose_executor(big, 2)[0] == "local"


# --- running, resuming --------------------------------------------------------------------------------
@pytest.mark.integration
def test_local_sweep_resume_skips_finished(tmp_path):
    out = tmp_path / "s"
    res = sweep(tiny(), {"task.train_frac": [0.4, 0.6]}, seeds=1, out=out, executor="local", workers=2, progress=False)
    assert res.complete and res.counts() == {"done": 2}
    sd = SweepDir(out)
    ids = [rid for rid, _, _ in sd.read_spec().points()]
    for rid in ids:  # ordinary run directories
        r = load_run(sd.run_dir(rid))
        assert r.finished and r.config.task.train_frac in (0.4, 0.6)
        assert sd.read_record(rid)["status"] == "done"
    before = {rid: (sd.run_dir(rid) / "summary.json").stat().st_mtime_ns for rid in ids}
    with pytest.raises(ConfigError, match="--resume"):
        sweep(tiny(), {"task.train_frac": [0.4, 0.6]}, out=out, progress=False)
    with pytest.raises(ConfigError, match="different sweep"):
        sweep(tiny(), {"task.train_frac": [0.4, 0.7]}, out=out, resume=True, progress=False)
    res = sweep(out=out, resume=True, executor="local", progress=False)
    assert res.counts() == {"skipped": 2}
    assert before == {rid: (sd.run_dir(rid) / "summary.json").stat().st_mtime_ns for rid in ids}
    df = sweep_table(out)
    assert list(df["id"]) == ids and list(df["status"]) == ["done", "done"]
    assert list(df.columns[2:3]) == ["task.train_frac"]
    assert {"train_acc_99_step", "val_acc_99_step", "final.val_acc", "wall_time_s"} <= set(df.columns)
    assert (out / "table.csv").is_file()
    # the report layer draws the sweep's figures from its runs and puts them on the page
    from groklab.report.html import build_report

    page = build_report(out).read_text()
    assert (out / "figures" / "steps_vs_task.train_frac.png").stat().st_size > 5000
    assert page.count('src="data:image/png;base64,') == 1


FAULT_SCRIPT = """
import sys
from groklab import RunConfig
from groklab.sweep import sweep
base = RunConfig.from_json(open(sys.argv[1]).read())
res = sweep(base, {"train.steps": [100, 2000]}, seeds=2, out=sys.argv[2], executor="local", workers=2, retries=0, progress=False)
sys.exit(0 if res.complete else 1)
"""


@pytest.mark.integration
def test_killed_worker_rerun_finishes_every_point_once(tmp_path):
    base = tiny(**{"train.resume_every_s": 0.05, "train.eval_points": 30, "train.checkpoint_points": 5})
    (tmp_path / "base.json").write_text(base.to_json())
    (tmp_path / "go.py").write_text(FAULT_SCRIPT)
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "go.py"), str(tmp_path / "base.json"), str(out)])
    sd = SweepDir(out)
    victim = None
    deadline = time.monotonic() + 90
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if not sd.exists():
            continue
        pts = sd.read_spec().points()
        done = [rid for rid, _, _ in pts if sd.is_done(rid)]
        for rid, _, cfg in pts:
            resume_file = sd.run_dir(rid) / "checkpoints" / "resume.safetensors"
            rec = sd.read_record(rid) or {}
            if done and cfg.train.steps == 2000 and resume_file.exists() and not sd.is_done(rid) and rec.get("status") == "running":
                rows = load_run(sd.run_dir(rid)).rows
                if rows and rows[-1]["step"] > 50:
                    victim = (rid, rec["pid"])
                    break
    assert victim is not None, "no run was caught mid-training"
    os.kill(victim[1], signal.SIGKILL)
    assert proc.wait(timeout=120) == 1  # the sweep reports the killed run as not finished
    pts = sd.read_spec().points()
    assert not sd.is_done(victim[0]) and sd.read_record(victim[0])["status"] == "failed"
    finished = {rid: (sd.run_dir(rid) / "summary.json").read_bytes() for rid, _, _ in pts if sd.is_done(rid)}
    assert len(finished) == 3

    res = sweep(out=out, resume=True, executor="local", workers=2, progress=False)
    assert res.outcomes[victim[0]] == "done" and res.complete
    for rid, data in finished.items():  # finished work untouched, never re-run
        assert (sd.run_dir(rid) / "summary.json").read_bytes() == data and res.outcomes[rid] == "skipped"
    rec = sd.read_record(victim[0])
    assert rec["attempts"] == 2 and rec["resumed"] is True
    # the resumed run is the run that never stopped
    resumed = load_run(sd.run_dir(victim[0]))
    cfg = next(c for r, _, c in pts if r == victim[0])
    whole = run(cfg)
    steps = [r["step"] for r in resumed.rows]
    assert steps == sorted(set(steps)) == [r["step"] for r in whole.rows]
    for a, b in zip(resumed.rows, whole.rows):
        assert {k: v for k, v in a.items() if k != "elapsed_s"} == {k: v for k, v in b.items() if k != "elapsed_s"}


# --- Ray ----------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_ray_executor_local_instance_retries_a_killed_worker(tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra: pip install 'groklab[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        base = tiny(**{"train.resume_every_s": 0.05, "train.eval_points": 30})
        out = tmp_path / "s"
        result = {}
        t = threading.Thread(target=lambda: result.update(res=sweep(base, {"train.steps": [100, 2000]}, out=out, executor="ray", retries=2, progress=False)))
        t.start()
        sd = SweepDir(out)
        killed = None
        deadline = time.monotonic() + 90
        while killed is None and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.05)
            if not sd.exists():
                continue
            for rid, _, cfg in sd.read_spec().points():
                rec = sd.read_record(rid) or {}
                if cfg.train.steps == 2000 and rec.get("status") == "running" and (sd.run_dir(rid) / "checkpoints" / "resume.safetensors").exists():
                    os.kill(rec["pid"], signal.SIGKILL)  # a Ray worker dies mid-run
                    killed = rid
                    break
        t.join(timeout=120)
        assert killed is not None, "no Ray task was caught mid-training"
        res = result["res"]
        assert res.complete and res.counts() == {"done": 2}, res.outcomes
        rec = sd.read_record(killed)
        assert rec["executor"] == "ray" and rec["attempts"] == 2 and rec["resumed"] is True
        assert load_run(sd.run_dir(killed)).rows[-1]["step"] == 2000
    finally:
        ray.shutdown()


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, installed or not
    from groklab.errors import GroklabError
    from groklab.sweep.ray_exec import import_ray

    with pytest.raises(GroklabError, match=r"groklab\[ray\]"):
        import_ray()


def test_sweep_plots_draw_a_table(tmp_path):
    import pandas as pd

    from groklab.report.sweep_plots import plot_phase_diagram, plot_steps_vs_field

    rows = [
        {"status": "done", "task.train_frac": f, "optim.weight_decay": w, "train.seed": s, "steps": 1000,
         "train_acc_99_step": 50 + s, "val_acc_99_step": None if f < 0.4 else int(900 * (1 - f)) + s}
        for f in (0.3, 0.5, 0.7) for w in (0.0, 1.0) for s in (0, 1)
    ]
    df = pd.DataFrame(rows)
    a = plot_phase_diagram(df, "task.train_frac", "optim.weight_decay", tmp_path / "phase.png")
    b = plot_steps_vs_field(df, "task.train_frac", tmp_path / "steps.png")
    assert a.stat().st_size > 5000 and b.stat().st_size > 5000
    with pytest.raises(KeyError):
        plot_phase_diagram(df, "task.train_frac", "no.such.field", tmp_path / "x.png")


@pytest.mark.integration
def test_workers_are_reused_across_sweeps(tmp_path):
    """A second sweep in the same process runs on the first one's workers (no new torch import)."""
    from groklab.sweep import pool

    pool.shutdown()
    a = sweep(tiny(), {"task.train_frac": [0.4, 0.6]}, out=tmp_path / "a", executor="local", workers=2, progress=False)
    b = sweep(tiny(), {"task.train_frac": [0.5]}, seeds=2, out=tmp_path / "b", executor="local", workers=2, progress=False)
    assert a.complete and b.complete
    pids = {name: {SweepDir(tmp_path / name).read_record(r)["pid"] for r in res.outcomes} for name, res in (("a", a), ("b", b))}
    assert pids["b"] <= pids["a"]
    assert len(pool._IDLE) == 2 and all(w.alive() for w in pool._IDLE)
    pool.shutdown()
    assert pool._IDLE == []


def test_ray_start_failure_is_one_line(monkeypatch):
    """ray.init raising (a node that times out) becomes one GroklabError line, not a traceback."""
    import types

    from groklab.errors import GroklabError
    from groklab.sweep import ray_exec

    def init(**kwargs):
        raise TimeoutError("Timed out after 30 seconds waiting for node to startup.\nDid you mean ...\n  more")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setattr(ray_exec, "import_ray", lambda: fake)
    with pytest.raises(GroklabError) as e:
        ray_exec.run_ray("/nonexistent", [("x", {})])
    msg = str(e.value)
    assert "\n" not in msg and "TimeoutError: Timed out after 30 seconds" in msg and "--executor local" in msg


@pytest.mark.integration
def test_a_run_another_process_trains_is_busy_not_failed(tmp_path):
    """Two sweeps on one directory share its runs through the runs' locks: a run the other process holds is
    reported busy, and its record (the other process's) is left alone, not marked failed."""
    out = tmp_path / "s"
    res = sweep(tiny(), {"task.train_frac": [0.4, 0.6]}, seeds=1, out=out, executor="local", workers=1, progress=False)
    sd = SweepDir(out)
    ids = [rid for rid, _, _ in sd.read_spec().points()]
    held = ids[1]
    shutil.rmtree(sd.run_dir(held))  # as if the other process had just started it
    sd.write_record(held, status="running", pid=12345)
    with sd.lock(held) as mine:  # this test plays the other process
        assert mine
        res = sweep(out=out, resume=True, executor="local", workers=1, progress=False)
    assert res.outcomes == {ids[0]: "skipped", held: "busy"} and not res.complete
    assert sd.read_record(held)["status"] == "running" and sd.read_record(held)["pid"] == 12345
