"""Frame-stacked observations stored one frame per step, rebuilt into stacks on reading.

An observation made by a frame stack (``FrameStackObservation`` + ``FramesToChannels``, or SB3's
``VecFrameStack``) holds ``S`` frames along axis 0, oldest first: ``[S * c, ...]`` with ``c`` channels
per frame. Consecutive observations of one episode share ``S - 1`` frames, so storing each whole costs
``S`` times the memory (MuZero's Atari stack: 32 frames of 96 x 96 RGB, 864 KiB per step). As in SB3's
``optimize_memory_usage`` replay and DQN-zoo's, :class:`StackedFrames` keeps only the newest frame of each
step and rebuilds stacks from the previous rows of the same env column.

A step is stored as a frame only when its observation *is* the previous step's shifted by one frame (checked
by equality, so the rebuilt stack equals the observation bit for bit); otherwise (an episode's first
observation, whatever its padding) it is a **keyframe**, which also keeps the ``S - 1`` older frames. Before
the ring overwrites its oldest row, the next row is made a keyframe, so that no stack reaches into
overwritten data.

Letters: ``R`` rows, ``E`` envs, ``S`` frames per stack, ``c`` channels per frame, ``M`` stacks read.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack


@njit(cache=True)
def _stack_sources(rows, envs, is_keyframe, capacity, frame_stack, out_rows, out_keyframe):
    """For each stack ``m``: ``out_rows[m, j]`` is the row whose newest frame is slot ``j`` (0 = oldest) of the
    stack at ``(rows[m], envs[m])``, or -1 for slots taken from the keyframe row ``out_keyframe[m]`` (-1: none).

    The walk goes back from ``rows[m]`` until it has ``S`` frames or meets a keyframe."""
    for m in range(rows.shape[0]):
        env = envs[m]
        row = rows[m]
        out_keyframe[m] = -1
        j = frame_stack - 1
        while True:
            out_rows[m, j] = row
            if j == 0:
                break
            if is_keyframe[row, env]:
                out_keyframe[m] = row
                break
            row = (row - 1 + capacity) % capacity
            j -= 1
        for i in range(j):
            out_rows[m, i] = -1


class StackedFrames:
    """Observations ``[S * c, ...]`` of ``E`` env columns over ``R`` ring rows, one frame ``[c, ...]`` per row.

    :param capacity: ``R``, rows of the ring.
    :param n_envs: ``E``.
    :param observation_shape: shape of one (stacked) observation; ``observation_shape[0]`` must be a
        multiple of ``frame_stack``.
    :param dtype: dtype of the observations.
    :param frame_stack: ``S``, frames per observation along axis 0.
    """

    def __init__(self, capacity: int, n_envs: int, observation_shape: tuple[int, ...], dtype: np.dtype, frame_stack: int):
        check_frame_stack(observation_shape, frame_stack)
        self.capacity = capacity
        self.frame_stack = frame_stack
        self.observation_shape = tuple(observation_shape)
        self.frame_shape = (observation_shape[0] // frame_stack, *observation_shape[1:])
        self.frames = np.zeros((capacity, n_envs, *self.frame_shape), dtype)
        self.is_keyframe = np.zeros((capacity, n_envs), np.bool_)
        # (row, env) -> the S - 1 older frames [S - 1, c, ...] of a keyframe's stack.
        self.keyframes: dict[tuple[int, int], np.ndarray] = {}

    @staticmethod
    def bytes_per_step(observation_shape: tuple[int, ...], dtype: np.dtype, frame_stack: int) -> int:
        """Bytes one env step takes (its frame), keyframes not counted."""
        return int(np.prod(observation_shape)) // frame_stack * np.dtype(dtype).itemsize

    def write(self, row: int, observations: np.ndarray, stored_rows: int) -> None:
        """Store ``observations [E, *obs]`` at ``row``, the ring's next row (``stored_rows`` rows are held)."""
        n_envs = self.frames.shape[1]
        envs = np.arange(n_envs)
        if stored_rows == self.capacity:  # ``row`` is the oldest: its successor must stand without it
            following = (row + 1) % self.capacity
            for env_index in np.flatnonzero(~self.is_keyframe[following]):
                env = int(env_index)
                self._make_keyframe(following, env, self.read(np.array([following]), np.array([env]))[0])
        previous = self.read(np.full(n_envs, (row - 1) % self.capacity), envs) if stored_rows else None
        for env in range(n_envs):
            self.keyframes.pop((row, env), None)
        self.is_keyframe[row] = False
        stacks = observations.reshape(n_envs, self.frame_stack, *self.frame_shape)
        for env in range(n_envs):
            shifted = previous is not None and np.array_equal(stacks[env, :-1], previous[env].reshape(stacks.shape[1:])[1:])
            if not shifted:
                self._make_keyframe(row, env, observations[env])
        self.frames[row] = stacks[:, -1]

    def _make_keyframe(self, row: int, env: int, observation: np.ndarray) -> None:
        self.keyframes[(row, env)] = np.array(observation.reshape(self.frame_stack, *self.frame_shape)[:-1])
        self.is_keyframe[row, env] = True

    def read(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """The stacked observations ``[M, *obs]`` at ``(rows[m], envs[m])``."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        envs = np.asarray(envs, np.int64).reshape(-1)
        sources = np.empty((len(rows), self.frame_stack), np.int64)
        keyframe_rows = np.empty(len(rows), np.int64)
        _stack_sources(rows, envs, self.is_keyframe, self.capacity, self.frame_stack, sources, keyframe_rows)
        stacks = self.frames[np.maximum(sources, 0), envs[:, None]]  # [M, S, c, ...]
        for m in np.flatnonzero(keyframe_rows >= 0):
            missing = int((sources[m] < 0).sum())
            if missing:
                stacks[m, :missing] = self.keyframes[(int(keyframe_rows[m]), int(envs[m]))][-missing:]
        return stacks.reshape(len(rows), *self.observation_shape)

    @property
    def nbytes(self) -> int:
        """Bytes held: frames, keyframe flags and keyframes."""
        return self.frames.nbytes + self.is_keyframe.nbytes + sum(k.nbytes for k in self.keyframes.values())


def check_frame_stack(observation_shape: tuple[int, ...], frame_stack: int) -> None:
    """Raise unless ``frame_stack`` frames can split ``observation_shape`` along axis 0."""
    if not isinstance(frame_stack, (int, np.integer)) or frame_stack < 1:
        raise ValueError(f"frame_stack must be None, 'auto' or an integer >= 1; got {frame_stack!r}")
    if len(observation_shape) == 0 or observation_shape[0] % frame_stack:
        raise ValueError(
            f"frame_stack={frame_stack} does not divide the first axis of observations {tuple(observation_shape)}: "
            "stacked frames must lie along axis 0 (channel-first, as make_atari gives them); set frame_stack=None "
            "to store observations whole"
        )


def detect_frame_stack(env: VecEnv | None) -> int | None:
    """Frames per observation of ``env`` (after SB3's wrapping), or None when it stacks no frames.

    Recognises Gymnasium's ``FrameStackObservation`` (``stack_size``; with ``FramesToChannels`` or grayscale
    frames the stack lies along axis 0) and SB3's ``VecFrameStack`` (``n_stack``; along the channels, which
    SB3 moves to axis 0 for images)."""
    if env is None:
        return None
    venv: VecEnv | None = env
    while venv is not None:
        if isinstance(venv, VecFrameStack):
            return int(venv.stacked_obs.n_stack)
        venv = getattr(venv, "venv", None)
    try:
        stack_size = env.get_attr("stack_size", indices=[0])[0]
    except AttributeError:
        return None
    return int(stack_size) if isinstance(stack_size, (int, np.integer)) and stack_size > 1 else None


def resolve_frame_stack(setting: int | str | None, env: VecEnv | None, observation_shape: tuple[int, ...]) -> int | None:
    """Frames per observation for the replay: ``setting`` when an integer (checked), None for None, and for
    ``"auto"`` the :func:`detect_frame_stack` of ``env`` when it splits ``observation_shape`` along axis 0."""
    if setting is None:
        return None
    if setting == "auto":
        detected = detect_frame_stack(env)
        if detected is None or len(observation_shape) == 0 or observation_shape[0] % detected:
            return None
        return detected
    check_frame_stack(observation_shape, setting)  # type: ignore[arg-type]  # check_frame_stack refuses non-integers
    return int(setting)


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
