"""MuZero on Ray Core (``MuZero(async_actors=K, actor_backend="ray", reanalyse_workers=R)``).

Thin Ray actors around the actor/learner split of :mod:`~gym_planning.agents.muzero.actor`:

- **Self-play actors** (:class:`SelfPlayWorker`): each wraps an :class:`~gym_planning.agents.muzero.actor.Actor`
  over its share of the envs (the driver's ``DummyVecEnv`` split into ``K`` slices), with a compiled CPU copy
  of the network. Ray restarts a killed one (``max_restarts``).
- **Reanalyse workers** (:class:`ReanalyseWorker`): compiled searches that recompute the policy targets of
  the reanalysed part of each batch, split between ``R`` workers.
- **The learner** stays in the driver process: replay, priorities, optimiser, callbacks, logger and
  ``save``/``save_replay_buffer`` are the single process's, unchanged.

Protocol, in rounds: the learner puts one weight snapshot in the object store (tagged with its number of
gradient steps, the *version*) and asks every actor for ``async_chunk_steps`` steps with it, *before* it
stores and trains on the previous round's chunks. The chunks of one round are concatenated along the env
axis into one :class:`~gym_planning.agents.muzero.actor.Chunk` and stored row by row as the single process
stores a vector step, so the replay's row layout (one column per env) is unchanged. Acting weights are
therefore exactly one round old: the staleness cap is one chunk (``replay_ratio * n_envs *
async_chunk_steps`` gradient steps) by construction, and with the seed fixed a run is reproducible.

Faults: a killed actor's chunk in flight is lost (at most ``async_chunk_steps`` steps of its envs); every
chunk the learner received is in the replay. The learner asks the restarted actor again, which starts
fresh episodes, and closes the actor's open episodes in the replay as cuts (targets masked). The learner
itself is the driver: it resumes from a checkpoint (``CheckpointCallback(save_replay_buffer=True)``, then
``MuZero.load`` + ``load_replay_buffer`` + ``learn(reset_num_timesteps=False)``).

The Ray actors' classes are in :mod:`~gym_planning.agents.muzero.ray_workers`.

Letters: ``K`` actors, ``R`` reanalyse workers, ``N`` steps per chunk, ``E`` envs, ``M`` reanalysed positions,
``A`` actions.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import math
import os
import socket
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlparse

import cloudpickle
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from gym_planning.agents.muzero.actor import Chunk
from gym_planning.agents.muzero.ray_workers import (
    INSTALL_HINT,
    Collected,
    ReanalyseWorker,
    SelfPlayWorker,
    import_ray,
    join_steps,
)

if TYPE_CHECKING:
    from gym_planning.agents.muzero.muzero import MuZero

# Restarts Ray grants each actor within one learn(); a worker that keeps dying (e.g. out of memory) then
# stops the run with an error instead of looping.
MAX_RESTARTS = 3
# Seconds a dead actor may take to come back (a new worker process imports torch and loads the search).
RESTART_TIMEOUT_S = 300.0
# Seconds to reach RAY_ADDRESS's host before ray.init, which would otherwise retry for minutes.
CONNECT_TIMEOUT_S = 5.0


def check_ray_settings(actor_backend: str, async_actors: int, reanalyse_workers: int, search_for_targets: bool) -> None:
    """Refuse distributed settings that cannot run, naming the fix (called by ``MuZero.__init__``)."""
    if actor_backend not in ("process", "ray"):
        raise ValueError(f"actor_backend must be 'process' or 'ray'; got {actor_backend!r}")
    if not isinstance(reanalyse_workers, (int, np.integer)) or reanalyse_workers < 0:
        raise ValueError(f"reanalyse_workers must be an integer >= 0; got {reanalyse_workers!r}")
    if reanalyse_workers and actor_backend != "ray":
        raise ValueError("reanalyse_workers are Ray actors: add actor_backend='ray' (and async_actors >= 1)")
    if reanalyse_workers and not search_for_targets:
        raise ValueError("reanalyse_workers reanalyse by search: they need search_for_targets=True")
    if actor_backend == "ray":
        if async_actors < 1:
            raise ValueError("actor_backend='ray' needs async_actors >= 1 (self-play Ray actors); 0 runs in one process")
        if importlib.util.find_spec("ray") is None:
            raise ImportError(f"actor_backend='ray' needs Ray Core: {INSTALL_HINT}")


def _check_reachable(address: str) -> None:
    """Fail within ``CONNECT_TIMEOUT_S`` when ``host:port`` (or ``ray://host:port``) does not answer."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.hostname is None or parsed.port is None:
        return
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConnectionError(
            f"cannot reach the Ray cluster at RAY_ADDRESS={address!r} ({error}): start it (`ray start --head` or "
            "`ray up cluster.yaml`) and check the address, or unset RAY_ADDRESS to run Ray on this machine"
        ) from None


def connect(num_cpus: int) -> Any:
    """Join the Ray cluster at ``RAY_ADDRESS``, or start a local Ray with ``num_cpus`` logical CPUs, once per
    process (a Ray this process already started or joined is reused); quiet: no dashboard, workers' output
    not forwarded, errors only."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    address = os.environ.get("RAY_ADDRESS")
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
        else:
            # Ray starts workers at niceness 15 to keep the driver responsive; here the workers are the
            # self-play actors, the bulk of the work, and at 15 a busy machine starves them.
            os.environ.setdefault("RAY_worker_niceness", "0")
            # "local": a Ray of our own, never a running one found on the machine (another user's, on a
            # shared machine); a cluster is joined through RAY_ADDRESS (e.g. "auto" on its head node).
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    except (ConnectionError, TimeoutError) as error:
        raise ConnectionError(f"MuZero(actor_backend='ray') cannot start or reach Ray: {error}") from None
    return ray


@functools.cache
def _remote(cls: type, max_restarts: int = MAX_RESTARTS) -> Any:
    """``cls`` as a Ray actor class: one logical CPU, restarted by Ray ``max_restarts`` times, tasks of a dead
    actor not retried (the learner asks again)."""
    return import_ray().remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)(cls)


def _wait_alive(ray: Any, actor: Any, what: str) -> None:
    """Block until Ray has restarted ``actor`` (a cheap call succeeds); raise once it is dead for good (no
    restart left, ``ActorDiedError``) or still down after ``RESTART_TIMEOUT_S``."""
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while True:
        try:
            ray.get(actor.__ray_ready__.remote())
            return
        except ray.exceptions.ActorDiedError as error:
            raise RuntimeError(f"the {what} died and Ray has no restart left ({MAX_RESTARTS}): {error}") from None
        except ray.exceptions.RayActorError:  # restarting: calls fail until it is back
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {what} did not come back within {RESTART_TIMEOUT_S:g} s") from None
            time.sleep(0.5)


def _get(ray: Any, actor: Any, call: Any, what: str) -> Any:
    """``ray.get(call())`` on ``actor``, asking again after Ray restarted it."""
    while True:
        try:
            return ray.get(call())
        except ray.exceptions.RayActorError:
            _wait_alive(ray, actor, what)


class RayReanalyser:
    """``model._reanalyser`` during a distributed learn: splits the positions between ``R`` workers.

    :param ray: the ray module.
    :param model: the learner, whose compiled copy provides the weight snapshots.
    :param num_workers: ``R``.
    """

    def __init__(self, ray: Any, model: MuZero, num_workers: int):
        self.ray, self.model = ray, model
        network = copy.deepcopy(model.policy.network).cpu()
        seeds = np.random.SeedSequence(model.seed).spawn(num_workers)
        self.payloads = [ray.put(cloudpickle.dumps((network, model.search_config, seed))) for seed in seeds]
        self.workers = [_remote(ReanalyseWorker).remote([payload]) for payload in self.payloads]
        self._version = -1
        self._weights: Any = None

    def __call__(self, observations: np.ndarray, legal_mask: np.ndarray | None) -> np.ndarray:
        """``[M, A]`` targets of ``observations [M, *obs]`` with the learner's newest weights."""
        model = self.model
        assert model._compiled is not None
        if self._version != model._n_updates:
            model._compiled.refresh()
            self._weights = self.ray.put(model._compiled.params)  # one snapshot, read by every worker
            self._version = model._n_updates
        parts = [
            (w, p) for w, p in zip(self.workers, np.array_split(np.arange(len(observations)), len(self.workers))) if len(p)
        ]
        refs = [
            w.targets.remote(self._weights, observations[p], None if legal_mask is None else legal_mask[p]) for w, p in parts
        ]
        with model._timed("reanalyse_wait"):
            try:
                return np.concatenate(self.ray.get(refs))
            except self.ray.exceptions.RayActorError:  # a worker died: ask each part again (Ray restarts it)
                return np.concatenate([self._part(w, p, observations, legal_mask) for w, p in parts])

    def _part(self, worker: Any, part: np.ndarray, observations: np.ndarray, legal_mask: np.ndarray | None) -> np.ndarray:
        mask = None if legal_mask is None else legal_mask[part]
        return _get(
            self.ray, worker, lambda: worker.targets.remote(self._weights, observations[part], mask), "reanalyse worker"
        )

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)


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
    return [(idx, DummyVecEnv([lambda e=env.envs[i]: e for i in idx])) for idx in slices]


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


