"""Run a groklab checkpoint with nothing but torch and safetensors (no groklab import).

    python examples/load_checkpoint.py RUN_DIR [STEP]

The weights are a flat safetensors file keyed by parameter name, the architecture is in config.json
(see docs/checkpoints.md); below are the transformer's and the MLP's forward passes written out from them.
`forward(weights, config, inputs)` returns the logits groklab's model returns: inputs are operand pairs
(B, 2) of element indices, or float vectors (B, d) for the MLP on parity, images or teacher tasks.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ACTS = {"relu": F.relu, "gelu": F.gelu, "quadratic": lambda x: x * x}


def load(run_dir: str | Path, step: int | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The weights at checkpoint `step` (default: the last) and the run's config as a dict."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    files = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{run_dir} has no checkpoints/step_*.safetensors")
    path = files[-1] if step is None else run_dir / "checkpoints" / f"step_{step:08d}.safetensors"
    return load_file(str(path)), config


def layer_norm(x: torch.Tensor, w: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    if f"{name}.w" not in w:  # model.layernorm = false: no LayerNorm at all (Nanda et al.)
        return x
    return F.layer_norm(x, (x.shape[-1],), w[f"{name}.w"], w[f"{name}.b"], eps=1e-5)


def transformer_forward(w: dict[str, torch.Tensor], cfg: dict, pairs: torch.Tensor) -> torch.Tensor:
    """Decoder-only, causal; logits read at the last token (`=`). LayerNorm before each sublayer and a final
    one (model.norm_position "pre", the default), or after each residual sum and no final one ("post"), or
    "pre_replace": the stream replaced by its first norm before attention, then as "pre". Fixed sinusoidal
    positions are saved in the file as W_pos like learned ones; without biases (model.transformer_bias none,
    mlp, attn_mlp) the missing b_* keys are absent and count as zero."""
    m = w["W_E"].shape[0] - 2  # vocabulary: elements 0..m-1, then `op` = m, `=` = m+1
    x, y = pairs[:, :1], pairs[:, 1:]
    op, eq = torch.full_like(x, m), torch.full_like(x, m + 1)
    tokens = torch.cat([x, op, y, eq] if cfg["model"]["op_token"] else [x, y, eq], dim=1)  # (B, T)
    act = ACTS[cfg["model"]["act"]]
    norm = cfg["model"].get("norm_position", "pre")
    post, replace = norm == "post", norm == "pre_replace"

    def b(name: str) -> torch.Tensor | float:
        return w.get(name, 0.0)

    def before(h, name):  # a sublayer's input (pre_replace's attention reads the stream it already normalized)
        return h if post or (replace and name.endswith("ln1")) else layer_norm(h, w, name)

    def after(h, name):  # the residual stream after a sublayer's sum
        return layer_norm(h, w, name) if post else h

    h = w["W_E"][tokens] + w["W_pos"]  # (B, T, d)
    T = tokens.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["model"]["n_layers"]):
        p = f"blocks.{i}"
        if replace:
            h = layer_norm(h, w, f"{p}.ln1")
        a = before(h, f"{p}.ln1")
        # W_Q, W_K, W_V: (heads, d, d_head); b_*: (heads, d_head)
        q, k, v = (torch.einsum("btd,hde->bhte", a, w[f"{p}.attn.W_{n}"]) + (w[f"{p}.attn.b_{n}"][:, None] if f"{p}.attn.b_{n}" in w else 0.0)
                   for n in "QKV")
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, T, T)
        pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        z = pattern @ v  # (B, H, T, d_head)
        h = after(h + torch.einsum("bhte,hed->btd", z, w[f"{p}.attn.W_O"]) + b(f"{p}.attn.b_O"), f"{p}.ln1")
        a = before(h, f"{p}.ln2")
        h = after(h + act(a @ w[f"{p}.mlp.W_in"] + b(f"{p}.mlp.b_in")) @ w[f"{p}.mlp.W_out"] + b(f"{p}.mlp.b_out"), f"{p}.ln2")
    if not post:
        h = layer_norm(h, w, "ln_final")
    return h[:, -1] @ w["W_U"] + b("b_U")  # (B, n_classes)


def mlp_forward(w: dict[str, torch.Tensor], cfg: dict, inputs: torch.Tensor) -> torch.Tensor:
    """Hidden layers W_in, W_hidden.0, ... with optional biases and BatchNorm (running statistics), then W_out."""
    act = ACTS[cfg["model"]["act"]]

    def affine(h: torch.Tensor, layer: int, bias: str) -> torch.Tensor:
        if bias in w:
            h = h + w[bias]
        bn = f"bn.{layer}"
        if f"{bn}.weight" in w:  # BatchNorm1d in eval mode, eps 1e-5
            h = (h - w[f"{bn}.running_mean"]) / torch.sqrt(w[f"{bn}.running_var"] + 1e-5) * w[f"{bn}.weight"] + w[f"{bn}.bias"]
        return act(h)

    if inputs.is_floating_point():  # vector inputs (parity, images, teacher)
        h = inputs @ w["W_in"]
    elif "W_E" in w:  # learned embeddings of x and y, concatenated
        h = torch.cat([w["W_E"][inputs[:, 0]], w["W_E"][inputs[:, 1]]], dim=1) @ w["W_in"]
    else:  # one-hot(x) ⊕ one-hot(y) @ W_in: row x plus row m + y
        m = w["W_in"].shape[0] // 2
        h = w["W_in"][inputs[:, 0]] + w["W_in"][inputs[:, 1] + m]
    h = affine(h, 0, "b_in")
    for i in range(cfg["model"]["depth"] - 1):
        h = affine(h @ w[f"W_hidden.{i}"], i + 1, f"b_hidden.{i}")
    out = h @ w["W_out"]
    return out + w["b_out"] if "b_out" in w else out


def forward(w: dict[str, torch.Tensor], cfg: dict, inputs: torch.Tensor) -> torch.Tensor:
    arch = cfg["model"]["arch"]
    if arch == "transformer":
        return transformer_forward(w, cfg, inputs)
    if arch == "mlp":
        return mlp_forward(w, cfg, inputs)
    raise NotImplementedError(f"model.arch={arch!r}: this example covers 'transformer' and 'mlp'")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    weights, config = load(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    if config["model"]["arch"] == "mlp" and "W_E" not in weights and config["task"]["group"] not in ("modular", "permutation", "integer"):
        sys.exit("vector-input MLP: call forward(weights, config, x) with your own (B, d) float inputs")
    if "W_E" in weights:  # the transformer's vocabulary has `op` and `=` after the elements
        m = weights["W_E"].shape[0] - (2 if config["model"]["arch"] == "transformer" else 0)
    else:
        m = weights["W_in"].shape[0] // 2
    pairs = torch.cartesian_prod(torch.arange(m), torch.arange(m))
    with torch.no_grad():
        logits = forward(weights, config, pairs)
    print(f"{config['model']['arch']}, {config['task']['group']} {config['task']['op']}: logits {tuple(logits.shape)} over all {m}x{m} pairs")
    print("predicted table (first rows):")
    print(logits.argmax(-1).view(m, m)[:5, :10])
