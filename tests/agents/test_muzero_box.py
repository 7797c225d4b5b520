"""MuZero on Box actions (Sampled MuZero): Pendulum without a wrapper, the replay's action vectors and policy
targets, the sampled policy loss, save/load, determinism and the settings it refuses."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from gym_planning.agents.muzero import MuZero
from gym_planning.agents.muzero.box import SampledGameSegmentBuffer, SampledPolicyTarget, sampled_policy_loss
from gym_planning.models.networks import gaussian_parameters
from tests.agents.corridor import Corridor

# CI-sized settings: tiny networks, a few simulations over a few candidates.
TINY = dict(
    num_simulations=4,
    num_samples=4,
    learning_starts=50,
    batch_size=16,
    num_unroll_steps=3,
    td_steps=5,
    value_support_size=5,
    reward_support_size=3,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=16, hidden_sizes=(32,))),
)


class _RecordingBoxEnv(gym.Env):
    """A 5-step episode with a 2-d Box action on ``[0, 10] x [-1, 3]``; records every action it gets."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Box(np.array([0.0, -1.0], np.float32), np.array([10.0, 3.0], np.float32))

    def __init__(self):
        self.received: list[np.ndarray] = []
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(3, 0.5, np.float32), {}

    def step(self, action):
        self.received.append(np.array(action))
        self.t += 1
        reward = -abs(float(action[0]) - 7.0) / 10.0
        return np.full(3, 0.5 - 0.1 * self.t, np.float32), reward, self.t >= 5, False, {}


@pytest.fixture(scope="module")
def pendulum():
    th.set_num_threads(1)
    return MuZero("MlpPolicy", "Pendulum-v1", seed=0, search="gumbel", **TINY).learn(300)


def test_pendulum_learns_without_a_wrapper_and_predicts_in_the_box(pendulum):
    buffer = pendulum.replay_buffer
    assert isinstance(buffer, SampledGameSegmentBuffer) and len(buffer) == 300 and pendulum._n_updates > 0
    assert buffer.actions.shape[1:] == (1, 1) and np.abs(buffer.actions[:300]).max() <= 1.0
    # Policy targets: the search's weights over the K root candidates, and the acted action one of them.
    np.testing.assert_allclose(buffer.policy_targets[:300].sum(axis=-1), 1.0, rtol=1e-5)
    acted = np.tanh(buffer.candidates[:300, 0]) - buffer.actions[:300, 0, None]  # [R, K, D]
    assert (np.abs(acted).min(axis=1) < 1e-5).all()
    observations = np.stack([pendulum.observation_space.sample() for _ in range(4)])
    actions, _ = pendulum.predict(observations, deterministic=True)
    assert actions.shape == (4, 1) and actions.dtype == np.float32 and (np.abs(actions) <= 2.0).all()
    single, _ = pendulum.predict(observations[0], deterministic=False)
    assert single.shape == (1,)
    with pytest.raises(ValueError, match="Box action space has none"):
        pendulum.predict(observations, action_masks=np.ones((4, 2), bool))


def test_save_load_and_replay_round_trip(pendulum, tmp_path):
    pendulum.save(tmp_path / "model")
    pendulum.save_replay_buffer(tmp_path / "replay")
    loaded = MuZero.load(tmp_path / "model", env=gym.make("Pendulum-v1"))
    observation = np.array([[1.0, 0.0, 0.5]], np.float32)
    # The search's Generator is saved too: the same candidates, the same search, the same action.
    np.testing.assert_array_equal(
        loaded.predict(observation, deterministic=True)[0], pendulum.predict(observation, deterministic=True)[0]
    )
    for name, tensor in pendulum.policy.state_dict().items():
        assert th.equal(tensor, loaded.policy.state_dict()[name]), name
    without_env = MuZero.load(tmp_path / "model")
    assert without_env.predict(observation, deterministic=True)[0].shape == (1, 1)
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    for name in ("actions", "candidates", "policy_targets", "rewards"):
        np.testing.assert_array_equal(getattr(loaded.replay_buffer, name), getattr(pendulum.replay_buffer, name))
    loaded.learn(60, reset_num_timesteps=False)  # trains on the loaded replay
    discrete = MuZero("MlpPolicy", "CartPole-v1", **TINY)
    with pytest.raises(ValueError, match="Box actions"):
        discrete.load_replay_buffer(tmp_path / "replay.pkl")


