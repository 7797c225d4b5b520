"""MuZero self-play on two-player zero-sum envs (tic-tac-toe, 9x9 Go): targets, the switch, and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from gym_planning.agents.muzero import MuZero
from gym_planning.agents.muzero.buffer import INSIDE
from gym_planning.envs.tictactoe import TicTacToeEnv

SMALL = dict(
    num_simulations=4,
    learning_starts=8,
    batch_size=8,
    replay_ratio=0.5,
    discount=1.0,
    td_steps=9,
    value_support_size=3,
    reward_support_size=1,
    reanalyse_fraction=0.0,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=8, hidden_sizes=(16,))),
)


class _NoToPlay(gym.Wrapper):
    """A two-player env that forgets to say whose turn it is."""

    num_players = 2

    def _strip(self, info: dict) -> dict:
        return {k: v for k, v in info.items() if k != "to_play"}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._strip(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._strip(info)


class _ToPlayWithoutPlayers(gym.Wrapper):
    """Reports info['to_play'] but hides num_players: one player or two? MuZero cannot tell."""

    def get_wrapper_attr(self, name):
        if name == "num_players":
            raise AttributeError(name)
        return super().get_wrapper_attr(name)


class _BadMask(gym.Wrapper):
    """A legal mask with one entry too many for Discrete(9)."""

    def action_masks(self):
        return np.ones(10, bool)


def test_two_player_env_trains_by_self_play_and_stores_whose_turn_it_was():
    model = MuZero("MlpPolicy", make_vec_env(TicTacToeEnv, n_envs=2, seed=0), seed=0, **SMALL)
    assert model.two_player and model.replay_buffer.two_players
    model.learn(60)
    buffer = model.replay_buffer
    rows = buffer.stored_rows
    for env in range(2):
        # X (0) moves first in every game and the turns alternate inside it.
        expected, player = [], 0
        for row in range(rows):
            expected.append(player)
            player = 0 if buffer.episode_end[row, env] else 1 - player
        assert buffer.to_play[:rows, env].tolist() == expected


def test_value_targets_are_the_game_outcome_for_the_player_to_move():
    """n-step targets with discount 1 and windows longer than a game equal the final outcome for the player to
    move at each position: +1 where that player went on to win, -1 where the other one did, 0 for draws."""
    model = MuZero("MlpPolicy", make_vec_env(TicTacToeEnv, n_envs=2, seed=1), seed=1, **SMALL)
    model.learn(80)
    buffer = model.replay_buffer
    batch = buffer.sample(64, model.num_unroll_steps, model.td_steps, model.discount)
    targets = model._value_targets(batch)
    checked = 0
    for b in range(len(batch.envs)):
        if batch.status[b, 0] != INSIDE or batch.bootstrap_rows[b, 0] != -1:
            continue  # the game is still running at the newest row: its target bootstraps
        env, row = batch.envs[b], batch.rows[b, 0]
        end = row
        while not buffer.episode_end[end, env]:
            end += 1
        winner_reward = buffer.rewards[end, env]  # +1 for the last mover if it won, 0 for a draw
        same_player = buffer.to_play[end, env] == buffer.to_play[row, env]
        expected = winner_reward if same_player else -winner_reward
        assert targets[b, 0] == pytest.approx(expected)
        checked += 1
    assert checked > 20


def test_go_without_opponent_is_self_play_and_with_one_is_not():
    pytest.importorskip("pyspiel")
    assert MuZero("MlpPolicy", gym.make("gym_planning/Go9x9-v0", board_size=5), **SMALL).two_player
    assert not MuZero("MlpPolicy", gym.make("gym_planning/Go9x9-v0", board_size=5, opponent="random"), **SMALL).two_player


def test_two_player_switch_refuses_the_wrong_kind_of_env():
    with pytest.raises(ValueError, match=r"two_player=True, but the env has num_players=1 .*opponent=None"):
        MuZero("MlpPolicy", TicTacToeEnv(opponent="random"), two_player=True, **SMALL)
    with pytest.raises(ValueError, match=r"two_player=False, but the env has num_players=2 .*two_player=True"):
        MuZero("MlpPolicy", TicTacToeEnv(), two_player=False, **SMALL)
    with pytest.raises(ValueError, match=r"needs the legal moves .*action_masks\(\)"):
        MuZero("MlpPolicy", "CartPole-v1", two_player=True, **SMALL)


def test_actor_process_refuses_self_play():
    with pytest.raises(ValueError, match="async_actors does not play two-player self-play"):
        MuZero("MlpPolicy", TicTacToeEnv(), async_actors=1, **SMALL)


def test_two_player_mode_on_an_env_without_to_play_names_it():
    model = MuZero("MlpPolicy", _NoToPlay(TicTacToeEnv()), **SMALL)
    with pytest.raises(ValueError, match=r"env 0's info at reset has no 'to_play'.*info\['to_play'\]"):
        model.learn(10)


def test_to_play_without_num_players_is_ambiguous():
    model = MuZero("MlpPolicy", _ToPlayWithoutPlayers(TicTacToeEnv()), **SMALL)
    assert not model.two_player
    with pytest.raises(ValueError, match=r"cannot tell self-play from a one-player env: pass two_player=True"):
        model.learn(10)


def test_turns_that_do_not_alternate_are_refused():
    model = MuZero("MlpPolicy", TicTacToeEnv(opponent="random"), **SMALL)
    model.two_player = True  # forced past the constructor's check: the opponent moves inside step()
    with pytest.raises(ValueError, match=r"same player twice .*alternating turns"):
        model.learn(10)


def test_legal_mask_that_disagrees_with_the_action_space_is_named():
    model = MuZero("MlpPolicy", _BadMask(TicTacToeEnv()), **SMALL)
    with pytest.raises(ValueError, match=r"action_masks\(\) gave a legal mask of shape \(1, 10\); .*Discrete\(9\)"):
        model.learn(10)
    obs, _ = TicTacToeEnv().reset(seed=0)
    with pytest.raises(ValueError, match=r"predict\(action_masks=...\) gave a legal mask of shape \(1, 8\)"):
        model.predict(obs, action_masks=np.ones(8, bool))
    with pytest.raises(ValueError, match=r"no legal action for env\(s\) \[0\]"):
        model.predict(obs, action_masks=np.zeros(9, bool))


def _all_positions() -> list[tuple[int, ...]]:
    """Every non-terminal tic-tac-toe position reachable from the empty board (4,520)."""
    from gym_planning.envs.tictactoe import EMPTY, player_to_move, winner

    seen, stack = set(), [(EMPTY,) * 9]
    while stack:
        board = stack.pop()
        if board in seen or winner(board) != EMPTY or EMPTY not in board:
            continue
        seen.add(board)
        player = player_to_move(board)
        stack += [board[:c] + (player,) + board[c + 1 :] for c in range(9) if board[c] == EMPTY]
    return sorted(seen)


def test_short_self_play_learns_values_from_the_player_to_move_view():
    """After ~1,200 self-play steps (~150 games, ~30 s) the value head correlates with the exact minimax value
    (for the player to move) over all 4,520 positions; mixing both players' views would give no correlation,
    and a flipped view a negative one. (Never losing takes far longer: ``python -m benchmarks.selfplay``.)"""
    from gym_planning.envs.tictactoe import solve

    positions = _all_positions()
    assert len(positions) == 4520
    env = TicTacToeEnv()
    env.reset(seed=0)
    observations = []
    for board in positions:
        env.set_state(np.array(board))
        observations.append(env._observation())
    exact = np.array([solve(board) for board in positions], np.float64)
    model = MuZero(
        "MlpPolicy", make_vec_env(TicTacToeEnv, n_envs=8, seed=0), seed=0, search="gumbel",
        max_num_considered_actions=9, num_simulations=16, discount=1.0, td_steps=9, num_unroll_steps=3,
        batch_size=64, learning_starts=400, replay_ratio=0.5, reanalyse_fraction=0.0, value_support_size=5,
        value_loss_weight=1.0, learning_rate=3e-3, policy_kwargs=dict(network_kwargs=dict(latent_dim=64)),
    )  # fmt: skip
    model.learn(1_200)
    values = model.policy.network.root(np.stack(observations)).value.detach().numpy()
    assert np.corrcoef(values, exact)[0, 1] > 0.15


class _Player:
    """A ``predict``-compatible tic-tac-toe player: perfect (first optimal move) or naive (first empty cell)."""

    def __init__(self, perfect: bool):
        self.perfect = perfect

    def predict(self, observations, action_masks, deterministic):
        from gym_planning.envs.tictactoe import EMPTY, X, optimal_moves

        actions = []
        for obs, mask in zip(observations, action_masks):
            to_play = X if obs[2, 0, 0] else 1 - X
            board = np.where(obs[0].reshape(-1) > 0, to_play, np.where(obs[1].reshape(-1) > 0, 1 - to_play, EMPTY))
            actions.append(optimal_moves(board)[0] if self.perfect else int(np.flatnonzero(mask)[0]))
        return np.array(actions), None


def test_exhaustive_check_finds_the_losses_of_a_naive_player_and_none_of_a_perfect_one():
    from benchmarks.selfplay import never_loses

    for agent in (0, 1):
        perfect = never_loses(_Player(perfect=True), agent)
        assert perfect["lost"] == 0 and perfect["value_lost"] == 0 and perfect["positions"] > 10
        naive = never_loses(_Player(perfect=False), agent)
        assert naive["lost"] > 0 and naive["value_lost"] > 0
