"""The command line end to end, its error messages, and the demo."""

import json
import subprocess
import sys

import pytest

from groklab import load_run, presets, run
from groklab.cli import main


def groklab(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "groklab.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_ops_lists_every_operation(capsys):
    main(["ops"])
    out = capsys.readouterr().out
    for op in ("x+y", "x-y", "x/y", "x/y if y odd else x-y", "x^2+y^2", "x^3+xy^2+y", "x*y*x^-1", "x*y*x"):
        assert op in out


@pytest.mark.integration
def test_train_then_plot(tmp_path, capsys):
    out = tmp_path / "xy"
    main([
        "train", "--task.op", "x/y", "--task.p", "13", "--task.train-frac", "0.5", "--model.arch", "mlp", "--model.width", "32",
        "--train.steps", "40", "--train.batch-size", "None", "--train.threads", "1", "--out", str(out),
    ])
    text = capsys.readouterr().out
    assert "validation accuracy ≥ 99%" in text and str(out) in text
    r = load_run(out)
    assert r.config.task.op == "x/y" and r.config.task.p == 13 and r.config.train.batch_size is None
    assert r.finished and r.rows[-1]["step"] == 40
    png = out / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png.unlink()
    main(["plot", str(out)])
    assert png.exists()


@pytest.mark.integration
def test_quiet_prints_nothing(tmp_path):
    res = groklab("train", "--model.arch", "mlp", "--task.p", "7", "--train.steps", "5", "--train.batch-size", "None", "--out", str(tmp_path / "q"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize(
    "args, field",
    [
        (["train", "--task.op", "x/y", "--task.p", "96"], "task.p=96 is not prime"),
        (["train", "--task.op", "x%y"], "task.op='x%y'"),
        (["train", "--task.train-frac", "1.5"], "task.train_frac=1.5"),
        (["train", "--task.train-frac", "0"], "task.train_frac=0.0"),
        (["train", "--task.corrupt-frac", "1"], "task.corrupt_frac=1.0"),
        (["train", "--task.train-frac", "0.1", "--train.batch-size", "5000"], "train.batch_size=5000"),
        (["train", "--train.device", "cuda", "--train.steps", "1"], "train.device"),
    ],
)
def test_bad_input_is_a_clear_message(tmp_path, args, field):
    out = tmp_path / "never"
    res = groklab(*args, "--out", str(out))
    assert res.returncode == 2
    message = " ".join(res.stderr.split()).replace("│", "").replace("  ", " ")
    assert field in " ".join(message.split()), res.stderr
    assert "Traceback" not in res.stderr
    if "cuda" not in args:
        assert not out.exists()  # nothing half-written


def test_resume_missing_or_corrupt_run_directory(tmp_path):
    res = groklab("resume", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text('{"task": {"p": "x"}}')
    res = groklab("resume", str(tmp_path / "c"))
    assert res.returncode == 2 and "corrupt" in res.stderr and "task.p" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.acceptance
def test_demo_groks_with_a_clear_gap(tmp_path):
    """The README's demo: train accuracy reaches 99% well before validation accuracy, which gets there too."""
    result = run(presets.demo(out=str(tmp_path / "demo")))
    s = result.summary
    assert s["train_acc_99_step"] is not None and s["val_acc_99_step"] is not None
    assert s["val_acc_99_step"] >= 4 * s["train_acc_99_step"], s
    assert s["final"]["val_acc"] >= 0.99
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["val_acc_99_step"] == s["val_acc_99_step"]


@pytest.mark.integration
def test_demo_command_writes_the_plot_and_crossings(tmp_path):
    res = groklab("demo", "--out", str(tmp_path / "d"), "--steps", "300")
    assert res.returncode == 0, res.stderr
    assert "train accuracy ≥ 99%: step" in res.stdout and "curves.png" in res.stdout
    assert (tmp_path / "d" / "curves.png").exists()
