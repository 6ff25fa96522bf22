"""A self-contained HTML report of a run, a sweep or a paper preset (`groklab reproduce`): `DIR/report/index.html`.

Everything the page shows is embedded (figures as data URIs, no scripts, no fonts, no network), so it
opens from the file system anywhere. The page draws what training and the analyses already wrote —
config.json, summary.json, metrics.jsonl, curves.png, analysis/*.png and analysis/*.csv, and for a sweep
its table and figures — it computes nothing beyond formatting.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any, Iterable

from groklab.errors import RunDirError
from groklab.store import atomic_write_text, crossing_text, flatten_dict

MAX_TABLE_ROWS = 60

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
     color:#1d1d1f;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:10rem}
.card .k{font-size:.75rem;color:#666;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:1.3rem;font-weight:600}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
details summary{cursor:pointer;color:#333}
h3{font-size:1rem;margin:1.4rem 0 .3rem}
tr.pass td:first-child{color:#1a7f37;font-weight:600} tr.fail td:first-child{color:#cf222e;font-weight:600}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:6px}
pre.doc{white-space:pre-wrap;background:#f7f7f9;border:1px solid #eee;padding:.8rem;font-size:.85rem}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)


def _table(rows: Iterable[dict], columns: list[str] | None = None) -> str:
    rows = list(rows)
    if not rows:
        return "<p>(empty)</p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows[:MAX_TABLE_ROWS]:
        cells = []
        for c in columns:
            v = r.get(c)
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_e(_fmt(v))}</td>' if num else f"<td>{_e(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>… {len(rows) - MAX_TABLE_ROWS} more rows in the CSV.</p>" if len(rows) > MAX_TABLE_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _kv_table(d: dict) -> str:
    return _table([{"field": k, "value": v} for k, v in d.items()], ["field", "value"])


def _figure(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return _csv_rows(f)


def _csv_rows(lines: Iterable[str]) -> list[dict]:
    rows = list(csv.DictReader(lines))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = int(v)
            except (TypeError, ValueError):
                try:
                    r[k] = float(v)
                except (TypeError, ValueError):
                    pass
    return rows


def _cards(items: list[tuple[str, Any]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v" data-key="{_e(k)}">{_e(_fmt(v))}</div></div>' for k, v in items
    ) + "</div>"


def _page(title: str, subtitle: str, sections: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1><p class=\"sub\">{_e(subtitle)}</p>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def _figures_and_tables(d: Path) -> list[str]:
    """The analysis layer's outputs, if it has run: analysis/*.png figures and analysis/*.csv tables."""
    out = []
    a = d / "analysis"
    pngs = sorted(a.glob("*.png")) if a.is_dir() else []
    csvs = sorted(a.glob("*.csv")) if a.is_dir() else []
    if pngs:
        out.append("<h2>Analyses</h2>" + "".join(_figure(p, p.stem.replace("_", " ")) for p in pngs))
    for c in csvs:
        out.append(f"<details><summary>table: {_e(c.name)}</summary>{_table(_read_csv(c))}</details>")
    return out


def _analysis_cards(run_dir: Path) -> list[tuple[str, Any]]:
    """Headline numbers of `groklab analyze` from RUN/analysis/summary.json (the keys analysis/driver.py
    writes), for the analyses that have run; none before any has."""
    path = run_dir / "analysis" / "summary.json"
    if not path.is_file():
        return []
    try:
        a = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    cards: list[tuple[str, Any]] = []

    def add(label: str, *keys: str) -> None:
        v: Any = a
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            cards.append((label, v))

    add("phase", "grokking", "phase")
    add("key frequencies", "key_frequencies")
    add("key fraction of power", "key_fraction")
    add("median neuron IPR", "ipr", "median")
    add("RQI of the embedding", "representations", "embedding", "rqi")
    return cards


def run_report(run_dir: Path) -> str:
    from groklab.report.plots import plot_curves
    from groklab.store import load_run

    r = load_run(run_dir)
    cfg, s = r.config, r.summary or {}
    t = cfg.task
    what = f"{t.op} mod {t.p}" if t.group == "modular" else (f"{t.op} in S_{t.n}" if t.group == "permutation" else t.group)
    curves = run_dir / "curves.png"
    if not curves.exists() and r.rows:
        plot_curves(r.rows, curves, crossings={"train 99%": s.get("train_acc_99_step"), "val 99%": s.get("val_acc_99_step")})
    final = s.get("final") or (r.rows[-1] if r.rows else {})
    cards = [
        ("train acc ≥ 99% at step", crossing_text(r.summary, "train")),  # "> N": not within the run's N steps
        ("val acc ≥ 99% at step", crossing_text(r.summary, "val")),
        ("final train acc", final.get("train_acc")),
        ("final val acc", final.get("val_acc")),
        ("steps", cfg.train.steps),
        ("wall time (s)", s.get("wall_time_s")),
    ]
    cards += _analysis_cards(run_dir)
    sections = [
        "<h2>Summary</h2>" + _cards([(k, "never" if v is None and s else v) for k, v in cards]),
        "<h2>Curves</h2>" + (_figure(curves, "accuracy and loss against optimization steps (log axis)") if curves.exists() else "<p>no metrics yet</p>"),
        *_figures_and_tables(run_dir),
        "<h2>Config</h2>" + _kv_table(flatten_dict(cfg.to_dict())),
        "<h2>Metrics</h2><details><summary>every evaluation</summary>" + _table(r.rows) + "</details>",
        "<h2>Environment</h2>" + _kv_table({"device": s.get("device"), "threads": s.get("threads"), **{f"version.{k}": v for k, v in (s.get("versions") or {}).items()}}),
    ]
    return _page(f"groklab run: {what}", f"{run_dir.resolve()} · {cfg.model.arch} · train fraction {t.train_frac}", sections)


