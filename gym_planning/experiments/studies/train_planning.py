"""``train-planning``: where does planning help? Search for policy targets x acting with search in training x
search at test, against a one-step baseline (Hamrick et al. 2021's Learn / Data / Eval ablation).

MuZero variants (each ``--seeds`` runs of ``--budget`` env steps):

========== ================== ==================== =========================================
variant    search_for_targets search_at_train_time  meaning
========== ================== ==================== =========================================
one-step   False              False                one-step look-ahead targets, act with the prior
learn      True               False                search targets, act with the prior
data       False              True                 one-step targets, act with search
learn+data True               True                 MuZero as trained by default
========== ================== ==================== =========================================

Each is tested without search (greedy prior) and with search (the learned model, ``--simulations``, default
the agent's own ``num_simulations``). Scores are normalised per env to learn+data tested with search
(= 100 %), then the median over envs is reported. Writes ``variants.csv``, ``normalised_score.png``,
``report.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gym_planning.experiments.evaluate import Setting, evaluate_run, parse_list
from gym_planning.experiments.plots import line_plot
from gym_planning.experiments.runs import read_config, read_csv, write_csv
from gym_planning.experiments.studies.common import markdown_table, study_dir, study_run, write_report

TITLE = "Planning in training (targets, data) and at test, against a one-step baseline"
DEFAULT_ENVS = ["CartPole-v1"]
VARIANTS = {  # name -> (search_for_targets, search_at_train_time)
    "one-step": (False, False),
    "learn": (True, False),
    "data": (False, True),
    "learn+data": (True, True),
}
FULL = ("learn+data", "search")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) every variant, test with and without search, write the report."""
    envs = args.env or DEFAULT_ENVS
    folder = study_dir(args, "train-planning", envs)
    rows = []
    for env_id in envs:
        for seed in range(args.seeds):
            for name, (targets, acting) in VARIANTS.items():
                overrides = dict(search_for_targets=targets, search_at_train_time=acting)
                run_dir = study_run(args, "muzero", env_id, seed, variant="" if name == "learn+data" else name,
                                    overrides=overrides if name != "learn+data" else None)  # fmt: skip
                simulations = read_config(run_dir).hyperparams.get("num_simulations", 16)
                if args.simulations:
                    simulations = int(parse_list(args.simulations, "--simulations")[-1] or simulations)
                settings = [Setting(), Setting("learned", int(simulations))]
                for test, row in zip(
                    ("none", "search"), evaluate_run(run_dir, settings, episodes=args.episodes, device=args.device)
                ):
                    rows.append(dict(env=env_id, variant=name, test=test, seed=seed, mean_return=row["mean_return"]))
    write_csv(folder / "variants.csv", rows)
    return report(folder)


def report(folder: Path) -> list[dict[str, Any]]:
    """``normalised_score.png`` and ``report.md`` from ``variants.csv``; return the per-configuration rows."""
    rows = read_csv(folder / "variants.csv")
    envs = sorted({r["env"] for r in rows})
    configs = [(v, t) for v in VARIANTS for t in ("none", "search")]
    scores: dict[tuple[str, str], list[float]] = {}  # (variant, test) -> [env] normalised mean over seeds
    table = []
    for env_id in envs:
        means = {c: float(np.mean([r["mean_return"] for r in rows if (r["env"], r["variant"], r["test"]) == (env_id, *c)]))
                 for c in configs}  # fmt: skip
        reference = means[FULL] if abs(means[FULL]) > 1e-9 else 1.0
        for c in configs:
            scores.setdefault(c, []).append(100.0 * means[c] / reference)
            table.append(dict(env=env_id, variant=c[0], test_search=c[1] == "search", mean_return=means[c],
                              normalised=100.0 * means[c] / reference))  # fmt: skip
    median = [
        dict(variant=v, test_search=t == "search", median_normalised=float(np.median(scores[(v, t)]))) for v, t in configs
    ]
    x = np.arange(len(VARIANTS), dtype=float)
    series = {f"test {'with' if t == 'search' else 'without'} search": (x, np.array([scores[(v, t)] for v in VARIANTS]).T)
              for t in ("none", "search")}  # fmt: skip
    xlabel = "training variant: " + ", ".join(f"{i} {v}" for i, v in enumerate(VARIANTS))
    plot = line_plot(folder / "normalised_score.png", series, xlabel=xlabel, ylabel="% of learn+data with test search",
                     title="mean over envs, 95 % band (the report's table: median)")  # fmt: skip
    write_report(folder, TITLE, [
        f"{TITLE}. Envs: {', '.join(envs)}. 100 % = learn+data tested with search.",
        f"![normalised score]({plot.name})", "## Median over envs", markdown_table(median),
        "## Per env", markdown_table(table),
    ])  # fmt: skip
    return median
