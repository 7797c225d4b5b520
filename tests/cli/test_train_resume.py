"""An interrupted ``train`` continues the same run from its latest checkpoint, replay included."""

from __future__ import annotations

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from gym_planning.experiments import train
from gym_planning.experiments.cli import main
from gym_planning.experiments.runs import checkpoints, read_csv

ARGV = ["train", "--algo", "muzero", "--env", "CartPole-v1", "--hyperparams", "learning_starts=32", "batch_size=8",
        "buffer_size=400", "num_simulations=2", "n_envs=2", "--n-timesteps", "160", "--save-freq", "40",
        "--eval-freq", "40", "--eval-episodes", "2", "--no-progress-bar"]  # fmt: skip


class Interrupt(BaseCallback):
    """Raises KeyboardInterrupt (a user's Ctrl-C) once ``at`` env steps are done."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt
        return True


def test_an_interrupted_run_continues_from_its_checkpoint(tmp_path, monkeypatch):
    argv = [*ARGV, "--out", str(tmp_path)]
    run_dir = tmp_path / "muzero" / "CartPole-v1_seed0"
    monkeypatch.setattr(train, "extra_callbacks", lambda: [Interrupt(at=100)])
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    assert [steps for steps, _ in checkpoints(run_dir)] == [40, 80]  # the newest two are kept
    assert [row["env_steps"] for row in read_csv(run_dir / "evaluations.csv")] == [0, 40, 80]

    resumed = []
    original = train._resume

    def spy(*args, **kwargs):
        agent, rows = original(*args, **kwargs)
        resumed.append((agent.num_timesteps, len(agent.replay_buffer)))
        return agent, rows

    monkeypatch.setattr(train, "extra_callbacks", list)
    monkeypatch.setattr(train, "_resume", spy)
    assert main(argv) == 0
    assert resumed and resumed[0] == (80, 80), "continued from the 80-step checkpoint with its 80-step replay"
    rows = read_csv(run_dir / "evaluations.csv")
    assert [row["env_steps"] for row in rows] == [0, 40, 80, 120, 160]
    assert all(later["wall_s"] >= earlier["wall_s"] for earlier, later in zip(rows, rows[1:]))
    assert [steps for steps, _ in checkpoints(run_dir)] == [120, 160]
    assert (run_dir / "checkpoints" / "rl_model_replay_buffer_160_steps.pkl").is_file()

    # Once finished, the same command trains nothing more.
    monkeypatch.setattr(train, "extra_callbacks", lambda: [Interrupt(at=0)])
    assert main(argv) == 0
