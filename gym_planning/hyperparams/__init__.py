"""Tuned hyperparameters per algorithm and env, in rl-baselines3-zoo's layout: ``<algo>.yml`` keyed by env id.

Each entry holds the run's shape (``n_timesteps``, ``n_envs``, ``policy``, ``normalize``), how to build its env
(``gym_id``, ``env_kwargs``, ``env_wrapper``, ``eval_env_kwargs``) and the algorithm's keyword arguments.
``lin_<x>`` strings are linear schedules from ``x`` to 0, as in rl-zoo. Used by the learning benchmarks and the
command line::

    from gym_planning.hyperparams import load_hyperparams, make_agent

    settings = load_hyperparams("ppo", "CartPole-v1")      # Hyperparams(n_timesteps=100000, ...)
    model = make_agent("muzero", "CartPole-v1", seed=0)     # the tuned MuZero on 4 CartPole envs
    model.learn(settings.n_timesteps)
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Callable

import gymnasium as gym
import yaml
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from gym_planning.agents.muzero import MuZero

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"muzero": MuZero, "ppo": PPO, "dqn": DQN, "a2c": A2C, "sac": SAC}
"""Algorithm names (as in the YAML file names and on the command line) and their classes."""

RUN_KEYS = ("n_timesteps", "n_envs", "policy", "normalize", "gym_id", "env_kwargs", "env_wrapper", "eval_env_kwargs")
"""Keys that shape the run rather than the algorithm: everything else is an algorithm keyword argument."""

ENV_PACKAGES = {"gym_planning/": "gym_planning", "dm_control/": "shimmy", "ALE/": "ale_py"}
"""Env id namespaces and the package whose import registers them (imported before ``gym.make``)."""


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
    :param gym_id: the id given to ``gym.make`` when the entry is a variant named otherwise (``Sokoban7x7-v0`` is
        ``gym_planning/Sokoban-v0`` with ``env_kwargs``); None: ``env_id`` itself.
    :param env_kwargs: keyword arguments of ``gym.make`` (rl-zoo's ``env_kwargs``).
    :param env_wrapper: wrappers applied in order to each env (rl-zoo's ``env_wrapper``): dotted class or
        function paths, or ``{path: kwargs}`` for one that takes arguments.
    :param eval_env_kwargs: ``env_kwargs`` changed for evaluation, e.g. ``{split: test}``: held-out levels.
    """

    algo: str
    env_id: str
    n_timesteps: int
    n_envs: int = 1
    policy: str = "MlpPolicy"
    normalize: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    gym_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    env_wrapper: tuple[Any, ...] = ()
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def make_id(self) -> str:
        """The id ``gym.make`` builds: ``gym_id`` if given, else ``env_id``."""
        return self.gym_id or self.env_id


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
            return linear_schedule(float(value[len("lin_") :]))
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
        key the algorithm does not take (naming the valid keys), or an env_wrapper path that does not import.
    :raises TypeError: env_kwargs / eval_env_kwargs that are not mappings, env_wrapper items of the wrong shape.
    """
    where = f"gym_planning/hyperparams/{algo}.yml[{env_id!r}]"
    entry = {**tuned_entry(algo, env_id), **(overrides or {})}
    return resolve_entry(algo, env_id, entry, where, keys_where=f"{where} with overrides {overrides or {}}")


def tuned_entry(algo: str, env_id: str) -> dict[str, Any]:
    """A copy of ``algo``'s YAML entry for ``env_id`` as written (``lin_`` schedules still strings).

    :raises ValueError: an unknown algorithm, or an env id without an entry (naming those that have one).
    """
    _check_algo(algo)
    table = _table(algo)
    if env_id not in table:
        raise ValueError(
            f"no tuned {algo} settings for env {env_id!r} in gym_planning/hyperparams/{algo}.yml; "
            f"envs with settings: {sorted(table)}"
        )
    return dict(table[env_id])


def resolve_entry(algo: str, env_id: str, entry: dict[str, Any], where: str, keys_where: str | None = None) -> Hyperparams:
    """An entry in the YAML layout (from the tuned file, a ``--conf`` file or both) as :class:`Hyperparams`:
    keys checked against ``algo``, run keys split off, wrappers imported, schedules built.

    :param where: names the entry in error messages; ``keys_where`` replaces it for an unknown key.
    """
    check_keywords(algo, entry, keys_where or where)
    entry = dict(entry)
    run = {key: entry.pop(key) for key in RUN_KEYS if key in entry}
    if "n_timesteps" not in run:
        raise ValueError(f"{where} lacks n_timesteps")
    for key in ("env_kwargs", "eval_env_kwargs"):
        if not isinstance(run.get(key, {}), dict):
            raise TypeError(f"{where}: {key} must be a mapping of gym.make keyword arguments; got {run[key]!r}")
    if "env_wrapper" in run:
        run["env_wrapper"] = _wrapper_specs(run["env_wrapper"], where)
    kwargs = {key: _resolve(value) for key, value in entry.items()}
    return Hyperparams(algo=algo, env_id=env_id, n_timesteps=int(run.pop("n_timesteps")), kwargs=kwargs, **run)


def _import_path(path: str, where: str) -> Callable[..., gym.Env]:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(
            f"{where}: env_wrapper {path!r} is not an importable class or function; write its dotted path, "
            "e.g. gym_planning.wrappers.ActionRepeat"
        ) from None


def _wrapper_specs(value: Any, where: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """rl-zoo's ``env_wrapper``: a path, or a list of paths and ``{path: kwargs}``; as ``((path, kwargs), ...)``."""
    specs = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and len(item) == 1:
            ((path, kwargs),) = item.items()
            kwargs = kwargs or {}
        else:
            path, kwargs = item, {}
        if not isinstance(path, str) or not isinstance(kwargs, dict):
            raise TypeError(f"{where}: env_wrapper items are dotted paths or {{path: {{keyword: value}}}}; got {item!r}")
        _import_path(path, where)
        specs.append((path, kwargs))
    return tuple(specs)


