"""``gym-planning train``: train one agent into a run folder; re-running the same command continues it.

    gym-planning train --algo muzero --env CartPole-v1 [--hyperparams k=v ...] [--conf FILE] [--seed N]
                       [--n-timesteps N] [--device auto|cpu|cuda] [--out runs] [--name DIR]

The settings are the tuned ones (``gym_planning/hyperparams/<algo>.yml``), then ``--conf``'s entry, then
``--hyperparams``. Checkpoints (model, replay, VecNormalize statistics) go to ``checkpoints/`` through SB3's
``CheckpointCallback``; a re-run loads the latest and trains on to ``n_timesteps``; evaluations after the
checkpoint are dropped from ``evaluations.csv`` and redone. See :mod:`gym_planning.experiments.runs`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from gym_planning.experiments.config import RunConfig, parse_overrides, resolve_config, settings_of
from gym_planning.experiments.runs import (
    CHECKPOINT_PREFIX,
    EVALUATION_COLUMNS,
    checkpoint_file,
    checkpoints,
    claim_run_dir,
    default_run_dir,
    load_agent,
    make_env,
    read_csv,
    write_csv,
)
from gym_planning.hyperparams import ALGORITHMS

EVALUATIONS_PER_RUN = 20
"""Default number of evaluations over a run (``--eval-freq`` overrides)."""
CHECKPOINTS_PER_RUN = 10
"""Default number of checkpoints over a run (``--save-freq`` overrides)."""
KEEP_CHECKPOINTS = 2
"""Checkpoints kept on disk (the newest); older ones and their replays are deleted."""


class Checkpoints(CheckpointCallback):
    """SB3's ``CheckpointCallback`` (model, replay, VecNormalize statistics) keeping the newest
    :data:`KEEP_CHECKPOINTS`: a replay per checkpoint would fill the disk."""

    def _on_step(self) -> bool:
        saved = self.n_calls % self.save_freq == 0
        super()._on_step()
        if saved:
            run_dir = Path(self.save_path).parent
            for steps, path in checkpoints(run_dir)[:-KEEP_CHECKPOINTS]:
                for old in (
                    path,
                    checkpoint_file(run_dir, "replay_buffer", steps),
                    checkpoint_file(run_dir, "vecnormalize", steps),
                ):
                    old.unlink(missing_ok=True)
        return True

    def save_now(self) -> None:
        """Save a checkpoint at the current step (the run's end)."""
        self.n_calls = 0  # CheckpointCallback saves when n_calls % save_freq == 0
        self._on_step()


class EvaluationLog(BaseCallback):
    """Evaluate every ``eval_freq`` env steps and append a row to ``evaluations.csv``.

    Rows: env steps, training wall seconds (evaluations excluded, summed over resumed sessions), mean and
    std of the episode return over ``episodes`` deterministic episodes.
    """

    def __init__(self, path: Path, eval_env: VecEnv, *, eval_freq: int, episodes: int, rows: list[dict[str, Any]]):
        super().__init__()
        self.path, self.eval_env, self.eval_freq, self.episodes = path, eval_env, eval_freq, episodes
        self.rows = rows
        self._wall_offset = rows[-1]["wall_s"] if rows else 0.0
        self._next = 0
        self._start = self._eval_seconds = 0.0

    def _on_training_start(self) -> None:
        self._start, self._eval_seconds = time.perf_counter(), 0.0
        done = self.rows[-1]["env_steps"] if self.rows else -1
        self._next = (done // self.eval_freq + 1) * self.eval_freq if done >= 0 else 0
        self._on_step()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
            self.evaluate()
        return True

    def evaluate(self) -> None:
        """Evaluate now and write the row."""
        start = time.perf_counter()
        if isinstance(self.eval_env, VecNormalize):
            sync_envs_normalization(self.training_env, self.eval_env)
        # return_episode_rewards=True: SB3 returns (episode returns, episode lengths), one entry per episode.
        returns, _ = cast(
            tuple[list[float], list[int]],
            evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True, return_episode_rewards=True
            ),
        )
        wall = self._wall_offset + start - self._start - self._eval_seconds
        self._eval_seconds += time.perf_counter() - start
        row = dict(zip(EVALUATION_COLUMNS, (self.num_timesteps, round(wall, 3), float(np.mean(returns)),
                                            float(np.std(returns)), len(returns))))  # fmt: skip
        self.rows.append(row)
        write_csv(self.path, self.rows, EVALUATION_COLUMNS)
        if self.verbose:
            print(f"  {self.num_timesteps:>8,d} env steps  return {row['mean_return']:7.1f} ± {row['std_return']:.1f}")


def _eval_env(config: RunConfig, episodes: int, normalize: bool) -> VecEnv:
    env = make_env(config, n_envs=min(episodes, 8), seed=config.seed + 10_000)
    return VecNormalize(env, training=False, norm_reward=False) if normalize else env


def _new_agent(config: RunConfig, run_dir: Path, device: str) -> BaseAlgorithm:
    settings = settings_of(config)
    env = make_env(config, settings.n_envs, config.seed)
    env = VecNormalize(env) if settings.normalize else env
    return ALGORITHMS[config.algo](
        settings.policy, env, seed=config.seed, device=device, tensorboard_log=_tensorboard(run_dir), **settings.kwargs
    )


def _tensorboard(run_dir: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # SB3 refuses tensorboard_log without it; the run works without logs
        return None
    return str(run_dir / "tb")


def _resume(config: RunConfig, run_dir: Path, device: str) -> tuple[BaseAlgorithm, list[dict[str, Any]]]:
    """The latest checkpoint with its replay, and the evaluations made up to it."""
    settings = settings_of(config)
    agent, steps = load_agent(run_dir, make_env(config, settings.n_envs, config.seed), device=device)
    agent.tensorboard_log = _tensorboard(run_dir)
    rows = [row for row in read_csv(run_dir / "evaluations.csv") if row["env_steps"] <= steps]
    return agent, rows


def train_run(
    config: RunConfig,
    run_dir: str | Path,
    *,
    device: str = "auto",
    eval_freq: int | None = None,
    eval_episodes: int = 5,
    save_freq: int | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
) -> Path:
    """Train (or continue) the run of ``config`` in ``run_dir`` until ``config.n_timesteps`` env steps.

    :param eval_freq: env steps between evaluations (default: :data:`EVALUATIONS_PER_RUN` over the run).
    :param save_freq: env steps between checkpoints (default: :data:`CHECKPOINTS_PER_RUN` over the run).
    :return: the run folder.
    :raises RunFolderError: ``run_dir`` holds a run of another configuration.
    """
    run_dir = Path(run_dir)
    settings = settings_of(config)
    total = config.n_timesteps
    eval_freq = eval_freq or max(total // EVALUATIONS_PER_RUN, settings.n_envs)
    save_freq = save_freq or max(total // CHECKPOINTS_PER_RUN, settings.n_envs)
    existed = claim_run_dir(run_dir, config)
    if existed and checkpoints(run_dir):
        agent, rows = _resume(config, run_dir, device)
        if agent.num_timesteps >= total:
            return run_dir
        if verbose:
            print(f"continuing {run_dir} from {agent.num_timesteps:,} env steps (latest checkpoint)")
    else:
        agent, rows = _new_agent(config, run_dir, device), []
    log = EvaluationLog(run_dir / "evaluations.csv", _eval_env(config, eval_episodes, settings.normalize),
                        eval_freq=eval_freq, episodes=eval_episodes, rows=rows)  # fmt: skip
    log.verbose = verbose
    saver = Checkpoints(max(save_freq // settings.n_envs, 1), str(run_dir / "checkpoints"), CHECKPOINT_PREFIX,
                        save_replay_buffer=True, save_vecnormalize=True)  # fmt: skip
    callbacks = [saver, log, *extra_callbacks()]
    agent.learn(total - agent.num_timesteps, callback=callbacks, reset_num_timesteps=False, progress_bar=progress_bar,
                tb_log_name="run")  # fmt: skip
    found = checkpoints(run_dir)
    if not found or found[-1][0] < agent.num_timesteps:  # the last checkpoint and evaluation at the run's end
        saver.save_now()
    if not rows or rows[-1]["env_steps"] < agent.num_timesteps:
        log.evaluate()
    return run_dir


def extra_callbacks() -> list[BaseCallback]:
    """More callbacks for every training run (none by default; tests add one that interrupts a run)."""
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` command's arguments."""
    parser.add_argument("--algo", required=True, choices=sorted(ALGORITHMS), help="algorithm")
    parser.add_argument("--env", required=True, help="Gymnasium env id (tuned ones: gym-planning train --algo A --env ?)")
    parser.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY=VALUE", help="settings over the tuned ones")
    parser.add_argument("--conf", default=None, help="YAML file keyed by env id (as gym_planning/hyperparams/<algo>.yml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-timesteps", type=int, default=None, help="env steps (default: the tuned entry's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default="runs", help="folder of run folders")
    parser.add_argument("--name", default=None, help="run folder (default: OUT/ALGO/ENV_seedN)")
    parser.add_argument("--eval-freq", type=int, default=None, help="env steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--save-freq", type=int, default=None, help="env steps between checkpoints")
    parser.add_argument("--no-progress-bar", action="store_true")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train as ``args`` say; return the summary rows (the last evaluation)."""
    config = resolve_config(args.algo, args.env, seed=args.seed, overrides=parse_overrides(args.hyperparams),
                            conf=args.conf, n_timesteps=args.n_timesteps)  # fmt: skip
    run_dir = Path(args.name) if args.name else default_run_dir(args.out, config)
    print(f"training {config.algo} on {config.env_id} (seed {config.seed}) for {config.n_timesteps:,} env steps -> {run_dir}")
    train_run(config, run_dir, device=args.device, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
              save_freq=args.save_freq, progress_bar=not args.no_progress_bar, verbose=1)  # fmt: skip
    last = read_csv(run_dir / "evaluations.csv")[-1]
    return [{"run": str(run_dir), **last}]
