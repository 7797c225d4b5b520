"""Every gym_planning id registers on import, builds with gym.make, and passes check_env without warnings."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import gym_planning  # noqa: F401  (registers the ids)

IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("gym_planning/"))


def test_every_id_is_namespaced_and_versioned() -> None:
    assert {"gym_planning/Sokoban-v0", "gym_planning/Minipacman-v0", "gym_planning/Go9x9-v0"} <= set(IDS)
    for env_id in IDS:
        assert gym.spec(env_id).version is not None, env_id


@pytest.mark.parametrize("env_id", IDS)
def test_make_and_check_env_without_warnings(env_id: str) -> None:
    if env_id.startswith("gym_planning/Go"):
        pytest.importorskip("pyspiel")
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_module_prefix_registers_without_importing_gym_planning() -> None:
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('gym_planning:gym_planning/Sokoban-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "assert 'gym_planning' in sys.modules and obs.dtype.name == 'uint8'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
