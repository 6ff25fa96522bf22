"""The paper presets at full scale: wall time with early stopping, and against the same runs without it.

    taskset -c 0,1 python benchmarks/fullscale.py parity2022 liu2022 --out runs/fullscale
    taskset -c 0,1 python benchmarks/fullscale.py liu2022 --no-stop-too      # also train every run its whole budget
    taskset -c 0,1 python benchmarks/fullscale.py power-curve                # Power et al.'s data-fraction curve alone
    taskset -c 0,1 python benchmarks/fullscale.py power-curve --fractions 0.5 0.6   # part of it (its own directory)

For each preset it runs `reproduce(name, "full")` (reusing a finished preset directory), prints the wall time,
the checks, and the steps trained over the steps budgeted (summed over every run of the preset: the share of
the work early stopping left). With `--no-stop-too` it runs the preset again with `early_stop=False` into a
sibling directory and prints the measured ratio of the two wall times; without it the no-stop time is an
estimate: the measured time scaled by budgeted / trained steps (an upper bound on the saving, since
evaluation and analysis do not shrink with the steps).

`power-curve` is not a preset but the part of power2022's full scale that issue 12 times: the full-size
transformer on x/y mod 97 with weight decay 1, training fractions 0.2 … 0.8 × 3 seeds (21 runs), each stopping
5000 steps after its validation accuracy reaches 99% (power2022's `transformer()` config, as a sweep).
Since a curve can take longer than one sitting, it is resumable (run it again into the same `--out`; two
processes on one `--out` share the runs) and it also prints the time from each run's own wall time: their
sum, and what a pool of 2 one-thread workers takes for them in the sweep's order. `--fractions` trains a
subset of the fractions into `power-curve-<fractions>` (a curve measured in parts, e.g. across sittings);
`power-curve --parts` then prints the whole curve from the parts under `--out` and trains nothing:

    python benchmarks/fullscale.py power-curve --parts --out runs/fullscale

A directory trained under a config the preset no longer uses is refused (one line naming the changed fields);
`--rerun` sets it aside (a preset's changed runs under `DIR/replaced/<UTC time>/`, as `groklab reproduce
--rerun`; a power curve whose sweep differs whole, under `OUT/replaced/<UTC time>/`) and trains it again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def steps_trained(s: dict) -> int:
    """The steps a finished run trained, from its summary.json: where it stopped, or its whole budget."""
    return s["stopped_step"] if s.get("stopped_step") is not None else s["steps"]


def steps_of(preset_dir: Path) -> tuple[int, int]:
    """(steps trained, steps budgeted) over every run of a preset directory (not the runs set aside by `--rerun`
    under `replaced/`, nor a restarted run's old results)."""
    trained = budget = 0
    for summary in preset_dir.glob("**/summary.json"):
        if any(part == "replaced" or part.startswith("restarted-") for part in summary.relative_to(preset_dir).parts):
            continue
        s = json.loads(summary.read_text())
        if "steps" not in s or not isinstance(s.get("steps"), int):
            continue  # a sweep's or an analysis' summary, not a run's
        budget += s["steps"]
        trained += steps_trained(s)
    return trained, budget


def run_time(s: dict, at_crossing: bool = False) -> float:
    """A finished run's own training wall time (summary.json's wall_time_s). With `at_crossing`, the part of it
    up to the run's first validation 99% crossing (the time scaled by crossing step / steps trained; the whole
    time where it never crossed): what the run costs when it stops at the first crossing instead of once 99%
    has held for the patience (oscillating runs postpone that by thousands of steps, or to the budget)."""
    t = float(s["wall_time_s"])
    cross = s.get("val_acc_99_step")
    return t * min(1.0, cross / steps_trained(s)) if at_crossing and cross is not None else t


def run_times(sweep_dir: Path, at_crossing: bool = False) -> list[float]:
    """`run_time` of each finished run of a sweep, in the sweep's order."""
    from groklab.sweep.layout import SweepDir

    sd = SweepDir(sweep_dir)
    files = [sd.run_dir(rid) / "summary.json" for rid, *_ in sd.read_spec().points()]
    return [run_time(json.loads(f.read_text()), at_crossing) for f in files if f.is_file()]


def list_schedule(durations: list[float], workers: int) -> float:
    """Wall time of `durations` run in order by `workers` single-threaded workers, each taking the next run as
    it frees up (a sweep's process pool): what the runs take on that many cores when they were trained in
    pieces (resumed, or by several processes at once), where the wall clock of the pieces says nothing."""
    free = [0.0] * max(1, workers)
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


FULLSCALE_JSON = "fullscale.json"
"""Kept in each preset directory `measure` trains: the summed wall time of every call into it."""

FRACTIONS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def power_curve(out: Path, early_stop: bool, workers: int | None, fractions: list[float] = FRACTIONS,
                rerun: bool = False) -> tuple[float, dict]:
    """The Power data-fraction curve as a sweep into `out`: (wall time, {fraction: steps to 99% per seed})."""
    import time

    import pandas as pd

    from groklab.errors import ConfigError
    from groklab.sweep import sweep

    base = curve_config(early_stop)
    grid = {"task.train_frac": list(fractions)}
    t = time.perf_counter()
    try:
        res = sweep(base, grid, 3, out=out, resume=(out / "sweep.json").is_file(), workers=workers, progress=False)
    except ConfigError:
        if not rerun or not (out / "sweep.json").is_file():  # set aside only a sweep already there, never on a bad config
            raise
        aside = out.parent / "replaced" / time.strftime("%Y%m%d-%H%M%S", time.gmtime()) / out.name
        aside.parent.mkdir(parents=True, exist_ok=True)
        out.rename(aside)
        print(f"  {out} held a different sweep: moved to {aside}", flush=True)
        t = time.perf_counter()
        res = sweep(base, grid, 3, out=out, workers=workers, progress=False)
    df = res.table()
    steps = {f: [None if pd.isna(v) else int(v) for v in g["val_acc_99_step"]] for f, g in df.groupby("task.train_frac")}
    return time.perf_counter() - t, {f"val 99% at fraction {f:g}": {"passed": True, "detail": str(v)} for f, v in steps.items()}


def curve_config(early_stop: bool = True):
    """power2022's full-scale transformer, the curve's base config (without `train.stop_when` when not `early_stop`)."""
    from groklab.presets.recipes import power2022
    from groklab.presets.recipes.base import Context

    base = power2022.transformer(Context(Path("."), "full", print)).replace(out=None)
    return base if early_stop else base.replace(**{"train.stop_when": None})


def curve_from_parts(out: Path) -> list[str]:
    """The whole curve (7 fractions × 3 seeds) gathered from the parts trained into `out` in several sittings
    (`power-curve-<fractions>` directories, or a whole `power-curve`), training nothing. Each point of the
    current config is looked up by its run id in every part, so a run trained under another config, or set
    aside under replaced/, never counts. Returns the lines to print: the first 99% crossing of each point
    (censored where a run trained its budget without one), and the time the finished runs took from their own
    wall times: in all, on a pool of 2 one-thread workers in the curve's order, stopping at the first crossing
    instead, and without early stop (each run's time scaled by budget / steps trained: an estimate)."""
    from groklab.sweep.spec import SweepSpec

    spec = SweepSpec.build(curve_config(), {"task.train_frac": FRACTIONS}, 3)
    points = spec.points()
    parts = sorted(d for d in out.glob("power-curve*/runs") if d.is_dir())
    found: dict[float, list[str]] = {}
    summaries = []
    for rid, o, _ in points:
        hits = [d / rid / "summary.json" for d in parts if (d / rid / "summary.json").is_file()]
        shown = "not trained"
        if hits:
            s = json.loads(hits[0].read_text())
            summaries.append(s)
            cross = s.get("val_acc_99_step")
            shown = f"{cross}" if cross is not None else f"censored (not within {s['steps']:,})"
        elif any((d / rid).is_dir() for d in parts):
            shown = "unfinished"
        found.setdefault(o["task.train_frac"], []).append(shown)
    lines = [f"  val 99% at fraction {f:g} (seeds {', '.join(map(str, spec.seeds))}): {', '.join(v)}" for f, v in found.items()]
    times = [run_time(s) for s in summaries]
    first = [run_time(s, at_crossing=True) for s in summaries]
    nostop = [run_time(s) * s["steps"] / steps_trained(s) for s in summaries]
    trained = sum(steps_trained(s) for s in summaries)
    lines.append(f"  {len(summaries)} of {len(points)} runs finished (from {len(parts)} part(s) under {out}): "
                 f"{sum(times) / 3600:.2f} h of one-thread training, {list_schedule(times, 2) / 3600:.2f} h on 2 workers "
                 f"in the curve's order; stopping at each run's first crossing {sum(first) / 3600:.2f} h / "
                 f"{list_schedule(first, 2) / 3600:.2f} h; without early stop ≈ {sum(nostop) / 3600:.2f} h / "
                 f"{list_schedule(nostop, 2) / 3600:.2f} h (estimate); {trained:,} of {sum(s['steps'] for s in summaries):,} "
                 f"budgeted steps trained")
    return lines


def measure(name: str, out: Path, early_stop: bool, workers: int | None, fractions: list[float] = FRACTIONS,
            rerun: bool = False) -> tuple[float, dict]:
    if name == "power-curve":
        return power_curve(out, early_stop, workers, fractions, rerun)
    from groklab.presets.recipes import reproduce
    from groklab.store import atomic_write_text

    # A directory trained before reuses its finished runs: count the earlier calls' time too (training happened
    # there), so a call that only recomputes checks does not report minutes of training as seconds. preset.json
    # holds only the last call's time, so the sum is kept beside it (a directory from before FULLSCALE_JSON:
    # its preset.json's time). With `rerun`, meant for a changed config, the earlier time is left out: its runs
    # are set aside and trained again.
    side, meta = out / FULLSCALE_JSON, out / "preset.json"
    earlier = 0.0
    if meta.is_file() and not rerun:
        earlier = json.loads((side if side.is_file() else meta).read_text()).get("wall_time_s", 0.0)
    d = reproduce(name, "full", out, workers=workers, report=False, log=None, early_stop=early_stop, rerun=rerun)
    total = earlier + json.loads((d / "preset.json").read_text())["wall_time_s"]
    atomic_write_text(side, json.dumps({"wall_time_s": total}) + "\n")
    return total, json.loads((d / "checks.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presets", nargs="+")
    ap.add_argument("--out", default="runs/fullscale")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-stop-too", action="store_true", help="also run each preset without early stopping and compare")
    ap.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS, help="power-curve: the training fractions to train")
    ap.add_argument("--rerun", action="store_true", help="set aside runs trained under an older config and train them again")
    ap.add_argument("--parts", action="store_true",
                    help="power-curve: print the whole curve from the parts already trained into --out (trains nothing)")
    args = ap.parse_args()
    fractions = sorted(args.fractions)
    if args.parts:
        if args.presets != ["power-curve"]:
            ap.error(f"--parts prints the power curve only: presets={args.presets} is not allowed with it; give power-curve alone")
        print("\n".join(curve_from_parts(Path(args.out))))
        return
    for name in args.presets:
        curve = name == "power-curve"
        label = name if not curve or fractions == FRACTIONS else "power-curve-" + "-".join(f"{f:g}" for f in fractions)
        d = Path(args.out) / label
        wall, checks = measure(name, d, True, args.workers, fractions, args.rerun)
        trained, budget = steps_of(d)
        passed = sum(c["passed"] for c in checks.values())
        if curve:
            print("\n".join(f"  {k}: {c['detail']}" for k, c in checks.items()))
            times, first = run_times(d), run_times(d, at_crossing=True)
            print(f"  {len(times)} runs, {sum(times) / 3600:.2f} h of one-thread training in all; in sweep order on 2 workers "
                  f"{list_schedule(times, 2) / 3600:.2f} h (from each run's own wall time); stopping at each run's first "
                  f"crossing instead: {sum(first) / 3600:.2f} h in all, {list_schedule(first, 2) / 3600:.2f} h on 2 workers (estimate)")
        shown = "" if curve else f"checks {passed}/{len(checks)}, "
        line = (f"{label:14s} full: {wall / 60:7.1f} min, {shown}"
                f"steps trained {trained:,} of {budget:,} ({trained / max(budget, 1):.0%})")
        if args.no_stop_too:
            wall_ns, _ = measure(name, Path(args.out) / f"{label}-no-stop", False, args.workers, fractions, args.rerun)
            line += f"; without early stop {wall_ns / 60:.1f} min: {wall_ns / wall:.2f}x"
        elif trained < budget:
            line += f"; without early stop ≈ {wall * budget / trained / 60:.1f} min (estimate, ≤ {budget / trained:.2f}x)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
