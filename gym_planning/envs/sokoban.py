"""Sokoban as a fast Gymnasium environment, with levels made by reverse play (or read from Boxoban files).

:class:`SokobanEnv` is one game (``gym_planning/Sokoban-v0``); :class:`SokobanVectorEnv` steps N games in
one compiled call. Rules, rewards and generation follow gym-sokoban 0.0.6 (REFERENCES §3.1); the game
logic lives in :mod:`gym_planning.envs._sokoban_core` and :mod:`gym_planning.envs._sokoban_levels`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_planning.envs import _sokoban_core as core
from gym_planning.envs._numba_rng import split_id as _split_id
from gym_planning.envs._sokoban_levels import FLOOR, TARGET, WALL
from gym_planning.envs._state_checks import action_index, check_sokoban_state, set_generator_state
from gym_planning.envs._vector import NumbaVectorEnv

__all__ = ["ACTION_MEANINGS", "SokobanEnv", "SokobanState", "SokobanVectorEnv", "load_boxoban_levels"]

ACTION_MEANINGS = (
    "no-op",
    "push up",
    "push down",
    "push left",
    "push right",
    "move up",
    "move down",
    "move left",
    "move right",
)
OBSERVATION_TYPES = ("rgb", "planes")
_SALT = 0x50C0BA4  # separates Sokoban level seeds from other games'
_UNLIMITED = 2**62  # level indices drawn below this when the level set is not restricted


def load_boxoban_levels(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads every ``*.txt`` level file under ``path`` (Boxoban format; files sorted by name).

    Format: levels separated by lines starting with ``;``; ``#`` wall, space floor, ``.`` target,
    ``$`` box, ``*`` box on target, ``@`` player, ``+`` player on target. Smaller levels are padded with wall.

    :return: ``room [L, H, W]`` uint8, ``boxes [L, H, W]`` bool, ``player [L, 2]`` int64.
    """
    files = sorted(Path(path).rglob("*.txt")) if Path(path).is_dir() else []
    if not files:
        raise ValueError(f"levels_dir {str(path)!r} is not a directory holding Boxoban *.txt level files")
    levels: list[list[str]] = []
    for file in files:
        current: list[str] = []
        for line in file.read_text().splitlines() + [";"]:
            if line.startswith(";"):
                if current:
                    levels.append(current)
                current = []
            elif line.strip():
                current.append(line)
    height, width = max(len(lv) for lv in levels), max(len(row) for lv in levels for row in lv)
    room = np.full((len(levels), height, width), WALL, dtype=np.uint8)
    boxes = np.zeros((len(levels), height, width), dtype=np.bool_)
    player = np.full((len(levels), 2), -1, dtype=np.int64)
    for i, level in enumerate(levels):
        for r, row in enumerate(level):
            for c, char in enumerate(row):
                room[i, r, c] = TARGET if char in ".*+" else (WALL if char == "#" else FLOOR)
                boxes[i, r, c] = char in "$*"
                if char in "@+":
                    player[i] = r, c
        if player[i, 0] < 0 or boxes[i].sum() != (room[i] == TARGET).sum() or not boxes[i].any():
            raise ValueError(f"level {i} under {str(path)!r} needs one player and as many boxes as targets (>= 1)")
    return room, boxes, player


class SokobanState(NamedTuple):
    """A snapshot of one game for :meth:`SokobanEnv.set_state` (arrays are copies)."""

    room: np.ndarray
    boxes: np.ndarray
    scalars: np.ndarray
    np_random_state: Mapping[str, Any]


