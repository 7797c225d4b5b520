"""``gym-planning eval``: every budget x depth row, the agent alone, cached rows, learned vs simulator model."""

from __future__ import annotations

import pytest

from gym_planning.experiments import evaluate
from gym_planning.experiments.cli import main
from gym_planning.experiments.runs import read_csv

TRAIN = ["--hyperparams", "learning_starts=32", "batch_size=8", "buffer_size=200", "num_simulations=2", "n_envs=2",
         "--n-timesteps", "40", "--no-progress-bar"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    assert main(["train", "--algo", "muzero", "--env", "CartPole-v1", "--out", str(out), *TRAIN]) == 0
    ppo = ["--n-timesteps", "64", "--hyperparams", "n_envs=2", "n_steps=32", "batch_size=32", "n_epochs=1"]
    ppo += ["--no-progress-bar"]
    assert main(["train", "--algo", "ppo", "--env", "CartPole-v1", "--out", str(out), *ppo]) == 0
    return out


def test_muzero_at_every_budget_and_depth(runs, monkeypatch):
    run_dir = runs / "muzero" / "CartPole-v1_seed0"
    argv = ["eval", str(run_dir), "--search-budget", "1,3", "--depth", "1,inf", "--episodes", "2"]
    assert main(argv) == 0
    rows = read_csv(run_dir / "eval.csv")
    assert [(r["model"], r["simulations"], str(r["depth"])) for r in rows] == [
        ("none", 0, "inf"),
        ("learned", 1, "1"),
        ("learned", 3, "1"),
        ("learned", 1, "inf"),
        ("learned", 3, "inf"),
    ]
    assert all(r["env_steps"] == 40 and r["episodes"] == 2 and r["mean_return"] >= 8 for r in rows)

    # Asked again, every row comes from eval.csv: nothing is played.
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("a cached setting was evaluated again"))
    assert main(argv) == 0


def test_a_model_free_agent_searches_with_the_simulator(runs, capsys):
    run_dir = runs / "ppo" / "CartPole-v1_seed0"
    assert main(["eval", str(run_dir), "--search-budget", "2", "--episodes", "2"]) == 0
    rows = read_csv(run_dir / "eval.csv")
    assert [(r["model"], r["simulations"]) for r in rows] == [("none", 0), ("simulator", 2)]
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--model", "learned", "--episodes", "2"]) == 2
    assert "PPO has no learned model to search with; use --model simulator" in capsys.readouterr().err
