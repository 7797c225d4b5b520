"""The tuned settings files: every entry builds its agent; bad names and keys get one clear error."""

from __future__ import annotations

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from gym_planning.agents.muzero import MuZero
from gym_planning.hyperparams import ALGORITHMS, env_ids, linear_schedule, load_hyperparams, make_agent

ENTRIES = [(algo, env_id) for algo in sorted(ALGORITHMS) for env_id in env_ids(algo)]


@pytest.mark.parametrize(("algo", "env_id"), ENTRIES)
def test_every_entry_builds_its_agent(algo, env_id):
    settings = load_hyperparams(algo, env_id)
    model = make_agent(algo, env_id, seed=0, device="cpu")
    assert isinstance(model, ALGORITHMS[algo])
    assert model.n_envs == settings.n_envs
    assert isinstance(model.get_env(), VecNormalize) == settings.normalize
    assert settings.n_timesteps > 0


def test_entries_set_what_the_file_says():
    settings = load_hyperparams("ppo", "CartPole-v1")
    assert (settings.n_timesteps, settings.n_envs, settings.kwargs["n_steps"]) == (100_000, 8, 32)
    model = make_agent("ppo", "CartPole-v1", seed=0, device="cpu")
    assert isinstance(model, PPO) and (model.n_steps, model.batch_size, model.gamma) == (32, 256, 0.98)
    # lin_0.001: the learning rate decays linearly to 0 with the remaining progress.
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.5) == pytest.approx(5e-4)


def test_overrides_replace_entries_and_are_checked():
    model = make_agent("muzero", "CartPole-v1", seed=0, device="cpu", overrides={"n_envs": 2, "batch_size": 32})
    assert isinstance(model, MuZero) and (model.n_envs, model.batch_size) == (2, 32)
    with pytest.raises(ValueError, match=r"MuZero takes no setting \['batch_sise'\]"):
        load_hyperparams("muzero", "CartPole-v1", {"batch_sise": 32})


def test_unknown_algorithm_and_env_are_named():
    with pytest.raises(ValueError, match=r"unknown algorithm 'sac'; choose one of \['a2c', 'dqn', 'muzero', 'ppo'\]"):
        load_hyperparams("sac", "CartPole-v1")
    with pytest.raises(ValueError, match=r"no tuned ppo settings for env 'MountainCar-v0'.*CartPole-v1"):
        load_hyperparams("ppo", "MountainCar-v0")


def test_linear_schedule():
    schedule = linear_schedule(0.2)
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([0.2, 0.1, 0.0])
