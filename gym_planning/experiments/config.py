"""A run's configuration, resolved as rl-baselines3-zoo does: tuned YAML entry < ``--conf`` file < ``--hyperparams``.

:class:`RunConfig` is what a run folder's ``config.yml`` holds. The ``hyperparams`` entry keeps the YAML
spelling (``lin_0.001`` stays a string) so the file reads like the tuned one; :func:`settings_of` turns it into
:class:`gym_planning.hyperparams.Hyperparams` (schedules built, keys checked against the algorithm).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from gym_planning.hyperparams import ALGORITHMS, Hyperparams, env_ids, load_hyperparams, resolve_entry, tuned_entry


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (a run folder holds exactly one).

    :param algo: algorithm name, a key of :data:`gym_planning.hyperparams.ALGORITHMS`.
    :param env_id: the Gymnasium env id.
    :param seed: seed of the agent and the training envs.
    :param hyperparams: the resolved YAML entry: run keys (``n_timesteps``, ``n_envs``...) and algorithm keywords.
    :param env_kwargs: keyword arguments of ``gym.make`` (e.g. ``num_mazes`` of Minipacman).
    """

    algo: str
    env_id: str
    seed: int
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_timesteps(self) -> int:
        """Env steps of the whole run."""
        return int(self.hyperparams["n_timesteps"])

    def identity(self) -> dict[str, Any]:
        """What must match for a run folder to be continued: everything but the length of the run."""
        hyperparams = {k: v for k, v in self.hyperparams.items() if k != "n_timesteps"}
        return {**asdict(self), "hyperparams": hyperparams}

    def to_yaml(self) -> str:
        """The ``config.yml`` text."""
        return yaml.safe_dump(asdict(self), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> RunConfig:
        """Read a ``config.yml``."""
        return cls(**yaml.safe_load(text))


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["gamma=0.9", "policy_kwargs=dict(net_arch=[64])"]``-style pairs; values are read as YAML
    (``net_arch: [64, 64]`` is written ``policy_kwargs={net_arch: [64, 64]}``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"hyperparameter {pair!r} is not key=value (e.g. --hyperparams gamma=0.99 batch_size=64)")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _conf_entry(conf: str | Path, env_id: str) -> dict[str, Any]:
    table = yaml.safe_load(Path(conf).read_text()) or {}
    if env_id not in table:
        raise ValueError(f"--conf {conf} has no entry for env {env_id!r}; its entries: {sorted(table)}")
    return dict(table[env_id] or {})


def resolve_config(
    algo: str,
    env_id: str,
    *,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    conf: str | Path | None = None,
    n_timesteps: int | None = None,
) -> RunConfig:
    """The run's configuration: the tuned entry of ``algo`` for ``env_id``, then ``conf``'s entry, then
    ``overrides``, then ``n_timesteps``.

    :raises ValueError: an unknown algorithm or hyperparameter (naming the valid ones), or an env with neither a
        tuned entry nor a ``conf`` entry (naming the envs that have one).
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {sorted(ALGORITHMS)}")
    try:
        gym.spec(env_id)
    except gym.error.Error as error:  # gymnasium names the nearest registered ids
        raise ValueError(f"unknown env {env_id!r}: {error}") from None
    tuned = env_id in env_ids(algo)
    if not tuned and conf is None:
        raise ValueError(
            f"no tuned {algo} settings for env {env_id!r} (gym_planning/hyperparams/{algo}.yml); envs with settings: "
            f"{env_ids(algo)}; or give the settings in a file: --conf FILE (YAML keyed by env id, as {algo}.yml)"
        )
    entry = tuned_entry(algo, env_id) if tuned else {}
    entry.update(_conf_entry(conf, env_id) if conf is not None else {})
    entry.update(overrides or {})
    if n_timesteps is not None:
        entry["n_timesteps"] = int(n_timesteps)
    env_kwargs = dict(entry.pop("env_kwargs", None) or {})
    config = RunConfig(algo=algo, env_id=env_id, seed=int(seed), hyperparams=entry, env_kwargs=env_kwargs)
    settings_of(config)  # checks every key now, before any folder is written
    return config


def settings_of(config: RunConfig) -> Hyperparams:
    """The :class:`Hyperparams` of a run (schedules built, keys checked against the algorithm)."""
    entry = dict(config.hyperparams)
    if config.env_id in env_ids(config.algo):
        return load_hyperparams(config.algo, config.env_id, entry)
    where = f"settings of {config.algo} on {config.env_id!r}"
    if "n_timesteps" not in entry:
        raise ValueError(f"{where} lack n_timesteps (add it to the --conf entry or pass --n-timesteps)")
    return resolve_entry(config.algo, config.env_id, entry, where)
