"""The frontier analyses on cases with a known answer: the empirical NTK (lazy → rich), heavy-tailed
self-regularization (power-law exponent of weight spectra, correlation traps) and the local learning
coefficient (devinterp), plus the output-scale knob and the polynomial teacher they run on."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn as nn

from groklab.analysis.ntk import empirical_ntk, kernel_distance, target_alignment, target_matrix
from groklab.config import ModelConfig, RunConfig, TaskConfig
from groklab.errors import ConfigError
from groklab.models import build_model
from groklab.tasks import build_dataset


class Linear(nn.Module):
    def __init__(self, d: int, c: int = 1):
        super().__init__()
        self.W = nn.Parameter(torch.randn(d, c, dtype=torch.float64))

    def forward(self, x):
        return x @ self.W


# --- output scale and the polynomial teacher ------------------------------------------------------------

def test_output_scale_multiplies_the_output_and_keeps_the_weights():
    torch.manual_seed(0)
    m1 = build_model(ModelConfig(arch="mlp", width=16), 5, 3, d_input=4)
    torch.manual_seed(0)
    m2 = build_model(ModelConfig(arch="mlp", width=16, output_scale=2.5), 5, 3, d_input=4)
    x = torch.randn(7, 4)
    torch.testing.assert_close(m2(x), 2.5 * m1(x))
    assert list(m1.state_dict()) == list(m2.state_dict())
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    torch.manual_seed(0)
    t = build_model(ModelConfig(arch="transformer", n_layers=1, d_model=16, n_heads=2, d_mlp=32, output_scale=0.5), 7, 7)
    torch.manual_seed(0)
    t1 = build_model(ModelConfig(arch="transformer", n_layers=1, d_model=16, n_heads=2, d_mlp=32), 7, 7)
    toks = torch.randint(0, 7, (5, 2))  # operand pairs
    torch.testing.assert_close(t(toks), 0.5 * t1(toks))


def test_output_scale_is_validated_and_old_configs_load():
    with pytest.raises(ConfigError, match="model.output_scale"):
        ModelConfig(output_scale=0.0)
    d = RunConfig().to_dict()
    del d["model"]["output_scale"], d["task"]["teacher"], d["task"]["teacher_degree"]
    cfg = RunConfig.from_dict(d)
    assert cfg.model.output_scale == 1.0 and cfg.task.teacher == "mlp"


def test_poly_teacher_labels_are_the_single_index_polynomial():
    cfg = TaskConfig(group="teacher", teacher="poly", d_in=20, d_out=1, train_size=300, val_size=200, seed=3)
    data = build_dataset(cfg)
    from groklab.tasks.teacher import make_poly_teacher

    beta, x = make_poly_teacher(cfg)
    torch.testing.assert_close(data.x_train, x[:300])
    torch.testing.assert_close(data.y_train, (x[:300] @ beta) ** 2 / 2)
    # y = z²/2 with z = β·x ~ N(0, |β|²): mean |β|²/2
    assert abs(float(torch.cat([data.y_train, data.y_val]).mean()) - float(beta.pow(2).sum()) / 2) < 0.15
    with pytest.raises(ConfigError, match="task.teacher"):
        TaskConfig(group="teacher", teacher="cubic")


# --- empirical NTK --------------------------------------------------------------------------------------

def test_ntk_of_a_linear_model_is_the_gram_matrix_and_does_not_move():
    torch.manual_seed(0)
    X = torch.randn(6, 4, dtype=torch.float64)
    m = Linear(4)
    K0 = empirical_ntk(m, X)
    torch.testing.assert_close(K0, X @ X.T)
    with torch.no_grad():
        m.W.mul_(-3.0).add_(1.0)  # any other weights: a linear model's kernel does not depend on them
    K1 = empirical_ntk(m, X)
    torch.testing.assert_close(K1, X @ X.T)
    assert abs(kernel_distance(K0, K1)) < 1e-12
    # C outputs with independent weight columns: the output-traced kernel is C · XXᵀ
    torch.testing.assert_close(empirical_ntk(Linear(4, 3), X), 3 * X @ X.T)
    # blocks of outputs give the same kernel as all at once
    torch.testing.assert_close(empirical_ntk(Linear(4, 3), X, max_bytes=1), 3 * X @ X.T)


def test_kernel_target_alignment_by_hand():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    K = X @ X.T  # [[1,0,1],[0,1,1],[1,1,2]], ‖K‖_F = √10
    y = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    # yᵀKy = K00 − 2 K01 + K11 = 2; ‖yyᵀ‖_F = ‖y‖² = 2
    assert target_alignment(K, y) == pytest.approx(2 / (math.sqrt(10) * 2))
    assert target_alignment(K, K.diagonal().sqrt()) <= 1.0
    # K = yyᵀ aligns perfectly; the distance of a kernel from a multiple of itself is 0, from an orthogonal one 1
    assert target_alignment(torch.outer(y, y), y) == pytest.approx(1.0)
    assert kernel_distance(K, 5 * K) == pytest.approx(0.0, abs=1e-12)
    assert kernel_distance(torch.diag(torch.tensor([1.0, 0.0])), torch.diag(torch.tensor([0.0, 1.0]))) == pytest.approx(1.0)
    # centered: an added constant kernel hides the match from the plain alignment, not from the centered one
    # (y has mean 0 here, so H y = y and H(yyᵀ + 5·11ᵀ)H = yyᵀ)
    K2 = torch.outer(y, y) + 5.0
    assert target_alignment(K2, y) < 0.5
    assert target_alignment(K2, y, centered=True) == pytest.approx(1.0)
    Y = target_matrix(torch.tensor([0, 2, 1]), 3, "class")
    torch.testing.assert_close(Y, torch.eye(3, dtype=torch.float64)[[0, 2, 1]])


def test_ntk_of_a_two_layer_network_matches_the_formula():
    # f(x) = aᵀ relu(Wx): K(x,x') = relu(Wx)·relu(Wx') + Σ_i a_i² 1[w_i·x>0] 1[w_i·x'>0] x·x'
    torch.manual_seed(1)
    d, h, n = 3, 5, 4

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.randn(h, d, dtype=torch.float64))
            self.a = nn.Parameter(torch.randn(h, dtype=torch.float64))

        def forward(self, x):
            return torch.relu(x @ self.W.T) @ self.a

    m = TwoLayer()
    X = torch.randn(n, d, dtype=torch.float64)
    H = torch.relu(X @ m.W.T)
    D = (X @ m.W.T > 0).double() * m.a.detach()
    expected = H @ H.T + (D @ D.T) * (X @ X.T)
    torch.testing.assert_close(empirical_ntk(m, X), expected.detach())


@pytest.mark.integration
def test_ntk_analysis_lazy_run_keeps_its_kernel_rich_run_moves_it(tmp_path):
    """Chizat et al. 2019: with the output multiplied by α and the learning rate divided by α², a large α
    trains lazily (the kernel hardly moves) and a small α richly; `groklab analyze --what ntk` sees it."""
    from groklab.analysis import run_analysis
    from groklab.cli import main
    from groklab.report.analysis_plots import draw_analysis
    from groklab.train import run

    base = RunConfig().replace(**{
        "task.group": "teacher", "task.teacher": "poly", "task.d_in": 8, "task.train_size": 64, "task.val_size": 64,
        "model.arch": "mlp", "model.width": 64, "model.depth": 1, "train.loss": "mse", "train.batch_size": None,
        "train.steps": 200, "train.eval_points": 10, "train.checkpoint_points": 4, "train.threads": 1,
        "optim.name": "sgd", "optim.weight_decay": 0.0, "optim.warmup_steps": 0})
    dist = {}
    for alpha in (0.1, 10.0):
        out = tmp_path / f"a{alpha}"
        run(base.replace(**{"model.output_scale": alpha, "optim.lr": 0.05 / alpha**2, "out": str(out)}))
        if alpha == 0.1:
            main(["analyze", str(out), "--what", "ntk", "--ntk-samples", "32", "--quiet"])
            s = None
        else:
            s = run_analysis(out, ["ntk"], ntk_samples=32)
            assert not (out / "analysis" / "ntk.png").exists()
            draw_analysis(out, s)
        df = pd.read_csv(out / "analysis" / "ntk.csv")
        assert (out / "analysis" / "ntk.png").stat().st_size > 1000
        assert df["distance"].iloc[0] == pytest.approx(0.0, abs=1e-9) and df["step"].iloc[0] == 0
        assert len(df) == 4 and set(df["split"]) == {"val"}
        dist[alpha] = float(df["distance"].iloc[-1])
    assert s is not None and s["ntk"]["final"]["distance"] == pytest.approx(dist[10.0])
    # a task over vectors has no elements to embed: representations is skipped with a note, not a traceback
    notes = run_analysis(tmp_path / "a10.0", ["representations"])["notes"]
    assert any("representations need a task over a set of elements" in n for n in notes), notes
    assert dist[10.0] < 1e-2 < 0.1 < dist[0.1], dist


# --- heavy-tailed self-regularization -------------------------------------------------------------------

def _planted(alpha: float, N: int = 1000, M: int = 500, seed: int = 0) -> torch.Tensor:
    """W = U diag(√(Nλ)) Vᵀ with the M eigenvalues λ of WᵀW/N drawn from the Pareto density ∝ λ^(−α), λ ≥ 1."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(N, M, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(M, M, generator=g, dtype=torch.float64))
    lam = (1 - torch.rand(M, generator=g, dtype=torch.float64)) ** (-1 / (alpha - 1))
    return U @ torch.diag((N * lam).sqrt()) @ V.T


