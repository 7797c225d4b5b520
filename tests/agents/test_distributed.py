"""MuZero on Ray (``actor_backend="ray"``): a 2-actor CartPole run with callbacks, checkpoints and a learner
crash resumed from its checkpoint; a learner process killed with SIGKILL and resumed by the command line;
a killed actor replaced without losing stored data or an episode that ended before the kill; one Ray actor
equal to the actor process; reanalyse workers equal to the learner's own reanalyse; clear errors.

Ray starts once for the module (``num_cpus=2`` logical CPUs: at most two actors at once) and shuts down after it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from gym_planning.agents.muzero import MuZero, distributed, fleet
from gym_planning.experiments import train
from gym_planning.experiments.cli import main
from gym_planning.experiments.runs import checkpoint_file, checkpoints
from tests.agents.corridor import make_corridor
from tests.agents.test_muzero import LENGTH, TINY

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]

CARTPOLE = dict(
    learning_starts=64, batch_size=16, num_simulations=4, num_unroll_steps=3, td_steps=5, buffer_size=4_000,
    async_chunk_steps=4, actor_backend="ray",
)  # fmt: skip


def _weights(model: MuZero) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in model.policy.parameters()])


def test_unreachable_ray_fails_fast(monkeypatch):
    """Runs before the fixture starts Ray: RAY_ADDRESS pointing at nothing fails within seconds."""
    assert not ray.is_initialized()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    model = MuZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), seed=0, async_actors=2, **CARTPOLE)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster at RAY_ADDRESS='127.0.0.1:9'"):
        model.learn(50)
    assert time.perf_counter() - start < 2 * distributed.CONNECT_TIMEOUT_S
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def local_ray():
    th.set_num_threads(1)
    distributed.connect(num_cpus=2)  # the library's local Ray: quiet, workers not niced
    yield ray
    ray.shutdown()


class _Crash(BaseCallback):
    """Raises at ``num_timesteps >= at`` (the learner process dying, after the checkpoint before it)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt("learner killed")
        return True


def test_two_actors_learn_cartpole_and_resume_from_a_checkpoint(local_ray, tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, async_actors=2, **CARTPOLE)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    checkpoint = CheckpointCallback(save_freq=40, save_path=str(tmp_path / "ckpt"), name_prefix="mz", save_replay_buffer=True)
    with pytest.raises(KeyboardInterrupt, match="learner killed"):
        model.learn(400, callback=[checkpoint, _Crash(at=200)], log_interval=1)
    assert model.num_timesteps == 200 and model._n_updates > 0
    assert not [name for name in ray.util.list_named_actors() if "-selfplay-" in name]  # the crash ended them
    log = (tmp_path / "log" / "progress.csv").read_text()
    assert "train/actor_weights_age" in log and "time/actor_idle_s" in log and "rollout/ep_rew_mean" in log

    # A new learner process: the last checkpoint (weights, optimiser, counters) and its replay.
    resumed = MuZero.load(tmp_path / "ckpt" / "mz_160_steps", env=make_vec_env("CartPole-v1", n_envs=4, seed=1))
    resumed.load_replay_buffer(tmp_path / "ckpt" / "mz_replay_buffer_160_steps.pkl")
    assert resumed.num_timesteps == 160 and resumed.async_actors == 2 and resumed.actor_backend == "ray"
    assert resumed.replay_buffer.stored_rows == 40
    n_updates = resumed._n_updates
    resumed.learn(140, reset_num_timesteps=False)  # SB3 counts on from num_timesteps
    assert resumed.num_timesteps == 300 and resumed.replay_buffer.stored_rows == 75
    assert resumed._n_updates == n_updates + 35  # replay_ratio 0.25 x 140 env steps
    assert len(resumed.ep_info_buffer) > 0
    # The envs came back from the two actors, in order, and a single-process learn continues with them.
    resumed.async_actors = 0
    resumed.learn(8, reset_num_timesteps=False)
    assert resumed.num_timesteps == 308


