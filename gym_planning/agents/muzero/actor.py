"""Acting apart from learning: an :class:`Actor` steps a vector of envs with batched compiled search, and
:class:`ActorProcess` runs one in a child process so that acting overlaps the learner's gradient steps.

The split is the one a distributed version reuses (issue 15): the learner only calls
``set_weights(version, weights)`` and ``collect(n) -> Chunk`` and consumes chunks in order; an actor only
needs a weight snapshot and its envs. A Ray actor is then a thin wrapper around :class:`Actor`, as
:class:`ActorProcess` is one around a ``multiprocessing`` pipe.

Weights are the flat float64 ``params`` of :class:`~gym_planning.models.compiled.CompiledMlpModel`
(every weight of the network, a few hundred kB for classic control), tagged with a version: the
learner's number of gradient steps when it took the snapshot. MuZero's learner requests chunk ``i + 1``
before it trains on chunk ``i``, so chunk ``i + 1`` is collected with weights one chunk older than the
newest (staleness = ``replay_ratio * n_envs * chunk_steps`` gradient steps) and the message order, hence
the run, is fixed by the seed.

Letters: ``N`` steps per chunk, ``E`` envs, ``A`` actions.
"""

from __future__ import annotations

import copy
import multiprocessing
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, cast

import cloudpickle
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv

from gym_planning.models.compiled import CompiledMlpModel
from gym_planning.models.networks import MlpMuZeroNetwork
from gym_planning.search import SearchConfig, SearchOutput, run_policy

# "fork" where the platform has it (Linux): the child inherits the imported modules and compiled kernels
# instead of importing torch and loading Numba's cache again (5 s of wall time on the 2-core machine under
# load, 2 s of CPU), and scripts need no ``if __name__ == "__main__"`` guard. The child runs no OpenMP or
# torch thread pool (torch is single-threaded there, the search compiled without ``parallel``), the
# usual hazard of forking a process that used them. Elsewhere (macOS, Windows) "spawn".
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() and sys.platform == "linux" else "spawn"


class Chunk(NamedTuple):
    """``N`` consecutive steps of ``E`` envs, collected with weights ``weights_version``.

    :param observations: ``[N, E, *obs]`` the observation each step acted on.
    :param actions: ``[N, E]`` int64 actions taken.
    :param rewards: ``[N, E]`` float32 rewards received.
    :param dones: ``[N, E]`` bool episode ends (terminated or truncated; ``infos`` say which, as SB3's VecEnv).
    :param infos: ``N`` lists of ``E`` info dicts (``episode``, ``terminal_observation``, ``TimeLimit.truncated``).
    :param policy_targets: ``[N, E, A]`` float32 search visit distributions.
    :param legal_masks: ``[N, E, A]`` bool, True = legal.
    :param next_observation: ``[E, *obs]`` the observation after the last step.
    :param search_seconds: wall seconds of the chunk's searches.
    :param env_seconds: wall seconds of the chunk's env steps.
    :param cpu_seconds: CPU seconds of the actor's process so far (all chunks).
    """

    weights_version: int
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    infos: list[list[dict[str, Any]]]
    policy_targets: np.ndarray
    legal_masks: np.ndarray
    next_observation: np.ndarray
    search_seconds: float
    env_seconds: float
    cpu_seconds: float