def test_htsr_recovers_a_planted_power_law_exponent():
    from groklab.analysis.htsr import esd, layer_htsr

    W = _planted(3.0)
    eigs = esd(W)
    assert len(eigs) == 500 and eigs[0] >= 1 - 1e-9
    r = layer_htsr(W)
    # the MLE's standard error is (α − 1)/√n ≈ 0.09 with the ~500 tail eigenvalues: 0.25 is under 3 of them
    assert r["alpha"] == pytest.approx(3.0, abs=0.25)
    assert r["n_tail"] >= 400 and r["xmin"] < 1.1
    assert layer_htsr(_planted(2.5, seed=1))["alpha"] == pytest.approx(2.5, abs=0.25)


def test_htsr_random_gaussian_matrix_has_no_heavy_tail_and_no_traps():
    from groklab.analysis.htsr import layer_htsr

    g = torch.Generator().manual_seed(0)
    G = torch.randn(1000, 500, generator=g, dtype=torch.float64)
    r = layer_htsr(G)
    assert r["alpha"] > 6  # Martin & Mahoney: random-like
    # the top eigenvalue sits at the Marchenko–Pastur edge σ²(1 + √(M/N))² = (1 + √0.5)² ≈ 2.91
    assert r["mp_edge"] == pytest.approx((1 + math.sqrt(0.5)) ** 2, rel=0.02)
    assert r["lambda_max"] == pytest.approx(r["mp_edge"], rel=0.05)
    assert r["n_spikes"] == 0 and r["n_traps"] == 0


