"""MuZero on Ray Core (``MuZero(async_actors=K, actor_backend="ray", reanalyse_workers=R)``).

Thin Ray actors around the actor/learner split of :mod:`~gym_planning.agents.muzero.actor`:

- **Self-play actors** (:class:`SelfPlayWorker`): each wraps an :class:`~gym_planning.agents.muzero.actor.Actor`
  over its share of the envs (the driver's ``DummyVecEnv`` split into ``K`` slices), with a compiled CPU copy
  of the network; driven in rounds by :class:`~gym_planning.agents.muzero.fleet.Fleet`, which replaces a dead
  one.
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

Faults: an actor ships the steps up to each episode end ahead of its answer, through a queue that outlives
it; when it dies the learner keeps them, ends its open episodes there and asks a replacement for the rest
(:mod:`~gym_planning.agents.muzero.fleet`), so no finished episode is lost. Ray restarts a dead reanalyse
worker, and the learner asks it again. The learner itself is the driver: it resumes from a checkpoint (``CheckpointCallback(save_replay_buffer=True)``, then
``MuZero.load`` + ``load_replay_buffer`` + ``learn(reset_num_timesteps=False)``).

The Ray actors' classes are in :mod:`~gym_planning.agents.muzero.ray_workers`.

Letters: ``K`` actors, ``R`` reanalyse workers, ``N`` steps per chunk, ``E`` envs, ``M`` reanalysed positions,
``A`` actions.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import os
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import cloudpickle
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from gym_planning.agents.muzero.fleet import Fleet, store_round
from gym_planning.agents.muzero.ray_workers import INSTALL_HINT, MAX_RESTARTS, ReanalyseWorker, import_ray, remote

if TYPE_CHECKING:
    from gym_planning.agents.muzero.muzero import MuZero

# Seconds a dead reanalyse worker may take to come back (a new worker process imports torch and loads the search).
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
        self.workers = [remote(ReanalyseWorker).remote([payload]) for payload in self.payloads]
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
    fleet = Fleet(ray, model)
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
            running = store_round(model, fleet, chunk, cuts, callback if running else None, log_interval, total_timesteps)
        fleet.close()
    except BaseException:
        fleet.kill()
        raise
    finally:
        model._reanalyser = None
        if reanalyser is not None:
            reanalyser.close()
