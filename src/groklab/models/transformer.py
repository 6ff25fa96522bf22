"""Decoder-only transformer over the equation tokens (x, op, y, =), read out at the last position.

Power et al. (2022): 2 layers, d_model 128, 4 heads, LayerNorm. Nanda et al. (2023): 1 layer, no LayerNorm,
tokens (x, y, =). By default LayerNorm comes before each sublayer with a final one before W_U (pre-LN, as
TransformerLens), positions are learned, and every linear map has a bias; the authors' code of Power et al.
(openai/grok) normalizes after each residual sum and has no final norm (`norm_position='post'`), adds fixed
sinusoids for positions (`pos_embed='sinusoidal'`) and has no biases (`bias='none'`; Nanda et al.'s code has
them on the MLP sublayers alone, `bias='mlp'`, danielmamay/grokking's and ironjr/grokfast's everywhere but the
readout, `bias='attn_mlp'`; a role without a bias is a zero buffer, not a parameter). danielmamay/grokking's
blocks (and ironjr/grokfast's, adapted from them) replace the stream by its first norm before attention,
x ← LN₁(x), x ← x + attn(x), x ← x + mlp(LN₂(x)), with a final norm (`norm_position='pre_replace'`).
Weights carry TransformerLens role names and shapes (`W_E` (vocab, d), `W_Q` (heads, d, d_head), `W_O`
(heads, d_head, d), `W_in` (d, d_mlp), `W_out` (d_mlp, d), `W_U` (d, classes)), so analyses and the
TransformerLens export read them as they are. Activations are reachable through `HookPoint`s.

Speed without changing the function: attention is written as plain tensor ops (3–4 tokens; same bits at any
thread count; vmap-able), the last block runs at the answer position alone, and, when nothing is hooked and
dropout is off, every layer's activations at the positions before y (which depend on x alone, attention
being causal) are computed once per possible x and gathered, like a KV cache, and the first layer's
queries, keys and values at y and = (which depend on y alone), with the scores among them, once per possible
y; keys and values before y and from y on stay apart (no joined copy of them forward or backward). Logits and
gradients equal the plain full computation to 1e-12 in float64 (tests/test_determinism.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from groklab.models.common import HookPoint, activation, rows


def _hidden_keys(key_mask: torch.Tensor, Tq: int, offset: int) -> torch.Tensor:
    """(N, Tk) keys a row may attend to -> (N, Tq, Tk) keys hidden from queries at positions offset..offset+Tq-1:
    those outside the mask, except each query's own position."""
    Tk = key_mask.shape[1]
    own = torch.arange(Tk, device=key_mask.device)[None, :] == torch.arange(offset, offset + Tq, device=key_mask.device)[:, None]
    return ~key_mask[:, None, :] & ~own


