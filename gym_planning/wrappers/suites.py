"""Standard env stacks for dm_control and Atari, so users never assemble them by hand.

* :func:`make_dm_control` -- shimmy's ``dm_control/<domain>-<task>-v0``, flattened observations, action repeat,
  and a discrete action set (factorised by default) for search.
* :func:`make_atari` -- ale-py with Gymnasium's ``AtariPreprocessing`` and ``FrameStackObservation``,
  MuZero's Atari settings as defaults (96x96 RGB, 32 stacked frames, 4 frames per action, 27,000 actions per
  episode, up to 30 no-op starts), frames merged channel-first for convolutional networks.

Both return one env, or an SB3 VecEnv of ``n_envs`` envs (each wrapped in ``Monitor``) when ``n_envs`` is given.
ale-py, shimmy and dm_control are imported only when these functions are called.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box

from gym_planning.wrappers.discretize import ActionSetDiscretize, FactorisedDiscretizeAction

__all__ = ["ActionRepeat", "FramesToChannels", "make_atari", "make_dm_control"]


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Repeat each action ``repeat`` times and sum the rewards; stops early at termination or truncation.

    :param env: the env.
    :param repeat: env steps per agent step (>= 1).
    """

    def __init__(self, env: gym.Env, repeat: int):
        if not isinstance(repeat, (int, np.integer)) or repeat < 1:
            raise ValueError(f"repeat must be an integer >= 1; got {repeat!r}")
        gym.utils.RecordConstructorArgs.__init__(self, repeat=int(repeat))
        gym.Wrapper.__init__(self, env)
        self.repeat = int(repeat)

    def step(self, action: Any):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class FramesToChannels(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Stacked frames ``[S, H, W, C]`` (or grayscale ``[S, H, W]``) to channel-first ``[S * C, H, W]``.

    :param env: an env whose observations are stacked frames (``FrameStackObservation`` over images).
    """

    def __init__(self, env: gym.Env):
        space = env.observation_space
        if not isinstance(space, Box) or len(space.shape) not in (3, 4):
            raise ValueError(f"FramesToChannels needs stacked frames [S, H, W(, C)]; got {space}")
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        stack, height, width = space.shape[:3]
        channels = space.shape[3] if len(space.shape) == 4 else 1
        self.observation_space = Box(0, 255, (stack * channels, height, width), space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if observation.ndim == 4:
            observation = np.moveaxis(observation, -1, 1)  # [S, C, H, W]
        return np.ascontiguousarray(observation.reshape(self.observation_space.shape))


def _vectorise(make_one: Any, n_envs: int | None, seed: int | None) -> Any:
    if n_envs is None:
        return make_one()
    from stable_baselines3.common.env_util import make_vec_env

    if n_envs < 1:
        raise ValueError(f"n_envs must be None or >= 1; got {n_envs}")
    return make_vec_env(make_one, n_envs=n_envs, seed=seed)


def make_dm_control(
    task: str,
    *,
    action_repeat: int = 4,
    discretize: Literal["factorised", "grid"] | None = "factorised",
    levels: Sequence[float] = (1.0,),
    bins: int = 3,
    actions: np.ndarray | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    n_envs: int | None = None,
    seed: int | None = None,
) -> Any:
    """A dm_control task through shimmy, ready for search.

    Stack: ``gym.make("dm_control/<task>-v0")`` -> ``FlattenObservation`` -> :class:`ActionRepeat` ->
    discretisation.

    :param task: ``"<domain>-<task>"`` (``"cheetah-run"``, ``"acrobot-swingup_sparse"``, ``"humanoid-stand"``, ...)
        or a full ``"dm_control/...-v0"`` id.
    :param action_repeat: physics-control steps per agent step (4 is common for dm_control pixels and
        state benchmarks; the suite's episodes are 1000 control steps, so 250 agent steps).
    :param discretize: ``"factorised"`` (no-op plus ``+/-level`` on one dimension at a time,
        :class:`FactorisedDiscretizeAction`), ``"grid"`` (``gymnasium.wrappers.DiscretizeAction`` with ``bins`` per
        dimension: ``bins ** D`` actions), or None (keep the continuous Box). Ignored when ``actions`` is given.
    :param levels: fractions of the half range for the factorised set.
    :param bins: bins per dimension for the grid.
    :param actions: ``[K, D]`` explicit action vectors (:class:`ActionSetDiscretize`).
    :param max_episode_steps: an extra time limit in agent steps (None: the task's own limit).
    :param render_mode: ``"rgb_array"`` to render (headless rendering uses ``MUJOCO_GL=egl``, set if unset).
    :param n_envs: None for one env; else an SB3 ``DummyVecEnv`` of ``n_envs`` envs.
    :param seed: seed of the VecEnv's envs (``n_envs`` given).
    """
    if discretize not in ("factorised", "grid", None):
        raise ValueError(f"discretize must be 'factorised', 'grid' or None; got {discretize!r}")
    env_id = task if task.startswith("dm_control/") else f"dm_control/{task}-v0"

    def make_one() -> gym.Env:
        if render_mode is not None:
            os.environ.setdefault("MUJOCO_GL", "egl")
        import shimmy

        gym.register_envs(shimmy)
        if env_id not in gym.registry:
            raise ValueError(f"unknown dm_control task {task!r}; ids look like 'cheetah-run' (dm_control/cheetah-run-v0)")
        # The limit counts control steps under the action repeat, so that the stack rebuilds from its spec
        # (gym.make puts TimeLimit directly above the base env).
        limit = None if max_episode_steps is None else max_episode_steps * action_repeat
        env = gym.make(env_id, render_mode=render_mode, max_episode_steps=limit)
        env = gym.wrappers.FlattenObservation(env)
        env = ActionRepeat(env, action_repeat)
        if actions is not None:
            return ActionSetDiscretize(env, actions)
        if discretize == "factorised":
            return FactorisedDiscretizeAction(env, levels)
        if discretize == "grid":
            return gym.wrappers.DiscretizeAction(env, bins)
        return env

    return _vectorise(make_one, n_envs, seed)


def make_atari(
    game: str,
    *,
    frame_skip: int = 4,
    screen_size: int = 96,
    grayscale: bool = False,
    frame_stack: int = 32,
    noop_max: int = 30,
    repeat_action_probability: float = 0.0,
    max_episode_steps: int = 27_000,
    terminal_on_life_loss: bool = False,
    full_action_space: bool = False,
    render_mode: str | None = None,
    n_envs: int | None = None,
    seed: int | None = None,
) -> Any:
    """An ALE game with Gymnasium's Atari preprocessing; MuZero's settings as defaults.

    Stack: ``gym.make("ALE/<game>-v5", frameskip=1)`` -> ``AtariPreprocessing`` -> ``FrameStackObservation``
    -> :class:`FramesToChannels`. Observations are uint8 ``[frame_stack * 3, screen_size, screen_size]``
    (``[frame_stack, ...]`` in grayscale).

    MuZero (``MuZero("CnnPolicy", make_atari(game))``) stores each frame once in its replay (``frame_stack="auto"``
    finds the stack), so the defaults fit: 100,000 steps take 2.6 GiB instead of 82.4. They are sized for an
    accelerator, though: one gradient step pushes ~770 stacks of 96 channels through the target network. On a
    CPU use ``make_atari(game, grayscale=True, frame_stack=4, screen_size=64)`` with the MuZero settings of
    ``benchmarks/atari.py`` (``MUZERO_CPU``; measured in ``docs/planning.md``, "Atari on a CPU").

    :param game: ALE game name (``"MsPacman"``, ``"Hero"``, ...) or a full ``"ALE/...-v5"`` id.
    :param frame_skip: emulator frames per action (max-pooled over the last two).
    :param screen_size: square frame size in pixels.
    :param grayscale: grayscale frames instead of RGB.
    :param frame_stack: frames stacked per observation (MuZero: 32).
    :param noop_max: up to this many no-op actions at reset (random starts).
    :param repeat_action_probability: sticky actions (0 as in MuZero's no-op-start evaluation; Gymnasium's v5
        default is 0.25).
    :param max_episode_steps: agent steps per episode (MuZero: 27,000 = 108,000 frames); enforced by the ALE.
    :param terminal_on_life_loss: end episodes at each life loss.
    :param full_action_space: all 18 actions instead of the game's minimal set.
    :param render_mode: ``"rgb_array"`` or ``"human"``.
    :param n_envs: None for one env; else an SB3 ``DummyVecEnv`` of ``n_envs`` envs.
    :param seed: seed of the VecEnv's envs (``n_envs`` given).
    """
    env_id = game if game.startswith("ALE/") else f"ALE/{game}-v5"

    def make_one() -> gym.Env:
        import ale_py

        gym.register_envs(ale_py)
        if env_id not in gym.registry:
            raise ValueError(f"unknown Atari game {game!r}; names look like 'MsPacman' (ALE/MsPacman-v5)")
        env = gym.make(
            env_id,
            frameskip=1,  # AtariPreprocessing skips frames (and max-pools the last two)
            repeat_action_probability=repeat_action_probability,
            full_action_space=full_action_space,
            max_num_frames_per_episode=max_episode_steps * frame_skip,
            render_mode=render_mode,
        )
        env = gym.wrappers.AtariPreprocessing(
            env,
            noop_max=noop_max,
            frame_skip=frame_skip,
            screen_size=screen_size,
            terminal_on_life_loss=terminal_on_life_loss,
            grayscale_obs=grayscale,
        )
        env = gym.wrappers.FrameStackObservation(env, frame_stack)
        return FramesToChannels(env)

    return _vectorise(make_one, n_envs, seed)