class Actor:
    """Steps ``env`` with a batched search through a compiled CPU copy of the network.

    :param env: the envs to act in (their state is the actor's; hand it back with :attr:`env`).
    :param network: an ``MlpMuZeroNetwork`` on the CPU, used for its layout and preprocessing; its weights
        are replaced by :meth:`set_weights`.
    :param settings: the acting search's settings.
    :param rng: the Generator of every search (noise, sampled actions).
    :param last_observation: ``[E, *obs]`` the envs' current observation.
    """

    def __init__(
        self,
        env: VecEnv,
        network: MlpMuZeroNetwork,
        settings: SearchConfig,
        rng: np.random.Generator,
        last_observation: np.ndarray,
    ):
        self.env = env
        self.compiled = CompiledMlpModel(network)
        self.settings = settings
        self.rng = rng
        self.last_observation = last_observation
        self.weights_version = -1

    def set_weights(self, version: int, weights: np.ndarray) -> None:
        """Act with ``weights`` (a snapshot of ``CompiledMlpModel.params``) from now on."""
        if weights.shape != self.compiled.params.shape:
            raise ValueError(
                f"weights of shape {weights.shape} do not fit this actor's network {self.compiled.params.shape}: "
                "send CompiledMlpModel.params of the same network"
            )
        self.compiled.params[:] = weights
        self.weights_version = version

    def _legal_masks(self) -> np.ndarray | None:
        """``[E, A]`` from the envs' ``action_masks()`` (sb3-contrib style), or None when they have none."""
        if not self.env.has_attr("action_masks"):
            return None
        return np.stack(self.env.env_method("action_masks")).astype(bool)

    def _search(self, mask: np.ndarray | None, temperature: float) -> SearchOutput:
        """One exploring search over the ``E`` current observations (as ``MuZero._run_search`` at train time)."""
        root = self.compiled.root(self.last_observation)
        return run_policy(
            self.settings,
            root,
            self.compiled.recurrent_fn,
            legal_mask=mask,
            rng=self.rng,
            explore=True,
            temperature=temperature,
        )

    def collect(self, num_steps: int, *, temperature: float) -> Chunk:
        """Step every env ``num_steps`` times, acting by search at visit temperature ``temperature``."""
        if self.weights_version < 0:
            raise RuntimeError("Actor.collect before set_weights: send the learner's weights first")
        if num_steps < 1:
            raise ValueError(f"collect takes num_steps >= 1; got {num_steps}")
        steps: list[tuple] = []
        search_seconds = env_seconds = 0.0
        for _ in range(num_steps):
            start = time.perf_counter()
            legal_mask = self._legal_masks()
            output = self._search(legal_mask, temperature)
            if legal_mask is None:
                legal_mask = np.ones(output.action_weights.shape, np.bool_)
            middle = time.perf_counter()
            new_obs, rewards, dones, infos = self.env.step(output.action)
            env_seconds += time.perf_counter() - middle
            search_seconds += middle - start
            steps.append((self.last_observation, output.action, rewards, dones, infos, output.action_weights, legal_mask))
            # MuZero refuses Dict and Tuple observation spaces, so the VecEnv's observations are one array.
            self.last_observation = cast(np.ndarray, new_obs)
        observations, actions, step_rewards, step_dones, step_infos, targets, masks = zip(*steps)
        return Chunk(
            weights_version=self.weights_version,
            observations=np.stack(observations),
            actions=np.stack(actions).astype(np.int64),
            rewards=np.stack(step_rewards).astype(np.float32),
            dones=np.stack(step_dones).astype(bool),
            infos=list(step_infos),
            policy_targets=np.stack(targets).astype(np.float32),
            legal_masks=np.stack(masks),
            next_observation=self.last_observation,
            search_seconds=search_seconds,
            env_seconds=env_seconds,
            cpu_seconds=time.process_time(),
        )


def _serve(connection: Connection, payload: bytes) -> None:
    """The child process: build an :class:`Actor` and answer the learner's messages until ``close``.

    Messages: ``("collect", version, weights, num_steps, temperature)`` -> a :class:`Chunk`;
    ``("close",)`` -> cloudpickled ``(env, last_observation, rng)``. An exception is sent back as
    ``("error", traceback)``.
    """
    th.set_num_threads(1)  # tiny networks: more threads only contend for the cores
    try:
        actor = Actor(*cloudpickle.loads(payload))
        while True:
            message = connection.recv()
            if message[0] == "close":
                connection.send(cloudpickle.dumps((actor.env, actor.last_observation, actor.rng)))
                return
            _, version, weights, num_steps, temperature = message
            actor.set_weights(version, weights)
            connection.send(actor.collect(num_steps, temperature=temperature))
    except Exception:  # noqa: BLE001 -- the learner re-raises it with the child's traceback
        connection.send(("error", traceback.format_exc()))


