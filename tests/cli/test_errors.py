"""The command line rejects bad input with one message naming it and the valid choices."""

from __future__ import annotations

import pytest

from gym_planning.experiments.cli import main

TINY = ["--hyperparams", "learning_starts=32", "batch_size=8", "buffer_size=200", "num_simulations=2", "n_envs=2",
        "--n-timesteps", "40", "--no-progress-bar"]  # fmt: skip


def _error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        status = main(argv)
        raise SystemExit(status)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_unknown_algorithm_names_the_choices(capsys, tmp_path):
    err = _error(capsys, ["train", "--algo", "td3", "--env", "CartPole-v1", "--out", str(tmp_path)])
    assert "invalid choice: 'td3'" in err and "muzero" in err and "ppo" in err


def test_unknown_study_names_the_choices(capsys):
    err = _error(capsys, ["study", "planning-everything", "--env", "CartPole-v1"])
    assert "invalid choice: 'planning-everything'" in err and "test-budget" in err and "generalisation" in err


def test_env_without_settings_names_the_envs_that_have_some(capsys, tmp_path):
    err = _error(capsys, ["train", "--algo", "muzero", "--env", "MountainCar-v0", "--out", str(tmp_path)])
    assert "'MountainCar-v0'" in err and "CartPole-v1" in err and "--conf" in err
    assert not any(tmp_path.iterdir()), "nothing is written for a refused command"


def test_unregistered_env_is_named_with_the_nearest_ids(capsys, tmp_path):
    err = _error(capsys, ["train", "--algo", "ppo", "--env", "CartPol-v1", "--out", str(tmp_path)])
    assert "unknown env 'CartPol-v1'" in err and "CartPole" in err


def test_unknown_hyperparameter_names_the_valid_ones(capsys, tmp_path):
    err = _error(capsys, ["train", "--algo", "muzero", "--env", "CartPole-v1", "--out", str(tmp_path),
                          "--hyperparams", "num_simulation=8"])  # fmt: skip
    assert "num_simulation" in err and "'num_simulations'" in err and err.count("\n") == 1


def test_malformed_hyperparameter(capsys, tmp_path):
    err = _error(capsys, ["train", "--algo", "ppo", "--env", "CartPole-v1", "--out", str(tmp_path), "--hyperparams", "gamma"])
    assert "'gamma' is not key=value" in err


def test_a_folder_of_another_config_is_refused_not_overwritten(capsys, tmp_path):
    argv = ["train", "--algo", "muzero", "--env", "CartPole-v1", "--out", str(tmp_path), *TINY]
    assert main(argv) == 0
    config = (tmp_path / "muzero" / "CartPole-v1_seed0" / "config.yml").read_text()
    capsys.readouterr()
    err = _error(capsys, argv[:-3] + ["discount=0.9", *argv[-3:]])
    assert "holds a run of another configuration" in err and "discount: None there, 0.9 now" in err
    assert (tmp_path / "muzero" / "CartPole-v1_seed0" / "config.yml").read_text() == config


def test_eval_of_a_folder_that_is_no_run(capsys, tmp_path):
    err = _error(capsys, ["eval", str(tmp_path)])
    assert "is not a run folder" in err


def test_bad_budget_list(capsys, tmp_path):
    argv = ["train", "--algo", "muzero", "--env", "CartPole-v1", "--out", str(tmp_path), *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    err = _error(capsys, ["eval", str(tmp_path / "muzero" / "CartPole-v1_seed0"), "--search-budget", "4,x"])
    assert "--search-budget" in err and "'x'" in err
