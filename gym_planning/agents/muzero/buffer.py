"""Replay of self-play game segments with prioritised sampling and n-step value targets.

Storage follows SB3's ``ReplayBuffer``: preallocated ``[capacity, n_envs, ...]`` arrays written one
row per vector-env step, so each env's column is its own game stream. A sample is a start position
``(row, env)``; its unroll reads rows ``row .. row + K`` of the same column and stops at the end of the
episode (``episode_end``) or at the newest row. Termination and truncation stay apart:

- after a **termination** the unroll continues in an absorbing state (reward 0, value 0, random actions);
- after a **truncation** (time limit) or past the newest stored row the targets are unknown and masked;
  n-step value targets bootstrap from the value of the truncated step's final observation.
- an episode **cut** by an env reset outside an episode end (a second ``learn``, a resumed run) is closed
  by :meth:`GameSegmentBuffer.close_open_episodes` as a truncation, so that no unroll or n-step target
  runs into the next episode. When the observation after the cut step is unknown, the cut step itself is
  treated as unknown (masked) and earlier n-step targets bootstrap from the cut step's own observation.

Observations are stored whole (``observations``), or, for frame stacks (``frame_stack=S``), one frame per
step in :class:`~gym_planning.agents.muzero.frames.StackedFrames` (``frames``); read them with
:meth:`GameSegmentBuffer.observations_at`. The replay refuses, before allocating, a size the machine's memory
cannot hold.

Two-player zero-sum games (self-play) store who moved at each step (``to_play``, 0 or 1; always 0 for one
player). A stored reward is for the player who moved; a value is for the player to move. The n-step value
target of position ``t`` takes the point of view of ``to_play[t]``: each reward and the bootstrapped value
count with sign +1 when their player is ``to_play[t]``, -1 otherwise (with alternating turns: ``(-1)^i``).
The sign of a bootstrapped value is folded into ``bootstrap_discounts``. The player to move in the final
observation of a truncated step is taken to be the other one (alternating turns).

Letters: ``R`` rows (``capacity``), ``E`` envs, ``A`` actions, ``B`` samples, ``K`` unroll steps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gym_planning.agents.muzero.frames import StackedFrames, available_memory_bytes

# The replay may take at most this fraction of the memory available when it is built; the rest is left to
# the networks, the batches and the envs.
MAX_MEMORY_FRACTION = 0.8

# Status of an unroll position relative to its episode.
INSIDE, ABSORBING, UNKNOWN = 0, 1, 2


class UnrollTargets(NamedTuple):
    """Where each unroll position lies and how to build its targets (from :meth:`GameSegmentBuffer.sample`).

    :param rows: ``[B, K+1]`` row of each position (valid where ``status == INSIDE``).
    :param envs: ``[B]`` env column of each sample.
    :param status: ``[B, K+1]`` int8: ``INSIDE``, ``ABSORBING`` (after a termination), ``UNKNOWN``.
    :param actions: ``[B, K]`` int64, action taken at positions ``0 .. K-1`` (random outside the episode).
    :param rewards: ``[B, K+1]`` float32 reward target of the step *into* each position (index 0 unused, 0).
    :param reward_mask: ``[B, K+1]`` float32, 1 where the reward target is known.
    :param partial_returns: ``[B, K+1]`` float32 discounted reward sum of each position's n-step window,
        from the point of view of the player to move at that position.
    :param bootstrap_rows: ``[B, K+1]`` int64 row whose value is bootstrapped (-1: none).
    :param bootstrap_final: ``[B, K+1]`` bool, bootstrap from the final observation of a truncated step.
    :param bootstrap_discounts: ``[B, K+1]`` float32 discount applied to the bootstrapped value (negative
        where the bootstrapped state has the other player to move, in two-player games).
    :param weights: ``[B]`` float32 importance-sampling weights (max 1).
    :param flat_index: ``[B]`` int64 ``row * E + env``, for priority updates.
    """

    rows: np.ndarray
    envs: np.ndarray
    status: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    reward_mask: np.ndarray
    partial_returns: np.ndarray
    bootstrap_rows: np.ndarray
    bootstrap_final: np.ndarray
    bootstrap_discounts: np.ndarray
    weights: np.ndarray
    flat_index: np.ndarray


@njit(cache=True)
def _unroll_targets(
    start_rows,
    envs,
    newest_row,
    capacity,
    stored_rows,
    rewards,
    terminated,
    episode_end,
    final_unknown,
    num_unroll_steps,
    td_steps,
    discount,
    out_rows,
    out_status,
    out_reward,
    out_reward_mask,
    out_partial,
    out_boot_row,
    out_boot_final,
    out_boot_discount,
    to_play,
    two_players,
):
    """Fill the unroll layout and n-step value-target pieces for each sample (see :class:`UnrollTargets`).

    ``to_play`` ``[R, E]`` int8 is the player who moved at each row (all 0 for one player): rewards and
    bootstrapped values of the other player count negatively (zero-sum). ``two_players``: whether the
    player to move flips after a truncated step (for the sign of its final observation's value).
    """
    for b in range(start_rows.shape[0]):
        env = envs[b]
        start = start_rows[b]
        # Rows stored after ``start`` in this column (the newest row is ``newest_row``).
        available = (newest_row - start) % capacity
        if available >= stored_rows:
            available = stored_rows - 1
        status = INSIDE
        for k in range(num_unroll_steps + 1):
            row = (start + k) % capacity
            if k > 0 and status == INSIDE:
                prev = (start + k - 1) % capacity
                out_reward[b, k] = rewards[prev, env]
                out_reward_mask[b, k] = 1.0
                if episode_end[prev, env]:
                    status = ABSORBING if terminated[prev, env] else UNKNOWN
                elif k > available:
                    status = UNKNOWN
            elif k > 0 and status == ABSORBING:
                out_reward_mask[b, k] = 1.0
            if status == INSIDE and final_unknown[row, env]:
                status = UNKNOWN  # a cut step whose next observation is unknown: no targets from it
            out_status[b, k] = status
            out_rows[b, k] = row
            out_boot_row[b, k] = -1
            if status != INSIDE:
                continue
            # n-step return from ``row``: sum rewards until the window, the episode or the data ends.
            window = min(td_steps, available - k)
            acc = 0.0
            scale = 1.0
            ended = False
            player = to_play[row, env]
            for i in range(window):
                r = (row + i) % capacity
                sign = 1.0 if to_play[r, env] == player else -1.0
                if final_unknown[r, env]:
                    # Cut before the step from ``r``: bootstrap from the observation at ``r`` (i >= 1 here).
                    ended = True
                    out_boot_row[b, k] = r
                    out_boot_discount[b, k] = sign * scale
                    break
                acc += sign * scale * rewards[r, env]
                scale *= discount
                if episode_end[r, env]:
                    ended = True
                    if not terminated[r, env]:
                        # The final observation's player to move: the other one if two players alternate.
                        out_boot_row[b, k] = r
                        out_boot_final[b, k] = True
                        out_boot_discount[b, k] = (-sign if two_players else sign) * scale
                    break
            if not ended:
                r = (row + window) % capacity
                out_boot_row[b, k] = r
                out_boot_discount[b, k] = (1.0 if to_play[r, env] == player else -1.0) * scale
            out_partial[b, k] = acc


class GameSegmentBuffer:
    """Self-play storage for ``n_envs`` game streams with prioritised sampling.

    :param capacity_steps: total transitions kept (``capacity = capacity_steps // n_envs`` rows).
    :param observation_shape: shape of one observation.
    :param observation_dtype: dtype of stored observations.
    :param num_actions: ``A``.
    :param n_envs: ``E``, number of game streams.
    :param priority_alpha: priority exponent (0 = uniform sampling).
    :param priority_beta: importance-sampling exponent (1 = full correction).
    :param seed: seed of the buffer's own numpy Generator (sampling and random unroll actions).
    :param frame_stack: ``S`` when each observation is a stack of ``S`` frames along axis 0, stored one frame
        per step (:class:`~gym_planning.agents.muzero.frames.StackedFrames`); None stores observations whole.
    :raises ValueError: when the replay would need more than ``MAX_MEMORY_FRACTION`` of the available memory.
    :param two_players: a two-player zero-sum game with alternating turns (self-play): pass ``to_play`` to
        :meth:`add`; value targets take the view of the player to move (see the module docstring).
    """

    def __init__(
        self,
        capacity_steps: int,
        observation_shape: tuple[int, ...],
        observation_dtype: np.dtype,
        num_actions: int,
        n_envs: int,
        *,
        priority_alpha: float = 1.0,
        priority_beta: float = 1.0,
        seed: int | None = None,
        frame_stack: int | None = None,
        two_players: bool = False,
    ):
        if capacity_steps < 2 * n_envs:
            raise ValueError(f"buffer_size must hold at least 2 steps per env; got {capacity_steps} for {n_envs} envs")
        _check_memory(capacity_steps, observation_shape, observation_dtype, num_actions, frame_stack)
        self.capacity = capacity_steps // n_envs
        self.n_envs = n_envs
        self.num_actions = num_actions
        self.priority_alpha = priority_alpha
        self.priority_beta = priority_beta
        self.rng = np.random.default_rng(seed)
        shape = (self.capacity, n_envs)
        self.frame_stack = frame_stack
        if frame_stack is None:
            self.observations = np.zeros((*shape, *observation_shape), dtype=observation_dtype)
        else:
            self.frames = StackedFrames(self.capacity, n_envs, tuple(observation_shape), observation_dtype, frame_stack)
        self.actions = np.zeros(shape, np.int64)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, np.bool_)
        self.episode_end = np.zeros(shape, np.bool_)
        self.policy_targets = np.zeros((*shape, num_actions), np.float32)
        self.legal_masks = np.ones((*shape, num_actions), np.bool_)
        # Player who moved at each step (two-player self-play); 0 throughout for one player.
        self.to_play = np.zeros(shape, np.int8)
        self.two_players = two_players
        self.priorities = np.zeros(shape, np.float64)
        # Final observations of truncated steps, keyed by (row, env): rare, so kept out of the arrays.
        self.final_observations: dict[tuple[int, int], np.ndarray] = {}
        # Episode ends made by close_open_episodes without a known next observation.
        self.final_unknown = np.zeros(shape, np.bool_)
        self.pos = 0
        self.full = False

    # -- writing ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Stored transitions (all envs)."""
        return (self.capacity if self.full else self.pos) * self.n_envs

    @property
    def stored_rows(self) -> int:
        return self.capacity if self.full else self.pos

    def add(
        self,
        observation: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        policy_target: np.ndarray,
        legal_mask: np.ndarray,
        final_observations: dict[int, np.ndarray],
        priority: np.ndarray | None = None,
        to_play: np.ndarray | None = None,
    ) -> None:
        """Store one vector-env step: arrays are ``[E, ...]``; ``final_observations`` maps env index to the
        final observation of a truncated episode; ``priority`` defaults to the current maximum;
        ``to_play`` ``[E]`` is the player (0 or 1) who moved, in two-player games (None: one player)."""
        row = self.pos
        for key in [key for key in self.final_observations if key[0] == row]:
            del self.final_observations[key]
        if self.frame_stack is None:
            self.observations[row] = observation
        else:
            self.frames.write(row, np.asarray(observation), self.stored_rows)
        self.actions[row] = action
        self.rewards[row] = reward
        self.terminated[row] = terminated
        self.episode_end[row] = np.logical_or(terminated, truncated)
        self.final_unknown[row] = False
        self.policy_targets[row] = policy_target
        self.legal_masks[row] = legal_mask
        self.to_play[row] = 0 if to_play is None else to_play
        if priority is None:
            stored = self.priorities[: self.stored_rows]
            priority = np.full(self.n_envs, stored.max() if stored.size else 1.0)
        self.priorities[row] = np.maximum(priority, 1e-6)
        for env, obs in final_observations.items():
            self.final_observations[(row, env)] = np.array(obs)
        self.pos = (self.pos + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def close_open_episodes(self, next_observations: np.ndarray | None, envs: np.ndarray | None = None) -> np.ndarray:
        """End every episode still open at the newest row as a truncation; call it before the envs are reset
        outside an episode end (otherwise the next episode would be stitched onto the open one).

        :param next_observations: ``[E, *obs]`` observations that followed the newest row (the vec env's
            last observations), or None when unknown (then the cut step's targets are masked).
        :param envs: only these env columns (a restarted distributed actor's); None: all.
        :return: ``[M]`` env indices whose episode was closed.
        """
        if self.stored_rows == 0:
            return np.zeros(0, np.int64)
        row = (self.pos - 1) % self.capacity
        open_envs = np.flatnonzero(~self.episode_end[row])
        if envs is not None:
            open_envs = np.intersect1d(open_envs, envs)
        self.episode_end[row, open_envs] = True
        for env in open_envs:
            if next_observations is None:
                self.final_unknown[row, env] = True
            else:
                self.final_observations[(row, int(env))] = np.array(next_observations[env])
        return open_envs

    def __setstate__(self, state: dict) -> None:
        """Unpickle, adding ``final_unknown``, ``frame_stack`` and ``to_play`` to replays saved before they existed."""
        self.__dict__.update(state)
        if "final_unknown" not in state:
            self.final_unknown = np.zeros_like(self.episode_end)
        if "frame_stack" not in state:
            self.frame_stack = None
        if "to_play" not in state:
            self.to_play = np.zeros(self.episode_end.shape, np.int8)
            self.two_players = False

    def observations_at(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """The stored observations ``[M, *obs]`` at rows ``rows [M]`` of env columns ``envs [M]`` (a new array)."""
        if self.frame_stack is None:
            return self.observations[rows, envs]
        return self.frames.read(rows, envs)

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, batch_size: int, num_unroll_steps: int, td_steps: int, discount: float) -> UnrollTargets:
        """Draw ``batch_size`` start positions (probability ``∝ priority^alpha``) and lay out their unrolls."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        flat = self.priorities[: self.stored_rows].reshape(-1) ** self.priority_alpha
        probs = flat / flat.sum()
        flat_index = self.rng.choice(flat.size, size=batch_size, p=probs)
        weights = (flat.size * probs[flat_index]) ** (-self.priority_beta)
        weights = (weights / weights.max()).astype(np.float32)
        rows, envs = np.divmod(flat_index, self.n_envs)
        shape = (batch_size, num_unroll_steps + 1)
        out: dict[str, np.ndarray] = dict(
            rows=np.zeros(shape, np.int64),
            status=np.zeros(shape, np.int8),
            rewards=np.zeros(shape, np.float32),
            reward_mask=np.zeros(shape, np.float32),
            partial_returns=np.zeros(shape, np.float32),
            bootstrap_rows=np.zeros(shape, np.int64),
            bootstrap_final=np.zeros(shape, np.bool_),
            bootstrap_discounts=np.zeros(shape, np.float32),
        )
        _unroll_targets(
            rows,
            envs,
            (self.pos - 1) % self.capacity,
            self.capacity,
            self.stored_rows,
            self.rewards,
            self.terminated,
            self.episode_end,
            self.final_unknown,
            num_unroll_steps,
            td_steps,
            discount,
            out["rows"],
            out["status"],
            out["rewards"],
            out["reward_mask"],
            out["partial_returns"],
            out["bootstrap_rows"],
            out["bootstrap_final"],
            out["bootstrap_discounts"],
            self.to_play,
            self.two_players,
        )
        actions = self._unroll_actions(out["rows"][:, :-1], envs, out["status"][:, :-1] == INSIDE)
        return UnrollTargets(envs=envs, actions=actions, weights=weights, flat_index=flat_index, **out)

    def _unroll_actions(self, rows: np.ndarray, envs: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """``[B, K]`` actions taken at ``rows [B, K]`` of columns ``envs [B]``, random where not ``inside``."""
        random_actions = self.rng.integers(0, self.num_actions, size=rows.shape)
        return np.where(inside, self.actions[rows, envs[:, None]], random_actions)

    def bootstrap_observations(
        self, targets: UnrollTargets, positions: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Observations whose value the n-step targets bootstrap from, and where they go.

        :param positions: ``[M, 2]`` the ``(b, k)`` to read (a subset of :meth:`bootstrap_positions`, e.g. one
            chunk); None reads them all.
        :return: ``(observations [M, *obs], positions [M, 2])`` with ``positions`` the ``(b, k)`` of each.
        """
        if positions is None:
            positions = self.bootstrap_positions(targets)
        rows = targets.bootstrap_rows[positions[:, 0], positions[:, 1]]
        envs = targets.envs[positions[:, 0]]
        observations = self.observations_at(rows, envs)
        final = targets.bootstrap_final[positions[:, 0], positions[:, 1]]
        for i in np.flatnonzero(final):
            observations[i] = self.final_observations[(int(rows[i]), int(envs[i]))]
        return observations, positions

    @staticmethod
    def bootstrap_positions(targets: UnrollTargets) -> np.ndarray:
        """``[M, 2]`` the ``(b, k)`` whose n-step target bootstraps from an observation's value."""
        return np.argwhere(targets.bootstrap_rows >= 0)

    def update_priorities(self, flat_index: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of sampled positions (``flat_index`` from :class:`UnrollTargets`)."""
        rows, envs = np.divmod(flat_index, self.n_envs)
        self.priorities[rows, envs] = np.maximum(priorities, 1e-6)


def _check_memory(
    capacity_steps: int, observation_shape: tuple[int, ...], dtype: np.dtype, num_actions: int, frame_stack: int | None
) -> None:
    """Raise before allocating a replay that would take more than ``MAX_MEMORY_FRACTION`` of the free memory."""
    available = available_memory_bytes()
    if available is None:
        return
    if frame_stack is None:
        observation_bytes = int(np.prod(observation_shape)) * np.dtype(dtype).itemsize
    else:
        observation_bytes = StackedFrames.bytes_per_step(observation_shape, dtype, frame_stack)
    # actions, rewards, flags, priorities, policy targets (float32) and legal masks (bool) per step.
    step_bytes = observation_bytes + 8 + 4 + 3 + 8 + 5 * num_actions
    needed = capacity_steps * step_bytes
    allowed = MAX_MEMORY_FRACTION * available
    if needed <= allowed:
        return
    how = "whole" if frame_stack is None else f"as single frames of a {frame_stack}-frame stack"
    hint = (
        " or store stacked frames once (MuZero's frame_stack, detected from FrameStackObservation by default)"
        if frame_stack is None and len(observation_shape) > 1
        else ""
    )
    raise ValueError(
        f"the replay needs {needed / 2**30:.1f} GiB ({capacity_steps} steps of {step_bytes} bytes, observations "
        f"{tuple(observation_shape)} stored {how}) but {available / 2**30:.1f} GiB of memory is available "
        f"({MAX_MEMORY_FRACTION:.0%} may go to the replay): lower buffer_size to at most "
        f"{int(allowed // step_bytes)}{hint}"
    )
