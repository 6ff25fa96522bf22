"""The sweep spec: which config fields vary, over which values, with how many seeds.

A grid axis is a dotted config field and a list of values, written on the command line as
`task.train_frac=0.2:0.8:7` (7 values evenly spaced from 0.2 to 0.8, both ends included),
`optim.lr=1e-4:1e-2:5:log` (5 values evenly spaced in log), or `optim.weight_decay=0,0.1,1` (a list;
`true`/`false`/`none` and strings such as `x+y` are understood). A random axis is sampled instead:
`optim.lr=1e-4:1e-2:log` (log-uniform), `task.train_frac=0.2:0.8` (uniform) or `model.act=relu,gelu`
(a choice), `samples` times with a fixed `random_seed`, and the drawn values are saved, so the sweep
is the same sweep when it is resumed. Seeds multiply every point; each seed is written into
`seed_fields` (by default both the initialization seed and the data-split seed).

Every point is built into a `RunConfig` before anything runs, so a bad value fails the whole sweep up
front with the field, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from groklab.config import RunConfig, get_dotted
from groklab.errors import ConfigError

SWEEP_FORMAT_VERSION = 1
DEFAULT_SEED_FIELDS = ("train.seed", "task.seed")


# --- parsing values ----------------------------------------------------------------------------------
def _scalar(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _tidy(x: float) -> float:
    # 0.30000000000000004 -> 0.3: values become run names and table columns, so keep them readable.
    return float(f"{x:.12g}")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def parse_values(text: str, name: str = "value") -> list[Any]:
    """The values of a grid axis: `a:b:n` (linear, ends included), `a:b:n:log`, a JSON list, or `v1,v2,...`."""
    t = text.strip()
    if t.startswith("["):
        try:
            values = json.loads(t)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name}={text!r} is not a JSON list: {e}") from None
        if not isinstance(values, list):
            raise ConfigError(f"{name}={text!r} must be a list")
        return values
    parts = t.split(":")
    if len(parts) in (3, 4) and all(_is_number(p) for p in parts[:3]):
        log = len(parts) == 4
        if log and parts[3].strip().lower() not in ("log", "lin"):
            raise ConfigError(f"{name}={text!r}: the fourth part of a range must be 'log' or 'lin'")
        log = log and parts[3].strip().lower() == "log"
        start, stop = _number(parts[0], name), _number(parts[1], name)
        n = _number(parts[2], name)
        if not n.is_integer() or n < 1:
            raise ConfigError(f"{name}={text!r}: the number of values ({parts[2]}) must be a positive integer")
        return _range(start, stop, int(n), log, name, text)
    return [_scalar(v) for v in t.split(",") if v.strip() != ""] or [_scalar(t)]


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _range(start: float, stop: float, n: int, log: bool, name: str, text: str) -> list[float]:
    if log and (start <= 0 or stop <= 0):
        raise ConfigError(f"{name}={text!r}: a log range needs positive ends")
    if n == 1:
        return [_tidy(start)]
    if log:
        a, b = math.log(start), math.log(stop)
        return [_tidy(math.exp(a + (b - a) * i / (n - 1))) for i in range(n)]
    return [_tidy(start + (stop - start) * i / (n - 1)) for i in range(n)]


def parse_assignment(text: str) -> tuple[str, str]:
    """`field=values` -> (field, values)."""
    if "=" not in text:
        raise ConfigError(f"{text!r} must look like FIELD=VALUES, e.g. task.train_frac=0.2:0.8:7 or optim.weight_decay=0,0.1,1")
    key, values = text.split("=", 1)
    return key.strip(), values


@dataclass
class RandomAxis:
    """A field sampled `samples` times: uniform or log-uniform in [low, high], or a choice among values."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None

    @classmethod
    def parse(cls, text: str, name: str) -> "RandomAxis":
        t = text.strip()
        parts = t.split(":")
        if len(parts) in (2, 3) and _is_number(parts[0]) and _is_number(parts[1]):
            log = len(parts) == 3 and parts[2].strip().lower() == "log"
            if len(parts) == 3 and not log and parts[2].strip().lower() != "lin":
                raise ConfigError(f"{name}={text!r}: the third part of a random range must be 'log' or 'lin'")
            low, high = float(parts[0]), float(parts[1])
            if log and (low <= 0 or high <= 0):
                raise ConfigError(f"{name}={text!r}: a log range needs positive ends")
            return cls(low=min(low, high), high=max(low, high), log=log)
        return cls(choices=parse_values(t, name))

    def draw(self, rng) -> Any:
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:
            return _tidy(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return _tidy(rng.uniform(self.low, self.high))


# --- the spec ----------------------------------------------------------------------------------------
@dataclass
class SweepSpec:
    """A sweep: a base config, grid axes (crossed), random axes (sampled), and seeds (crossed with all)."""

    base: RunConfig = field(default_factory=RunConfig)
    grid: dict[str, list] = field(default_factory=dict)
    random: dict[str, RandomAxis] = field(default_factory=dict)
    samples: int = 0
    random_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    seed_fields: tuple[str, ...] = DEFAULT_SEED_FIELDS

    @classmethod
    def build(
        cls,
        base: RunConfig | None = None,
        grid: dict[str, Any] | list[str] | None = None,
        seeds: int | list[int] = 1,
        *,
        random: dict[str, Any] | list[str] | None = None,
        samples: int = 0,
        random_seed: int = 0,
        seed_fields: tuple[str, ...] | list[str] = DEFAULT_SEED_FIELDS,
    ) -> "SweepSpec":
        """From Python values or CLI strings: grid `{"task.train_frac": "0.2:0.8:7"}` or
        `{"task.train_frac": [0.3, 0.5]}` or `["task.train_frac=0.2:0.8:7"]`; seeds an int (0..n-1) or a list."""
        base = base if base is not None else RunConfig()
        g: dict[str, list] = {}
        for key, values in _items(grid):
            if key in g:
                raise ConfigError(f"the grid names {key!r} twice")
            g[key] = parse_values(values, key) if isinstance(values, str) else list(values) if isinstance(values, (list, tuple)) else [values]
            if not g[key]:
                raise ConfigError(f"grid axis {key!r} has no values")
        r: dict[str, RandomAxis] = {}
        for key, values in _items(random):
            if key in g or key in r:
                raise ConfigError(f"{key!r} is swept twice (grid and random axes must name different fields)")
            r[key] = values if isinstance(values, RandomAxis) else RandomAxis.parse(values, key) if isinstance(values, str) else RandomAxis(choices=list(values))
        if isinstance(seeds, bool) or (isinstance(seeds, int) and seeds < 1):
            raise ConfigError(f"seeds={seeds!r} must be a positive number of seeds or a list of seeds")
        seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
        if len(set(seed_list)) != len(seed_list):
            raise ConfigError(f"seeds={seed_list} repeats a seed")
        if r and samples < 1:
            raise ConfigError("random axes need samples >= 1 (how many points to draw)")
        spec = cls(base=base, grid=g, random=r, samples=samples, random_seed=random_seed, seeds=seed_list, seed_fields=tuple(seed_fields))
        spec.points()  # validate now, before anything runs
        return spec

    # every point, as dotted overrides
    def overrides(self) -> list[dict[str, Any]]:
        for key in self.seed_fields:
            if key in self.grid or key in self.random:
                raise ConfigError(f"{key!r} is both swept and a seed field; drop it from the grid or from seed_fields")
        grid_points = [dict(zip(self.grid, combo)) for combo in itertools.product(*self.grid.values())] or [{}]
        if self.random:
            import numpy as np

            rng = np.random.default_rng(self.random_seed)
            drawn = [{k: ax.draw(rng) for k, ax in self.random.items()} for _ in range(self.samples)]
            grid_points = [{**gp, **d} for gp in grid_points for d in drawn]
        out = []
        for gp in grid_points:
            for s in self.seeds:
                o = dict(gp)
                for key in self.seed_fields:
                    o[key] = get_dotted(self.base, key) + s if _is_int_field(self.base, key) else s
                out.append(o)
        return out

    def points(self) -> list[tuple[str, dict[str, Any], RunConfig]]:
        """(run id, overrides, config) of every point, validated; a duplicate point is an error."""
        base = single_threaded(self.base)
        pts, seen = [], {}
        for o in self.overrides():
            try:
                cfg = base.replace(**o, out=None)
            except ConfigError as e:
                shown = ", ".join(f"{k}={v!r}" for k, v in o.items())
                raise ConfigError(f"sweep point ({shown}) is not a valid config: {e}") from None
            rid = run_id(cfg)
            if rid in seen:
                raise ConfigError(f"sweep points {seen[rid]} and {o} are the same config; remove the duplicate value")
            seen[rid] = o
            pts.append((rid, o, cfg))
        return pts

    # sweep.json
    def to_dict(self) -> dict:
        return {
            "format_version": SWEEP_FORMAT_VERSION,
            "base": self.base.to_dict(),
            "grid": self.grid,
            "random": {k: asdict(v) for k, v in self.random.items()},
            "samples": self.samples,
            "random_seed": self.random_seed,
            "seeds": self.seeds,
            "seed_fields": list(self.seed_fields),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        if d.get("format_version", 1) > SWEEP_FORMAT_VERSION:
            raise ConfigError(f"sweep.json format_version={d['format_version']} is newer than this groklab; upgrade groklab")
        return cls(
            base=RunConfig.from_dict(d["base"]),
            grid={k: list(v) for k, v in d.get("grid", {}).items()},
            random={k: RandomAxis(**v) for k, v in d.get("random", {}).items()},
            samples=d.get("samples", 0),
            random_seed=d.get("random_seed", 0),
            seeds=list(d.get("seeds", [0])),
            seed_fields=tuple(d.get("seed_fields", DEFAULT_SEED_FIELDS)),
        )

    @property
    def swept_fields(self) -> list[str]:
        return [*self.grid, *self.random]


def _items(x: dict | list | None) -> list[tuple[str, Any]]:
    if x is None:
        return []
    if isinstance(x, dict):
        return list(x.items())
    return [parse_assignment(a) for a in x]


def _is_int_field(cfg: RunConfig, key: str) -> bool:
    v = get_dotted(cfg, key)
    return isinstance(v, int) and not isinstance(v, bool)


def single_threaded(cfg: RunConfig) -> RunConfig:
    """Each run of a sweep on one CPU thread unless the base config says otherwise: parallelism comes
    from running many runs at once, and threads fighting over cores would slow every run down."""
    return cfg if cfg.train.threads is not None else cfg.replace(**{"train.threads": 1})


# --- stable names ------------------------------------------------------------------------------------
def _diff(d: dict, default: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(default.get(k), dict):
            out.update(_diff(v, default[k], f"{prefix}{k}."))
        elif k not in default or default[k] != v or type(default[k]) is not type(v):
            out[prefix + k] = v
    return out


def identity(cfg: RunConfig) -> dict[str, Any]:
    """The fields that make a run this run: those that differ from the defaults, without `out`.

    Hashing only the differences keeps a name stable when groklab later gains a config field (with a
    default that keeps old behaviour). A run directory found under a name is still checked against
    the full config before it counts as done (see `groklab.sweep.layout.check_matches`).
    """
    d = cfg.to_dict()
    d.pop("format_version", None)
    d.pop("out", None)
    ref = RunConfig().to_dict()
    return dict(sorted(_diff(d, ref).items()))


def run_id(cfg: RunConfig) -> str:
    """A stable 12-hex-digit name for a config: equal configs get equal names, in any process."""
    text = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


SeedsArg = Union[int, list]
