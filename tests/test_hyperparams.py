"""The tuned settings files: every entry builds its agent; bad names and keys get one clear error."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from gym_planning.agents.muzero import MuZero
from gym_planning.hyperparams import (
    ALGORITHMS,
    env_ids,
    linear_schedule,
    load_hyperparams,
    make_agent,
    make_env,
    make_eval_env,
    make_training_env,
)
from gym_planning.wrappers import make_dm_control

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
    with pytest.raises(ValueError, match=r"unknown algorithm 'td3'; choose one of \['a2c', 'dqn', 'muzero', 'ppo', 'sac'\]"):
        load_hyperparams("td3", "CartPole-v1")
    with pytest.raises(ValueError, match=r"no tuned ppo settings for env 'MountainCar-v0'.*CartPole-v1"):
        load_hyperparams("ppo", "MountainCar-v0")


def test_linear_schedule():
    schedule = linear_schedule(0.2)
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([0.2, 0.1, 0.0])


SEED_ENV_ROWS = [
    (algo, env_id)
    for algo in ("muzero", "ppo", "dqn")
    for env_id in ("gym_planning/Minipacman-v0", "Sokoban7x7-v0", "gym_planning/Sokoban-v0",
                   "dm_control/cheetah-run-v0", "dm_control/acrobot-swingup_sparse-v0", "ALE/MsPacman-v5", "ALE/Hero-v5")
]  # fmt: skip
# Keep the test short: PPO collects 2 x 8 steps on 2 envs, nothing else trains (learning starts later).
FEW_STEPS = {"ppo": {"n_envs": 2, "n_steps": 8, "batch_size": 8, "n_epochs": 1}, "dqn": {}, "muzero": {}}


def _needs(env_id: str) -> None:
    if env_id.startswith("dm_control/"):
        pytest.importorskip("shimmy")
        pytest.importorskip("dm_control")
    if env_id.startswith("ALE/"):
        pytest.importorskip("ale_py")


@pytest.mark.parametrize(("algo", "env_id"), SEED_ENV_ROWS)
def test_seed_env_rows_build_and_take_env_steps(algo, env_id):
    _needs(env_id)
    settings = load_hyperparams(algo, env_id)
    model = make_agent(algo, env_id, seed=0, device="cpu", overrides=FEW_STEPS[algo])
    model.learn(16)
    assert model.num_timesteps >= 16
    assert isinstance(model.action_space, gym.spaces.Discrete)  # dm_control: the factorised action set
    assert model.observation_space == make_eval_env(settings, n_envs=1, seed=0).observation_space


def test_wrapped_env_is_the_suite_stack():
    pytest.importorskip("shimmy")
    env = make_env(load_hyperparams("muzero", "dm_control/cheetah-run-v0"), n_envs=1, seed=0)
    # cheetah: 6 actuators -> no-op plus +/-1 on each = 13 actions; 17 flattened state values.
    assert (env.action_space.n, env.observation_space.shape) == (13, (17,))
    reference = make_dm_control("cheetah-run")
    assert env.observation_space.shape == reference.observation_space.shape
    assert env.action_space == reference.action_space


@pytest.mark.parametrize("env_id", ["gym_planning/Minipacman-v0", "Sokoban7x7-v0"])
def test_evaluation_plays_held_out_levels(env_id):
    settings = load_hyperparams("muzero", env_id)
    train, held_out = make_env(settings, n_envs=1, seed=3), make_eval_env(settings, n_envs=1, seed=3)
    assert train.envs[0].unwrapped.spec.kwargs.get("split", "train") == "train"  # the env's default
    assert held_out.envs[0].unwrapped.spec.kwargs["split"] == "test"
    # The same reset seed draws a level from the other split: a different maze or room.
    assert not np.array_equal(train.reset(), held_out.reset())


def test_variant_entries_name_their_gym_id():
    settings = load_hyperparams("ppo", "Sokoban7x7-v0")
    assert (settings.make_id, settings.env_kwargs["dim_room"], settings.env_kwargs["num_boxes"]) == (
        "gym_planning/Sokoban-v0",
        [7, 7],
        2,
    )
    env = make_training_env(settings, seed=0)
    assert env.observation_space.shape == (7, 7, 7)  # 7x7 cells, 7 one-hot planes


def test_bad_env_settings_are_named():
    with pytest.raises(ValueError, match=r"env_wrapper 'gym_planning.wrappers.NoSuchWrapper' is not an importable"):
        load_hyperparams("ppo", "CartPole-v1", {"env_wrapper": ["gym_planning.wrappers.NoSuchWrapper"]})
    with pytest.raises(TypeError, match=r"env_kwargs must be a mapping"):
        load_hyperparams("ppo", "CartPole-v1", {"env_kwargs": [1, 2]})
    with pytest.raises(TypeError, match=r"env_wrapper items are dotted paths"):
        load_hyperparams("ppo", "CartPole-v1", {"env_wrapper": [{"gymnasium.wrappers.TimeLimit": 5}]})
    with pytest.raises(ValueError, match=r"DQN takes no setting \['n_epochs'\]"):
        load_hyperparams("dqn", "Sokoban7x7-v0", {"n_epochs": 8})


def test_wrapper_keywords_reach_the_wrapper():
    settings = load_hyperparams(
        "ppo", "CartPole-v1", {"env_wrapper": [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 3}}], "n_envs": 1}
    )
    env = make_training_env(settings, seed=0)
    env.reset()
    dones = [env.step([0])[2][0] for _ in range(3)]
    assert dones == [False, False, True]


def test_benchmark_refuses_unknown_envs_naming_those_with_settings():
    from benchmarks.learning import check_envs

    with pytest.raises(SystemExit, match=r"no MuZero settings for env 'Pong-v5'.*'Sokoban7x7-v0'"):
        check_envs(["Pong-v5"], ["MuZero", "PPO"])
    check_envs(["gym_planning/Minipacman-v0", "Sokoban7x7-v0"], ["MuZero", "PPO", "DQN"])  # no error


def test_benchmark_runs_by_default_every_agent_with_settings_for_the_env():
    from benchmarks.learning import algos_with_settings

    assert algos_with_settings("CartPole-v1") == ["MuZero", "DQN", "PPO"]  # no SAC row: Discrete actions
    assert algos_with_settings("Pendulum-v1") == ["MuZero", "SAC"]
    with pytest.raises(SystemExit, match="no settings for env 'Pong-v5'"):
        algos_with_settings("Pong-v5")
