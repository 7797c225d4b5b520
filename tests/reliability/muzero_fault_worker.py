"""Subprocess for ``test_faults.py``: trains a tiny MuZero on CartPole and kills itself (SIGKILL) at a
reproducible point. Run from the repository root: ``python -m tests.reliability.muzero_fault_worker MODE DIR``.

Modes:
- ``learn``: checkpoints every 40 vector steps (model + replay), killed at vector step 100 between checkpoints.
- ``checkpoint``: same, killed halfway through writing the third checkpoint's replay (``pickle.dump``).
- ``save-model`` / ``save-replay``: saves model and replay, trains on, then is killed halfway through
  saving the model (``torch.save`` inside the zip) or the replay over the first files.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import sys
from pathlib import Path

import torch as th

th.set_num_threads(1)

import stable_baselines3.common.save_util as save_util  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

import gym_planning  # noqa: E402
from gym_planning.agents.muzero import MuZero  # noqa: E402

N_ENVS = 2
SAVE_FREQ = 40  # vector steps between checkpoints
KILL_AT = 100  # vector step of the kill in "learn" mode
TINY = dict(
    num_simulations=2,
    learning_starts=32,
    batch_size=8,
    replay_ratio=0.1,
    buffer_size=1_000,
    value_support_size=3,
    reward_support_size=1,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=8, hidden_sizes=(16,))),
)


def make_env(folder: Path, seed: int = 0):
    """CartPole in ``N_ENVS`` envs, each with a Monitor file ``<env>.monitor.csv`` (flushed per episode)."""
    return make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=seed, monitor_dir=str(folder / "monitor"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAtStep(BaseCallback):
    """SIGKILL this process at a given vector step (after the step was stored)."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.n_calls == self.step:
            _die()
        return True


def die_halfway(real_write, calls_before: int = 0):
    """A replacement for ``pickle.dump`` / ``torch.save`` that writes half of its bytes, then SIGKILLs the
    process, on its ``calls_before + 1``-th call (earlier calls write normally)."""
    calls = [0]

    def write(obj, file, *args, **kwargs):
        calls[0] += 1
        if calls[0] <= calls_before:
            return real_write(obj, file, *args, **kwargs)
        buffer = io.BytesIO()
        real_write(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        file.write(data[: len(data) // 2])
        file.flush()
        _die()

    return write


def main(mode: str, folder: Path) -> None:
    print(gym_planning.__file__, flush=True)
    model = MuZero("MlpPolicy", make_env(folder), seed=0, **TINY)
    if mode in ("learn", "checkpoint"):
        checkpoints = CheckpointCallback(SAVE_FREQ, str(folder / "checkpoints"), save_replay_buffer=True)
        callbacks = [checkpoints]
        if mode == "learn":
            callbacks.append(KillAtStep(KILL_AT))
        else:  # the replay of checkpoint 3 dies halfway (pickle.dump is called once per replay save)
            save_util.pickle.dump = die_halfway(pickle.dump, calls_before=2)
        model.learn(10_000, callback=callbacks)
    else:
        model.learn(64)
        model.save(folder / "model")
        model.save_replay_buffer(folder / "replay")
        good = dict(num_timesteps=model.num_timesteps, n_updates=model._n_updates, replay=len(model.replay_buffer))
        (folder / "good.json").write_text(json.dumps(good))
        model.learn(32, reset_num_timesteps=False)
        if mode == "save-model":
            save_util.th.save = die_halfway(th.save)
            model.save(folder / "model")
        else:
            save_util.pickle.dump = die_halfway(pickle.dump)
            model.save_replay_buffer(folder / "replay")
    raise SystemExit("the worker was not killed")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
