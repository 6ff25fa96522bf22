"""Ready configs for known setups. Each is a plain RunConfig a user can change one field of.

Two words, two things: a *config* here (`CONFIGS`, `presets.power2022()`) is one RunConfig to train or sweep
from (`groklab sweep --base power2022`); a *recipe* (`groklab.presets.recipes.RECIPES`, `groklab reproduce`)
is a whole paper reproduction — its runs, sweeps, analyses, figures and checks."""

from __future__ import annotations

from groklab.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig


def demo(out: str | None = "runs/demo", steps: int = 4000, seed: int = 0) -> RunConfig:
    """A grokking run in well under a minute on 2 CPU cores.

    The MLP of Doshi et al. (one-hot x ⊕ one-hot y, quadratic activation, no biases) on x+y mod 59 with
    half the table for training, full-batch AdamW (lr 1e-3, weight decay 0.3), cross-entropy. Changed from
    the paper for speed: p = 59 instead of 97, width 256 instead of 500, cross-entropy instead of MSE.
    Measured: training accuracy reaches 99% about ten times earlier than validation accuracy (steps ~230
    and ~2400 on seed 0), and validation accuracy ends at 100%.
    """
    return RunConfig(
        task=TaskConfig(op="x+y", p=59, train_frac=0.5, seed=seed),
        model=ModelConfig(arch="mlp", input="onehot", width=256, depth=1, act="quadratic", bias=False),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=0.3, warmup_steps=10),
        train=TrainConfig(steps=steps, batch_size=None, loss="ce", seed=seed, eval_points=80, checkpoint_points=20),
        out=out,
    )


def power2022(op: str = "x/y", p: int = 97, train_frac: float = 0.5, steps: int = 100_000, out: str | None = None) -> RunConfig:
    """Power et al. (2022): 2-layer transformer (width 128, 4 heads), AdamW lr 1e-3, weight decay 1,
    β = (0.9, 0.98), 10 warm-up steps from lr 0 as openai/grok's schedule (`optim.warmup_from_zero`), batch
    min(512, ⌈n_train/2⌉). The authors' transformer (openai/grok,
    grok/transformer.py): LayerNorm after each residual sum and no final one (`model.norm_position='post'`),
    fixed sinusoidal positions (`model.pos_embed='sinusoidal'`), no biases (`model.transformer_bias=none`),
    and PyTorch's default draw, as their code sets none (`model.init_dist='torch'`): W_E N(0, 1)
    (nn.Embedding) and every matrix U(±1/√fan_in) (nn.Linear: W_Q, W_K, W_V per head and W_O fan-in
    d_model, W_in d_model, W_out d_mlp, W_U d_model). Minibatches as their ArithmeticIterator: each epoch a
    new permutation of the training set cut into consecutive batches, the last one smaller
    (`train.batch_order='epoch'`). Not as theirs: the readout covers the p answers, theirs the whole token
    vocabulary."""
    task = TaskConfig(op=op, p=p, train_frac=train_frac)
    return RunConfig(
        task=task,
        model=ModelConfig(arch="transformer", n_layers=2, d_model=128, n_heads=4, d_mlp=512, layernorm=True, op_token=True,
                          norm_position="post", pos_embed="sinusoidal", transformer_bias="none", init_dist="torch"),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0, beta1=0.9, beta2=0.98, warmup_steps=10, warmup_from_zero=True),
        train=TrainConfig(steps=steps, batch_size=min(512, -(-task.n_train // 2)), batch_order="epoch"),
        out=out,
    )


def nanda2023(p: int = 113, train_frac: float = 0.3, steps: int = 40_000, out: str | None = None) -> RunConfig:
    """Nanda et al. (2023): 1-layer transformer, no LayerNorm, tokens (a, b, =), d_model 128, 4 heads,
    d_mlp 512, ReLU; full-batch AdamW lr 1e-3, weight decay 1, β = (0.9, 0.98), LambdaLR min(step/10, 1) (10
    warm-up steps from lr 0: `optim.warmup_from_zero`), cross-entropy computed in float64 as their
    `cross_entropy_high_precision` (`train.loss_dtype='float64'`). Initialization as the
    authors' code: every matrix N(0, 1/d_model) (W_E, W_pos, W_Q, W_K, W_V, W_O, W_in, and W_out, which
    groklab would otherwise draw N(0, 1/d_mlp)), W_U N(0, 1/d_vocab) with d_vocab = p + 1
    (`model.init_overrides`); biases on the MLP sublayer alone, zero at the start (`model.transformer_bias='mlp'`:
    the authors' attention and unembedding have none). Not as theirs: the readout covers the p answers, theirs
    the p + 1 tokens (the `=` logit too, trained down by the loss, dropped from their analyses)."""
    return RunConfig(
        task=TaskConfig(op="x+y", p=p, train_frac=train_frac),
        model=ModelConfig(arch="transformer", n_layers=1, d_model=128, n_heads=4, d_mlp=512, layernorm=False, op_token=False,
                          transformer_bias="mlp", init_overrides=[f"W_out={128 ** -0.5:.6g}", f"W_U={(p + 1) ** -0.5:.6g}"]),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0, beta1=0.9, beta2=0.98, warmup_steps=10, warmup_from_zero=True),
        train=TrainConfig(steps=steps, batch_size=None, loss_dtype="float64"),
        out=out,
    )


def doshi2023(p: int = 97, train_frac: float = 0.5, corrupt_frac: float = 0.0, weight_decay: float = 1.0, steps: int = 10_000, out: str | None = None) -> RunConfig:
    """Doshi et al. (2023): MLP on one-hot x ⊕ one-hot y, width 500, quadratic activation, no biases, MSE on
    one-hot targets averaged over classes and samples (PyTorch's MSELoss, as in the authors' code:
    `train.loss_reduction='mean'`), both weight matrices drawn N(0, 0.05²) (the authors' 0.5/(2N)^(1/3) at
    N = 500: `model.init_std`), full-batch AdamW lr 1e-2, β = (0.9, 0.98) (weight decay swept; 1.0 here is a
    preset choice)."""
    return RunConfig(
        task=TaskConfig(op="x+y", p=p, train_frac=train_frac, corrupt_frac=corrupt_frac),
        model=ModelConfig(arch="mlp", input="onehot", width=500, depth=1, act="quadratic", bias=False, init_std=0.05),
        optim=OptimConfig(name="adamw", lr=1e-2, weight_decay=weight_decay, warmup_steps=0),
        train=TrainConfig(steps=steps, batch_size=None, loss="mse", loss_reduction="mean"),
        out=out,
    )


CONFIGS = {"demo": demo, "power2022": power2022, "nanda2023": nanda2023, "doshi2023": doshi2023}
PRESETS = CONFIGS  # the name before CONFIGS and RECIPES were told apart; kept for existing code
