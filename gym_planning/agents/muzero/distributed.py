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
from gym_planning.agents.muzero.ray_workers import INSTALL_HINT, Collected, ReanalyseWorker, SelfPlayWorker, import_ray

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
def _remote(cls: type) -> Any:
    """``cls`` as a Ray actor class: one logical CPU, restarted by Ray, tasks of a dead actor not retried
    (the learner asks again, so that it knows which chunks were lost)."""
    return import_ray().remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=0)(cls)


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


class _Round(NamedTuple):
    """One request to every actor: ``refs[k]`` is actor ``k``'s :class:`Collected` (replaced after a failure)."""

    version: int
    weights: Any
    num_steps: int
    temperature: float
    refs: list[Any]


class _Fleet:
    """The self-play actors of one learn(): requests, answers, restarts and the actors' bookkeeping."""

    def __init__(self, ray: Any, model: MuZero):

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
        # The driver holds the constructor arguments, so that Ray still has them when it restarts an actor.
        self.payloads = [
            ray.put(cloudpickle.dumps((env, network, settings, rng, model._last_obs[idx])))
            for (idx, env), rng in zip(self.parts, rngs)
        ]
        run = uuid.uuid4().hex[:8]
        self.actors = [
            _remote(SelfPlayWorker).options(name=f"muzero-{run}-selfplay-{k}").remote([payload])
            for k, payload in enumerate(self.payloads)
        ]
        self.incarnations: list[str | None] = [None] * len(self.actors)
        self.cpu_seconds = [0.0] * len(self.actors)
        self.rounds: deque[_Round] = deque()

    def request(self, num_steps: int) -> None:
        """Ask every actor for ``num_steps`` steps with a snapshot of the newest weights."""
        model = self.model
        assert model._compiled is not None
        model._compiled.refresh()
        weights = self.ray.put(model._compiled.params)  # one snapshot in the object store, read by K actors
        version, temperature = model._n_updates, model._current_temperature()
        refs = [actor.collect.remote(version, weights, num_steps, temperature) for actor in self.actors]
        self.rounds.append(_Round(version, weights, num_steps, temperature, refs))

    def _ask_again(self, k: int) -> None:
        """Actor ``k`` died: once Ray restarted it, ask it again for every round still outstanding, in order."""
        _wait_alive(self.ray, self.actors[k], f"self-play actor {k}")
        for r in self.rounds:
            r.refs[k] = self.actors[k].collect.remote(r.version, r.weights, r.num_steps, r.temperature)

    def receive(self) -> Chunk:
        """The oldest round's chunks merged; closes in the replay the episodes of actors that restarted."""
        model, ray = self.model, self.ray
        answers: list[Collected] = []
        for k in range(len(self.actors)):
            while True:
                try:
                    answers.append(ray.get(self.rounds[0].refs[k]))
                    break
                except ray.exceptions.RayActorError:
                    self._ask_again(k)
        self.rounds.popleft()
        for k, answer in enumerate(answers):
            if answer.incarnation != self.incarnations[k]:
                if self.incarnations[k] is not None:  # a new life: its envs started new episodes
                    model.replay_buffer.close_open_episodes(None, envs=self.parts[k][0])
                    self.cpu_seconds[k] = 0.0
                self.incarnations[k] = answer.incarnation
            model.actor_cpu_seconds += answer.chunk.cpu_seconds - self.cpu_seconds[k]
            self.cpu_seconds[k] = answer.chunk.cpu_seconds
            model.phase_seconds["actor_idle"] = model.phase_seconds.get("actor_idle", 0.0) + answer.idle_seconds
        return merge_chunks([answer.chunk for answer in answers])

    def close(self) -> None:
        """Take the envs, their last observations and actor 0's Generator back into the model; end the actors."""
        model, ray = self.model, self.ray
        states = [
            cloudpickle.loads(_get(ray, actor, actor.state.remote, f"self-play actor {k}"))
            for k, actor in enumerate(self.actors)
        ]
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

    def kill(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)


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
    from gym_planning.agents.muzero.learner import _store_chunk  # learner imports muzero imports this

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
                chunk = fleet.receive()
            model.phase_seconds["search"] += chunk.search_seconds
            model.phase_seconds["env"] += chunk.env_seconds
            running = _store_chunk(model, chunk, callback if running else None, log_interval, total_timesteps)
        fleet.close()
    except BaseException:
        fleet.kill()
        raise
    finally:
        model._reanalyser = None
        if reanalyser is not None:
            reanalyser.close()
