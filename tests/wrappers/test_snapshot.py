"""StateSnapshot: restore + replay is exact on every backend; wrapper state counts; clear errors."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

from gym_planning.wrappers.snapshot import SnapshotError, StateSnapshot, get_env_state, set_env_state


def _replay(env: gym.Env, actions: list) -> list:
    out = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def _assert_restores(make_env, *, warmup: int = 5, steps: int = 30, seed: int = 2):
    """Snapshot mid-episode; replaying the same actions after a restore (into the same env and into a fresh
    env reset with another seed) gives identical observations, rewards and flags."""
    env = StateSnapshot(make_env())
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(warmup):
        env.step(env.action_space.sample())
    state = env.get_state()
    actions = [env.action_space.sample() for _ in range(steps)]
    first = _replay(env, actions)
    env.set_state(state)
    again = _replay(env, actions)
    other = StateSnapshot(make_env())
    other.reset(seed=seed + 100)
    other.set_state(state)
    elsewhere = _replay(other, actions)
    assert len(first) > 1
    assert data_equivalence(first, again)
    assert data_equivalence(first, elsewhere)
    return first


@pytest.mark.parametrize(
    "make_env",
    [
        lambda: gym.make("CartPole-v1"),
        lambda: gym.make("Acrobot-v1"),
        lambda: gym.make("FrozenLake-v1", map_name="8x8", is_slippery=True),
    ],
    ids=["CartPole", "Acrobot", "FrozenLake-slippery"],
)
def test_classic_and_toy_text_replay_exactly(make_env):
    _assert_restores(make_env, warmup=0, steps=40)


def test_frozen_lake_restore_covers_the_random_generator():
    # Slippery moves draw from np_random: without its state the replays would differ for most seeds.
    env = gym.make("FrozenLake-v1", is_slippery=True)
    env.reset(seed=3)
    state = get_env_state(env)
    runs = []
    for _ in range(3):
        set_env_state(env, state)
        runs.append([env.step(1)[0] for _ in range(6)])
    assert runs[0] == runs[1] == runs[2]
    # Same position, other generator states: the walks differ, so the equality above is the RNG's doing.
    walks = set()
    for seed in range(5):
        set_env_state(env, state)
        env.unwrapped.np_random = np.random.default_rng(seed)
        walks.add(tuple(int(env.step(1)[0]) for _ in range(6)))
    assert len(walks) > 1


def test_ale_ms_pacman_with_sticky_actions_replays_exactly():
    ale_py = pytest.importorskip("ale_py")
    gym.register_envs(ale_py)
    make = lambda: gym.make("ALE/MsPacman-v5", repeat_action_probability=0.25)  # noqa: E731
    _assert_restores(make, warmup=10, steps=40)


def test_dm_control_cheetah_run_replays_exactly():
    shimmy = pytest.importorskip("shimmy")
    gym.register_envs(shimmy)
    _assert_restores(lambda: gym.make("dm_control/cheetah-run-v0"), warmup=5, steps=30)


def test_wrapper_state_counts():
    env = StateSnapshot(gym.wrappers.FrameStackObservation(gym.make("CartPole-v1", max_episode_steps=10), 3))
    env.reset(seed=0)
    for _ in range(4):
        env.step(0)
    state = env.get_state()
    stacked_before = env.step(1)[0]
    for _ in range(3):
        env.step(1)
    env.set_state(state)
    assert np.array_equal(env.step(1)[0], stacked_before)  # the frame stack came back
    truncated = [env.step(0)[3] for _ in range(5)]
    assert truncated == [False, False, False, False, True]  # TimeLimit's elapsed steps came back (4 + 1 + 5 = 10)


def test_snapshots_from_a_monitored_env_restore_into_an_unmonitored_copy():
    from stable_baselines3.common.monitor import Monitor

    real = Monitor(gym.make("CartPole-v1"))
    real.reset(seed=0)
    real.step(1)
    copy = gym.make("CartPole-v1")
    copy.reset(seed=5)
    set_env_state(copy, get_env_state(real))
    assert np.array_equal(copy.step(0)[0], real.step(0)[0])


def test_restoring_into_a_differently_wrapped_env_is_a_clear_error():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    state = get_env_state(env)
    other = gym.wrappers.FrameStackObservation(gym.make("CartPole-v1"), 2)
    other.reset(seed=0)
    with pytest.raises(ValueError, match="FrameStackObservation"):
        set_env_state(other, state)
    acrobot = gym.make("Acrobot-v1")
    acrobot.reset(seed=0)
    with pytest.raises(TypeError, match="EnvState"):
        set_env_state(acrobot, "not a snapshot")


class _Counter(gym.Env):
    """An env no backend knows: restored by deep copy."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        self.history = []
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.count += int(action) + int(self.np_random.integers(2))
        self.history.append(self.count)
        return np.array([self.count], np.float32), 1.0, self.count >= 100, False, {}


class _Unpicklable(_Counter):
    def reset(self, *, seed=None, options=None):
        out = super().reset(seed=seed)
        self.lock = __import__("threading").Lock()
        return out


def test_deepcopy_fallback_warns_once_and_restores():
    env = StateSnapshot(_Counter())
    env.reset(seed=0)
    env.step(1)
    with pytest.warns(UserWarning, match="deepcopy"):
        state = env.get_state()
    first = [env.step(1)[0][0] for _ in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second snapshot does not warn again
        env.get_state()
    env.set_state(state)
    assert [env.step(1)[0][0] for _ in range(5)] == first
    assert len(env.unwrapped.history) == 6  # the list was restored as it was (1 step), not shared with the replay


def test_env_that_cannot_be_snapshotted_gets_one_clear_error():
    env = StateSnapshot(_Unpicklable())
    env.reset(seed=0)
    with pytest.warns(UserWarning), pytest.raises(SnapshotError, match="_Unpicklable.*get_state"):
        env.get_state()


def test_state_snapshot_passes_check_env():
    check_env(StateSnapshot(gym.make("CartPole-v1").unwrapped), skip_render_check=True)


@pytest.mark.parametrize("env_id", ["gym_planning/Sokoban-v0", "gym_planning/Minipacman-v0"])
def test_gym_planning_envs_use_their_own_get_state(env_id):
    import gym_planning  # noqa: F401  (registers the ids)

    env = gym.make(env_id)
    env.reset(seed=0)
    assert get_env_state(env).backend.__name__ == "_OwnMethodsBackend"
    _assert_restores(lambda: gym.make(env_id), warmup=3, steps=20)


def test_normalising_wrappers_running_statistics_are_restored() -> None:
    from gymnasium.wrappers import NormalizeObservation, NormalizeReward

    env = NormalizeReward(NormalizeObservation(gym.make("CartPole-v1")))
    env.reset(seed=0)
    state = get_env_state(env)
    first = env.step(0)
    for _ in range(20):  # moves the running mean/variance of both wrappers
        if any(env.step(1)[2:4]):
            env.reset()
    set_env_state(env, state)
    again = env.step(0)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
