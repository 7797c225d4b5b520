"""Environments of the seed study that no maintained package provides: Sokoban, Minipacman (with
procedural mazes) and 9x9 Go (OpenSpiel, the ``go`` extra); and tic-tac-toe, a two-player game with a
known solution on which self-play is tested.

Ids register when :mod:`gym_planning` is imported (Gymnasium 1.x has no plugin loader), so
``gym.make("gym_planning:gym_planning/Sokoban-v0")`` works without importing anything first.
Entry points are strings and the classes load on first use, so registering compiles nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from gymnasium.envs.registration import register, registry

_ENVS: list[dict[str, Any]] = [
    dict(id="gym_planning/Sokoban-v0", entry_point="gym_planning.envs.sokoban:SokobanEnv"),
    dict(id="gym_planning/Minipacman-v0", entry_point="gym_planning.envs.minipacman:MinipacmanEnv"),
    # The I2A task variants: the same game with another reward table and level-end rule.
    *(
        dict(
            id=f"gym_planning/Minipacman{mode.capitalize()}-v0",
            entry_point="gym_planning.envs.minipacman:MinipacmanEnv",
            kwargs={"mode": mode},
        )
        for mode in ("avoid", "hunt", "ambush", "rush")
    ),
    dict(id="gym_planning/Go9x9-v0", entry_point="gym_planning.envs.go:GoEnv"),
    dict(id="gym_planning/TicTacToe-v0", entry_point="gym_planning.envs.tictactoe:TicTacToeEnv"),
]

for _spec in _ENVS:
    if _spec["id"] not in registry:
        register(**_spec)

_LAZY = {
    "SokobanEnv": "gym_planning.envs.sokoban",
    "SokobanVectorEnv": "gym_planning.envs.sokoban",
    "load_boxoban_levels": "gym_planning.envs.sokoban",
    "MinipacmanEnv": "gym_planning.envs.minipacman",
    "MinipacmanVectorEnv": "gym_planning.envs.minipacman",
    "MinipacmanTask": "gym_planning.envs.minipacman",
    "TASKS": "gym_planning.envs.minipacman",
    "GoEnv": "gym_planning.envs.go",
    "TicTacToeEnv": "gym_planning.envs.tictactoe",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