LEARNER_ARGV = ["train", "--algo", "muzero", "--env", "CartPole-v1", "--hyperparams", "async_actors=2",
                "actor_backend=ray", "async_chunk_steps=4", "learning_starts=32", "batch_size=8", "buffer_size=2000",
                "num_simulations=2", "num_unroll_steps=3", "--n-timesteps", "480", "--save-freq", "80",
                "--eval-freq", "100000", "--eval-episodes", "1", "--no-progress-bar"]  # fmt: skip


def _kill_after_first_checkpoint(argv: list[str], run_dir: Path, log: Path) -> str:
    """Run ``python -m gym_planning *argv`` (a learner with two Ray actors on a local Ray of its own), SIGKILL it
    once its first checkpoint (model and replay) is on disk, and end what its Ray left; its output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("RAY_ADDRESS", None)
    with log.open("w") as out:
        learner = subprocess.Popen([sys.executable, "-m", "gym_planning", *argv], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 240
        try:
            while not any(checkpoint_file(run_dir, "replay_buffer", steps).is_file() for steps, _ in checkpoints(run_dir)):
                assert learner.poll() is None, f"the learner ended before its first checkpoint:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no checkpoint within 240 s:\n{log.read_text()}"
                time.sleep(0.05)
            os.kill(learner.pid, signal.SIGKILL)
            assert learner.wait(timeout=30) == -signal.SIGKILL
        finally:
            with contextlib.suppress(ProcessLookupError):  # its Ray's processes, in its session
                os.killpg(learner.pid, signal.SIGKILL)
    return log.read_text()


class _Snapshot(BaseCallback):
    """Copies the learner's state when training starts: weights, optimiser, replay and counters."""

    def _on_training_start(self) -> None:
        model = self.model
        self.state = dict(
            weights=_weights(model).clone(),
            optimizer=copy.deepcopy(model.policy.optimizer.state_dict()),
            observations=model.replay_buffer.observations.copy(),
            actions=model.replay_buffer.actions.copy(),
            counters=(model.num_timesteps, model._n_updates, model.replay_buffer.pos),
        )

    def _on_step(self) -> bool:
        return True


def test_a_learner_killed_after_a_checkpoint_resumes_from_it(local_ray, tmp_path, monkeypatch):
    """The command line's learner with two Ray actors dies by SIGKILL after its first checkpoint; the same command
    resumes from that checkpoint (weights, optimiser, replay, counters equal to the files') and trains to the end."""
    argv = [*LEARNER_ARGV, "--out", str(tmp_path)]
    run_dir = tmp_path / "muzero" / "CartPole-v1_seed0"
    _kill_after_first_checkpoint(argv, run_dir, tmp_path / "learner.log")
    steps, model_file = checkpoints(run_dir)[-1]
    assert 0 < steps < 480 and checkpoint_file(run_dir, "replay_buffer", steps).is_file()
    saved = MuZero.load(model_file)
    saved.load_replay_buffer(checkpoint_file(run_dir, "replay_buffer", steps))

    snapshot = _Snapshot()
    monkeypatch.setattr(train, "extra_callbacks", lambda: [snapshot])
    assert main(argv) == 0
    state = snapshot.state
    assert state["counters"] == (steps, saved._n_updates, saved.replay_buffer.pos) and saved._n_updates > 0
    assert th.equal(state["weights"], _weights(saved))
    for got, want in zip(state["optimizer"]["state"].values(), saved.policy.optimizer.state_dict()["state"].values()):
        assert all(th.equal(got[key], want[key]) for key in want)
    np.testing.assert_array_equal(state["observations"], saved.replay_buffer.observations)
    np.testing.assert_array_equal(state["actions"], saved.replay_buffer.actions)
    # Trained on to the requested total: one gradient step per vector step (replay_ratio 0.25 x 4 envs). A checkpoint
    # is taken when a step is stored, before that step's gradient step, so the last file owes one step.
    final_steps, final_file = checkpoints(run_dir)[-1]
    final = MuZero.load(final_file)
    assert final_steps == final.num_timesteps == 480
    assert final._n_updates == saved._n_updates + (480 - steps) // 4 - 1


