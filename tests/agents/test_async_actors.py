"""MuZero with an actor process (``async_actors=1``): the actor acts as the single-process loop does, the
split learns the corridor, runs are reproducible, SB3 callbacks/logger/save work, bad settings are refused."""

from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import CheckpointCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_planning.agents.muzero import MuZero
from gym_planning.agents.muzero.actor import Actor
from gym_planning.agents.muzero.muzero import unroll, unroll_function
from tests.agents.corridor import Corridor, make_corridor
from tests.agents.test_muzero import LENGTH, TINY, _returns

ASYNC = dict(TINY, async_actors=1, async_chunk_steps=4)


def _weights(model: MuZero) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.fixture(scope="module")
def trained():
    th.set_num_threads(1)
    return MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **ASYNC).learn(300)


def test_async_learner_solves_the_corridor(trained):
    assert trained.num_timesteps == 300
    assert _returns(trained, make_corridor(LENGTH)) == 1.0
    # The envs came back from the actor and continue where it left them.
    assert isinstance(trained.env, DummyVecEnv)
    assert trained.actor_cpu_seconds > 0
    assert trained.phase_seconds["search"] > 0 and trained.phase_seconds["gradient"] > 0


def test_actor_acts_as_the_single_process_loop():
    """One actor step equals MuZero's own acting step from the same weights, observation and Generator."""
    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=5, **TINY)
    env = make_vec_env(lambda: make_corridor(LENGTH), n_envs=3, seed=1)
    observation = env.reset()
    actor_rng = np.random.default_rng(11)
    actor = Actor(env, model.policy.network, model.search_config, actor_rng, observation)
    actor.set_weights(7, model._compiled.params.copy())
    model.search_rng = np.random.default_rng(11)
    model._current_progress_remaining = 1.0
    actions, targets, masks = model._act(observation)
    chunk = actor.collect(2, temperature=model._current_temperature())
    assert chunk.weights_version == 7
    np.testing.assert_array_equal(chunk.observations[0], observation)
    np.testing.assert_array_equal(chunk.actions[0], actions)
    np.testing.assert_allclose(chunk.policy_targets[0], targets, rtol=1e-6)
    np.testing.assert_array_equal(chunk.legal_masks[0], masks)
    assert chunk.actions.shape == (2, 3) and chunk.policy_targets.shape == (2, 3, 2)
    # The second step acted on the observation the first one produced (replayed on a twin of the envs).
    twin = make_vec_env(lambda: make_corridor(LENGTH), n_envs=3, seed=1)
    twin.reset()
    np.testing.assert_array_equal(twin.step(chunk.actions[0])[0], chunk.observations[1])
    np.testing.assert_array_equal(twin.step(chunk.actions[1])[0], chunk.next_observation)


def test_actor_refuses_foreign_weights_and_collecting_without_weights():
    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **TINY)
    env = make_vec_env(lambda: make_corridor(LENGTH), n_envs=1, seed=0)
    actor = Actor(env, model.policy.network, model.search_config, np.random.default_rng(0), env.reset())
    with pytest.raises(RuntimeError, match="set_weights"):
        actor.collect(1, temperature=1.0)
    with pytest.raises(ValueError, match="do not fit"):
        actor.set_weights(0, np.zeros(3))
    actor.set_weights(0, model._compiled.params.copy())
    with pytest.raises(ValueError, match="num_steps >= 1"):
        actor.collect(0, temperature=1.0)


def test_async_runs_are_reproducible_and_continue():
    first = MuZero("MlpPolicy", make_corridor(LENGTH), seed=2, **ASYNC).learn(150)
    second = MuZero("MlpPolicy", make_corridor(LENGTH), seed=2, **ASYNC).learn(150)
    assert th.equal(_weights(first), _weights(second))
    np.testing.assert_array_equal(first.replay_buffer.actions, second.replay_buffer.actions)
    # A later learn (here in the single-process mode) continues from the envs the actor handed back.
    first.async_actors = 0
    first.learn(20, reset_num_timesteps=False)
    assert first.num_timesteps == 170


