"""The local learning coefficient (LLC) over checkpoints, estimated with devinterp's SGLD sampler.

Singular learning theory (Watanabe; Lau, Furman, Wang, Murfet & Wei 2023, "The local learning coefficient:
a singularity-aware complexity measure", arXiv 2308.12108) measures the effective dimension of a trained
network w* by the LLC λ(w*). The estimator (Lau et al. eq. 12) is

    λ̂(w*) = nβ · ( E_w[L_n(w)] − L_n(w*) ),

the expectation over the tempered posterior localized at w*, ∝ exp(−nβ L_n(w) − γ/2 ‖w − w*‖²), drawn by
SGLD with step size ε. A regular model with d parameters has λ = d/2 (for a quadratic loss the tempered
posterior is Gaussian and nβ·E[L − L0] = d/2 exactly, whatever nβ and curvature, when γ = 0). In modular
arithmetic the LLC changes at the grokking transition (Panickssery & Vaintrob 2023; devinterp's grokking
notebook).

We do not sample ourselves: `devinterp` (pip install "groklab[llc]") draws the chains. devinterp 2 works
on HuggingFace datasets with an "input_ids" column and a per-token loss; each row here packs one training
sample (its inputs, then its label) into "input_ids", and the loss function unpacks it and returns the
training loss of the run (`train.loss`) per sample. devinterp's LLC averages the loss over every SGLD step,
burn-in included (its `compute_llc`); set `burnin` > 0 only together with enough draws.

Convergence: the loss traces (chain × step) come back with the estimate; after burn-in they should be flat
and the chains should overlap. A trace still rising at the end (too small ε or too few draws), or diverging
/ NaN (ε too large or γ too small), means the estimate is not to be trusted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from groklab.errors import AnalysisError, require


@dataclass
class LLCSettings:
    """SGLD settings (names as in Lau et al.): `lr` ε, `localization` γ, `nbeta` nβ (None: batch/log batch,
    devinterp 1's `default_nbeta`), `chains`, `draws` per chain, `burnin` steps, `batch_size`, `checkpoints`
    (at most this many, spread over the run; always the last), `seed`.

    Defaults: chains 4, draws 200, burn-in 0, batch 32 and the seed are devinterp 2's `sample` defaults;
    devinterp 2 has no default for ε and nβ (they depend on the model, see its calibration notebook):
    ε = 1e-3 and γ = 100 follow devinterp's examples for small networks. Check the traces (module docstring)."""

    lr: float = 1e-3
    localization: float = 100.0
    nbeta: Optional[float] = None
    chains: int = 4
    draws: int = 200
    burnin: int = 0
    batch_size: int = 32
    checkpoints: int = 8
    seed: int = 100

    def __post_init__(self) -> None:
        for name in ("lr", "localization", "nbeta"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0 and (v > 0 or name == "localization")):
                raise AnalysisError(f"llc_{name}={v} must be a finite positive number" + (" or 0" if name == "localization" else ""))
        for name in ("chains", "draws", "batch_size", "checkpoints"):
            if int(getattr(self, name)) < 1:
                raise AnalysisError(f"llc_{name}={getattr(self, name)} must be at least 1")
        if self.burnin < 0:
            raise AnalysisError(f"llc_burnin={self.burnin} must be at least 0")

    def beta(self) -> float:
        """nβ; devinterp 1's default_nbeta is batch_size / log(batch_size) (and 1 for a batch of 1 or 2)."""
        if self.nbeta is not None:
            return float(self.nbeta)
        b = self.batch_size
        return b / math.log(b) if b > 2 else 1.0


def _devinterp():
    require("datasets", "llc", "the LLC", error=AnalysisError)  # devinterp imports it
    return require("devinterp.slt.llc", "llc", "the LLC", error=AnalysisError).llc


def estimate_llc(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, target: str, settings: LLCSettings,
                 device: str = "cpu") -> dict:
    """λ̂ at the model's current weights on the training set (x, y) with the training loss `loss` (a
    `groklab.train.optim.loss_spec` name; `target` the dataset's label kind, "class" for integer labels):
    {"llc_mean", "llc_std" (over chains),
    "llc_per_chain", "init_loss", "traces" (chains, draws) the mean loss of each SGLD step}.

    The model is copied; its weights are left as they were."""
    import copy

    estimate = _devinterp()
    from datasets import Dataset as HFDataset

    from groklab.train.optim import loss_fn

    n = len(x)
    if settings.batch_size > n:
        raise AnalysisError(f"llc_batch_size={settings.batch_size} is larger than the training set ({n} samples)")
    m = copy.deepcopy(model).train(False)
    dtype = next(m.parameters()).dtype
    width = x[0].numel()
    # One row per sample: its inputs then its label(s). Token inputs and class labels stay integers.
    rows = torch.cat([x.reshape(n, -1).to(torch.float64), y.reshape(n, -1).to(torch.float64)], 1)
    ints = not x.is_floating_point() and target == "class"
    col = rows.long().tolist() if ints else rows.tolist()
    ds = HFDataset.from_dict({"input_ids": col}).with_format("torch")
    shape = x.shape[1:]

    def packed_loss(model_: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        xb = ids[:, :width].reshape(len(ids), *shape)
        xb = xb.long() if ints else xb.to(dtype)
        yb = ids[:, width:]
        yb = yb[:, 0].long() if target == "class" else yb.to(dtype)
        per = loss_fn(model_(xb), yb, loss, reduction="none")  # (B,): the trainer's loss of each sample
        return per[:, None].expand(-1, ids.shape[1] - 1)  # devinterp averages over "token positions": all equal

    if rows.shape[1] < 2:
        raise AnalysisError("the LLC needs at least one input and one label per sample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # devinterp warns that the zarr samples go to a temporary directory
        res = estimate(
            m, ds, {"train": ds}, lr=settings.lr, n_beta=settings.beta(), loss_fn=packed_loss, num_chains=settings.chains,
            num_draws=settings.draws, num_burnin_steps=settings.burnin, batch_size=settings.batch_size,
            localization=settings.localization, init_seed=settings.seed, device=device,
        )
    traces = torch.as_tensor(res["loss_trace"].values, dtype=torch.float64)  # (chains, steps)
    per_chain = [float(v) for v in res["llc_per_chain"].values]
    return {"llc_mean": float(res["llc_mean"].values), "llc_std": float(res["llc_std"].values), "llc_per_chain": per_chain,
            "init_loss": float(res["init_loss"].values), "traces": traces, "nbeta": settings.beta()}
