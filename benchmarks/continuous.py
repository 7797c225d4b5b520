"""Test-time Sampled MuZero search on Box actions: a weak SB3 agent alone vs guiding SearchAgent + SimulatorModel.

    python -m benchmarks.continuous [--quick] [--seeds N] [--algo SAC PPO] [--json PATH]

On Pendulum-v1 (Box(-2, 2, (1,)) torque, 200-step episodes), for each seed a weak agent is trained briefly
(SAC: 2,000 env steps, 64x64 networks; PPO: 20,000), then evaluated with deterministic actions alone and as the
guide of ``SearchAgent`` (Gumbel MuZero search over K = 8 candidates per node sampled from the agent's policy,
a quarter of them from the 2x-widened Gaussian; the true env as the model; leaf values from the agent's critic
(SAC: ``min_i Q_i(s, tanh(mean))``) or value head (PPO); search discount = the agent's gamma; no root noise)
at 4, 16 and 64 simulations. Each evaluation runs 4 episodes in a VecEnv of 4 envs (one batched search per step).

Reported: episode return, mean +/- std over all episodes of all seeds, and wall time per decision (time in
``predict`` divided by the env steps decided). The JSON goes to ``runs/continuous-<time>.json`` unless ``--json``
names a path. Torch runs with one thread (tiny networks on a small CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.planning import evaluate_timed
from gym_planning.agents.search_agent import SearchAgent
from gym_planning.models.simulator import SimulatorModel

ENV_ID = "Pendulum-v1"
TRAIN_STEPS = {"SAC": 2_000, "PPO": 20_000}


class Row(NamedTuple):
    algo: str
    simulations: int  # 0 = the agent alone, no search
    mean_return: float
    std_return: float
    episodes: int
    ms_per_decision: float


def _train(algo: str, seed: int, steps: int) -> BaseAlgorithm:
    if algo == "SAC":
        env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
        model: BaseAlgorithm = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, policy_kwargs=dict(net_arch=[64, 64]))
    else:
        env = make_vec_env(ENV_ID, n_envs=4, seed=seed)
        model = PPO(
            "MlpPolicy", env, n_steps=1024, gae_lambda=0.95, gamma=0.9, seed=seed, policy_kwargs=dict(net_arch=[64, 64])
        )
    return model.learn(steps)


def _evaluate(guide: BaseAlgorithm, simulations: int, episodes: int, seed: int) -> tuple[list[float], float]:
    vec_env = make_vec_env(ENV_ID, n_envs=episodes, seed=1000 + seed)
    agent: Any = guide
    if simulations:
        model = SimulatorModel(vec_env, discount=guide.gamma, seed=seed)
        agent = SearchAgent(guide, model, num_simulations=simulations, search="gumbel", seed=seed)
    returns, ms_per_decision = evaluate_timed(agent, vec_env, episodes)
    vec_env.close()
    return returns, ms_per_decision


def run(*, algos: list[str], seeds: list[int], simulations: list[int], episodes: int, train_scale: float) -> list[Row]:
    """Train, evaluate alone and with search, and aggregate over seeds."""
    collected: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for algo in algos:
        for seed in seeds:
            start = time.perf_counter()
            guide = _train(algo, seed, int(TRAIN_STEPS[algo] * train_scale))
            print(f"[{algo} seed {seed}] trained in {time.perf_counter() - start:.0f}s", flush=True)
            for sims in simulations:
                returns, ms = _evaluate(guide, sims, episodes, seed)
                collected.setdefault((algo, sims), ([], []))
                collected[(algo, sims)][0].extend(returns)
                collected[(algo, sims)][1].append(ms)
                print(f"  {sims:3d} simulations: return {np.mean(returns):8.1f}  {ms:7.2f} ms/decision", flush=True)
    return [
        Row(algo, sims, float(np.mean(r)), float(np.std(r)), len(r), float(np.mean(ms)))
        for (algo, sims), (r, ms) in collected.items()
    ]


def markdown(rows: list[Row]) -> str:
    """The table for docs/benchmarks.md."""
    lines = ["| guide | search | return (mean ± std) | episodes | ms / decision |", "|---|---|---|---|---|"]
    for row in rows:
        search = "none (agent alone)" if row.simulations == 0 else f"Gumbel, {row.simulations} simulations"
        lines.append(
            f"| weak {row.algo} | {search} | {row.mean_return:.1f} ± {row.std_return:.1f} | {row.episodes} | "
            f"{row.ms_per_decision:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 episodes, 4 and 16 simulations, half the training")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the full run (each trains its own weak agent)")
    parser.add_argument("--algo", nargs="+", default=["SAC"], choices=sorted(TRAIN_STEPS), help="weak agents to guide")
    parser.add_argument("--json", type=str, default=None, help="where to write the rows (default: runs/continuous-*.json)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    if args.quick:
        settings = dict(algos=args.algo, seeds=[0], simulations=[0, 4, 16], episodes=2, train_scale=0.5)
    else:
        settings = dict(
            algos=args.algo, seeds=list(range(args.seeds)), simulations=[0, 4, 16, 64], episodes=4, train_scale=1.0
        )
    start = time.perf_counter()
    rows = run(**settings)  # type: ignore[arg-type]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch threads 1"
    print(f"\n{markdown(rows)}\n\nmachine: {machine}; total {time.perf_counter() - start:.0f}s", flush=True)
    path = args.json or os.path.join("runs", time.strftime("continuous-%Y%m%d-%H%M%S.json"))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(
            dict(machine=machine, python=sys.version.split()[0], settings=settings, rows=[r._asdict() for r in rows]),
            f,
            indent=2,
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
