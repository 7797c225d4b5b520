"""``tree-depth``: how deep must the search look? (Hamrick et al. 2021's ``D_tree`` and ``D_UCT``.)

A trained MuZero agent searches with ``--simulations`` (default 32) per decision:

- ``D_tree``: maximum tree depth 1, 2 and unbounded (the value estimate is used below it), with the learned
  model and with the true simulator;
- ``D_UCT``: pUCT only down to depth 1 or 2, and below it ``ROLLOUT_STEPS`` steps of the prior policy in the
  true simulator before the value estimate.

Writes ``depth.csv``, ``return_vs_depth.png`` and ``report.md``.
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

TITLE = "Return against tree depth (D_tree) and pUCT depth with rollouts below (D_UCT)"
DEFAULT_ENVS = ["CartPole-v1"]
DEPTHS = (1, 2, None)
ROLLOUT_STEPS = 10
VARIANTS = {  # label -> (model, rollout steps)
    "D_tree, learned model": ("learned", 0),
    "D_tree, simulator": ("simulator", 0),
    f"D_UCT + {ROLLOUT_STEPS}-step prior rollouts, simulator": ("simulator", ROLLOUT_STEPS),
}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) MuZero, evaluate every depth variant, write the report."""
    envs = args.env or DEFAULT_ENVS
    folder = study_dir(args, "tree-depth", envs)
    simulations = int(parse_list(args.simulations or "32", "--simulations")[-1] or 32)
    rows = []
    for env_id in envs:
        for seed in range(args.seeds):
            run_dir = study_run(args, "muzero", env_id, seed)
            for label, (model, rollouts) in VARIANTS.items():
                depths = DEPTHS if not rollouts else (1, 2)
                settings = [Setting(model, simulations, depth, rollouts) for depth in depths]
                for row in evaluate_run(run_dir, settings, episodes=args.episodes, device=args.device):
                    rows.append(dict(env=env_id, variant=label, seed=seed, simulations=simulations, depth=row["depth"],
                                     mean_return=row["mean_return"], ms_per_decision=row["ms_per_decision"]))  # fmt: skip
    write_csv(folder / "depth.csv", rows)
    return report(folder)


def _position(depth: Any) -> float:
    return 3.0 if str(depth) == "inf" else float(depth)


def report(folder: Path) -> list[dict[str, Any]]:
    """``return_vs_depth_<env>.png`` and ``report.md`` from ``depth.csv``; return the summary rows."""
    rows = read_csv(folder / "depth.csv")
    summary, sections = [], [f"{TITLE}. Depth 3 on the plot = unbounded. Mean over seeds, 95 % band."]
    for env_id in sorted({r["env"] for r in rows}):
        series = {}
        for label in VARIANTS:
            mine = [r for r in rows if (r["env"], r["variant"]) == (env_id, label)]
            if not mine:
                continue
            depths = sorted({_position(r["depth"]) for r in mine})
            seeds = sorted({r["seed"] for r in mine})
            y = np.full((len(seeds), len(depths)), np.nan)
            for r in mine:
                y[seeds.index(r["seed"]), depths.index(_position(r["depth"]))] = r["mean_return"]
            series[label] = (np.array(depths), y)
            mean, half = mean_and_ci(y)
            summary += [dict(env=env_id, variant=label, depth="inf" if d == 3 else int(d), mean_return=float(m), ci95=float(h))
                        for d, m, h in zip(depths, mean, half)]  # fmt: skip
        plot = line_plot(folder / f"return_vs_depth_{env_id.replace('/', '-')}.png", series,
                         xlabel="maximum depth (3 = unbounded)", ylabel="mean return", title=env_id)  # fmt: skip
        sections += [f"## {env_id}", f"![return vs depth]({plot.name})"]
    sections += ["## All points", markdown_table(summary)]
    write_report(folder, TITLE, sections)
    return summary
