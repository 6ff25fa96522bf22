import subprocess

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

TRAINING_MARKS = ("integration", "acceptance", "presets")


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
