"""The HTML report: self-contained, and rendered without errors in a real headless Chromium."""

import os
import re
import shutil
from pathlib import Path

import pytest

from groklab import ModelConfig, RunConfig, TaskConfig, TrainConfig, run
from groklab.errors import RunDirError
from groklab.report.html import build_report


def tiny_run(out: Path):
    cfg = RunConfig(
        task=TaskConfig(op="x+y", p=11, train_frac=0.6, corrupt_frac=0.1),
        model=ModelConfig(arch="mlp", width=48, act="quadratic"),
        train=TrainConfig(steps=300, batch_size=None, eval_points=20, threads=1),
        out=str(out),
    )
    return run(cfg)


@pytest.mark.integration
def test_report_is_self_contained_and_has_the_key_numbers(tmp_path):
    result = tiny_run(tmp_path / "r")
    index = build_report(tmp_path / "r")
    page = index.read_text()
    assert index == tmp_path / "r" / "report" / "index.html"
    # self-contained: no external resources, every image inline
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    assert page.count('src="data:image/png;base64,') >= 1
    s = result.summary
    assert f'data-key="val acc ≥ 99% at step">{s["val_acc_99_step"] if s["val_acc_99_step"] is not None else "&gt; " + str(s["stopped_step"])}<' in page
    assert "task.corrupt_frac" in page and "x+y mod 11" in page
    assert s["versions"]["torch"] in page


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(RunDirError, match="neither a run directory"):
        build_report(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        build_report(tmp_path / "nope")


def _chromium() -> str | None:
    return os.environ.get("GROKLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.integration
def test_report_renders_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the extra: pip install 'groklab[browser]'")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found: apt-get install chromium (or set GROKLAB_CHROMIUM)")
    result = tiny_run(tmp_path / "r")
    index = build_report(tmp_path / "r")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe,
            headless=True,
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
            text = page.inner_text("body")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("GROKLAB_SCREENSHOT_DIR"):  # keep the screenshot for a person to look at
                shutil.copy(shot, Path(os.environ["GROKLAB_SCREENSHOT_DIR"]) / "report.png")
        finally:
            browser.close()
    assert errors == []
    assert loaded and all(loaded)
    final = result.summary["final"]
    text = " ".join(text.split()).lower()  # the card labels are upper-cased by CSS
    assert f"{final['val_acc']:.4g}" in text and "val acc ≥ 99% at step" in text
    assert f"final val acc {final['val_acc']:.4g}" in text
    assert shot.stat().st_size > 10_000
