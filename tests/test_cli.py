"""The command line end to end, its error messages, and the demo."""

import json
import subprocess
import sys

import pytest
import torch

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


def error_of(capsys, *args) -> str:
    """Run the CLI in-process on input it must refuse: exit code 2 and exactly one line on stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("groklab: error: ") and err.count("\n") == 1, err
    return err


BAD_INPUT = [
    (["train", "--task.op", "x/y", "--task.p", "96"], "task.p=96 is not prime"),
    (["train", "--task.op", "x%y"], "task.op='x%y'"),
    (["train", "--task.train-frac", "1.5"], "task.train_frac=1.5"),
    (["train", "--task.train-frac", "0"], "task.train_frac=0.0"),
    (["train", "--task.corrupt-frac", "1"], "task.corrupt_frac=1.0"),
    (["train", "--task.train-frac", "0.1", "--train.batch-size", "5000"], "train.batch_size=5000"),
    (["train", "--train.batch-size", "0"], "train.batch_size=0"),
    # Non-finite values are named for themselves, before any check that compares them, even on a table
    # too small for the batch size given.
    (["train", "--optim.lr", "inf", "--task.p", "5", "--train.batch-size", "512"], "optim.lr=inf"),
    (["train", "--optim.lr", "nan"], "optim.lr=nan"),
    (["train", "--model.init-scale", "inf"], "model.init_scale=inf"),
    (["train", "--task.tol", "nan", "--task.group", "teacher", "--model.arch", "mlp", "--train.loss", "mse"], "task.tol=nan"),
    (["train", "--reg.grad-noise", "-inf"], "reg.grad_noise=-inf"),
    # A table too large for the machine is refused before anything is allocated.
    (["train", "--task.p", "1000003", "--train.steps", "1"], "needs about 100,000"),
    # What tyro itself cannot parse is one line too.
    (["train", "--task.p", "abc"], "--task.p: invalid literal for int()"),
    (["train", "--model.arch", "rnn"], "--model.arch 'rnn' is not allowed; choose one of: transformer, mlp, toy"),
    (["train", "--train.batch-size", "many"], "--train.batch-size"),
    (["train", "--no-such-flag", "1"], "unrecognized argument(s): --no-such-flag 1"),
]


@pytest.mark.parametrize("args, field", BAD_INPUT)
def test_bad_input_is_one_line(tmp_path, capsys, args, field):
    out = tmp_path / "never"
    err = error_of(capsys, *args, "--out", str(out))
    assert field in err
    assert not out.exists()  # nothing half-written


def test_no_command_is_one_line(capsys):
    assert "choose a command: train, resume" in error_of(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="--train.device cuda is allowed where CUDA is")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    err = error_of(capsys, "train", "--train.device", "cuda", "--train.steps", "1", "--task.p", "5", "--out", str(tmp_path / "never"))
    assert "train.device" in err


def test_resume_missing_or_corrupt_run_directory(tmp_path, capsys):
    assert "does not exist" in error_of(capsys, "resume", str(tmp_path / "nothing"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text('{"task": {"p": "x"}}')
    err = error_of(capsys, "resume", str(tmp_path / "c"))
    assert "corrupt" in err and "task.p" in err


def test_help_shows_the_batch_size_rule(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "min(512, ⌈n_train/2⌉)" in text and "(default: auto)" in text


@pytest.mark.integration
def test_listing_commands_import_no_torch():
    """`groklab --help`, `ops`, `tasks`, `models` answer in well under a second: none imports torch."""
    code = (
        "import sys\n"
        "from groklab.cli import main\n"
        "for args in (['--help'], ['ops'], ['tasks'], ['models']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


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
