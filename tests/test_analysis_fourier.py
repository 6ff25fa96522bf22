"""Fourier, IPR, progress measures and pruning on cases with a known answer.

The centrepiece is a one-hot MLP with quadratic activation that computes x+y mod p exactly, built from
trigonometric identities: neuron (f, φ, ψ) has input weights cos(w x + φ) and cos(w y + ψ) and output
weights cos(w c + φ + ψ), with φ, ψ ∈ {0, 2π/3, 4π/3}. Squaring the pre-activation gives
1 + ½cos(2wx+2φ) + ½cos(2wy+2ψ) + cos(w(x+y)+φ+ψ) + cos(w(x-y)+φ-ψ); multiplied by the output weight and
summed over the nine phase pairs every term but ½cos(w(x+y-c)) cancels (each leftover carries a phase
factor Σ_j e^{i·m·2πj/3} with m = 1, 2 or 3·(other index 1), which is zero). So the logits are exactly
(9/2)·Σ_f cos(w_f(x+y-c)) · scale.
"""

from __future__ import annotations

import math

import pytest
import torch

from groklab.analysis import (
    dominant_frequencies,
    expected_gaussian_ipr,
    explained_fraction,
    fourier_basis,
    frequency_power,
    gini,
    ipr,
    key_frequencies,
    key_gap,
    neuron_spectra,
    neuron_table,
    power_spectrum,
    progress_measures,
    prune,
    pruning_curve,
    split_logits,
    sum_squared_weights,
    table_logits,
)
from groklab.config import TaskConfig
from groklab.models import MLP
from groklab.tasks import build_dataset
from groklab.train.loop import evaluate

P = 23
KEYS = [2, 5, 9]


def hand_built(p: int = P, freqs=KEYS, scale: float = 4.0) -> MLP:
    phases = [2 * math.pi * j / 3 for j in range(3)]
    n = torch.arange(p, dtype=torch.float64)
    cols_in, cols_out = [], []
    for f in freqs:
        w = 2 * math.pi * f / p
        for phi in phases:
            for psi in phases:
                cols_in.append(torch.cat([torch.cos(w * n + phi), torch.cos(w * n + psi)]))
                cols_out.append(torch.cos(w * n + phi + psi))
    model = MLP(p, p, width=len(cols_in), act="quadratic", bias=False).double()
    with torch.no_grad():
        model.W_in.copy_(torch.stack(cols_in, 1))
        model.W_out.copy_(torch.stack(cols_out, 0) * scale)
    return model.eval()


def data(p: int = P, corrupt: float = 0.0):
    return build_dataset(TaskConfig(op="x+y", p=p, train_frac=0.5, corrupt_frac=corrupt))


def test_hand_built_network_computes_addition_with_the_derived_logits():
    m = hand_built()
    logits = table_logits(m, P)  # (p, p, p)
    a, b, c = torch.meshgrid(torch.arange(P), torch.arange(P), torch.arange(P), indexing="ij")
    expected = sum(4.0 * 4.5 * torch.cos(2 * math.pi * f / P * (a + b - c).double()) for f in KEYS)
    assert torch.allclose(logits, expected, atol=1e-9)
    assert evaluate(m, data(), "ce")["val_acc"] == 1.0


def test_key_frequencies_found_exactly_and_explain_all_variance():
    m = hand_built()
    E = torch.cat([m.W_in[:P], m.W_in[P:]], 1)
    power = frequency_power(E)
    assert key_frequencies(power) == KEYS
    assert explained_fraction(power, KEYS) == pytest.approx(1.0, abs=1e-12)
    assert key_gap(power, KEYS) > 1e12
    # a different single frequency is found too, and n_keys takes the top n
    assert key_frequencies(frequency_power(hand_built(freqs=[7]).W_in[:P])) == [7]
    assert key_frequencies(power, n_keys=1)[0] in KEYS


def test_hand_built_neurons_have_ipr_one_and_their_frequency():
    t = neuron_table(hand_built(), P)
    assert torch.allclose(t["ipr"], torch.ones(27, dtype=torch.float64), atol=1e-12)
    assert t["freq"].tolist() == [f for f in KEYS for _ in range(9)]
    assert torch.allclose(t["freq_frac"], torch.ones(27, dtype=torch.float64), atol=1e-12)


