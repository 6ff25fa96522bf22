"""The hidden stack the three MLP models share (models/common.py: add_mlp_weights, mlp_hidden, mlp_readout)
draws the same weights for a seed, under the same state_dict keys, and computes the same outputs to the bit as
the three copies it replaced (issue 14.3). The hashes were recorded from those copies before the change, on
one thread (conftest pins it: the bits of a matmul depend on the thread count)."""

from __future__ import annotations

import hashlib

import torch

from groklab.models.dense import DenseMLP
from groklab.models.mlp import MLP
from groklab.models.toy import ToyModel


def h(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]


CASES = {
    "mlp_onehot": lambda: MLP(7, 7, width=16, depth=3, act="quadratic", bias=True, batchnorm=True),
    "mlp_embed": lambda: MLP(7, 7, width=16, depth=2, act="relu", bias=False, input="embed", d_embed=8),
    "dense": lambda: DenseMLP(5, 3, width=16, depth=3, act="relu", bias=True),
    "dense_nobias": lambda: DenseMLP(5, 3, width=16, depth=1, act="gelu", bias=False),
    "toy": lambda: ToyModel(7, 13, d_embed=4, width=16, depth=2, bias=True),
}

KEYS = {"mlp_onehot": ["W_in", "b_in", "W_out", "b_out", "W_hidden.0", "W_hidden.1", "b_hidden.0", "b_hidden.1", "bn.0.weight", "bn.0.bias", "bn.0.running_mean", "bn.0.running_var", "bn.0.num_batches_tracked", "bn.1.weight", "bn.1.bias", "bn.1.running_mean", "bn.1.running_var", "bn.1.num_batches_tracked", "bn.2.weight", "bn.2.bias", "bn.2.running_mean", "bn.2.running_var", "bn.2.num_batches_tracked"], "mlp_embed": ["W_E", "W_in", "W_out", "W_hidden.0"], "dense": ["W_in", "b_in", "W_out", "b_out", "W_hidden.0", "W_hidden.1", "b_hidden.0", "b_hidden.1"], "dense_nobias": ["W_in", "W_out"], "toy": ["W_E", "W_in", "b_in", "W_out", "b_out", "W_hidden.0", "b_hidden.0"]}

EXPECTED = {
    "mlp_onehot": {
        "weights": {
            "W_in": "fc05d8afd9188240",
            "b_in": "f5a5fd42d16a2030",
            "W_out": "941629c4334e32ae",
            "b_out": "3addfb141cd7c9c4",
            "W_hidden.0": "f568db9710e84c41",
            "W_hidden.1": "d92e36af47b56421",
            "b_hidden.0": "f5a5fd42d16a2030",
            "b_hidden.1": "f5a5fd42d16a2030",
            "bn.0.weight": "9628e545ed3ac074",
            "bn.0.bias": "f5a5fd42d16a2030",
            "bn.0.running_mean": "0f3a4e2daf36a1a4",
            "bn.0.running_var": "6bf487bd856c4b7f",
            "bn.0.num_batches_tracked": "7c9fa136d4413fa6",
            "bn.1.weight": "9628e545ed3ac074",
            "bn.1.bias": "f5a5fd42d16a2030",
            "bn.1.running_mean": "486fe72e78e09ba7",
            "bn.1.running_var": "9fd963a53bd406ea",
            "bn.1.num_batches_tracked": "7c9fa136d4413fa6",
            "bn.2.weight": "9628e545ed3ac074",
            "bn.2.bias": "f5a5fd42d16a2030",
            "bn.2.running_mean": "2087703d37b90fc6",
            "bn.2.running_var": "57ce5b7666c13c8d",
            "bn.2.num_batches_tracked": "7c9fa136d4413fa6"
        },
        "out": "2b6b926f723c1223"
    },
    "mlp_embed": {
        "weights": {
            "W_E": "12aaf70acf6a138d",
            "W_in": "2dafdca540e55f5c",
            "W_out": "6fd9f5ed3479076a",
            "W_hidden.0": "68ab1b9d0b302ef7"
        },
        "out": "28b195345a483973"
    },
    "dense": {
        "weights": {
            "W_in": "8de7506ac05952f2",
            "b_in": "f5a5fd42d16a2030",
            "W_out": "3fbb0b547ed3be74",
            "b_out": "15ec7bf0b50732b4",
            "W_hidden.0": "cdb2753682581ced",
            "W_hidden.1": "9d18e417d4174a6d",
            "b_hidden.0": "f5a5fd42d16a2030",
            "b_hidden.1": "f5a5fd42d16a2030"
        },
        "out": "2239ae13f33fb08c"
    },
    "dense_nobias": {
        "weights": {
            "W_in": "8de7506ac05952f2",
            "W_out": "27e854dc5e961200"
        },
        "out": "231c480e78715c45"
    },
    "toy": {
        "weights": {
            "W_E": "f1f63514125dd889",
            "W_in": "c567105a564ecc25",
            "b_in": "f5a5fd42d16a2030",
            "W_out": "9dc837121044072a",
            "b_out": "7955cb2de90dd9ef",
            "W_hidden.0": "482c49682daaa8f9",
            "b_hidden.0": "f5a5fd42d16a2030"
        },
        "out": "5bc5cc682bab6c52"
    }
}


def test_mlp_stacks_draw_and_compute_the_same_bits_as_before():
    for name, make in CASES.items():
        torch.manual_seed(0)
        model = make()
        sd = model.state_dict()
        assert list(sd) == KEYS[name], name
        torch.manual_seed(1)
        x = torch.randn(4, 5) if name.startswith("dense") else torch.randint(0, 7, (4, 2))
        assert h(model.train()(x)) == EXPECTED[name]["out"], name
        # after the forward: in training mode it has updated the BatchNorm running statistics in place
        assert {k: h(v) for k, v in sd.items()} == EXPECTED[name]["weights"], name
