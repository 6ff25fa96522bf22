import subprocess

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

TRAINING_MARKS = ("integration", "acceptance", "presets")


def pytest_collection_modifyitems(config, items):
    """The presets tier (minutes a preset) runs only when `-m` names it: `-m "not acceptance"` or the unit
    tier's `-m "not integration and not acceptance"` replace addopts' `-m "not presets"` and would pull it in."""
    if "presets" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("presets")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("presets")]


@pytest.fixture(autouse=True)
def _honest_tiers(request, monkeypatch):
    """An unmarked test is a unit test: it must not train (take an optimizer step) or spawn a process.

    Tests that do carry `@pytest.mark.integration`, `acceptance` or `presets`, so `-m "not integration and
    not acceptance"` really is the seconds-long unit tier."""
    if any(request.node.get_closest_marker(m) for m in TRAINING_MARKS):
        yield
        return
    where = request.node.nodeid

    def refuse_step(optimizer, args, kwargs):
        raise AssertionError(f"{where} takes an optimizer step but is not marked integration/acceptance")

    real_popen_init = subprocess.Popen.__init__

    def refuse_spawn(self, *args, **kwargs):
        raise AssertionError(f"{where} spawns a process but is not marked integration/acceptance")

    handle = register_optimizer_step_pre_hook(refuse_step)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_spawn)
    try:
        yield
    finally:
        handle.remove()
        monkeypatch.setattr(subprocess.Popen, "__init__", real_popen_init)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Small models train faster on one thread here, and a fixed count keeps float reductions reproducible.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def strip_time(rows):
    """Metric rows without the wall-clock column, which legitimately differs between runs."""
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


# --- shared builders -------------------------------------------------------------------------------------
def assert_rows_close(rows, solo_rows, tol):
    """Metric rows equal to `tol` (elapsed_s aside): a stacked member against its run alone."""
    assert [r["step"] for r in rows] == [r["step"] for r in solo_rows]
    for a, b in zip(rows, solo_rows):
        assert set(a) == set(b)
        for k in a:
            if k != "elapsed_s" and a[k] is not None:
                assert a[k] == pytest.approx(b[k], abs=tol, rel=tol), (k, a["step"])


def tiny_transformer(out=None, **dotted):
    """A 1-layer transformer on x+y mod 13 (a step takes about a millisecond); `dotted` overrides fields
    ("train.steps": 10, ...) in one go, so overrides that only hold together are validated together."""
    from groklab.config import ModelConfig, RunConfig, TaskConfig, TrainConfig

    cfg = RunConfig(
        task=TaskConfig(p=13, train_frac=0.5),
        model=ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32),
        train=TrainConfig(steps=40, batch_size=32, threads=1, eval_points=8, checkpoint_points=8),
        out=None if out is None else str(out),
    )
    return cfg.replace(**dotted) if dotted else cfg


def tiny_mlp(out=None, **dotted):
    """Doshi et al.'s quadratic MLP, 8 neurons wide, on x+y mod 11, full batch, 20 steps."""
    from groklab.config import RunConfig

    return RunConfig().replace(**{
        "task.p": 11, "task.train_frac": 0.5, "model.arch": "mlp", "model.width": 8, "model.act": "quadratic",
        "train.steps": 20, "train.batch_size": None, "train.eval_points": 5, "train.checkpoint_points": 2,
        "out": None if out is None else str(out), **dotted,
    })


def chromium_or_skip():
    """playwright's sync API and a Chromium executable, or skip the test (before it spends time training)."""
    import os
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the extra: pip install 'groklab[browser]'")
    exe = os.environ.get("GROKLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium found: apt-get install chromium (or set GROKLAB_CHROMIUM)")
    return sync_api, exe


def render_in_chromium(index, shot):
    """Open an HTML page in headless Chromium (skips without playwright or a Chromium): console errors, whether
    each image loaded, and the page's text (whitespace collapsed, lower case: CSS upper-cases the card labels).
    Saves a full-page screenshot to `shot` (and copies it to $GROKLAB_SCREENSHOT_DIR when set)."""
    import os
    import shutil
    from pathlib import Path

    sync_api, exe = chromium_or_skip()
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
            page.goto(Path(index).as_uri())
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
            text = " ".join(page.inner_text("body").split()).lower()
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("GROKLAB_SCREENSHOT_DIR"):  # keep the screenshot for a person to look at
                shutil.copy(shot, Path(os.environ["GROKLAB_SCREENSHOT_DIR"]) / Path(shot).name)
        finally:
            browser.close()
    return errors, loaded, text
