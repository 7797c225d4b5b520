"""`make demo`: a compact planning study on the CPU, through the ``gym-planning`` command line.

Runs two studies on CartPole-v1 with one seed each and prints where their reports are:

1. ``vs-model-free``: MuZero, PPO and DQN (tuned settings) for the same env steps, learning curves in env
   steps and wall time;
2. ``test-budget``: the MuZero agent and a weak PPO (6k env steps) at a few test-time search budgets, with
   MuZero's learned model and with the true simulator.

    python -m gym_planning.demo [--steps 6000] [--simulations 1,2] [--episodes 4] [--out runs/demo]

The same as ``gym-planning study vs-model-free --env CartPole-v1 --seeds 1 --budget 6000 --out runs/demo``
then ``gym-planning study test-budget ...``; docs/studies.md has the full-size commands. At the end it prints every
evaluation of the three agents (env steps, mean return, training wall seconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gym_planning.experiments.cli import main as cli
from gym_planning.experiments.runs import read_csv

ENV_ID = "CartPole-v1"


def evaluation_table(curves: list[dict[str, Any]]) -> str:
    """One line per evaluation: each agent's env steps, mean return and training wall seconds (evaluations
    excluded) at its ``i``-th evaluation, from the rows of the vs-model-free study's ``curves.csv``."""
    agents = sorted({row["algo"] for row in curves}, key=("muzero", "ppo", "dqn").index)
    by_agent = {algo: sorted((r for r in curves if r["algo"] == algo), key=lambda r: r["env_steps"]) for algo in agents}
    lines = ["eval | " + " | ".join(f"{algo:>6}: env steps  return  train s" for algo in agents)]
    for i in range(max(len(rows) for rows in by_agent.values())):
        cells = []
        for algo in agents:
            row = by_agent[algo][i] if i < len(by_agent[algo]) else None
            cells.append(
                " " * 34 if row is None else f"{row['env_steps']:>14,d}  {row['mean_return']:>6.1f}  {row['wall_s']:>7.1f}"
            )
        lines.append(f"{i:>4} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the two studies; print where the reports are."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6_000, help="env steps for each agent")
    # Sized to finish in about a minute and a half on a 2-core CPU (docs/studies.md): the weak guide's 30-step
    # rollouts cost ~7 ms of CPU a decision per simulation (about 26 s at 4 simulations), DQN ~2.4 s per 1,000 steps.
    parser.add_argument("--simulations", default="1,2", help="test-time budgets of the test-budget study")
    parser.add_argument("--episodes", type=int, default=4, help="evaluation episodes per point")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", default="runs/demo", help="where runs and studies go")
    args = parser.parse_args(argv)
    common = ["--env", ENV_ID, "--seeds", str(args.seeds), "--episodes", str(args.episodes), "--out", args.out]
    start = time.perf_counter()
    print(f"Training MuZero, PPO and DQN on {ENV_ID} for {args.steps:,} env steps each (CPU), then test-time search ...")
    # 30-step guide rollouts keep the demo short (the study's default, 100 steps, helps more but costs ~3x).
    test_budget = ["--budget", str(args.steps), "--simulations", args.simulations, "--rollout-steps", "30"]
    for argv_study in (
        ["study", "vs-model-free", "--budget", str(args.steps), *common],
        ["study", "test-budget", *test_budget, *common],
    ):
        if cli(argv_study) != 0:
            raise SystemExit(2)
    curves = read_csv(Path(args.out) / "studies" / f"vs-model-free_{ENV_ID}" / "curves.csv")
    print(f"\nEvery evaluation ({args.episodes} episodes, deterministic; train s = training wall seconds so far):")
    print(evaluation_table([row for row in curves if row["seed"] == 0]))
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Reports:")
    for name in ("vs-model-free", "test-budget"):
        print(f"  {args.out}/studies/{name}_{ENV_ID}/report.md")


if __name__ == "__main__":
    main()