class _LevelSource:
    """Where levels come from: a bank of ``num_levels`` levels (generated on first use, or read from files) or,
    with ``num_levels=None``, a fresh level from each drawn index. Shared by the single and the vector env."""

    def __init__(self, dim_room: tuple[int, int], num_boxes: int, num_levels: int | None, split: str,
                 levels_dir: str | os.PathLike[str] | None, num_gen_steps: int | None, p_change_direction: float,
                 max_explored_states: int, max_depth: int) -> None:  # fmt: skip
        self.split_id = _split_id(split)
        if len(dim_room) != 2 or min(dim_room) < 3:
            raise ValueError(f"dim_room must be (height, width) with both >= 3, got {dim_room!r}")
        if num_boxes < 1:
            raise ValueError(f"num_boxes must be >= 1, got {num_boxes}")
        if num_levels is not None and not 1 <= num_levels < _UNLIMITED:
            raise ValueError(f"num_levels must be None or an int in [1, 2**62), got {num_levels!r}")
        gen_steps = int(1.7 * (dim_room[0] + dim_room[1])) if num_gen_steps is None else num_gen_steps
        self.gen_config = np.array([num_boxes, gen_steps, max_explored_states, max_depth, 100, _SALT], dtype=np.int64)
        self.p_change_direction = float(p_change_direction)
        if levels_dir is not None:
            self.bank_room, self.bank_boxes, self.bank_player = load_boxoban_levels(levels_dir)
            if num_levels is not None:
                self.bank_room, self.bank_boxes = self.bank_room[:num_levels], self.bank_boxes[:num_levels]
                self.bank_player = self.bank_player[:num_levels]
            self.bank_ready = np.ones(len(self.bank_room), dtype=np.bool_)
        else:
            banked = 0 if num_levels is None else num_levels
            self.bank_room = np.zeros((banked, *dim_room), dtype=np.uint8)
            self.bank_boxes = np.zeros((banked, *dim_room), dtype=np.bool_)
            self.bank_player = np.zeros((banked, 2), dtype=np.int64)
            self.bank_ready = np.zeros(banked, dtype=np.bool_)
        self.num_levels = len(self.bank_room) if len(self.bank_room) else None
        height, width = self.bank_room.shape[1:] if levels_dir is not None else dim_room
        self.shape: tuple[int, int] = (height, width)

    def load(self, level_index: int, room: np.ndarray, boxes: np.ndarray, scalars: np.ndarray) -> None:
        """Writes level ``level_index`` into the game arrays."""
        if not core.load_level(level_index, self.split_id, self.gen_config, self.p_change_direction, self.bank_room,
                               self.bank_boxes, self.bank_player, self.bank_ready, room, boxes, scalars):  # fmt: skip
            raise RuntimeError(f"no level with a box off its target after {self.gen_config[core.MAX_TRIES]} tries; "
                               "use a larger room or fewer boxes")  # fmt: skip


def _observation_space(shape: tuple[int, int], observation_type: str) -> spaces.Box:
    if observation_type not in OBSERVATION_TYPES:
        raise ValueError(f"observation_type must be one of {OBSERVATION_TYPES}, got {observation_type!r}")
    channels, high = (3, 255) if observation_type == "rgb" else (core.NUM_PLANES, 1)
    return spaces.Box(0, high, (*shape, channels), dtype=np.uint8)


