"""Minipacman: ghost rules on hand-built positions, events and level ends, mazes, splits, seeding, snapshots."""

from __future__ import annotations

import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gym_planning  # noqa: F401  (registers the ids)
from gym_planning.envs import _minipacman_core as core
from gym_planning.envs._minipacman_maze import generate_maze
from gym_planning.envs._numba_rng import level_seed, new_rng
from gym_planning.envs.minipacman import TASKS, MinipacmanEnv, MinipacmanState, MinipacmanTask, MinipacmanVectorEnv

RIGHT, UP, LEFT, DOWN = 0, 1, 2, 3  # ghost directions; action = direction + 1


def _grid(text: str) -> np.ndarray:
    return np.array([[1 if ch == "#" else 0 for ch in row] for row in text.strip().splitlines()], dtype=np.uint8)


CROSS = _grid("#####\n##.##\n#...#\n##.##\n#####")
CORRIDOR = _grid("#####\n#...#\n#####")
CORNER = _grid("####\n#..#\n##.#\n####")
# Two rooms that never meet: Pacman in the top corridor, ghosts in the bottom one. Wide enough that a new
# level's ghosts start outside the safe square, at least 5 columns from Pacman.
TWO_ROOMS = _grid("#" * 15 + "\n#" + "." * 13 + "#\n" + "#" * 15 + "\n#" + "." * 13 + "#\n" + "#" * 15)


def _move(walls, row, col, direction, pacman, powered=False, stochasticity=0.0, seed=0):
    ghost = np.array([row, col, direction], dtype=np.int64)
    core.move_ghost(walls, ghost, pacman[0], pacman[1], powered, stochasticity, new_rng(seed))
    return tuple(int(x) for x in ghost)


def test_ghost_at_a_junction_chases_pacman_without_reversing():
    assert _move(CROSS, 2, 2, RIGHT, pacman=(1, 2)) == (1, 2, UP)
    assert _move(CROSS, 2, 2, RIGHT, pacman=(3, 2)) == (3, 2, DOWN)
    # Pacman straight behind: reversing is not allowed; up and down tie, and the first (up) wins.
    assert _move(CROSS, 2, 2, RIGHT, pacman=(2, 1)) == (1, 2, UP)
    # Diagonal: right and down both point at Pacman with equal weight; right comes first.
    assert _move(CROSS, 2, 2, DOWN, pacman=(3, 3)) == (2, 3, RIGHT)


def test_powered_pacman_makes_ghosts_flee_at_junctions():
    assert _move(CROSS, 2, 2, RIGHT, pacman=(1, 2), powered=True) == (3, 2, DOWN)
    assert _move(CROSS, 2, 2, UP, pacman=(2, 3), powered=True) == (2, 1, LEFT)


def test_ghost_on_pacman_keeps_its_direction_at_a_junction():
    assert _move(CROSS, 2, 2, DOWN, pacman=(2, 2)) == (3, 2, DOWN)


def test_dead_ends_corridors_and_corners():
    assert _move(CORRIDOR, 1, 1, LEFT, pacman=(1, 1)) == (1, 2, RIGHT)  # dead end: the only exit
    assert _move(CORRIDOR, 1, 2, RIGHT, pacman=(1, 1)) == (1, 3, RIGHT)  # corridor: keeps going, away from Pacman
    assert _move(CORRIDOR, 1, 2, LEFT, pacman=(1, 3)) == (1, 1, LEFT)
    assert _move(CORNER, 1, 2, RIGHT, pacman=(1, 1)) == (2, 2, DOWN)  # corner: turns, never reverses


def test_random_exits_at_junctions_never_include_the_reverse():
    moves = {_move(CROSS, 2, 2, RIGHT, pacman=(1, 2), stochasticity=1.0, seed=s)[2] for s in range(60)}
    assert moves == {RIGHT, UP, DOWN}


def test_reward_tables_equal_the_documented_presets():
    # REFERENCES §2.3 (DeepMind PillEater): step, food, pill, eat ghost, killed, level-end rule.
    expected = {
        "regular": (0, 1, 2, 5, 0, True, False, False, -1),
        "avoid": (0.1, -0.1, -5, -10, -20, True, False, False, 128),
        "hunt": (0, 0, 1, 10, -20, False, False, True, -1),
        "ambush": (0, -0.1, 0, 10, -20, False, False, True, -1),
        "rush": (0, -0.1, 10, 0, 0, False, True, False, -1),
    }
    assert {mode: tuple(task) for mode, task in TASKS.items()} == expected
    for mode, task in TASKS.items():
        assert MinipacmanEnv(mode=mode).task == task


def _env_with(maze, mode="regular", task=None, pacman=(1, 1), ghosts=((3, 5, LEFT),), pills=((3, 1),), power=0, food=None,
              max_steps=3000):  # fmt: skip
    """An env whose game is set by hand: positions, ghosts ``(row, col, dir)``, live pills, power, food."""
    env = MinipacmanEnv(maze=maze, mode=mode, task=task, max_steps=max_steps)
    env.reset(seed=0)
    s = env.get_state()
    s.food[:] = (1 - maze) if food is None else food
    s.ghosts[: len(ghosts)] = ghosts
    s.pills[: len(pills)] = pills
    s.scalars[[core.PAC_ROW, core.PAC_COL]] = pacman
    s.scalars[core.NUM_GHOSTS], s.scalars[core.NUM_PILLS], s.scalars[core.POWER] = len(ghosts), len(pills), power
    s.scalars[core.NUM_FOOD] = s.food.sum()
    env.set_state(s)
    return env


