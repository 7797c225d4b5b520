"""Does test-time planning with a perfect model help a weak agent? SearchAgent + SimulatorModel on top of SB3.

    python -m benchmarks.planning [--quick] [--json PATH]

For each task (CartPole-v1; dm_control cheetah-run through ``make_dm_control``: 13 factorised actions, action
repeat 4, episodes cut to 100 decisions = 400 control steps to fit the time budget) and each seed, a weak PPO
and a weak DQN are trained briefly. Each is then evaluated (deterministic actions) without search and as the
guide of ``SearchAgent`` + ``SimulatorModel`` (the true env as model; prior from the agent's policy / softmax Q;
leaf values from its value head / max Q; search discount = the agent's gamma; MuZero pUCT search, no root noise)
at 4, 16 and 64 simulations, and at 16 simulations with 10-step rollouts of the agent's own policy before the
value head. Each evaluation runs 4 episodes in a VecEnv of 4 envs (one batched search per step for all of them).

Reported: episode return, mean +/- std over all episodes of all seeds; and wall time per decision (time in
``predict`` divided by the number of env steps decided). Torch runs with one thread: the guide's forward passes
are tiny, and on a 2-core machine a second thread only adds contention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Callable, NamedTuple

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents.search_agent import SearchAgent
from gym_planning.models.simulator import SimulatorModel
from gym_planning.wrappers.suites import make_dm_control


class Task(NamedTuple):
    """A benchmark task: how to build its VecEnv and how long to train each weak agent (env steps)."""

    name: str
    make_vec_env: Callable[[int, int], Any]  # (n_envs, seed) -> VecEnv
    ppo_steps: int
    dqn_steps: int


class Search(NamedTuple):
    """One evaluated configuration: simulations (0 = the agent alone) and rollout length at the leaves."""

    simulations: int
    rollout_steps: int = 0


class Row(NamedTuple):
    task: str
    agent: str
    simulations: int  # 0 = the agent alone, no search
    rollout_steps: int  # 0 = leaf value from the guide's value head alone
    mean_return: float
    std_return: float
    episodes: int
    ms_per_decision: float


def _cartpole(n_envs: int, seed: int) -> Any:
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)


def _cheetah(n_envs: int, seed: int) -> Any:
    # 100 decisions = 400 control steps: 40% of the suite's 1000-step episode, to fit the time budget.
    return make_dm_control("cheetah-run", max_episode_steps=100, n_envs=n_envs, seed=seed)


def _train(algorithm: str, task: Task, seed: int, scale: float) -> BaseAlgorithm:
    env = task.make_vec_env(1 if algorithm == "DQN" else 4, seed)
    if algorithm == "PPO":
        model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=seed, policy_kwargs=dict(net_arch=[64, 64]))
        return model.learn(int(task.ppo_steps * scale))
    model = DQN(
        "MlpPolicy",
        env,
        learning_starts=500,
        exploration_fraction=0.3,
        target_update_interval=500,
        seed=seed,
        policy_kwargs=dict(net_arch=[64, 64]),
    )
    return model.learn(int(task.dqn_steps * scale))


class _Timed:
    """Forwards ``predict`` and counts its wall time and the decisions it made."""

    def __init__(self, agent: Any):
        self.agent, self.seconds, self.decisions = agent, 0.0, 0

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False):
        start = time.perf_counter()
        action, state = self.agent.predict(observation, state, episode_start, deterministic)
        self.seconds += time.perf_counter() - start
        self.decisions += len(observation)
        return action, state


def evaluate_timed(agent: Any, vec_env: Any, episodes: int) -> tuple[list[float], float]:
    """Deterministic episode returns of ``agent`` on ``vec_env``, and its milliseconds per decision."""
    timed = _Timed(agent)
    returns, _ = evaluate_policy(timed, vec_env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    return list(map(float, returns)), 1000.0 * timed.seconds / max(timed.decisions, 1)


def _agent(guide: BaseAlgorithm, search: Search, vec_env: Any, seed: int) -> Any:
    if search.simulations == 0:
        return guide

    def own_policy(observation: np.ndarray) -> np.ndarray:
        return guide.predict(observation, deterministic=True)[0]

    model = SimulatorModel(
        vec_env,
        discount=guide.gamma,
        rollout_steps=search.rollout_steps,
        rollout_policy=own_policy if search.rollout_steps else None,
    )
    return SearchAgent(guide, model, num_simulations=search.simulations, seed=seed)


def run(tasks: list[Task], *, seeds: list[int], searches: list[Search], episodes: int, train_scale: float) -> list[Row]:
    """Train, evaluate with and without search, and aggregate over seeds."""
    collected: dict[tuple[str, str, Search], tuple[list[float], list[float]]] = {}
    for task in tasks:
        for seed in seeds:
            for algorithm in ("PPO", "DQN"):
                start = time.perf_counter()
                guide = _train(algorithm, task, seed, train_scale)
                print(f"[{task.name} {algorithm} seed {seed}] trained in {time.perf_counter() - start:.0f}s", flush=True)
                for search in searches:
                    vec_env = task.make_vec_env(episodes, 1000 + seed)
                    returns, ms = evaluate_timed(_agent(guide, search, vec_env, seed), vec_env, episodes)
                    key = (task.name, algorithm, search)
                    collected.setdefault(key, ([], []))
                    collected[key][0].extend(returns)
                    collected[key][1].append(ms)
                    print(f"  {search}: return {np.mean(returns):8.1f}  {ms:7.2f} ms/decision", flush=True)
                    vec_env.close()
    return [
        Row(task, agent, *search, float(np.mean(r)), float(np.std(r)), len(r), float(np.mean(ms)))
        for (task, agent, search), (r, ms) in collected.items()
    ]


def markdown(rows: list[Row]) -> str:
    """The table for docs/planning.md."""
    lines = [
        "| task | guide | search | return (mean ± std) | episodes | ms / decision |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        search = "none (agent alone)" if row.simulations == 0 else f"{row.simulations} simulations"
        if row.rollout_steps:
            search += f" + {row.rollout_steps}-step rollouts"
        lines.append(
            f"| {row.task} | weak {row.agent} | {search} | {row.mean_return:.1f} ± {row.std_return:.1f} | "
            f"{row.episodes} | {row.ms_per_decision:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 episodes, 4 and 16 simulations, shorter training")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the full run (each trains its own weak agents)")
    parser.add_argument("--json", type=str, default=None, help="write the rows and the machine description here")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    tasks = [
        Task("CartPole-v1", _cartpole, ppo_steps=3_000, dqn_steps=12_000),
        Task("dm_control cheetah-run", _cheetah, ppo_steps=20_000, dqn_steps=20_000),
    ]
    if args.quick:
        searches = [Search(0), Search(4), Search(16), Search(16, rollout_steps=10)]
        settings = dict(seeds=[0], searches=searches, episodes=2, train_scale=0.25)
    else:
        searches = [Search(0), Search(4), Search(16), Search(64), Search(16, rollout_steps=10)]
        settings = dict(seeds=list(range(args.seeds)), searches=searches, episodes=4, train_scale=1.0)
    start = time.perf_counter()
    rows = run(tasks, **settings)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch threads 1"
    print(f"\n{markdown(rows)}\n\nmachine: {machine}; total {time.perf_counter() - start:.0f}s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                dict(
                    machine=machine,
                    python=sys.version.split()[0],
                    settings={k: (v if k != "searches" else [s._asdict() for s in v]) for k, v in settings.items()},
                    rows=[r._asdict() for r in rows],
                ),
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
