"""No path loses or mixes a run: missing resume state, an edited config.json, a finished run, --restart, the
modes of written files, and --out paths that cannot be a run directory (issue 16)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import strip_time

from groklab import RunDirError, load_run, resume, run
from groklab.store import RunDir, atomic_write_text, check_out_path
from test_train import tiny


def snapshot(path):
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()}


class Crash(Exception):
    pass


def crash_at(n):
    def on_step(step, row):
        if step == n:
            raise Crash

    return on_step


# --- unit: paths and file modes ------------------------------------------------------------------------
def test_out_path_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RunDirError, match="is an existing file"):
        check_out_path(f)
    with pytest.raises(RunDirError, match="which is a file"):
        check_out_path(f / "run")
    check_out_path(tmp_path / "new" / "deeper")  # fine: mkdir makes both


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
def test_out_path_in_unwritable_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    try:
        with pytest.raises(RunDirError, match="permission denied"):
            check_out_path(ro / "run")
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_out_where_no_directory_can_be_made_is_one_line(tmp_path):
    # /proc refuses mkdir even to root, whom the permission check above cannot stop
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        run(tiny("/proc/groklab-no-such-dir/run", steps=1))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode


# --- integration ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_run_files_are_readable_by_the_group_and_others_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        run(tiny(tmp_path / "r", steps=20))
        (tmp_path / "r" / "summary.json").unlink()
        resume(tmp_path / "r")  # rewrites metrics.jsonl and summary.json
    finally:
        os.umask(old)
    for name in ("config.json", "summary.json", "metrics.jsonl", "checkpoints/resume.safetensors", "checkpoints/step_00000020.safetensors"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.integration
def test_finished_run_without_resume_state_comes_back_untouched(tmp_path):
    ref = run(tiny(tmp_path / "r", steps=40))
    (tmp_path / "r" / "checkpoints" / "resume.safetensors").unlink()
    before = snapshot(tmp_path / "r")
    again = resume(tmp_path / "r", on_step=crash_at(0))  # nothing trains, so a Ctrl-C has nothing to break
    assert strip_time(again.rows) == strip_time(ref.rows) and again.summary == json.loads((tmp_path / "r" / "summary.json").read_text())
    assert snapshot(tmp_path / "r") == before


@pytest.mark.integration
def test_metrics_without_resume_state_are_refused_and_restart_keeps_them(tmp_path):
    ref = run(tiny(tmp_path / "ref", steps=40))
    with pytest.raises(Crash):
        run(tiny(tmp_path / "r", steps=40), on_step=crash_at(30))
    (tmp_path / "r" / "checkpoints" / "resume.safetensors").unlink()
    before = snapshot(tmp_path / "r")
    with pytest.raises(RunDirError) as e:
        resume(tmp_path / "r")
    msg = str(e.value)
    assert "no resume state" in msg and "--restart" in msg and "\n" not in msg
    assert snapshot(tmp_path / "r") == before  # nothing truncated

    old_metrics = (tmp_path / "r" / "metrics.jsonl").read_text()
    again = resume(tmp_path / "r", restart=True)
    assert strip_time(again.rows) == strip_time(ref.rows)
    (aside,) = (tmp_path / "r").glob("restarted-*")
    assert (aside / "metrics.jsonl").read_text() == old_metrics and (aside / "checkpoints").is_dir()


@pytest.mark.integration
def test_edited_config_is_refused_naming_the_changed_fields(tmp_path):
    with pytest.raises(Crash):
        run(tiny(tmp_path / "r", steps=40), on_step=crash_at(30))
    f = tmp_path / "r" / "config.json"
    d = json.loads(f.read_text())
    d["optim"]["lr"] = 0.5
    d["train"]["seed"] = 7
    d["train"]["threads"] = 2  # allowed to differ: how, not what, is computed
    f.write_text(json.dumps(d))
    before = snapshot(tmp_path / "r")
    with pytest.raises(RunDirError) as e:
        resume(tmp_path / "r")
    msg = str(e.value)
    assert "config.json changed" in msg and "optim.lr 0.003 → 0.5" in msg and "train.seed 0 → 7" in msg
    assert "threads" not in msg and "\n" not in msg
    assert snapshot(tmp_path / "r") == before


@pytest.mark.integration
def test_moved_run_directory_resumes(tmp_path):
    ref = run(tiny(tmp_path / "ref", steps=40))
    with pytest.raises(Crash):
        run(tiny(tmp_path / "a", steps=40), on_step=crash_at(30))
    shutil.move(tmp_path / "a", tmp_path / "b")  # config.json still names the old out
    assert strip_time(resume(tmp_path / "b").rows) == strip_time(ref.rows)


@pytest.mark.integration
def test_interrupted_resume_leaves_no_summary_beside_partial_metrics(tmp_path):
    with pytest.raises(Crash):
        run(tiny(tmp_path / "r", steps=40), on_step=crash_at(30))
    with pytest.raises(Crash):
        resume(tmp_path / "r", on_step=crash_at(35))
    assert RunDir(tmp_path / "r").read_summary() is None
    resume(tmp_path / "r")
    run_ = load_run(tmp_path / "r")
    assert run_.finished and run_.rows[-1]["step"] == 40


@pytest.mark.integration
@pytest.mark.parametrize("where", ["file", "under_file"])
def test_cli_out_that_cannot_be_a_run_directory_is_one_line(tmp_path, where):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    out = f if where == "file" else f / "run"
    res = subprocess.run([sys.executable, "-m", "groklab.cli", "train", "--train.steps", "3", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "notes.txt" in err[0] and "file" in err[0], res.stderr
    assert f.read_text() == "keep me"
