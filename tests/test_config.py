"""Config validation and the config.json round trip."""

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
