"""`model.init_dist`: PyTorch's module defaults per role (models/init.py), unit tier (no training).

The expected fan-ins are written out per architecture from the authors' layers (nn.Linear(in, out) has
fan-in `in`), not computed by the code under test."""

import math

import pytest
import torch

from groklab import presets
from groklab.config import ModelConfig, parse_init_overrides
from groklab.errors import ConfigError
from groklab.models import DenseMLP, MLP, ToyModel, Transformer, build_model
from groklab.models.init import apply_init, role_of

M = 13  # elements (the transformer's vocabulary is M + 2)
D, H, D_MLP = 32, 4, 96
WIDTH, D_IN, D_EMBED = 300, 40, 8

# arch -> (ModelConfig fields, d_input, expected fan-in per role; "N1": N(0, 1); "keep": the model's own draw)
CASES = {
    "transformer": (dict(arch="transformer", d_model=D, n_heads=H, d_mlp=D_MLP), None, {
        "W_E": "N1", "W_pos": "N1", "W_Q": D, "W_K": D, "W_V": D, "W_O": D, "W_in": D, "W_out": D_MLP, "W_U": D,
        "b_Q": D, "b_K": D, "b_V": D, "b_O": D, "b_in": D, "b_out": D_MLP, "b_U": D}),
    "mlp_onehot": (dict(arch="mlp", input="onehot", width=WIDTH, depth=2, bias=True), None, {
        "W_in": 2 * M, "b_in": 2 * M, "W_hidden": WIDTH, "b_hidden": WIDTH, "W_out": WIDTH, "b_out": WIDTH}),
    "mlp_embed": (dict(arch="mlp", input="embed", d_embed=D_EMBED, width=WIDTH, depth=1, bias=True), None, {
        "W_E": "N1", "W_in": 2 * D_EMBED, "b_in": 2 * D_EMBED, "W_out": WIDTH, "b_out": WIDTH}),
    "dense": (dict(arch="mlp", width=WIDTH, depth=2, bias=True), D_IN, {
        "W_in": D_IN, "b_in": D_IN, "W_hidden": WIDTH, "b_hidden": WIDTH, "W_out": WIDTH, "b_out": WIDTH}),
    "toy": (dict(arch="toy", d_embed=D_EMBED, width=WIDTH, depth=2, bias=True), None, {
        "W_E": "keep", "W_in": D_EMBED, "b_in": D_EMBED, "W_hidden": WIDTH, "b_hidden": WIDTH, "W_out": WIDTH, "b_out": WIDTH}),
}
NORMS = ("w", "b", "weight", "bias")  # LayerNorm (w, b) and BatchNorm (weight, bias): 1 and 0 in either family


def _default(case: str, seed: int = 0, **kw) -> torch.nn.Module:
    fields, d_input, _ = CASES[case]
    torch.manual_seed(seed)
    return build_model(ModelConfig(**fields, **kw), M, M, d_input)


def _torch(case: str, seed: int = 0, **kw) -> torch.nn.Module:
    """The model `init_dist='torch'` builds: the default draw, then apply_init in build_model's order."""
    fields, d_input, _ = CASES[case]
    cfg = ModelConfig(**fields, **kw, init_dist="torch")
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**fields), M, M, d_input)
    apply_init(model, cfg.init_std, parse_init_overrides(cfg.init_overrides), cfg.arch, cfg.init_dist)
    return model


def _check_uniform(name: str, p: torch.Tensor, bound: float) -> None:
    assert p.abs().max().item() <= bound * (1 + 1e-6), name
    if p.numel() >= 100:
        assert p.abs().max().item() >= 0.9 * bound, name
    if p.numel() >= 500:
        assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.12), name
        assert abs(p.mean().item()) < 0.1 * bound, name