def test_walking_into_a_ghost_kills_pacman():
    env = _env_with(TWO_ROOMS, mode="hunt", pacman=(1, 1), ghosts=((1, 2, RIGHT),))
    _, reward, terminated, truncated, _ = env.step(1)  # right, onto the ghost
    assert (reward, terminated, truncated) == (-20.0, True, False)


def test_powered_pacman_eats_the_last_ghost_and_hunt_starts_the_next_level():
    env = _env_with(TWO_ROOMS, mode="hunt", pacman=(1, 1), ghosts=((1, 2, RIGHT),), power=5)
    _, reward, terminated, _, _ = env.step(1)
    assert (reward, terminated) == (10.0, False)
    assert env.level == 2 and env._scalars[core.NUM_GHOSTS] == 1 and env._scalars[core.POWER] == 0
    assert env._scalars[core.NUM_FOOD] == (TWO_ROOMS == 0).sum() and env._scalars[core.NUM_PILLS] == 2


def test_pill_and_food_rewards_and_power_countdown():
    env = _env_with(TWO_ROOMS, pacman=(1, 1), ghosts=((3, 5, LEFT),), pills=((1, 2),))
    _, reward, *_ = env.step(1)  # regular: food +1 and pill +2 on the same cell
    assert reward == 3.0 and env._scalars[core.POWER] == core.PILL_DURATION and env._scalars[core.NUM_PILLS] == 0
    obs, reward, *_ = env.step(0)  # food here is already eaten
    assert reward == 0.0 and env._scalars[core.POWER] == core.PILL_DURATION - 1
    ghost = env._ghosts[0]
    assert tuple(obs[ghost[0], ghost[1]]) == (255, round(255 * 19 / 20), 0)  # ghost turns yellow while edible


def test_regular_level_ends_when_all_food_is_eaten():
    food = np.zeros_like(TWO_ROOMS)
    food[1, 2] = 1
    env = _env_with(TWO_ROOMS, pacman=(1, 1), food=food, pills=((3, 1),))
    _, reward, terminated, _, _ = env.step(1)
    assert (reward, terminated, env.level) == (1.0, False, 2)


def test_rush_level_ends_with_the_last_pill():
    env = _env_with(TWO_ROOMS, mode="rush", pacman=(1, 1), pills=((1, 2),))
    _, reward, *_ = env.step(1)
    assert reward == pytest.approx(10.0 - 0.1) and env.level == 2


def test_avoid_level_timer_and_custom_task():
    env = _env_with(TWO_ROOMS, mode="avoid", pacman=(1, 1), ghosts=((3, 3, LEFT),))
    for step in range(1, 129):
        _, reward, terminated, _, _ = env.step(0)
        assert not terminated and env.level == (2 if step == 128 else 1)
    custom = MinipacmanTask(-1.0, 0.0, 0.0, 0.0, 0.0, False, False, False, 3)
    env = _env_with(TWO_ROOMS, task=custom, pacman=(1, 1), ghosts=((3, 3, LEFT),))
    rewards = [env.step(0)[1] for _ in range(3)]
    assert rewards == [-1.0] * 3 and env.level == 2


def test_frame_cap_truncates():
    env = _env_with(TWO_ROOMS, pacman=(1, 1), ghosts=((3, 5, LEFT),), max_steps=4)
    flags = [env.step(0)[2:4] for _ in range(4)]
    assert flags == [(False, False)] * 3 + [(False, True)]


@pytest.mark.parametrize("shape", [(15, 19), (15, 17), (7, 9), (11, 11)])
def test_generated_mazes_are_connected_symmetric_corridors_without_dead_ends(shape):
    for seed in range(25):
        walls = np.ones(shape, dtype=np.uint8)
        generate_maze(walls, new_rng(seed))
        free = np.argwhere(walls == 0)
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        assert np.array_equal(walls, walls[:, ::-1]), "left-right symmetric like the original map"
        assert not (walls[:-1, :-1] == 0).__and__(walls[1:, :-1] == 0).__and__(walls[:-1, 1:] == 0).__and__(
            walls[1:, 1:] == 0).any(), "corridors are one cell wide"  # fmt: skip
        exits = {
            tuple(c): sum(walls[c[0] + dr, c[1] + dc] == 0 for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))) for c in free
        }
        assert min(exits.values()) >= 2, "no dead ends"
        seen, queue = {tuple(free[0])}, deque([tuple(free[0])])
        while queue:
            r, c = queue.popleft()
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                if walls[r + dr, c + dc] == 0 and (r + dr, c + dc) not in seen:
                    seen.add((r + dr, c + dc))
                    queue.append((r + dr, c + dc))
        assert len(seen) == len(free), f"maze {shape} seed {seed} is not connected"


