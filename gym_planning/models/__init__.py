"""gym_planning.models."""
