"""The benchmark scripts a GPU session runs once (benchmarks/gpu.py): the same code on a CPU at toy size, so
that the one short device run cannot fail on a bug."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_grid_sizes():
    gpu = load("gpu")
    g = gpu.grid(1000)
    assert len(g["optim.lr"]) * len(g["optim.weight_decay"]) == 1000
    assert g["optim.weight_decay"][0] == 0.0 and min(g["optim.lr"]) == 1e-4 and max(g["optim.lr"]) == 0.1


@pytest.mark.integration
def test_gpu_script_on_cpu(tmp_path):
    gpu = load("gpu")
    pd = gpu.phase_diagram(tmp_path, "cpu", 4, 30)
    assert pd["runs"] == 4 and pd["executor"] == "batched" and pd["per_run_fallbacks"] == 0
    rate = gpu.power_rate(tmp_path, "cpu", 3, warmup=1)
    assert rate["steps_per_s"] > 0
    summary = json.loads((tmp_path / "power" / "summary.json").read_text())
    assert summary["steps"] == 4
