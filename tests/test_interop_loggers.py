"""TensorBoard and W&B (offline) as copies of the metrics stream, read back and checked against metrics.jsonl."""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

import pytest

from groklab import RunConfig, load_run, presets, run
from groklab.errors import ConfigError
from groklab.interop import MissingExtraError
from groklab.interop.loggers import open_loggers


def tiny(out: Path | None, loggers: list[str]) -> RunConfig:
    return presets.doshi2023(p=11, steps=25).replace(**{
        "model.width": 16, "train.batch_size": None, "train.threads": 1, "train.eval_points": 7,
        "train.checkpoint_points": 2, "train.loggers": loggers, "out": None if out is None else str(out),
    })


def expected_scalars(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    keys = {k for r in rows for k, v in r.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: [(r["step"], float(r[k])) for r in rows if r.get(k) is not None] for k in keys}


def read_wandb_offline(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The history of the W&B offline run in RUN/wandb: {metric: [(step, value), ...]}.

    A .wandb file is a 7-byte header (":W&B", magic, version) then LevelDB-log framing: 32 KiB blocks of
    chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last), whose
    payloads are protobuf `Record`s; a history record holds one `log()` call."""
    from wandb.proto import wandb_internal_pb2 as pb

    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    data = files[0].read_bytes()
    assert data[:4] == b":W&B"
    pos, payload, history = 7, b"", {}
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record.FromString(payload)
            payload = b""
            if rec.WhichOneof("record_type") == "history":
                for item in rec.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if not key.startswith("_"):
                        history.setdefault(key, []).append((rec.history.step.num, float(item.value_json)))
        elif kind == 0 and length == 0:
            break  # zero-filled tail: end of the written records
    return history


def assert_same(got: dict, want: dict, tol: float) -> None:
    assert set(got) == set(want)
    for k in want:
        assert [s for s, _ in got[k]] == [s for s, _ in want[k]], k
        for (_, a), (_, b) in zip(got[k], want[k]):
            assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(b)), (k, a, b)


@pytest.mark.integration
def test_tensorboard_and_wandb_hold_the_logged_scalars(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason='needs the extra: pip install "groklab[tensorboard]"')
    pytest.importorskip("wandb", reason='needs the extra: pip install "groklab[wandb]"')
    from groklab.interop.loggers import read_tensorboard

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    result = run(tiny(out, ["tensorboard", "wandb"]))
    rows = load_run(out).rows  # metrics.jsonl, the source of truth
    assert [r["step"] for r in rows] == [r["step"] for r in result.rows] and len(rows) == 7
    want = expected_scalars(result.rows)
    assert {"train_acc", "val_acc", "train_loss", "val_loss", "weight_norm", "lr"} <= set(want)
    assert_same(read_tensorboard(out), want, tol=1e-6)  # TensorBoard stores float32
    assert_same(read_wandb_offline(out), want, tol=1e-12)  # W&B stores the JSON text of each float
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_logger_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"train.loggers='mlflow' is not allowed; choose one of: tensorboard, wandb"):
        tiny(None, ["mlflow"])
    with pytest.raises(ConfigError, match="names a logger twice"):
        tiny(None, ["wandb", "wandb"])
    with pytest.raises(ConfigError, match=r"out=None; set --out"):
        run(tiny(None, ["tensorboard"]))
    assert RunConfig.from_json(tiny(tmp_path, ["tensorboard"]).to_json()).train.loggers == ["tensorboard"]
    # a missing package names the extra to install (and the config still loads without it)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "wandb", None)
    for name in ("tensorboard", "wandb"):
        with pytest.raises(MissingExtraError, match=rf'pip install "groklab\[{name}\]"'):
            open_loggers(tiny(tmp_path, [name]), tmp_path)
    # no loggers: nothing to open, nothing written
    sinks = open_loggers(tiny(tmp_path, []), tmp_path)
    sinks.log({"step": 0, "val_acc": 1.0})
    sinks.close()
    assert list(tmp_path.iterdir()) == []
