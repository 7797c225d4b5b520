"""The planning studies of Hamrick et al. 2021 (``gym-planning study NAME``), one module each.

Each module has ``TITLE``, ``run(args) -> rows`` (train or reuse the runs, evaluate, write CSVs, plots and
``report.md`` into ``OUT/studies/<name>_<envs>/``) and ``report(folder) -> rows`` (redraw from the CSVs).
"""

from __future__ import annotations

from types import ModuleType

from gym_planning.experiments.studies import generalisation, test_budget, train_planning, tree_depth, vs_model_free

STUDIES: dict[str, ModuleType] = {
    "vs-model-free": vs_model_free,
    "test-budget": test_budget,
    "tree-depth": tree_depth,
    "train-planning": train_planning,
    "generalisation": generalisation,
}
"""Study names (as on the command line) and their modules."""

__all__ = ["STUDIES"]