class _Fleet:
    """The self-play actors of one learn(): requests, answers, the pieces queue and replacements for dead actors.

    Every actor ships the steps up to each episode end ahead of its answer through one ``ray.util.queue.Queue``
    (:meth:`SelfPlayWorker.collect`); the queue outlives the actors, so when one dies, the learner keeps what it
    shipped, cuts its open episodes there, and asks a replacement (fresh episodes) for the rest of the round.
    The learner, not Ray, restarts actors: a task sent to a restarting Ray actor would run on the new life
    before the learner's repeated request, out of order.
    """

    def __init__(self, ray: Any, model: MuZero):
        from ray.util.queue import Queue

        assert model.env is not None and model._last_obs is not None
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
        self.payloads = [
            ray.put(cloudpickle.dumps((env, network, settings, rng, model._last_obs[idx])))
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
        self.next_id = 0

    def _start(self, k: int) -> Any:
        life = self.restarts[k]
        name = f"muzero-{self.run}-selfplay-{k}" + (f"-{life}" if life else "")
        return _remote(SelfPlayWorker, 0).options(name=name).remote([self.payloads[k]], self.queue, bool(life))

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

    def _drain(self, request_id: int | None = None, count: int = 0) -> None:
        """Move pieces from the queue into ``stash`` until it holds ``count`` of ``request_id`` (None: all the
        queue holds now). Pieces of requests no longer outstanding (a dead actor's last, late) are dropped."""
        live = {i for r in self.rounds for i in r.ids}
        while True:
            if request_id is None:
                missing = self.queue.qsize()
            else:
                missing = count - len(self.stash.get(request_id, []))
            if missing <= 0:
                return
            for i, piece in self.queue.get_nowait_batch(missing):
                if i in live:
                    self.stash.setdefault(i, []).append(piece)
            if request_id is None:
                return

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
                self._drain(answer.request_id, answer.shipped)
                new = self.stash.pop(answer.request_id, []) + ([answer.tail] if answer.tail else [])
                r.pieces[k] += new
                r.refs[k] = None
                model.actor_cpu_seconds += new[-1].cpu_seconds - self.cpu_seconds[k]
                self.cpu_seconds[k] = new[-1].cpu_seconds
                model.phase_seconds["actor_idle"] = model.phase_seconds.get("actor_idle", 0.0) + answer.idle_seconds
        self.rounds.popleft()
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


def _store_round(
    model: MuZero,
    fleet: _Fleet,
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


def _check_cpus(ray: Any, needed: int) -> None:
    """On a local Ray (no ``RAY_ADDRESS``: a cluster may scale up), refuse more actors than logical CPUs,
    which Ray would leave pending for ever."""
    total = ray.cluster_resources().get("CPU", 0)
    if not os.environ.get("RAY_ADDRESS") and needed > total:
        raise ValueError(
            f"async_actors + reanalyse_workers = {needed} Ray actors need {needed} CPUs, and the local Ray has "
            f"{total:g}: use fewer, or start Ray first with ray.init(num_cpus={needed})"
        )


def learn_with_ray_actors(model: MuZero, total_timesteps: int, callback: BaseCallback, log_interval: int | None) -> None:
    """Train ``model`` until ``total_timesteps`` env steps with ``async_actors`` Ray self-play actors (and
    ``reanalyse_workers``), in rounds as :func:`~gym_planning.agents.muzero.learner.learn_with_actor_process`."""
    assert model.env is not None
    ray = connect(num_cpus=model.async_actors + model.reanalyse_workers)
    _check_cpus(ray, model.async_actors + model.reanalyse_workers)
    rows_left = math.ceil((total_timesteps - model.num_timesteps) / model.env.num_envs)
    fleet = _Fleet(ray, model)
    reanalyser = RayReanalyser(ray, model, model.reanalyse_workers) if model.reanalyse_workers else None
    try:
        model._reanalyser = reanalyser
        num_steps = min(model.async_chunk_steps, rows_left)
        fleet.request(num_steps)
        rows_left -= num_steps
        running = True
        while fleet.rounds:
            if running and rows_left > 0:  # the actors collect the next round while we train on this one
                num_steps = min(model.async_chunk_steps, rows_left)
                fleet.request(num_steps)
                rows_left -= num_steps
            with model._timed("wait"):
                chunk, cuts = fleet.receive()
            model.phase_seconds["search"] += chunk.search_seconds
            model.phase_seconds["env"] += chunk.env_seconds
            running = _store_round(model, fleet, chunk, cuts, callback if running else None, log_interval, total_timesteps)
        fleet.close()
    except BaseException:
        fleet.kill()
        raise
    finally:
        model._reanalyser = None
        if reanalyser is not None:
            reanalyser.close()
