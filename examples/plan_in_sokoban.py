"""Plan in Sokoban with the environment itself as the model, no learning at all.

    python examples/plan_in_sokoban.py [--simulations 200] [--levels 3] [--search gumbel|muzero]

A uniform prior, leaf values from random rollouts, and a Gumbel MuZero search (the default; ``--search muzero``
for pUCT) over copies of the env (``SimulatorModel``, restored from ``get_state`` snapshots). Small 6x6 rooms
with 1 box keep it quick.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import gym_planning  # noqa: F401  (registers gym_planning/Sokoban-v0)
from gym_planning.agents import SearchAgent
from gym_planning.models import SimulatorModel


def uniform_guide(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prior logits and value for a batch of observations: no knowledge at all."""
    return np.zeros((len(observation), 9)), np.zeros(len(observation))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--rollout-steps", type=int, default=10)
    parser.add_argument("--search", choices=["gumbel", "muzero"], default="gumbel")
    args = parser.parse_args(argv)

    env = gym.make("gym_planning/Sokoban-v0", dim_room=(6, 6), num_boxes=1, max_steps=40)
    model = SimulatorModel(env, guide=uniform_guide, rollout_steps=args.rollout_steps, discount=0.97, seed=0)
    agent = SearchAgent(None, model, num_simulations=args.simulations, search=args.search, seed=0)
    for level in range(args.levels):
        observation, _ = env.reset(seed=level)
        total, steps, done = 0.0, 0, False
        while not done:
            action, _ = agent.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(int(action))
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        outcome = "solved" if terminated else "not solved"
        print(f"level {level}: {outcome} in {steps} steps, return {total:.1f}")


if __name__ == "__main__":
    main()
