"""Interoperability: the TransformerLens export, the standalone checkpoint loader, `groklab ls`/`compare`, parquet."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from groklab import load_run, presets, run
from groklab.cli import main
from groklab.errors import ConfigError
from groklab.interop.dataframes import LS_COLUMNS, run_labels, runs_table
from groklab.models import Transformer, run_with_cache

ROOT = Path(__file__).resolve().parents[1]


# --- tiny real runs, trained once per module --------------------------------------------------------------
def train_run(out: Path, base, **dotted) -> Path:
    cfg = base.replace(**{"train.threads": 1, "train.eval_points": 6, "train.checkpoint_points": 3, "out": str(out), **dotted})
    run(cfg)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        # Power et al. and Nanda et al. as the presets build them (full width), on small tables
        # (pre-LN: TransformerLens has no post-LN blocks; fixed sinusoids and no biases, as openai/grok)
        "power": train_run(root / "power", presets.power2022(op="x/y", p=13, steps=40),
                           **{"optim.lr": 3e-3, "model.norm_position": "pre", "model.pos_embed": "sinusoidal", "model.transformer_bias": "none",
                              "model.init_overrides": []}),
        "nanda": train_run(root / "nanda", presets.nanda2023(p=17, steps=40), **{"optim.lr": 3e-3}),
        "mlp": train_run(
            root / "sub" / "mlp", presets.doshi2023(p=11, steps=30),
            **{"model.width": 24, "model.depth": 2, "model.bias": True, "model.batchnorm": True, "train.batch_size": 32},
        ),
        "mlp_embed": train_run(
            root / "sub" / "mlp_embed", presets.doshi2023(p=11, steps=30),
            **{"model.width": 24, "model.input": "embed", "model.d_embed": 8, "model.act": "gelu", "train.batch_size": None},
        ),
    }


def all_pairs(r) -> torch.Tensor:
    """Every equation of the run's data set: its training and validation inputs."""
    from groklab.tasks import build_dataset

    data = build_dataset(r.config.task)
    return torch.cat([data.x_train, data.x_val])


# --- TransformerLens ---------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("name", ["power", "nanda"])
def test_transformer_lens_logits_match(runs, name):
    pytest.importorskip("transformer_lens", reason='TransformerLens export needs the extra: pip install "groklab[tl]"')
    from groklab.interop.transformer_lens import max_logit_diff, tl_version, to_transformer_lens

    r = load_run(runs[name])
    model = r.load_model()
    tl_model = to_transformer_lens(r)  # from the run directory: the last checkpoint
    pairs = all_pairs(r)
    diff = max_logit_diff(model, tl_model, pairs)
    print(f"TransformerLens {tl_version()} ({type(tl_model).__name__}), {name}: max |Δlogit| = {diff:.3g} over {len(pairs)} equations")
    assert model.W_E.dtype == torch.float32
    assert diff <= 1e-4
    # The comparison has teeth: a small change to one TransformerLens weight shows up in the logits.
    with torch.no_grad():
        list(tl_model.parameters())[-1].add_(1e-2)  # the unembedding
    assert max_logit_diff(model, tl_model, pairs) > 1e-3


@pytest.mark.integration
def test_transformer_lens_activations_and_checks(runs):
    pytest.importorskip("transformer_lens", reason='TransformerLens export needs the extra: pip install "groklab[tl]"')
    from groklab.interop.transformer_lens import max_logit_diff, to_transformer_lens

    r = load_run(runs["power"])
    step = r.checkpoint_steps[0]
    model = r.load_model(step)
    tl_model = to_transformer_lens(runs["power"], step=step)  # a path and an early checkpoint
    assert max_logit_diff(model, tl_model) <= 1e-4
    pairs = all_pairs(r)[:20]
    _, ours = run_with_cache(model, pairs)
    _, theirs = tl_model.run_with_cache(model.tokens(pairs))
    for layer in range(2):
        a, b = ours[f"blocks.{layer}.attn.hook_pattern"], theirs[f"blocks.{layer}.attn.hook_pattern"]
        assert a.shape == b.shape == (20, 4, 4, 4)
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.allclose(ours[f"blocks.{layer}.mlp.hook_post"], theirs[f"blocks.{layer}.mlp.hook_post"], atol=1e-4)
    # GELU models export too; the caller's random stream is left where it was
    torch.manual_seed(1)
    gelu = Transformer(7, 7, n_layers=1, d_model=16, n_heads=2, d_mlp=32, act="gelu").eval()
    with torch.no_grad():  # every bias and LayerNorm weight away from its initial value, so each one counts
        for p in gelu.parameters():
            p.add_(0.1 * torch.randn_like(p))
    state = torch.get_rng_state()
    assert max_logit_diff(gelu, to_transformer_lens(gelu)) <= 1e-4
    assert torch.equal(state, torch.get_rng_state())
    with pytest.raises(ConfigError, match=r"model.act='quadratic'.*relu, gelu"):
        to_transformer_lens(Transformer(7, 7, n_layers=1, d_model=16, n_heads=2, d_mlp=32, act="quadratic"))
    with pytest.raises(ConfigError, match=r"only model.arch='transformer'"):
        to_transformer_lens(runs["mlp"])


