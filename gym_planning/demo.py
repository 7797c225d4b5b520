"""`make demo`: the project's main job on an embedded default.

Trains MuZero on CartPole-v1 on the CPU beside PPO (rl-baselines3-zoo's tuned settings) for the same
number of env steps, prints mean evaluation return against env steps for both, and saves the MuZero
model. The three lines of Python that do the MuZero part are in the README.

    python -m gym_planning.demo [--steps 10000] [--eval-every 2000] [--save runs/demo/muzero_cartpole]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents import MuZero
from gym_planning.agents.muzero import FAST_CPU_SETTINGS

ENV_ID = "CartPole-v1"


class ReturnCurve(BaseCallback):
    """Evaluates the agent every ``eval_every`` env steps; ``curve`` holds (env steps, mean return, training
    wall s), the wall time without the evaluations themselves."""

    def __init__(self, eval_every: int, episodes: int, seed: int):
        super().__init__()
        self.eval_every, self.episodes = eval_every, episodes
        self.eval_env = make_vec_env(ENV_ID, n_envs=episodes, seed=seed + 1000)
        self.curve: list[tuple[int, float, float]] = []
        self._next, self._start, self._eval_seconds = eval_every, time.perf_counter(), 0.0

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.eval_every
            start = time.perf_counter()
            train_seconds = start - self._start - self._eval_seconds
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True)
            self._eval_seconds += time.perf_counter() - start
            self.curve.append((self.num_timesteps, float(mean), train_seconds))
        return True


def train(agent: BaseAlgorithm, steps: int, eval_every: int, episodes: int, seed: int) -> list[tuple[int, float, float]]:
    curve = ReturnCurve(eval_every, episodes, seed)
    agent.learn(steps, callback=curve)
    return curve.curve


def ppo_zoo(seed: int) -> PPO:
    """PPO with rl-baselines3-zoo's tuned CartPole-v1 hyperparameters (hyperparams/ppo.yml)."""

    def linear(initial: float):
        return lambda progress_remaining: progress_remaining * initial

    env = make_vec_env(ENV_ID, n_envs=8, seed=seed)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
               learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000, help="env steps for each agent")
    parser.add_argument("--eval-every", type=int, default=2_000, help="env steps between evaluations")
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="runs/demo/muzero_cartpole", help="where to save the MuZero model")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: on a few cores, more threads only contend

    print(f"Training MuZero and PPO on {ENV_ID} for {args.steps:,} env steps each (CPU) ...")
    env = make_vec_env(ENV_ID, n_envs=4, seed=args.seed)
    muzero = MuZero("MlpPolicy", env, seed=args.seed, **FAST_CPU_SETTINGS)
    muzero_curve = train(muzero, args.steps, args.eval_every, args.episodes, args.seed)
    ppo_curve = train(ppo_zoo(args.seed), args.steps, args.eval_every, args.episodes, args.seed)

    print(f"\nMean return over {args.episodes} evaluation episodes (max 500); wall s = training time so far,")
    print("evaluations excluded, one process, torch single-threaded:\n")
    print(f"{'env steps':>9} | {'MuZero':>7} {'wall s':>7} | {'PPO':>7} {'wall s':>7}")
    for (steps, mz, mz_s), (_, ppo, ppo_s) in zip(muzero_curve, ppo_curve):
        print(f"{steps:9,d} | {mz:7.1f} {mz_s:7.1f} | {ppo:7.1f} {ppo_s:7.1f}")

    Path(args.save).parent.mkdir(parents=True, exist_ok=True)
    muzero.save(args.save)
    print(f"\nSaved MuZero to {args.save}.zip  (MuZero.load({args.save!r}) to use it again)")


if __name__ == "__main__":
    main()