@pytest.mark.parametrize("case", list(CASES))
def test_torch_draws_each_role_as_pytorchs_module_default(case):
    m, ref = _torch(case), _default(case)
    want = CASES[case][2]
    seen = set()
    for (name, p), (_, q) in zip(m.named_parameters(), ref.named_parameters()):
        role = role_of(name)
        if role in NORMS:
            assert torch.equal(p, q), name
            continue
        seen.add(role)
        rule = want[role]
        if rule == "keep":
            assert torch.equal(p, q), name
        elif rule == "N1":
            assert p.std().item() == pytest.approx(1.0, rel=0.1) and p.abs().max().item() > 2.0, name
        else:
            _check_uniform(name, p, 1 / math.sqrt(rule))
    assert seen == set(want)


def test_toy_embeddings_keep_liu_et_als_uniform_half():
    m = _torch("toy")
    assert m.W_E.min().item() >= -0.5 and m.W_E.max().item() < 0.5


def test_power2022_transformer_fan_ins_at_full_size():
    """openai/grok: per-head nn.Linear(128, 32), Wo nn.Linear(128, 128), FFN nn.Linear(128, 512) and (512, 128),
    readout nn.Linear(128, vocab): bounds 1/√128 except the FFN's second layer, 1/√512."""
    from groklab.models import build_model

    cfg = presets.power2022(p=11)
    torch.manual_seed(0)
    model = build_model(cfg.model, 11, 11)
    b = model.blocks[1]
    for w in (b.attn.W_Q, b.attn.W_K, b.attn.W_V, b.attn.W_O, b.mlp.W_in, model.W_U):
        _check_uniform("w", w, 128 ** -0.5)
    _check_uniform("W_out", b.mlp.W_out, 512 ** -0.5)
    assert model.W_E.std().item() == pytest.approx(1.0, rel=0.1)
    # the authors' layers have no biases: none is a parameter (zero buffers stand in), positions are fixed
    assert not [n for n, _ in model.named_parameters() if role_of(n).startswith("b_") or role_of(n) == "W_pos"]


def test_default_is_bit_identical_to_the_model_built_without_the_field():
    """init_dist='normal' (the default) redraws nothing: the same bits as the model class's own draw, and the
    global generator is where that draw left it."""
    builds = {
        "transformer": lambda: Transformer(M, M, n_layers=2, d_model=D, n_heads=H, d_mlp=D_MLP),
        "mlp_onehot": lambda: MLP(M, M, width=WIDTH, depth=2, act="relu", bias=True),
        "dense": lambda: DenseMLP(D_IN, M, width=WIDTH, depth=2, act="relu", bias=True),
        "toy": lambda: ToyModel(M, M, d_embed=D_EMBED, width=WIDTH, depth=2, act="relu", bias=True),
    }
    for case, make in builds.items():
        torch.manual_seed(5)
        a = make()
        after_a = torch.rand(4)
        b = _default(case, seed=5, init_dist="normal")
        after_b = torch.rand(4)
        pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
        assert pa.keys() == pb.keys(), case
        assert all(torch.equal(pa[k], pb[k]) for k in pa), case
        assert torch.equal(after_a, after_b), case
    assert ModelConfig().init_dist == "normal"