def test_restricted_loss_equals_full_loss_and_excluded_is_chance():
    m, d = hand_built(), data()
    pm = progress_measures(m, d, P, KEYS, "ce")
    full_all = (pm["train_loss"] * d.n_train + pm["val_loss"] * d.n_val) / (d.n_train + d.n_val)
    assert pm["restricted_loss"] == pytest.approx(full_all, rel=1e-9)
    assert pm["excluded_loss"] == pytest.approx(math.log(P), rel=1e-9)  # uniform logits: chance
    # leaving out one key frequency makes the restricted loss worse and the excluded loss better than chance
    pm2 = progress_measures(m, d, P, KEYS[:2], "ce")
    assert pm2["restricted_loss"] > 10 * full_all
    assert pm2["excluded_loss"] < math.log(P) - 0.1


def test_split_logits_adds_back_up_and_is_orthogonal():
    g = torch.Generator().manual_seed(0)
    L = torch.randn(P, P, P, generator=g, dtype=torch.float64)
    r, e = split_logits(L, [1, 4])
    assert torch.allclose(r + e, L)
    assert abs((r * e).sum().item()) < 1e-8


def test_power_spectrum_convention_parseval_and_cosine():
    g = torch.Generator().manual_seed(1)
    for p in (23, 24):  # odd and even (a lone Nyquist coefficient)
        v = torch.randn(p, 3, generator=g, dtype=torch.float64)
        assert torch.allclose(power_spectrum(v).sum(0), v.pow(2).sum(0))
    n = torch.arange(P, dtype=torch.float64)
    a = power_spectrum(3.0 * torch.cos(2 * math.pi * 4 * n / P + 0.7) + 2.0)
    # amplitude A over p points: power p·A²/2 at f, p·c² at f = 0
    assert a[4].item() == pytest.approx(P * 9 / 2)
    assert a[0].item() == pytest.approx(P * 4)
    assert a.sum().item() - a[0].item() - a[4].item() == pytest.approx(0, abs=1e-9)
    assert ipr(a).item() == pytest.approx(1.0)
    # two equal-power frequencies: 1/2
    assert ipr(power_spectrum(torch.cos(2 * math.pi * n / P) + torch.sin(2 * math.pi * 3 * n / P))).item() == pytest.approx(0.5)


def test_fourier_basis_is_orthonormal():
    for p in (23, 24):
        B, names = fourier_basis(p)
        assert torch.allclose(B @ B.T, torch.eye(p, dtype=torch.float64), atol=1e-12)
        assert len(names) == p


@pytest.mark.parametrize("p", [23, 97])
def test_gaussian_ipr_matches_the_derivation(p):
    g = torch.Generator().manual_seed(p)
    n = 4000
    v = torch.randn(p, n, generator=g, dtype=torch.float64)
    one = ipr(power_spectrum(v, dim=0), dim=0).mean().item()
    se = ipr(power_spectrum(v, dim=0), dim=0).std().item() / math.sqrt(n)
    assert one == pytest.approx(expected_gaussian_ipr(p, 1), abs=5 * se)
    assert expected_gaussian_ipr(p, 1) == pytest.approx(4 / (p + 1))
    # two blocks of a one-hot MLP neuron, power summed: 3/p
    w = torch.randn(2, p, n, generator=g, dtype=torch.float64)
    spectra, _ = neuron_spectra(w)
    two = ipr(spectra)
    assert two.mean().item() == pytest.approx(3 / p, abs=5 * two.std().item() / math.sqrt(n))
    # the estimate separates the two formulas (the test can fail)
    assert abs(4 / (p + 1) - 3 / p) > 10 * se


