"""The representation quality index of Liu et al. (2022) as a metric logged at every evaluation of the toy
model; the definition lives in `groklab.analysis.representations.rqi`."""

from __future__ import annotations

import torch

from groklab.analysis.representations import parallelograms, rqi


def rqi_probe(p: int, tol: float):
    """A metric function for the evaluation: `rqi` of the model's number embeddings W_E[:p] (the rows of
    the numbers; a transformer's W_E has the op and `=` tokens after them). {} for a model without W_E."""
    quads = parallelograms(p)

    def probe(model) -> dict[str, float]:
        W_E = getattr(model, "W_E", None)
        if not isinstance(W_E, torch.Tensor) or W_E.dim() != 2 or W_E.shape[0] < p:
            return {}
        return {"rqi": rqi(W_E[:p], tol, quads=quads)}

    return probe
