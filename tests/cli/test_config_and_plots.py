"""Settings resolution (tuned < --conf < --hyperparams) and the confidence bands, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from gym_planning.experiments.config import parse_overrides, resolve_config, settings_of
from gym_planning.experiments.plots import mean_and_ci, on_grid


def test_overrides_are_read_as_yaml():
    assert parse_overrides(["gamma=0.9", "policy_kwargs={net_arch: [64, 64]}", "learning_rate=lin_0.001"]) == {
        "gamma": 0.9, "policy_kwargs": {"net_arch": [64, 64]}, "learning_rate": "lin_0.001"}  # fmt: skip


def test_tuned_then_conf_then_command_line(tmp_path):
    conf = tmp_path / "conf.yml"
    conf.write_text("CartPole-v1:\n  n_steps: 64\n  gamma: 0.95\n  env_kwargs: {sutton_barto_reward: true}\n")
    config = resolve_config("ppo", "CartPole-v1", seed=3, conf=conf, overrides={"gamma": 0.9}, n_timesteps=1000)
    assert config.hyperparams["n_epochs"] == 20  # tuned (rl-zoo's row)
    assert config.hyperparams["n_steps"] == 64  # --conf
    assert config.hyperparams["gamma"] == 0.9  # --hyperparams
    assert config.n_timesteps == 1000 and config.env_kwargs == {"sutton_barto_reward": True}
    settings = settings_of(config)
    assert settings.n_envs == 8 and settings.kwargs["learning_rate"](0.5) == pytest.approx(0.0005)  # lin_0.001 built


def test_an_env_without_tuned_settings_runs_from_a_conf_file(tmp_path):
    conf = tmp_path / "conf.yml"
    conf.write_text("MountainCar-v0:\n  n_timesteps: 500\n  policy: MlpPolicy\n  learning_rate: lin_0.01\n")
    settings = settings_of(resolve_config("ppo", "MountainCar-v0", conf=conf))
    assert settings.n_timesteps == 500 and settings.kwargs["learning_rate"](1.0) == pytest.approx(0.01)
    conf.write_text("MountainCar-v0:\n  n_timesteps: 500\n  nsteps: 8\n")
    with pytest.raises(ValueError, match=r"takes no setting \['nsteps'\]"):
        resolve_config("ppo", "MountainCar-v0", conf=conf)


def test_confidence_band_is_students_t_on_the_standard_error():
    mean, half = mean_and_ci(np.array([[1.0, 10.0], [3.0, 10.0]]))
    np.testing.assert_allclose(mean, [2.0, 10.0])
    np.testing.assert_allclose(half, [12.71 * np.sqrt(2.0) / np.sqrt(2.0), 0.0])  # std (ddof 1) = sqrt(2)
    assert mean_and_ci(np.array([[5.0, 6.0]]))[1].tolist() == [0.0, 0.0]  # one seed: no band


def test_curves_on_a_shared_grid():
    grid = np.array([0.0, 5.0, 10.0])
    y = on_grid([(np.array([0.0, 10.0]), np.array([0.0, 100.0])), (np.array([0.0, 5.0]), np.array([1.0, 2.0]))], grid)
    np.testing.assert_allclose(y, [[0.0, 50.0, 100.0], [1.0, 2.0, np.nan]])
