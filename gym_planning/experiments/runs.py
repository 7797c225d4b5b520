"""Run folders: one training run each, laid out as rl-baselines3-zoo's logs plus a CSV of evaluations.

::

    runs/<algo>/<env>_seed<N>/
        config.yml          the resolved configuration (RunConfig)
        evaluations.csv     env_steps, wall_s (training time, evaluations excluded), mean_return, std_return, episodes
        checkpoints/        SB3 CheckpointCallback: rl_model_<steps>_steps.zip (+ replay_buffer_, vecnormalize_)
        tb/                 tensorboard logs
        eval.csv            test-time search results (``gym-planning eval``), one row per setting

A folder belongs to one configuration: continuing it with another one is refused (:class:`RunFolderError`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from gym_planning.experiments.config import RunConfig, settings_of
from gym_planning.hyperparams import ALGORITHMS

CHECKPOINT_PREFIX = "rl_model"
EVALUATION_COLUMNS = ("env_steps", "wall_s", "mean_return", "std_return", "episodes")


class RunFolderError(ValueError):
    """A run folder that cannot be used for the requested run (another configuration, nothing trained)."""


def default_run_dir(out: str | Path, config: RunConfig) -> Path:
    """``<out>/<algo>/<env>_seed<N>``, the env id made filename-safe (``gym_planning/Minipacman-v0`` ->
    ``gym_planning-Minipacman-v0``)."""
    return Path(out) / config.algo / f"{re.sub(r'[^A-Za-z0-9_.-]', '-', config.env_id)}_seed{config.seed}"


def read_config(run_dir: str | Path) -> RunConfig:
    """The configuration of a run folder."""
    path = Path(run_dir) / "config.yml"
    if not path.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder (no config.yml); train one with `gym-planning train`")
    return RunConfig.from_yaml(path.read_text())


def claim_run_dir(run_dir: Path, config: RunConfig) -> bool:
    """Create the run folder for ``config``, or check that an existing one holds the same configuration.

    :return: True when the folder already existed (the run continues).
    :raises RunFolderError: the folder holds another configuration.
    """
    path = run_dir / "config.yml"
    if path.is_file():
        existing = read_config(run_dir)
        if existing.identity() != config.identity():
            differences = _differences(existing.identity(), config.identity())
            raise RunFolderError(
                f"{run_dir} holds a run of another configuration ({differences}); it is not overwritten. "
                "Choose another folder (--name or --out), or delete that one to start over."
            )
        path.write_text(config.to_yaml())  # the run's length may have grown
        return True
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunFolderError(
            f"{run_dir} exists and is not a run folder; it is not overwritten. Choose another --name or --out."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_yaml())
    return False


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    keys = sorted(set(old) | set(new))
    parts = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            parts += [inner] if inner else []
        elif a != b:
            parts.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return "; ".join(parts)


def make_env(config: RunConfig, n_envs: int, seed: int, *, env_kwargs: dict[str, Any] | None = None) -> VecEnv:
    """``n_envs`` seeded copies of the run's env (``env_kwargs`` on top of the run's), without VecNormalize."""
    return make_vec_env(config.env_id, n_envs=n_envs, seed=seed, env_kwargs={**config.env_kwargs, **(env_kwargs or {})})


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(env steps, model path)`` of the run's checkpoints, oldest first."""
    found = []
    for path in (Path(run_dir) / "checkpoints").glob(f"{CHECKPOINT_PREFIX}_*_steps.zip"):
        match = re.fullmatch(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def checkpoint_file(run_dir: str | Path, kind: str, steps: int) -> Path:
    """The ``replay_buffer`` (``.pkl``) or ``vecnormalize`` (``.pkl``) file saved beside a checkpoint."""
    return Path(run_dir) / "checkpoints" / f"{CHECKPOINT_PREFIX}_{kind}_{steps}_steps.pkl"


def load_agent(run_dir: str | Path, env: VecEnv | None = None, *, device: str = "auto") -> tuple[BaseAlgorithm, int]:
    """The run's latest checkpoint (with its replay and normalisation statistics when ``env`` is given).

    :return: ``(agent, env steps of the checkpoint)``.
    :raises RunFolderError: the run has no checkpoint yet.
    """
    config = read_config(run_dir)
    found = checkpoints(run_dir)
    if not found:
        raise RunFolderError(f"{run_dir} has no checkpoint yet; train it first (`gym-planning train ...`)")
    steps, path = found[-1]
    if env is not None and settings_of(config).normalize:
        env = VecNormalize.load(str(checkpoint_file(run_dir, "vecnormalize", steps)), env)
    agent = ALGORITHMS[config.algo].load(path, env=env, device=device)
    replay = checkpoint_file(run_dir, "replay_buffer", steps)
    if env is not None and replay.is_file() and hasattr(agent, "load_replay_buffer"):
        agent.load_replay_buffer(str(replay))
    return agent, steps


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by these tools, numbers parsed."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str] | None = None) -> None:
    """Write ``rows`` (the columns of the first row unless given)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    with Path(path).open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
