"""Tuned hyperparameters per algorithm and env, in rl-baselines3-zoo's layout: ``<algo>.yml`` keyed by env id.

Each entry holds the run's shape (``n_timesteps``, ``n_envs``, ``policy``, ``normalize``) and the algorithm's
keyword arguments. ``lin_<x>`` strings are linear schedules from ``x`` to 0, as in rl-zoo. Used by the learning
benchmarks and the command line::

    from gym_planning.hyperparams import load_hyperparams, make_agent

    settings = load_hyperparams("ppo", "CartPole-v1")      # Hyperparams(n_timesteps=100000, ...)
    model = make_agent("muzero", "CartPole-v1", seed=0)     # the tuned MuZero on 4 CartPole envs
    model.learn(settings.n_timesteps)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Callable

import yaml
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from gym_planning.agents.muzero import MuZero

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"muzero": MuZero, "ppo": PPO, "dqn": DQN, "a2c": A2C}
"""Algorithm names (as in the YAML file names and on the command line) and their classes."""

RUN_KEYS = ("n_timesteps", "n_envs", "policy", "normalize")
"""Keys that shape the run rather than the algorithm: everything else is an algorithm keyword argument."""


@dataclass(frozen=True)
class Hyperparams:
    """One YAML entry, resolved: the run's shape and the algorithm's keyword arguments.

    :param algo: algorithm name, a key of :data:`ALGORITHMS`.
    :param env_id: the Gymnasium env id.
    :param n_timesteps: env steps of a full training run.
    :param n_envs: parallel envs in the training ``VecEnv``.
    :param policy: the policy name (``"MlpPolicy"``, ``"CnnPolicy"``).
    :param normalize: wrap the training envs in ``VecNormalize`` (observations and rewards).
    :param kwargs: keyword arguments of the algorithm's constructor, schedules already built.
    """

    algo: str
    env_id: str
    n_timesteps: int
    n_envs: int = 1
    policy: str = "MlpPolicy"
    normalize: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


def linear_schedule(initial: float) -> Callable[[float], float]:
    """rl-zoo's ``lin_<initial>``: ``progress_remaining`` (1 at the start, 0 at the end) times ``initial``."""
    return lambda progress_remaining: progress_remaining * initial


@cache
def _table(algo: str) -> dict[str, dict[str, Any]]:
    text = resources.files(__name__).joinpath(f"{algo}.yml").read_text()
    return yaml.safe_load(text) or {}


def _check_algo(algo: str) -> None:
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {sorted(ALGORITHMS)}")


def env_ids(algo: str) -> list[str]:
    """The env ids with tuned settings for ``algo``."""
    _check_algo(algo)
    return sorted(_table(algo))


def _constructor_keywords(algo: str) -> set[str]:
    parameters = inspect.signature(ALGORITHMS[algo].__init__).parameters
    return {name for name in parameters if name not in ("self", "policy", "env", "_init_setup_model")}


def _resolve(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return linear_schedule(float(value[len("lin_"):]))
        except ValueError:
            raise ValueError(f"schedule {value!r} is not lin_<number>") from None
    return value


def check_keywords(algo: str, keys: Any, where: str) -> None:
    """Raise one clear error if any of ``keys`` is neither a run key nor a keyword of ``algo``'s constructor."""
    _check_algo(algo)
    unknown = sorted(set(keys) - _constructor_keywords(algo) - set(RUN_KEYS))
    if unknown:
        valid = sorted(_constructor_keywords(algo) | set(RUN_KEYS))
        raise ValueError(f"{where}: {ALGORITHMS[algo].__name__} takes no setting {unknown}; valid settings: {valid}")


def load_hyperparams(algo: str, env_id: str, overrides: dict[str, Any] | None = None) -> Hyperparams:
    """The tuned settings of ``algo`` on ``env_id``, with ``overrides`` (run keys or algorithm keywords) on top.

    :raises ValueError: an unknown algorithm, an env id without an entry (naming those that have one), or a
        key the algorithm does not take (naming the valid keys).
    """
    _check_algo(algo)
    table = _table(algo)
    if env_id not in table:
        raise ValueError(
            f"no tuned {algo} settings for env {env_id!r} in gym_planning/hyperparams/{algo}.yml; "
            f"envs with settings: {sorted(table)}"
        )
    entry = {**table[env_id], **(overrides or {})}
    check_keywords(algo, entry, f"gym_planning/hyperparams/{algo}.yml[{env_id!r}] with overrides {overrides or {}}")
    run = {key: entry.pop(key) for key in RUN_KEYS if key in entry}
    if "n_timesteps" not in run:
        raise ValueError(f"gym_planning/hyperparams/{algo}.yml[{env_id!r}] lacks n_timesteps")
    kwargs = {key: _resolve(value) for key, value in entry.items()}
    return Hyperparams(algo=algo, env_id=env_id, n_timesteps=int(run.pop("n_timesteps")), kwargs=kwargs, **run)


def make_training_env(settings: Hyperparams, seed: int | None = None) -> VecEnv:
    """The training ``VecEnv``: ``n_envs`` copies of the env, seeded, under ``VecNormalize`` if asked."""
    env = make_vec_env(settings.env_id, n_envs=settings.n_envs, seed=seed)
    return VecNormalize(env) if settings.normalize else env


def make_agent(
    algo: str,
    env_id: str,
    *,
    seed: int | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    **algorithm_kwargs: Any,
) -> BaseAlgorithm:
    """A new ``algo`` agent with its tuned settings for ``env_id`` on a fresh training ``VecEnv``.

    :param overrides: run keys or algorithm keywords replacing the YAML entry's (checked like the file).
    :param algorithm_kwargs: extra constructor arguments that are not hyperparameters (``verbose``,
        ``tensorboard_log``).
    """
    settings = load_hyperparams(algo, env_id, overrides)
    return ALGORITHMS[algo](
        settings.policy,
        make_training_env(settings, seed),
        seed=seed,
        device=device,
        **{**settings.kwargs, **algorithm_kwargs},
    )


__all__ = [
    "ALGORITHMS",
    "RUN_KEYS",
    "Hyperparams",
    "check_keywords",
    "env_ids",
    "linear_schedule",
    "load_hyperparams",
    "make_agent",
    "make_training_env",
]
