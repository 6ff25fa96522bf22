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

import torch
import torch.nn as nn

from groklab.models.common import HookPoint, activation, add_mlp_weights, mlp_hidden, mlp_readout


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
        add_mlp_weights(self, d_input, width, depth, n_outputs, bias)
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.hook_pre = HookPoint()  # (B, width) first-layer pre-activations
        self.hook_post = HookPoint()  # (B, width) last hidden layer's activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W_in  # (B, d_input) -> (B, width)
        if self.b_in is not None:
            h = h + self.b_in
        h = mlp_hidden(self, self.drop(self.act(self.hook_pre(h))), self.act, self.drop)
        return mlp_readout(self, self.hook_post(h))  # (B, n_outputs)
