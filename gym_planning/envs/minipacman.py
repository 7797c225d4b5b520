"""Minipacman (the I2A game, Weber et al. 2017) as a fast Gymnasium environment with procedural mazes.

:class:`MinipacmanEnv` is one game (``gym_planning/Minipacman-v0``); :class:`MinipacmanVectorEnv` steps N
games in one compiled call. Game rules follow DeepMind's ``PillEater`` (REFERENCES §2.2) and live in
:mod:`gym_planning.envs._minipacman_core`; mazes come from :mod:`gym_planning.envs._minipacman_maze`.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_planning.envs import _minipacman_core as core
from gym_planning.envs._numba_rng import split_id as _split_id
from gym_planning.envs._state_checks import action_index, check_minipacman_state, set_generator_state
from gym_planning.envs._vector import NumbaVectorEnv

__all__ = ["ACTION_MEANINGS", "TASKS", "MinipacmanEnv", "MinipacmanState", "MinipacmanTask", "MinipacmanVectorEnv"]

ACTION_MEANINGS = ("stay", "right", "up", "left", "down")
OBSERVATION_TYPES = ("rgb", "planes")
_SALT = 0x9AC3A2  # separates Minipacman maze seeds from other games'
_UNLIMITED = 2**62  # maze indices drawn below this when the maze set is not restricted


class MinipacmanTask(NamedTuple):
    """A reward table and level-end rule; the five named variants are :data:`TASKS`.

    Rewards are per event; a new level (more, faster ghosts, fresh food and pills, same maze) starts when
    any enabled rule fires. ``level_steps=-1`` disables the step timer.
    """

    step_reward: float
    food_reward: float
    pill_reward: float
    ghost_reward: float
    death_reward: float
    end_on_food: bool
    end_on_pills: bool
    end_on_ghosts: bool
    level_steps: int

    def as_array(self) -> np.ndarray:
        """The ``float64 [9]`` layout the compiled step reads (indices in ``_minipacman_core``)."""
        return np.array(self, dtype=np.float64)


# DeepMind's PillEater tables (REFERENCES §2.3). Hunt and ambush use DeepMind's "no level timer", not the
# 80-step timer of the FlorianKlemt port.
REGULAR = MinipacmanTask(0.0, 1.0, 2.0, 5.0, 0.0, True, False, False, -1)
AVOID = MinipacmanTask(0.1, -0.1, -5.0, -10.0, -20.0, True, False, False, 128)
HUNT = MinipacmanTask(0.0, 0.0, 1.0, 10.0, -20.0, False, False, True, -1)
AMBUSH = MinipacmanTask(0.0, -0.1, 0.0, 10.0, -20.0, False, False, True, -1)
RUSH = MinipacmanTask(0.0, -0.1, 10.0, 0.0, 0.0, False, True, False, -1)
TASKS = {"regular": REGULAR, "avoid": AVOID, "hunt": HUNT, "ambush": AMBUSH, "rush": RUSH}


class MinipacmanState(NamedTuple):
    """A snapshot of one game for :meth:`MinipacmanEnv.set_state` (arrays are copies)."""

    walls: np.ndarray
    food: np.ndarray
    pills: np.ndarray
    ghosts: np.ndarray
    scalars: np.ndarray
    rng: np.ndarray
    np_random_state: Mapping[str, Any]


def _check_config(mode: str, task: MinipacmanTask | None, num_mazes: int | None, split: str, maze: np.ndarray | None,
                  maze_shape: tuple[int, int], observation_type: str,
                  max_steps: int) -> tuple[np.ndarray, int, np.ndarray, tuple[int, int], spaces.Box]:  # fmt: skip
    """Validates the shared constructor arguments; returns ``(task array, split id, fixed maze, shape, obs space)``."""
    if task is None:
        if mode not in TASKS:
            raise ValueError(f"mode must be one of {tuple(TASKS)}, got {mode!r}")
        task = TASKS[mode]
    elif not isinstance(task, MinipacmanTask):
        raise TypeError(f"task must be a MinipacmanTask, got {type(task).__name__}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if num_mazes is not None and not 1 <= num_mazes < _UNLIMITED:
        raise ValueError(f"num_mazes must be None or an int in [1, 2**62), got {num_mazes!r}")
    if maze is not None:
        if num_mazes is not None:
            raise ValueError("pass either maze (one fixed maze) or num_mazes, not both")
        fixed = np.asarray(maze, dtype=np.uint8)
        border = np.concatenate([fixed[0], fixed[-1], fixed[:, 0], fixed[:, -1]]) if fixed.ndim == 2 else fixed
        if fixed.ndim != 2 or fixed.max() > 1 or not border.all() or (fixed == 0).sum() < 2:
            raise ValueError("maze must be a 2-D array of 0 (free) and 1 (wall) with a wall border and >= 2 free cells")
        height, width = fixed.shape
    else:
        fixed = np.zeros((0, 0), dtype=np.uint8)
        if len(maze_shape) != 2 or min(maze_shape) < 5 or maze_shape[0] % 2 == 0 or maze_shape[1] % 2 == 0:
            raise ValueError(f"maze_shape must be (height, width), both odd and >= 5, got {maze_shape!r}")
        height, width = maze_shape
    if observation_type not in OBSERVATION_TYPES:
        raise ValueError(f"observation_type must be one of {OBSERVATION_TYPES}, got {observation_type!r}")
    channels, high = (3, 255) if observation_type == "rgb" else (core.NUM_PLANES, 1)
    space = spaces.Box(0, high, (height, width, channels), dtype=np.uint8)
    return task.as_array(), _split_id(split), fixed, (height, width), space


class MinipacmanEnv(gym.Env[np.ndarray, np.int64]):
    """Minipacman: eat food and pills, flee or hunt the ghosts, on procedurally generated 15x19 mazes.

    **Actions** ``Discrete(5)``: 0 stay, 1 right, 2 up, 3 left, 4 down (walls block).

    **Observation** ``uint8 [H, W, C]``, one cell per pixel. ``observation_type="rgb"``: C = 3, DeepMind's
    colours scaled to 0-255 (Pacman green, ghost red to yellow as it becomes edible, power pill cyan, food
    blue, wall white, empty black). ``"planes"``: C = 6 binary planes: walls, food, Pacman, ghost, edible
    ghost (ghosts while Pacman is powered), power pill.

    **Rules** (DeepMind's ``PillEater``, REFERENCES §2.2): food on every free cell, 2 power pills (20 steps of
    power), level ``k`` has ``1 + (k - 1) // 2`` ghosts (capped at 32) moving with probability
    ``0.5 + 0.1 (k - 1)`` per step (halved while powered), chasing Pacman at junctions (5 % random) or fleeing
    while he is powered. Touching a ghost kills Pacman unless powered, which eats the ghost instead.

    **Rewards and levels**: the task's table (``mode`` preset or a custom ``task``); the next level starts on
    the same maze when the task's rule fires. **Episode end**: ``terminated`` when Pacman is killed;
    ``truncated`` after ``max_steps`` steps (DeepMind's ``frame_cap``, 3000).

    **Mazes**: generated from a seed drawn from ``np_random``; ``num_mazes=N`` restricts play to mazes
    ``0..N-1`` of ``split`` ("train" or "test", never sharing a maze seed); ``maze`` fixes one wall layout
    (1 = wall). ``reset(options={"maze_index": k})`` plays maze k.

    :param render_mode: None or "rgb_array" (the RGB observation upscaled ``render_scale`` times).
    :param mode: "regular", "avoid", "hunt", "ambush" or "rush" (ignored when ``task`` is given).
    :param task: a custom :class:`MinipacmanTask`.
    :param num_mazes: size of the maze set, or None for a new maze at every reset.
    :param split: "train" or "test".
    :param maze: one fixed wall layout ``[H, W]`` instead of generated mazes.
    :param maze_shape: ``(height, width)`` of generated mazes, both odd.
    :param observation_type: "rgb" or "planes".
    :param max_steps: steps before truncation.
    :param render_scale: pixels per cell of rendered frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}
    observation_space: spaces.Box
    action_space: spaces.Discrete

    def __init__(self, render_mode: str | None = None, *, mode: str = "regular", task: MinipacmanTask | None = None,
                 num_mazes: int | None = None, split: str = "train", maze: np.ndarray | None = None,
                 maze_shape: tuple[int, int] = (15, 19), observation_type: str = "rgb", max_steps: int = 3000,
                 render_scale: int = 16) -> None:  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self._task, self._split_id, self._fixed_maze, shape, self.observation_space = _check_config(
            mode, task, num_mazes, split, maze, maze_shape, observation_type, max_steps)  # fmt: skip
        self.task = MinipacmanTask._make([*self._task[:5], *(bool(x) for x in self._task[5:8]), int(self._task[8])])
        self.action_space = spaces.Discrete(len(ACTION_MEANINGS))
        self.render_mode, self.max_steps, self.render_scale = render_mode, int(max_steps), int(render_scale)
        self.num_mazes, self.observation_type = num_mazes, observation_type
        self._walls = np.ones(shape, dtype=np.uint8)
        self._food = np.zeros(shape, dtype=np.uint8)
        self._pills = np.zeros((core.PILLS_PER_LEVEL, 2), dtype=np.int64)
        self._ghosts = np.zeros((core.MAX_GHOSTS, 3), dtype=np.int64)
        self._scalars = np.zeros(core.NUM_SCALARS, dtype=np.int64)
        self._rng = np.zeros(1, dtype=np.uint64)

    @property
    def level(self) -> int:
        """The current level (1 at reset)."""
        return int(self._scalars[core.LEVEL])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """New episode at level 1 on a maze drawn from ``np_random`` (or ``options["maze_index"]``)."""
        super().reset(seed=seed)
        limit = self.num_mazes or _UNLIMITED
        if options and "maze_index" in options:
            maze_index = int(options["maze_index"])
            if not 0 <= maze_index < limit:
                raise ValueError(f"options['maze_index'] must lie in [0, {limit}), got {maze_index}")
        else:
            maze_index = int(self.np_random.integers(limit))
        self._rng[0] = np.uint64(self.np_random.integers(2**63))
        core.new_episode(maze_index, self._split_id, _SALT, self._fixed_maze, self._walls, self._food, self._pills,
                         self._ghosts, self._scalars, self._rng)  # fmt: skip
        obs = np.empty(self.observation_space.shape, dtype=np.uint8)
        core.write_observation(self._walls, self._food, self._pills, self._ghosts, self._scalars,
                               self.observation_type == "planes", obs)  # fmt: skip
        return obs, {"maze_index": maze_index}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Applies one of the 5 actions; returns ``(obs, reward, terminated, truncated, info)``."""
        index = action_index(action)
        if not 0 <= index < 5:
            raise ValueError(f"action must be an int in [0, 5), got {action!r}")
        obs = np.empty(self.observation_space.shape, dtype=np.uint8)
        reward, killed = core.step_observe(self._walls, self._food, self._pills, self._ghosts, self._scalars, self._task,
                                           self._rng, index, self.observation_type == "planes", obs)  # fmt: skip
        return obs, float(reward), bool(killed), bool(self._scalars[core.FRAME] >= self.max_steps), {}

    def get_action_meanings(self) -> tuple[str, ...]:
        """Names of the 5 actions, by index."""
        return ACTION_MEANINGS

    def render(self) -> np.ndarray | None:
        """An RGB frame ``[H * s, W * s, 3]`` uint8 with ``s = render_scale``, in "rgb_array" mode."""
        if self.render_mode != "rgb_array":
            return None
        frame = np.empty((*self._walls.shape, 3), dtype=np.uint8)
        core.write_observation(self._walls, self._food, self._pills, self._ghosts, self._scalars, False, frame)
        return np.repeat(np.repeat(frame, self.render_scale, axis=0), self.render_scale, axis=1)

    def get_state(self) -> MinipacmanState:
        """A copy of the game, its generator and ``np_random``; :meth:`set_state` restores it exactly."""
        return MinipacmanState(self._walls.copy(), self._food.copy(), self._pills.copy(), self._ghosts.copy(),
                               self._scalars.copy(), self._rng.copy(), self.np_random.bit_generator.state)  # fmt: skip

    def set_state(self, state: MinipacmanState) -> None:
        """Restores a :meth:`get_state` snapshot (copied in, so the snapshot can be reused).

        Every field is checked first (dtypes, shapes, a walled border, Pacman, pills and ghosts on free cells
        inside the maze, counts): a bad state raises one ``ValueError``/``TypeError`` naming the field and
        leaves the env unchanged.
        """
        if not isinstance(state, MinipacmanState):
            raise TypeError(f"state must be a MinipacmanState of a {self._walls.shape} maze, got {type(state).__name__}")
        walls, food, pills, ghosts, scalars, rng = check_minipacman_state(state, self._walls.shape)
        set_generator_state(self.np_random, state.np_random_state)
        self._walls[:], self._food[:], self._pills[:], self._ghosts[:] = walls, food, pills, ghosts
        self._scalars[:], self._rng[:] = scalars, rng


class MinipacmanVectorEnv(NumbaVectorEnv):
    """``num_envs`` Minipacman games stepped by one compiled call (next-step autoreset; see :class:`NumbaVectorEnv`).

    Takes :class:`MinipacmanEnv`'s keyword arguments (no rendering).
    """

    def __init__(self, num_envs: int, *, mode: str = "regular", task: MinipacmanTask | None = None,
                 num_mazes: int | None = None, split: str = "train", maze: np.ndarray | None = None,
                 maze_shape: tuple[int, int] = (15, 19), observation_type: str = "rgb", max_steps: int = 3000) -> None:  # fmt: skip
        self._task, self._split_id, self._fixed_maze, shape, space = _check_config(
            mode, task, num_mazes, split, maze, maze_shape, observation_type, max_steps)  # fmt: skip
        super().__init__(num_envs, space, spaces.Discrete(len(ACTION_MEANINGS)))
        self.max_steps, self.num_mazes, self.observation_type = int(max_steps), num_mazes, observation_type
        n = self.num_envs
        self._walls = np.ones((n, *shape), dtype=np.uint8)
        self._food = np.zeros((n, *shape), dtype=np.uint8)
        self._pills = np.zeros((n, core.PILLS_PER_LEVEL, 2), dtype=np.int64)
        self._ghosts = np.zeros((n, core.MAX_GHOSTS, 3), dtype=np.int64)
        self._scalars = np.zeros((n, core.NUM_SCALARS), dtype=np.int64)

    def _run(self, actions: np.ndarray) -> None:
        core.step_batch(self._walls, self._food, self._pills, self._ghosts, self._scalars, self._rngs, self._needs_reset,
                        actions, self._task, self.max_steps, self.num_mazes or 0, self._split_id, _SALT, self._fixed_maze,
                        self.observation_type == "planes", self._obs, self._rewards, self._terminated,
                        self._truncated)  # fmt: skip
