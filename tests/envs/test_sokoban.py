"""Sokoban: generated levels are solvable, rules and rewards as gym-sokoban, splits, seeding, snapshots."""

from __future__ import annotations

import heapq
import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gym_planning  # noqa: F401  (registers the ids)
from gym_planning.envs import _sokoban_core as core
from gym_planning.envs._numba_rng import level_seed
from gym_planning.envs.sokoban import SokobanEnv, SokobanState, SokobanVectorEnv

MOVES = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}  # push-or-move up, down, left, right


def _solve(room: np.ndarray, boxes: np.ndarray, player: tuple[int, int], max_states: int = 400_000) -> list[int] | None:
    """Breadth-first search over (player, boxes) with the four push-or-move actions; the shortest plan or None."""
    targets = frozenset(zip(*np.nonzero(room == core.TARGET)))
    start = (player, frozenset(zip(*np.nonzero(boxes))))
    parents = {start: None}
    queue = deque([start])
    while queue and len(parents) < max_states:
        state = queue.popleft()
        (row, col), box_set = state
        if box_set == targets:
            plan = []
            while parents[state] is not None:
                state, action = parents[state]
                plan.append(action)
            return plan[::-1]
        for action, (dr, dc) in MOVES.items():
            nxt = (row + dr, col + dc)
            if room[nxt] == core.WALL:
                continue
            new_boxes = box_set
            if nxt in box_set:
                beyond = (row + 2 * dr, col + 2 * dc)
                if room[beyond] == core.WALL or beyond in box_set:
                    continue
                new_boxes = (box_set - {nxt}) | {beyond}
            child = (nxt, new_boxes)
            if child not in parents:
                parents[child] = (state, action)
                queue.append(child)
    return None


def _walk(room, box_set, start, goal) -> list[int] | None:
    """Shortest move-only path (actions 1-4) from ``start`` to ``goal`` around walls and boxes."""
    parents = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            path = []
            while parents[cell] is not None:
                cell, action = parents[cell]
                path.append(action)
            return path[::-1]
        for action, (dr, dc) in MOVES.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if room[nxt] != core.WALL and nxt not in box_set and nxt not in parents:
                parents[nxt] = (cell, action)
                queue.append(nxt)
    return None


def _solve_by_pushes(room: np.ndarray, boxes: np.ndarray, player: tuple[int, int], max_states: int = 200_000):
    """Greedy best-first search over pushes (distance of boxes to targets first); a full action plan or None."""
    targets = list(zip(*np.nonzero(room == core.TARGET)))
    start = (player, frozenset(zip(*np.nonzero(boxes))))
    seen, frontier, counter = {start: []}, [], 0
    heapq.heappush(frontier, (0, counter, start))
    while frontier and len(seen) < max_states:
        _, _, state = heapq.heappop(frontier)
        player, box_set = state
        if box_set == frozenset(targets):
            return seen[state]
        for box in box_set:
            for action, (dr, dc) in MOVES.items():
                behind, ahead = (box[0] - dr, box[1] - dc), (box[0] + dr, box[1] + dc)
                if room[ahead] == core.WALL or ahead in box_set or room[behind] == core.WALL or behind in box_set:
                    continue
                path = _walk(room, box_set, player, behind)
                if path is None:
                    continue
                child = (box, (box_set - {box}) | {ahead})
                if child not in seen:
                    seen[child] = seen[state] + path + [action]
                    cost = sum(min(abs(b[0] - t[0]) + abs(b[1] - t[1]) for t in targets) for b in child[1])
                    counter += 1
                    heapq.heappush(frontier, (cost, counter, child))
    return None


def _write_level(tmp_path, text: str):
    (tmp_path / "000.txt").write_text(text)
    return tmp_path


@pytest.mark.parametrize("seed", range(20))
def test_generated_small_levels_are_solved_by_bfs_and_replayed_in_the_env(seed):
    env = SokobanEnv(dim_room=(7, 7), num_boxes=2, max_steps=500)
    env.reset(seed=seed)
    room, boxes, scalars = env._room.copy(), env._boxes.copy(), env._scalars
    assert boxes.sum() == 2 and (room == core.TARGET).sum() == 2
    assert not (boxes & (room == core.TARGET)).any(), "levels start with every box off its target"
    plan = _solve(room, boxes, (int(scalars[0]), int(scalars[1])))
    assert plan, f"level of seed {seed} has no solution"
    rewards, terminated = [], False
    for action in plan:
        _, reward, terminated, _, _ = env.step(action)
        rewards.append(reward)
    assert terminated and rewards[-1] == pytest.approx(-0.1 + 1 + 10)
    assert sum(rewards) == pytest.approx(-0.1 * len(plan) + 2 + 10)


