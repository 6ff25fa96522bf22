"""The transformer's hook points carry TransformerLens's names and meanings (issue 14.4), so code written for
one runs on the other: hook_embed is the token embedding alone, hook_pos_embed the positional one, attn.hook_q/
k/v/attn_scores/pattern/z and mlp.hook_pre/post as TransformerLens computes them. No training here."""

from __future__ import annotations

import pytest
import torch

from groklab.models import Transformer, run_with_cache

NAMES = ["hook_embed", "hook_pos_embed"] + [
    f"blocks.{i}.{n}" for i in range(2) for n in (
        "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern",
        "attn.hook_z", "mlp.hook_pre", "mlp.hook_post")
]


def _model(**kw) -> Transformer:
    torch.manual_seed(0)
    m = Transformer(7, 7, n_layers=2, d_model=16, n_heads=2, d_mlp=32, **kw).eval()
    with torch.no_grad():  # biases and LayerNorm weights away from their initial values, so each one counts
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def test_hook_points_mean_what_transformer_lens_means():
    m = _model(layernorm=False)
    pairs = torch.tensor([[1, 2], [3, 4], [6, 0]])
    tok = m.tokens(pairs)
    logits, c = run_with_cache(m, pairs)
    torch.testing.assert_close(logits, m(pairs))
    torch.testing.assert_close(c["hook_embed"], m.W_E[tok])  # the token embedding alone
    torch.testing.assert_close(c["hook_pos_embed"], m.W_pos.expand(3, -1, -1))
    torch.testing.assert_close(c["blocks.0.hook_resid_pre"], c["hook_embed"] + c["hook_pos_embed"])
    a = m.blocks[0].attn
    x = c["blocks.0.hook_resid_pre"]
    q = torch.einsum("btd,hde->bthe", x, a.W_Q) + a.b_Q  # (B, T, H, d_head)
    torch.testing.assert_close(c["blocks.0.attn.hook_q"], q)
    scores = c["blocks.0.attn.hook_attn_scores"]  # (B, H, T, T), masked above the diagonal
    assert scores.shape == (3, 2, 4, 4) and torch.isneginf(scores.triu(1)[..., 0, 1:]).all()
    torch.testing.assert_close(scores.softmax(-1), c["blocks.0.attn.hook_pattern"])
    z = c["blocks.0.attn.hook_z"]
    assert z.shape == (3, 4, 2, 8)  # (B, T, H, d_head)
    torch.testing.assert_close(z, torch.einsum("bhqk,bkhe->bqhe", c["blocks.0.attn.hook_pattern"], c["blocks.0.attn.hook_v"]))
    torch.testing.assert_close(c["blocks.1.mlp.hook_pre"].relu(), c["blocks.1.mlp.hook_post"])


def test_hook_names_and_values_match_transformer_lens():
    pytest.importorskip("transformer_lens", reason='TransformerLens export needs the extra: pip install "groklab[tl]"')
    from groklab.interop.transformer_lens import to_transformer_lens

    m = _model(layernorm=True)
    tl_model = to_transformer_lens(m)
    pairs = torch.tensor([[1, 2], [3, 4], [6, 0], [5, 5]])
    _, ours = run_with_cache(m, pairs)
    _, theirs = tl_model.run_with_cache(m.tokens(pairs))
    for name in NAMES:
        a, b = ours[name], theirs[name]
        assert a.shape == b.shape, name
        if name.endswith("hook_attn_scores"):
            if torch.allclose(b, theirs[name.replace("attn_scores", "pattern")]):
                # TransformerLens 4.x's bridge (compatibility mode) records the pattern under this name;
                # HookedTransformer records the masked scores, as groklab does.
                a = a.softmax(-1)
            else:  # masked entries: -inf here, a large negative number in some versions
                keep = torch.ones(4, 4, dtype=torch.bool).tril()
                assert (b[..., ~keep] < -1e4).all(), name
                a, b = a[..., keep], b[..., keep]
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)
