"""Go on OpenSpiel: rules and scoring on hand-built positions, masks, seeding, opponents (tests/models/test_go.py: the
perfect model; tests/agents/test_go_opponent.py: the search opponent)."""

from __future__ import annotations

import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pyspiel")

from gymnasium.error import ResetNeeded  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import gym_planning  # noqa: E402, F401  (registers the ids)
from gym_planning.envs import go  # noqa: E402
from gym_planning.envs.go import (  # noqa: E402
    GoEnv,
    move_from_string,
    move_to_string,
)

PASS = 81


def play(env: GoEnv, moves: list[str]) -> tuple[float, bool, dict]:
    """Play Go coordinates in turn (two-player env); return the last step's reward, terminated and info."""
    reward, terminated, info = 0.0, False, {}
    for move in moves:
        _, reward, terminated, _, info = env.step(move_from_string(move))
    return reward, terminated, info


def walls(black_file: str, white_file: str) -> list[str]:
    """Black fills one file, white another (alternating, black first); 18 moves, black to move next."""
    moves = []
    for rank in range(1, 10):
        moves += [f"{black_file}{rank}", f"{white_file}{rank}"]
    return moves


def tromp_taylor_score(black: np.ndarray, white: np.ndarray, komi: float) -> float:
    """Independent oracle: black's area (stones + empty regions reaching only black) minus white's, minus komi."""
    size = black.shape[0]
    seen = np.zeros_like(black)
    score = float(black.sum()) - float(white.sum())
    for start in zip(*np.nonzero(~(black | white))):
        if seen[start]:
            continue
        stack, region, borders = [start], 0, set()
        seen[start] = True
        while stack:
            row, col = stack.pop()
            region += 1
            for r, c in ((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)):
                if 0 <= r < size and 0 <= c < size:
                    if black[r, c]:
                        borders.add("black")
                    elif white[r, c]:
                        borders.add("white")
                    elif not seen[r, c]:
                        seen[r, c] = True
                        stack.append((r, c))
        score += region if borders == {"black"} else -region if borders == {"white"} else 0
    return score - komi


def stones(env: GoEnv) -> tuple[np.ndarray, np.ndarray]:
    """Black and white stones ``[N, N]`` bool (row 0 = rank 1) from the env's observation planes."""
    planes = env._board_planes()
    return planes[0] > 0, planes[1] > 0


# -- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "black_file, white_file, komi, expected_score",
    [
        ("e", "f", 7.5, 45 - 36 - 7.5),  # black owns files a-e, white f-j: black wins by 1.5
        ("e", "f", 9.5, 45 - 36 - 9.5),  # the same board loses by 0.5 with a bigger komi
        ("d", "f", 7.5, 36 - 36 - 7.5),  # file e touches both colours: neutral, komi decides
    ],
)
def test_tromp_taylor_score_with_komi_decides_the_winner(black_file, white_file, komi, expected_score):
    env = GoEnv(komi=komi)
    env.reset(seed=0)
    reward, terminated, info = play(env, walls(black_file, white_file) + ["pass"])
    assert (reward, terminated, info["to_play"]) == (0.0, False, go.WHITE)
    reward, terminated, info = play(env, ["pass"])  # white's pass ends the game; the reward is white's
    assert terminated
    assert tromp_taylor_score(*stones(env), komi) == pytest.approx(expected_score)
    black_wins = expected_score > 0
    assert info["winner"] == (go.BLACK if black_wins else go.WHITE)
    assert reward == (-1.0 if black_wins else 1.0)


def test_captured_stones_leave_the_board_and_count_for_the_captor():
    env = GoEnv()
    env.reset(seed=0)
    play(env, ["b1", "a1", "j9", "pass", "a2"])  # white a1 has no liberty left: captured
    black, white = stones(env)
    assert not white.any() and black.sum() == 3
    _, terminated, info = play(env, ["pass", "pass"])
    assert terminated and info["winner"] == go.BLACK  # the whole board reaches only black: 81 - 7.5