class _KillActor(BaseCallback):
    """At ``num_timesteps == at`` kills self-play actor 1 (the learner replaces it) and snapshots the replay."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.snapshot = at, None

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            names = sorted(name for name in ray.util.list_named_actors() if "-selfplay-" in name)
            ray.kill(ray.get_actor(names[1]))
            buffer = self.model.replay_buffer
            self.snapshot = (buffer.pos, buffer.observations.copy(), buffer.episode_end.copy())
        return True


def test_a_killed_actor_is_replaced_and_no_stored_step_is_lost(local_ray):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, async_actors=2, **dict(CARTPOLE, learning_starts=1_000))
    kill = _KillActor(at=64)
    model.learn(160, callback=kill)
    assert model.num_timesteps == 160 and model.replay_buffer.stored_rows == 40
    pos, observations, episode_end = kill.snapshot
    buffer = model.replay_buffer
    # Every step stored before the kill is still there, unchanged.
    np.testing.assert_array_equal(buffer.observations[:pos], observations[:pos])
    np.testing.assert_array_equal(buffer.episode_end[: pos - 1], episode_end[: pos - 1])
    # Actor 1 (envs 2, 3) started new episodes: its open episodes were cut, at one row, as truncations with the
    # observation that followed (no CartPole episode reaches its 500-step limit here); actor 0's envs ran on.
    cut_rows = {row for row, env in buffer.final_observations}
    assert {env for row, env in buffer.final_observations} <= {2, 3} and len(cut_rows) == 1 and min(cut_rows) >= pos - 1
    assert not buffer.final_unknown.any()


class _DieAfterFirstEpisode(gym.Wrapper):
    """Writes its first episode (observations, actions, rewards) to ``log`` when it ends, and at its next step
    kills its own process with SIGKILL; a process started after that (``log`` exists) runs normally."""

    def __init__(self, env: gym.Env, log: str):
        super().__init__(env)
        self.log, self.steps, self.finished, self.obs = log, [], False, None

    def reset(self, **kwargs):
        self.obs, info = self.env.reset(**kwargs)
        return self.obs, info

    def step(self, action):
        if self.finished:
            os.kill(os.getpid(), signal.SIGKILL)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not os.path.exists(self.log):
            self.steps.append((self.obs, action, reward))
            if terminated or truncated:
                observations, actions, rewards = map(np.array, zip(*self.steps))
                np.savez(self.log, observations=observations, actions=actions, rewards=rewards)
                self.finished = True
        self.obs = obs
        return obs, reward, terminated, truncated, info


def test_an_episode_that_ended_before_its_actor_was_killed_is_stored(local_ray, tmp_path):
    """Env 2 (actor 1) ends an episode at its 5th step and kills its actor's process at the 6th, both inside
    the first 8-step chunk: the 5 rows of that episode are in the replay as the env produced them, the open
    episode of env 3 is cut where actor 1's steps end, and the replacement's fresh episodes follow."""
    log = str(tmp_path / "episode.npz")

    def make(i: int):
        env = gym.wrappers.TimeLimit(gym.make("CartPole-v1").unwrapped, max_episode_steps=(6, 7, 5, 50)[i])
        return _DieAfterFirstEpisode(env, log) if i == 2 else env

    env = DummyVecEnv([lambda i=i: Monitor(make(i)) for i in range(4)])
    env.seed(0)
    model = MuZero("MlpPolicy", env, seed=0, async_actors=2, **dict(CARTPOLE, learning_starts=1_000, async_chunk_steps=8))
    model.learn(64)
    assert model.num_timesteps == 64 and model.replay_buffer.stored_rows == 16
    buffer, episode = model.replay_buffer, np.load(log)
    np.testing.assert_array_equal(buffer.observations[:5, 2], episode["observations"])
    np.testing.assert_array_equal(buffer.actions[:5, 2], episode["actions"])
    np.testing.assert_array_equal(buffer.rewards[:5, 2], episode["rewards"])
    np.testing.assert_array_equal(buffer.episode_end[:5, 2], [False] * 4 + [True])  # truncated by its TimeLimit
    # Env 3's open episode was cut at row 4 with the observation that followed (not the replacement's reset).
    assert buffer.episode_end[4, 3] and not buffer.episode_end[:4, 3].any() and not buffer.final_unknown.any()
    assert not np.array_equal(buffer.final_observations[(4, 3)], buffer.observations[5, 3])
    # Actor 0's envs ran on: their episodes end only at their time limits (rows 5, 11 and 6, 13).
    assert np.flatnonzero(buffer.episode_end[:, 0]).tolist() == [5, 11]
    assert np.flatnonzero(buffer.episode_end[:, 1]).tolist() == [6, 13]


def test_one_ray_actor_equals_the_actor_process(local_ray):
    """The same rounds, weights and Generator: a seeded Ray run with one actor is the process backend's run."""
    settings = dict(TINY, async_actors=1, async_chunk_steps=4)
    process = MuZero("MlpPolicy", make_corridor(LENGTH), seed=3, **settings).learn(120)
    on_ray = MuZero("MlpPolicy", make_corridor(LENGTH), seed=3, actor_backend="ray", **settings).learn(120)
    assert on_ray._n_updates == process._n_updates > 0
    np.testing.assert_array_equal(on_ray.replay_buffer.actions, process.replay_buffer.actions)
    assert th.equal(_weights(on_ray), _weights(process))
    np.testing.assert_array_equal(on_ray.search_rng.random(3), process.search_rng.random(3))