def dots(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Unscaled attention scores of queries q (N, Tq, H, dh) against keys k (N, Tk, H, dh) -> (N, Tq, Tk, H):
    elementwise products summed over d_head, for the few queries and keys of these sequences (see `attend`)."""
    return (q.unsqueeze(2) * k.unsqueeze(1)).sum(-1)


def sinusoids(n_ctx: int, d: int) -> torch.Tensor:
    """(n_ctx, d) fixed positional encoding of Vaswani et al. as openai/grok builds it: entry (t, i) is
    sin(t / 10000^(i/d)) for even i and cos(t / 10000^((i−1)/d)) for odd i. Computed in float64."""
    t = torch.arange(n_ctx, dtype=torch.float64)[:, None]
    i = torch.arange(d, dtype=torch.float64)[None, :]
    angle = t / 10000 ** ((i - i % 2) / d)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


def _bias(module: nn.Module, name: str, shape: tuple[int, ...], learned: bool) -> None:
    """A bias role: a parameter, or (without biases) a zero buffer the same code adds, outside the state dict."""
    if learned:
        module.register_parameter(name, nn.Parameter(torch.zeros(shape)))
    else:
        module.register_buffer(name, torch.zeros(shape), persistent=False)


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalize, then scale and shift as a separate op: the fused kernel's backward sums the gain and bias
        # gradients in per-thread partial sums, so they changed with the thread count; this one does not.
        return torch.addcmul(self.b, F.layer_norm(x, (x.shape[-1],)), self.w)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float, bias: bool = True):
        super().__init__()
        d_head = d_model // n_heads
        self.n_heads, self.d_head, self.dropout = n_heads, d_head, dropout
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        for name in ("b_Q", "b_K", "b_V"):
            _bias(self, name, (n_heads, d_head), bias)
        _bias(self, "b_O", (d_model,), bias)
        # TransformerLens's names and shapes: q, k, v (B, T, H, d_head); scores after the causal mask, pattern
        # (B, H, T, T); z (B, T, H, d_head).
        self.hook_q = HookPoint()
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()  # (B, H, T, T) scaled, causally masked scores (-inf above the diagonal)
        self.hook_pattern = HookPoint()  # (B, H, T, T) attention probabilities
        self.hook_z = HookPoint()  # (B, T, H, d_head) attention-weighted values

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, d) -> qkv (N, T, 3, H, d_head): queries, keys and values from one matmul."""
        N, T, d = x.shape
        H, dh = self.n_heads, self.d_head
        # The role-shaped weights stacked into (d, 3·H·dh) (a small copy per step; the parameters stay as they are).
        w = torch.cat([self.W_Q, self.W_K, self.W_V]).permute(1, 0, 2).reshape(d, 3 * H * dh)
        b = torch.cat([self.b_Q, self.b_K, self.b_V]).reshape(3 * H * dh)
        return torch.addmm(b, x.reshape(N * T, d), w).view(N, T, 3, H, dh)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offset: int,
               key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Causal attention of queries q (N, Tq, H, dh) at positions offset.. over keys and values k, v
        (N, Tk, H, dh) at positions 0..Tk-1, then W_O: -> (N, Tq, d). `key_mask` (N, Tk) bool, for analyses
        only (tree projections read a span without its context): the keys each row may attend to besides
        the causal mask; every query still sees its own position, so no row is left without a key.

        Plain tensor ops instead of PyTorch's fused attention kernel, which is built for long sequences and
        spent ~15% of the Power step on 4 tokens: each output element is summed in one fixed order at any
        thread count, and torch.func.vmap batches them. With one or two queries (the answer position, or
        the positions from y on), scores are elementwise products summed over d_head, 3–4× faster than
        thousands of tiny matmuls; with more queries, or when the pattern is hooked, head-major batched matmuls."""
        N, Tq, H, dh = q.shape
        Tk = k.shape[1]
        scale = 1.0 / math.sqrt(dh)
        # Query i sits at position offset + i and sees keys 0..offset + i.
        ahead = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).triu(offset + 1) if Tk > offset + 1 else None
        hidden = None if key_mask is None else _hidden_keys(key_mask, Tq, offset)  # (N, Tq, Tk)
        if Tq <= 2 and not (self.hook_attn_scores.has_hooks() or self.hook_pattern.has_hooks() or self.hook_z.has_hooks()):
            scores = dots(q, k) * scale  # (N, Tq, Tk, H)
            if ahead is not None:
                scores = scores.masked_fill(ahead[:, :, None], float("-inf"))
            if hidden is not None:
                scores = scores.masked_fill(hidden[..., None], float("-inf"))
            pattern = scores.softmax(2)
            if self.training and self.dropout > 0:
                pattern = F.dropout(pattern, self.dropout, True)
            z = (pattern.unsqueeze(-1) * v.unsqueeze(1)).sum(2).reshape(N * Tq, H * dh)  # (N, Tq, H, dh) flat
        else:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (N, H, T, dh)
            scores = (q @ k.transpose(-1, -2)) * scale  # (N, H, Tq, Tk)
            if ahead is not None:
                scores = scores.masked_fill(ahead, float("-inf"))
            if hidden is not None:
                scores = scores.masked_fill(hidden[:, None], float("-inf"))
            pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(-1))
            if self.training and self.dropout > 0:
                pattern = F.dropout(pattern, self.dropout, True)
            z = self.hook_z((pattern @ v).transpose(1, 2)).reshape(N * Tq, H * dh)  # (N, Tq, H, dh) -> (N·Tq, H·dh)
        return torch.addmm(self.b_O, z, self.W_O.reshape(H * dh, -1)).view(N, Tq, -1)

    def attend_split(self, s_prefix: torch.Tensor, s_rest: torch.Tensor, v_prefix: torch.Tensor, v_rest: torch.Tensor,
                     first: int) -> torch.Tensor:
        """The split forward's attention, from scores in two parts: s_prefix (N, Tq, P, H) against the P
        positions before y, which every query sees; s_rest (N, Tq, S, H) against the S positions from y on,
        query i sitting at rest position first + i and seeing rest keys 0..first + i (unscaled dot products,
        `dots`); values v_prefix (N, P, H, dh), v_rest (N, S, H, dh) -> (N, Tq, d) after W_O. The two parts
        are never joined into one (N, T, H, dh) key or value tensor (a copy forward and another backward)."""
        N, Tq, P, H = s_prefix.shape
        S = s_rest.shape[2]
        scores = torch.cat([s_prefix, s_rest], 2) * (1.0 / math.sqrt(self.d_head))  # (N, Tq, P + S, H)
        if S > first + 1:
            ahead = torch.ones(Tq, P + S, dtype=torch.bool, device=scores.device).triu(P + first + 1)
            scores = scores.masked_fill(ahead[:, :, None], float("-inf"))
        pattern = scores.softmax(2)
        z = (pattern[:, :, :P, :, None] * v_prefix[:, None]).sum(2) + (pattern[:, :, P:, :, None] * v_rest[:, None]).sum(2)
        return torch.addmm(self.b_O, z.reshape(N * Tq, -1), self.W_O.reshape(H * self.d_head, -1)).view(N, Tq, -1)

    def forward(self, x: torch.Tensor, last_only: bool = False, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) -> (B, T, d); with `last_only`, (B, 1, d): the answer position's output alone (its
        query attends to every position). `key_mask` (B, T): see `attend`."""
        qkv = self.project(x)
        q, k, v = qkv.unbind(2)  # (B, T, H, dh) each
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        T = x.shape[1]
        return self.attend(q[:, -1:], k, v, T - 1, key_mask) if last_only else self.attend(q, k, v, 0, key_mask)


class MLPBlock(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, act: str, bias: bool = True):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(d_model, d_mlp))
        _bias(self, "b_in", (d_mlp,), bias)
        self.W_out = nn.Parameter(torch.empty(d_mlp, d_model))
        _bias(self, "b_out", (d_model,), bias)
        self.act = activation(act)
        self.hook_pre = HookPoint()  # (B, T, d_mlp) neuron pre-activations
        self.hook_post = HookPoint()  # (B, T, d_mlp) neuron activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., d); the bias adds are fused into the matmuls (addmm)."""
        x2 = x.reshape(-1, x.shape[-1])
        h = self.hook_post(self.act(self.hook_pre(torch.addmm(self.b_in, x2, self.W_in).view(*x.shape[:-1], -1))))
        return torch.addmm(self.b_out, h.reshape(x2.shape[0], -1), self.W_out).view(x.shape)


