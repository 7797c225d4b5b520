"""``generalisation``: train on N procedural mazes, test on held-out ones, with and without test-time search.

MuZero trains on Minipacman (``gym_planning/Minipacman-v0``, or another env whose constructor takes
``num_mazes`` and ``split``, such as ``gym_planning/Sokoban-v0``) restricted to ``N`` mazes for each N of
``NUM_MAZES``, then plays the training mazes (``split="train"``) and held-out ones (``split="test"``, unlimited)
alone, with search in its learned model and with search in the true simulator. Settings come from
``conf.yml`` written into the study folder (edit it and re-run to change them). Writes
``generalisation.csv``, ``return_vs_mazes.png`` and ``report.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gym_planning.experiments.evaluate import Setting, evaluate_run, parse_list
from gym_planning.experiments.plots import line_plot, mean_and_ci
from gym_planning.experiments.runs import read_config, read_csv, write_csv
from gym_planning.experiments.studies.common import markdown_table, study_dir, study_run, write_report

TITLE = "Generalisation to held-out mazes, with and without test-time search"
DEFAULT_ENVS = ["gym_planning/Minipacman-v0"]
NUM_MAZES = (1, 10, 100)
TINY_NUM_MAZES = (1, 3)
CONF = {  # MuZero on small Minipacman mazes, binary planes flattened for the MLP networks
    "n_timesteps": 20_000, "n_envs": 4, "policy": "MlpPolicy", "reanalyse_fraction": 0.0, "batch_size": 64,
    "num_unroll_steps": 3,
    "env_kwargs": {"observation_type": "planes", "maze_shape": [9, 9], "max_steps": 200},
}  # fmt: skip
TESTS = ("none", "learned", "simulator")


def _conf(folder: Path, env_id: str) -> Path:
    path = folder / "conf.yml"
    table = yaml.safe_load(path.read_text()) if path.is_file() else {}
    if env_id not in table:
        table[env_id] = CONF
        path.write_text(yaml.safe_dump(table, sort_keys=False))
    return path


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) one MuZero per N and seed, test on training and held-out mazes, write the report."""
    envs = args.env or DEFAULT_ENVS
    folder = study_dir(args, "generalisation", envs)
    rows = []
    for env_id in envs:
        conf = _conf(folder, env_id)
        env_kwargs = dict(yaml.safe_load(conf.read_text())[env_id].get("env_kwargs") or {})
        for n in TINY_NUM_MAZES if args.tiny else NUM_MAZES:
            for seed in range(args.seeds):
                run_dir = study_run(args, "muzero", env_id, seed, variant=f"{n}mazes", conf=conf,
                                    overrides={"env_kwargs": {**env_kwargs, "num_mazes": n}})  # fmt: skip
                simulations = int(read_config(run_dir).hyperparams.get("num_simulations", 16))
                if args.simulations:
                    simulations = int(parse_list(args.simulations, "--simulations")[-1] or simulations)
                settings = [Setting(), Setting("learned", simulations), Setting("simulator", simulations)]
                for split, held_out in (("train", {}), ("test", {"split": "test", "num_mazes": None})):
                    results = evaluate_run(run_dir, settings, episodes=args.episodes, env_kwargs=held_out, device=args.device)
                    rows += [dict(env=env_id, num_mazes=n, split=split, test=test, seed=seed, mean_return=row["mean_return"])
                             for test, row in zip(TESTS, results)]  # fmt: skip
    write_csv(folder / "generalisation.csv", rows)
    return report(folder)


def report(folder: Path) -> list[dict[str, Any]]:
    """``return_vs_mazes_<env>.png`` and ``report.md`` from ``generalisation.csv``; return the summary rows."""
    rows = read_csv(folder / "generalisation.csv")
    summary, sections = [], [f"{TITLE}. Mean return over seeds, 95 % band; held-out mazes are unlimited."]
    for env_id in sorted({r["env"] for r in rows}):
        series = {}
        for split in ("train", "test"):
            for test in TESTS:
                mine = [r for r in rows if (r["env"], r["split"], r["test"]) == (env_id, split, test)]
                counts, seeds = sorted({r["num_mazes"] for r in mine}), sorted({r["seed"] for r in mine})
                y = np.full((len(seeds), len(counts)), np.nan)
                for r in mine:
                    y[seeds.index(r["seed"]), counts.index(r["num_mazes"])] = r["mean_return"]
                label = f"{split} mazes, {'no search' if test == 'none' else test + ' model search'}"
                series[label] = (np.array(counts, float), y)
                mean, half = mean_and_ci(y)
                summary += [dict(env=env_id, num_mazes=int(n), split=split, test=test, mean_return=float(m), ci95=float(h))
                            for n, m, h in zip(counts, mean, half)]  # fmt: skip
        plot = line_plot(folder / f"return_vs_mazes_{env_id.replace('/', '-')}.png", series, xlabel="training mazes N",
                         ylabel="mean return", title=env_id, logx=True)  # fmt: skip
        sections += [f"## {env_id}", f"![return vs mazes]({plot.name})"]
    sections += ["## All points", markdown_table(summary)]
    write_report(folder, TITLE, sections)
    return summary