def test_reanalyse_workers_give_the_learners_update(local_ray):
    """The same batch, trained with targets reanalysed by two Ray workers or by the learner itself, gives
    the same update (both search the compiled copy without noise)."""
    settings = dict(TINY, learning_starts=10_000, reanalyse_fraction=1.0, batch_size=16)
    models = [MuZero("MlpPolicy", make_corridor(LENGTH), seed=4, **settings).learn(96) for _ in range(2)]
    reanalyser = distributed.RayReanalyser(ray, models[1], num_workers=2)
    try:
        observations = models[0].replay_buffer.observations[:40, 0]
        want = models[0]._policy_targets(models[0]._root(observations), None)
        np.testing.assert_array_equal(reanalyser(observations, None), want)
        models[1]._reanalyser = reanalyser
        for model in models:
            model.train(2)
    finally:
        models[1]._reanalyser = None
        reanalyser.close()
    assert th.equal(_weights(models[0]), _weights(models[1]))
    assert models[1].phase_seconds["reanalyse_wait"] > 0


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setattr(distributed.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install gym-planning\[ray\]"):
        MuZero("MlpPolicy", make_corridor(LENGTH), async_actors=2, actor_backend="ray")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(async_actors=2), "add actor_backend='ray'"),
        (dict(async_actors=0, actor_backend="ray"), "needs async_actors >= 1"),
        (dict(async_actors=1, actor_backend="spark"), "actor_backend must be 'process' or 'ray'"),
        (dict(async_actors=1, reanalyse_workers=1), "reanalyse_workers are Ray actors"),
        (dict(async_actors=1, actor_backend="ray", reanalyse_workers=-1), "reanalyse_workers must be an integer"),
    ],
)
def test_bad_distributed_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MuZero("MlpPolicy", make_corridor(LENGTH), **kwargs)


@pytest.mark.filterwarnings("ignore:The environment is already wrapped with a `Monitor`")
def test_envs_that_cannot_be_split_are_refused():
    with pytest.raises(ValueError, match="at least as many envs"):
        fleet.split_env(make_vec_env("CartPole-v1", n_envs=2), 3)
    with pytest.raises(TypeError, match="needs a DummyVecEnv; got VecMonitor"):
        fleet.split_env(VecMonitor(make_vec_env("CartPole-v1", n_envs=2)), 2)
    parts = fleet.split_env(make_vec_env("CartPole-v1", n_envs=5), 2)
    assert [idx.tolist() for idx, _ in parts] == [[0, 1, 2], [3, 4]] and parts[1][1].num_envs == 2


def test_an_error_in_an_actor_is_raised_and_ends_the_actors(local_ray):
    from tests.agents.test_async_actors import _FailingCorridor

    env = make_vec_env(lambda: gym.wrappers.TimeLimit(_FailingCorridor(LENGTH), 12), n_envs=2, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, **dict(TINY, async_actors=2, actor_backend="ray", async_chunk_steps=4))
    with pytest.raises(ValueError, match="corridor broke at cell 2"):  # Ray's RayTaskError subclasses it
        model.learn(400)
    assert not [name for name in ray.util.list_named_actors() if "-selfplay-" in name]