def test_htsr_spike_and_correlation_trap():
    from groklab.analysis.htsr import layer_htsr

    g = torch.Generator().manual_seed(0)
    G = torch.randn(1000, 500, generator=g, dtype=torch.float64)
    # a rank-one spike made of one huge entry: shuffling the entries keeps it, so it is a correlation trap
    W = G.clone()
    W[3, 7] = 60.0
    r = layer_htsr(W)
    assert r["n_spikes"] == 1 and r["n_traps"] == 1 and r["rand_lambda_max"] > 1.5 * r["mp_edge"]
    # a dense rank-one spike (a learned correlation) stands out of the bulk, but shuffling spreads it out
    u, v = torch.randn(1000, 1, generator=g, dtype=torch.float64), torch.randn(500, 1, generator=g, dtype=torch.float64)
    r = layer_htsr(G + 3 * u @ v.T / math.sqrt(500))
    assert r["n_spikes"] == 1 and r["n_traps"] == 0


def test_htsr_weight_matrices_of_a_transformer():
    from groklab.analysis.htsr import model_htsr, weight_matrices

    torch.manual_seed(0)
    m = build_model(ModelConfig(n_layers=1, d_model=32, n_heads=4, d_mlp=64, layernorm=False, op_token=False), 23, 23)
    Ws = weight_matrices(m, min_dim=10)
    assert "W_pos" not in Ws and not any(k.rsplit(".", 1)[-1].startswith("b_") for k in Ws)
    assert tuple(Ws["blocks.0.attn.W_Q"].shape) == (32, 32) and tuple(Ws["blocks.0.attn.W_O"].shape) == (32, 32)
    # heads side by side: column block h of the stacked W_Q is head h
    torch.testing.assert_close(Ws["blocks.0.attn.W_Q"][:, 8:16], m.blocks[0].attn.W_Q[1].detach())
    rows = model_htsr(m)
    assert {r["layer"] for r in rows} == set(Ws) and all(r["alpha"] > 0 for r in rows)


