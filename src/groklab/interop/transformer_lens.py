"""Export a groklab transformer to TransformerLens (the optional extra `tl`).

groklab's transformer already names and shapes its weights as TransformerLens does (`W_E`, `W_pos`,
`blocks.i.attn.W_Q` (heads, d, d_head), `W_O` (heads, d_head, d), `mlp.W_in` (d, d_mlp), `W_U`, `b_U`,
LayerNorm `w`/`b`), so the export is a renaming of a few top-level keys plus a config, not a rewrite:

* TransformerLens 4.x removed `HookedTransformer`; its replacement for models built from scratch is
  `TransformerBridge.boot_native(TransformerBridgeConfig)`, which takes HookedTransformer-format state
  dicts through `convert_tl_checkpoint`. That is what we build there, in compatibility mode (the legacy
  hook names such as `blocks.0.attn.hook_pattern`) with *no* weight processing.
* TransformerLens 2.x/3.x: a `HookedTransformer` from a `HookedTransformerConfig`, weights loaded as they
  are (no `fold_ln`, `center_writing_weights`, `center_unembed`: those change the logits by a constant
  per position or move LayerNorm weights around; call `process_weights` yourself if you want them).

Either way the result takes token sequences, not operand pairs: `model.tokens(pairs)` gives them, as
(x, op, y, =) or (x, y, =) with `op` = n_elements and `=` = n_elements + 1, and groklab's logits are the
TransformerLens logits at the last position. LayerNorm eps is 1e-5 on both sides (F.layer_norm's default);
the embedding has n_elements + 2 rows (`d_vocab`), the unembedding n_classes columns (`d_vocab_out`); no
BOS token is prepended.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from groklab.errors import ConfigError
from groklab.errors import require
from groklab.models.transformer import LayerNorm, Transformer

LN_EPS = 1e-5  # F.layer_norm's default, which groklab's LayerNorm uses
_ACT_NAMES = {F.relu: "relu", F.gelu: "gelu"}  # TransformerLens's "gelu" is the exact (erf) GELU, as F.gelu


def _as_model(model_or_run: Any, step: int | None) -> nn.Module:
    """A groklab model from a model, a `Run`, or a run directory path (the checkpoint at `step`, default last)."""
    if isinstance(model_or_run, nn.Module):
        return model_or_run
    from groklab.store import Run, load_run

    run = model_or_run if isinstance(model_or_run, Run) else load_run(os.fspath(model_or_run))
    return run.load_model(step)


def _check_exportable(model: nn.Module) -> None:
    if not isinstance(model, Transformer):
        raise ConfigError(
            f"only model.arch='transformer' has a TransformerLens counterpart; this model is a {type(model).__name__}"
        )
    if model.blocks and (model.blocks[0].post_norm or model.blocks[0].replace):
        name = "post" if model.blocks[0].post_norm else "pre_replace"
        raise ConfigError(f"model.norm_position={name!r} has no TransformerLens counterpart (its blocks normalize each "
                          "sublayer's input and add to the stream itself); export supports model.norm_position='pre'")
    act = model.blocks[0].mlp.act
    if act not in _ACT_NAMES:
        raise ConfigError(
            f"model.act={getattr(act, '__name__', act)!r} has no TransformerLens activation; export supports "
            f"model.act in: {', '.join(_ACT_NAMES.values())}"
        )


def tl_config_fields(model: Transformer) -> dict[str, Any]:
    """The HookedTransformerConfig / TransformerBridgeConfig fields that describe `model`, read off its weights."""
    _check_exportable(model)
    attn = model.blocks[0].attn
    d_vocab, d_model = model.W_E.shape
    return dict(
        n_layers=len(model.blocks),
        d_model=d_model,
        n_heads=attn.n_heads,
        d_head=attn.d_head,
        d_mlp=model.blocks[0].mlp.W_in.shape[1],
        d_vocab=d_vocab,  # n_elements + 2: the elements, `op` and `=`
        d_vocab_out=model.W_U.shape[1],  # n_classes
        n_ctx=model.n_ctx,
        act_fn=_ACT_NAMES[model.blocks[0].mlp.act],
        normalization_type="LN" if isinstance(model.ln_final, LayerNorm) else None,
        eps=LN_EPS,
        positional_embedding_type="standard",
        attn_only=False,
        default_prepend_bos=False,
    )


def tl_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """`model`'s weights under HookedTransformer's keys: only the embeddings and the unembedding move
    (`W_E` -> `embed.W_E`, `W_pos` -> `pos_embed.W_pos`, `W_U`/`b_U` -> `unembed.*`); shapes are unchanged.
    Fixed sinusoidal positions export as TransformerLens's (learned) W_pos holding the same values."""
    _check_exportable(model)
    moved = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U", "b_U": "unembed.b_U"}
    state = dict(model.state_dict())
    # model.transformer_bias attn_mlp, mlp or none: the missing biases are zero buffers outside the state dict; TransformerLens has them
    state.update({k: v for k, v in model.named_buffers() if k not in state})
    return {moved.get(k, k): v.detach().clone() for k, v in state.items()}


