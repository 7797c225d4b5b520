"""Speed of the Sokoban and Minipacman environments, beside gym-sokoban 0.0.6 when it is installed.

Run ``python -m benchmarks.envs [--quick] [--json PATH]``. Prints one table:

* ``env.step()/s``: random actions (pre-sampled) through ``env.step`` of one env, timing only the
  ``step`` calls (resets, i.e. level generation, are timed separately).
* ``vector steps/s``: game steps per second of the batched env (``num_envs`` games per call, random
  actions, autoresets included).
* level generation: wall time of ``reset()`` (mean / median / p90, ms).

Compilation is excluded (every path runs once before timing). gym-sokoban uses the old ``gym`` API and
``pkg_resources``; when the latter is missing (setuptools >= 81), a stand-in resolving package files is
installed first. Its ``step`` renders the 160x160 RGB observation, as its default does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import types
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from gym_planning.envs.minipacman import MinipacmanEnv, MinipacmanVectorEnv
from gym_planning.envs.sokoban import SokobanEnv, SokobanVectorEnv


@dataclass
class Row:
    """One line of the table; None where a figure does not apply, ``note`` says why or what was run."""

    env: str
    implementation: str
    step_per_s: float | None = None
    vector_step_per_s: float | None = None
    gen_mean_ms: float | None = None
    gen_median_ms: float | None = None
    gen_p90_ms: float | None = None
    note: str = ""


def time_steps(env, num_steps: int, num_actions: int, seed: int = 0) -> float:
    """``env.step()`` calls per second with pre-sampled random actions; reset time is not counted."""
    actions = np.random.default_rng(seed).integers(0, num_actions, size=num_steps).tolist()
    env.reset(seed=seed)
    stepping = 0.0
    for action in actions:
        start = time.perf_counter()
        result = env.step(action)
        stepping += time.perf_counter() - start
        if result[2] or result[3]:
            env.reset()
    return num_steps / stepping


def time_vector(vec, num_steps: int, seed: int = 0) -> float:
    """Game steps per second of a vector env (``num_steps`` in all, autoresets included)."""
    calls = max(1, num_steps // vec.num_envs)
    actions = np.random.default_rng(seed).integers(0, vec.single_action_space.n, size=(calls, vec.num_envs))
    vec.reset(seed=seed)
    start = time.perf_counter()
    for batch in actions:
        vec.step(batch)
    return calls * vec.num_envs / (time.perf_counter() - start)


def time_resets(reset, num: int) -> np.ndarray:
    """Wall time of ``num`` calls of ``reset(i)`` in milliseconds."""
    times = []
    for i in range(num):
        start = time.perf_counter()
        reset(i)
        times.append(time.perf_counter() - start)
    return np.array(times) * 1e3


def _gen_fields(ms: np.ndarray) -> dict:
    return dict(gen_mean_ms=float(ms.mean()), gen_median_ms=float(np.median(ms)), gen_p90_ms=float(np.percentile(ms, 90)))


def ours(quick: bool, num_envs: int) -> list[Row]:
    """Our two environments: single env, vector env, and Sokoban level generation."""
    steps, vec_steps, levels = (20_000, 200_000, 30) if quick else (200_000, 2_000_000, 300)
    sokoban = SokobanEnv()
    time_steps(sokoban, 200, 9)  # compile
    gen = time_resets(lambda i: sokoban.reset(seed=10_000 + i), levels)
    rows = [Row("Sokoban 10x10, 4 boxes", "gym_planning", time_steps(sokoban, steps, 9), None, note=f"{levels} levels",
                **_gen_fields(gen))]  # fmt: skip
    cached = SokobanVectorEnv(num_envs, num_levels=100)
    cached.levels.bank_ready[:] = False
    for i in range(100):  # fill the level bank so the timing shows stepping, not generation
        cached.levels.load(i, cached._rooms[0], cached._boxes[0], cached._scalars[0])
    rows.append(Row("Sokoban 10x10, 4 boxes", "gym_planning vector", None, time_vector(cached, vec_steps),
                    note=f"{num_envs} envs, 100 cached levels"))  # fmt: skip
    fresh = SokobanVectorEnv(16)  # 16 games x 600+ calls: every game plays several 120-step episodes
    rows.append(Row("Sokoban 10x10, 4 boxes", "gym_planning vector", None, time_vector(fresh, 16 * (600 if quick else 3000)),
                    note="16 envs, a new level generated every episode"))  # fmt: skip
    pacman = MinipacmanEnv()
    time_steps(pacman, 200, 5)
    maze_resets = time_resets(lambda i: pacman.reset(seed=i), levels)
    rows.append(Row("Minipacman 15x19 (regular)", "gym_planning", time_steps(pacman, steps, 5), None,
                    note="generation = reset with a new maze", **_gen_fields(maze_resets)))  # fmt: skip
    rows.append(Row("Minipacman 15x19 (regular)", "gym_planning vector", None,
                    time_vector(MinipacmanVectorEnv(num_envs), vec_steps), note=f"{num_envs} envs"))  # fmt: skip
    return rows


def _import_gym_sokoban():
    """gym-sokoban's SokobanEnv class, or a string saying why it cannot run."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("pkg_resources")
        stand_in.resource_filename = lambda package, resource: os.path.join(
            os.path.dirname(importlib.import_module(package).__file__), resource
        )
        sys.modules["pkg_resources"] = stand_in
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from gym_sokoban.envs.sokoban_env import SokobanEnv as GymSokobanEnv
    except Exception as error:  # any import failure means "cannot run here"; the table says which
        return f"not runnable: {type(error).__name__}: {error}"
    return GymSokobanEnv


def gym_sokoban(quick: bool) -> Row:
    """gym-sokoban 0.0.6: ``reset()`` (level generation) and ``step()`` with its RGB observation."""
    env_class = _import_gym_sokoban()
    if isinstance(env_class, str):
        return Row("Sokoban 10x10, 4 boxes", "gym-sokoban 0.0.6", note=env_class)
    levels, steps = (3, 300) if quick else (20, 3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = env_class(reset=False)
        gen = time_resets(lambda i: env.reset(), levels)
        actions = np.random.default_rng(0).integers(0, 9, size=steps).tolist()
        stepping, env_steps = 0.0, 0
        for action in actions:
            start = time.perf_counter()
            done = env.step(action)[2]
            stepping += time.perf_counter() - start
            env_steps += 1
            if done:
                env.reset()
    return Row("Sokoban 10x10, 4 boxes", "gym-sokoban 0.0.6", env_steps / stepping, None,
               note=f"{levels} levels; ignores reset seeds", **_gen_fields(gen))  # fmt: skip


def _fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def print_table(rows: list[Row]) -> None:
    """Prints the rows as a Markdown table."""
    print("| env | implementation | env.step()/s | vector steps/s | level gen mean / median / p90 (ms) | note |")
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        gen = "-" if r.gen_mean_ms is None else f"{r.gen_mean_ms:.2f} / {r.gen_median_ms:.2f} / {r.gen_p90_ms:.2f}"
        print(f"| {r.env} | {r.implementation} | {_fmt(r.step_per_s)} | {_fmt(r.vector_step_per_s)} | {gen} | {r.note} |")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and levels (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--num-envs", type=int, default=256, help="games per vector env")
    args = parser.parse_args(argv)
    rows = ours(args.quick, args.num_envs) + [gym_sokoban(args.quick)]
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=2)


if __name__ == "__main__":
    main()