def test_default_size_levels_are_solved_by_search_and_replayed_in_the_env():
    env = SokobanEnv()
    for seed in range(5):
        env.reset(seed=seed)
        assert env._boxes.sum() == 4
        plan = _solve_by_pushes(env._room, env._boxes, (int(env._scalars[0]), int(env._scalars[1])))
        assert plan, f"level of seed {seed} unsolved"
        terminated = False
        for action in plan:
            terminated = env.step(action)[2]
        assert terminated


def test_rewards_pushes_walls_and_truncation_on_a_hand_built_level(tmp_path):
    # Player at (2, 1); boxes at (2, 2) and (3, 3); targets at (2, 3) and (3, 4).
    level = "######\n#    #\n#@$. #\n#  $.#\n######\n"
    env = SokobanEnv(levels_dir=_write_level(tmp_path, "; 0\n" + level), max_steps=6)
    obs, info = env.reset(seed=0)
    assert info["level_index"] == 0 and obs.shape == (5, 6, 3)
    assert tuple(obs[2, 1]) == tuple(core.COLOURS[core.PLAYER])
    assert env.step(3)[1:4] == (pytest.approx(-0.1), False, False)  # push left into a wall: nothing moves
    assert env.step(8)[1] == pytest.approx(-0.1) and env._scalars[1] == 1  # move right is blocked by the box
    _, reward, terminated, truncated, _ = env.step(4)  # push the box onto (2, 3)
    assert (reward, terminated, truncated) == (pytest.approx(0.9), False, False)
    _, reward, *_ = env.step(4)  # and off it again, onto (2, 4)
    assert reward == pytest.approx(-1.1)
    assert env.step(0)[1:4] == (pytest.approx(-0.1), False, False)
    _, reward, terminated, truncated, _ = env.step(0)  # sixth step: truncated, not terminated
    assert (terminated, truncated) == (False, True)


def test_last_box_gives_the_solved_bonus_and_terminates(tmp_path):
    env = SokobanEnv(levels_dir=_write_level(tmp_path, "#####\n#@$.#\n#####\n"))
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(4)
    assert (reward, terminated, truncated) == (pytest.approx(10.9), True, False)


def test_boxoban_files_are_parsed_and_bad_files_rejected(tmp_path):
    text = "; 0\n#####\n#@$.#\n#####\n; 1\n######\n#+ *$#\n#    #\n######\n"
    env = SokobanEnv(levels_dir=_write_level(tmp_path, text))
    assert env.observation_space.shape == (4, 6, 3) and env.levels.num_levels == 2
    env.reset(options={"level_index": 1})
    assert env._boxes.sum() == 2 and env._scalars[core.ON_TARGET] == 1 and tuple(env._scalars[:2]) == (1, 1)
    with pytest.raises(ValueError, match="levels_dir"):
        SokobanEnv(levels_dir=tmp_path / "missing")
    (tmp_path / "000.txt").write_text("#####\n# $.#\n#####\n")
    with pytest.raises(ValueError, match="one player"):
        SokobanEnv(levels_dir=tmp_path)


