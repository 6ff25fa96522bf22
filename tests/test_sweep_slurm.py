"""The Slurm executor (submitit), run through submitit's local executor: the same run directories as the
local pool; without submitit or Slurm, one-line errors."""

from __future__ import annotations

import pytest
from conftest import tiny_mlp

from groklab import load_run
from groklab.errors import ConfigError, GroklabError
from groklab.sweep import sweep
from groklab.sweep.layout import SweepDir, run_point


tiny = tiny_mlp


@pytest.mark.integration
def test_slurm_executor_through_submitit_local_equals_local_pool(tmp_path):
    pytest.importorskip("submitit")
    grid = {"optim.weight_decay": [0.1, 1.0]}
    # one job of all four runs (each submitit job is a fresh Python that imports torch)
    res = sweep(tiny(), grid, seeds=2, out=tmp_path / "slurm", executor="slurm", cluster_options={"cluster": "local", "runs_per_job": 4, "timeout_min": 5}, progress=False)
    assert res.complete and res.counts() == {"done": 4}, res.outcomes
    # the local pool's workers call run_point too; here it runs in this process (no worker start-up)
    a, b = SweepDir(tmp_path / "slurm"), SweepDir(tmp_path / "local")
    b.path.mkdir()
    b.write_spec(a.read_spec())
    for rid, _, cfg in a.read_spec().points():
        assert run_point(b.path, rid, cfg.to_dict(), "local") == "done"
    for rid, _, _ in a.read_spec().points():
        ra, rb = load_run(a.run_dir(rid)), load_run(b.run_dir(rid))
        assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in ra.rows] == [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rb.rows]
        assert ra.checkpoint_steps == rb.checkpoint_steps and ra.finished
        assert a.read_record(rid)["executor"] == "slurm" and a.read_record(rid)["status"] == "done"
    assert (tmp_path / "slurm" / "slurm").is_dir()  # submitit's job logs
    again = sweep(out=tmp_path / "slurm", resume=True, executor="slurm", cluster_options={"cluster": "local"}, progress=False)
    assert again.counts() == {"skipped": 4}


def test_slurm_errors_are_one_line(tmp_path, monkeypatch):
    import shutil
    import sys

    from groklab.sweep.slurm_exec import import_submitit, run_slurm

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "submitit", None)  # `import submitit` now fails, installed or not
        with pytest.raises(GroklabError, match=r"groklab\[slurm\]"):
            import_submitit()
    pytest.importorskip("submitit")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GroklabError, match="no Slurm") as e:
        run_slurm(str(tmp_path), [("x", tiny().to_dict())])
    assert "\n" not in str(e.value)
    with pytest.raises(GroklabError, match="no Slurm"):  # refused before the sweep directory is written
        sweep(tiny(), {"optim.lr": [1e-3, 1e-2]}, out=tmp_path / "s", executor="slurm", progress=False)
    assert not (tmp_path / "s").exists()
    with pytest.raises(ConfigError, match="runs_per_job"):
        run_slurm(str(tmp_path), [], options={"cluster": "local", "runs_per_job": 0})
