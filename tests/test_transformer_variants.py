"""The transformer's layouts beyond the default (models/transformer.py): post-LN blocks, fixed sinusoidal
positions and no biases, as in openai/grok (Power et al.'s code); the first norm replacing the stream and no
readout bias, as in danielmamay/grokking and ironjr/grokfast. Unit tests: no training."""

from __future__ import annotations

import math

import pytest
import torch

from groklab import RunConfig
from groklab.errors import ConfigError
from groklab.models import build_model
from groklab.models.transformer import sinusoids

GROK = {"model.norm_position": "post", "model.pos_embed": "sinusoidal", "model.transformer_bias": "none"}
DANIEL = {"model.norm_position": "pre_replace", "model.transformer_bias": "attn_mlp", "model.act": "gelu"}


def model(**over):
    torch.manual_seed(0)
    cfg = RunConfig().replace(**{"task.p": 13, "model.d_model": 16, "model.n_heads": 2, "model.d_mlp": 32, **over})
    return build_model(cfg.model, 13, 13).double()


def test_sinusoids_are_openai_groks_formula():
    d = 8
    pe = sinusoids(4, d)
    for pos in range(4):
        for i in range(d):
            want = math.sin(pos / 10000 ** (i / d)) if i % 2 == 0 else math.cos(pos / 10000 ** ((i - 1) / d))
            assert pe[pos, i].item() == pytest.approx(want, abs=1e-7)
    m = model(**{"model.pos_embed": "sinusoidal"})
    assert "W_pos" not in dict(m.named_parameters()) and torch.equal(m.state_dict()["W_pos"], sinusoids(4, 16).double())


def test_post_norm_block_is_ln_of_the_residual_sum():
    m = model(**{"model.norm_position": "post", "model.n_layers": 1})
    b = m.blocks[0]
    x = torch.randn(5, 4, 16, dtype=torch.float64)
    h = b.ln1(x + b.attn(x))
    assert torch.allclose(b(x), b.ln2(h + b.mlp(h)), atol=1e-12)
    assert isinstance(m.ln_final, torch.nn.Identity)  # openai/grok reads the last block out directly


def test_pre_replace_block_is_danielmamays():
    """danielmamay/grokking's Block.forward: x = ln_1(x); x = x + attn(x); x = x + mlp(ln_2(x)); a final norm."""
    m = model(**{**DANIEL, "model.n_layers": 1})
    b = m.blocks[0]
    x = torch.randn(5, 4, 16, dtype=torch.float64)
    h = b.ln1(x)
    h = h + b.attn(h)
    assert torch.allclose(b(x), h + b.mlp(b.ln2(h)), atol=1e-12)
    assert not torch.allclose(b(x), model(**{"model.n_layers": 1}).blocks[0](x), atol=1e-3)  # not the pre-LN block
    assert isinstance(m.ln_final, type(b.ln1))


def test_attn_mlp_bias_has_no_readout_bias():
    m = model(**DANIEL)
    biases = {n.rsplit(".", 1)[-1] for n, _ in m.named_parameters() if n.rsplit(".", 1)[-1].startswith("b_")}
    assert biases == {"b_Q", "b_K", "b_V", "b_O", "b_in", "b_out"}
    assert "b_U" not in m.state_dict() and m.b_U.abs().sum() == 0


def test_grokfast_full_is_the_authors_model_and_data():
    """ironjr/grokfast main.py: Decoder(dim 128, 2 layers, 4 heads, num_tokens p + 2, seq_len 5), its parameters
    422 784, of which one position row (seq_len 5, 4 used) and two readout columns (op, `=`) groklab does not
    have; data x·y mod 97 for 0 < y < 97, half for training."""
    from pathlib import Path

    from groklab.presets.recipes import grokfast2024
    from groklab.presets.recipes.base import Context
    from groklab.tasks import build_dataset

    cfg = grokfast2024.base_config(Context(Path("unused"), "full", print))
    m = build_model(cfg.model, 97, 97)
    d, blocks = 128, 2
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    authors = 99 * d + 5 * d + blocks * block + 2 * d + d * 99
    assert sum(p.numel() for p in m.parameters()) == authors - d - 2 * d
    assert (cfg.model.norm_position, cfg.model.act, cfg.model.transformer_bias) == ("pre_replace", "gelu", "attn_mlp")
    assert cfg.optim.warmup_from_zero and cfg.optim.name == "adam" and cfg.train.batch_size == 512 and cfg.train.batch_order == "epoch"
    data = build_dataset(cfg.task)
    assert cfg.task.n_equations == 97 * 96 and cfg.task.n_train == 97 * 96 // 2 == len(data.y_train)
    assert int(data.x_train[:, 1].min()) >= 1 and int(data.x_val[:, 1].min()) >= 1