class ActorProcess:
    """An :class:`Actor` in a child process (``spawn``), driven through a pipe.

    Use as a context manager; :meth:`close` returns the envs, their last observation and the search
    Generator, so the learner continues from where the actor stopped.

    :param env: the envs (sent to the child with cloudpickle, so they must pickle: e.g. a ``DummyVecEnv``).
    (Other parameters as :class:`Actor`.)
    :raises ValueError: when the envs do not pickle.
    """

    def __init__(
        self,
        env: VecEnv,
        network: MlpMuZeroNetwork,
        settings: SearchConfig,
        rng: np.random.Generator,
        last_observation: np.ndarray,
    ):
        if multiprocessing.current_process().daemon:
            raise RuntimeError(
                "async_actors=1 cannot start its actor process from a daemonic process (e.g. a multiprocessing.Pool "
                "worker): train in a non-daemonic Process, or use async_actors=0 there"
            )
        try:
            # A CPU copy: the learner's network may live on a GPU and keeps training.
            payload = cloudpickle.dumps((env, copy.deepcopy(network).cpu(), settings, rng, last_observation))
        except Exception as error:  # noqa: BLE001 -- any pickling failure gets the same advice
            raise ValueError(
                f"async_actors sends the envs to an actor process, but {type(env).__name__} does not pickle "
                f"({type(error).__name__}: {error}): use a DummyVecEnv of picklable envs, or async_actors=0"
            ) from None
        context = multiprocessing.get_context(START_METHOD)
        self._connection, child = context.Pipe()
        # typeshed's BaseContext (get_context's type for a str) lacks Process; every concrete context has it.
        self._process = context.Process(target=_serve, args=(child, payload), daemon=True, name="muzero-actor")  # type: ignore[attr-defined]
        self._process.start()
        child.close()
        self._pending = False

    def request(self, version: int, weights: np.ndarray, num_steps: int, temperature: float) -> None:
        """Ask for the next chunk (collected with ``weights``); at most one request is outstanding."""
        assert not self._pending, "receive the outstanding chunk before requesting another"
        self._connection.send(("collect", version, weights, num_steps, temperature))
        self._pending = True

    def _receive(self) -> Any:
        try:
            message = self._connection.recv()
        except (EOFError, ConnectionError) as error:
            self._process.join(timeout=5)
            raise RuntimeError(
                f"the MuZero actor process ended without answering (exit code {self._process.exitcode}, "
                f"{type(error).__name__}); with the 'spawn' start method the script that trains must guard its "
                'entry point with `if __name__ == "__main__":`'
            ) from None
        if isinstance(message, tuple) and message and message[0] == "error":
            raise RuntimeError(f"the MuZero actor process failed:\n{message[1]}")
        return message

    def receive(self) -> Chunk:
        """The chunk of the outstanding request (blocks until the actor has collected it)."""
        assert self._pending, "request a chunk before receiving one"
        self._pending = False
        return self._receive()

    @property
    def pending(self) -> bool:
        """Whether a requested chunk has not been received yet."""
        return self._pending

    def close(self) -> tuple[VecEnv, np.ndarray, np.random.Generator]:
        """Stop the actor; ``(env, last_observation, rng)`` as it left them (receive pending chunks first)."""
        assert not self._pending, "receive the outstanding chunk before closing"
        self._connection.send(("close",))
        state = cloudpickle.loads(self._receive())
        self._process.join()
        self._connection.close()
        return state

    def terminate(self) -> None:
        """End the child process at once (after an error)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._connection.close()

    def __enter__(self) -> ActorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process.is_alive() and exc_info[0] is not None:
            self.terminate()
