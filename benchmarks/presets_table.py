"""The README's table of quick-scale results, generated from preset directories (nothing hand-copied).

    python -m pytest -m presets --basetemp /tmp/presets-run        # runs every quick preset, keeps its directory
    python benchmarks/presets_table.py /tmp/presets-run            # prints the Markdown table

Finds every preset.json under the given directories (or takes the files given), and prints one row per preset:
its scale, wall time, checks passed, and each check's measured detail (what the check read: the numbers behind
"what quick showed"). Rows are in the order of `groklab.presets.recipes.RECIPES`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(paths: list[Path]) -> list[dict]:
    from groklab.presets.recipes import RECIPES

    found: dict[str, dict] = {}
    for p in paths:
        for f in ([p] if p.is_file() else sorted(p.glob("**/preset.json"))):
            meta = json.loads(f.read_text())
            found[meta["preset"]] = meta  # the last one found of a preset wins
    order = list(RECIPES)
    return sorted(found.values(), key=lambda m: order.index(m["preset"]) if m["preset"] in order else len(order))


def markdown(metas: list[dict]) -> str:
    out = ["| preset | scale | wall time | checks | what the checks measured |", "|---|---|---|---|---|"]
    for m in metas:
        checks = m.get("checks", {})
        passed = sum(c["passed"] for c in checks.values())
        detail = "; ".join(f"**{name}** {'✓' if c['passed'] else '✗'}: {' '.join(c['detail'].split())}" for name, c in checks.items())
        load = m.get("environment", {}).get("load_average_1min")
        when = f"{m['wall_time_s'] / 60:.1f} min" + (f" (load {load:.1f})" if isinstance(load, (int, float)) else "")
        out.append(f"| `{m['preset']}` | {m['scale']} | {when} | {passed}/{len(checks)} | {detail.replace('|', '/')} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args()
    print(markdown(rows(args.paths)))


if __name__ == "__main__":
    main()