@pytest.mark.parametrize("over", [{}, {"model.norm_position": "post"}, {"model.pos_embed": "sinusoidal"},
                                  {"model.transformer_bias": "none"}, {"model.transformer_bias": "mlp"},
                                  {**GROK, "model.init_dist": "torch"}, DANIEL, {**DANIEL, "model.init_dist": "torch"}])
def test_fast_paths_equal_the_plain_computation(over):
    """The split forward (positions before y once per x) and the answer-only last block, against the plain
    full computation (forced by an all-true key mask), in float64."""
    m = model(**over)
    pairs = torch.randint(0, 13, (64, 2), generator=torch.Generator().manual_seed(1))
    fast = m(pairs)
    plain = m(pairs, key_mask=torch.ones(64, 4, dtype=torch.bool))
    assert (fast - plain).abs().max().item() < 1e-12


def test_no_bias_has_no_bias_parameters_and_round_trips():
    m = model(**{"model.transformer_bias": "none"})
    names = [n.rsplit(".", 1)[-1] for n, _ in m.named_parameters()]
    assert all(not n.startswith("b_") for n in names)
    state = m.state_dict()
    assert not any(k.rsplit(".", 1)[-1].startswith("b_") for k in state)
    m2 = model(**{"model.transformer_bias": "none", "model.init_scale": 2.0})
    m2.load_state_dict(state)
    pairs = torch.randint(0, 13, (8, 2))
    assert torch.equal(m(pairs), m2(pairs))


def test_mlp_bias_is_nandas_layout():
    """Nanda et al.'s code: biases b_in and b_out on the MLP sublayer, none on attention or the unembedding."""
    m = model(**{"model.transformer_bias": "mlp"})
    biases = sorted(n for n, _ in m.named_parameters() if n.rsplit(".", 1)[-1].startswith("b_"))
    assert biases == ["blocks.0.mlp.b_in", "blocks.0.mlp.b_out", "blocks.1.mlp.b_in", "blocks.1.mlp.b_out"]
    from groklab import presets

    nanda = build_model(presets.nanda2023().model, 113, 113)
    params = dict(nanda.named_parameters())
    assert [n for n in params if n.rsplit(".", 1)[-1].startswith("b_")] == ["blocks.0.mlp.b_in", "blocks.0.mlp.b_out"]
    # the authors' 226 816 parameters: their W_E and W_U are 114 wide (p + `=`), ours 115 (p + op + `=`) and 113
    assert sum(p.numel() for p in params.values()) == 226_816


def test_saved_true_false_read_as_all_none():
    assert RunConfig().replace(**{"model.transformer_bias": False}).model.transformer_bias == "none"
    assert RunConfig().replace(**{"model.transformer_bias": True}).model.transformer_bias == "all"
    with pytest.raises(ConfigError, match=r"model.transformer_bias='attn' is not allowed; choose one of: all, attn_mlp, mlp, none"):
        RunConfig().replace(**{"model.transformer_bias": "attn"})


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"model.norm_position='mid' is not allowed; choose one of: pre, post, pre_replace"):
        RunConfig().replace(**{"model.norm_position": "mid"})
    with pytest.raises(ConfigError, match=r"model.pos_embed='rope' is not allowed; choose one of: learned, sinusoidal"):
        RunConfig().replace(**{"model.pos_embed": "rope"})
    with pytest.raises(ConfigError, match="needs model.layernorm=True"):
        RunConfig().replace(**{"model.norm_position": "post", "model.layernorm": False})


def test_transformer_lens_export_refuses_post_norm_in_one_line():
    from groklab.interop.transformer_lens import tl_config_fields, tl_state_dict

    with pytest.raises(ConfigError, match="model.norm_position='post' has no TransformerLens counterpart"):
        tl_config_fields(model(**GROK))
    with pytest.raises(ConfigError, match="model.norm_position='pre_replace' has no TransformerLens counterpart"):
        tl_state_dict(model(**DANIEL))
    state = tl_state_dict(model(**{"model.pos_embed": "sinusoidal", "model.transformer_bias": "none"}))
    assert torch.equal(state["pos_embed.W_pos"], sinusoids(4, 16).double()) and state["blocks.0.attn.b_Q"].abs().sum() == 0


@pytest.mark.parametrize("over", [GROK, DANIEL, {"model.layernorm": False, "model.transformer_bias": "none"}])
def test_standalone_loader_reads_every_layout(over):
    """examples/load_checkpoint.py (torch and safetensors only) computes the same logits from the state dict."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "load_checkpoint.py"
    spec = importlib.util.spec_from_file_location("load_checkpoint", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    cfg = RunConfig().replace(**{"task.p": 13, "model.d_model": 16, "model.n_heads": 2, "model.d_mlp": 32, **over})
    m = model(**over)
    pairs = torch.randint(0, 13, (32, 2))
    with torch.no_grad():
        got = ex.forward(dict(m.state_dict()), cfg.to_dict(), pairs)
        assert torch.allclose(got, m(pairs), atol=1e-10)
