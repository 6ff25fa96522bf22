"""The batched executor: a sweep's runs trained as stacked members (groklab.train.members), each exactly
the run it would be alone, with run directories in run()'s format; runs it cannot stack go per process."""

from __future__ import annotations

import pytest

from conftest import assert_rows_close

from groklab import RunConfig, load_run, resume, run
from groklab.sweep import sweep
from groklab.sweep.layout import SweepDir


def base(**over) -> RunConfig:
    cfg = RunConfig().replace(**{
        "task.p": 13, "task.train_frac": 0.5, "model.arch": "mlp", "model.width": 16, "model.act": "quadratic",
        "optim.weight_decay": 0.3, "train.steps": 40, "train.batch_size": None, "train.eval_points": 8,
        "train.checkpoint_points": 4, "train.threads": 1,
    })
    return cfg.replace(**over)


@pytest.mark.integration
def test_batched_sweep_writes_each_members_run_directory(tmp_path):
    res = sweep(base(), {"optim.weight_decay": [0.1, 1.0]}, seeds=2, out=tmp_path / "s", executor="batched", workers=1, progress=False)
    assert res.complete and res.executor == "batched" and res.per_run == {}
    sd = SweepDir(tmp_path / "s")
    for rid, _, cfg in sd.read_spec().points():
        r = load_run(sd.run_dir(rid))  # the run format: config, metrics, checkpoints, summary
        assert r.finished and r.checkpoint_steps[-1] == cfg.train.steps and r.summary["batched"]["members"] == 4
        assert_rows_close(r.rows, run(cfg).rows, 1e-4)  # float32: batched matmuls round differently
        assert sd.read_record(rid)["executor"] == "batched"
        assert resume(sd.run_dir(rid)).rows[-1]["step"] == cfg.train.steps  # a finished run stays finished


@pytest.mark.integration
def test_batched_sweep_falls_back_per_run_and_says_why(tmp_path, capsys):
    """Runs that cannot be members (here: dropout) train one per process; the sweep prints it and records it."""
    res = sweep(base(), {"model.dropout": [0.0, 0.2]}, seeds=2, out=tmp_path / "s", executor="batched", workers=1, progress=True)
    assert res.complete
    sd = SweepDir(tmp_path / "s")
    dropped = {rid for rid, o, _ in sd.read_spec().points() if o.get("model.dropout") == 0.2}
    assert set(res.per_run) == dropped and all(w.startswith("model.dropout=0.2") for w in res.per_run.values())
    assert "2 of 4 runs train one per process instead of stacked: model.dropout=0.2" in capsys.readouterr().err
    for rid, _, _ in sd.read_spec().points():
        rec = sd.read_record(rid)
        assert rec["executor"] == ("local" if rid in dropped else "batched")
        assert ("per_run" in rec) == (rid in dropped)


@pytest.mark.integration
def test_a_refused_stack_trains_its_runs_one_by_one(tmp_path):
    """A chunk whose stack is refused at build time (here: different shapes slipped into one chunk) trains its
    runs one by one in the same worker, each recording why, and ends like any other."""
    from groklab.sweep.batched import train_chunk
    from groklab.sweep.spec import SweepSpec

    spec = SweepSpec.build(base(), {"model.width": [8, 16]}, 1)
    sd = SweepDir(tmp_path / "s")
    sd.path.mkdir()
    sd.write_spec(spec)
    pts = spec.points()
    assert train_chunk(str(sd.path), [(rid, cfg.to_dict()) for rid, _, cfg in pts]) == "done"
    for rid, _, cfg in pts:
        assert load_run(sd.run_dir(rid)).finished
        rec = sd.read_record(rid)
        assert rec["status"] == "done" and rec["executor"] == "local" and rec["per_run"].startswith("stacking refused: these runs cannot train as stacked members: the runs differ in model.width")


def test_chunks_stack_equal_rows_and_give_every_worker_one():
    """Stacks pad each member's batch to the largest, so the planner groups runs by rows (full batch: the
    training set) and keeps each run in exactly one chunk; small groups join a neighbour, and big ones split
    until every worker has a chunk."""
    from groklab.sweep import MIN_CHUNK, PAD_TOLERANCE, _chunks, _rows

    def members(fracs, seeds):
        return [(f"{f}-{s}", base(**{"task.p": 97, "task.train_frac": f, "train.seed": s})) for f in fracs for s in range(seeds)]

    four = members([0.6, 0.3, 0.5, 0.4], 8)  # full batch: 2823, 3764, 4704, 5645 rows
    chunks = _chunks(four, workers=2)
    assert len(chunks) == 4 and all(len(c) == 8 for c in chunks)
    for c in chunks:
        rows = [_rows(cfg) for _, cfg in c]
        assert max(rows) <= PAD_TOLERANCE * min(rows)
    assert sorted(r for c in chunks for r, _ in c) == sorted(r for r, _ in four)
    # groups of fewer than MIN_CHUNK members join the next: no stack of 2 with its fixed cost per step
    small = members([0.3, 0.4, 0.5, 0.6], 2)
    assert [len(c) for c in _chunks(small, workers=1)] == [MIN_CHUNK]
    # one group, more workers: split in halves until each worker has one
    same = members([0.5], 16)
    assert sorted(len(c) for c in _chunks(same, workers=4)) == [4, 4, 4, 4]
    assert [len(c) for c in _chunks(members([0.5], 1), workers=4)] == [1]