class SokobanEnv(gym.Env[np.ndarray, np.int64]):
    """Sokoban: push every box onto a target.

    **Actions** ``Discrete(9)``: 0 no-op, 1-4 push up/down/left/right, 5-8 move up/down/left/right
    (gym-sokoban's set). A push with no box in front moves; boxes move one at a time, never in chains.

    **Observation** ``uint8 [H, W, C]``, one cell per pixel. ``observation_type="rgb"``: C = 3, colours
    ``_sokoban_core.COLOURS`` (wall dark grey, floor off-white, empty target pink, box on target gold, box
    brown, player green, player on target light green). ``"planes"``: C = 7 one-hot planes of the cell
    kind in that same order (wall, floor, empty target, box on target, box, player, player on target).

    **Rewards**: -0.1 per step, +1 when a box goes onto a target, -1 when one leaves it, +10 more when the
    last box goes on. **Episode end**: ``terminated`` when all boxes are on targets; ``truncated`` once
    ``max_steps`` steps are taken (independent flags, as ``TimeLimit`` sets them).

    **Levels**: reverse play from the solved state (always solvable; see ``_sokoban_levels``), seeded
    from ``np_random``. ``num_levels=N`` restricts play to levels ``0..N-1`` of ``split`` ("train" or
    "test"; the two splits never share a level seed); ``levels_dir`` reads Boxoban files instead (the
    directory is then the split). ``reset(options={"level_index": k})`` plays level k.

    :param render_mode: None or "rgb_array" (the RGB observation upscaled ``render_scale`` times).
    :param dim_room: room ``(height, width)`` in cells, walls included.
    :param num_boxes: boxes (and targets) per generated level.
    :param max_steps: steps before truncation.
    :param num_levels: size of the level set, or None for a new level at every reset.
    :param split: "train" or "test".
    :param observation_type: "rgb" or "planes".
    :param levels_dir: directory of Boxoban ``*.txt`` files (read once; nothing is downloaded); the room size
        and box count then come from the files, and ``split`` is not used.
    :param num_gen_steps: length of the topology walk (default ``int(1.7 * (height + width))``).
    :param p_change_direction: chance that the topology walk turns at each step.
    :param max_explored_states: budget of the reverse-play search per level (time grows linearly).
    :param max_depth: depth limit of the reverse-play search (moves).
    :param render_scale: pixels per cell of rendered frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}
    observation_space: spaces.Box
    action_space: spaces.Discrete

    def __init__(self, render_mode: str | None = None, *, dim_room: tuple[int, int] = (10, 10), num_boxes: int = 4,
                 max_steps: int = 120, num_levels: int | None = None, split: str = "train",
                 observation_type: str = "rgb", levels_dir: str | os.PathLike[str] | None = None,
                 num_gen_steps: int | None = None, p_change_direction: float = 0.35,
                 max_explored_states: int = 50_000, max_depth: int = 300, render_scale: int = 16) -> None:  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.levels = _LevelSource(dim_room, num_boxes, num_levels, split, levels_dir, num_gen_steps, p_change_direction,
                                   max_explored_states, max_depth)  # fmt: skip
        self.render_mode, self.max_steps, self.render_scale = render_mode, int(max_steps), int(render_scale)
        self.observation_type = observation_type
        self.observation_space = _observation_space(self.levels.shape, observation_type)
        self.action_space = spaces.Discrete(len(ACTION_MEANINGS))
        self._room = np.zeros(self.levels.shape, dtype=np.uint8)
        self._boxes = np.zeros(self.levels.shape, dtype=np.bool_)
        self._scalars = np.zeros(core.NUM_SCALARS, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Loads a level drawn from ``np_random`` (or ``options["level_index"]``); info holds ``level_index``."""
        super().reset(seed=seed)
        limit = self.levels.num_levels or _UNLIMITED
        if options and "level_index" in options:
            level_index = int(options["level_index"])
            if not 0 <= level_index < limit:
                raise ValueError(f"options['level_index'] must lie in [0, {limit}), got {level_index}")
        else:
            level_index = int(self.np_random.integers(limit))
        self.levels.load(level_index, self._room, self._boxes, self._scalars)
        return self._observation(), {"level_index": level_index}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Applies one of the 9 actions; returns ``(obs, reward, terminated, truncated, info)``."""
        index = action_index(action)
        if not 0 <= index < 9:
            raise ValueError(f"action must be an int in [0, 9), got {action!r}")
        obs = np.empty(self.observation_space.shape, dtype=np.uint8)
        reward, solved = core.step_observe(self._room, self._boxes, self._scalars, index,
                                           self.observation_type == "planes", obs)  # fmt: skip
        return obs, reward, solved, bool(self._scalars[core.STEPS] >= self.max_steps), {}

    def get_action_meanings(self) -> tuple[str, ...]:
        """Names of the 9 actions, by index."""
        return ACTION_MEANINGS

    def render(self) -> np.ndarray | None:
        """An RGB frame ``[H * s, W * s, 3]`` uint8 with ``s = render_scale``, in "rgb_array" mode."""
        if self.render_mode != "rgb_array":
            return None
        frame = np.empty((*self.levels.shape, 3), dtype=np.uint8)
        core.write_observation(self._room, self._boxes, self._scalars, False, frame)
        return np.repeat(np.repeat(frame, self.render_scale, axis=0), self.render_scale, axis=1)

    def get_state(self) -> SokobanState:
        """A copy of the game and of ``np_random``; :meth:`set_state` restores it exactly."""
        return SokobanState(self._room.copy(), self._boxes.copy(), self._scalars.copy(), self.np_random.bit_generator.state)

    def set_state(self, state: SokobanState) -> None:
        """Restores a :meth:`get_state` snapshot (copied in, so the snapshot can be reused).

        Every field is checked first (dtypes, shapes, the player on a free cell inside the room, box counts):
        a bad state raises one ``ValueError``/``TypeError`` naming the field and leaves the env unchanged.
        """
        if not isinstance(state, SokobanState):
            raise TypeError(f"state must be a SokobanState of a {self._room.shape} room, got {type(state).__name__}")
        room, boxes, scalars = check_sokoban_state(state, self._room.shape)
        set_generator_state(self.np_random, state.np_random_state)
        self._room[:], self._boxes[:], self._scalars[:] = room, boxes, scalars

    def _observation(self) -> np.ndarray:
        obs = np.empty(self.observation_space.shape, dtype=np.uint8)
        core.write_observation(self._room, self._boxes, self._scalars, self.observation_type == "planes", obs)
        return obs


class SokobanVectorEnv(NumbaVectorEnv):
    """``num_envs`` Sokoban games stepped by one compiled call (next-step autoreset; see :class:`NumbaVectorEnv`).

    Takes :class:`SokobanEnv`'s keyword arguments (no rendering). Each game draws its level index from its
    own generator; with ``num_levels`` set, the games share one level bank.
    """

    def __init__(self, num_envs: int, *, dim_room: tuple[int, int] = (10, 10), num_boxes: int = 4, max_steps: int = 120,
                 num_levels: int | None = None, split: str = "train", observation_type: str = "rgb",
                 levels_dir: str | os.PathLike[str] | None = None, num_gen_steps: int | None = None,
                 p_change_direction: float = 0.35, max_explored_states: int = 50_000, max_depth: int = 300) -> None:  # fmt: skip
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.levels = _LevelSource(dim_room, num_boxes, num_levels, split, levels_dir, num_gen_steps, p_change_direction,
                                   max_explored_states, max_depth)  # fmt: skip
        super().__init__(num_envs, _observation_space(self.levels.shape, observation_type), spaces.Discrete(9))
        self.max_steps, self.observation_type = int(max_steps), observation_type
        self._rooms = np.zeros((self.num_envs, *self.levels.shape), dtype=np.uint8)
        self._boxes = np.zeros((self.num_envs, *self.levels.shape), dtype=np.bool_)
        self._scalars = np.zeros((self.num_envs, core.NUM_SCALARS), dtype=np.int64)

    def _run(self, actions: np.ndarray) -> None:
        lv = self.levels
        if not core.step_batch(self._rooms, self._boxes, self._scalars, self._rngs, self._needs_reset, actions,
                               self.max_steps, lv.num_levels or 0, lv.split_id, lv.gen_config, lv.p_change_direction,
                               lv.bank_room, lv.bank_boxes, lv.bank_player, lv.bank_ready,
                               self.observation_type == "planes", self._obs, self._rewards, self._terminated,
                               self._truncated):  # fmt: skip
            raise RuntimeError("level generation failed; use a larger room or fewer boxes")
