"""Paper presets (`groklab reproduce`): the recipes' machinery at `smoke` scale (seconds, default tier),
and each preset's `quick` scale with its qualitative checks and its report in headless Chromium
(`-m presets`, the slow tier CI runs separately)."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from groklab.cli import main
from groklab.presets.recipes import RECIPES, reproduce
from groklab.report.html import build_report

BUILT = sorted(RECIPES)


@pytest.mark.parametrize("name", BUILT)
def test_recipe_smoke_writes_a_preset_directory_and_report(tmp_path, name):
    d = reproduce(name, "smoke", tmp_path / name, log=None)
    meta = json.loads((d / "preset.json").read_text())
    checks = json.loads((d / "checks.json").read_text())
    assert meta["preset"] == name and meta["scale"] == "smoke" and meta["checks"] == checks
    assert checks and all(set(c) == {"passed", "detail"} for c in checks.values())
    assert meta["figures"] and all((d / f["file"]).is_file() and f["question"] for f in meta["figures"])
    assert all((d / t["file"]).is_file() for t in meta["tables"])
    assert "Paper's setup" in meta["doc"] and "quick" in meta["doc"] and "wall time" in meta["doc"]
    page = (d / "report" / "index.html").read_text()
    assert not re.search(r'(src|href)="(?!data:)', page) and "<script" not in page
    assert page.count('src="data:image/png;base64,') == len(meta["figures"])
    for check in checks:
        assert check in page
    # re-running reuses the finished runs instead of training again
    again = reproduce(name, "smoke", tmp_path / name, log=None, report=False)
    assert json.loads((again / "checks.json").read_text()) == checks


def test_reproduce_refuses_unknown_preset_scale_and_foreign_directory(tmp_path):
    from groklab.errors import ConfigError

    with pytest.raises(ConfigError, match="not known"):
        reproduce("nope", "quick", tmp_path / "a", log=None)
    with pytest.raises(ConfigError, match="scale"):
        reproduce(BUILT[0], "huge", tmp_path / "a", log=None)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a preset directory"):
        reproduce(BUILT[0], "smoke", tmp_path / "b", log=None)


def test_cli_reproduce_smoke(tmp_path):
    main(["reproduce", "prieto2025", "--scale", "smoke", "--out", str(tmp_path / "p"), "--quiet"])
    assert (tmp_path / "p" / "report" / "index.html").is_file()
    assert build_report(tmp_path / "p") == tmp_path / "p" / "report" / "index.html"


def _chromium() -> str | None:
    return os.environ.get("GROKLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def render(index: Path, shot: Path) -> tuple[list[str], list[bool], str]:
    """Open the page in headless Chromium: console errors, whether each image loaded, the page's text."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the extra: pip install 'groklab[browser]'")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found: apt-get install chromium (or set GROKLAB_CHROMIUM)")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
            text = " ".join(page.inner_text("body").split()).lower()
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("GROKLAB_SCREENSHOT_DIR"):
                shutil.copy(shot, Path(os.environ["GROKLAB_SCREENSHOT_DIR"]) / shot.name)
        finally:
            browser.close()
    return errors, loaded, text


@pytest.mark.presets
@pytest.mark.parametrize("name", BUILT)
def test_preset_quick_shows_the_papers_result(tmp_path, name):
    d = reproduce(name, "quick", tmp_path / name, log=print)
    checks = json.loads((d / "checks.json").read_text())
    meta = json.loads((d / "preset.json").read_text())
    failed = {k: c["detail"] for k, c in checks.items() if not c["passed"]}
    assert not failed, failed
    assert meta["wall_time_s"] < 300, f"quick took {meta['wall_time_s']:.0f} s"
    errors, loaded, text = render(build_report(d), tmp_path / f"{name}.png")
    assert errors == []
    assert loaded and all(loaded) and len(loaded) == len(meta["figures"])
    assert f"checks passed {len(checks)}/{len(checks)}" in text
    for c in checks.values():
        assert " ".join(c["detail"].split()).lower() in text
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_cli_offers_every_recipe():
    import typing

    from groklab import cli

    assert set(typing.get_args(cli.PresetName)) == set(RECIPES) == {
        "power2022", "nanda2023", "liu2022", "omnigrok2023", "doshi2023", "parity2022", "grokfast2024", "prieto2025"}