def test_env_gets_the_stored_actions_rescaled_to_the_box():
    env = _RecordingBoxEnv()
    model = MuZero("MlpPolicy", env, seed=1, reanalyse_fraction=1.0, **TINY).learn(80)
    received = np.array(env.unwrapped.received)  # [80, 2]
    stored = model.replay_buffer.actions[:80, 0]  # normalised, [80, 2]
    low, high = env.action_space.low, env.action_space.high
    np.testing.assert_allclose(received, low + (stored + 1.0) / 2.0 * (high - low), rtol=1e-5, atol=1e-5)
    assert received[:, 0].min() >= 0.0 and received[:, 1].max() <= 3.0
    # Unrolls replay the stored action vectors, uniform random ones after the episode's end.
    batch = model.replay_buffer.sample(8, 3, 2, 0.9)
    inside = batch.status[:, :-1] == 0
    np.testing.assert_array_equal(
        batch.actions[inside], model.replay_buffer.actions[batch.rows[:, :-1], batch.envs[:, None]][inside]
    )
    assert batch.actions.shape == (8, 3, 2) and np.abs(batch.actions).max() <= 1.0


def test_runs_under_a_seed_repeat():
    runs = [MuZero("MlpPolicy", "Pendulum-v1", seed=3, **TINY).learn(120) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].replay_buffer.actions, runs[1].replay_buffer.actions)
    np.testing.assert_array_equal(runs[0].replay_buffer.candidates, runs[1].replay_buffer.candidates)
    for name, tensor in runs[0].policy.state_dict().items():
        assert th.equal(tensor, runs[1].policy.state_dict()[name]), name


def test_sampled_policy_loss_is_the_weighted_log_likelihood_and_moves_the_mean():
    policy_output = th.zeros(1, 1, 2, requires_grad=True)  # D = 1: mean 0, raw log-std 0
    candidates = th.tensor([[[[1.0], [-1.0], [3.0]]]])  # [B, K+1, C, D]
    weights = th.tensor([[[0.75, 0.25, 0.0]]])
    mean, log_std = gaussian_parameters(policy_output)
    normal = th.distributions.Normal(mean, log_std.exp())
    expected = -(weights * normal.log_prob(candidates[..., 0])).sum(-1)
    loss = sampled_policy_loss(policy_output, candidates, weights)
    assert th.allclose(loss, expected)
    loss.sum().backward()
    assert policy_output.grad[0, 0, 0] < 0  # gradient descent moves the mean toward the weighted candidates
    with pytest.raises(ValueError, match="disagree"):
        sampled_policy_loss(policy_output, candidates, weights[..., :2])


@pytest.mark.parametrize(
    "action_space, match",
    [
        (spaces.Box(-np.inf, np.inf, (2,)), "finite bounds"),
        (spaces.Box(-1.0, 1.0, (2, 2)), "flat Box"),
        (spaces.MultiDiscrete([2, 3]), "Discrete\\(prod\\(nvec\\)\\)"),
        (spaces.Dict({"a": spaces.Box(-1, 1, (1,))}), "single Discrete"),
    ],
)
def test_unsupported_action_spaces_are_named(action_space, match):
    class Env(Corridor):
        def __init__(self):
            super().__init__()
            self.action_space = action_space

    with pytest.raises(ValueError, match=match):
        MuZero("MlpPolicy", Env())


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(num_samples=1), "num_samples"),
        (dict(async_actors=1), "async_actors=0"),
        (dict(async_actors=1, actor_backend="ray"), "async_actors=0"),
        (dict(search_for_targets=False), "sampled search"),
        (dict(search_at_train_time=False), "sampled search"),
        (dict(inference="numba"), "cannot compile"),
    ],
)
def test_box_refuses_settings_it_cannot_serve(settings, match):
    with pytest.raises(ValueError, match=match):
        MuZero("MlpPolicy", "Pendulum-v1", **settings)


def test_cnn_policy_refuses_box_actions():
    class ImageBoxEnv(_RecordingBoxEnv):
        observation_space = spaces.Box(0, 255, (3, 8, 8), np.uint8)

    with pytest.raises(ValueError, match="MlpPolicy"):
        MuZero("CnnPolicy", ImageBoxEnv())


def test_policy_target_type_is_checked():
    buffer = SampledGameSegmentBuffer(10, (3,), np.float32, action_dim=2, num_samples=4, n_envs=1)
    args = (np.zeros((1, 3)), np.zeros((1, 2)), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    with pytest.raises(TypeError, match="SampledPolicyTarget"):
        buffer.add(*args, np.full((1, 4), 0.25), np.ones((1, 4), bool), {})
    buffer.add(*args, SampledPolicyTarget(np.ones((1, 4, 2)), np.full((1, 4), 0.25)), np.ones((1, 4), bool), {})
    assert buffer.candidates[0].sum() == 8.0
