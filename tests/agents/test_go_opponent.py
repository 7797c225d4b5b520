"""GoSearchOpponent: a fixed-strength Go player from search over the rules, as GoEnv's opponent."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pyspiel")

from gymnasium.utils.env_checker import check_env  # noqa: E402

import gym_planning  # noqa: E402, F401  (registers the ids)
from gym_planning.agents import GoSearchOpponent  # noqa: E402
from gym_planning.envs.go import GoEnv  # noqa: E402


def test_bad_settings_raise_one_clear_error():
    with pytest.raises(ValueError, match="num_simulations must be an integer >= 1"):
        GoSearchOpponent(0)
    with pytest.raises(ValueError, match="max_num_considered_actions"):
        GoSearchOpponent(max_num_considered_actions=0)
    with pytest.raises(ValueError, match="num_rollouts"):
        GoSearchOpponent(num_rollouts=-1)


def test_the_registered_env_takes_it_and_check_env_passes():
    env = gym.make("gym_planning/Go9x9-v0", opponent=GoSearchOpponent(4), agent_colour="white")
    # check_env steps one unmasked action_space.sample(); unseeded, it hit the point the opponent had just
    # taken in about one run of 80 (an illegal move is an error by design). Seed 0 samples a legal point.
    env.unwrapped.action_space.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    _, info = env.reset(seed=0)
    assert info["to_play"] == 1 and not info["legal_mask"].all()  # the search opened the game as black


def test_search_opponent_beats_the_random_player():
    # Measured: the default player (32 simulations) beats a random player in 38 of 40 games as black.
    search_wins = 0
    for game, colour in enumerate(["black", "white", "black", "white"]):
        env = GoEnv(opponent=GoSearchOpponent(), agent_colour=colour)  # the agent plays randomly
        _, info = env.reset(seed=game)
        rng = np.random.default_rng(game)
        terminated = False
        while not terminated:
            _, reward, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["legal_mask"]))))
        search_wins += reward < 0
    assert search_wins >= 3
