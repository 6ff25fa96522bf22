"""A plain MLP on float vector inputs: the one-hidden-layer ReLU network of Barak et al. (2022) for sparse
parity (width 1000, biases) and the Omnigrok MLP for images and teacher–student regression (width 200,
three linear layers = `depth` 2 hidden layers, ReLU).

Weights: `W_in` (d_input, width) from the inputs to the first hidden layer (row i reads input coordinate i,
which is what the parity metric reads), `W_hidden.i` (width, width) between hidden layers, `W_out`
(width, n_outputs) to the outputs; biases `b_in`, `b_hidden.i`, `b_out` when `bias`. Initialization
N(0, 1/fan_in) for weights and zero biases, as the pair MLP (PyTorch's nn.Linear default draws
U(±1/√fan_in), a third of this variance); `model.init_scale` multiplies all of it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.models.common import HookPoint, activation


class DenseMLP(nn.Module):
    def __init__(
        self,
        d_input: int,
        n_outputs: int,
        width: int = 200,
        depth: int = 3,
        act: str = "relu",
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.W_in = nn.Parameter(torch.randn(d_input, width) / math.sqrt(d_input))
        self.b_in = nn.Parameter(torch.zeros(width)) if bias else None
        self.W_hidden = nn.ParameterList(nn.Parameter(torch.randn(width, width) / math.sqrt(width)) for _ in range(depth - 1))
        self.b_hidden = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(depth - 1)) if bias else None
        self.W_out = nn.Parameter(torch.randn(width, n_outputs) / math.sqrt(width))
        self.b_out = nn.Parameter(torch.zeros(n_outputs)) if bias else None
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.hook_pre = HookPoint()  # (B, width) first-layer pre-activations
        self.hook_post = HookPoint()  # (B, width) last hidden layer's activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W_in  # (B, d_input) -> (B, width)
        if self.b_in is not None:
            h = h + self.b_in
        h = self.drop(self.act(self.hook_pre(h)))
        for i, W in enumerate(self.W_hidden):
            h = h @ W
            if self.b_hidden is not None:
                h = h + self.b_hidden[i]
            h = self.drop(self.act(h))
        h = self.hook_post(h)
        out = h @ self.W_out
        return out if self.b_out is None else out + self.b_out  # (B, n_outputs)
