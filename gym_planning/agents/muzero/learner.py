"""MuZero's learner fed by an actor process (``MuZero(async_actors=1)``).

The learner keeps everything but acting: the replay, targets, gradient steps, callbacks and logs. It
consumes the actor's chunks in order, one step at a time, exactly as the single-process loop stores a
step and then trains ``replay_ratio`` gradient steps per env step. Overlap comes from the order of the
messages: the learner requests chunk ``i + 1`` (with its newest weights) *before* it trains on chunk ``i``,
so the actor searches while the learner takes gradient steps. Acting weights are therefore one chunk
old, and since the order of messages is fixed, a seeded run is reproducible.

Letters: ``N`` steps per chunk, ``E`` envs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

from stable_baselines3.common.callbacks import BaseCallback

from gym_planning.agents.muzero.actor import ActorProcess, Chunk
from gym_planning.models.networks import MlpMuZeroNetwork

if TYPE_CHECKING:
    from gym_planning.agents.muzero.muzero import MuZero


def _request(actor: ActorProcess, model: MuZero, remaining_steps: int) -> None:
    """Ask for up to ``async_chunk_steps`` steps of every env (no more than ``remaining_steps`` in all, rounded
    up to whole vector steps), acting with a snapshot of the newest weights."""
    assert model.env is not None and model._compiled is not None
    num_steps = min(model.async_chunk_steps, math.ceil(remaining_steps / model.env.num_envs))
    model._compiled.refresh()
    weights = model._compiled.params.copy()
    actor.request(model._n_updates, weights, num_steps, model._current_temperature())


def _store_chunk(
    model: MuZero, chunk: Chunk, callback: BaseCallback | None, log_interval: int | None, total_timesteps: int
) -> bool:
    """Store the chunk's steps in order, training after each as the single-process loop does.

    :param callback: None after a callback stopped training: the steps are stored (the envs took them)
        without callbacks or training.
    :return: False once a callback stopped training.
    """
    from gym_planning.agents.muzero.muzero import _check_finite  # muzero imports this module

    model.logger.record("train/actor_weights_age", model._n_updates - chunk.weights_version)
    for i in range(len(chunk.actions)):
        model._update_current_progress_remaining(model.num_timesteps, total_timesteps)
        model._last_obs = chunk.observations[i]
        _check_finite(chunk.observations[i], "observation", model.num_timesteps)
        next_obs = chunk.observations[i + 1] if i + 1 < len(chunk.actions) else chunk.next_observation
        if callback is not None:
            callback.on_rollout_start()
        step = (chunk.actions[i], chunk.policy_targets[i], chunk.legal_masks[i], next_obs, chunk.rewards[i])
        if model._store_step(*step, chunk.dones[i], chunk.infos[i], callback, log_interval):
            model._train_after_step()
        else:
            callback = None
    return callback is not None


def learn_with_actor_process(model: MuZero, total_timesteps: int, callback: BaseCallback, log_interval: int | None) -> None:
    """Train ``model`` until ``total_timesteps`` env steps, acting in an :class:`ActorProcess`.

    The envs, their last observation and the search Generator go to the actor and come back at the end,
    so a later ``learn`` (either mode) continues from where this one stopped.
    """
    assert model.env is not None and model._last_obs is not None
    cpu_before = model.actor_cpu_seconds
    # async_actors needs the compiled copy, which only an MlpMuZeroNetwork has (MuZero._setup_model checks).
    network = cast(MlpMuZeroNetwork, model.policy.network)
    actor = ActorProcess(model.env, network, model.search_config, model.search_rng, model._last_obs)
    with actor:
        _request(actor, model, total_timesteps - model.num_timesteps)
        running = True
        while actor.pending:
            with model._timed("wait"):
                chunk = actor.receive()
            model.actor_cpu_seconds = cpu_before + chunk.cpu_seconds
            model.phase_seconds["search"] += chunk.search_seconds
            model.phase_seconds["env"] += chunk.env_seconds
            after_chunk = model.num_timesteps + chunk.actions.size
            if running and after_chunk < total_timesteps:
                _request(actor, model, total_timesteps - after_chunk)  # the actor collects while we train
            running = _store_chunk(model, chunk, callback if running else None, log_interval, total_timesteps)
        model.env, model._last_obs, model.search_rng = actor.close()