def test_openspiel_returns_agree_with_the_oracle_on_random_games():
    env = GoEnv()
    rng = np.random.default_rng(0)
    for episode in range(20):
        _, info = env.reset(seed=episode)
        terminated = False
        while not terminated:
            _, reward, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["legal_mask"]))))
        if info["winner"] == -1:  # a repeated position (superko) ends OpenSpiel's game as a draw
            continue
        score = tromp_taylor_score(*stones(env), 7.5)
        assert info["winner"] == (go.BLACK if score > 0 else go.WHITE)


# -- rules and errors ----------------------------------------------------------------------------


def test_occupied_point_suicide_and_ko_are_rejected_with_the_move_named():
    env = GoEnv()
    env.reset(seed=0)
    play(env, ["e5"])
    with pytest.raises(ValueError, match=r"illegal move 40 \(e5\) for white"):
        env.step(move_from_string("e5"))

    env.reset(seed=0)
    play(env, ["e5", "a2", "e6", "b1"])
    assert not env.action_masks()[move_from_string("a1")]
    with pytest.raises(ValueError, match=r"\(a1\) for black"):
        env.step(move_from_string("a1"))  # suicide

    # Ko: black d2 captures white c2; white may not retake at once, but may after a move elsewhere.
    env.reset(seed=0)
    _, _, info = play(env, ["b2", "c2", "c1", "d1", "c3", "d3", "a9", "e2", "d2"])
    assert not stones(env)[1][1, 2] and not info["legal_mask"][move_from_string("c2")]
    with pytest.raises(ValueError, match=r"\(c2\) for white.*ko"):
        env.step(move_from_string("c2"))
    _, _, info = play(env, ["j9", "j8"])
    assert info["legal_mask"][move_from_string("c2")]


@pytest.mark.parametrize("action", [-1, 82, 1.5, "e5", None, True])
def test_actions_outside_the_space_raise_value_error(action):
    env = GoEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(action)


def test_step_before_reset_and_after_the_end_need_a_reset():
    env = GoEnv()
    with pytest.raises(ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    play(env, ["pass", "pass"])
    with pytest.raises(ResetNeeded):
        env.step(0)


def test_bad_constructor_arguments_raise_one_clear_error():
    with pytest.raises(TypeError, match="opponent must be"):
        GoEnv(opponent="strong")
    with pytest.raises(ValueError, match="agent_colour"):
        GoEnv(agent_colour="red")
    with pytest.raises(ValueError, match="board_size"):
        GoEnv(board_size=25)
    with pytest.raises(ValueError, match="not a point"):
        move_from_string("i5")


def test_missing_openspiel_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspiel", None)
    with pytest.raises(ImportError, match=r"gym-planning\[go\]"):
        go._pyspiel()


def test_move_strings_round_trip():
    assert [move_to_string(a) for a in (0, 8, 40, 80, 81)] == ["a1", "j1", "e5", "j9", "pass"]
    assert all(move_from_string(move_to_string(a)) == a for a in range(82))


# -- observations, masks, rendering ---------------------------------------------------------------


def test_observation_planes_are_from_the_view_of_the_player_to_move():
    env = GoEnv()
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 9, 9) and obs.dtype == np.float32
    assert obs[2].all() and obs[3].all() and info["to_play"] == go.BLACK
    env.step(move_from_string("e5"))  # black at row 4, col 4
    obs, _, _, _, info = env.step(move_from_string("d4"))  # white at row 3, col 3; black to move
    assert info["to_play"] == go.BLACK and obs[0, 4, 4] == 1 and obs[1, 3, 3] == 1 and obs[3].all()
    obs, *_ = env.step(PASS)  # white to move: own = white
    assert obs[0, 3, 3] == 1 and obs[1, 4, 4] == 1 and not obs[3].any()
    assert obs[:3].sum(axis=0).tolist() == np.ones((9, 9)).tolist() and obs[2].sum() == 79


def test_legal_mask_matches_openspiel_along_a_game():
    env = GoEnv()
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(120):
        state = env.get_state()
        assert np.flatnonzero(info["legal_mask"]).tolist() == state.legal_actions()
        assert np.array_equal(env.action_masks(), info["legal_mask"]) and info["legal_mask"].dtype == np.bool_
        assert info["to_play"] == state.current_player()
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["legal_mask"]))))
        assert not truncated
        if terminated:
            assert not info["legal_mask"].any()
            break


