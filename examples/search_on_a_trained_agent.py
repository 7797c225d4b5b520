"""Does planning help at test time? Search on top of a trained SB3 agent with the env as its own model.

    python examples/search_on_a_trained_agent.py [--train-steps 5000] [--episodes 4]

Trains a PPO briefly on CartPole, then evaluates it alone and as the guide of a ``SearchAgent`` that
plans with the true simulator (``SimulatorModel``: copies of the env, restored from snapshots) at a
few search budgets, with and without short rollouts of the agent's own policy at the leaves.
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents import SearchAgent
from gym_planning.models import SimulatorModel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-steps", type=int, default=5_000, help="PPO env steps")
    parser.add_argument("--episodes", type=int, default=4, help="evaluation episodes per row")
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 16], help="simulations per decision")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: more threads only contend on a few cores

    # Setup: a briefly trained agent, and the envs it will be evaluated on.
    ppo = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=0), seed=0, verbose=0).learn(args.train_steps)
    eval_env = make_vec_env("CartPole-v1", n_envs=2, seed=1)

    print(f"{'agent':40} | {'return':>15} | {'ms / decision':>13}")
    rows = [("PPO alone", ppo)]
    for budget in args.budgets:
        # The simulator is bound to eval_env: each decision snapshots the live envs and plans from there.
        rows.append((f"PPO + search, {budget} sims", SearchAgent(ppo, SimulatorModel(eval_env, discount=ppo.gamma),
                                                                 num_simulations=budget, seed=0)))  # fmt: skip
        rows.append((f"PPO + search, {budget} sims, 10-step rollouts",
                     SearchAgent(ppo, SimulatorModel(eval_env, discount=ppo.gamma, rollout_steps=10),
                                 num_simulations=budget, seed=0)))  # fmt: skip
    for name, agent in rows:
        start = time.perf_counter()
        returns, lengths = evaluate_policy(agent, eval_env, n_eval_episodes=args.episodes, return_episode_rewards=True)
        per_decision = (time.perf_counter() - start) / max(sum(lengths), 1) * 1e3
        mean, std = float(sum(returns) / len(returns)), float(torch.tensor(returns).std(unbiased=False))
        print(f"{name:40} | {mean:7.1f} ± {std:5.1f} | {per_decision:13.2f}")


if __name__ == "__main__":
    main()
