"""gym-planning: MuZero-style planning for any Gymnasium environment.

Importing the package registers its environments with Gymnasium (``gym_planning/...-v0`` ids).
"""

__version__ = "0.1.0"

from gym_planning import envs as _envs  # noqa: F401  (registers environment ids)

__all__ = ["__version__"]