# --- the standalone loader (torch + safetensors only) ------------------------------------------------------
def _example():
    path = ROOT / "examples" / "load_checkpoint.py"
    text = path.read_text()
    assert "import groklab" not in text and "from groklab" not in text
    spec = importlib.util.spec_from_file_location("load_checkpoint", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.integration
@pytest.mark.parametrize("name", ["power", "nanda", "mlp", "mlp_embed"])
def test_standalone_loader_reproduces_the_model(runs, name):
    ex = _example()
    r = load_run(runs[name])
    pairs = all_pairs(r)
    for step in (r.checkpoint_steps[1], None):
        weights, config = ex.load(runs[name], step)
        assert config == json.loads((runs[name] / "config.json").read_text())
        with torch.no_grad():
            expected = r.load_model(step)(pairs)
            got = ex.forward(weights, config, pairs)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (got - expected).abs().max()


# --- ls, compare, parquet --------------------------------------------------------------------------------------
@pytest.mark.integration
def test_ls_lists_runs_with_config_and_summary(runs, tmp_path, capsys):
    root = runs["power"].parent
    unfinished = root / "sub" / "unfinished"
    shutil.copytree(runs["mlp"], unfinished)
    (unfinished / "summary.json").unlink()
    (root / "not_a_run").mkdir(exist_ok=True)
    try:
        df = runs_table(root)
        assert list(df.columns) == LS_COLUMNS
        assert sorted(df["run"]) == ["nanda", "power", "sub/mlp", "sub/mlp_embed", "sub/unfinished"]
        by = df.set_index("run")
        power = load_run(runs["power"])
        assert by.loc["power", "op"] == "x/y" and by.loc["power", "p"] == 13 and by.loc["power", "arch"] == "transformer"
        assert by.loc["nanda", "train_frac"] == 0.3 and by.loc["nanda", "steps"] == 40
        assert by.loc["power", "final_val_acc"] == pytest.approx(power.rows[-1]["val_acc"])
        assert bool(by.loc["power", "finished"]) and not bool(by.loc["sub/unfinished", "finished"])
        assert by.loc["sub/unfinished", "last_step"] == 30  # read from metrics.jsonl while summary.json is missing

        main(["ls", str(root), "--out", str(tmp_path / "runs.csv")])
        out = capsys.readouterr().out
        for name in ("power", "nanda", "sub/mlp_embed", "sub/unfinished", "x/y", "transformer"):
            assert name in out
        assert f"{100 * power.rows[-1]['val_acc']:.1f}%" in out
        assert (tmp_path / "runs.csv").read_text().splitlines()[0] == ",".join(LS_COLUMNS)
        with pytest.raises(SystemExit):
            main(["ls", str(root / "missing")])
    finally:
        shutil.rmtree(unfinished)


@pytest.mark.integration
def test_compare_overlays_runs(runs, tmp_path, capsys):
    a, b = load_run(runs["mlp"]), load_run(runs["mlp_embed"])
    labels = run_labels([a, b])
    assert labels[0].startswith("model.act=quadratic, ") and labels[1].startswith("model.act=gelu, ")  # the fields that differ
    assert "task." not in labels[0] and "…" in labels[0]  # equal fields left out, at most three shown
    out = tmp_path / "fig" / "compare.png"
    main(["compare", str(runs["mlp"]), str(runs["mlp_embed"]), str(runs["power"]), "--out", str(out)])
    assert str(out) in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path / "nope"), "--out", str(out)])


@pytest.mark.integration
def test_metrics_to_parquet(runs):
    pytest.importorskip("pyarrow", reason='parquet needs the extra: pip install "groklab[parquet]"')
    import pandas as pd

    r = load_run(runs["mlp"])
    path = r.to_parquet()
    assert path == runs["mlp"] / "metrics.parquet"
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, r.metrics)
    path.unlink()
