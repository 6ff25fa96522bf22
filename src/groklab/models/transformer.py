"""Decoder-only transformer over the equation tokens (x, op, y, =), read out at the last position.

Power et al. (2022): 2 layers, d_model 128, 4 heads, LayerNorm. Nanda et al. (2023): 1 layer, no LayerNorm,
tokens (x, y, =). Weights carry TransformerLens role names and shapes (`W_E` (vocab, d), `W_Q` (heads, d,
d_head), `W_O` (heads, d_head, d), `W_in` (d, d_mlp), `W_out` (d_mlp, d), `W_U` (d, classes)), so analyses
and the TransformerLens export read them as they are. Activations are reachable through `HookPoint`s.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from groklab.models.common import HookPoint, activation


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w, self.b)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        d_head = d_model // n_heads
        self.n_heads, self.d_head, self.dropout = n_heads, d_head, dropout
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_K = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_V = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_O = nn.Parameter(torch.zeros(d_model))
        self.hook_pattern = HookPoint()  # (B, H, T, T) attention probabilities
        self.hook_z = HookPoint()  # (B, H, T, d_head) attention-weighted values

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, d) -> (B, T, d); with `last_only`, (B, 1, d): the answer position's output alone (its
        query attends to every position, so no mask is needed)."""
        B, T, d = x.shape
        H, dh = self.n_heads, self.d_head
        # One matmul for Q, K and V: stack the role-shaped weights into (d, 3·H·dh).
        w = torch.cat([self.W_Q, self.W_K, self.W_V]).permute(1, 0, 2).reshape(d, 3 * H * dh)
        b = torch.cat([self.b_Q, self.b_K, self.b_V]).reshape(3 * H * dh)
        qkv = torch.addmm(b, x.reshape(B * T, d), w).view(B, T, 3, H, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, dh)
        p_drop = self.dropout if self.training else 0.0
        if self.hook_pattern.has_hooks() or self.hook_z.has_hooks():
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)  # (B, H, T, T)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            pattern = self.hook_pattern(scores.masked_fill(~causal, float("-inf")).softmax(-1))
            z = self.hook_z(F.dropout(pattern, p_drop, self.training) @ v)
        elif last_only:
            z = F.scaled_dot_product_attention(q[:, :, -1:], k, v, dropout_p=p_drop)  # (B, H, 1, dh)
            T = 1
        else:
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=True)
        z = z.transpose(1, 2).reshape(B * T, H * dh)  # (B·T, H·dh)
        return torch.addmm(self.b_O, z, self.W_O.reshape(H * dh, d)).view(B, T, d)


class MLPBlock(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, act: str):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(d_model, d_mlp))
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.empty(d_mlp, d_model))
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.act = activation(act)
        self.hook_post = HookPoint()  # (B, T, d_mlp) neuron activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_post(self.act(x @ self.W_in + self.b_in)) @ self.W_out + self.b_out


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_mlp: int, layernorm: bool, dropout: float, act: str):
        super().__init__()
        self.ln1 = LayerNorm(d_model) if layernorm else nn.Identity()
        self.attn = Attention(d_model, n_heads, dropout)
        self.ln2 = LayerNorm(d_model) if layernorm else nn.Identity()
        self.mlp = MLPBlock(d_model, d_mlp, act)
        self.drop = nn.Dropout(dropout)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_mlp_out = HookPoint()

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, d) -> (B, T, d), or (B, 1, d) at the answer position alone with `last_only`."""
        x = self.hook_resid_pre(x)
        attn = self.hook_attn_out(self.attn(self.ln1(x), last_only))
        x = (x[:, -1:] if last_only else x) + self.drop(attn)
        return x + self.drop(self.hook_mlp_out(self.mlp(self.ln2(x))))

    def has_hooks(self) -> bool:
        return any(m.has_hooks() for m in self.modules() if isinstance(m, HookPoint))


class Transformer(nn.Module):
    """Input: operand pairs (B, 2) of element indices; output: logits (B, n_classes) at the last position."""

    def __init__(
        self,
        n_elements: int,
        n_classes: int,
        n_layers: int = 2,
        d_model: int = 128,
        n_heads: int = 4,
        d_mlp: int = 512,
        layernorm: bool = True,
        dropout: float = 0.0,
        act: str = "relu",
        op_token: bool = True,
        n_inputs: int = 2,
    ):
        super().__init__()
        self.n_elements, self.op_token, self.n_inputs = n_elements, op_token, n_inputs
        # Tokens: the elements 0..m-1, then `op` = m and `=` = m+1. Inputs of n_inputs ≠ 2 tokens (a task's
        # token sequences, e.g. knowledge facts) are read as they are, followed by `=`.
        self.n_ctx = (4 if op_token else 3) if n_inputs == 2 else n_inputs + 1
        self.W_E = nn.Parameter(torch.empty(n_elements + 2, d_model))
        self.W_pos = nn.Parameter(torch.empty(self.n_ctx, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_mlp, layernorm, dropout, act) for _ in range(n_layers))
        self.ln_final = LayerNorm(d_model) if layernorm else nn.Identity()
        self.W_U = nn.Parameter(torch.empty(d_model, n_classes))
        self.b_U = nn.Parameter(torch.zeros(n_classes))
        self.drop = nn.Dropout(dropout)
        self.hook_embed = HookPoint()
        self.hook_resid_final = HookPoint()  # (B, T, d_model)
        self.hook_logits = HookPoint()  # (B, T, n_classes) logits at every position
        self._init_weights(d_model)

    def _init_weights(self, d_model: int) -> None:
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("W_E", "W_pos"):
                nn.init.normal_(p, std=1 / math.sqrt(d_model))
            elif leaf.startswith("W_"):
                fan_in = p.shape[-2] * (p.shape[0] if leaf == "W_O" else 1)
                nn.init.normal_(p, std=1 / math.sqrt(fan_in))

    def tokens(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 2) operand pairs -> (B, n_ctx) token ids: (x, op, y, =) or (x, y, =)."""
        m = self.n_elements
        B = pairs.shape[0]
        op = torch.full((B, 1), m, dtype=pairs.dtype, device=pairs.device)
        eq = op + 1
        parts = [pairs[:, :1], op, pairs[:, 1:], eq] if self.op_token and self.n_inputs == 2 else [pairs, eq]
        return torch.cat(parts, dim=1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        tok = self.tokens(pairs)  # (B, T)
        x = self.drop(self.hook_embed(self.W_E[tok] + self.W_pos))  # (B, T, d)
        # The loss reads the answer position only, and in the last block nothing else feeds it: its
        # attention output and MLP are computed there alone (a third to a half of the FLOPs), unless
        # someone hooks an activation that has every position.
        last = self.blocks[-1] if len(self.blocks) else None
        last_only = last is not None and not (
            last.has_hooks() or self.hook_resid_final.has_hooks() or self.hook_logits.has_hooks()
        )
        for block in self.blocks:
            x = block(x, last_only=last_only and block is last)
        x = self.hook_resid_final(self.ln_final(x))
        if self.hook_logits.has_hooks():
            # All positions only when someone looks; the loss never sees them.
            return self.hook_logits(x @ self.W_U + self.b_U)[:, -1]
        # Only the answer position is read out: the loss is taken on the answer token alone.
        return x[:, -1] @ self.W_U + self.b_U  # (B, n_classes)