@pytest.mark.parametrize("case", ["transformer", "toy", "dense"])
def test_same_seed_same_weights(case):
    a, b, c = _torch(case, seed=7), _torch(case, seed=7), _torch(case, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_overrides_and_init_std_keep_each_roles_family():
    """Under 'torch' a std is a std: U(±√3·s) for linear weights and biases, N(0, s²) for embeddings; 0 gives
    zeros. W_Q = 1/√(2d) is nn.MultiheadAttention's xavier_uniform on its (3d, d) projection."""
    s = (2 * D) ** -0.5
    m = _torch("transformer", init_overrides=[f"W_Q={s}", "b_Q=0", "W_E=0.3", "b_in=0.2"])
    for blk in m.blocks:
        _check_uniform("W_Q", blk.attn.W_Q, math.sqrt(6 / (4 * D)))
        assert (blk.attn.b_Q == 0).all()
        _check_uniform("W_K", blk.attn.W_K, D ** -0.5)  # not overridden: nn.Linear's default
        assert blk.mlp.b_in.abs().max().item() <= math.sqrt(3) * 0.2 + 1e-6
    assert m.W_E.std().item() == pytest.approx(0.3, rel=0.1) and m.W_E.abs().max().item() > math.sqrt(3) * 0.3
    d = _torch("dense", init_std=0.01)
    _check_uniform("W_in", d.W_in, math.sqrt(3) * 0.01)
    _check_uniform("b_in", d.b_in, D_IN ** -0.5)  # biases keep the torch draw: init_std is for weight matrices


def test_init_scale_multiplies_the_torch_draw():
    fields, _, _ = CASES["dense"]
    torch.manual_seed(1)
    m = build_model(ModelConfig(**fields, init_dist="torch", init_scale=3.0), M, M, D_IN)
    assert m.W_in.abs().max().item() <= 3.0 * D_IN ** -0.5 * (1 + 1e-6)


def test_build_model_honours_init_dist():
    """build_model passes model.init_dist on to apply_init (models/__init__.py)."""
    fields, d_input, _ = CASES["dense"]
    torch.manual_seed(2)
    m = build_model(ModelConfig(**fields, init_dist="torch"), M, M, d_input)
    _check_uniform("W_in", m.W_in, D_IN ** -0.5)
    assert (m.b_in != 0).all()


def test_presets_use_the_authors_init():
    from pathlib import Path

    from groklab.presets.recipes import grokfast2024, liu2022, parity2022, power2022
    from groklab.presets.recipes.base import Context

    power = presets.power2022().model
    # openai/grok's transformer: PyTorch's draw, post-LN, fixed sinusoids, no biases at all
    assert (power.init_dist, power.init_overrides, power.norm_position, power.pos_embed, power.transformer_bias) == (
        "torch", [], "post", "sinusoidal", "none")
    for scale in ("full", "quick", "smoke"):
        ctx = Context(Path("unused"), scale, lambda s: None)
        # quick keeps the default draw, under which the shortened runs show the paper's result (the recipes' docstrings)
        assert liu2022.base_config(ctx).model.init_dist == ("normal" if scale == "quick" else "torch")
        t = power2022.transformer(ctx).model
        want_power = ("normal", "pre", "learned", "all") if scale == "quick" else ("torch", "post", "sinusoidal", "none")
        assert (t.init_dist, t.norm_position, t.pos_embed, t.transformer_bias) == want_power
        par = parity2022.base_config(ctx).model
        assert par.init_dist == "torch" and par.init_overrides == ["b_out=0"]  # Merrill et al.'s FF1: no output bias
    gf = grokfast2024.base_config(Context(Path("unused"), "full", lambda s: None)).model
    want = {"W_Q": 1 / 16, "W_K": 1 / 16, "W_V": 1 / 16, "b_Q": 0.0, "b_K": 0.0, "b_V": 0.0, "b_O": 0.0}  # no b_U: their head has none
    assert gf.init_dist == "torch" and parse_init_overrides(gf.init_overrides) == pytest.approx(want)
    assert (gf.norm_position, gf.transformer_bias, gf.act) == ("pre_replace", "attn_mlp", "gelu")


@pytest.mark.parametrize("value", ["xavier", "Torch", ""])
def test_bad_init_dist_is_one_line_naming_field_value_and_choices(value):
    with pytest.raises(ConfigError) as e:
        ModelConfig(init_dist=value)
    msg = str(e.value)
    assert "\n" not in msg and "model.init_dist" in msg and repr(value) in msg and "normal" in msg and "torch" in msg
    with pytest.raises(ConfigError, match="model.init_dist"):
        apply_init(_default("dense"), None, {}, "mlp", value)
