"""The self-play actors of a distributed learn (:mod:`~gym_planning.agents.muzero.distributed`): requests in
rounds, answers merged along the env axis, and what happens when an actor dies.

Each :class:`~gym_planning.agents.muzero.ray_workers.SelfPlayWorker` gets one slice of the envs (:func:`split_env`).
A round asks every actor for ``N`` steps with one weight snapshot; the ``K`` answers are concatenated along the
env axis (:func:`merge_chunks`) and stored row by row (:func:`store_round`), as the single process stores a
vector step.

Faults: an actor also ships the steps up to each episode end ahead of its answer through a ``ray.util.queue.Queue``,
a Ray actor of its own that outlives it. When an actor dies (killed, out of memory, its process crashed), the
learner keeps what it shipped, ends its envs' open episodes where those steps end (truncations: the next
observation is known), and starts a replacement (fresh episodes, new seeds) that is asked for the rest of the
round. So every episode the actor finished reaches the replay, and no episode is stitched onto another.

Letters: ``K`` actors, ``N`` steps per round, ``E`` envs (``E_k`` of actor ``k``).
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

import cloudpickle
import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from gym_planning.agents.muzero.actor import Chunk
from gym_planning.agents.muzero.ray_workers import MAX_RESTARTS, Collected, SelfPlayWorker, join_steps, remote

if TYPE_CHECKING:
    from gym_planning.agents.muzero.muzero import MuZero

# Rounds between two readings of the pieces queue (to drop the pieces of answered requests): the learner reads it
# at once only when an actor dies, so the queue holds at most this many rounds of pieces.
DRAIN_ROUNDS = 16


def split_env(env: VecEnv, num_actors: int) -> list[tuple[np.ndarray, VecEnv]]:
    """``K`` pairs ``(env indices, VecEnv of those envs)`` covering ``env`` in order (sizes differ by at most 1).

    One actor takes ``env`` whole (any VecEnv that pickles); several need a ``DummyVecEnv`` to split.
    """
    if num_actors > env.num_envs:
        raise ValueError(
            f"async_actors={num_actors} actors need at least as many envs; the env has {env.num_envs}: "
            f"use make_vec_env(..., n_envs={num_actors}) or more"
        )
    if num_actors == 1:
        return [(np.arange(env.num_envs), env)]
    if not isinstance(env, DummyVecEnv):
        raise TypeError(
            f"async_actors={num_actors} splits the envs between the actors, which needs a DummyVecEnv; got "
            f"{type(env).__name__}: pass an env id, a list of envs or make_vec_env(...) (VecEnv wrappers go in the envs)"
        )
    slices = np.array_split(np.arange(env.num_envs), num_actors)
    return [(idx, DummyVecEnv([functools.partial(_same, env.envs[i]) for i in idx])) for idx in slices]


def _same(env: gym.Env) -> gym.Env:
    """``env`` itself (DummyVecEnv takes env factories)."""
    return env


def merge_chunks(chunks: list[Chunk]) -> Chunk:
    """One chunk over all envs from the ``K`` chunks of a round (same steps and weights), in env order."""
    return Chunk(
        weights_version=chunks[0].weights_version,
        observations=np.concatenate([c.observations for c in chunks], axis=1),
        actions=np.concatenate([c.actions for c in chunks], axis=1),
        rewards=np.concatenate([c.rewards for c in chunks], axis=1),
        dones=np.concatenate([c.dones for c in chunks], axis=1),
        infos=[[info for c in chunks for info in c.infos[i]] for i in range(len(chunks[0].infos))],
        policy_targets=np.concatenate([c.policy_targets for c in chunks], axis=1),
        legal_masks=np.concatenate([c.legal_masks for c in chunks], axis=1),
        next_observation=np.concatenate([c.next_observation for c in chunks], axis=0),
        search_seconds=sum(c.search_seconds for c in chunks),
        env_seconds=sum(c.env_seconds for c in chunks),
        cpu_seconds=sum(c.cpu_seconds for c in chunks),
    )


class _Cut(NamedTuple):
    """Actor ``k`` died after ``row`` steps of a round: its envs' open episodes end there (the replacement
    starts new ones). ``next_observation`` ``[E_k, *obs]`` followed the last of those steps (None: the row
    before the round, whose next observation the learner holds)."""

    row: int
    k: int
    next_observation: np.ndarray | None


class _Round:
    """One request to every actor, as the actors answer it: per actor, the request's id and reference (None once
    complete) and the pieces received so far (from one life, or from a dead actor and its replacement)."""

    def __init__(self, version: int, weights: Any, num_steps: int, temperature: float, num_actors: int):
        self.version, self.weights, self.num_steps, self.temperature = version, weights, num_steps, temperature
        self.ids: list[int] = [-1] * num_actors
        self.refs: list[Any] = [None] * num_actors
        self.pieces: list[list[Chunk]] = [[] for _ in range(num_actors)]
        self.cuts: list[_Cut] = []

    def steps(self, k: int) -> int:
        """Steps of actor ``k`` received so far."""
        return sum(len(piece.actions) for piece in self.pieces[k])


class Fleet:
    """The self-play actors of one learn(): requests, answers, the pieces queue and replacements for dead actors.

    Every actor also ships the steps up to each episode end ahead of its answer through one
    ``ray.util.queue.Queue`` (:meth:`SelfPlayWorker.collect`); the queue outlives the actors, so when one dies, the
    learner keeps what it shipped, cuts its open episodes there, and asks a replacement (fresh episodes) for the
    rest of the round. An answer carries its whole chunk, so the learner reads the queue only after a death and
    every ``DRAIN_ROUNDS`` rounds (to drop what answered requests shipped).
    The learner, not Ray, restarts actors: a task sent to a restarting Ray actor would run on the new life
    before the learner's repeated request, out of order.
    """

    def __init__(self, ray: Any, model: MuZero):
        from ray.util.queue import Queue

        assert model.env is not None and isinstance(model._last_obs, np.ndarray)
        self.ray, self.model = ray, model
        self.parts = split_env(model.env, model.async_actors)
        # Actor 0 continues the model's search Generator (one actor = the process backend's run); the others
        # get independent streams seeded from it.
        rngs = [model.search_rng]
        if len(self.parts) > 1:
            seeds = np.random.SeedSequence(int(model.search_rng.integers(2**63))).spawn(len(self.parts) - 1)
            rngs += [np.random.default_rng(seed) for seed in seeds]
        network, settings = copy.deepcopy(model.policy.network).cpu(), model.search_config
        # The driver holds the constructor arguments, to start a replacement from them.
        last_obs = model._last_obs
        self.payloads = [
            ray.put(cloudpickle.dumps((env, network, settings, rng, last_obs[idx])))
            for (idx, env), rng in zip(self.parts, rngs)
        ]
        # No CPU: it only holds pieces, and every logical CPU of a local Ray is an actor's.
        self.queue = Queue(actor_options=dict(num_cpus=0))
        self.run = uuid.uuid4().hex[:8]
        self.restarts = [0] * len(self.parts)
        self.actors = [self._start(k) for k in range(len(self.parts))]
        self.cpu_seconds = [0.0] * len(self.actors)
        self.rounds: deque[_Round] = deque()
        self.stash: dict[int, list[Chunk]] = {}  # pieces taken from the queue, by request id
        self.rounds_since_drain = 0
        self.next_id = 0

    def _start(self, k: int) -> Any:
        life = self.restarts[k]
        name = f"muzero-{self.run}-selfplay-{k}" + (f"-{life}" if life else "")
        return remote(SelfPlayWorker, max_restarts=0).options(name=name).remote([self.payloads[k]], self.queue, bool(life))

    def _ask(self, r: _Round, k: int) -> None:
        """Ask actor ``k`` for the steps of round ``r`` it has not delivered (none left: nothing to ask)."""
        num_steps = r.num_steps - r.steps(k)
        r.ids[k], self.next_id = self.next_id, self.next_id + 1
        r.refs[k] = None
        if num_steps > 0:
            r.refs[k] = self.actors[k].collect.remote(r.ids[k], r.version, r.weights, num_steps, r.temperature)

    def request(self, num_steps: int) -> None:
        """Ask every actor for ``num_steps`` steps with a snapshot of the newest weights."""
        model = self.model
        assert model._compiled is not None
        model._compiled.refresh()
        weights = self.ray.put(model._compiled.params)  # one snapshot in the object store, read by K actors
        r = _Round(model._n_updates, weights, num_steps, model._current_temperature(), len(self.actors))
        for k in range(len(self.actors)):
            self._ask(r, k)
        self.rounds.append(r)

    def _drain(self) -> None:
        """Move the pieces the queue holds into ``stash``, dropping those of requests already answered (or of a
        dead actor's request already asked again)."""
        live = {i for r in self.rounds for i, ref in zip(r.ids, r.refs) if ref is not None}
        self.stash = {i: pieces for i, pieces in self.stash.items() if i in live}
        size = self.queue.qsize()
        if size:
            for i, piece in self.queue.get_nowait_batch(size):
                if i in live:
                    self.stash.setdefault(i, []).append(piece)
        self.rounds_since_drain = 0

    def _restart(self, k: int) -> None:
        """End actor ``k`` for good and start its replacement (fresh episodes, new seeds)."""
        if self.restarts[k] >= MAX_RESTARTS:
            raise RuntimeError(
                f"self-play actor {k} died {MAX_RESTARTS + 1} times in one learn() (MAX_RESTARTS = {MAX_RESTARTS}); "
                "the run stops: look for what kills it (memory, an env that crashes its process)"
            )
        self.ray.kill(self.actors[k], no_restart=True)
        self.restarts[k] += 1
        self.cpu_seconds[k] = 0.0
        self.actors[k] = self._start(k)

    def _replace(self, k: int) -> None:
        """Actor ``k`` died during the oldest round: keep the pieces it shipped, cut its episodes there, start a
        replacement and ask it for the rest of every outstanding round, in order."""
        self._drain()
        first = self.rounds[0]
        first.pieces[k] += self.stash.pop(first.ids[k], [])
        got = first.pieces[k]
        first.cuts.append(_Cut(first.steps(k), k, got[-1].next_observation if got else None))
        self._restart(k)
        for r in self.rounds:
            self._ask(r, k)

    def receive(self) -> tuple[Chunk, list[_Cut]]:
        """The oldest round's chunks merged, and where actors that died cut their episodes (in row order)."""
        model, ray = self.model, self.ray
        r = self.rounds[0]
        for k in range(len(self.actors)):
            while r.refs[k] is not None:
                try:
                    answer: Collected = ray.get(r.refs[k])
                except ray.exceptions.RayActorError:
                    self._replace(k)
                    continue
                r.pieces[k].append(answer.chunk)
                r.refs[k] = None
                model.actor_cpu_seconds += answer.chunk.cpu_seconds - self.cpu_seconds[k]
                self.cpu_seconds[k] = answer.chunk.cpu_seconds
                model.phase_seconds["actor_idle"] = model.phase_seconds.get("actor_idle", 0.0) + answer.idle_seconds
        self.rounds.popleft()
        self.rounds_since_drain += 1
        if self.rounds_since_drain >= DRAIN_ROUNDS:  # the pieces of answered requests are not needed
            self._drain()
        return merge_chunks([join_steps(pieces) for pieces in r.pieces]), sorted(r.cuts, key=lambda cut: cut.row)

    def close(self) -> None:
        """Take the envs, their last observations and actor 0's Generator back into the model; end the actors."""
        model, ray = self.model, self.ray
        states = []
        for k in range(len(self.actors)):
            try:
                states.append(cloudpickle.loads(ray.get(self.actors[k].state.remote())))
            except ray.exceptions.RayActorError:  # died after its last round: a replacement's fresh envs
                self._replace_idle(k)
                states.append(cloudpickle.loads(ray.get(self.actors[k].state.remote())))
        if len(states) == 1:
            model.env = states[0][0]
        else:
            assert isinstance(model.env, DummyVecEnv)
            for (idx, _), (env, _, _) in zip(self.parts, states):
                for i, sub_env in zip(idx, env.envs):
                    model.env.envs[i] = sub_env
        model._last_obs = np.concatenate([obs for _, obs, _ in states])
        model.search_rng = states[0][2]
        self.kill()

    def _replace_idle(self, k: int) -> None:
        """Actor ``k`` died between rounds: end its envs' open episodes at the newest row, start a replacement."""
        assert isinstance(self.model._last_obs, np.ndarray)
        self.model.replay_buffer.close_open_episodes(self.model._last_obs, envs=self.parts[k][0])
        self._restart(k)

    def kill(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.queue.shutdown(force=True)


def _rows(chunk: Chunk, start: int, stop: int) -> Chunk:
    """Steps ``start:stop`` of ``chunk``."""
    every = slice(start, stop)
    return chunk._replace(
        observations=chunk.observations[every],
        actions=chunk.actions[every],
        rewards=chunk.rewards[every],
        dones=chunk.dones[every],
        infos=chunk.infos[every],
        policy_targets=chunk.policy_targets[every],
        legal_masks=chunk.legal_masks[every],
        next_observation=chunk.observations[stop] if stop < len(chunk.actions) else chunk.next_observation,
    )


def store_round(
    model: MuZero,
    fleet: Fleet,
    chunk: Chunk,
    cuts: list[_Cut],
    callback: BaseCallback | None,
    log_interval: int | None,
    total_timesteps: int,
) -> bool:
    """Store a round's steps (as :func:`~gym_planning.agents.muzero.learner._store_chunk`), ending the open
    episodes of a dead actor's envs where its steps end (a truncation: the next observation is known).

    :return: False once a callback stopped training.
    """
    from gym_planning.agents.muzero.learner import _store_chunk  # learner imports muzero imports this

    start = 0
    for cut in [*cuts, None]:
        stop = len(chunk.actions) if cut is None else cut.row
        if stop > start:
            running = _store_chunk(model, _rows(chunk, start, stop), callback, log_interval, total_timesteps)
            callback = callback if running else None
        start = stop
        if cut is not None:
            envs = fleet.parts[cut.k][0]
            next_observations = np.array(model._last_obs)
            if cut.next_observation is not None:
                next_observations[envs] = cut.next_observation
            model.replay_buffer.close_open_episodes(next_observations, envs=envs)
    return callback is not None