def tl_version() -> str:
    return importlib.metadata.version("transformer-lens")


def to_transformer_lens(model_or_run: Any, step: int | None = None, *, device: str | torch.device = "cpu") -> nn.Module:
    """A TransformerLens model computing the same logits as a groklab transformer.

    `model_or_run`: a groklab `Transformer`, a `Run` (`load_run(dir)`) or a run directory path; for a run,
    `step` picks the checkpoint (default: the last). Returns a `TransformerBridge` on TransformerLens 4.x
    (compatibility mode, legacy hook names, no weight processing) or a `HookedTransformer` on 2.x/3.x, in
    eval mode and the groklab model's dtype. Feed it `model.tokens(pairs)` and read position -1.
    """
    model = _as_model(model_or_run, step)
    fields = tl_config_fields(model)
    state = tl_state_dict(model)
    dtype = model.W_E.dtype
    tl = require("transformer_lens", "tl", "the TransformerLens export")
    major = int(tl_version().split(".")[0])
    # Building the TL model initialises weights we overwrite at once; keep the caller's RNG stream intact.
    with torch.random.fork_rng(devices=[]):
        if major >= 4:
            out = _bridge(fields, state, dtype, device)
        else:
            out = _hooked_transformer(tl, fields, state, dtype, device)
    return out.eval()


def _bridge(fields: dict, state: dict[str, torch.Tensor], dtype: torch.dtype, device) -> nn.Module:
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge.sources.native import boot as boot_native
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    cfg = TransformerBridgeConfig(
        **fields, architecture="TransformerLensNative", model_name="groklab", dtype=dtype, init_weights=False,
    )
    bridge = boot_native(cfg, device=device, dtype=dtype, model_name="groklab")
    converted = convert_tl_checkpoint(state, bridge.cfg)
    result = bridge.load_state_dict({k: v.to(device) for k, v in converted.items()}, strict=True)
    if result.missing_keys or result.unexpected_keys:  # strict=True raises first; this guards a lenient override
        raise RuntimeError(f"TransformerLens bridge load: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    # Legacy hook names (hook_pattern, hook_z, mlp.hook_post, ...) without touching the weights.
    bridge.enable_compatibility_mode(disable_warnings=True, no_processing=True)
    return bridge


def _hooked_transformer(tl, fields: dict, state: dict[str, torch.Tensor], dtype: torch.dtype, device) -> nn.Module:
    cfg = tl.HookedTransformerConfig(**fields, dtype=dtype, device=str(device))
    model = tl.HookedTransformer(cfg)
    result = model.load_state_dict(state, strict=False)
    # The causal mask and IGNORE sentinel are buffers TransformerLens builds itself.
    missing = [k for k in result.missing_keys if not k.endswith((".mask", ".IGNORE"))]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"HookedTransformer load: missing {missing}, unexpected {result.unexpected_keys}")
    return model


@torch.no_grad()
def max_logit_diff(model: Transformer, tl_model: nn.Module, pairs: torch.Tensor | None = None, chunk: int = 4096) -> float:
    """Largest |groklab logit − TransformerLens logit| over `pairs` (default: every (x, y) of the table,
    m² pairs), reading TransformerLens at the last position."""
    model.eval()
    if pairs is None:
        m = torch.arange(model.n_elements, device=model.W_E.device)
        pairs = torch.cartesian_prod(m, m)
    worst = 0.0
    for i in range(0, len(pairs), chunk):
        p = pairs[i : i + chunk]
        ours = model(p)
        theirs = tl_model(model.tokens(p))[:, -1]
        worst = max(worst, (ours - theirs.to(ours.dtype)).abs().max().item())
    return worst


__all__ = ["to_transformer_lens", "tl_config_fields", "tl_state_dict", "max_logit_diff", "tl_version"]
