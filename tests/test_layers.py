"""The layer map (CONTRIBUTING.md): envs → wrappers → models → search ← agents, each arrow one way.

Every module under ``gym_planning/`` is parsed with ``ast``; every ``import`` and ``from ... import`` counts,
including those inside functions (lazy imports) and relative ones. Envs and search import nothing of ours but
themselves; wrappers import only envs; models never import agents.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gym_planning"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Dotted names a module imports: ``import a.b`` → ``a.b``; ``from a import b`` → ``a.b`` (relative resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def violations(path: Path, allowed: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> list[str]:
    """Imports from ``gym_planning`` outside ``allowed``, and any import under ``forbidden``."""
    return sorted(
        name
        for name in imported_names(path)
        if (_under(name, ("gym_planning",)) and not _under(name, allowed)) or _under(name, forbidden)
    )


def _modules(layer: str) -> list[Path]:
    """Every module of ``gym_planning/<layer>``."""
    return sorted((PACKAGE / layer).rglob("*.py"))


def _id(path: Path) -> str:
    return _module_name(path)


@pytest.mark.parametrize("path", _modules("search"), ids=_id)
def test_search_imports_nothing_of_ours_and_never_torch(path):
    assert violations(path, allowed=("gym_planning.search",), forbidden=("torch",)) == []


@pytest.mark.parametrize("path", _modules("envs"), ids=_id)
def test_envs_import_nothing_of_ours(path):
    assert violations(path, allowed=("gym_planning.envs",)) == []


@pytest.mark.parametrize("path", _modules("wrappers"), ids=_id)
def test_wrappers_import_only_envs(path):
    assert violations(path, allowed=("gym_planning.envs", "gym_planning.wrappers")) == []


@pytest.mark.parametrize("path", _modules("models"), ids=_id)
def test_models_import_no_agents(path):
    allowed = ("gym_planning.envs", "gym_planning.wrappers", "gym_planning.models", "gym_planning.search")
    assert violations(path, allowed=allowed) == []


@pytest.mark.parametrize("path", _modules("agents") + _modules("hyperparams"), ids=_id)
def test_agents_and_settings_never_import_the_command_line(path):
    assert violations(path, allowed=("gym_planning",), forbidden=("gym_planning.experiments",)) == []


def test_every_layer_is_checked():
    layers = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    expected = {"agents", "envs", "experiments", "hyperparams", "models", "search", "wrappers"}
    assert layers == expected, "a new package needs a row in the layer map"
    assert all(_modules(layer) for layer in ("envs", "models", "search", "wrappers"))


def test_the_checker_sees_absolute_relative_and_lazy_imports(tmp_path, monkeypatch):
    package = tmp_path / "gym_planning" / "search"
    package.mkdir(parents=True)
    module = package / "example.py"
    module.write_text(
        "import torch.nn\n"
        "from gym_planning.search.tree import Tree\n"
        "from . import base\n"
        "from ..models import networks\n"
        "def lazy():\n"
        "    from gym_planning.agents.search_agent import as_guide\n"
    )
    monkeypatch.setitem(globals(), "PACKAGE", tmp_path / "gym_planning")  # module names relative to the copy
    assert imported_names(module) == {
        "torch.nn",
        "gym_planning.search.tree.Tree",
        "gym_planning.search.base",
        "gym_planning.models.networks",
        "gym_planning.agents.search_agent.as_guide",
    }
    assert violations(module, allowed=("gym_planning.search",), forbidden=("torch",)) == [
        "gym_planning.agents.search_agent.as_guide",
        "gym_planning.models.networks",
        "torch.nn",
    ]