def test_activation_spectra_assign_sum_frequency_and_relu_harmonics():
    p = 31
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    w = 2 * math.pi * 6 / p
    acts = torch.stack([
        torch.cos(w * (a + b)),  # pure, frequency 6
        torch.cos(w * a) * torch.cos(w * b) + 0.5 * torch.sin(w * b) + 3.0,  # still only frequency 6 (+ constant)
        torch.cos(w * a) + torch.cos(2 * math.pi * 2 / p * b),  # frequencies 6 and 2, equal power
    ], -1).double()
    spectra, total = neuron_spectra(acts)
    r = ipr(spectra)
    assert r[0].item() == pytest.approx(1.0) and r[1].item() == pytest.approx(1.0)
    assert r[2].item() == pytest.approx(0.5)
    assert spectra[:2, 1:].argmax(1).add(1).tolist() == [6, 6]
    assert torch.allclose(spectra.sum(1)[:2], total[:2])
    # a dead (constant) neuron has no periodic power: IPR 0 and frequency 0
    dead = torch.full((p, p, 1), 2.5, dtype=torch.float64)
    sp, tot = neuron_spectra(dead)
    assert ipr(sp).item() == 0.0 and dominant_frequencies(sp, tot)[0].item() == 0


def test_gini_known_values():
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    assert gini(torch.tensor([0.0, 0, 0, 5])) == pytest.approx(3 / 4)
    assert gini(torch.tensor([1.0, 2, 3])) == pytest.approx((1 + 2 + 1) * 2 / (2 * 3 * 6))


def test_sum_squared_weights():
    m = hand_built()
    expected = (m.W_in.pow(2).sum() + m.W_out.pow(2).sum()).item()
    assert sum_squared_weights(m) == pytest.approx(expected)


def test_pruning_zero_neurons_changes_nothing_and_all_neurons_gives_constant_output():
    m, d = hand_built(), data(corrupt=0.2)
    base = evaluate(m, d, "ce")
    assert evaluate(prune(m, []), d, "ce") == base
    rows = pruning_curve(m, d, "ce", scores=torch.arange(27.0), ks=[0, 9, 27])
    assert {k: v for k, v in rows[0].items() if k not in ("order", "k")} == base
    # all removed: every logit is 0, argmax is class 0
    assert rows[2]["val_acc"] == pytest.approx((d.y_val == 0).double().mean().item())
    # removing the 9 lowest-score neurons (all of frequency 2) leaves a network that still adds correctly
    assert rows[1]["val_acc"] == 1.0
    assert "train_corrupted_acc" in rows[0]
    # the original model is untouched
    assert evaluate(m, d, "ce") == base


def test_errors_name_the_value():
    with pytest.raises(Exception, match="neurons \\[99\\]"):
        prune(hand_built(), [99])
    with pytest.raises(Exception, match="x\\*y"):
        split_logits(torch.zeros(P, P, P), [1], op="x*y")


@pytest.mark.parametrize("p", [7, 59, 97, 113])
def test_ipr_of_a_constant_is_zero_not_its_round_off(p):
    """The DFT of a constant has only f = 0; its other coefficients are round-off (~1e-32 of the power), whose
    IPR used to come out 0.05–0.08. The public `ipr` calls that zero, as documented."""
    for c in (0.3, -2.5, 1e-6, 1e6):
        for dtype in (torch.float32, torch.float64):
            assert ipr(power_spectrum(torch.full((p,), c, dtype=dtype))).item() == 0.0
    # a column of constants among real vectors: only that one is zero
    v = torch.stack([torch.full((p,), 0.7), torch.cos(2 * math.pi * 2 * torch.arange(p) / p)], 1)
    r = ipr(power_spectrum(v, dim=0), dim=0)
    assert r[0].item() == 0.0 and r[1].item() == pytest.approx(1.0)


def test_ipr_pure_frequency_is_one_and_a_tiny_real_component_still_counts():
    p = 97
    n = torch.arange(p, dtype=torch.float64)
    for f in (1, 13, 48):
        assert ipr(power_spectrum(3.0 * torch.cos(2 * math.pi * f * n / p + 0.4) + 5.0)).item() == pytest.approx(1.0)
    # a periodic part 1e-6 of the constant (power ratio 1e-12 ≫ round-off) is real, not round-off
    v = 1.0 + 1e-6 * torch.cos(2 * math.pi * 5 * n / p)
    assert ipr(power_spectrum(v)).item() == pytest.approx(1.0)
