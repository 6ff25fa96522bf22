"""Grokking detection, phases, two-stage dynamics and forgetting on synthetic metric curves with known
answers; sharpness on a quadratic loss with a known top eigenvalue; PCA and RQI on built embeddings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from groklab.analysis import (
    classify_phase,
    crossing_step,
    forgetting,
    grokking_summary,
    parallelograms,
    pca,
    power_iteration,
    rqi,
    seeds_summary,
    top_hessian_eigenvalue,
    two_stage,
)


def curves(steps, **series):
    return [{"step": s, **{k: v[i] for k, v in series.items()}} for i, s in enumerate(steps)]


STEPS = [0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]


def test_crossing_steps_are_exact_and_a_spike_does_not_count():
    train = [0.0, 0.3, 0.9, 0.995, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    val = [0.0, 0.0, 0.1, 0.992, 0.2, 0.3, 0.5, 0.991, 0.999, 1.0]  # a spike at 50, for real from 1000
    rows = curves(STEPS, train_acc=train, val_acc=val)
    assert crossing_step(rows, "train_acc") == 50
    assert crossing_step(rows, "val_acc") == 1000
    assert crossing_step(rows, "val_acc", stay=False) == 50
    g = grokking_summary(rows)
    assert (g["train_step"], g["val_step"], g["gap"], g["grokked"], g["budget"]) == (50, 1000, 950, True, 5000)
    # exactly at the threshold counts; just below does not
    assert crossing_step(curves([0, 1], a=[0.98, 0.99]), "a", 0.99) == 1
    assert crossing_step(curves([0, 1], a=[0.98, 0.9899]), "a", 0.99) is None


def test_never_when_the_budget_runs_out_and_missing_values_are_skipped():
    rows = curves(STEPS, train_acc=[1.0] * 10, val_acc=[0.5] * 9 + [None])
    g = grokking_summary(rows)
    assert g["val_step"] is None and g["gap"] is None and not g["grokked"]


def test_seeds_summary_median_and_spread():
    s = seeds_summary([100, 300, 200, None, 400])
    assert s["n"] == 5 and s["n_never"] == 1
    assert s["median"] == 300 and s["min"] == 100 and s["max"] == 400
    assert s["q25"] == 200
    assert s["q75"] == 400
    assert seeds_summary([None, None, 5])["median"] is None  # more than half never crossed


@pytest.mark.parametrize(
    "train,val,phase",
    [
        ([0.1, 0.95, 1, 1, 1, 1, 1, 1, 1, 1], [0.1, 0.92, 1, 1, 1, 1, 1, 1, 1, 1], "comprehension"),  # both at 10
        ([0.1, 0.95, 1, 1, 1, 1, 1, 1, 1, 1], [0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.95, 1], "grokking"),  # 10, 2000
        ([0.1, 0.95, 1, 1, 1, 1, 1, 1, 1, 1], [0.1] * 10, "memorization"),
        ([0.1] * 10, [0.1] * 10, "confusion"),
    ],
)
def test_phases(train, val, phase):
    assert classify_phase(curves(STEPS, train_acc=train, val_acc=val)) == phase


def test_phase_budget_and_window_are_parameters():
    rows = curves(STEPS, train_acc=[0.1, 0.95] + [1] * 8, val_acc=[0.1] * 8 + [0.95, 1])
    assert classify_phase(rows) == "grokking"
    assert classify_phase(rows, budget=1000) == "memorization"
    assert classify_phase(rows, comprehension_gap=5000) == "comprehension"


def test_two_stage_dynamics_of_doshi():
    val = [0.0, 0.1, 0.3, 0.6, 0.99, 1, 1, 1, 1, 1]
    corr = [0.0, 0.2, 0.6, 0.9, 1.0, 1.0, 0.8, 0.4, 0.1, 0.0]  # memorized, then unlearned after 500
    t = two_stage(curves(STEPS, val_acc=val, train_corrupted_acc=corr))
    assert t["val_step"] == 100 and t["corrupted_peak_step"] == 100 and t["unlearn_step"] == 1000
    assert t["two_stage"]
    # never unlearned
    t2 = two_stage(curves(STEPS, val_acc=val, train_corrupted_acc=[0, 0.2, 0.6, 0.9] + [1.0] * 6))
    assert t2["unlearn_step"] is None and not t2["two_stage"]
    # no corrupted labels
    assert two_stage(curves(STEPS, val_acc=val))["corrupted_peak"] is None


def test_forgetting():
    f = forgetting(curves(STEPS, val_acc=[0, 0.2, 0.5, 0.95, 1.0, 0.9, 0.6, 0.45, 0.3, 0.3]))
    assert (f["peak"], f["peak_step"], f["collapse_step"], f["forgot"]) == (1.0, 100, 1000, True)
    assert not forgetting(curves(STEPS, val_acc=[0, 0.2, 0.5, 0.95, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9]))["forgot"]


# --- sharpness -------------------------------------------------------------------------------------------
class Quadratic(nn.Module):
    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A = A
        self.theta = nn.Parameter(torch.randn(A.shape[0], dtype=A.dtype))

    def loss(self) -> torch.Tensor:
        return 0.5 * self.theta @ self.A @ self.theta


def test_power_iteration_on_quadratic_returns_the_top_eigenvalue():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    eig = torch.linspace(0.1, 3.0, 30, dtype=torch.float64)
    eig[-1] = 7.5  # a clear top eigenvalue
    A = Q @ torch.diag(eig) @ Q.T
    m = Quadratic(A)
    lam, it = power_iteration(m.loss, [m.theta], iters=200, tol=1e-10)
    assert lam == pytest.approx(7.5, rel=1e-6)
    assert it < 200


def test_top_hessian_eigenvalue_of_a_linear_model_with_mse():
    # f(x) = x @ W (one output), MSE summed over the single class: L = mean((xW - t)²) → H = 2 XᵀX / n
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 5, generator=g, dtype=torch.float64)

    class Lin(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.zeros(5, 1, dtype=torch.float64))

        def forward(self, x):
            return x @ self.W

    y = torch.zeros(64, dtype=torch.long)
    lam, _ = top_hessian_eigenvalue(Lin(), X, y, "mse", iters=500, tol=1e-12)
    assert lam == pytest.approx(torch.linalg.eigvalsh(2 * X.T @ X / 64)[-1].item(), rel=1e-6)


# --- representations -------------------------------------------------------------------------------------
def test_pca_recovers_a_line_and_a_circle():
    n = torch.arange(20, dtype=torch.float64)
    u = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    Y, var = pca(n[:, None] * u, 2)
    assert var[0].item() == pytest.approx(1.0)
    assert torch.allclose(Y[:, 0].abs(), ((n - n.mean()) * u.norm()).abs())
    t = 2 * math.pi * n / 20
    _, var2 = pca(torch.stack([torch.cos(t), torch.sin(t), torch.zeros(20, dtype=torch.float64)], 1), 2)
    assert var2.tolist() == pytest.approx([0.5, 0.5])


def test_parallelograms_count():
    # i+j = m+n over 0..3 with i≤j, m≤n: sums 2 (0+2, 1+1), 3 (0+3, 1+2), 4 (1+3, 2+2) → 3 parallelograms
    q = parallelograms(4)
    assert len(q) == 3
    assert all(int(a + b) == int(c + d) for a, b, c, d in q)


def test_rqi_linear_is_one_random_is_near_zero():
    n = torch.arange(15, dtype=torch.float64)
    lin = n[:, None] * torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64) + 5.0
    assert rqi(lin) == 1.0
    g = torch.Generator().manual_seed(0)
    assert rqi(torch.randn(15, 8, generator=g, dtype=torch.float64)) < 0.02
    # a slightly noisy line closes the parallelograms within a looser tolerance only
    noisy = lin + 0.01 * torch.randn(15, 3, generator=g, dtype=torch.float64)
    assert rqi(noisy, delta=1e-6) < 0.1 < 0.9 < rqi(noisy, delta=0.01)
