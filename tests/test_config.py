"""Config validation and the config.json round trip."""

import ast
import json

import pytest

from groklab import ConfigError, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, presets


def test_round_trip_is_exact():
    cfg = RunConfig(
        task=TaskConfig(op="x^3+xy", p=31, train_frac=0.37, corrupt_frac=0.1, seed=4),
        model=ModelConfig(arch="mlp", width=33, act="gelu", init_scale=2.5),
        optim=OptimConfig(name="sgd", lr=0.1, momentum=0.9),
        train=TrainConfig(steps=123, batch_size=None, dtype="float64", eval_every=7),
        out="x/y",
    )
    text = cfg.to_json()
    assert json.loads(text)["format_version"] == 1
    assert RunConfig.from_json(text) == cfg
    for preset in (presets.demo(), presets.power2022(), presets.nanda2023(), presets.doshi2023()):
        assert RunConfig.from_json(preset.to_json()) == preset


def test_from_dict_names_unknown_and_mistyped_fields():
    d = RunConfig().to_dict()
    d["task"]["modulus"] = 7
    with pytest.raises(ConfigError, match="task.modulus"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["train"]["steps"] = "many"
    with pytest.raises(ConfigError, match="train.steps"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["optim"]["name"] = "lion"
    with pytest.raises(ConfigError, match="optim.name='lion'.*adamw"):
        RunConfig.from_dict(d)


def test_replace_by_dotted_name_validates():
    cfg = RunConfig().replace(**{"task.p": 113, "train.steps": 10})
    assert cfg.task.p == 113 and cfg.train.steps == 10
    with pytest.raises(ConfigError, match="task.train_frac"):
        cfg.replace(**{"task.train_frac": 1.0})
    with pytest.raises(ConfigError, match="task.nope"):
        cfg.replace(**{"task.nope": 1})


def test_batch_larger_than_training_set():
    # 0.1 of 97·96 = 931 training equations
    with pytest.raises(ConfigError, match=r"train.batch_size=1000 .*\(931 equations"):
        RunConfig(task=TaskConfig(op="x/y", train_frac=0.1), train=TrainConfig(batch_size=1000))
    RunConfig(task=TaskConfig(op="x/y", train_frac=0.1), train=TrainConfig(batch_size=931))
    RunConfig(task=TaskConfig(op="x/y", train_frac=0.1), train=TrainConfig(batch_size=None))


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: ModelConfig(d_model=130, n_heads=4), "model.d_model"),
        (lambda: ModelConfig(arch="rnn"), "model.arch"),
        (lambda: ModelConfig(init_scale=0), "model.init_scale"),
        (lambda: ModelConfig(dropout=1.0), "model.dropout"),
        (lambda: OptimConfig(lr=0), "optim.lr"),
        (lambda: OptimConfig(weight_decay=-1), "optim.weight_decay"),
        (lambda: TrainConfig(steps=0), "train.steps"),
        (lambda: TrainConfig(dtype="float16"), "train.dtype"),
        (lambda: TrainConfig(device="tpu"), "train.device"),
        (lambda: TrainConfig(batch_size=0), "train.batch_size"),
        (lambda: TaskConfig(group="permutation", op="x*y", n=9), "task.n"),
    ],
)
def test_bad_values_name_their_field(make, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        make()


def test_batch_size_auto_is_power_et_al_rule():
    """`auto` (the default) is min(512, ⌈n_train/2⌉), resolved where n_train is known."""
    from groklab.config import resolved_batch_size

    assert TrainConfig().batch_size == "auto"
    assert [resolved_batch_size("auto", n) for n in (1, 2, 3, 480, 1023, 1024, 1025, 10_000)] == [1, 1, 2, 240, 512, 512, 512, 512]
    assert resolved_batch_size(64, 10_000) == 64 and resolved_batch_size(None, 10_000) is None
    # Any small table works with the default: p = 31 at half the data has 480 training equations.
    cfg = RunConfig(task=TaskConfig(p=31, train_frac=0.5))
    assert cfg.task.n_train == 480 and cfg.train.resolved_batch_size(cfg.task.n_train) == 240
    # config.json round trip keeps "auto"; an old config.json with 512 keeps meaning 512.
    assert RunConfig.from_json(cfg.to_json()).train.batch_size == "auto"
    d = RunConfig().to_dict()
    d["train"]["batch_size"] = 512
    assert RunConfig.from_dict(d).train.batch_size == 512
    d["train"]["batch_size"] = "big"
    with pytest.raises(ConfigError, match="train.batch_size='big'.*'auto'"):
        RunConfig.from_dict(d)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: OptimConfig(lr=float("inf")), "optim.lr=inf"),
        (lambda: OptimConfig(lr=float("nan")), "optim.lr=nan"),
        (lambda: OptimConfig(embed_lr=float("inf")), "optim.embed_lr=inf"),
        (lambda: ModelConfig(init_scale=float("inf")), "model.init_scale=inf"),
        (lambda: TaskConfig(train_frac=float("nan")), "task.train_frac=nan"),
        (lambda: TrainConfig(resume_every_s=float("inf")), "train.resume_every_s=inf"),
        (lambda: RunConfig().replace(**{"reg.weight_noise": float("nan")}), "reg.weight_noise=nan"),
    ],
)
def test_non_finite_floats_are_refused_everywhere(make, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + " is not allowed; it must be a finite number"):
        make()


def test_json_refuses_non_finite_values():
    d = RunConfig().to_dict()
    d["optim"]["weight_decay"] = float("inf")  # json.loads reads Infinity and NaN
    with pytest.raises(ConfigError, match="optim.weight_decay=inf"):
        RunConfig.from_json(json.dumps(d))


def test_one_value_for_a_list_field_is_a_list_of_one():
    """`--set optim.no_decay=embed`, a JSON "embed", a direct string: ["embed"], not five letters."""
    assert OptimConfig(no_decay="embed").no_decay == ["embed"]
    assert RunConfig().replace(**{"optim.no_decay": "embed"}).optim.no_decay == ["embed"]
    d = RunConfig().to_dict()
    d["optim"]["no_decay"] = "bias"
    assert RunConfig.from_dict(d).optim.no_decay == ["bias"]
    assert RunConfig().replace(**{"optim.no_decay": ["embed", "bias"]}).optim.no_decay == ["embed", "bias"]


def test_config_imports_no_torch():
    """The config and the task/model tables it checks against are pure Python (tasks/meta.py, catalog.py)."""
    import importlib
    import sys

    import groklab.catalog
    import groklab.config
    import groklab.tasks.meta

    for mod in (groklab.config, groklab.tasks.meta, groklab.catalog):
        tree = ast.parse(open(mod.__file__).read())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]  # run on import
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        heavy = [m for m in names if m.split(".")[0] in ("torch", "numpy")]
        groklab_heavy = [m for m in names if m.startswith("groklab.") and m not in ("groklab.errors", "groklab.tasks.meta", "groklab.tasks.registry")]
        assert not heavy and not groklab_heavy, (mod.__name__, heavy, groklab_heavy)
    assert importlib.import_module("groklab.tasks.ops").MODULAR_OPS is groklab.tasks.meta.MODULAR_OPS
    assert "groklab.config" in sys.modules
