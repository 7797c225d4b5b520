"""Tic-tac-toe: rules on hand-played games, the two-player interface shared with Go, the solver and opponents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

import gym_planning  # noqa: F401  (registers the ids)
from gym_planning.envs.tictactoe import EMPTY, O, TicTacToeEnv, X, optimal_moves, solve


def test_registered_and_passes_check_env():
    env = gym.make("gym_planning/TicTacToe-v0")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.num_players == 2
    assert TicTacToeEnv(opponent="random").num_players == 1


def test_two_player_game_rewards_the_mover_and_reports_to_play():
    env = TicTacToeEnv(render_mode="ansi")
    obs, info = env.reset(seed=0)
    assert info["to_play"] == X and info["legal_mask"].all() and obs[2].all()
    # X: 0, 1, 2 (top row); O: 4, 8.
    rewards, players = [], []
    for cell in (0, 4, 1, 8):
        obs, reward, terminated, truncated, info = env.step(cell)
        rewards.append(reward)
        players.append(info["to_play"])
        assert not terminated and not truncated
    assert rewards == [0.0] * 4 and players == [O, X, O, X]
    # X to move sees its own marks in plane 0, O's in plane 1.
    assert obs[0].reshape(-1).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert obs[1].reshape(-1).tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert not info["legal_mask"][0] and info["legal_mask"][2]
    obs, reward, terminated, truncated, info = env.step(2)
    assert reward == 1.0 and terminated and not truncated and info["winner"] == X
    assert not env.action_masks().any()
    assert env.render().startswith("XXX\n.O.\n..O")
    with pytest.raises(ResetNeeded):
        env.step(3)


def test_draw_gives_zero_and_winner_minus_one():
    env = TicTacToeEnv()
    env.reset(seed=0)
    # X O X / X O O / O X X: no line.
    for cell in (0, 1, 2, 4, 3, 5, 7, 6, 8):
        _, reward, terminated, _, info = env.step(cell)
    assert terminated and reward == 0.0 and info["winner"] == EMPTY


def test_illegal_and_bad_moves_raise_naming_the_problem():
    env = TicTacToeEnv()
    env.reset(seed=0)
    env.step(4)
    with pytest.raises(ValueError, match="cell is taken"):
        env.step(4)
    with pytest.raises(ValueError, match=r"integer in \[0, 9\)"):
        env.step(9)
    with pytest.raises(TypeError, match="opponent must be"):
        TicTacToeEnv(opponent="minimax")
    with pytest.raises(ValueError, match="unreachable"):
        env.set_state(np.array([0, 0, -1, -1, -1, -1, -1, -1, -1]))


def test_solver_knows_the_game():
    empty = (EMPTY,) * 9
    assert solve(empty) == 0  # a draw under perfect play
    # X has 0 and 1, O has 3 and 4, X to move: completing the top row wins at once.
    board = (X, X, EMPTY, O, O, EMPTY, EMPTY, EMPTY, EMPTY)
    assert solve(board) == 1 and optimal_moves(board) == [2]
    # O to move after X took 0 and 1 (O at 4): O must block at 2 (any other move loses).
    board = (X, X, EMPTY, EMPTY, O, EMPTY, EMPTY, EMPTY, EMPTY)
    assert optimal_moves(board) == [2]


def test_perfect_opponent_never_loses_to_random_and_agent_colour_is_respected():
    losses_for_perfect = 0
    rng = np.random.default_rng(0)
    for side in ("x", "o"):
        env = TicTacToeEnv(opponent="perfect", agent_player=side)
        for game in range(25):
            obs, info = env.reset(seed=game)
            assert info["to_play"] == (X if side == "x" else O)
            terminated = False
            while not terminated:
                legal = np.flatnonzero(env.action_masks())
                obs, reward, terminated, _, info = env.step(int(rng.choice(legal)))
            losses_for_perfect += reward == 1.0
    assert losses_for_perfect == 0


def test_seeded_games_against_random_repeat():
    def game(seed: int) -> list[int]:
        env = TicTacToeEnv(opponent="random")
        env.reset(seed=seed)
        boards, terminated = [], False
        while not terminated:
            _, _, terminated, _, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
            boards += env.get_state().tolist()
        return boards

    assert game(3) == game(3)
    assert any(game(3) != game(s) for s in range(4, 10))


def test_rgb_array_render_and_sb3_make_vec_env_by_id():
    """SB3's make_vec_env asks an env id for render_mode="rgb_array" (it failed with a ValueError before)."""
    from stable_baselines3.common.env_util import make_vec_env

    env = TicTacToeEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(4)  # X in the centre
    env.step(0)  # O in the top-left corner
    image = env.render()
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert image[48, 48].tolist() == [200, 30, 30] and image[16, 16].tolist() == [30, 60, 200]
    assert image[16, 80].tolist() == [255, 255, 255]  # an empty cell
    assert make_vec_env("gym_planning/TicTacToe-v0", n_envs=2, seed=0).num_envs == 2
