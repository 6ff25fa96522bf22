"""Model shapes, parameter counts, role names, the answer-position loss, init scale, hooks."""

import math

import pytest
import torch
import torch.nn.functional as F

from groklab import ModelConfig, presets
from groklab.models import build_model, count_params, run_with_cache
from groklab.train.optim import loss_fn


def test_power_model_has_about_4e5_non_embedding_parameters():
    cfg = presets.power2022()
    model = build_model(cfg.model, 97, 97)
    n = count_params(model, embeddings=False)
    assert 3.5e5 < n < 4.5e5, n
    names = dict(model.named_parameters())
    for role in ("W_E", "W_U", "blocks.0.attn.W_Q", "blocks.1.attn.W_O", "blocks.0.mlp.W_in", "blocks.1.mlp.W_out"):
        assert role in names
    assert "W_pos" in dict(model.named_buffers())  # openai/grok's fixed sinusoids: not trained
    assert names["blocks.0.attn.W_Q"].shape == (4, 128, 32)
    assert names["W_E"].shape == (99, 128)  # 97 elements + op + '='


def test_nanda_model_is_one_layer_without_layernorm():
    model = build_model(presets.nanda2023().model, 113, 113)
    names = [n for n, _ in model.named_parameters()]
    assert not any("ln" in n for n in names)
    assert len(model.blocks) == 1 and model.n_ctx == 3
    assert model(torch.tensor([[3, 4], [112, 0]])).shape == (2, 113)


def test_logits_depend_only_on_the_answer_position():
    """Whatever the model would predict at the earlier positions cannot reach the loss."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64), 11, 11)
    x, y = torch.tensor([[1, 2], [3, 4], [10, 0]]), torch.tensor([3, 7, 10])
    base = model(x)

    def scramble(module, inputs, out):
        out = out.clone()
        out[:, :-1] = torch.randn_like(out[:, :-1]) * 1e3
        return out

    handle = model.hook_logits.register_forward_hook(scramble)
    try:
        scrambled = model(x)
    finally:
        handle.remove()
    assert torch.allclose(base, scrambled)
    # and the loss is cross-entropy of the last position's logits against the answer
    _, cache = run_with_cache(model, x)
    assert torch.allclose(loss_fn(base, y, "ce"), F.cross_entropy(cache["hook_logits"][:, -1], y), atol=1e-6)


def test_answer_does_not_leak_into_the_input():
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32), 7, 7)
    tok = model.tokens(torch.tensor([[5, 6]]))
    assert tok.tolist() == [[5, 7, 6, 8]]  # x, op, y, = ; the answer is never a token


@pytest.mark.parametrize("arch", ["transformer", "mlp"])
def test_init_scale_multiplies_every_initial_weight(arch):
    torch.manual_seed(7)
    a = build_model(ModelConfig(arch=arch, d_model=16, n_heads=2, d_mlp=32, width=24), 11, 11)
    torch.manual_seed(7)
    b = build_model(ModelConfig(arch=arch, d_model=16, n_heads=2, d_mlp=32, width=24, init_scale=3.0), 11, 11)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.allclose(pb, 3.0 * pa), na


def test_onehot_mlp_equals_explicit_onehot_matmul():
    torch.manual_seed(1)
    p = 13
    model = build_model(ModelConfig(arch="mlp", width=20, act="quadratic", bias=True), p, p)
    with torch.no_grad():
        model.b_in.normal_()
        model.b_out.normal_()
    x = torch.tensor([[0, 12], [5, 5], [7, 1]])
    onehot = torch.cat([F.one_hot(x[:, 0], p), F.one_hot(x[:, 1], p)], 1).float()
    expected = ((onehot @ model.W_in + model.b_in) ** 2) @ model.W_out + model.b_out
    assert torch.allclose(model(x), expected, atol=1e-5)
    assert model.W_in.shape == (2 * p, 20) and model.W_out.shape == (20, p)


def test_doshi_mlp_parameter_count():
    model = build_model(presets.doshi2023().model, 97, 97)
    assert count_params(model) == 2 * 97 * 500 + 500 * 97  # no biases


@pytest.mark.parametrize("act", ["relu", "gelu", "quadratic"])
def test_mlp_depth_embed_and_activations(act):
    model = build_model(ModelConfig(arch="mlp", input="embed", d_embed=8, width=16, depth=3, act=act, bias=True), 11, 5)
    assert model(torch.tensor([[1, 2], [3, 4]])).shape == (2, 5)
    assert len(model.W_hidden) == 2 and model.W_E.shape == (11, 8) and model.W_in.shape == (16, 16)


def test_hooks_do_not_change_outputs():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64), 11, 11).eval()
    x = torch.randint(0, 11, (9, 2))
    logits, cache = run_with_cache(model, x)
    assert torch.allclose(logits, model(x), atol=1e-5)
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert pattern.shape == (9, 4, 4, 4)
    assert torch.allclose(pattern.sum(-1), torch.ones(9, 4, 4))
    assert (pattern.triu(1) == 0).all()  # causal
    assert cache["blocks.1.mlp.hook_post"].shape == (9, 4, 64)


@pytest.mark.parametrize("n_layers,layernorm,op_token", [(1, False, False), (2, True, True)])
def test_answer_only_last_block_equals_the_full_computation(n_layers, layernorm, op_token):
    # Unhooked, the last block runs at the answer position alone; a hook on the logits forces every position.
    torch.manual_seed(0)
    cfg = ModelConfig(n_layers=n_layers, d_model=32, n_heads=4, d_mlp=64, layernorm=layernorm, op_token=op_token)
    model = build_model(cfg, 13, 13).double()
    x = torch.randint(0, 13, (50, 2))
    fast = model(x)
    handle = model.hook_logits.register_forward_hook(lambda *a: None)
    full = model(x)
    handle.remove()
    assert torch.allclose(fast, full, atol=1e-12, rtol=0)
    # and the gradients agree too
    g_fast = torch.autograd.grad(fast.square().sum(), list(model.parameters()), allow_unused=True)
    handle = model.hook_logits.register_forward_hook(lambda *a: None)
    g_full = torch.autograd.grad(model(x).square().sum(), list(model.parameters()), allow_unused=True)
    handle.remove()
    for a, b in zip(g_fast, g_full):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-10, rtol=0)
    # and it is cheaper: the last block's MLP and attention output run at one position instead of all
    from torch.utils.flop_counter import FlopCounterMode

    def flops(hook: bool) -> int:
        handle = model.hook_logits.register_forward_hook(lambda *a: None) if hook else None
        with FlopCounterMode(display=False) as counter:
            model(x)
        if handle:
            handle.remove()
        return counter.get_total_flops()

    assert flops(hook=False) < 0.8 * flops(hook=True)


def test_initial_logits_have_unit_scale():
    # An init that keeps the residual stream O(1) — no head starts saturated.
    torch.manual_seed(0)
    model = build_model(presets.power2022().model, 97, 97)
    logits = model(torch.randint(0, 97, (256, 2)))
    assert 0.1 < logits.std().item() < 10 and math.isfinite(logits.abs().max().item())
