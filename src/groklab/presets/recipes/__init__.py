"""Paper recipes: `groklab reproduce PRESET [--scale quick|full] [--out DIR]`.

One module per paper setup (../shared/SETUPS.md); each module's docstring documents the paper's setup,
what `quick` changes, the expected qualitative result and the measured wall times. A recipe trains only
through `groklab.run` and the sweep API, runs the analyses, draws one figure per question and records
checks of the paper's qualitative result (`checks.json`); the directory gets an HTML report.

    from groklab.presets.recipes import reproduce
    reproduce("nanda2023", scale="quick", out="repro/nanda")    # -> Path of the preset directory
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

from groklab.errors import ConfigError
from groklab.presets.recipes.base import SCALES, Context, Recipe, reproduce_recipe

_MODULES = ("nanda2023", "doshi2023", "prieto2025", "liu2022", "power2022", "grokfast2024", "omnigrok2023", "parity2022",
            "varma2023", "kumar2023", "murty2023", "wang2024")


def _load() -> dict[str, Recipe]:
    out = {}
    for name in _MODULES:
        mod = importlib.import_module(f"groklab.presets.recipes.{name}")
        out[mod.RECIPE.name] = mod.RECIPE
    return out


RECIPES: dict[str, Recipe] = _load()


def reproduce(name: str, scale: str = "quick", out: str | os.PathLike | None = None, *, workers: int | None = None,
              device: str = "cpu", report: bool = True, log: Callable[[str], None] | None = print, rerun: bool = False,
              early_stop: bool = True) -> Path:
    """Run the recipe `name` at `scale` into `out` (default `runs/reproduce/<name>-<scale>`), write
    preset.json, checks.json and (with `report`) report/index.html; return the preset directory. Runs and
    sweeps already there are reused when their config is the one the recipe trains now; a changed one is a
    ConfigError naming the fields, or with `rerun` is set aside under OUT/replaced/ and trained again.
    `early_stop=False` drops the recipe's `train.stop_when` so every run trains its whole budget."""
    if name not in RECIPES:
        raise ConfigError(f"preset {name!r} is not known; choose one of: {', '.join(RECIPES)}")
    return reproduce_recipe(RECIPES[name], scale, out, workers=workers, device=device, report=report, log=log, rerun=rerun,
                            early_stop=early_stop)

__all__ = ["RECIPES", "SCALES", "Context", "Recipe", "reproduce"]
