"""``vs-model-free``: MuZero beside PPO and DQN at equal env steps.

Each algorithm trains ``--seeds`` runs of ``--budget`` env steps (default: MuZero's tuned length) with its
tuned settings; the runs' ``evaluations.csv`` give learning curves in env steps and in training wall time
(evaluations excluded). Writes ``curves.csv``, ``return_vs_env_steps.png``, ``return_vs_wall_time.png``,
``final.csv`` and ``report.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gym_planning.experiments.config import resolve_config
from gym_planning.experiments.plots import line_plot, mean_and_ci, on_grid
from gym_planning.experiments.runs import read_csv, write_csv
from gym_planning.experiments.studies.common import markdown_table, study_dir, study_run, write_report

TITLE = "MuZero vs PPO and DQN at equal env steps"
DEFAULT_ENVS = ["CartPole-v1"]
ALGOS = ("muzero", "ppo", "dqn")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) the runs, collect their curves, write the report."""
    envs = args.env or DEFAULT_ENVS
    folder = study_dir(args, "vs-model-free", envs)
    rows = []
    for env_id in envs:
        budget = args.budget or resolve_config("muzero", env_id).n_timesteps
        for algo in ALGOS:
            for seed in range(args.seeds):
                run_dir = study_run(args, algo, env_id, seed, n_timesteps=budget)
                rows += [{"env": env_id, "algo": algo, "seed": seed, **row} for row in read_csv(run_dir / "evaluations.csv")]
    write_csv(folder / "curves.csv", rows)
    return report(folder)


def _curves(rows: list[dict[str, Any]], env_id: str, algo: str, x: str) -> list[tuple[np.ndarray, np.ndarray]]:
    seeds = sorted({r["seed"] for r in rows if r["env"] == env_id and r["algo"] == algo})
    curves = []
    for seed in seeds:
        mine = sorted((r[x], r["mean_return"]) for r in rows if (r["env"], r["algo"], r["seed"]) == (env_id, algo, seed))
        curves.append((np.array([p[0] for p in mine], float), np.array([p[1] for p in mine], float)))
    return curves


def report(folder: Path) -> list[dict[str, Any]]:
    """Plots, ``final.csv`` and ``report.md`` from ``curves.csv``; return the final-return rows."""
    rows = read_csv(folder / "curves.csv")
    final, sections = [], [f"{TITLE}. Mean evaluation return (deterministic), 95 % confidence band over seeds."]
    for env_id in sorted({r["env"] for r in rows}):
        plots = {}
        for x, label in (("env_steps", "env steps"), ("wall_s", "training wall time (s)")):
            series = {}
            for algo in ALGOS:
                curves = _curves(rows, env_id, algo, x)
                if curves:
                    grid = np.linspace(0, min(c[0][-1] for c in curves), 25)
                    series[algo] = (grid, on_grid(curves, grid))
            name = f"return_vs_{'env_steps' if x == 'env_steps' else 'wall_time'}_{env_id.replace('/', '-')}.png"
            plots[x] = line_plot(folder / name, series, xlabel=label, ylabel="mean return", title=env_id).name
        for algo in ALGOS:
            curves = _curves(rows, env_id, algo, "env_steps")
            if not curves:
                continue
            last = np.array([[c[1][-1]] for c in curves]).T
            mean, half = mean_and_ci(last)
            wall = float(np.mean([_curves(rows, env_id, algo, "wall_s")[i][0][-1] for i in range(len(curves))]))
            final.append(dict(env=env_id, algo=algo, seeds=len(curves), env_steps=int(np.mean([c[0][-1] for c in curves])),
                              final_return=float(mean[0]), ci95=float(half[0]), wall_s=wall))  # fmt: skip
        sections += [f"## {env_id}", f"![return vs env steps]({plots['env_steps']})",
                     f"![return vs wall time]({plots['wall_s']})"]  # fmt: skip
    write_csv(folder / "final.csv", final)
    sections += ["## Final evaluation", markdown_table(final)]
    write_report(folder, TITLE, sections)
    return final