@pytest.mark.parametrize("observation_type", ["rgb", "planes"])
def test_check_env_passes_without_warnings(observation_type):
    env = gym.make("gym_planning:gym_planning/Sokoban-v0", observation_type=observation_type, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    if observation_type == "planes":
        assert obs.shape == (10, 10, 7) and (obs.sum(axis=-1) == 1).all()
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8


def test_reset_seed_reproduces_levels_and_episodes():
    actions = np.random.default_rng(0).integers(0, 9, size=60)
    runs = []
    for _ in range(2):
        env = SokobanEnv()
        obs, _ = env.reset(seed=123)
        runs.append([obs] + [env.step(int(a))[:2] for a in actions])
    assert np.array_equal(runs[0][0], runs[1][0])
    for (o1, r1), (o2, r2) in zip(runs[0][1:], runs[1][1:]):
        assert np.array_equal(o1, o2) and r1 == r2
    env = SokobanEnv()
    assert not np.array_equal(env.reset(seed=124)[0], runs[0][0])


def test_train_and_test_splits_are_disjoint():
    seeds = {split: {int(level_seed(i, split, 0x50C0BA4)) for i in range(1000)} for split in (0, 1)}
    assert len(seeds[0]) == len(seeds[1]) == 1000 and not seeds[0] & seeds[1]
    levels = {}
    for split in ("train", "test"):
        env = SokobanEnv(dim_room=(7, 7), num_boxes=2, num_levels=15, split=split)
        levels[split] = {env.reset(options={"level_index": i})[0].tobytes() for i in range(15)}
        drawn = {env.reset(seed=s)[1]["level_index"] for s in range(60)}
        assert drawn <= set(range(15)) and len(drawn) > 5
    assert len(levels["train"]) == 15 and not levels["train"] & levels["test"]


def test_snapshot_restores_and_replays_identically():
    env = SokobanEnv()
    env.reset(seed=5)
    for a in (1, 2, 3):
        env.step(a)
    state = env.get_state()
    actions = np.random.default_rng(1).integers(0, 9, size=40)
    first = [env.step(int(a)) for a in actions]
    env.set_state(state)
    second = [env.step(int(a)) for a in actions]
    for (o1, r1, t1, u1, _), (o2, r2, t2, u2, _) in zip(first, second):
        assert np.array_equal(o1, o2) and (r1, t1, u1) == (r2, t2, u2)
    with pytest.raises(TypeError, match="SokobanState"):
        env.set_state(("not", "a", "state"))


def test_bad_arguments_raise_one_clear_error():
    env = SokobanEnv(dim_room=(7, 7), num_boxes=2)
    env.reset(seed=0)
    assert env.step(np.int64(5))[1] == env.step(np.array(6))[1] == pytest.approx(-0.1)  # numpy ints are fine
    with pytest.raises(ValueError, match="action"):
        env.step(9)
    with pytest.raises(ValueError, match="action"):
        env.step(1.0)
    with pytest.raises(ValueError, match="split"):
        SokobanEnv(split="valid")
    with pytest.raises(ValueError, match="observation_type"):
        SokobanEnv(observation_type="pixels")
    with pytest.raises(ValueError, match="num_levels"):
        SokobanEnv(num_levels=0)
    with pytest.raises(RuntimeError, match="fewer boxes"):
        SokobanEnv(dim_room=(4, 4), num_boxes=6).reset(seed=0)


def test_vector_env_steps_each_game_like_the_single_env_and_autoresets():
    vec = SokobanVectorEnv(4, dim_room=(7, 7), num_boxes=2, num_levels=10, max_steps=20)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, 7, 7, 3) and vec.levels.bank_ready.sum() >= 1
    single = SokobanEnv(dim_room=(7, 7), num_boxes=2, max_steps=20)
    single.reset(seed=0)
    single.set_state(SokobanState(vec._rooms[2].copy(), vec._boxes[2].copy(), vec._scalars[2].copy(),
                                  single.np_random.bit_generator.state))  # fmt: skip
    actions = np.random.default_rng(2).integers(0, 9, size=(20, 4))
    for batch in actions:
        obs, rewards, terminated, truncated, _ = vec.step(batch)
        s_obs, s_reward, s_term, s_trunc, _ = single.step(int(batch[2]))
        assert np.array_equal(obs[2], s_obs) and rewards[2] == pytest.approx(s_reward)
        if s_term:
            break
    assert truncated.all() or terminated.any()
    ended = terminated | truncated
    obs, rewards, terminated, truncated, _ = vec.step(np.zeros(4, dtype=np.int64))
    assert (rewards[ended] == 0).all() and not (terminated[ended] | truncated[ended]).any()
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros(3, dtype=np.int64))


def test_record_video_writes_a_file(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(SokobanEnv(render_mode="rgb_array", dim_room=(7, 7), num_boxes=2, max_steps=10),
                                   str(tmp_path / "videos"), disable_logger=True)  # fmt: skip
    env.reset(seed=0)
    for _ in range(10):
        env.step(int(env.action_space.sample()))
    env.close()
    assert list((tmp_path / "videos").glob("*.mp4"))


def test_vector_env_reset_seed_is_reproducible():
    runs = []
    for _ in range(2):
        vec = SokobanVectorEnv(3, dim_room=(7, 7), num_boxes=2)
        obs, _ = vec.reset(seed=11)
        steps = [vec.step(a)[:2] for a in np.random.default_rng(0).integers(0, 9, size=(30, 3))]
        runs.append((obs, steps))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(runs[0][1], runs[1][1]))
