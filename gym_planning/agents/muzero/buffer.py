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

Letters: ``R`` rows (``capacity``), ``E`` envs, ``A`` actions, ``B`` samples, ``K`` unroll steps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

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
    :param partial_returns: ``[B, K+1]`` float32 discounted reward sum of each position's n-step window.
    :param bootstrap_rows: ``[B, K+1]`` int64 row whose value is bootstrapped (-1: none).
    :param bootstrap_final: ``[B, K+1]`` bool, bootstrap from the final observation of a truncated step.
    :param bootstrap_discounts: ``[B, K+1]`` float32 discount applied to the bootstrapped value.
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
):
    """Fill the unroll layout and n-step value-target pieces for each sample (see :class:`UnrollTargets`)."""
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
            for i in range(window):
                r = (row + i) % capacity
                if final_unknown[r, env]:
                    # Cut before the step from ``r``: bootstrap from the observation at ``r`` (i >= 1 here).
                    ended = True
                    out_boot_row[b, k] = r
                    out_boot_discount[b, k] = scale
                    break
                acc += scale * rewards[r, env]
                scale *= discount
                if episode_end[r, env]:
                    ended = True
                    if not terminated[r, env]:
                        out_boot_row[b, k] = r
                        out_boot_final[b, k] = True
                        out_boot_discount[b, k] = scale
                    break
            if not ended:
                out_boot_row[b, k] = (row + window) % capacity
                out_boot_discount[b, k] = scale
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
    ):
        if capacity_steps < 2 * n_envs:
            raise ValueError(f"buffer_size must hold at least 2 steps per env; got {capacity_steps} for {n_envs} envs")
        self.capacity = capacity_steps // n_envs
        self.n_envs = n_envs
        self.num_actions = num_actions
        self.priority_alpha = priority_alpha
        self.priority_beta = priority_beta
        self.rng = np.random.default_rng(seed)
        shape = (self.capacity, n_envs)
        self.observations = np.zeros((*shape, *observation_shape), dtype=observation_dtype)
        self.actions = np.zeros(shape, np.int64)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, np.bool_)
        self.episode_end = np.zeros(shape, np.bool_)
        self.policy_targets = np.zeros((*shape, num_actions), np.float32)
        self.legal_masks = np.ones((*shape, num_actions), np.bool_)
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
    ) -> None:
        """Store one vector-env step: arrays are ``[E, ...]``; ``final_observations`` maps env index to the
        final observation of a truncated episode; ``priority`` defaults to the current maximum."""
        row = self.pos
        for key in [key for key in self.final_observations if key[0] == row]:
            del self.final_observations[key]
        self.observations[row] = observation
        self.actions[row] = action
        self.rewards[row] = reward
        self.terminated[row] = terminated
        self.episode_end[row] = np.logical_or(terminated, truncated)
        self.final_unknown[row] = False
        self.policy_targets[row] = policy_target
        self.legal_masks[row] = legal_mask
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
        """Unpickle, adding ``final_unknown`` to replays saved before it existed."""
        self.__dict__.update(state)
        if "final_unknown" not in state:
            self.final_unknown = np.zeros_like(self.episode_end)

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
        out = dict(
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
        )
        inside = out["status"][:, :-1] == INSIDE
        random_actions = self.rng.integers(0, self.num_actions, size=(batch_size, num_unroll_steps))
        actions = np.where(inside, self.actions[out["rows"][:, :-1], envs[:, None]], random_actions)
        return UnrollTargets(envs=envs, actions=actions, weights=weights, flat_index=flat_index, **out)

    def bootstrap_observations(self, targets: UnrollTargets) -> tuple[np.ndarray, np.ndarray]:
        """Observations whose value the n-step targets bootstrap from, and where they go.

        :return: ``(observations [M, *obs], positions [M, 2])`` with ``positions`` the ``(b, k)`` of each.
        """
        positions = np.argwhere(targets.bootstrap_rows >= 0)
        rows = targets.bootstrap_rows[positions[:, 0], positions[:, 1]]
        envs = targets.envs[positions[:, 0]]
        observations = self.observations[rows, envs].copy()
        final = targets.bootstrap_final[positions[:, 0], positions[:, 1]]
        for i in np.flatnonzero(final):
            observations[i] = self.final_observations[(int(rows[i]), int(envs[i]))]
        return observations, positions

    def update_priorities(self, flat_index: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of sampled positions (``flat_index`` from :class:`UnrollTargets`)."""
        rows, envs = np.divmod(flat_index, self.n_envs)
        self.priorities[rows, envs] = np.maximum(priorities, 1e-6)
