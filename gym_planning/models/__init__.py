"""Models to plan with: MuZero networks (torch), the true simulator, Go's rules, and guides; a model as an env.

Every model implements :class:`SearchModel`. The torch networks load on first use, so importing
``gym_planning`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from gym_planning.models.base import SearchModel

_LAZY = {
    "MuZeroNetwork": "gym_planning.models.networks",
    "MlpMuZeroNetwork": "gym_planning.models.networks",
    "ConvMuZeroNetwork": "gym_planning.models.networks",
    "scalar_transform": "gym_planning.models.support",
    "inverse_scalar_transform": "gym_planning.models.support",
    "scalar_to_support": "gym_planning.models.support",
    "support_to_scalar": "gym_planning.models.support",
    "GoPerfectModel": "gym_planning.models.go",
    "Guide": "gym_planning.models.guides",
    "as_guide": "gym_planning.models.guides",
    "search_model_of": "gym_planning.models.guides",
    "LearnedModelEnv": "gym_planning.models.learned_model_env",
    "SimulatorModel": "gym_planning.models.simulator",
    "SimulatorNode": "gym_planning.models.simulator",
}

__all__ = ["SearchModel", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