def test_async_callbacks_logger_and_save(tmp_path):
    env = make_vec_env(lambda: make_corridor(LENGTH), n_envs=2, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, **dict(ASYNC, learning_starts=32))
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    checkpoints = CheckpointCallback(save_freq=40, save_path=str(tmp_path / "ckpt"), name_prefix="mz")
    stop = StopTrainingOnMaxEpisodes(max_episodes=6)
    model.learn(1_000, callback=[checkpoints, stop], log_interval=1)
    # Stopped by the callback long before 1,000 steps; the steps the actor took after the stop are stored too.
    assert 12 <= model.num_timesteps < 200
    assert model.replay_buffer.stored_rows * 2 == model.num_timesteps
    assert min(p.name for p in (tmp_path / "ckpt").iterdir()) == "mz_80_steps.zip"  # save_freq counts vector steps
    log = (tmp_path / "log" / "progress.csv").read_text()
    assert "train/actor_weights_age" in log and "time/wait_s" in log
    model.save(tmp_path / "mz")
    loaded = MuZero.load(tmp_path / "mz", env=make_vec_env(lambda: make_corridor(LENGTH), n_envs=2, seed=0))
    assert loaded.async_actors == 1 and loaded.async_chunk_steps == 4
    assert th.equal(_weights(loaded), _weights(model))


def test_async_cartpole_runs_a_few_hundred_steps():
    model = MuZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=0), seed=0, async_actors=1,
                   learning_starts=100, batch_size=32, num_unroll_steps=3, reanalyse_fraction=0.0)  # fmt: skip
    model.learn(400)
    assert (
        model.num_timesteps == 400 and model._n_updates == 76
    )  # 0.25 per env step: 76 vector steps of 4 envs from the one reaching 100
    assert model.replay_buffer.stored_rows == 100


class _FailingCorridor(Corridor):
    def step(self, action):
        if self.position == 2:
            raise ValueError("corridor broke at cell 2")
        return super().step(action)


def test_an_error_in_the_actor_is_raised_with_its_traceback():
    model = MuZero("MlpPolicy", gym.wrappers.TimeLimit(_FailingCorridor(LENGTH), 12), seed=0, **ASYNC)
    with pytest.raises(RuntimeError, match="corridor broke at cell 2"):
        model.learn(400)


class _UnpicklableCorridor(Corridor):
    def __init__(self):
        super().__init__(LENGTH)
        self.lock = threading.Lock()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(async_actors=2), "async_actors must be 0"),
        (dict(async_actors=-1), "async_actors must be 0"),
        (dict(async_actors=1.0), "async_actors must be 0"),
        (dict(async_actors=1, async_chunk_steps=0), "async_chunk_steps must be an integer >= 1"),
        (dict(async_actors=1, inference="torch"), "inference='auto' or 'numba'"),
        (dict(async_actors=1, search_at_train_time=False), "search_at_train_time=True"),
        (dict(async_actors=1, search_for_targets=False), "search_for_targets=True"),
    ],
)
def test_bad_async_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MuZero("MlpPolicy", make_corridor(LENGTH), **kwargs)


def test_async_needs_a_compilable_network_and_picklable_envs():
    class ImageCorridor(Corridor):
        def __init__(self):
            super().__init__(LENGTH)
            self.observation_space = gym.spaces.Box(0, 255, (3, 8, 8), np.uint8)

    with pytest.raises(ValueError, match="cannot be compiled"):
        MuZero("CnnPolicy", gym.wrappers.TimeLimit(ImageCorridor(), 12), async_actors=1)
    model = MuZero("MlpPolicy", gym.wrappers.TimeLimit(_UnpicklableCorridor(), 12), seed=0, **ASYNC)
    with pytest.raises(ValueError, match="does not pickle"):
        model.learn(100)


def test_compile_unroll_falls_back_to_eager_off_cuda():
    assert unroll_function(True, th.device("cpu")) is unroll
    # device="cpu": on a CUDA machine the default device is the GPU, where compile_unroll does compile.
    settings = dict(TINY, learning_starts=32, device="cpu")
    eager = MuZero("MlpPolicy", make_corridor(LENGTH), seed=1, **settings).learn(80)
    fallback = MuZero("MlpPolicy", make_corridor(LENGTH), seed=1, compile_unroll=True, **settings)
    fallback.learn(80)
    assert eager._n_updates == fallback._n_updates > 0
    assert th.equal(_weights(eager), _weights(fallback))


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
def test_compiled_unroll_on_cuda_matches_eager():
    with pytest.warns(UserWarning, match="MlpPolicy on CUDA"):
        model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, device="cuda", **TINY)
    network = model.policy.network
    observation = th.rand(8, LENGTH, device="cuda")
    actions = th.randint(0, 2, (8, 5), device="cuda")
    compiled = unroll_function(True, th.device("cuda"))
    for got, want in zip(compiled(network, observation, actions), unroll(network, observation, actions)):
        th.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
