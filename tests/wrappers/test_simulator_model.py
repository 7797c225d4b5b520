"""SimulatorModel: roots are the real envs' states, steps are true env steps, episode ends are handled."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from gym_planning.models.base import SearchModel
from gym_planning.models.simulator import SimulatorModel

GAMMA = 0.9


def constant_guide(value: float, num_actions: int = 2):
    def guide(obs):
        return np.zeros((len(obs), num_actions)), np.full(len(obs), value)

    return guide


def test_steps_are_true_env_steps_and_the_real_env_is_untouched():
    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    obs = vec_env.reset()
    model = SimulatorModel(vec_env, discount=GAMMA)
    assert isinstance(model, SearchModel)
    root = model.root(obs)
    assert root.prior_logits.shape == (2, 2) and root.value.shape == (2,)
    output, children = model.recurrent(root.embedding, np.array([0, 1]))
    output2, _ = model.recurrent(children, np.array([1, 1]))
    np.testing.assert_array_equal(output.reward, [1.0, 1.0])
    np.testing.assert_array_equal(output.discount, [GAMMA, GAMMA])
    np.testing.assert_array_equal(output2.discount, [GAMMA, GAMMA])
    # The real envs did not move; stepping them now gives what the model predicted from the roots.
    real_obs, *_ = vec_env.step(np.array([0, 1]))
    model_obs = np.stack([c.state.base["state"] for c in children])
    np.testing.assert_allclose(real_obs, model_obs.astype(np.float32))


def test_termination_ends_the_branch_with_discount_and_value_zero():
    env = gym.make("FrozenLake-v1", is_slippery=False)  # S F F F / F H F H / ...
    obs, _ = env.reset(seed=0)
    model = SimulatorModel(env, guide=constant_guide(5.0, 4), discount=GAMMA)
    root = model.root(np.array([obs]))
    out, right = model.recurrent(root.embedding, np.array([2]))  # RIGHT to cell 1
    assert (out.discount[0], out.value[0]) == (GAMMA, 5.0)
    out, hole = model.recurrent(right, np.array([1]))  # DOWN into the hole at cell 5
    assert (out.reward[0], out.discount[0], out.value[0]) == (0.0, 0.0, 0.0)
    out, below = model.recurrent(hole, np.array([0]))  # nothing below a terminal state
    assert (out.reward[0], out.discount[0], out.value[0]) == (0.0, 0.0, 0.0)
    assert below[0] is hole[0]


def test_truncation_bootstraps_from_the_guide():
    env = gym.make("CartPole-v1", max_episode_steps=2)
    obs, _ = env.reset(seed=0)
    model = SimulatorModel(env, guide=constant_guide(7.0), discount=GAMMA)
    root = model.root(np.array([obs]))
    out, first = model.recurrent(root.embedding, np.array([0]))
    out, truncated = model.recurrent(first, np.array([0]))
    assert (out.reward[0], out.discount[0], out.value[0]) == (1.0, GAMMA, 7.0)  # bootstrapped, not zeroed
    out, _ = model.recurrent(truncated, np.array([1]))
    # Below a truncation the value stays the bootstrap: reward 7 then nothing, so the parent's value is unchanged.
    assert (out.reward[0], out.discount[0], out.value[0]) == (7.0, 0.0, 0.0)


def test_rollout_values_are_discounted_returns_plus_the_guide_value():
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    steps = 5  # random CartPole cannot fall within 5 steps of a reset
    with_guide = SimulatorModel(env, guide=constant_guide(10.0), rollout_steps=steps, discount=GAMMA, seed=0)
    out, _ = with_guide.recurrent(with_guide.root(np.array([obs])).embedding, np.array([1]))
    expected_return = sum(GAMMA**t for t in range(steps))
    assert out.value[0] == pytest.approx(expected_return + GAMMA**steps * 10.0)
    no_guide = SimulatorModel(env, rollout_steps=steps, discount=GAMMA, seed=0)
    root = no_guide.root(np.array([obs]))
    assert root.value[0] == pytest.approx(expected_return)
    np.testing.assert_array_equal(root.prior_logits, np.zeros((1, 2)))


def test_fewer_copies_than_rows_give_the_same_answers():
    vec_env = make_vec_env("Acrobot-v1", n_envs=3, seed=1)
    obs = vec_env.reset()
    actions = np.array([0, 1, 2])
    outputs = []
    for num_copies in (None, 1, 2):
        model = SimulatorModel(vec_env, guide=constant_guide(0.0, 3), num_copies=num_copies, discount=GAMMA)
        out, children = model.recurrent(model.root(obs).embedding, actions)
        outputs.append((out.reward, [c.state.base["state"] for c in children]))
    for reward, states in outputs[1:]:
        np.testing.assert_array_equal(reward, outputs[0][0])
        np.testing.assert_array_equal(np.stack(states), np.stack(outputs[0][1]))


class _OnlyLeft(gym.Wrapper):
    def action_masks(self):
        return np.array([True, False])


def test_legal_masks_come_from_action_masks():
    env = _OnlyLeft(gym.make("CartPole-v1"))
    obs, _ = env.reset(seed=0)
    model = SimulatorModel(env, make_copy=lambda: _OnlyLeft(gym.make("CartPole-v1")))
    root = model.root(np.array([obs]))
    np.testing.assert_array_equal(model.root_legal_mask, [[True, False]])
    out, _ = model.recurrent(root.embedding, np.array([0]))
    np.testing.assert_array_equal(out.legal_mask, [[True, False]])


def test_bad_inputs_get_clear_errors():
    vec_env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = SimulatorModel(vec_env)
    with pytest.raises(ValueError, match="bound to 2 env"):
        model.root(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.root(np.zeros((2, 5), np.float32))
    multi_discrete = gym.make("CartPole-v1")
    multi_discrete.action_space = gym.spaces.MultiDiscrete([2, 2])  # Box actions are searched since issue 16
    with pytest.raises(TypeError, match="Discrete or a bounded Box"):
        SimulatorModel(multi_discrete)
    with pytest.raises(TypeError, match="VecNormalize"):
        SimulatorModel(VecNormalize(vec_env))
    with pytest.raises(ValueError, match="rollout_steps"):
        SimulatorModel(vec_env, rollout_steps=-1)


def test_dm_control_stack_copies_rebuild_from_the_spec():
    pytest.importorskip("shimmy")
    from gym_planning.wrappers.suites import make_dm_control

    vec_env = make_dm_control("cheetah-run", max_episode_steps=2, n_envs=2, seed=0)
    obs = vec_env.reset()
    model = SimulatorModel(vec_env, guide=constant_guide(3.0, 13), discount=GAMMA)
    out, children = model.recurrent(model.root(obs).embedding, np.array([0, 5]))
    real_obs, real_reward, _, _ = vec_env.step(np.array([0, 5]))
    np.testing.assert_allclose(out.reward, real_reward, rtol=1e-6)
    out, _ = model.recurrent(children, np.array([1, 1]))  # the time limit counts decisions: truncated here
    np.testing.assert_array_equal(out.discount, [GAMMA, GAMMA])
    np.testing.assert_array_equal(out.value, [3.0, 3.0])