def _wrap(env: gym.Env, specs: tuple[tuple[str, dict[str, Any]], ...]) -> gym.Env:
    for path, kwargs in specs:
        env = _import_path(path, "env_wrapper")(env, **kwargs)
    return env


def _register(env_id: str) -> None:
    for prefix, package in ENV_PACKAGES.items():
        if env_id.startswith(prefix):
            gym.register_envs(importlib.import_module(package))


def make_env(settings: Hyperparams, *, n_envs: int | None = None, seed: int | None = None, evaluation: bool = False) -> VecEnv:
    """A ``VecEnv`` of the entry's env: ``gym.make(make_id, **env_kwargs)`` under ``Monitor`` and ``env_wrapper``.

    :param n_envs: envs in the ``VecEnv`` (None: the entry's ``n_envs``).
    :param seed: seed of the first env (the others take ``seed + 1``, ... as in ``make_vec_env``).
    :param evaluation: apply ``eval_env_kwargs`` (held-out levels or mazes) on top of ``env_kwargs``.
    """
    _register(settings.make_id)
    env_kwargs = {**settings.env_kwargs, **(settings.eval_env_kwargs if evaluation else {})}
    wrapper = (lambda env: _wrap(env, settings.env_wrapper)) if settings.env_wrapper else None
    return make_vec_env(
        settings.make_id, n_envs=n_envs or settings.n_envs, seed=seed, env_kwargs=env_kwargs, wrapper_class=wrapper
    )


def make_training_env(settings: Hyperparams, seed: int | None = None) -> VecEnv:
    """The training ``VecEnv``: ``n_envs`` copies of the env, seeded, under ``VecNormalize`` if asked."""
    env = make_env(settings, seed=seed)
    return VecNormalize(env) if settings.normalize else env


def make_eval_env(settings: Hyperparams, *, n_envs: int = 1, seed: int | None = None) -> VecEnv:
    """The evaluation ``VecEnv``: ``eval_env_kwargs`` applied (held-out levels), and, if the entry normalises,
    a ``VecNormalize`` that does not update its statistics or scale rewards (copy the training env's statistics
    in with ``sync_envs_normalization``)."""
    env = make_env(settings, n_envs=n_envs, seed=seed, evaluation=True)
    return VecNormalize(env, training=False, norm_reward=False) if settings.normalize else env


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
    "ENV_PACKAGES",
    "RUN_KEYS",
    "Hyperparams",
    "check_keywords",
    "env_ids",
    "linear_schedule",
    "load_hyperparams",
    "make_agent",
    "make_env",
    "make_eval_env",
    "make_training_env",
    "resolve_entry",
    "tuned_entry",
]
