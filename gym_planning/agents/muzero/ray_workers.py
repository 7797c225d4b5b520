"""The Ray actors of distributed MuZero (:mod:`gym_planning.agents.muzero.distributed`), plain classes that
``ray.remote`` wraps when a run starts, so that this module imports without Ray:

- :class:`SelfPlayWorker` wraps an :class:`~gym_planning.agents.muzero.actor.Actor` (its envs, a compiled CPU
  copy of the network, a search Generator) and answers ``collect`` with a :class:`Collected` chunk;
- :class:`ReanalyseWorker` recomputes policy targets by a search without noise (:func:`reanalyse_targets`).

Letters: ``M`` reanalysed positions, ``A`` actions.
"""

from __future__ import annotations

import time
import uuid
import warnings
from typing import Any, NamedTuple

import cloudpickle
import numpy as np
import torch as th

from gym_planning.agents.muzero.actor import Actor, Chunk
from gym_planning.models.compiled import CompiledMlpModel
from gym_planning.search import SearchConfig, run_policy

INSTALL_HINT = "pip install gym-planning[ray]"


def import_ray() -> Any:
    """The ``ray`` module, or one ImportError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"MuZero's distributed version needs Ray Core: {INSTALL_HINT}") from None
    return ray


def _reconstructed() -> bool:
    """Whether Ray restarted the current actor after a failure."""
    ray = import_ray()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray deprecates an attribute it reads inside this property
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


class Collected(NamedTuple):
    """A self-play actor's answer: the chunk, the actor's life and its idle time before the request.

    :param incarnation: a random id of the actor process; it changes when Ray restarts the actor.
    :param idle_seconds: wall seconds between the actor's previous chunk and this request (waiting for weights).
    """

    incarnation: str
    idle_seconds: float
    chunk: Chunk


class SelfPlayWorker:
    """A Ray actor (``ray.remote`` applied in :func:`_remote`) around an :class:`Actor`.

    :param payload: ``[ref]``, ``ref`` an object-store reference to cloudpickled ``(env, network, settings, rng,
        last_observation)`` as :class:`Actor` takes them; in a list, so that the driver keeps it for restarts and
        Ray passes it unresolved. After a restart the same payload comes back, so the envs start fresh episodes
        from new seeds instead of replaying the first life's steps.
    """

    def __init__(self, payload: list[Any]):
        th.set_num_threads(1)  # tiny networks: more threads only contend for the cores
        env, network, settings, rng, last_observation = cloudpickle.loads(import_ray().get(payload[0]))
        if _reconstructed():
            rng = np.random.default_rng()
            env.seed(int(rng.integers(2**31)))
            last_observation = env.reset()
        self.actor = Actor(env, network, settings, rng, last_observation)
        self.incarnation = uuid.uuid4().hex
        self._last_end: float | None = None

    def collect(self, version: int, weights: np.ndarray, num_steps: int, temperature: float) -> Collected:
        """``Actor.set_weights`` then ``Actor.collect``; ``weights`` arrive through the object store."""
        start = time.perf_counter()
        idle = 0.0 if self._last_end is None else start - self._last_end
        self.actor.set_weights(version, weights)
        chunk = self.actor.collect(num_steps, temperature=temperature)
        self._last_end = time.perf_counter()
        return Collected(self.incarnation, idle, chunk)

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
