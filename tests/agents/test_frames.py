"""Frame-stacked replay storage: stacks rebuilt from single frames equal the observations stored whole."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack

from gym_planning.agents.muzero import buffer as buffer_module
from gym_planning.agents.muzero.buffer import GameSegmentBuffer
from gym_planning.agents.muzero.frames import StackedFrames, detect_frame_stack, resolve_frame_stack


def _streams(seed, n_envs, steps, frame_stack, channels, reset_every):
    """Per step ``[E, S * c, 2]`` stacks as FrameStackObservation makes them: each step shifts in one new frame;
    an episode starts padded with its first frame or with zeros. Frame values come from {0, 1} so that
    equal frames (and stacks that look shifted by chance) occur."""
    rng = np.random.default_rng(seed)
    stacks = np.zeros((n_envs, frame_stack, channels, 2), np.uint8)
    out = []
    for t in range(steps):
        for env in range(n_envs):
            frame = rng.integers(0, 2, (channels, 2), dtype=np.uint8)
            if t == 0 or rng.random() < 1 / reset_every:
                stacks[env] = frame if rng.random() < 0.5 else 0
                stacks[env, -1] = frame
            else:
                stacks[env] = np.concatenate([stacks[env, 1:], frame[None]])
        out.append(stacks.reshape(n_envs, frame_stack * channels, 2).copy())
    return out


def _add(buffer, observation, n_envs):
    buffer.add(
        observation,
        np.zeros(n_envs, np.int64),
        np.zeros(n_envs, np.float32),
        np.zeros(n_envs, bool),
        np.zeros(n_envs, bool),
        np.full((n_envs, 2), 0.5, np.float32),
        np.ones((n_envs, 2), bool),
        {},
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_envs=st.integers(1, 3),
    capacity=st.integers(2, 9),
    frame_stack=st.integers(1, 5),
    channels=st.integers(1, 2),
    steps=st.integers(1, 30),
    reset_every=st.integers(1, 8),
)
def test_rebuilt_stacks_equal_whole_observations(seed, n_envs, capacity, frame_stack, channels, steps, reset_every):
    shape = (frame_stack * channels, 2)
    whole = GameSegmentBuffer(capacity * n_envs, shape, np.uint8, 2, n_envs)
    frames = GameSegmentBuffer(capacity * n_envs, shape, np.uint8, 2, n_envs, frame_stack=frame_stack)
    for observation in _streams(seed, n_envs, steps, frame_stack, channels, reset_every):
        _add(whole, observation, n_envs)
        _add(frames, observation, n_envs)
        rows, envs = np.divmod(np.arange(len(whole)), n_envs)
        np.testing.assert_array_equal(frames.observations_at(rows, envs), whole.observations[rows, envs])
    # Keyframes only where the ring needs them: at most one per stored row and env, none outside the ring.
    assert set(frames.frames.keyframes) <= {(r, e) for r in range(frames.stored_rows) for e in range(n_envs)}
    restored = pickle.loads(pickle.dumps(frames))
    np.testing.assert_array_equal(restored.observations_at(rows, envs), whole.observations[rows, envs])


def test_frames_store_one_frame_per_step_inside_an_episode():
    frame_stack, n_envs = 4, 2
    buffer = GameSegmentBuffer(64, (frame_stack * 3, 2), np.uint8, 2, n_envs, frame_stack=frame_stack)
    for observation in _streams(0, n_envs, 20, frame_stack, 3, reset_every=10**6):
        _add(buffer, observation, n_envs)
    # One episode per env: only its first step keeps the older frames.
    assert sorted(buffer.frames.keyframes) == [(0, 0), (0, 1)]
    assert buffer.frames.frames.shape == (32, n_envs, 3, 2)
    # A step that is not the previous one shifted (an env reset) is a keyframe.
    _add(buffer, np.full((n_envs, frame_stack * 3, 2), 7, np.uint8), n_envs)
    assert buffer.frames.is_keyframe[20].all()


def test_replay_too_large_for_memory_names_the_size_and_the_setting(monkeypatch):
    monkeypatch.setattr(buffer_module, "available_memory_bytes", lambda: 2**30)
    atari = (96, 96, 96)  # make_atari's default observation: 32 RGB frames of 96 x 96
    # A step takes 884,736 observation bytes whole (27,648 as one frame) plus 53 for 6 actions; 80% of 1 GiB
    # holds 970 (31,009) of them.
    with pytest.raises(ValueError, match=r"needs 82\.4 GiB .* 1\.0 GiB .* buffer_size to at most 970\b.*frame_stack"):
        GameSegmentBuffer(100_000, atari, np.uint8, 6, 1)
    with pytest.raises(ValueError, match=r"needs 2\.6 GiB .* single frames of a 32-frame stack.* at most 31009\b"):
        GameSegmentBuffer(100_000, atari, np.uint8, 6, 1, frame_stack=32)
    assert GameSegmentBuffer(30_000, atari, np.uint8, 6, 1, frame_stack=32).frames.frames.nbytes == 30_000 * 27_648


def test_frame_stack_is_detected_from_the_wrappers():
    import gymnasium as gym

    def stacked():
        return gym.wrappers.FrameStackObservation(gym.make("CartPole-v1"), 3)

    assert detect_frame_stack(make_vec_env(stacked, n_envs=1)) == 3
    assert detect_frame_stack(VecFrameStack(make_vec_env("CartPole-v1", n_envs=2), 4)) == 4
    assert detect_frame_stack(make_vec_env("CartPole-v1", n_envs=1)) is None
    assert resolve_frame_stack("auto", make_vec_env(stacked, n_envs=1), (3, 4)) == 3
    assert resolve_frame_stack("auto", make_vec_env(stacked, n_envs=1), (4, 3)) is None  # not along axis 0
    with pytest.raises(ValueError, match="frame_stack=5 does not divide"):
        resolve_frame_stack(5, None, (96, 96, 96))
    with pytest.raises(ValueError, match="frame_stack must be"):
        StackedFrames(4, 1, (4, 2), np.uint8, 0)


def test_resume_with_a_frame_stacked_replay_equals_the_uninterrupted_run(tmp_path):
    import gymnasium as gym

    from gym_planning.agents.muzero import MuZero
    from tests.agents.corridor import make_corridor
    from tests.agents.test_muzero import LENGTH, TINY, _assert_same_run, _fingerprint

    def make_env():
        return gym.wrappers.FrameStackObservation(make_corridor(LENGTH), 3)

    # A replay of 30 steps wraps during the run, so the ring turns rows into keyframes before overwriting.
    settings = dict(TINY, learning_starts=20, temperature=1.0, reanalyse_fraction=0.5, buffer_size=30)
    straight = MuZero("MlpPolicy", make_env(), seed=3, **settings)
    assert straight.replay_buffer.frame_stack == 3  # detected from FrameStackObservation
    straight.learn(40).learn(40, reset_num_timesteps=False)

    first = MuZero("MlpPolicy", make_env(), seed=3, **settings).learn(40)
    first.save(tmp_path / "ckpt")
    first.save_replay_buffer(tmp_path / "replay")
    resumed = MuZero.load(tmp_path / "ckpt", env=first.get_env(), force_reset=False)
    resumed.load_replay_buffer(tmp_path / "replay")
    resumed.learn(40, reset_num_timesteps=False)
    _assert_same_run(_fingerprint(straight), _fingerprint(resumed))
    whole = MuZero("MlpPolicy", make_env(), seed=3, frame_stack=None, **settings).learn(40)
    rows, envs = np.divmod(np.arange(30), 1)
    np.testing.assert_array_equal(
        first.replay_buffer.observations_at(rows, envs), whole.replay_buffer.observations[rows, envs]
    )
