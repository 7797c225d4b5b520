"""Discrete action sets: exact action tables, check_env, clear errors."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from gym_planning.wrappers.discretize import ActionSetDiscretize, FactorisedDiscretizeAction, factorised_action_set


def test_factorised_set_is_noop_plus_one_dimension_at_a_time():
    table = factorised_action_set(np.array([-1.0, 0.0]), np.array([1.0, 4.0]), levels=(1.0, 0.5))
    expected = [
        [0.0, 2.0],  # no-op = centre of the box
        [1.0, 2.0],
        [-1.0, 2.0],
        [0.5, 2.0],
        [-0.5, 2.0],  # dim 0: +/-1, +/-0.5 of the half range
        [0.0, 4.0],
        [0.0, 0.0],
        [0.0, 3.0],
        [0.0, 1.0],  # dim 1
    ]
    np.testing.assert_allclose(table, expected)


def test_factorised_cheetah_sized_set_grows_linearly():
    env = gym.make("MountainCarContinuous-v0")  # 1-D: 1 + 2 * 1 * 2 = 5 actions
    wrapped = FactorisedDiscretizeAction(env, levels=(1.0, 0.25))
    assert wrapped.action_space == gym.spaces.Discrete(5)
    assert factorised_action_set(-np.ones(6), np.ones(6)).shape == (13, 6)  # cheetah: 13, not 3**6 = 729
    assert factorised_action_set(-np.ones(21), np.ones(21)).shape == (43, 21)  # humanoid


def test_action_set_maps_indices_and_reverts_to_the_nearest():
    env = ActionSetDiscretize(gym.make("Pendulum-v1"), actions=[[-2.0], [0.0], [1.5]])
    assert env.action_space == gym.spaces.Discrete(3)
    np.testing.assert_array_equal(env.action(2), np.array([1.5], np.float32))
    assert env.revert_action(np.array([1.0])) == 2
    assert env.revert_action(np.array([-0.7])) == 1


def test_discretised_envs_pass_check_env_and_rebuild_from_their_spec():
    for env in (
        FactorisedDiscretizeAction(gym.make("Pendulum-v1")),
        ActionSetDiscretize(gym.make("Pendulum-v1"), actions=[[-1.0], [1.0]]),
    ):
        check_env(env, skip_render_check=True)
        rebuilt = gym.make(env.spec)
        assert rebuilt.action_space == env.action_space
        env.reset(seed=0)
        rebuilt.reset(seed=0)
        np.testing.assert_array_equal(env.step(1)[0], rebuilt.step(1)[0])


def test_bad_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="Box action space"):
        FactorisedDiscretizeAction(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="levels"):
        FactorisedDiscretizeAction(gym.make("Pendulum-v1"), levels=(1.5,))
    with pytest.raises(ValueError, match="outside the action space"):
        ActionSetDiscretize(gym.make("Pendulum-v1"), actions=[[3.0]])
    with pytest.raises(ValueError, match="shape"):
        ActionSetDiscretize(gym.make("Pendulum-v1"), actions=[[0.0, 0.0]])
