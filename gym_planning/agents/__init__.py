"""Agents that plan: :class:`MuZero` (a Stable-Baselines3 algorithm), :class:`SearchAgent`
(search on top of any trained SB3 agent, with a perfect or a learned model) and :class:`GoSearchOpponent`
(a fixed-strength Go player for ``GoEnv``'s ``opponent``).

They import torch, Stable-Baselines3 or OpenSpiel, so they load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "MuZero": "gym_planning.agents.muzero",
    "MuZeroPolicy": "gym_planning.agents.muzero",
    "MlpPolicy": "gym_planning.agents.muzero",
    "CnnPolicy": "gym_planning.agents.muzero",
    "GoSearchOpponent": "gym_planning.agents.go_opponent",
    "SearchAgent": "gym_planning.agents.search_agent",
    "as_guide": "gym_planning.models.guides",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
