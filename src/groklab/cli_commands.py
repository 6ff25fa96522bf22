"""The `groklab ls` and `groklab compare` commands (registered in cli.py, on the CLI's floor: they draw with
report/, which interop/ below must not import). Thin: the tables are built in interop/dataframes.py, the
figure drawn in report/compare.py; heavy imports stay inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import tyro

from groklab.errors import ConfigError


def _fmt(v) -> str:
    if v is None or v != v:  # None or NaN
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:g}"  # pandas turns integer columns with gaps into floats
    return str(v)


def ls(directory: tyro.conf.Positional[str] = ".", out: Optional[str] = None) -> None:
    """List the run directories under DIR (recursively): task, model, steps, the steps at which train and
    validation accuracy reached 99%, final validation accuracy, finished or not. --out FILE also writes the
    table (.csv, or .parquet with pyarrow)."""
    import math

    from rich.console import Console
    from rich.table import Table

    from groklab.interop.dataframes import runs_table, write_parquet

    df = runs_table(directory)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured: whole rows rather than 80 columns of ellipses
    for line in df.attrs.get("skipped", []):
        console.print(f"[yellow]skipped[/yellow] {line}", highlight=False)
    table = Table(title=f"{len(df)} run(s) under {directory}")
    headers = {"train_frac": "frac", "last_step": "at step", "train_acc_99_step": "train 99%", "val_acc_99_step": "val 99%",
               "final_val_acc": "val acc", "finished": "done"}
    for col in df.columns:
        left = col in ("run", "group", "op", "arch")
        table.add_column(headers.get(col, col), justify="left" if left else "right", overflow="fold" if col == "run" else "ellipsis",
                         no_wrap=col != "run")
    for rec in df.to_dict("records"):
        cells = []
        for col, v in rec.items():
            if col == "final_val_acc" and isinstance(v, float) and not math.isnan(v):
                cells.append(f"{100 * v:.1f}%")
            elif col in ("train_acc_99_step", "val_acc_99_step") and rec["finished"] and (v is None or v != v):
                cells.append(f"> {_fmt(rec['last_step'])}")  # censored: not within the steps the run trained
            else:
                cells.append(_fmt(v))
        table.add_row(*cells)
    console.print(table)
    if out is not None:
        path = Path(out)
        if path.suffix == ".parquet":
            write_parquet(df, path)
        elif path.suffix == ".csv":
            path.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(path, index=False)
        else:
            raise ConfigError(f"--out {out!r}: the table is written as .csv or .parquet; name the file with one of these suffixes")
        print(f"table: {path}")


def compare(runs: tyro.conf.Positional[tuple[str, ...]], out: str = "compare.png", title: Optional[str] = None) -> None:
    """Overlay the accuracy and loss curves of RUN RUN ... in one figure (validation solid, train dashed),
    labelled by the config fields that differ between them."""
    from groklab.interop.dataframes import run_labels
    from groklab.report.compare import plot_compare
    from groklab.store import load_run

    if not runs:
        raise ConfigError("compare needs at least one run directory: groklab compare RUN RUN ... [--out compare.png]")
    loaded = [load_run(r) for r in runs]
    labels = run_labels(loaded)
    print(plot_compare({lab: r.rows for lab, r in zip(labels, loaded)}, out, title=title))


__all__ = ["ls", "compare"]