def sweep_report(sweep_dir: Path) -> str:
    from groklab.report.sweep_plots import sweep_figures
    from groklab.sweep.table import sweep_table

    spec = json.loads((sweep_dir / "sweep.json").read_text())
    # Table and figures from the runs as they are now, read once, so the page never mixes stale and fresh. The
    # page only reads the runs: table.csv is written by the sweep and `groklab table`, never by a report.
    df = sweep_table(sweep_dir, write=False)
    sweep_figures(sweep_dir, df)
    rows = _csv_rows(io.StringIO(df.to_csv(index=False)))  # the rows table.csv would hold, typed as read back
    tables = sorted(t for t in sweep_dir.glob("*.csv") if t.name != "table.csv")
    pngs = sorted(sweep_dir.glob("*.png")) + sorted((sweep_dir / "figures").glob("*.png") if (sweep_dir / "figures").is_dir() else [])
    sections = [
        "<h2>Summary</h2>" + _cards([("runs", len(rows)), ("finished", sum(1 for r in rows if r.get("status") == "done"))]),
        "<h2>Figures</h2>" + "".join(_figure(p, p.stem.replace("_", " ")) for p in pngs) if pngs else "",
        "<h2>Table: table.csv</h2>" + _table(rows),
        *(f"<h2>Table: {_e(t.name)}</h2>" + _table(_read_csv(t)) for t in tables),
        "<h2>Sweep spec</h2>" + _kv_table(flatten_dict(spec)),
    ]
    return _page("groklab sweep", str(sweep_dir.resolve()), sections)


def _check_rows(checks: dict) -> str:
    rows = "".join(
        f'<tr class="{"pass" if c.get("passed") else "fail"}"><td>{"✓ pass" if c.get("passed") else "✗ fail"}</td>'
        f"<td>{_e(name)}</td><td>{_e(c.get('detail', ''))}</td></tr>"
        for name, c in checks.items()
    )
    return f"<table><thead><tr><th>result</th><th>check</th><th>measured</th></tr></thead><tbody>{rows}</tbody></table>"


def preset_report(d: Path) -> str:
    """The page of a paper preset (`groklab reproduce`): checks, headline numbers, one figure per question,
    tables, the recipe's documentation, the runs and sweeps it trained, the environment."""
    meta = json.loads((d / "preset.json").read_text())
    checks = meta.get("checks") or {}
    passed = sum(1 for c in checks.values() if c.get("passed"))
    cards = [("checks passed", f"{passed}/{len(checks)}"), ("scale", meta.get("scale")), ("wall time (s)", meta.get("wall_time_s"))]
    cards += list((meta.get("numbers") or {}).items())
    figs = []
    for f in meta.get("figures") or []:
        png = d / f["file"]
        if png.is_file():
            figs.append(f"<h3>{_e(f.get('question', ''))}</h3>" + _figure(png, f.get("caption") or f.get("question") or png.stem))
    tables = []
    for t in meta.get("tables") or []:
        csv_path = d / t["file"]
        if csv_path.is_file():
            tables.append(f"<h3>{_e(t.get('title') or csv_path.stem)}</h3>" + _table(_read_csv(csv_path)))
    notes = "".join(f"<li>{_e(n)}</li>" for n in meta.get("notes") or [])
    runs = "".join(f"<li><code>{_e(r)}</code></li>" for r in (meta.get("runs") or []) + (meta.get("sweeps") or []))
    # smoke scale only tests the machinery: its runs are far too small and short to show any paper's result
    smoke = ('<p class="warn">This is the <b>smoke</b> scale: seconds of training that test the machinery only. '
             "Its checks are not expected to pass; run <code>--scale quick</code> or <code>full</code> for the paper's result.</p>"
             if meta.get("scale") == "smoke" else "")
    sections = [
        smoke + "<h2>Result</h2>" + _cards(cards),
        "<h2>Checks of the paper's qualitative result</h2>" + smoke + (_check_rows(checks) if checks else "<p>(no checks)</p>"),
        "<h2>Figures</h2>" + "".join(figs) if figs else "",
        "<h2>Tables</h2>" + "".join(tables) if tables else "",
        "<h2>Notes</h2><ul>" + notes + "</ul>" if notes else "",
        "<h2>About this preset</h2><pre class=\"doc\">" + _e(meta.get("doc", "")) + "</pre>",
        "<h2>Runs and sweeps</h2><p>Each is an ordinary run or sweep directory under this one "
        "(<code>groklab report DIR</code> renders it on its own).</p><ul>" + runs + "</ul>" if runs else "",
        "<h2>Environment</h2>" + _kv_table(meta.get("environment") or {}),
    ]
    return _page(f"groklab reproduce {meta.get('preset')}: {meta.get('title', '')}", f"{meta.get('paper', '')} · {d.resolve()}", sections)


def build_report(path: str | Path) -> Path:
    """Write `path/report/index.html` for a run, a sweep or a preset directory (`groklab reproduce`) and
    return its path."""
    d = Path(path)
    if not d.is_dir():
        raise RunDirError(f"{str(d)!r} does not exist")
    if (d / "preset.json").is_file():
        page = preset_report(d)
    elif (d / "config.json").is_file():
        page = run_report(d)
    elif (d / "sweep.json").is_file():
        page = sweep_report(d)
    else:
        raise RunDirError(f"{str(d)!r} is neither a run directory (config.json) nor a sweep directory (sweep.json) nor a preset directory (preset.json)")
    out = d / "report" / "index.html"
    atomic_write_text(out, page)
    return out
