"""Same config, same numbers at 2 threads and at 1 (issue 16.7); the explicit attention against the fused kernel;
the CPU runtime of a run (threads chosen to fit, settings undone afterwards)."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import strip_time

from groklab import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, resume, run
from groklab.models import build_model
from groklab.train import runtime

# One small config per architecture, each large enough that the kernel which used to depend on the thread
# split (the backward of indexing rows of a weight, index_put_ with accumulate) runs multi-threaded.
ARCHS = {
    "transformer": RunConfig(
        task=TaskConfig(op="x-y", p=31, train_frac=0.4),
        model=ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64),
        train=TrainConfig(steps=8, batch_size=64, eval_points=6),
    ),
    "mlp_onehot": RunConfig(
        task=TaskConfig(op="x+y", p=97, train_frac=0.5),
        model=ModelConfig(arch="mlp", width=64, act="quadratic"),
        train=TrainConfig(steps=8, batch_size=None, eval_points=5),
    ),
    "mlp_embed": RunConfig(
        task=TaskConfig(op="x+y", p=97, train_frac=0.5),
        model=ModelConfig(arch="mlp", input="embed", d_embed=32, width=64, act="relu"),
        train=TrainConfig(steps=8, batch_size=512, eval_points=5),
    ),
    "dense": RunConfig(
        task=TaskConfig(group="parity", n_bits=20, k=3, train_size=2000, val_size=200),
        model=ModelConfig(arch="mlp", width=128, depth=2, bias=True),
        optim=OptimConfig(name="sgd", lr=0.1, weight_decay=0.01, warmup_steps=0),
        train=TrainConfig(steps=8, batch_size=512, loss="hinge", eval_points=5),
    ),
    "toy": RunConfig(
        task=TaskConfig(group="integer", p=60, train_frac=0.8),
        model=ModelConfig(arch="toy", d_embed=16, width=64, depth=2, bias=True),
        train=TrainConfig(steps=8, batch_size=None, eval_points=5),
    ),
}


def two_threads(cfg: RunConfig, out=None) -> RunConfig:
    return cfg.replace(**{"train.threads": 2, "out": None if out is None else str(out)})


@pytest.mark.integration
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_same_config_same_metrics_at_two_threads(arch):
    torch.set_num_threads(2)  # conftest pins 1 thread; run() sets train.threads=2 and restores it afterwards
    a, b = run(two_threads(ARCHS[arch])), run(two_threads(ARCHS[arch]))
    assert a.summary["threads"] == 2 and a.summary["threads_reason"] == "train.threads=2"
    assert strip_time(a.rows) == strip_time(b.rows)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    # and the same bits as one thread, so a run resumed on a different thread count (train.threads None
    # chooses by the machine's load) continues the same trajectory
    c = run(ARCHS[arch].replace(**{"train.threads": 1}))
    assert strip_time(c.rows) == strip_time(a.rows)


@pytest.mark.integration
def test_transformer_resume_at_two_threads_is_bit_identical(tmp_path):
    torch.set_num_threads(2)
    cfg = ARCHS["transformer"].replace(**{"train.steps": 20, "train.checkpoint_points": 3})
    ref = run(two_threads(cfg, tmp_path / "ref"))

    class Crash(Exception):
        pass

    def crash(step, row):
        if step == 13:  # between checkpoints: the replay from the last resume state must match too
            raise Crash

    with pytest.raises(Crash):
        run(two_threads(cfg, tmp_path / "b"), on_step=crash)
    resumed = resume(tmp_path / "b")
    assert strip_time(resumed.rows) == strip_time(ref.rows)
    for p, q in zip(ref.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)


def sdpa_reference(model, pairs: torch.Tensor) -> torch.Tensor:
    """The transformer's logits computed the way it was before: every position in every layer, with PyTorch's
    fused scaled_dot_product_attention, from the model's own weights."""
    x = model.W_E[model.tokens(pairs)] + model.W_pos
    for blk in model.blocks:
        a = blk.attn
        h = blk.ln1(x)
        q, k, v = (torch.einsum("btd,hde->bhte", h, W) + b[None, :, None] for W, b in ((a.W_Q, a.b_Q), (a.W_K, a.b_K), (a.W_V, a.b_V)))
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, dh)
        x = x + torch.einsum("bhte,hed->btd", z, a.W_O) + a.b_O
        x = x + blk.mlp.act(blk.ln2(x) @ blk.mlp.W_in + blk.mlp.b_in) @ blk.mlp.W_out + blk.mlp.b_out
    return model.ln_final(x)[:, -1] @ model.W_U + model.b_U


