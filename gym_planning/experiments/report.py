"""``gym-planning report RUN_OR_STUDY...``: tables and plots again from finished runs and studies, no training.

A run folder gets ``learning_curve.png`` (from ``evaluations.csv``) and its ``eval.csv`` rows printed; a study
folder is redrawn by its study's ``report`` (``report.md``, plots) from its CSVs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gym_planning.experiments.plots import line_plot
from gym_planning.experiments.runs import read_config, read_csv


def report_run(run_dir: Path) -> list[dict[str, Any]]:
    """Draw the run's learning curve; return its last evaluation and its test-time search rows."""
    config = read_config(run_dir)
    rows = read_csv(run_dir / "evaluations.csv")
    if not rows:
        raise ValueError(f"{run_dir} has no evaluations yet; train it first")
    x = np.array([r["env_steps"] for r in rows], float)
    y = np.array([[r["mean_return"] for r in rows]])
    plot = line_plot(run_dir / "learning_curve.png", {config.algo: (x, y)}, xlabel="env steps", ylabel="mean return",
                     title=f"{config.algo} on {config.env_id}, seed {config.seed}")  # fmt: skip
    print(f"{run_dir}: {plot}")
    summary = [{"run": str(run_dir), "what": "training", **rows[-1]}]
    return summary + [{"run": str(run_dir), "what": "eval", **row} for row in read_csv(run_dir / "eval.csv")]


def report_any(path: str | Path) -> list[dict[str, Any]]:
    """Report a run folder or a study folder."""
    from gym_planning.experiments.studies import STUDIES
    from gym_planning.experiments.studies.common import read_study

    path = Path(path)
    if (path / "config.yml").is_file():
        return report_run(path)
    name = read_study(path)["name"]
    return [{"study": str(path), **row} for row in STUDIES[name].report(path)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` command's arguments."""
    parser.add_argument("paths", nargs="+", metavar="RUN_OR_STUDY", help="run folders and/or study folders")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Report every path; return all rows."""
    return [row for path in args.paths for row in report_any(path)]
