"""The examples and the README's code blocks run end to end (with tiny budgets) and print what they promise."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TESTED_EXAMPLES = {"plan_in_sokoban", "search_on_a_trained_agent"}

# Budget cuts for the README's blocks, by block heading: (text in the block, what the test runs instead).
# Every cut must match, so a README edit that drops one fails here instead of silently running the full budget.
README_BUDGETS = {
    "MuZero in three lines": [("learn(10_000, progress_bar=True)", "learn(100, progress_bar=True)")],
    "Planning on top of an agent you already trained": [
        ('PPO("MlpPolicy", env)', 'PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1)'),
        ("learn(5_000)", "learn(128)"),
        ("num_simulations=16", "num_simulations=2"),
        ("n_eval_episodes=4", "n_eval_episodes=1"),
    ],
    "Example: search with your own model": [],
    "Continuous actions": [
        ("learn(10_000)", "learn(64)"),
        ('SAC("MlpPolicy", vec_env)', 'SAC("MlpPolicy", vec_env, learning_starts=16, batch_size=16)'),
        ("learn(2_000)", "learn(32)"),
        ("num_simulations=16", "num_simulations=2"),
    ],
}


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


def test_every_example_is_run_by_a_test():
    assert {path.stem for path in EXAMPLES.glob("*.py")} == TESTED_EXAMPLES


def readme_python_blocks() -> dict[str, str]:
    """``{heading: code}`` of the README's ```python blocks, each under the ``##`` heading above it."""
    blocks, heading = {}, ""
    for part in re.split(r"(^## [^\n]*$|^```python\n.*?^```$)", (ROOT / "README.md").read_text(), flags=re.M | re.S):
        if part.startswith("## "):
            heading = part[3:].strip()
        elif part.startswith("```python"):
            assert heading not in blocks, f"two python blocks under '## {heading}': give each its own heading"
            blocks[heading] = part[len("```python\n") : -3]
    return blocks


def test_every_readme_block_has_a_budget():
    assert set(readme_python_blocks()) == set(README_BUDGETS)


@pytest.mark.parametrize("heading", sorted(README_BUDGETS))
def test_readme_block_runs(heading, tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    code = readme_python_blocks()[heading]
    for text, replacement in README_BUDGETS[heading]:
        assert text in code, f"README block '{heading}' no longer contains {text!r}: update README_BUDGETS"
        code = code.replace(text, replacement)
    monkeypatch.chdir(tmp_path)  # files a block saves land here
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(compile(code, f"README.md: {heading}", "exec"), namespace)
    if "out" in namespace:  # the search example: one action per tree, weights that sum to 1
        assert namespace["out"].action.shape == (8,) and namespace["out"].action_weights.sum(axis=1) == pytest.approx(1)
    if "model" in namespace and heading.startswith("MuZero"):
        assert namespace["model"].num_timesteps >= 100 and (tmp_path / "muzero_cartpole.zip").exists()
    if heading.startswith("Continuous"):  # Box actions from the search, inside Pendulum's bounds
        actions = namespace["actions"]
        assert actions.shape == (4, 1) and (abs(actions) <= 2.0).all()
        assert namespace["muzero"].num_timesteps >= 64
    if heading.startswith("Planning"):
        mean, std = map(float, re.findall(r"\d+\.\d+", capsys.readouterr().out))  # evaluate_policy's (mean, std)
        assert 1 <= mean <= 500 and std >= 0
