"""The MLP of Doshi, He & Gromov (2023) on operand pairs.

Input one-hot(x) ⊕ one-hot(y) (length 2m), or a learned embedding of each operand concatenated; `depth`
hidden layers of `width` neurons with activation quadratic / relu / gelu; output m classes.
Weights: `W_in` (2m or 2·d_embed, width) into the first hidden layer (row k < m reads x = k, row m + k reads
y = k), `W_hidden.i` (width, width) between hidden layers, `W_out` (width, n_classes) to the logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.models.common import HookPoint, activation, add_mlp_weights, mlp_hidden, mlp_readout, rows


class MLP(nn.Module):
    def __init__(
        self,
        n_elements: int,
        n_classes: int,
        width: int = 500,
        depth: int = 1,
        act: str = "quadratic",
        bias: bool = False,
        input: str = "onehot",
        d_embed: int = 128,
        dropout: float = 0.0,
        batchnorm: bool = False,
    ):
        super().__init__()
        self.n_elements, self.input = n_elements, input
        if input == "embed":
            self.W_E = nn.Parameter(torch.randn(n_elements, d_embed) / math.sqrt(d_embed))
            d_in = 2 * d_embed
        else:
            d_in = 2 * n_elements
        add_mlp_weights(self, d_in, width, depth, n_classes, bias)
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        # BatchNorm of each hidden layer's pre-activations; its running statistics are buffers in state_dict.
        self.bn = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth)) if batchnorm else None
        self.hook_pre = HookPoint()  # (B, width) first-layer pre-activations
        self.hook_post = HookPoint()  # (B, width) last hidden layer's activations

    def first_layer(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 2) pairs -> (B, width) pre-activations of the first hidden layer."""
        if self.input == "embed":
            h = rows(self.W_E, pairs).flatten(1) @ self.W_in  # (B, 2, d_embed) -> (B, 2·d_embed): x's then y's
        else:
            # one-hot(x) ⊕ one-hot(y) @ W_in is the sum of two rows of W_in: a gather, not a matmul.
            h = rows(self.W_in, pairs[:, 0]) + rows(self.W_in, pairs[:, 1] + self.n_elements)  # rows(): thread-count-proof backward
        return h if self.b_in is None else h + self.b_in

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        h = self.hook_pre(self.first_layer(pairs))
        if self.bn is not None:
            h = self.bn[0](h)
        h = mlp_hidden(self, self.drop(self.act(h)), self.act, self.drop, self.bn)
        return mlp_readout(self, self.hook_post(h))  # (B, n_classes)