@pytest.mark.parametrize("n_layers,layernorm,op_token,batch", [(1, False, False, 50), (2, True, True, 50), (2, True, True, 5), (3, True, True, 40)])
def test_explicit_attention_equals_the_fused_kernel_in_float64(n_layers, layernorm, op_token, batch):
    # batch 50 > 13 elements: the split path (positions before y once per x); batch 5: the plain path.
    torch.manual_seed(0)
    cfg = ModelConfig(n_layers=n_layers, d_model=32, n_heads=4, d_mlp=64, layernorm=layernorm, op_token=op_token)
    model = build_model(cfg, 13, 13).double()
    for p in model.parameters():  # non-zero biases and LayerNorm gains, so every weight's gradient is checked
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randint(0, 13, (batch, 2))
    ours, ref = model(x), sdpa_reference(model, x)
    assert torch.allclose(ours, ref, atol=1e-12, rtol=0)
    params = list(model.parameters())
    g_ours = torch.autograd.grad(ours.sin().sum(), params)
    g_ref = torch.autograd.grad(sdpa_reference(model, x).sin().sum(), params)
    for (name, _), a, b in zip(model.named_parameters(), g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-12, rtol=0), name


def test_explicit_attention_is_vmappable():
    # Stacked members (train/members.py) call the model under torch.func.vmap; the fused kernel had no batching rule.
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32), 7, 7).double()
    params = {k: torch.stack([v.detach(), v.detach() * 1.1]) for k, v in model.named_parameters()}
    x = torch.randint(0, 7, (2, 20, 2))
    out = torch.func.vmap(lambda p, xb: torch.func.functional_call(model, p, (xb,)))(params, x)
    for i in range(2):
        one = torch.func.functional_call(model, {k: v[i] for k, v in params.items()}, (x[i],))
        assert torch.allclose(out[i], one, atol=1e-12, rtol=0)
    assert math.isfinite(out.sum().item())


def test_thread_choice_fits_model_and_machine():
    assert runtime.choose_threads(19_000, 64, cores=2, busy=0.0)[0] == 1  # a tiny step gains nothing from 2 threads
    assert runtime.choose_threads(422_000, 512, cores=2, busy=0.1)[0] == 2  # the Power setup
    threads, why = runtime.choose_threads(422_000, 512, cores=2, busy=1.2)  # the other core is busy: never oversubscribe
    assert threads == 1 and "busy" in why
    threads, why = runtime.choose_threads(422_000, 512, cores=1, busy=0.0)  # e.g. taskset -c 0
    assert threads == 1 and "available" in why
    assert runtime.choose_threads(10**9, 512, cores=4, busy=0.0)[0] == 4
    assert 1 <= runtime.available_cores() <= (torch.multiprocessing.cpu_count() or 1)


def test_cpu_runtime_is_scoped_to_the_run():
    was_on, before = runtime.flush_denormal_on(), torch.get_num_threads()
    torch.set_flush_denormal(False)
    try:
        with runtime.cpu_runtime(threads=2) as rt:
            assert runtime.flush_denormal_on() and torch.get_num_threads() == 2
            assert runtime.current() is rt and runtime.threads_reason() == "train.threads=2"
        assert not runtime.flush_denormal_on() and torch.get_num_threads() == before
        with pytest.raises(ValueError):
            with runtime.cpu_runtime(threads=None) as rt:
                rt.fit(torch.nn.Linear(3, 3), 100)  # 12 parameters: one thread, and the reason says why
                assert torch.get_num_threads() == 1 and "small step" in rt.reason
                raise ValueError
        assert not runtime.flush_denormal_on() and torch.get_num_threads() == before and runtime.current() is None
    finally:
        torch.set_flush_denormal(was_on)
