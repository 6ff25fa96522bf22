"""Aggregation: one table, one row per run of a sweep, from the run directories (the source of truth)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from groklab.store import atomic_write, atomic_write_text, censored_text, flatten_dict, load_run
from groklab.sweep.layout import SweepDir


def sweep_table(path: str | os.PathLike, write: bool = True):
    """A pandas DataFrame with one row per point of the sweep in `path`:

    `id`, `status` (done / running / interrupted / failed / pending), the swept fields first, then every
    config field (dotted names), then the summary: `train_acc_99_step`, `val_acc_99_step`, `grok_gap`
    (steps from fitting the training set to generalizing), `final.*` metrics, `wall_time_s`, `n_params`.

    Censoring: a finished run that never crossed 99% has no step (NA), `*_acc_99_censored` True, and in
    `*_acc_99` the text "> N" (not within its N = `stopped_step` steps) or "diverged at N"; `stop_reason`
    (budget / condition / diverged) and `stopped_step` say why and where it ended. A censored run is never
    averaged as a number: the true step is only known to be larger than N.
    With `write`, saves `table.csv` (and `table.parquet` when pyarrow is installed) in the sweep directory.
    """
    import pandas as pd

    sd = SweepDir(path)
    spec = sd.read_spec()
    swept = spec.swept_fields + [f for f in spec.seed_fields if len(spec.seeds) > 1]
    rows = []
    for rid, overrides, cfg in spec.points():
        row: dict[str, Any] = {"id": rid}
        rec = sd.read_record(rid) or {}
        rd = sd.run_dir(rid)
        summary = None
        if (rd / "config.json").is_file():
            r = load_run(rd)
            cfg, summary = r.config, r.summary
        if summary is not None:
            row["status"] = "done"
        elif rec.get("status") in ("running", "interrupted", "failed"):
            row["status"] = rec["status"]
        else:
            row["status"] = "started" if (rd / "config.json").is_file() else "pending"
        config_cols = flatten_dict({k: v for k, v in cfg.to_dict().items() if k not in ("format_version", "out")})
        row.update({k: config_cols[k] for k in swept if k in config_cols})
        row.update({k: v for k, v in config_cols.items() if k not in row})
        s = summary or {}
        row["train_acc_99_step"] = s.get("train_acc_99_step")
        row["val_acc_99_step"] = s.get("val_acc_99_step")
        t99, v99 = row["train_acc_99_step"], row["val_acc_99_step"]
        row["grok_gap"] = (v99 - t99) if (t99 is not None and v99 is not None) else None
        # Summaries from before early stopping ran their whole budget.
        row["stop_reason"] = s.get("stop_reason", "budget") if summary is not None else None
        row["stopped_step"] = s.get("stopped_step", s.get("steps")) if summary is not None else None
        for key in ("train", "val"):
            row[f"{key}_acc_99_censored"], row[f"{key}_acc_99"] = censored_text(
                row[f"{key}_acc_99_step"], row["stop_reason"], row["stopped_step"])
        for k, v in (s.get("final") or {}).items():
            row[f"final.{k}"] = v
        for k in ("steps", "wall_time_s", "n_params", "n_train", "n_val", "device"):
            row[k] = s.get(k)
        row["executor"] = rec.get("executor")
        row["run_dir"] = str(rd)
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("train_acc_99_step", "val_acc_99_step", "grok_gap", "stopped_step"):
        df[col] = df[col].astype("Int64") if col in df else None
    for col in ("train_acc_99_censored", "val_acc_99_censored"):
        df[col] = df[col].astype("boolean")
    if write:
        atomic_write_text(Path(path) / "table.csv", df.to_csv(index=False))
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            atomic_write(Path(path) / "table.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    return df
