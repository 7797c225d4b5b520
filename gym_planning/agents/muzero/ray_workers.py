"""The Ray actors of distributed MuZero (:mod:`gym_planning.agents.muzero.distributed`), plain classes that
``ray.remote`` wraps when a run starts, so that this module imports without Ray:

- :class:`SelfPlayWorker` wraps an :class:`~gym_planning.agents.muzero.actor.Actor` (its envs, a compiled CPU
  copy of the network, a search Generator) and answers ``collect`` with a :class:`Collected` chunk; the steps up
  to each episode end also go ahead through a queue that outlives the worker (:meth:`SelfPlayWorker.collect`);
- :class:`ReanalyseWorker` recomputes policy targets by a search without noise (:func:`reanalyse_targets`).

Letters: ``N`` steps, ``M`` reanalysed positions, ``A`` actions.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import cloudpickle
import numpy as np
import torch as th

from gym_planning.agents.muzero.actor import Actor, Chunk
from gym_planning.models.compiled import CompiledMlpModel
from gym_planning.search import SearchConfig, run_policy

INSTALL_HINT = "pip install gym-planning[ray]"
# Times a self-play actor (replaced by the learner) or a reanalyse worker (restarted by Ray) may die within one
# learn(); one that keeps dying (e.g. out of memory) then stops the run with an error instead of looping.
MAX_RESTARTS = 3


def import_ray() -> Any:
    """The ``ray`` module, or one ImportError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"MuZero's distributed version needs Ray Core: {INSTALL_HINT}") from None
    return ray


@functools.cache
def remote(cls: type, max_restarts: int = MAX_RESTARTS) -> Any:
    """``cls`` as a Ray actor class: one logical CPU, restarted by Ray ``max_restarts`` times, tasks of a dead
    actor not retried (the learner asks again)."""
    return import_ray().remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)(cls)


def join_steps(chunks: list[Chunk]) -> Chunk:
    """Consecutive chunks of the same envs as one (steps concatenated in order; the last one's next
    observation and CPU seconds, the wall seconds summed)."""
    if len(chunks) == 1:
        return chunks[0]
    return Chunk(
        weights_version=chunks[0].weights_version,
        observations=np.concatenate([c.observations for c in chunks]),
        actions=np.concatenate([c.actions for c in chunks]),
        rewards=np.concatenate([c.rewards for c in chunks]),
        dones=np.concatenate([c.dones for c in chunks]),
        infos=[infos for c in chunks for infos in c.infos],
        policy_targets=np.concatenate([c.policy_targets for c in chunks]),
        legal_masks=np.concatenate([c.legal_masks for c in chunks]),
        next_observation=chunks[-1].next_observation,
        search_seconds=sum(c.search_seconds for c in chunks),
        env_seconds=sum(c.env_seconds for c in chunks),
        cpu_seconds=chunks[-1].cpu_seconds,
    )


class Collected(NamedTuple):
    """A self-play actor's answer to request ``request_id``: the chunk and the actor's idle time before it.

    :param request_id: the learner's number of the request.
    :param idle_seconds: wall seconds between the actor's previous chunk and this request (waiting for weights).
    :param chunk: every step of the request (the pieces shipped ahead included).
    """

    request_id: int
    idle_seconds: float
    chunk: Chunk


class SelfPlayWorker:
    """A Ray actor (``ray.remote`` applied by :func:`remote`) around an :class:`Actor`.

    :param payload: ``[ref]``, ``ref`` an object-store reference to cloudpickled ``(env, network, settings, rng,
        last_observation)`` as :class:`Actor` takes them; in a list, so that Ray passes it unresolved and the
        driver keeps it to start a replacement.
    :param pieces: a ``ray.util.queue.Queue`` (a Ray actor of its own, outliving this one) for
        ``(request_id, Chunk)`` pieces.
    :param fresh_start: a replacement for a dead actor: new seeds for the envs and the search, and the envs reset,
        instead of replaying the first actor's steps from the same payload.
    """

    def __init__(self, payload: list[Any], pieces: Any, fresh_start: bool = False):
        th.set_num_threads(1)  # tiny networks: more threads only contend for the cores
        env, network, settings, rng, last_observation = cloudpickle.loads(import_ray().get(payload[0]))
        if fresh_start:
            rng = np.random.default_rng()
            env.seed(int(rng.integers(2**31)))
            last_observation = env.reset()
        self.actor = Actor(env, network, settings, rng, last_observation)
        self.pieces = pieces
        self._last_end: float | None = None

    def collect(self, request_id: int, version: int, weights: np.ndarray, num_steps: int, temperature: float) -> Collected:
        """``Actor.set_weights``, then ``num_steps`` steps of ``Actor.collect``.

        After every step in which an episode ended, the steps not yet shipped also go to the queue as one piece,
        and the actor waits until the queue holds it: an episode that ended reaches the learner even if this
        process dies before answering. The steps and the Generator's draws are those of one
        ``Actor.collect(num_steps)``.
        """
        start = time.perf_counter()
        idle = 0.0 if self._last_end is None else start - self._last_end
        self.actor.set_weights(version, weights)
        steps: list[Chunk] = []
        shipped = 0
        for _ in range(num_steps):
            steps.append(self.actor.collect(1, temperature=temperature))
            if steps[-1].dones.any():
                self.pieces.put((request_id, join_steps(steps[shipped:])))  # returns once the queue actor holds it
                shipped = len(steps)
        self._last_end = time.perf_counter()
        return Collected(request_id, idle, join_steps(steps))

    def state(self) -> bytes:
        """Cloudpickled ``(env, last_observation, rng)``, to hand the envs back to the driver."""
        return cloudpickle.dumps((self.actor.env, self.actor.last_observation, self.actor.rng))


def reanalyse_targets(
    compiled: CompiledMlpModel,
    settings: SearchConfig,
    observations: np.ndarray,
    legal_mask: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """``[M, A]`` policy targets by a search without exploration noise (``MuZero._policy_targets``)."""
    root = compiled.root(observations)
    output = run_policy(settings, root, compiled.recurrent_fn, legal_mask=legal_mask, rng=rng, explore=False, temperature=1.0)
    return output.action_weights


class ReanalyseWorker:
    """A Ray actor that reanalyses observations with a compiled CPU copy of the network.

    :param payload: ``[ref]`` to cloudpickled ``(network, settings, seed)`` (as :class:`SelfPlayWorker`'s).
    """

    def __init__(self, payload: list[Any]):
        th.set_num_threads(1)
        network, self.settings, seed = cloudpickle.loads(import_ray().get(payload[0]))
        self.compiled = CompiledMlpModel(network)
        self.rng = np.random.default_rng(seed)

    def targets(self, weights: np.ndarray, observations: np.ndarray, legal_mask: np.ndarray | None) -> np.ndarray:
        """``[M, A]`` reanalysed policy targets of ``observations [M, *obs]`` with ``weights``."""
        self.compiled.params[:] = weights
        return reanalyse_targets(self.compiled, self.settings, observations, legal_mask, self.rng)
