"""The empirical neural tangent kernel over checkpoints: how far training moves away from the lazy (kernel)
regime, and how well the kernel matches the targets.

Kumar, Bordelon, Gershman & Pehlevan 2023 ("Grokking as the transition from lazy to rich training
dynamics", arXiv 2310.06110) explain grokking as a network that first fits its training set with its
initial kernel (lazy) and only later learns features (rich); the kernel then moves and aligns with the task.

Definitions (f: R^in → R^C the network, θ its parameters, x_1..x_n a fixed probe set of inputs):

    K(x_i, x_j) = Σ_c ⟨∂f_c(x_i)/∂θ, ∂f_c(x_j)/∂θ⟩            the output-traced empirical NTK, (n, n)
    kernel distance  d(K0, Kt) = 1 − ⟨K0, Kt⟩_F / (‖K0‖_F ‖Kt‖_F)      (Fort et al. 2020, eq. 4)
    kernel-target alignment  A(K, Y) = ⟨K, Y Yᵀ⟩_F / (‖K‖_F ‖Y Yᵀ‖_F)    (Cristianini et al. 2002)
    centered alignment       A(HKH, HY)  with H = I − 11ᵀ/n           (Cortes, Mohri & Rostamizadeh 2012)

Y is (n, C): one-hot labels for classes, the ±1 or real targets otherwise. Tracing over the outputs keeps
the kernel (n, n) for any number of classes; with one output it is the plain NTK. A linear model
f(x) = xᵀw has K = X Xᵀ at every step (distance 0). Kumar et al.'s code centers K on one side only
(K − mean over rows) in their alignment; `centered_alignment` is the usual two-sided version.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from groklab.errors import AnalysisError


def empirical_ntk(model: nn.Module, x: torch.Tensor, *, max_bytes: int = 256 * 2**20) -> torch.Tensor:
    """K (n, n), float64: the output-traced empirical NTK of `model` on the inputs x (a batch of n).

    Jacobians come from torch.func.jacrev over the parameters; the outputs are taken a few at a time so that
    one block of the Jacobian (n × outputs × parameters) stays under `max_bytes`. Buffers (BatchNorm
    statistics) are held fixed; call it on a model in eval mode.
    """
    from torch.func import functional_call, jacrev

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())
    if not params:
        raise AnalysisError("the model has no trainable parameters; its NTK is zero")
    n_params = sum(v.numel() for v in params.values())
    with torch.no_grad():
        out = model(x)
    if out.ndim == 1:
        out = out[:, None]
    n, C = out.shape[0], out.reshape(out.shape[0], -1).shape[1]
    itemsize = next(iter(params.values())).element_size()
    per_block = max(1, int(max_bytes // max(1, n * n_params * itemsize)))
    K = torch.zeros(n, n, dtype=torch.float64)
    for c0 in range(0, C, per_block):
        cs = slice(c0, min(C, c0 + per_block))

        def f(p):
            y = functional_call(model, (p, buffers), (x,))
            return y.reshape(y.shape[0], -1)[:, cs]  # (n, outputs in this block)

        J = jacrev(f)(params)  # name -> (n, block, *shape)
        for v in J.values():
            v = v.reshape(n, -1).to(torch.float64)  # (n, block · numel): summing over outputs is one inner product
            K += v @ v.T
    return K


def _frob(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def kernel_distance(K0: torch.Tensor, K: torch.Tensor) -> float:
    """1 − ⟨K0, K⟩_F / (‖K0‖_F ‖K‖_F): 0 when the kernel has not moved (up to scale), at most 2."""
    den = float(K0.norm()) * float(K.norm())
    if den == 0:
        return math.nan
    return 1.0 - _frob(K0, K) / den


def target_alignment(K: torch.Tensor, Y: torch.Tensor, *, centered: bool = False) -> float:
    """⟨K, YYᵀ⟩_F / (‖K‖_F ‖YYᵀ‖_F) (Cristianini et al. 2002); with centered=True both K and Y are centered
    over the samples first, K → HKH, Y → HY (Cortes et al. 2012). Y is (n,) or (n, C)."""
    K = K.to(torch.float64)
    Y = Y.to(torch.float64).reshape(len(Y), -1)
    if centered:
        K = K - K.mean(0, keepdim=True) - K.mean(1, keepdim=True) + K.mean()
        Y = Y - Y.mean(0, keepdim=True)
    T = Y @ Y.T
    den = float(K.norm()) * float(T.norm())
    if den == 0:
        return math.nan
    return _frob(K, T) / den


def target_matrix(y: torch.Tensor, n_classes: int, target: str) -> torch.Tensor:
    """The targets as (n, C): one-hot for class labels, as they are for ±1 and real targets."""
    if target == "class":
        return torch.nn.functional.one_hot(y.long(), n_classes).to(torch.float64)
    return y.to(torch.float64).reshape(len(y), -1)


def probe_indices(n_total: int, n_probe: int, seed: int = 0) -> torch.Tensor:
    """A fixed random subset of n_probe of n_total samples (the same at every checkpoint)."""
    if n_probe < 2:
        raise AnalysisError(f"ntk_samples={n_probe} must be at least 2")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n_probe, n_total)].sort().values


def ntk_over_checkpoints(models, x: torch.Tensor, Y: torch.Tensor) -> list[dict]:
    """For (step, model) pairs in order: kernel distance from the first kernel, trace, alignments.

    `models` yields (step, model) with the reference (initial) checkpoint first. One row per step:
    step, distance, alignment, centered_alignment, trace (Σ_i K_ii / n), frobenius (‖K‖_F / n).
    """
    rows, K0 = [], None
    n = len(x)
    for step, m in models:
        K = empirical_ntk(m, x)
        if K0 is None:
            K0 = K
        rows.append({
            "step": int(step), "distance": kernel_distance(K0, K), "alignment": target_alignment(K, Y),
            "centered_alignment": target_alignment(K, Y, centered=True),
            "trace": float(K.diagonal().sum()) / n, "frobenius": float(K.norm()) / n,
        })
    return rows