class Block(nn.Module):
    """One attention and one MLP sublayer, each added to the residual stream. Pre-LN (`norm='pre'`, default):
    x + f(ln(x)); post-LN (`'post'`, openai/grok's): ln(x + f(x)); `'pre_replace'` (danielmamay/grokking's):
    the stream is replaced by ln1(x) before the attention sublayer, which then adds to it, and the MLP is pre-LN."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, layernorm: bool, dropout: float, act: str,
                 norm: str = "pre", bias: str = "all"):
        super().__init__()
        self.post_norm, self.replace = norm == "post", norm == "pre_replace"
        self.ln1 = LayerNorm(d_model) if layernorm else nn.Identity()
        self.attn = Attention(d_model, n_heads, dropout, bias in ("all", "attn_mlp"))
        self.ln2 = LayerNorm(d_model) if layernorm else nn.Identity()
        self.mlp = MLPBlock(d_model, d_mlp, act, bias != "none")
        self.drop = nn.Dropout(dropout)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_mlp_out = HookPoint()

    def enter(self, x: torch.Tensor) -> torch.Tensor:
        """The stream the attention sublayer reads and adds to: ln1(x) with `pre_replace`, x itself otherwise."""
        return self.ln1(x) if self.replace else x

    def inp(self, ln: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A sublayer's input: ln(x) before the sublayer (pre-LN), x itself (post-LN, and `pre_replace`'s
        attention, whose stream `enter` has normalized already)."""
        return x if self.post_norm or (self.replace and ln is self.ln1) else ln(x)

    def out(self, ln: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The residual stream after a sublayer's sum: ln(x) (post-LN), x itself (pre-LN)."""
        return ln(x) if self.post_norm else x

    def forward(self, x: torch.Tensor, last_only: bool = False, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) -> (B, T, d), or (B, 1, d) at the answer position alone with `last_only`."""
        x = self.enter(self.hook_resid_pre(x))
        attn = self.hook_attn_out(self.attn(self.inp(self.ln1, x), last_only, key_mask))
        x = self.out(self.ln1, (x[:, -1:] if last_only else x) + self.drop(attn))
        return self.out(self.ln2, x + self.drop(self.hook_mlp_out(self.mlp(self.inp(self.ln2, x)))))

    def has_hooks(self) -> bool:
        return any(m.has_hooks() for m in self.modules() if isinstance(m, HookPoint))

    def forward_split(
        self, prefix: torch.Tensor, rest: torch.Tensor, x: torch.Tensor, last: bool, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The block on sequences split in two: `prefix` (m, P, d), the positions before y of every possible
        x (x and op), and `rest` (B, S, d), the batch's positions from y on; row b's prefix is prefix[x[b]].
        With `y` (the first block, whose input at y and = is the embedding of y alone), `rest` is a table
        (m, S, d) over every possible y, row b's is rest[y[b]]: its queries, keys and values are projected
        once per y value, the scores among y and = taken on that table, and each row's gathered. Returns the
        same split, equal to the block on the whole sequences. With `last`, only the answer position of `rest`
        (B, 1, d) and no prefix (nothing reads it after the last block)."""
        a, ln1, ln2 = self.attn, self.ln1, self.ln2
        prefix, rest = self.enter(prefix), self.enter(rest)  # row-wise, so the y table may enter before its gather
        qkv_p = a.project(self.inp(ln1, prefix))  # (m, P, 3, H, dh)
        qkv_r = a.project(self.inp(ln1, rest))  # (B, S, 3, H, dh), or (m, S, 3, H, dh) over y
        S = qkv_r.shape[1]
        queries = slice(S - 1, S) if last else slice(0, S)  # the last block's output is read at = alone
        # Each row's keys and values before y: its x's, gathered (index_select: a deterministic backward).
        # (Each table is made contiguous first, so the gather copies whole rows.)
        k_p, v_p = (qkv_p[:, :, i].contiguous().index_select(0, x) for i in (1, 2))  # (B, P, H, dh)
        q_r, k_r, v_r = qkv_r.unbind(2)  # (B or m, S, H, dh)
        q_r = q_r[:, queries]
        s_r = dots(q_r, k_r)  # (B, Tq, S, H), or (m, Tq, S, H) over y
        if y is not None:
            # The scores among y and = depend on y alone: taken on the table, then gathered with the queries
            # and values each row needs (its keys at y and = are read only through these scores).
            s_r, rest = s_r.index_select(0, y), rest.index_select(0, y)
            q_r, v_r = q_r.contiguous().index_select(0, y), v_r.contiguous().index_select(0, y)
        att = a.attend_split(dots(q_r, k_p), s_r, v_p, v_r, S - 1 if last else 0)  # (B, Tq, d)

        def mlp(t: torch.Tensor) -> torch.Tensor:
            return self.out(ln2, t + self.mlp(self.inp(ln2, t)))

        if last:
            return None, mlp(self.out(ln1, rest[:, -1:] + att))
        prefix = self.out(ln1, prefix + a.attend(qkv_p[:, :, 0], qkv_p[:, :, 1], qkv_p[:, :, 2], 0))
        return mlp(prefix), mlp(self.out(ln1, rest + att))


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
        norm_position: str = "pre",
        pos_embed: str = "learned",
        bias: str = "all",
    ):
        super().__init__()
        self.n_elements, self.op_token, self.n_inputs = n_elements, op_token, n_inputs
        # Tokens: the elements 0..m-1, then `op` = m and `=` = m+1. Inputs of n_inputs ≠ 2 tokens (a task's
        # token sequences, e.g. knowledge facts) are read as they are, followed by `=`.
        self.n_ctx = (4 if op_token else 3) if n_inputs == 2 else n_inputs + 1
        self.W_E = nn.Parameter(torch.empty(n_elements + 2, d_model))
        if pos_embed == "sinusoidal":  # fixed: a buffer (in the state dict, so a checkpoint is self-contained)
            self.register_buffer("W_pos", sinusoids(self.n_ctx, d_model))
        else:
            self.W_pos = nn.Parameter(torch.empty(self.n_ctx, d_model))
        post = norm_position == "post"
        if bias not in ("all", "attn_mlp", "mlp", "none"):
            raise ValueError(f"bias={bias!r} is not allowed; choose one of: all, attn_mlp, mlp, none")
        if norm_position not in ("pre", "post", "pre_replace"):
            raise ValueError(f"norm_position={norm_position!r} is not allowed; choose one of: pre, post, pre_replace")
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_mlp, layernorm, dropout, act, norm_position, bias) for _ in range(n_layers))
        # post-LN: every block already ends in a norm, and openai/grok reads the last one out directly
        self.ln_final = LayerNorm(d_model) if layernorm and not post else nn.Identity()
        self.W_U = nn.Parameter(torch.empty(d_model, n_classes))
        _bias(self, "b_U", (n_classes,), bias == "all")
        self.drop = nn.Dropout(dropout)
        # As TransformerLens: hook_embed is the token embedding alone (B, T, d), hook_pos_embed the positional.
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
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

    def has_hooks(self) -> bool:
        return any(m.has_hooks() for m in self.modules() if isinstance(m, HookPoint))

    def forward(self, pairs: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2) operand pairs (or (B, n_inputs) token sequences) -> (B, n_classes) logits at the answer
        position. `key_mask` (B, n_ctx) bool, analyses only: the positions each row's tokens may attend to (on
        top of the causal mask; a position always sees itself), e.g. a span read without its context
        (analysis/tree_projection.py). Training never passes it."""
        dropout = self.training and self.drop.p > 0
        if (key_mask is None and len(self.blocks) and not dropout and self.n_inputs == 2 and self.n_elements < pairs.shape[0]
                and not self.has_hooks()):
            return self._forward_split(pairs)
        tok = self.tokens(pairs)  # (B, T)
        pos = self.hook_pos_embed(self.W_pos.expand(tok.shape[0], -1, -1))  # (B, T, d)
        x = self.drop(self.hook_embed(rows(self.W_E, tok)) + pos)  # (B, T, d); rows(): see common.py
        # The loss reads the answer position only, and in the last block nothing else feeds it: its
        # attention output and MLP are computed there alone (a third to a half of the FLOPs), unless
        # someone hooks an activation that has every position.
        last = self.blocks[-1] if len(self.blocks) else None
        last_only = last is not None and not (
            last.has_hooks() or self.hook_resid_final.has_hooks() or self.hook_logits.has_hooks()
        )
        for block in self.blocks:
            x = block(x, last_only=last_only and block is last, key_mask=key_mask)
        x = self.hook_resid_final(self.ln_final(x))
        if self.hook_logits.has_hooks():
            # All positions only when someone looks; the loss never sees them.
            return self.hook_logits(x @ self.W_U + self.b_U)[:, -1]
        # Only the answer position is read out: the loss is taken on the answer token alone.
        return x[:, -1] @ self.W_U + self.b_U  # (B, n_classes)

    def _forward_split(self, pairs: torch.Tensor) -> torch.Tensor:
        """The same logits, computing the positions before y once per possible x instead of once per row.

        Attention is causal, so every layer's activations at x and op (at x alone without the op token)
        depend on x alone: they are computed for the m possible x values (m < B rows instead of B) and
        gathered as keys and values for the batch's rows, like a KV cache. Likewise the first layer's input at
        y and = is the embedding of y alone: its projections are computed for the m possible y values and
        gathered. Exact: every row's arithmetic is the full computation's. Used only when nothing is hooked
        and dropout is off."""
        m = self.n_elements
        P = self.n_ctx - 2  # positions before y: (x, op) or (x)
        xs = torch.arange(m, dtype=pairs.dtype, device=pairs.device)
        prefix_tok = torch.stack([xs, torch.full_like(xs, m)], dim=1)[:, :P]  # (m, P)
        rest_tok = torch.stack([xs, torch.full_like(xs, m + 1)], dim=1)  # (m, 2): (y, =) for every y
        prefix = rows(self.W_E, prefix_tok) + self.W_pos[:P]  # (m, P, d)
        rest = rows(self.W_E, rest_tok) + self.W_pos[P:]  # (m, 2, d); the first block gathers each row's by y
        x, y = pairs[:, 0], pairs[:, 1]
        for i, block in enumerate(self.blocks):
            prefix, rest = block.forward_split(prefix, rest, x, last=i == len(self.blocks) - 1, y=y if i == 0 else None)
        return self.ln_final(rest[:, -1]) @ self.W_U + self.b_U  # (B, n_classes)
