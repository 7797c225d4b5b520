"""The examples run end to end (with tiny budgets) and print what they promise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def test_plan_in_sokoban(capsys: pytest.CaptureFixture) -> None:
    run_example("plan_in_sokoban", ["--simulations", "100", "--levels", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    # The first generated level of this room size is solved by planning with the simulator alone.
    assert lines[0].startswith("level 0: solved")


def test_search_on_a_trained_agent(capsys: pytest.CaptureFixture) -> None:
    run_example("search_on_a_trained_agent", ["--train-steps", "1000", "--episodes", "2", "--budgets", "4"])
    out = capsys.readouterr().out
    assert "PPO alone" in out and "PPO + search, 4 sims" in out and "10-step rollouts" in out
