"""The toy model of Liu, Kitouni, Nolte, Michaud, Tegmark & Williams (2022), "Towards understanding
grokking: an effective theory of representation learning" (arXiv 2205.10343).

Every number i gets a trainable embedding E_i; the decoder, an MLP, reads the sum of the two operands'
embeddings: logits = Dec(E_x + E_y). Because the decoder sees only the sum, the model generalizes exactly
when the embeddings are structured (E_i + E_j = E_m + E_n whenever i + j = m + n), which the
representation quality index measures (tasks/rqi.py). The embeddings and the decoder can be trained with
their own learning rates and weight decays (`optim.embed_lr`, `optim.embed_weight_decay`), the axes of
the paper's phase diagrams.

Weights: `W_E` (n_elements, d_embed); decoder `W_in` (d_embed, width), `W_hidden.i` (width, width), `W_out`
(width, n_classes), with biases `b_in`, `b_hidden.i`, `b_out` when `bias`. Embeddings uniform in
[−1/2, 1/2) as in the paper's code (small next to the decoder's scale, which is what lets the
representation organize before the decoder memorizes), decoder weights N(0, 1/fan_in), zero biases.
"""

from __future__ import annotations


import torch
import torch.nn as nn

from groklab.models.common import HookPoint, activation, add_mlp_weights, mlp_hidden, mlp_readout, rows


class ToyModel(nn.Module):
    def __init__(
        self,
        n_elements: int,
        n_classes: int,
        d_embed: int = 32,
        width: int = 200,
        depth: int = 2,
        act: str = "relu",
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.W_E = nn.Parameter(torch.rand(n_elements, d_embed) - 0.5)
        add_mlp_weights(self, d_embed, width, depth, n_classes, bias)  # the decoder
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.hook_embed_sum = HookPoint()  # (B, d_embed) E_x + E_y, the decoder's input
        self.hook_post = HookPoint()  # (B, width) last hidden layer's activations

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        h = self.hook_embed_sum(rows(self.W_E, pairs[:, 0]) + rows(self.W_E, pairs[:, 1]))  # (B, 2) -> (B, d_embed)
        h = h @ self.W_in
        if self.b_in is not None:
            h = h + self.b_in
        h = mlp_hidden(self, self.drop(self.act(h)), self.act, self.drop)  # (B, width)
        return mlp_readout(self, self.hook_post(h))  # (B, n_classes)