# --- local learning coefficient (devinterp) -------------------------------------------------------------

@pytest.mark.integration
def test_llc_of_a_regular_model_is_half_its_dimension():
    """Linear regression with d = 10 weights is regular: λ = d/2 = 5. For a quadratic loss the tempered
    posterior (γ = 0) is Gaussian and nβ·E[L − L(w*)] = d/2 for any nβ and curvature, so what is left is the
    sampler's error: ε = 3e-3 at curvature nβ·2 biases the variance up by εa/4 ≈ 3%, the chains start at w*
    (≈ 15 steps to relax of 500: ≈ 3% down), and 4 chains × 500 draws leave a standard error ≈ 0.2. 15% of
    λ (0.75) is about 3.5 standard errors."""
    pytest.importorskip("devinterp")
    from groklab.analysis.llc import LLCSettings, estimate_llc

    torch.manual_seed(0)
    n, d = 1000, 10
    X = torch.randn(n, d, dtype=torch.float64)
    y = X @ torch.randn(d, 1, dtype=torch.float64) + 0.5 * torch.randn(n, 1, dtype=torch.float64)
    m = nn.Linear(d, 1, bias=False).double()
    m.weight.data = torch.linalg.lstsq(X, y).solution.T.clone()  # w*: the least-squares minimum
    w = m.weight.detach().clone()
    r = estimate_llc(m, X, y, "mse", "real", LLCSettings(lr=3e-3, localization=0.0, chains=4, draws=500, batch_size=100, seed=1))
    assert r["llc_mean"] == pytest.approx(d / 2, rel=0.15), r
    assert r["traces"].shape == (4, 500) and len(r["llc_per_chain"]) == 4
    assert torch.equal(m.weight, w)  # the model itself is not moved


def test_llc_settings_are_validated():
    from groklab.analysis.fourier import AnalysisError
    from groklab.analysis.llc import LLCSettings

    with pytest.raises(AnalysisError, match="llc_lr"):
        LLCSettings(lr=0.0)
    with pytest.raises(AnalysisError, match="llc_chains"):
        LLCSettings(chains=0)
    assert LLCSettings(batch_size=32).beta() == pytest.approx(32 / math.log(32))
    assert LLCSettings(nbeta=7.0).beta() == 7.0


@pytest.mark.integration
def test_analyze_llc_htsr_write_tables_and_figures(tmp_path):
    """`groklab analyze --what llc htsr` on a short real run: tables, figures and the summary; flags reach devinterp."""
    pytest.importorskip("devinterp")
    import json

    from groklab import presets
    from groklab.cli import main
    from groklab.train import run

    out = tmp_path / "run"
    run(presets.demo(out=str(out), steps=60).replace(**{"task.p": 11, "model.width": 16, "train.threads": 1, "train.eval_points": 5,
                                                          "train.checkpoint_points": 3}))
    main(["analyze", str(out), "--what", "llc", "htsr", "--llc-chains", "2", "--llc-draws", "15", "--llc-checkpoints", "2",
          "--llc-batch-size", "8", "--llc-lr", "1e-4", "--quiet"])
    a = out / "analysis"
    llc = pd.read_csv(a / "llc.csv")
    assert list(llc["step"]) == [0, 60] and set(llc["chains"]) == {2} and set(llc["lr"]) == {1e-4}
    assert {"llc_mean", "llc_std", "llc_chain0", "llc_chain1", "nbeta"} <= set(llc.columns)
    tr = pd.read_csv(a / "llc_traces.csv")
    assert len(tr) == 2 * 2 * 15 and set(tr["chain"]) == {0, 1}
    h = pd.read_csv(a / "htsr.csv")
    assert set(h["layer"]) == {"W_in", "W_out"} and h["step"].nunique() == 3
    for name in ("llc", "llc_traces", "htsr"):
        assert (a / f"{name}.png").stat().st_size > 1000, name
    s = json.loads((a / "summary.json").read_text())
    assert "llc" in s and set(s["htsr"]["final_alpha"]) == {"W_in", "W_out"}


