"""``test-budget``: return against test-time simulations, with the learned model and with the true simulator.

Agents: MuZero (``--budget`` env steps; searched with its learned model and with the simulator) and a weak
PPO guide (``PPO_STEPS`` env steps, the seed study's "weak guide"; searched with the simulator, leaves valued
by its value head alone and by ``--rollout-steps`` (default ``GUIDE_ROLLOUT_STEPS``) steps of its own greedy
policy before the value head; ``--agents ppo`` runs the weak guide alone).
Each is also evaluated alone (0 simulations: MuZero's prior policy, PPO's own policy). Writes ``budget.csv``,
``return_vs_simulations.png`` and ``report.md`` (with the weak guide's ratio at 32 and 256 simulations).

Why the rollouts: a briefly trained value head is wrong where search looks. Along one CartPole episode of a
6k-step PPO (seed 0), the one-step values ``r + gamma V(s')`` ordered the two actions opposite to their true
discounted returns under its own policy in 80 % of the 116 states (correlation of the differences -0.72),
likely because one of the two next states is one its policy rarely visits. After ``GUIDE_ROLLOUT_STEPS``
steps of that policy, the state is again one of its own, where its value head was trained.

Why 100 steps: after 30 the leaf value still leans on the value head (weight 0.99^30 = 0.74; 0.37 after 100).
With 30-step rollouts one guide (seed 1, 70 alone) reached only 90 at 16 simulations; with 100 steps 500 at 16;
seed 0 reached 500 at 32 simulations with 100 steps and at 64 with 30 (docs/studies.md). Each simulation costs
``rollout_steps + 1`` env steps per env, so the points at 128-256 simulations are the study's long part.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gym_planning.experiments.evaluate import Setting, evaluate_run, parse_list
from gym_planning.experiments.plots import line_plot, mean_and_ci
from gym_planning.experiments.runs import read_csv, write_csv
from gym_planning.experiments.studies.common import markdown_table, study_dir, study_run, write_report

TITLE = "Return against test-time search budget"
DEFAULT_ENVS = ["CartPole-v1"]
DEFAULT_SIMULATIONS = "1,2,4,8,16,32,64,128,256"
PPO_STEPS = 6_000
"""Training steps of the weak PPO guide (CartPole: ~270 alone)."""
GUIDE_ROLLOUT_STEPS = 100
"""Leaf rollouts of the weak guide's own greedy policy before its value head (``--rollout-steps``)."""
AGENTS = (
    ("muzero", "learned", 0),
    ("muzero", "simulator", 0),
    ("ppo", "simulator", 0),
)
"""(algorithm, model, leaf rollout steps) of each curve; the weak PPO also gets one curve per ``--rollout-steps``."""


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) the agents, evaluate them at every budget, write the report."""
    envs = args.env or DEFAULT_ENVS
    folder = study_dir(args, "test-budget", envs)
    budgets = [int(b) for b in parse_list(args.simulations or DEFAULT_SIMULATIONS, "--simulations")]  # type: ignore[arg-type]
    algos = _agents(args.agents)
    guide_rollouts = parse_list(args.rollout_steps or str(GUIDE_ROLLOUT_STEPS), "--rollout-steps")
    if None in guide_rollouts:
        raise ValueError(f"--rollout-steps must be finite lengths >= 1; got {args.rollout_steps!r}")
    curves = [curve for curve in AGENTS if curve[0] in algos]
    curves += [("ppo", "simulator", int(steps)) for steps in guide_rollouts if "ppo" in algos and steps is not None]
    rows = []
    for env_id in envs:
        for seed in range(args.seeds):
            runs = {algo: _train(args, algo, env_id, seed) for algo in algos}
            for algo, model, rollouts in curves:
                settings = [Setting()] + [Setting(model, b, None, rollouts) for b in budgets]
                for row in evaluate_run(runs[algo], settings, episodes=args.episodes, device=args.device):
                    rows.append(dict(env=env_id, agent=algo, model=_label(model, rollouts), seed=seed,
                                     simulations=row["simulations"], mean_return=row["mean_return"],
                                     ms_per_decision=row["ms_per_decision"]))  # fmt: skip
    write_csv(folder / "budget.csv", rows)
    return report(folder)


def _agents(text: str | None) -> list[str]:
    """``--agents muzero,ppo`` -> the algorithms to train and evaluate (default: both)."""
    known = ["muzero", "ppo"]
    algos = known if text is None else [a.strip() for a in text.split(",") if a.strip()]
    if not algos or any(a not in known for a in algos):
        raise ValueError(f"--agents must be a comma-separated subset of {known}; got {text!r}")
    return algos


def _train(args: argparse.Namespace, algo: str, env_id: str, seed: int) -> Path:
    if algo == "ppo":
        return study_run(args, "ppo", env_id, seed, n_timesteps=PPO_STEPS, variant="weak")
    return study_run(args, algo, env_id, seed)


def _label(model: str, rollouts: int) -> str:
    return f"{model} + {rollouts}-step guide rollouts" if rollouts else model


def _curves(rows: list[dict[str, Any]], env_id: str, agent: str | None = None) -> list[tuple[str, str]]:
    """The ``(agent, model)`` curves of ``env_id`` in ``rows``, in order of first appearance."""
    pairs = [(r["agent"], r["model"]) for r in rows if r["env"] == env_id and agent in (None, r["agent"])]
    return list(dict.fromkeys(pairs))


def _by_budget(rows: list[dict[str, Any]], env_id: str, algo: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    mine = [r for r in rows if (r["env"], r["agent"], r["model"]) == (env_id, algo, model)]
    budgets = sorted({r["simulations"] for r in mine})
    seeds = sorted({r["seed"] for r in mine})
    y = np.full((len(seeds), len(budgets)), np.nan)
    for r in mine:
        y[seeds.index(r["seed"]), budgets.index(r["simulations"])] = r["mean_return"]
    return np.array(budgets, float), y


def report(folder: Path) -> list[dict[str, Any]]:
    """``return_vs_simulations_<env>.png`` and ``report.md`` from ``budget.csv``; return the summary rows."""
    rows = read_csv(folder / "budget.csv")
    summary, sections = (
        [],
        [f"{TITLE}. Mean return over seeds (95 % band); 0 simulations = the agent alone (plotted at x = 0.5)."],
    )
    for env_id in sorted({r["env"] for r in rows}):
        series, alone = {}, {}
        for algo, model in _curves(rows, env_id):
            budgets, y = _by_budget(rows, env_id, algo, model)
            if budgets.size:
                series[f"{algo} + {model}"] = (np.where(budgets == 0, 0.5, budgets), y)
                alone[algo] = float(np.nanmean(y[:, 0]))
                mean, half = mean_and_ci(y)
                ms = {
                    r["simulations"]: r["ms_per_decision"]
                    for r in rows
                    if (r["env"], r["agent"], r["model"]) == (env_id, algo, model)
                }
                summary += [dict(env=env_id, agent=algo, model=model, simulations=int(b), mean_return=float(m), ci95=float(h),
                                 ms_per_decision=float(ms[int(b)])) for b, m, h in zip(budgets, mean, half)]  # fmt: skip
        name = f"return_vs_simulations_{env_id.replace('/', '-')}.png"
        plot = line_plot(folder / name, series, xlabel="simulations per decision", ylabel="mean return", title=env_id,
                         logx=True)  # fmt: skip
        sections += [f"## {env_id}", f"![return vs simulations]({plot.name})", _target(summary, env_id, alone.get("ppo"))]
    sections += ["## All points", markdown_table(summary)]
    write_report(folder, TITLE, sections)
    return summary


def _target(summary: list[dict[str, Any]], env_id: str, alone: float | None) -> str:
    """The weak guide's gain: the issue's target is >= 1.5x alone at 32 simulations and 500 at 256 (CartPole)."""
    if alone is None:
        return ""
    lines = [f"Weak PPO guide alone: {alone:.1f} (target with the simulator: >= 1.5x at 32 simulations, 500 at 256)."]
    for _, model in _curves(summary, env_id, "ppo"):
        points = {
            r["simulations"]: r["mean_return"] for r in summary if (r["env"], r["agent"], r["model"]) == (env_id, "ppo", model)
        }
        for budget in (32, 256):
            if budget in points:
                lines.append(
                    f"{budget} simulations, {model}: {points[budget]:.1f} ({points[budget] / max(alone, 1e-9):.2f}x)."
                )
    return "\n".join(f"- {line}" for line in lines)