def test_render_modes_draw_the_board():
    env = GoEnv(render_mode="rgb_array")
    env.reset(seed=0)
    play(env, ["e5", "d4"])
    image = env.render()
    assert image.shape == (288, 288, 3) and image.dtype == np.uint8
    assert image[144, 144].max() < 60  # e5: black stone (rank 5 is the 5th row from the bottom)
    assert image[176, 112].min() > 200  # d4: white stone
    assert image[0, 0].tolist() == [220, 179, 92]  # board
    text = GoEnv(render_mode="ansi")
    text.reset(seed=0)
    play(text, ["e5"])
    assert "X" in text.render() and "white to play" in text.render()


def first_legal_move(state, rng) -> int:
    """An opponent as a plain function ``(state, rng) -> action``."""
    return state.legal_actions()[0]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"opponent": "random"}, {"opponent": first_legal_move}, {"render_mode": "rgb_array"}, {"render_mode": "ansi"}],
    ids=["two-player", "random", "function", "rgb", "ansi"],
)
def test_check_env_passes_without_warnings(kwargs):
    env = gym.make("gym_planning/Go9x9-v0", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


# -- seeding and snapshots ------------------------------------------------------------------------


def rollout_with_random_opponent(seed: int, agent_colour: str = "black") -> list:
    env = GoEnv(opponent="random", agent_colour=agent_colour)
    obs, info = env.reset(seed=seed)
    agent_rng = np.random.default_rng(0)
    trace = [obs]
    for _ in range(30):
        obs, reward, terminated, _, info = env.step(int(agent_rng.choice(np.flatnonzero(info["legal_mask"]))))
        trace += [obs, reward]
        if terminated:
            break
    return trace


def test_reset_seed_makes_games_with_the_random_opponent_reproducible():
    first, again, other = rollout_with_random_opponent(3), rollout_with_random_opponent(3), rollout_with_random_opponent(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again)) and len(first) == len(again)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_agent_as_white_sees_the_opponents_opening_move():
    env = GoEnv(opponent="random", agent_colour="white")
    obs, info = env.reset(seed=0)
    assert info["to_play"] == go.WHITE and obs[1].sum() == 1 and not obs[0].any()
    assert rollout_with_random_opponent(5, "white")[0].sum() > 0


def test_a_function_is_an_opponent_and_gets_the_envs_rng():
    seen = []

    def opponent(state, rng):
        seen.append(rng)
        return state.legal_actions()[0]  # the lowest free point

    env = GoEnv(opponent=opponent)
    env.reset(seed=0)
    env.step(move_from_string("e5"))
    black, white = stones(env)
    assert black[4, 4] and white[0, 0] and white.sum() == 1  # the reply a1 came from the function
    assert seen == [env.np_random]


def test_set_state_replays_exactly_and_snapshots_are_copies():
    env = GoEnv()
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(2)
    for _ in range(20):
        _, _, _, _, info = env.step(int(rng.choice(np.flatnonzero(info["legal_mask"]))))
    snapshot = env.get_state()
    moves = []
    for _ in range(15):
        moves.append(int(rng.choice(np.flatnonzero(info["legal_mask"]))))
        _, _, _, _, info = env.step(moves[-1])
    after = env.get_state()
    snapshot_text = str(snapshot)
    env.set_state(snapshot)
    assert str(snapshot) == snapshot_text  # the env plays on its own copy
    for move in moves:
        env.step(move)
    assert str(env.get_state()) == str(after) and env.get_state().history() == after.history()
    with pytest.raises(ValueError, match="state must be"):
        env.set_state(GoEnv(board_size=7).get_state())
    with pytest.raises(ValueError, match="white to move, but the agent plays black"):
        GoEnv(opponent="random").set_state(position_after(["e5"]))


def position_after(moves: list[str]):
    env = GoEnv()
    env.reset(seed=0)
    play(env, moves)
    return env.get_state()


def test_maskable_ppo_trains_and_acts_legally_through_action_masks():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = gym.make("gym_planning/Go9x9-v0", opponent="random")
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(64)
    obs, _ = env.reset(seed=1)
    for _ in range(10):
        mask = env.unwrapped.action_masks()
        action, _ = model.predict(obs, action_masks=mask, deterministic=True)
        assert mask[action]
        obs, _, terminated, _, _ = env.step(action)
        if terminated:
            break