@pytest.mark.acceptance
def test_llc_changes_between_memorization_and_grokking(tmp_path):
    """The demo run (Doshi et al.'s MLP on x+y mod 59, grokking within 3000 steps): the LLC at the
    memorization checkpoint (training accuracy ≥ 99%, validation < 50%) and at the end (validation ≥ 99%)
    differ by more than the spread of either over the chains (devinterp's grokking result: the LLC falls
    when the network generalizes). 2–4 minutes on one busy core (measured 220 s)."""
    pytest.importorskip("devinterp")
    from groklab import presets
    from groklab.analysis.llc import LLCSettings, estimate_llc
    from groklab.store import load_run
    from groklab.train import run

    out = tmp_path / "demo"
    run(presets.demo(out=str(out), steps=3000).replace(**{"train.threads": 1, "train.checkpoint_points": 8, "train.eval_points": 40}))
    r = load_run(out)
    data = build_dataset(r.config.task)

    def acc_at(step, key):
        return [row for row in r.rows if row["step"] <= step][-1][key]

    mem = next(s for s in r.checkpoint_steps if acc_at(s, "train_acc") >= 0.99 and acc_at(s, "val_acc") < 0.5)
    end = r.checkpoint_steps[-1]
    assert acc_at(end, "val_acc") >= 0.99
    est = {s: estimate_llc(r.load_model(s), data.x_train, data.y_train, "ce", "class", LLCSettings(chains=3, draws=200)) for s in (mem, end)}
    gap = abs(est[mem]["llc_mean"] - est[end]["llc_mean"])
    assert gap > 2 * max(est[mem]["llc_std"], est[end]["llc_std"]), {s: (e["llc_mean"], e["llc_std"]) for s, e in est.items()}
    assert est[end]["llc_mean"] < est[mem]["llc_mean"]


# --- the kumar2023 preset -------------------------------------------------------------------------------

def test_kumar2023_is_registered_and_its_configs_validate():
    from groklab.presets.recipes import RECIPES
    from groklab.presets.recipes.base import Context
    from groklab.presets.recipes.kumar2023 import ALPHAS, base_config

    assert "kumar2023" in RECIPES and "Kumar" in RECIPES["kumar2023"].paper
    for scale in ("smoke", "quick", "full"):
        cfg = base_config(Context(out=None, scale=scale, log=lambda s: None))
        assert cfg.task.teacher == "poly" and cfg.task.train_size == int(5.5 * cfg.task.d_in)
        assert cfg.optim.name == "sgd" and cfg.optim.weight_decay == 0.0 and cfg.train.batch_size is None
        for a in ALPHAS:
            c = cfg.replace(**{"model.output_scale": a, "optim.lr": cfg.optim.lr / a**2})
            assert c.model.output_scale == a


@pytest.mark.integration
def test_kumar2023_smoke(tmp_path):
    import json

    from groklab.presets.recipes import reproduce

    out = reproduce("kumar2023", scale="smoke", out=tmp_path / "k")
    checks = json.loads((out / "checks.json").read_text())
    assert len(checks) >= 4
    assert (out / "figures" / "ntk_distance.png").is_file() and (out / "tables" / "runs.csv").is_file()


def test_analyze_rejects_bad_frontier_settings_in_one_line(tmp_path, capsys):
    from groklab.cli import main

    for argv, field in ((["--what", "llc", "--llc-lr", "0"], "llc_lr=0.0"), (["--what", "llc", "--llc-draws", "0"], "llc_draws=0"),
                        (["--what", "ntk", "--ntk-split", "test"], "ntk-split")):
        with pytest.raises(SystemExit) as e:
            main(["analyze", str(tmp_path / "no-run"), *argv])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert field in err and "Traceback" not in err, err
    assert not (tmp_path / "no-run").exists()  # nothing half-written
