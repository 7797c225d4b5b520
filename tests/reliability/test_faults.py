"""MuZero killed with SIGKILL while learning or saving: the last checkpoint loads, holds every episode
finished before it, and training resumes from it. Each test runs ``muzero_fault_worker`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gym_planning.agents.muzero import MuZero
from tests.reliability.muzero_fault_worker import KILL_AT, N_ENVS, SAVE_FREQ, make_env

ROOT = Path(__file__).resolve().parents[2]


def _run_worker(mode: str, folder: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "tests.reliability.muzero_fault_worker", mode, str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    assert result.stdout.startswith(str(ROOT / "gym_planning")), result.stdout  # this checkout was tested


def _checkpoints(folder: Path) -> dict[int, tuple[Path, Path | None]]:
    """``num_timesteps -> (model zip, replay pkl or None)`` of the CheckpointCallback's files."""
    found = {}
    for model_file in folder.glob("rl_model_*_steps.zip"):
        steps = int(model_file.name.split("_")[2])
        replay = folder / f"rl_model_replay_buffer_{steps}_steps.pkl"
        found[steps] = (model_file, replay if replay.exists() else None)
    return found


def _finished_episodes(monitor_file: Path, steps_per_env: int) -> list[int]:
    """Lengths of the episodes that the Monitor logged as finished within the first ``steps_per_env`` steps."""
    rows = monitor_file.read_text().splitlines()[2:]  # after the JSON header and "r,l,t"
    lengths = np.array([int(row.split(",")[1]) for row in rows], np.int64)
    return lengths[np.cumsum(lengths) <= steps_per_env].tolist()


def _stored_episodes(model: MuZero, env: int) -> tuple[list[int], list[float]]:
    """Lengths and returns of the complete episodes in one env's column of the replay (no wrap-around)."""
    buffer = model.replay_buffer
    assert not buffer.full
    ends = np.flatnonzero(buffer.episode_end[: buffer.pos, env])
    starts = np.concatenate([[0], ends[:-1] + 1])
    returns = [float(buffer.rewards[s : e + 1, env].sum()) for s, e in zip(starts, ends)]
    return (ends - starts + 1).tolist(), returns


def _check_checkpoints_and_resume(folder: Path, last_steps: int) -> None:
    checkpoints = _checkpoints(folder / "checkpoints")
    for model_file, replay_file in checkpoints.values():  # every file a checkpoint left loads
        MuZero.load(model_file)
        if replay_file is not None:
            MuZero.load(model_file).load_replay_buffer(replay_file)
    steps = max(s for s, (_, replay) in checkpoints.items() if replay is not None)
    assert steps == last_steps
    model_file, replay_file = checkpoints[steps]
    model = MuZero.load(model_file, env=make_env(folder / "resume", seed=1))
    model.load_replay_buffer(replay_file)
    assert model.num_timesteps == steps and len(model.replay_buffer) == steps
    # Zero finished episodes lost: the replay holds exactly the episodes the Monitor saw end before the checkpoint.
    for env in range(N_ENVS):
        monitor_file = folder / "monitor" / f"{env}.monitor.csv"
        lengths, returns = _stored_episodes(model, env)
        assert lengths == _finished_episodes(monitor_file, steps // N_ENVS) and len(lengths) > 0
        assert returns == [float(n) for n in lengths]  # CartPole: reward 1 per step
    # Resume in a fresh env: the episodes running at the checkpoint are closed, not stitched on.
    row = model.replay_buffer.pos - 1
    open_envs = np.flatnonzero(~model.replay_buffer.episode_end[row])
    updates = model._n_updates
    model.learn(2 * N_ENVS * 4, reset_num_timesteps=False)
    assert model.replay_buffer.final_unknown[row, open_envs].all() and model._n_updates > updates
    assert model.num_timesteps == steps + 2 * N_ENVS * 4


def test_kill_during_learn_resumes_from_the_last_checkpoint(tmp_path):
    _run_worker("learn", tmp_path)
    last = (KILL_AT // SAVE_FREQ) * SAVE_FREQ * N_ENVS
    _check_checkpoints_and_resume(tmp_path, last)


def test_kill_while_checkpointing_leaves_no_truncated_file(tmp_path):
    _run_worker("checkpoint", tmp_path)
    # The third checkpoint's model was written, its replay was being written: only the hidden temporary
    # file is left, so the newest complete pair is the second checkpoint.
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if not p.name.startswith("."))
    assert names == [f"rl_model_{s}_steps.zip" for s in (160, 240, 80)] + [
        f"rl_model_replay_buffer_{s}_steps.pkl" for s in (160, 80)
    ]
    _check_checkpoints_and_resume(tmp_path, 2 * SAVE_FREQ * N_ENVS)


@pytest.mark.parametrize("mode", ["save-model", "save-replay"])
def test_kill_while_saving_over_a_file_keeps_the_previous_one(tmp_path, mode):
    _run_worker(mode, tmp_path)
    good = json.loads((tmp_path / "good.json").read_text())
    model = MuZero.load(tmp_path / "model", env=make_env(tmp_path))
    assert (model.num_timesteps, model._n_updates) == (good["num_timesteps"], good["n_updates"])
    model.load_replay_buffer(tmp_path / "replay")
    assert len(model.replay_buffer) == good["replay"]
    model.learn(8, reset_num_timesteps=False)
