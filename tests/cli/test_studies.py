"""Every study end to end in its ``--tiny`` form: CSV, PNG plot and report.md; ``report`` redraws without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_planning.experiments import train
from gym_planning.experiments.cli import main
from gym_planning.experiments.runs import read_csv
from gym_planning.experiments.studies.test_budget import GUIDE_ROLLOUT_STEPS

STUDY_FILES = {  # study -> (folder suffix, CSV, plot prefix)
    "vs-model-free": ("CartPole-v1", "curves.csv", "return_vs_env_steps_"),
    "test-budget": ("CartPole-v1", "budget.csv", "return_vs_simulations_"),
    "tree-depth": ("CartPole-v1", "depth.csv", "return_vs_depth_"),
    "train-planning": ("CartPole-v1", "variants.csv", "normalised_score"),
    "generalisation": ("gym_planning-Minipacman-v0", "generalisation.csv", "return_vs_mazes_"),
}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output folder for all studies, so that they share their training runs as real studies do."""
    return tmp_path_factory.mktemp("studies")


def _study(out: Path, name: str, *extra: str) -> Path:
    assert (
        main(["study", name, "--tiny", "--seeds", "1", "--episodes", "2", "--simulations", "1,2", "--out", str(out), *extra])
        == 0
    )
    suffix, csv_name, plot_prefix = STUDY_FILES[name]
    folder = out / "studies" / f"{name}_{suffix}_tiny"
    assert read_csv(folder / csv_name), f"{csv_name} has rows"
    plots = [p for p in folder.glob("*.png") if p.name.startswith(plot_prefix)]
    assert plots and all(p.stat().st_size > 5_000 for p in plots), "a real PNG was drawn"
    report = (folder / "report.md").read_text()
    assert all(f"]({p.name})" in report for p in plots) and "|---|" in report
    return folder


def test_vs_model_free(out):
    folder = _study(out, "vs-model-free")
    algos = {row["algo"] for row in read_csv(folder / "final.csv")}
    assert algos == {"muzero", "ppo", "dqn"}
    assert (folder / "return_vs_wall_time_CartPole-v1.png").is_file()


def test_test_budget(out):
    folder = _study(out, "test-budget")
    rows = read_csv(folder / "budget.csv")
    curves = (
        ("muzero", "learned"),
        ("muzero", "simulator"),
        ("ppo", "simulator"),
        ("ppo", f"simulator + {GUIDE_ROLLOUT_STEPS}-step guide rollouts"),
    )
    assert {(r["agent"], r["model"], r["simulations"]) for r in rows} == {(a, m, s) for a, m in curves for s in (0, 1, 2)}


def test_test_budget_of_the_weak_guide_alone_with_longer_rollouts(out):
    folder = _study(out, "test-budget", "--agents", "ppo", "--rollout-steps", "3,7")
    rows = read_csv(folder / "budget.csv")
    assert {(r["agent"], r["model"]) for r in rows} == {
        ("ppo", "simulator"),
        ("ppo", "simulator + 3-step guide rollouts"),
        ("ppo", "simulator + 7-step guide rollouts"),
    }
    assert "simulator + 7-step guide rollouts" in (folder / "report.md").read_text()
    assert main(["study", "test-budget", "--tiny", "--agents", "ppo,sac", "--out", str(out)]) == 2
    assert main(["study", "test-budget", "--tiny", "--rollout-steps", "inf", "--out", str(out)]) == 2


def test_tree_depth(out):
    folder = _study(out, "tree-depth")
    rows = read_csv(folder / "depth.csv")
    assert {str(r["depth"]) for r in rows} == {"1", "2", "inf"}
    assert len(rows) == 3 + 3 + 2  # D_tree learned and simulator at 1, 2, inf; D_UCT at 1, 2


def test_train_planning(out):
    folder = _study(out, "train-planning")
    rows = read_csv(folder / "variants.csv")
    assert {(r["variant"], r["test"]) for r in rows} == {(v, t) for v in ("one-step", "learn", "data", "learn+data")
                                                          for t in ("none", "search")}  # fmt: skip
    assert "100.0" in (folder / "report.md").read_text()  # learn+data with test search is the 100 % reference


def test_generalisation(out):
    folder = _study(out, "generalisation")
    rows = read_csv(folder / "generalisation.csv")
    assert {r["num_mazes"] for r in rows} == {1, 3} and {r["split"] for r in rows} == {"train", "test"}
    assert (folder / "conf.yml").is_file()


def test_report_redraws_studies_and_runs_without_training(out, monkeypatch, capsys):
    def no_training(*args, **kwargs):
        raise AssertionError("report must not train")

    monkeypatch.setattr(train, "train_run", no_training)
    folder = out / "studies" / "test-budget_CartPole-v1_tiny"
    if not folder.is_dir():
        pytest.skip("needs the test-budget study of this module")
    (folder / "report.md").unlink()
    run_dir = next((out / "muzero").glob("CartPole-v1_*_tiny_seed0"))
    assert main(["report", str(folder), str(run_dir)]) == 0
    assert (folder / "report.md").is_file() and (run_dir / "learning_curve.png").is_file()
    assert "| study |" in capsys.readouterr().out


def test_a_second_run_of_a_study_trains_nothing(out, monkeypatch):
    if not (out / "studies" / "tree-depth_CartPole-v1_tiny").is_dir():
        pytest.skip("needs the tree-depth study of this module")

    def no_training(*args, **kwargs):
        raise AssertionError("the runs exist; nothing is trained again")

    monkeypatch.setattr(train.ALGORITHMS["muzero"], "learn", no_training)
    _study(out, "tree-depth")