def test_train_and_test_mazes_are_disjoint_and_num_mazes_restricts_play():
    seeds = {split: {int(level_seed(i, split, 0x9AC3A2)) for i in range(1000)} for split in (0, 1)}
    assert not seeds[0] & seeds[1]
    mazes = {}
    for split in ("train", "test"):
        env = MinipacmanEnv(num_mazes=30, split=split)
        mazes[split] = set()
        for i in range(30):
            env.reset(options={"maze_index": i})
            mazes[split].add(env._walls.tobytes())
        assert {env.reset(seed=s)[1]["maze_index"] for s in range(40)} <= set(range(30))
    assert len(mazes["train"]) == 30 and not mazes["train"] & mazes["test"]


@pytest.mark.parametrize("observation_type", ["rgb", "planes"])
def test_check_env_passes_without_warnings(observation_type):
    env = gym.make("gym_planning:gym_planning/Minipacman-v0", observation_type=observation_type, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=1)
    u = env.unwrapped
    if observation_type == "planes":
        assert obs.shape == (15, 19, 6) and np.array_equal(obs[..., core.WALLS_PLANE], u._walls)
        assert obs[u._scalars[0], u._scalars[1], core.PACMAN_PLANE] == 1 and obs[..., core.PACMAN_PLANE].sum() == 1
    else:
        assert obs.shape == (15, 19, 3) and tuple(obs[u._scalars[0], u._scalars[1]]) == (0, 255, 0)
    assert env.render().shape == (15 * 16, 19 * 16, 3)


def _rollout(env, seed, actions):
    """Observations and rewards of a run of ``actions`` (resetting after each episode end)."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(int(a))
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            observations.append(env.reset()[0])
    return np.stack(observations), np.array(rewards)


def test_reset_seed_reproduces_episodes_including_ghost_moves():
    actions = np.random.default_rng(0).integers(0, 5, size=300)
    (obs1, rew1), (obs2, rew2) = _rollout(MinipacmanEnv(), 7, actions), _rollout(MinipacmanEnv(), 7, actions)
    assert np.array_equal(obs1, obs2) and np.array_equal(rew1, rew2)
    obs3, _ = _rollout(MinipacmanEnv(), 8, actions)
    assert not np.array_equal(obs1[0], obs3[0])


def test_snapshot_restores_and_replays_identically():
    env = MinipacmanEnv(mode="avoid")
    env.reset(seed=3)
    for _ in range(5):
        env.step(0)
    state = env.get_state()
    actions = np.random.default_rng(4).integers(0, 5, size=60)
    first = [env.step(int(a)) for a in actions]
    env.set_state(state)
    second = [env.step(int(a)) for a in actions]
    for (o1, r1, t1, u1, _), (o2, r2, t2, u2, _) in zip(first, second):
        assert np.array_equal(o1, o2) and (r1, t1, u1) == (r2, t2, u2)


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="mode"):
        MinipacmanEnv(mode="chase")
    with pytest.raises(TypeError, match="MinipacmanTask"):
        MinipacmanEnv(task=(0, 1, 2))
    with pytest.raises(ValueError, match="maze_shape"):
        MinipacmanEnv(maze_shape=(14, 19))
    with pytest.raises(ValueError, match="wall border"):
        MinipacmanEnv(maze=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="not both"):
        MinipacmanEnv(maze=TWO_ROOMS, num_mazes=3)
    env = MinipacmanEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(5)


def test_vector_env_steps_each_game_like_the_single_env_and_autoresets():
    vec = MinipacmanVectorEnv(3, mode="hunt", num_mazes=5, max_steps=40)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 15, 19, 3)
    single = MinipacmanEnv(mode="hunt", max_steps=40)
    single.reset(seed=0)
    i = 1
    single.set_state(MinipacmanState(vec._walls[i].copy(), vec._food[i].copy(), vec._pills[i].copy(), vec._ghosts[i].copy(),
                                     vec._scalars[i].copy(), vec._rngs[i].copy(), single.np_random.bit_generator.state))  # fmt: skip
    actions = np.random.default_rng(5).integers(0, 5, size=(40, 3))
    for batch in actions:
        obs, rewards, terminated, truncated, _ = vec.step(batch)
        s_obs, s_reward, s_term, s_trunc, _ = single.step(int(batch[i]))
        assert np.array_equal(obs[i], s_obs) and rewards[i] == s_reward and (terminated[i], truncated[i]) == (s_term, s_trunc)
        if s_term:
            break
    ended = terminated | truncated
    assert ended.any()
    _, rewards, terminated, truncated, _ = vec.step(np.zeros(3, dtype=np.int64))
    assert (rewards[ended] == 0).all() and not (terminated[ended] | truncated[ended]).any()


def test_vector_env_reset_seed_is_reproducible():
    runs = []
    for _ in range(2):
        vec = MinipacmanVectorEnv(3, mode="avoid")
        obs, _ = vec.reset(seed=11)
        steps = [vec.step(a)[:2] for a in np.random.default_rng(0).integers(0, 5, size=(60, 3))]
        runs.append((obs, steps))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(runs[0][1], runs[1][1]))
