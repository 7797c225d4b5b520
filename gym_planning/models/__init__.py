"""Models to plan with: MuZero networks (torch) and the true simulator."""

from gym_planning.models.base import SearchModel

__all__ = ["SearchModel"]
